"""HDF5 checkpoints: exact round trips and resume, clear errors on bad files, atomic writes under SIGKILL."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy
import pytest

from minwa.checkpoint import (
    export_npz,
    keep_last,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_stale_temps,
    save_checkpoint,
)
from minwa.errors import DataError
from minwa.net import Net
from minwa.solver import Solver


def model(hidden=6, name="fc1"):
    return {"name": "mlp", "layers": [
        {"name": "data", "type": "Input", "top": ["x", "y"], "input_param": {"shape": [{"dim": [8, 5]}, {"dim": [8]}]}},
        {"name": name, "type": "InnerProduct", "bottom": "x", "top": "h",
         "param": [{"lr_mult": 1}, {"lr_mult": 2, "decay_mult": 0}],
         "inner_product_param": {"num_output": hidden, "weight_filler": {"type": "gaussian", "std": 0.3},
                                 "bias_filler": {"type": "constant", "value": 0.1}}},
        {"name": "relu", "type": "ReLU", "bottom": "h", "top": "h"},
        {"name": "fc2", "type": "InnerProduct", "bottom": "h", "top": "s",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["s", "y"], "top": "loss"},
    ]}


SOLVERS = {
    "sgd": {"base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "lr_policy": "step", "stepsize": 3, "gamma": 0.5},
    "adam": {"type": "Adam", "base_lr": 0.01, "momentum": 0.9, "momentum2": 0.999},
}


def batches(rng):
    """An endless stream of random batches drawn from ``rng`` (whose state the checkpoint carries)."""
    while True:
        yield {"x": rng.normal(size=(8, 5)), "y": rng.integers(0, 3, size=8)}


def train(net, solver, stream, steps):
    for _ in range(steps):
        net.forward(next(stream))
        net.backward()
        solver.step()


def fresh(dtype="float64", seed=0, kind="sgd"):
    net = Net(model(), dtype=dtype, seed=seed)
    return net, Solver(net, SOLVERS[kind])


def assert_same_params(a, b):
    assert [p.name for p in a.params] == [p.name for p in b.params]
    for p, q in zip(a.params, b.params):
        assert p.data.dtype == q.data.dtype
        numpy.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_identical(tmp_path, dtype):
    net, solver = fresh(dtype)
    rng = numpy.random.default_rng(5)
    train(net, solver, batches(rng), 4)
    legacy = numpy.random.RandomState(3)
    legacy.normal(size=7)
    mt = numpy.random.Generator(numpy.random.MT19937(11))
    state = {"step": 4, "epoch": 0.25, "config": "model: x\n" * 2000, "note": None, "loss_history": [1.5, 0.75],
             "rng": {"data": rng.bit_generator.state, "mt": mt.bit_generator.state, "legacy": legacy.get_state()},
             "residual": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "scalar": numpy.float32(0.1)}
    path = save_checkpoint(str(tmp_path / "step_4.h5"), net, solver, state)

    other, other_solver = fresh(dtype, seed=9)
    info = load_checkpoint(path, other, other_solver)
    assert_same_params(net, other)
    assert other_solver.iter == solver.iter == 4
    for name, slots in solver.state.items():
        for key, value in slots.items():
            numpy.testing.assert_array_equal(other_solver.state[name][key], value)
    assert info["step"] == 4 and info["epoch"] == 0.25 and info["config"] == state["config"]
    assert info["note"] is None and info["loss_history"] == [1.5, 0.75]
    numpy.testing.assert_array_equal(info["residual"], state["residual"])
    assert info["residual"].dtype == numpy.float32 and info["scalar"] == numpy.float32(0.1)
    assert info["minwa_version"] and info["path"] == path and info["solver"]["iter"] == 4
    # every RNG continues exactly where it was saved
    restored = numpy.random.default_rng()
    restored.bit_generator.state = info["rng"]["data"]
    numpy.testing.assert_array_equal(restored.random(5), rng.random(5))
    restored_mt = numpy.random.Generator(numpy.random.MT19937())
    restored_mt.bit_generator.state = info["rng"]["mt"]
    numpy.testing.assert_array_equal(restored_mt.random(5), mt.random(5))
    restored_legacy = numpy.random.RandomState()
    restored_legacy.set_state(info["rng"]["legacy"])
    numpy.testing.assert_array_equal(restored_legacy.normal(size=5), legacy.normal(size=5))


@pytest.mark.parametrize("kind", sorted(SOLVERS))
def test_stop_at_k_and_resume_equals_an_uninterrupted_run(tmp_path, kind):
    k = 5
    net, solver = fresh(kind=kind)
    train(net, solver, batches(numpy.random.default_rng(1)), 2 * k)

    first, first_solver = fresh(kind=kind)
    rng = numpy.random.default_rng(1)
    train(first, first_solver, batches(rng), k)
    path = save_checkpoint(str(tmp_path / "step_5.h5"), first, first_solver, {"step": k, "rng": {
        "data": rng.bit_generator.state}})
    del first, first_solver, rng

    resumed, resumed_solver = fresh(kind=kind, seed=123)  # different initial weights: all must come from the file
    info = load_checkpoint(path, resumed, resumed_solver)
    rng = numpy.random.default_rng()
    rng.bit_generator.state = info["rng"]["data"]
    train(resumed, resumed_solver, batches(rng), k)
    assert resumed_solver.iter == 2 * k
    assert_same_params(net, resumed)


def test_gathered_arrays_and_inspection_without_a_net(tmp_path):
    arrays = {"fc/a.weight": numpy.ones((2, 3), numpy.float32), "b%.bias": numpy.zeros(3)}
    path = save_checkpoint(str(tmp_path / "c_1.h5"), arrays, None, {"iteration": 1})
    info = load_checkpoint(path)
    assert list(info["params"]) == ["fc/a.weight", "b%.bias"]
    numpy.testing.assert_array_equal(info["params"]["fc/a.weight"], arrays["fc/a.weight"])
    assert info["solver"] is None and info["iteration"] == 1
    _, solver = fresh()
    with pytest.raises(DataError, match="holds no solver state"):
        load_checkpoint(str(tmp_path / "c_1.h5"), arrays, solver)


def test_export_npz(tmp_path):
    net, solver = fresh("float32")
    path = save_checkpoint(str(tmp_path / "step_1.h5"), net, solver, {"step": 1})
    out = export_npz(path, str(tmp_path / "weights"))
    assert out.endswith("weights.npz")
    with numpy.load(out) as saved:
        assert sorted(saved.files) == sorted(p.name for p in net.params)
        for p in net.params:
            numpy.testing.assert_array_equal(saved[p.name], p.data)


# -- bad files -------------------------------------------------------------------------------

def test_mismatched_net_names_the_parameter_and_leaves_the_net_alone(tmp_path):
    net, solver = fresh()
    path = save_checkpoint(str(tmp_path / "step_1.h5"), net, solver, {"step": 1})
    wider = Net(model(hidden=7), dtype="float64", seed=4)
    before = [p.data.copy() for p in wider.params]
    with pytest.raises(DataError, match=r"parameter 'fc1.weight' has shape \(6, 5\) in the file but \(7, 5\)"):
        load_checkpoint(path, wider)
    for p, old in zip(wider.params, before):
        numpy.testing.assert_array_equal(p.data, old)
    renamed = Net(model(name="fcA"), dtype="float64")
    with pytest.raises(DataError, match="has no parameter 'fcA.weight' that the net needs"):
        load_checkpoint(path, renamed)
    subset = {p.name: p.data for p in net.params if p.name.startswith("fc2")}
    with pytest.raises(DataError, match="holds parameter 'fc1.weight' that the net does not have"):
        load_checkpoint(path, subset)
    load_checkpoint(path, subset, strict=False)


def test_truncated_corrupt_and_foreign_files_are_data_errors(tmp_path):
    big = {"big.weight": numpy.random.default_rng(0).normal(size=(256, 256))}
    path = save_checkpoint(str(tmp_path / "step_1.h5"), big, None, {"step": 1})
    raw = (tmp_path / "step_1.h5").read_bytes()

    truncated = tmp_path / "truncated_2.h5"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated_2.h5 cannot be opened"):
        load_checkpoint(str(truncated))

    flipped = bytearray(raw)
    data_at = raw.find(big["big.weight"].tobytes()[:64])
    assert data_at > 0
    flipped[data_at + 1000: data_at + 1010] = b"\xff" * 10
    corrupt = tmp_path / "corrupt_0.h5"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="parameter 'big.weight' cannot be read"):
        load_checkpoint(str(corrupt))

    foreign = tmp_path / "foreign_4.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = numpy.zeros(3)
    with pytest.raises(DataError, match="not a minwa checkpoint"):
        load_checkpoint(str(foreign))
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(str(tmp_path / "nothing.h5"))
    # truncated and foreign files are passed over (only the structure is checked, not every checksum)
    assert latest_checkpoint(str(tmp_path)) == path


def test_a_failed_save_leaves_the_previous_file_and_no_temp(tmp_path):
    net, solver = fresh()
    path = save_checkpoint(str(tmp_path / "ckpt_1.h5"), net, solver, {"step": 1})
    with pytest.raises(TypeError, match="cannot store a object"):
        save_checkpoint(path, net, solver, {"step": 2, "bad": object()})
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["ckpt_1.h5"]


# -- directories ----------------------------------------------------------------------------

def test_latest_and_keep_last(tmp_path):
    arrays = {"w": numpy.zeros(2)}
    for step in (2, 9, 10, 100):
        save_checkpoint(str(tmp_path / f"step_{step}.h5"), arrays, None, {"step": step})
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    names = [os.path.basename(p) for p in list_checkpoints(str(tmp_path))]
    assert names == ["step_2.h5", "step_9.h5", "step_10.h5", "step_100.h5"]  # by number, not by text
    assert latest_checkpoint(str(tmp_path)).endswith("step_100.h5")
    removed = keep_last(str(tmp_path), 2)
    assert sorted(os.path.basename(p) for p in removed) == ["step_2.h5", "step_9.h5"]
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "step_10.h5", "step_100.h5"]
    with pytest.raises(ValueError):
        keep_last(str(tmp_path), 0)
    assert latest_checkpoint(str(tmp_path / "missing")) is None


# -- SIGKILL in the middle of a write ---------------------------------------------------------

_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy
    from minwa.checkpoint import save_checkpoint

    def stalled_fsync(fd):
        # the temp file is written, not yet synced and renamed: the last moment a crash can hit
        print("MIDDLE", flush=True)
        time.sleep(120)

    os.fsync = stalled_fsync
    params = {f"layer{i}.weight": numpy.full((512, 512), 7.0) for i in range(8)}
    save_checkpoint(sys.argv[1], params, None, {"step": 2})
    print("FINISHED", flush=True)
""")


@pytest.mark.parametrize("same_name", [True, False], ids=["overwrite", "next-name"])
def test_sigkill_while_writing_keeps_the_previous_checkpoint(tmp_path, same_name):
    previous = {f"layer{i}.weight": numpy.full((512, 512), float(i)) for i in range(8)}
    old = save_checkpoint(str(tmp_path / "step_00000001.h5"), previous, None, {"step": 1})
    target = old if same_name else str(tmp_path / "step_00000002.h5")
    child = subprocess.Popen([sys.executable, "-c", _WRITER, target], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "MIDDLE", line
        temps = [name for name in os.listdir(tmp_path) if ".tmp." in name]
        assert len(temps) == 1 and os.path.getsize(tmp_path / temps[0]) > 0  # the write is under way
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    finals = sorted(name for name in os.listdir(tmp_path) if not name.startswith("."))
    assert finals == ["step_00000001.h5"]  # no half-written file at any final name
    info = load_checkpoint(old)
    assert info["step"] == 1
    for name, value in previous.items():
        numpy.testing.assert_array_equal(info["params"][name], value)
    assert latest_checkpoint(str(tmp_path)) == old
    deadline = time.monotonic() + 10
    while remove_stale_temps(str(tmp_path)) == [] and any(".tmp." in n for n in os.listdir(tmp_path)):
        assert time.monotonic() < deadline, "the killed writer's temp file was not recognised as stale"
        time.sleep(0.1)
    assert not any(".tmp." in name for name in os.listdir(tmp_path))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only); skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory, leave=0):
    """Fill the file system holding ``directory`` up to ``leave`` free bytes (about: tmpfs counts pages)."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        for chunk in (65536, 4096, 1):
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError:
                pass
    if leave:
        os.truncate(path, max(0, os.path.getsize(path) - leave))


def test_a_full_disk_is_a_clear_error_that_keeps_the_previous_checkpoint(small_disk):
    net, solver = fresh()
    path = str(small_disk / "step.h5")
    save_checkpoint(path, net, solver, {"step": 1})
    _fill(small_disk)
    net2, solver2 = fresh(seed=5)
    with pytest.raises(DataError, match=r"step.h5: cannot write its \d+ bytes: No space left on device; nothing "
                                        r"was replaced"):
        save_checkpoint(path, net2, solver2, {"step": 2})
    assert sorted(os.listdir(small_disk)) == ["filler", "step.h5"]  # no temp file left
    assert load_checkpoint(path)["step"] == 1


def test_minwa_train_on_a_full_disk_ends_with_a_message_not_a_crash(small_disk, jobs, tiny_job):
    _fill(small_disk, leave=16384)  # room for metrics.jsonl and config.yaml, not for a checkpoint
    code, out, _ = jobs.run_job(jobs.minwa("train", tiny_job(), "--run-dir", small_disk / "run", "--max-iter", 2),
                                timeout=120)
    assert code == 1, out
    assert "No space left on device" in out and "Traceback" not in out, out
    assert not [name for name in os.listdir(small_disk / "run" / "checkpoints") if ".tmp." in name]
