"""The compiled pooling, LRN and convolution kernels (_jit.py) against the numpy passes they replace.

On the layouts a net really hands them (channels-last memory from a convolution, and
plain NCHW), in float32: forward outputs are bit-identical to the numpy path, gradients
agree to rounding (their sums meet in another order), and neither depends on the
number of threads.  The Caffe-semantics tests of test_pooling.py and test_lrn.py run
on both paths too (conftest.kernel_path).
"""
import numpy as np
import pytest

pytest.importorskip("numba")

POOLS = [
    {"pool": "MAX", "kernel_size": 3, "stride": 2},
    {"pool": "MAX", "kernel_size": 3, "stride": 2, "pad": 1},
    {"pool": "MAX", "kernel_h": 2, "kernel_w": 3, "stride_h": 1, "stride_w": 2},
    {"pool": "AVE", "kernel_size": 3, "stride": 2},
    {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1},
]
LRNS = [
    {"local_size": 3, "alpha": 5e-05, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"},
    {"local_size": 5, "alpha": 1e-4, "beta": 0.75, "norm_region": "ACROSS_CHANNELS"},
    {"local_size": 5, "alpha": 0.5, "beta": 0.6, "k": 2.0, "norm_region": "ACROSS_CHANNELS"},
    {"local_size": 3, "alpha": 0.3, "beta": 1.0, "norm_region": "WITHIN_CHANNEL"},
]


def _input(rng, channels_last, shape=(5, 6, 11, 9)):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, :3, :3] = 1.5  # ties: the first position in row-major order must win on both paths
    if channels_last:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x


def _run(make_layer, monkeypatch, spec, x, dy, path, threads="2"):
    monkeypatch.setenv("MINWA_NUMBA", "1" if path == "numba" else "0")
    monkeypatch.setenv("MINWA_THREADS", threads)
    layer, _ = make_layer(spec, [x.shape], dtype="float32")
    y = layer.forward([x])[0]
    dx = layer.backward([dy], [True])[0]
    return np.array(y), np.array(dx)


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels-last", "nchw"])
@pytest.mark.parametrize("spec", [{"type": "Pooling", "pooling_param": p} for p in POOLS]
                         + [{"type": "LRN", "lrn_param": p} for p in LRNS],
                         ids=lambda spec: "-".join(str(v) for v in list(spec.values())[1].values()))
def test_compiled_kernels_match_the_numpy_passes(make_layer, monkeypatch, rng, spec, channels_last):
    x = _input(rng, channels_last)
    layer, tops = make_layer(spec, [x.shape], dtype="float32")
    dy = rng.standard_normal(tops[0]).astype(np.float32)
    y_numpy, dx_numpy = _run(make_layer, monkeypatch, spec, x, dy, "numpy")
    y_jit, dx_jit = _run(make_layer, monkeypatch, spec, x, dy, "numba")
    exact_forward = spec["type"] == "Pooling" or spec["lrn_param"]["beta"] in (0.75, 0.5, 1.0)
    if exact_forward:
        np.testing.assert_array_equal(y_jit, y_numpy)
    else:  # a general power: numba's and numpy's pow may differ in the last bit
        np.testing.assert_allclose(y_jit, y_numpy, rtol=5e-7)
    np.testing.assert_allclose(dx_jit, dx_numpy, rtol=1e-6, atol=1e-6)
    for threads in ("1", "3"):
        y_t, dx_t = _run(make_layer, monkeypatch, spec, x, dy, "numba", threads)
        np.testing.assert_array_equal(y_t, y_jit)
        np.testing.assert_array_equal(dx_t, dx_jit)


CONVS = [  # (input shape, convolution_param): batch chunks, and one chunk split by output-channel blocks
    ((6, 3, 12, 10), {"num_output": 8, "kernel_size": 5, "pad": 2}),
    ((4, 5, 9, 9), {"num_output": 6, "kernel_size": 3, "stride": 2, "bias_term": False}),
    ((2, 8, 4, 4), {"num_output": 256, "kernel_size": 3, "pad": 1}),
]


def _conv(make_layer, monkeypatch, shape, param, relu, path, threads="2"):
    monkeypatch.setenv("MINWA_NUMBA", "1" if path == "numba" else "0")
    monkeypatch.setenv("MINWA_THREADS", threads)
    monkeypatch.setattr("minwa.layers.convolution.CHUNK_ELEMENTS", 1 << 11)  # several chunks per batch
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    layer, tops = make_layer({"type": "Convolution", "convolution_param": param}, [shape], dtype="float32")
    if relu:
        layer.fuse_relu()
    y = np.array(layer.forward([x])[0])
    dy = rng.standard_normal(tops[0]).astype(np.float32)
    dx = np.array(layer.backward([dy], [True])[0])
    return [y, dx] + [np.array(p.grad) for p in layer.params]


@pytest.mark.parametrize("relu", [False, True], ids=["plain", "fused-relu"])
@pytest.mark.parametrize("shape, param", CONVS, ids=["chunks", "stride-2-no-bias", "channel-blocks"])
def test_convolution_kernels_match_the_numpy_passes(make_layer, monkeypatch, shape, param, relu):
    """Bias + ReLU after the GEMM, and the ReLU mask with the bias gradient before it, in one pass each."""
    numpy_values = _conv(make_layer, monkeypatch, shape, param, relu, "numpy")
    jit_values = _conv(make_layer, monkeypatch, shape, param, relu, "numba")
    np.testing.assert_array_equal(jit_values[0], numpy_values[0])  # the same adds, in the same order
    if relu:
        assert (jit_values[0] == 0).any() and (jit_values[0] >= 0).all()
    for got, want in zip(jit_values[1:], numpy_values[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for threads in ("1", "3"):
        for got, want in zip(_conv(make_layer, monkeypatch, shape, param, relu, "numba", threads), jit_values):
            np.testing.assert_array_equal(got, want)


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima(make_layer, monkeypatch):
    monkeypatch.setenv("MINWA_NUMBA", "1")
    x = np.ones((1, 1, 3, 3), dtype=np.float32)
    layer, _ = make_layer({"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 3}}, [x.shape],
                          dtype="float32")
    layer.forward([x])
    dx = layer.backward([np.full((1, 1, 1, 1), 2.0, dtype=np.float32)], [True])[0]
    expected = np.zeros((1, 1, 3, 3), dtype=np.float32)
    expected[0, 0, 0, 0] = 2.0
    np.testing.assert_array_equal(dx, expected)


def test_minwa_numba_0_turns_the_kernels_off(make_layer, monkeypatch, rng):
    from minwa.layers import _jit, _relu_kernels

    monkeypatch.setenv("MINWA_NUMBA", "0")
    assert _jit.kernel(_relu_kernels.mask_by_positive, np) is None
    monkeypatch.setenv("MINWA_NUMBA", "1")
    assert _jit.kernel(_relu_kernels.mask_by_positive, np) is not None


@pytest.mark.parametrize("path", ["numpy", "numba"])
def test_a_nan_in_a_window_comes_out_of_max_pooling(make_layer, monkeypatch, path):
    """A diverged net's NaN must reach the loss (and the trainer's NaN check), not vanish in a max."""
    monkeypatch.setenv("MINWA_NUMBA", "1" if path == "numba" else "0")
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    layer, _ = make_layer({"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
                          [x.shape], dtype="float32")
    y = layer.forward([x])[0]
    assert np.isnan(y[0, 0, 0, 0])
    assert y[0, 0, 1, 1] == 15


@pytest.mark.parametrize("path", ["numpy", "numba"])
def test_relu_backward_mask_keeps_numpy_semantics(monkeypatch, path):
    """The compiled mask equals ``g * (y > 0)``, NaN and inf gradients included; any layout pair works."""
    from minwa.layers.relu import relu_mask

    monkeypatch.setenv("MINWA_NUMBA", "1" if path == "numba" else "0")
    rng = np.random.default_rng(3)
    g = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    y = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    g[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    y[0, 0, 0, :3] = -1.0  # masked off: numpy's product gives NaN for all three
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN on purpose
        expected = g * (y > 0)
        np.testing.assert_array_equal(relu_mask(g, y), expected)
        last = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(relu_mask(last, y), expected)  # different layouts: the product path
        both = np.ascontiguousarray(y.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        out = relu_mask(last, both)
        assert out.strides == last.strides
        np.testing.assert_array_equal(out, expected)
