"""DataParallel: N ranks at batch B/N give the weights one process gets at batch B.

The reference is plain single-process training (Net + Solver.step) run in the
test process (``data_parallel_cases``); the data-parallel runs are workers of this
same file started under ``mpiexec -n 2`` / ``-n 4`` (with a timeout) that save their
weights per rank. Also checked: bytes on the wire, BatchNorm and iter_size,
compression, skipping a step and the timeline.
"""
import json
import os
import subprocess
import sys

import numpy
import pytest

from minwa.comm import part_bounds
from minwa.net import Net
from minwa.solver import Solver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_parallel_cases import (  # noqa: E402
    BATCH,
    SOLVERS,
    STEPS,
    assert_same_weights,
    batches,
    load,
    model,
    reference,
    run_worker,
    save_run,
    train_data_parallel,
)

pytestmark = pytest.mark.mpi

#: name -> (DataParallel options, solver)
MODES = {
    "sync": ({"lazy": False}, "sgd"),
    "lazy": ({"lazy": True, "bucket_bytes": 0}, "sgd"),
    "lazy_one_bucket": ({"lazy": True, "bucket_bytes": None}, "sgd"),
    "lazy_thread": ({"lazy": True, "bucket_bytes": 0, "progress_thread": True}, "sgd"),
    "sharded": ({"sharded": True, "bucket_bytes": 0}, "sgd"),
    "sharded_sync": ({"sharded": True, "lazy": False, "bucket_bytes": 2000}, "sgd"),
    "allreduce": ({"strategy": "allreduce", "bucket_bytes": 0}, "sgd"),
    "allreduce_sharded": ({"strategy": "allreduce", "sharded": True, "bucket_bytes": 0}, "sgd"),
    "nesterov_lazy": ({"lazy": True, "bucket_bytes": 0}, "nesterov"),
    "adam_sharded": ({"sharded": True, "bucket_bytes": 0}, "adam"),
    "clip_lazy": ({"lazy": True, "bucket_bytes": 0}, "clip"),
    "skip_step": ({"lazy": True, "bucket_bytes": 0, "skip": [1]}, "sgd"),
}
COMPRESSED = {
    "fp16": ({"strategy": "butterfly_fp16", "bucket_bytes": 0}, "sgd"),
    "int8": ({"strategy": "butterfly_int8", "bucket_bytes": 0, "int8_block": 64}, "sgd"),
    "int8_feedback": ({"strategy": "butterfly_int8", "bucket_bytes": 0, "int8_block": 64, "error_feedback": True},
                      "sgd"),
    "int8_sharded": ({"strategy": "butterfly_int8", "sharded": True, "bucket_bytes": 0, "int8_block": 64}, "sgd"),
}
BUTTERFLY_MODES = ("sync", "lazy", "lazy_one_bucket", "lazy_thread", "sharded", "sharded_sync", "nesterov_lazy",
                   "adam_sharded", "clip_lazy", "skip_step")


def bn_model(batch):
    """model() with BatchNorm + Scale after conv1: running statistics are lr_mult 0 blobs outside the buckets."""
    net = model(batch)
    at = next(i for i, layer in enumerate(net["layers"]) if layer["name"] == "relu1")
    net["layers"][at:at] = [
        {"name": "bn1", "type": "BatchNorm", "bottom": "conv1", "top": "conv1",
         "batch_norm_param": {"moving_average_fraction": 0.9}},
        {"name": "scale1", "type": "Scale", "bottom": "conv1", "top": "conv1", "scale_param": {"bias_term": True}},
    ]
    return net


#: name -> (DataParallel options, net, iter_size): BatchNorm and iter_size against one process
EXTRAS = {
    "bn_sync": ({"lazy": False}, bn_model, 1),
    "bn_lazy": ({"lazy": True, "bucket_bytes": 0}, bn_model, 1),
    "bn_sharded": ({"sharded": True, "bucket_bytes": 0}, bn_model, 1),
    "iter2_lazy": ({"lazy": True, "bucket_bytes": 0}, model, 2),
    "iter2_bn_sharded": ({"sharded": True, "bucket_bytes": 0}, bn_model, 2),
}


def accumulated(net, engine, iter_size, xs, ys, rows, dtype):
    """STEPS steps of ``iter_size`` micro-batches (each a slice of the global batch) through GradientAccumulator."""
    from minwa.parallel.gradient_accumulator import GradientAccumulator

    accumulate = GradientAccumulator(net, engine, iter_size)
    micro = BATCH // iter_size
    for k in range(STEPS):
        parts = iter(range(iter_size))

        def feed(k=k, parts=parts):
            start = next(parts) * micro
            take = slice(start + rows.start, start + rows.stop)
            return {"data": xs[k, take].astype(dtype), "label": ys[k, take]}

        accumulate.forward(feed)
        engine.backward_and_update()
    accumulate.close()


def extras_reference(name, dtype="float64"):
    """One process, the global (micro-)batch, the same net: the BatchNorm / iter_size runs must equal it."""
    from minwa.parallel.single import SingleProcess

    _, make, iter_size = EXTRAS[name]
    net = Net(make(BATCH // iter_size), dtype=dtype, seed=3)
    sgd = Solver(net, dict(SOLVERS["sgd"], iter_size=iter_size))
    xs, ys = batches()
    accumulated(net, SingleProcess(net, sgd), iter_size, xs, ys, slice(0, BATCH // iter_size), dtype)
    return {p.name: p.data for p in net.params}


@pytest.mark.parametrize("n", [2, 4])
def test_batch_norm_and_iter_size_on_n_ranks_equal_one_process(tmp_path, n, mpirun):
    """BatchNorm normalises by the global batch and keeps its running statistics equal on every rank;
    iter_size accumulates the micro-batches' gradients and still communicates once per step."""
    mpirun(n, __file__, ["extras", tmp_path], timeout=300)
    for name in EXTRAS:
        want = extras_reference(name)
        ranks, info = load(tmp_path, name, n)
        for rank, got in enumerate(ranks):
            assert_same_weights(got, want, rtol=1e-9, atol=1e-12)  # running mean/variance/scale_factor too
            for key in got:
                numpy.testing.assert_array_equal(got[key], ranks[0][key], err_msg=f"{name} rank {rank} {key}")
        if name.startswith("bn"):
            assert want["bn1.scale_factor"][0] == pytest.approx(sum(0.9 ** i for i in range(STEPS)))


def butterfly_bytes(n_elements, size, rank, itemsize):
    bounds = part_bounds(n_elements, size)
    own = bounds[rank][1] - bounds[rank][0]
    return itemsize * ((n_elements - own) + (size - 1) * own)


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4])
def test_n_ranks_equal_one_process_in_every_mode(tmp_path, n, mpirun):
    mpirun(n, __file__, ["train", tmp_path, "float64", ",".join(MODES)], timeout=300)
    for name, (options, solver) in MODES.items():
        want, _ = reference(solver, skip=options.get("skip", ()))
        ranks, info = load(tmp_path, name, n)
        for rank, got in enumerate(ranks):
            assert_same_weights(got, want, rtol=1e-9, atol=1e-12)
            for key in got:  # every rank holds exactly the same weights
                numpy.testing.assert_array_equal(got[key], ranks[0][key], err_msg=f"{name} rank {rank} {key}")
        # the step sends the gradient exchange and nothing else
        per_bucket = 0 if name in BUTTERFLY_MODES else 2 if options.get("sharded") else 1
        assert info["collectives_during_steps"] == [per_bucket * STEPS * len(info["bucket_sizes"])] * n, name
        if name in BUTTERFLY_MODES:
            steps = STEPS - len(options.get("skip", ()))
            for rank in range(n):
                exact = steps * sum(butterfly_bytes(size, n, rank, 8) for size in info["bucket_sizes"])
                assert info["bytes_sent"][rank] == exact, (name, rank)
                bound = steps * 2 * (n - 1) / n * 8 * sum(info["bucket_sizes"])
                assert abs(info["bytes_sent"][rank] - bound) <= steps * 8 * (n - 1) * len(info["bucket_sizes"])
        if options.get("bucket_bytes") == 0:
            assert len(info["bucket_sizes"]) == 4  # one per layer with weights: ip2, ip1, conv2, conv1
            assert info["bucket_sizes"] == [85, 400, 222, 112]
        if not options.get("lazy", True):
            assert info["pending_after_step"] == [False] * n
        # lazy CPU ranks drive their transfers between compute chunks; a helper thread only when asked for
        lazy = options.get("lazy", True) and n > 1
        assert info["polls_between_chunks"] == [lazy] * n, name
        assert info["progress_thread"] == [lazy and options.get("progress_thread") is True] * n, name
        trained = STEPS - len(options.get("skip", ()))
        assert info["metrics"]["comm_bytes_per_step"] == pytest.approx(info["bytes_sent"][0] / trained)
        assert info["metrics"]["comm_bound_bytes_per_step"] == pytest.approx(2 * (n - 1) / n * 8 * sum(
            info["bucket_sizes"]))


def test_float32_runs_match_within_float32_rounding(tmp_path, mpirun):
    mpirun(2, __file__, ["train", tmp_path, "float32", "lazy,sharded,sync"], timeout=300)
    for name in ("lazy", "sharded", "sync"):
        want, _ = reference(MODES[name][1], dtype="float32")
        ranks, _ = load(tmp_path, name, 2)
        for got in ranks:
            assert_same_weights(got, want, rtol=2e-4, atol=2e-6)


def test_one_process_without_mpiexec_is_bitwise_the_plain_solver(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_LOCAL", "OMPI_", "SLURM_"))}
    subprocess.run([sys.executable, __file__, "train", str(tmp_path), "float64", "lazy,sharded,sync,adam_sharded"],
                   check=True, timeout=120, env=dict(env, MINWA_DEVICE="cpu"))
    for name in ("lazy", "sharded", "sync", "adam_sharded"):
        want, _ = reference(MODES[name][1])
        (got,), info = load(tmp_path, name, 1)
        for key in want:
            numpy.testing.assert_array_equal(got[key], want[key], err_msg=f"{name} {key}")
        assert info["bytes_sent"] == [0]


@pytest.mark.parametrize("n", [2, 4])
def test_compressed_training_stays_close_and_identical_across_ranks(tmp_path, n, mpirun):
    mpirun(n, __file__, ["compressed", tmp_path], timeout=300)
    want, _ = reference("sgd", dtype="float32")
    start = {p.name: p.data for p in Net(model(BATCH), dtype="float32", seed=3).params}
    moved = max(numpy.abs(want[k] - start[k]).max() for k in want)  # the largest change training made
    for name, (options, _) in COMPRESSED.items():
        ranks, info = load(tmp_path, name, n)
        for rank, got in enumerate(ranks):
            for key in got:
                numpy.testing.assert_array_equal(got[key], ranks[0][key], err_msg=f"{name} rank {rank} {key}")
        error = max(numpy.abs(ranks[0][k] - want[k]).max() for k in want)
        # a few steps of quantised gradients: off by a small fraction of how far the weights moved, but off
        assert 0 < error <= (0.002 if name == "fp16" else 0.05) * moved, name
        full = STEPS * 2 * (n - 1) / n * 4 * sum(info["bucket_sizes"])
        ratio = info["bytes_sent"][0] / full
        if options.get("sharded"):
            assert 0.6 < ratio < 0.7  # int8 gradients to the owners, float32 weights back
        elif name == "fp16":
            assert 0.49 < ratio < 0.51
        else:
            assert 0.25 < ratio < 0.35  # int8 plus one float32 scale per 64 values


def test_timeline_shows_transfers_overlapping_backward(tmp_path, mpirun):
    trace = tmp_path / "trace.json"
    mpirun(2, __file__, ["timeline", tmp_path, trace], timeout=300)
    with open(trace, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    assert {e["pid"] for e in events} == {0, 1}
    for rank in (0, 1):
        mine = [e for e in events if e["pid"] == rank]
        lanes = {e["args"]["name"] for e in mine if e["name"] == "thread_name"}
        assert {"compute", "comm bucket 0", "comm bucket 3"} <= lanes
        spans = [e for e in mine if e["ph"] == "X"]
        for layer in ("conv1", "conv2", "ip1", "ip2"):
            assert sum(e["name"] == f"forward {layer}" for e in spans) == STEPS
            assert sum(e["name"] == f"backward {layer}" for e in spans) == STEPS
        backward_conv1 = sorted(e["ts"] for e in spans if e["name"] == "backward conv1")
        transfers = sorted(e["ts"] for e in spans if e["name"] == "bucket 0")
        assert len(transfers) == STEPS
        # the last layer's bucket goes out while the first layers are still in backward
        for sent, conv1_backward_start in zip(transfers, backward_conv1):
            assert sent < conv1_backward_start
        steps = [e for e in mine if e["ph"] in "BE" and e["name"].startswith("step ")]
        assert len(steps) == 2 * STEPS


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec (or as one process)
def _worker_train(comm, directory, dtype, names):
    for name in names.split(","):
        options, solver = MODES[name]
        net, engine, info = train_data_parallel(comm, name, options, solver, dtype)
        engine.close()
        save_run(directory, name, comm, net, info)


def _worker_extras(comm, directory):
    from minwa.parallel.data import DataParallel

    xs, ys = batches()
    for name, (options, make, iter_size) in EXTRAS.items():
        local = BATCH // iter_size // comm.size
        net = Net(make(local), dtype="float64", seed=3)
        engine = DataParallel(net, Solver(net, dict(SOLVERS["sgd"], iter_size=iter_size)), comm, **options)
        accumulated(net, engine, iter_size, xs, ys, slice(comm.rank * local, (comm.rank + 1) * local), "float64")
        engine.finish()
        info = {"bytes_sent": 0, "collectives": 0, "bucket_sizes": [b.size for b in engine.buckets],
                "pending": False, "metrics": {},
                "progress_thread": engine._progress is not None, "polls_between_chunks": engine._polling}
        engine.close()
        save_run(directory, name, comm, net, info)


def _worker_compressed(comm, directory):
    for name, (options, solver) in COMPRESSED.items():
        net, engine, info = train_data_parallel(comm, name, options, solver, "float32")
        engine.close()
        save_run(directory, name, comm, net, info)


def _worker_timeline(comm, directory, path):
    from minwa.timeline import Timeline

    timeline = Timeline(path, rank=comm.rank)
    _, engine, _ = train_data_parallel(comm, "timeline", {"lazy": True, "bucket_bytes": 0, "timeline": timeline},
                                       "sgd", "float64")
    engine.close()
    timeline.close()


if __name__ == "__main__":
    run_worker({"train": _worker_train, "compressed": _worker_compressed, "extras": _worker_extras,
                "timeline": _worker_timeline}, sys.argv[1:])
