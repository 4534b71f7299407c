"""Outputs and gradients are bit-identical for MINWA_THREADS = 1, 2 and 3, layer by layer and for a whole net."""
import copy
import os

import numpy as np
import pytest

import minwa
from minwa.layers import _gemm, _layout, convolution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREADS = ("1", "2", "3")

SPECS = [
    {"type": "Convolution", "convolution_param": {"num_output": 6, "kernel_size": 5, "pad": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "group": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 5, "kernel_size": 3, "stride": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 3, "kernel_size": 1}},
    {"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
    {"type": "Pooling", "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
    {"type": "LRN", "lrn_param": {"local_size": 3, "alpha": 0.1, "norm_region": "WITHIN_CHANNEL"}},
    {"type": "LRN", "lrn_param": {"local_size": 5, "alpha": 0.1}},
    {"type": "InnerProduct", "inner_product_param": {"num_output": 70}},
    {"type": "InnerProduct", "inner_product_param": {"num_output": 5}},
    {"type": "ReLU"},
]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of one image and GEMM blocks of a few rows, so every pass really splits."""
    monkeypatch.setattr(_layout, "CACHE_CHUNK", 1)
    monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(convolution, "BLAS_THREADED_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(_gemm, "MIN_SPLIT", 1)
    monkeypatch.setattr(_gemm, "MIN_BLOCK", 2)


def run_layer(make_layer, spec, x, dy, dtype):
    layer, _ = make_layer(spec, [x.shape], dtype=dtype, seed=3)
    y = layer.forward([x])[0]
    dx = layer.backward([dy], [True])[0]
    return [np.array(y), np.array(dx)] + [np.array(p.grad) for p in layer.params]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["type"] + "-" + str(list(s.values())[1:]))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_layer_is_bit_identical_for_any_thread_count(make_layer, rng, monkeypatch, small_chunks, kernel_path, spec,
                                                     dtype, channels_last):
    x = rng.standard_normal((7, 4, 9, 8)).astype(dtype)
    if channels_last:  # the layout a convolution hands on
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    tops = make_layer(spec, [x.shape], allocate=False)[1]
    dy = rng.standard_normal(tops[0]).astype(dtype)
    results = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        results[threads] = run_layer(make_layer, spec, x, dy, dtype)
    for threads in THREADS[1:]:
        for a, b in zip(results["1"], results[threads]):
            assert a.dtype == b.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(b, a, err_msg=f"MINWA_THREADS={threads}")


def _net_step(model, x, y):
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=5)
    data, label = net.input_names
    net.forward({data: x, label: y})
    net.backward()
    return [np.array(net.loss)] + [np.array(p.grad) for p in net.params]


@pytest.mark.parametrize("default_chunks", [True, False])
def test_cifar10_full_step_is_bit_identical_for_any_thread_count(monkeypatch, rng, default_chunks):
    job = minwa.load_config(os.path.join(ROOT, "configs", "cifar10_full.yaml"))
    model = copy.deepcopy(job.model)
    batch = 5
    model["layers"][0]["input_param"]["shape"] = [{"dim": [batch, 3, 32, 32]}, {"dim": [batch]}]
    if not default_chunks:
        monkeypatch.setattr(_layout, "CACHE_CHUNK", 1)
        monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)
        monkeypatch.setattr(_gemm, "MIN_SPLIT", 1)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=batch)
    results = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        results[threads] = _net_step(model, x, y)
    for threads in THREADS[1:]:
        for a, b in zip(results["1"], results[threads]):
            np.testing.assert_array_equal(b, a, err_msg=f"MINWA_THREADS={threads}")


@pytest.mark.parametrize("param", [{"kernel_size": 3, "pad": 1}, {"kernel_size": 3, "pad": 1, "stride": 2},
                                   {"kernel_size": 1}])
def test_convolution_column_blocks(make_layer, rng, monkeypatch, param):
    """A batch that is one chunk splits its GEMMs by output channel: same values, any thread count."""
    spec = {"type": "Convolution", "convolution_param": dict(num_output=7, **param)}
    x = rng.standard_normal((3, 5, 4, 4))
    tops = make_layer(spec, [x.shape], allocate=False)[1]
    dy = rng.standard_normal(tops[0])
    monkeypatch.setenv("MINWA_THREADS", "1")
    whole = run_layer(make_layer, spec, x, dy, "float64")
    monkeypatch.setattr(convolution, "COLUMN_BLOCK", 2)  # 7 channels -> blocks 2, 2, 2, 1
    blocked = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        blocked[threads] = run_layer(make_layer, spec, x, dy, "float64")
    for a, b in zip(whole, blocked["1"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    for threads in THREADS[1:]:
        for a, b in zip(blocked["1"], blocked[threads]):
            np.testing.assert_array_equal(b, a)
