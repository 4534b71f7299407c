"""The same layer code on cupy: results match numpy (skipped without cupy and a CUDA device)."""
import numpy as np
import pytest

from minwa import backend

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as exc:  # noqa: BLE001 - any driver failure means "no GPU here"
        pytest.skip(f"no usable CUDA device: {exc}")
    return cp


SPECS = [
    {"type": "Convolution", "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "group": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 4, "kernel_size": 3, "stride": 2}},
    {"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
    {"type": "Pooling", "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
    {"type": "LRN", "lrn_param": {"local_size": 3, "norm_region": "WITHIN_CHANNEL"}},
    {"type": "LRN", "lrn_param": {"local_size": 3}},
    {"type": "ReLU"},
    {"type": "BatchNorm"},
    {"type": "InnerProduct", "inner_product_param": {"num_output": 5}},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["type"])
def test_layer_matches_numpy_on_cupy(cupy, make_layer, rng, spec):
    shape = (3, 4, 8, 8)
    cpu, _ = make_layer(spec, [shape], dtype="float32")
    gpu, _ = make_layer(spec, [shape], dtype="float32")
    for a, b in zip(cpu.params, gpu.params):
        b.data = cupy.asarray(a.data)
    x = rng.standard_normal(shape).astype(np.float32)
    y = cpu.forward([x])[0]
    y_gpu = gpu.forward([cupy.asarray(x)])[0]
    np.testing.assert_allclose(backend.to_host(y_gpu), y, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = cpu.backward([dy], [True])[0]
    dx_gpu = gpu.backward([cupy.asarray(dy)], [True])[0]
    np.testing.assert_allclose(backend.to_host(dx_gpu), dx, rtol=1e-4, atol=1e-5)
    for a, b in zip(cpu.params, gpu.params):
        np.testing.assert_allclose(backend.to_host(b.grad), a.grad, rtol=1e-4, atol=1e-5)
