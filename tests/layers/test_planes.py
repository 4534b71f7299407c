"""NCHW plane columns: the same numbers as channels-last im2col, in Caffe's weight order; first layers use them."""
import numpy as np
import pytest

from minwa.layers import _im2col, _planes


@pytest.mark.parametrize(("kernel", "stride", "dilation", "pad"), [
    ((3, 3), (1, 1), (1, 1), (1, 1)),
    ((5, 5), (1, 1), (1, 1), (2, 2)),
    ((2, 3), (2, 1), (1, 2), (1, 0)),
    ((3, 2), (1, 3), (2, 1), (0, 2)),
    ((1, 1), (1, 1), (1, 1), (0, 0)),
])
def test_plane_columns_are_im2col_columns_in_caffe_order(rng, kernel, stride, dilation, pad):
    x = rng.standard_normal((4, 3, 7, 6))
    out_hw = tuple(_im2col.out_size(s, k, st, p, d) for s, k, st, p, d in zip((7, 6), kernel, stride, pad, dilation))
    cols = _planes.columns(x, 1, 3, kernel, stride, dilation, pad, out_hw)
    xpad = _im2col.pad_nhwc(x.transpose(0, 2, 3, 1), *pad)
    view = _im2col.patches(xpad, kernel, stride, dilation, out_hw)
    rows = 2 * out_hw[0] * out_hw[1]
    ref = _im2col.im2col(view, 1, 3, np.empty((rows, kernel[0] * kernel[1] * 3)))
    # im2col's columns are (kh, kw, C); the planes' rows are (C, kh, kw), as Caffe's weights are
    ref = ref.reshape(rows, kernel[0], kernel[1], 3).transpose(3, 1, 2, 0).reshape(-1, rows)
    np.testing.assert_array_equal(cols, ref)


def test_the_plane_path_is_chosen_by_shape_not_memory_layout(make_layer, rng, monkeypatch):
    """A layer gets the same bits from NCHW and channels-last input (the pipeline split relies on it)."""
    calls = []
    real = _planes.convolve
    monkeypatch.setattr(_planes, "convolve", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = {"type": "Convolution", "name": "conv", "convolution_param": {"num_output": 8, "kernel_size": 5, "pad": 2}}
    layer, _ = make_layer(spec, [(2, 3, 9, 9)])
    x = rng.standard_normal((2, 3, 9, 9))
    y = np.array(layer.forward([x])[0])
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # a convolution's output
    np.testing.assert_array_equal(layer.forward([channels_last])[0], y)
    assert calls == [1, 1]
    deep, _ = make_layer(dict(spec, convolution_param={"num_output": 8, "kernel_size": 5, "pad": 2}), [(2, 16, 9, 9)])
    deep.forward([rng.standard_normal((2, 16, 9, 9))])  # kernel rows 80 deep: the kernel-row path
    assert calls == [1, 1]
