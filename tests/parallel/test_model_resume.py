"""Model-data checkpoints hold whole layers: resume on another N, in either mode, bit-identically on the same N.

Each case runs ``minwa train`` under mpiexec (with a timeout) on a float64 job with three
FC layers, ReLU and Dropout, on the built-in shapes data.
"""
import copy
import json
import os
import subprocess
import sys

import numpy
import pytest
import yaml

from minwa.checkpoint import checkpoint_path, load_checkpoint

pytestmark = pytest.mark.mpi


def _ip(name, bottom, outputs):
    return {"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
            "inner_product_param": {"num_output": outputs, "weight_filler": {"type": "xavier"},
                                    "bias_filler": {"type": "constant", "value": 0.05}}}


JOB = {
    "name": "md_resume",
    "model": {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [16, 3, 12, 12]}, {"dim": [16]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "msra"}}},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
        _ip("fc1", "pool1", 24),
        {"name": "relu_fc1", "type": "ReLU", "bottom": "fc1", "top": "fc1"},
        {"name": "drop_fc1", "type": "Dropout", "bottom": "fc1", "top": "fc1", "dropout_param": {"dropout_ratio": 0.5}},
        _ip("fc2", "fc1", 18),
        {"name": "relu_fc2", "type": "ReLU", "bottom": "fc2", "top": "fc2"},
        {"name": "drop_fc2", "type": "Dropout", "bottom": "fc2", "top": "fc2", "dropout_param": {"dropout_ratio": 0.5}},
        _ip("fc3", "fc2", 10),
        {"name": "accuracy", "type": "Accuracy", "bottom": ["fc3", "label"], "top": "accuracy",
         "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["fc3", "label"], "top": "loss"},
    ]},
    "solver": {"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005, "max_iter": 16, "test_interval": 0,
               "display": 4, "snapshot": 8, "random_seed": 3},
    "data": {"source": "shapes", "image_size": 12, "train_count": 128, "test_count": 33, "batch_size": 16,
             "test_batch_size": 16, "mean": "channel", "scale": 0.0125, "prefetch": 1},
    "train": {"progress": False, "dtype": "float64"},
}


def _job(tmp_path, mode):
    job = copy.deepcopy(JOB)
    if mode is not None:
        job["parallel"] = {"mode": mode}
    path = tmp_path / f"job_{mode}.yaml"
    path.write_text(yaml.safe_dump(job))
    return str(path)


def _run(tmp_path, mode, ranks, run_dir, *extra, timeout=240):
    command = [sys.executable, "-m", "minwa.launch.cli", "train", _job(tmp_path, mode), "--run-dir",
               str(tmp_path / run_dir), *extra]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), *command]
    env = dict(os.environ, OMP_NUM_THREADS="1", MINWA_THREADS="1", MINWA_DEVICE="cpu")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def _params(tmp_path, run_dir, step):
    return load_checkpoint(checkpoint_path(str(tmp_path / run_dir / "checkpoints"), step))


def _test_accuracy(tmp_path, run_dir):
    with open(tmp_path / run_dir / "metrics.jsonl", encoding="utf-8") as f:
        tests = [json.loads(line) for line in f if '"test"' in line]
    return tests[-1]["accuracy"]


def _close(a, b, exact=False, rtol=1e-6, atol=1e-8):
    """Equal weights and solver state; 1 vs N ranks of ``minwa train`` differ by ~1e-8 in float64 in the
    data path (data mode alike), so cross-N comparisons use 1e-6; same-N ones are exact or 1e-12."""
    assert sorted(a["params"]) == sorted(b["params"])
    for name, value in a["params"].items():
        if exact:
            numpy.testing.assert_array_equal(b["params"][name], value, err_msg=name)
        else:
            numpy.testing.assert_allclose(b["params"][name], value, rtol=rtol, atol=atol, err_msg=name)
    for name, slots in a["solver"]["state"].items():
        for key, value in slots.items():
            got = b["solver"]["state"][name][key]
            if exact:
                numpy.testing.assert_array_equal(got, value, err_msg=f"{name} {key}")
            else:
                numpy.testing.assert_allclose(got, value, rtol=rtol, atol=atol, err_msg=f"{name} {key}")


def test_model_data_checkpoints_resume_on_any_n_and_mode(tmp_path):
    _run(tmp_path, None, 1, "single")
    _run(tmp_path, "model-data", 2, "md2")  # writes step 8 and step 16
    _run(tmp_path, "data", 2, "data2", "--max-iter", "8")
    single, md2 = _params(tmp_path, "single", 16), _params(tmp_path, "md2", 16)
    # the last test batch has 1 image: ranks with an empty share still join the FC exchanges (no hang)
    assert _test_accuracy(tmp_path, "md2") == pytest.approx(_test_accuracy(tmp_path, "single"), abs=1e-9)
    _close(single, md2)  # model-data on 2 ranks trains what one process trains
    _close(_params(tmp_path, "data2", 8), _params(tmp_path, "md2", 8), rtol=1e-12, atol=1e-14)  # and data mode
    half = str(tmp_path / "md2" / "checkpoints" / "step_00000008.h5")
    assert load_checkpoint(half)["params"]["fc1.weight"].shape == (24, 144)  # whole layers in the file

    _run(tmp_path, "model-data", 2, "md2_resumed", "--resume", half)
    _close(md2, _params(tmp_path, "md2_resumed", 16), exact=True)  # same N: bit-identical
    _run(tmp_path, "model-data", 4, "md4_resumed", "--resume", half)
    _close(single, _params(tmp_path, "md4_resumed", 16))
    _run(tmp_path, "data", 2, "data_resumed", "--resume", half)
    _close(single, _params(tmp_path, "data_resumed", 16))

    _run(tmp_path, "model-data", 4, "data_to_md4", "--resume", str(tmp_path / "data2" / "checkpoints" /
                                                                   "step_00000008.h5"))
    _close(single, _params(tmp_path, "data_to_md4", 16))
