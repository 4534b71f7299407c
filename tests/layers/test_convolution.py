"""Convolution against a direct loop reference and scipy, with groups, stride, padding and dilation."""
import numpy as np
import pytest

from minwa.errors import ConfigError, ShapeError


def reference_conv(x, w, b, stride, pad, group, dilation=(1, 1)):
    """Caffe's convolution written as loops over output positions."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    og = o // group
    y = np.zeros((n, o, oh, ow))
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                           j * sw:j * sw + dw * (kw - 1) + 1:dw]
                y[:, oc, i, j] = np.tensordot(patch, w[oc], axes=3) + (b[oc] if b is not None else 0)
    return y


def conv_spec(**param):
    return {"type": "Convolution", "name": "conv", "convolution_param": param}


CASES = [
    {"num_output": 4, "kernel_size": 3},
    {"num_output": 4, "kernel_size": 3, "pad": 1, "stride": 2},
    {"num_output": 6, "kernel_size": 3, "pad": 1, "group": 2},
    {"num_output": 3, "kernel_h": 2, "kernel_w": 3, "stride_h": 2, "stride_w": 1, "pad_h": 1, "pad_w": 0,
     "bias_term": False},
    {"num_output": 2, "kernel_size": 2, "dilation": 2, "pad": 1},
    {"num_output": 4, "kernel_size": [3, 1], "stride": [1, 2], "pad": [0, 1], "group": 4},
    {"num_output": 2, "kernel_size": 1, "pad": 1},  # stride 1 but pad > kernel - 1: the col2im path
    # the kernel-row path with a horizontal stride, a vertical dilation and a kernel wider than tall
    {"num_output": 3, "kernel_size": [2, 3], "stride": [1, 2], "dilation": [2, 1], "pad": [1, 1]},
]


@pytest.mark.parametrize("param", CASES)
def test_convolution_matches_loop_reference(make_layer, rng, param, kernel_path):
    shape = (2, 4, 7, 6)
    layer, tops = make_layer(conv_spec(**param), [shape])
    x = rng.standard_normal(shape)
    y = layer.forward([x])[0]
    bias = layer.bias.data if layer.bias is not None else None
    ref = reference_conv(x, layer.weight.data, bias, layer.stride, layer.pad, layer.group, layer.dilation)
    assert y.shape == ref.shape == tops[0]
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("param", CASES)
def test_convolution_gradients(make_layer, gradcheck, rng, param, kernel_path):
    shape = (2, 4, 5, 5)
    layer, _ = make_layer(conv_spec(**param), [shape], param_scale=0.7)
    gradcheck(layer, [rng.standard_normal(shape)])


def test_convolution_matches_scipy_correlate(make_layer, rng):
    signal = pytest.importorskip("scipy.signal")
    layer, _ = make_layer(conv_spec(num_output=2, kernel_size=3), [(1, 3, 9, 8)])
    x = rng.standard_normal((1, 3, 9, 8))
    y = layer.forward([x])[0]
    for oc in range(2):
        ref = signal.correlate(x[0], layer.weight.data[oc], mode="valid")[0] + layer.bias.data[oc]
        np.testing.assert_allclose(y[0, oc], ref, rtol=1e-10, atol=1e-12)


def test_convolution_batch_is_chunked_without_changing_results(make_layer, rng, monkeypatch):
    from minwa.layers import convolution

    layer, _ = make_layer(conv_spec(num_output=3, kernel_size=3, pad=1, group=1), [(5, 2, 6, 6)])
    x = rng.standard_normal((5, 2, 6, 6))
    dy = rng.standard_normal((5, 3, 6, 6))
    whole_y = layer.forward([x])[0]
    whole_dx = layer.backward([dy], [True])[0]
    whole_dw = layer.weight.grad.copy()
    monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)  # one image per chunk
    monkeypatch.setattr(convolution, "BLAS_THREADED_CHUNK_ELEMENTS", 1)
    np.testing.assert_allclose(layer.forward([x])[0], whole_y, rtol=1e-12)
    np.testing.assert_allclose(layer.backward([dy], [True])[0], whole_dx, rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, whole_dw, rtol=1e-12)


def test_convolution_float32_and_batch_change(make_layer, rng):
    layer, _ = make_layer(conv_spec(num_output=4, kernel_size=5, pad=2), [(8, 3, 12, 12)], dtype="float32")
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)  # a smaller batch than declared
    y = layer.forward([x])[0]
    assert y.dtype == np.float32 and y.shape == (3, 4, 12, 12)
    ref = reference_conv(x.astype(np.float64), layer.weight.data.astype(np.float64),
                         layer.bias.data.astype(np.float64), (1, 1), (2, 2), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    dx = layer.backward([np.ones_like(y)], [True])[0]
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert layer.weight.grad.dtype == np.float32 and layer.bias.grad.dtype == np.float32


def test_convolution_shapes_params_and_flops(make_layer):
    spec = conv_spec(num_output=32, kernel_size=5, pad=2, stride=1)
    layer, tops = make_layer(spec, [(100, 3, 32, 32)], param_scale=None)
    assert tops == [(100, 32, 32, 32)]
    assert layer.weight.shape == (32, 3, 5, 5) and layer.bias.shape == (32,)
    assert np.all(layer.weight.data == 0) and np.all(layer.bias.data == 0)  # Caffe's default fillers
    assert layer.flops([(100, 3, 32, 32)], tops) == 2 * 100 * 32 * 32 * 32 * 3 * 25
    layer, tops = make_layer(conv_spec(num_output=96, kernel_size=11, stride=4), [(1, 3, 227, 227)])
    assert tops == [(1, 96, 55, 55)]  # AlexNet conv1
    layer, tops = make_layer(conv_spec(num_output=256, kernel_size=5, pad=2, group=2), [(1, 96, 27, 27)])
    assert tops == [(1, 256, 27, 27)] and layer.weight.shape == (256, 48, 5, 5)


def test_convolution_no_input_gradient_when_not_needed(make_layer, rng):
    layer, _ = make_layer(conv_spec(num_output=2, kernel_size=3), [(1, 1, 4, 4)])
    layer.forward([rng.standard_normal((1, 1, 4, 4))])
    assert layer.backward([np.ones((1, 2, 2, 2))], [False]) == [None]
    assert layer.weight.grad.shape == (2, 1, 3, 3)


@pytest.mark.parametrize("param, field", [
    ({"kernel_size": 3}, "num_output"),
    ({"num_output": 4}, "kernel_size"),
    ({"num_output": 4, "kernel_size": 3, "group": 3}, "group"),
    ({"num_output": 3, "kernel_size": 3, "group": 2}, "group"),
    ({"num_output": 4, "kernel_size": 3, "stride": 0}, "stride"),
    ({"num_output": 4, "kernel_size": 3, "kernel_h": 3, "kernel_w": 3}, "kernel_size"),
    ({"num_output": 4, "kernel_size": [3, 3, 3]}, "kernel_size"),
])
def test_convolution_config_errors_name_layer_and_field(make_layer, param, field):
    with pytest.raises(ConfigError) as info:
        make_layer(conv_spec(**param), [(1, 4, 8, 8)])
    assert "'conv'" in str(info.value) and field in str(info.value)


def test_convolution_shape_errors(make_layer):
    with pytest.raises(ShapeError, match="'conv'"):
        make_layer(conv_spec(num_output=2, kernel_size=9), [(1, 4, 8, 8)])
    with pytest.raises(ShapeError, match="4-d"):
        make_layer(conv_spec(num_output=2, kernel_size=3), [(4, 8, 8)])
    layer, _ = make_layer(conv_spec(num_output=2, kernel_size=3), [(1, 4, 8, 8)])
    with pytest.raises(ShapeError, match="expected \\(N, 4, H, W\\)"):
        layer.forward([np.zeros((1, 3, 8, 8))])
