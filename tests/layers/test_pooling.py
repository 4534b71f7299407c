"""Pooling against Caffe's loops: ceil-mode sizes, the last-window clip, padding, MAX ties and AVE divisors."""
import math

import numpy as np
import pytest

from minwa.errors import ConfigError

#: every test runs on the numpy passes and on the compiled kernels (conftest.kernel_path)
pytestmark = pytest.mark.usefixtures("kernel_path")


def reference_pool(x, kernel, stride, pad, method):
    """Caffe's PoolingLayer::Forward_cpu, transcribed loop by loop."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh = math.ceil((h + 2 * ph - kh) / sh) + 1
    ow = math.ceil((w + 2 * pw - kw) / sw) + 1
    if ph or pw:
        if (oh - 1) * sh >= h + ph:
            oh -= 1
        if (ow - 1) * sw >= w + pw:
            ow -= 1
    y = np.zeros((n, c, oh, ow))
    for a in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    hs, ws = i * sh - ph, j * sw - pw
                    if method == "MAX":
                        he, we = min(hs + kh, h), min(ws + kw, w)
                        hs, ws = max(hs, 0), max(ws, 0)
                        best = -np.inf
                        for u in range(hs, he):
                            for v in range(ws, we):
                                best = max(best, x[a, ch, u, v])
                        y[a, ch, i, j] = best
                    else:
                        he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
                        size = (he - hs) * (we - ws)
                        hs, ws = max(hs, 0), max(ws, 0)
                        he, we = min(he, h), min(we, w)
                        y[a, ch, i, j] = x[a, ch, hs:he, ws:we].sum() / size
    return y


def pool_spec(**param):
    return {"type": "Pooling", "name": "pool", "pooling_param": param}


CASES = [
    {"kernel_size": 3, "stride": 2},                      # 6x6 -> 3x3, last window clipped to 2 columns
    {"kernel_size": 2, "stride": 2},
    {"kernel_size": 3, "stride": 2, "pad": 1},
    {"kernel_size": 3, "stride": 3, "pad": 2},               # the "last window must start inside" clip
    {"kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 1, "pad_h": 1, "pad_w": 0},
    {"kernel_size": 3, "stride": 1, "pad": 1},
    {"kernel_size": 2, "stride_h": 2, "stride_w": 3, "pad_h": 1, "pad_w": 0},  # the W clip comes from pad_h
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("param", CASES)
def test_pooling_matches_caffe_loops(make_layer, helpers, rng, method, param):
    shape = (2, 3, 6, 7)
    layer, tops = make_layer(pool_spec(pool=method, **param), [shape])
    x = helpers.spaced(rng, shape)
    y = layer.forward([x])[0]
    ref = reference_pool(x, layer.kernel, layer.stride, layer.pad, method)
    assert y.shape == ref.shape == tops[0]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("param", CASES)
def test_pooling_gradients(make_layer, gradcheck, helpers, rng, method, param):
    shape = (1, 2, 6, 7)
    layer, _ = make_layer(pool_spec(pool=method, **param), [shape])
    gradcheck(layer, [helpers.spaced(rng, shape)])  # candidates >= 1e-2 apart: no max kink within eps


def test_caffe_sizes_and_clip_examples(make_layer):
    def out(h, **param):
        return make_layer(pool_spec(**param), [(1, 1, h, h)])[1][0][2:]

    assert out(6, kernel_size=3, stride=2) == (3, 3)            # ceil mode: floor would give 2
    assert out(32, kernel_size=3, stride=2) == (16, 16)          # cifar10_full pool1
    assert out(8, kernel_size=3, stride=2) == (4, 4)             # cifar10_full pool3
    assert out(55, kernel_size=3, stride=2) == (27, 27)          # AlexNet pool1
    assert out(5, kernel_size=2, stride=2, pad=1) == (3, 3)
    assert out(4, kernel_size=3, stride=3, pad=2) == (2, 2)      # ceil gives 3; the third window would start in the pad


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_either_pad_clips_both_axes(make_layer, helpers, rng, method):
    # Caffe: 6x6, kernel 2, stride_h 2, stride_w 3, pad_h 1, pad_w 0 pools to 4x2 (W is clipped too)
    spec = pool_spec(pool=method, kernel_size=2, stride_h=2, stride_w=3, pad_h=1, pad_w=0)
    layer, tops = make_layer(spec, [(1, 2, 6, 6)])
    assert tops[0][2:] == (4, 2)
    y = layer.forward([helpers.spaced(rng, (1, 2, 6, 6))])[0]
    assert y.shape == (1, 2, 4, 2) and np.isfinite(y).all()


def test_ave_divisor_counts_padding_but_not_overhang(make_layer):
    x = np.ones((1, 1, 6, 6))
    layer, _ = make_layer(pool_spec(pool="AVE", kernel_size=3, stride=2), [x.shape])
    y = layer.forward([x])[0][0, 0]
    # last row/column windows hang over the unpadded edge: divided by the clipped size, so still 1
    np.testing.assert_allclose(y, np.ones((3, 3)))
    layer, _ = make_layer(pool_spec(pool="AVE", kernel_size=3, stride=2, pad=1), [x.shape])
    y = layer.forward([x])[0][0, 0]
    assert y[0, 0] == pytest.approx(4 / 9)  # the pad counts in the divisor


def test_max_ties_route_gradient_to_first_position(make_layer):
    x = np.zeros((1, 1, 2, 2))
    layer, _ = make_layer(pool_spec(pool="MAX", kernel_size=2, stride=2), [x.shape])
    layer.forward([x])
    dx = layer.backward([np.ones((1, 1, 1, 1))], [True])[0]
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_max_pool_ignores_padding_for_negative_inputs(make_layer):
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    layer, _ = make_layer(pool_spec(pool="MAX", kernel_size=3, stride=2, pad=1), [x.shape])
    y = layer.forward([x])[0]
    assert np.all(y < 0)  # zero padding never wins
    np.testing.assert_allclose(y, reference_pool(x, (3, 3), (2, 2), (1, 1), "MAX"))


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(make_layer, gradcheck, helpers, rng, method):
    shape = (2, 3, 4, 5)
    layer, tops = make_layer(pool_spec(pool=method, global_pooling=True), [shape])
    assert tops == [(2, 3, 1, 1)]
    x = helpers.spaced(rng, shape)
    y = layer.forward([x])[0]
    ref = x.max(axis=(2, 3)) if method == "MAX" else x.mean(axis=(2, 3))
    np.testing.assert_allclose(y[:, :, 0, 0], ref, rtol=1e-12)
    gradcheck(layer, [x])


def test_pooling_float32_keeps_dtype(make_layer, rng):
    x = rng.standard_normal((4, 8, 16, 16)).astype(np.float32)
    for method in ("MAX", "AVE"):
        layer, _ = make_layer(pool_spec(pool=method, kernel_size=3, stride=2), [x.shape], dtype="float32")
        y = layer.forward([x])[0]
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, reference_pool(x.astype(np.float64), (3, 3), (2, 2), (0, 0), method),
                                   rtol=1e-5, atol=1e-6)
        assert layer.backward([np.ones_like(y)], [True])[0].dtype == np.float32


@pytest.mark.parametrize("param, field", [
    ({"kernel_size": 3, "pad": 3}, "pad"),
    ({"pool": "STOCHASTIC", "kernel_size": 2}, "pool"),
    ({"pool": "MIN", "kernel_size": 2}, "pool"),
    ({"stride": 2}, "kernel_size"),
    ({"global_pooling": True, "kernel_size": 2}, "kernel_size"),
])
def test_pooling_config_errors(make_layer, param, field):
    with pytest.raises(ConfigError) as info:
        make_layer(pool_spec(**param), [(1, 1, 8, 8)])
    assert "'pool'" in str(info.value) and field in str(info.value)
