"""LRN against Caffe's formulas written as loops, both regions, with gradients."""
import numpy as np
import pytest

from minwa.errors import ConfigError

#: every test runs on the numpy passes and on the compiled kernels (conftest.kernel_path)
pytestmark = pytest.mark.usefixtures("kernel_path")


def reference_lrn(x, size, alpha, beta, k, region):
    n, c, h, w = x.shape
    half = (size - 1) // 2
    scale = np.zeros_like(x)
    for a in range(n):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    if region == "ACROSS_CHANNELS":
                        lo, hi = max(0, ch - half), min(c, ch + half + 1)
                        scale[a, ch, i, j] = k + alpha / size * np.sum(x[a, lo:hi, i, j] ** 2)
                    else:  # Caffe builds it from an AVE pool (divisor size^2) and a power layer with shift 1
                        window = x[a, ch, max(0, i - half):i + half + 1, max(0, j - half):j + half + 1]
                        scale[a, ch, i, j] = 1 + alpha / size ** 2 * np.sum(window ** 2)
    return x * scale ** -beta


def lrn_spec(**param):
    return {"type": "LRN", "name": "norm", "lrn_param": param}


CASES = [
    {},                                                                   # Caffe defaults: 5, 1, 0.75, 1
    {"local_size": 3, "alpha": 0.5, "beta": 0.6, "k": 2.0},
    {"local_size": 3, "alpha": 5e-2, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"},  # cifar10_full's norm layers
    {"local_size": 5, "alpha": 0.3, "beta": 1.0, "norm_region": "WITHIN_CHANNEL"},
]


@pytest.mark.parametrize("param", CASES)
def test_lrn_matches_reference_and_gradient(make_layer, gradcheck, rng, param):
    shape = (2, 6, 4, 5)
    layer, tops = make_layer(lrn_spec(**param), [shape])
    assert tops == [shape]
    x = rng.standard_normal(shape) * 2
    y = layer.forward([x])[0]
    ref = reference_lrn(x, layer.size, layer.alpha, layer.beta, layer.k, layer.region)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    gradcheck(layer, [x])


def test_lrn_defaults_are_caffes(make_layer):
    layer, _ = make_layer(lrn_spec(), [(1, 3, 2, 2)])
    assert (layer.size, layer.alpha, layer.beta, layer.k, layer.region) == (5, 1.0, 0.75, 1.0, "ACROSS_CHANNELS")


def test_lrn_float32(make_layer, rng):
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    layer, _ = make_layer(lrn_spec(local_size=3, alpha=5e-5, norm_region="WITHIN_CHANNEL"), [x.shape],
                          dtype="float32")
    y = layer.forward([x])[0]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, reference_lrn(x.astype(np.float64), 3, 5e-5, 0.75, 1, "WITHIN_CHANNEL"),
                               rtol=1e-5)
    assert layer.backward([np.ones_like(y)], [True])[0].dtype == np.float32


@pytest.mark.parametrize("param, field", [({"local_size": 4}, "local_size"),
                                          ({"norm_region": "DIAGONAL"}, "norm_region")])
def test_lrn_config_errors(make_layer, param, field):
    with pytest.raises(ConfigError) as info:
        make_layer(lrn_spec(**param), [(1, 3, 4, 4)])
    assert "'norm'" in str(info.value) and field in str(info.value)
