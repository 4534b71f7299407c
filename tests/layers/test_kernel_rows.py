"""The kernel-row convolution path gives what full im2col gives; ungrouped stride-1 layers take it."""
import numpy as np
import pytest

from minwa.layers import _im2col, _kernel_rows

SHAPES = [
    # (convolution_param, input shape): cifar10_full's conv1 and conv2 shapes, shrunk; dilation; ReLU folded in
    ({"num_output": 5, "kernel_size": 5, "pad": 2}, (3, 3, 9, 8)),
    ({"num_output": 4, "kernel_size": 3, "pad": 1}, (7, 6, 6, 6)),
    ({"num_output": 3, "kernel_h": 3, "kernel_w": 2, "stride_h": 1, "stride_w": 2, "dilation": 2, "pad": 2},
     (2, 4, 9, 10)),
]


def _pass(make_layer, rng, param, shape, relu):
    layer, _ = make_layer({"type": "Convolution", "convolution_param": param}, [shape])
    if relu:
        layer.fuse_relu()
    x = rng.standard_normal(shape)
    y = layer.forward([x])[0].copy()
    dx = layer.backward([rng.standard_normal(y.shape)], [True])[0].copy()
    return y, dx, layer.weight.grad.copy(), layer.bias.grad.copy()


def _count_calls(monkeypatch):
    calls = {"convolve": 0, "add_weight_grad": 0}
    for name in calls:
        real = getattr(_kernel_rows, name)

        def counted(*args, name=name, real=real):
            calls[name] += 1
            return real(*args)

        monkeypatch.setattr(_kernel_rows, name, counted)
    return calls


@pytest.mark.parametrize("param, shape", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_kernel_rows_match_full_im2col(make_layer, param, shape, relu, monkeypatch, kernel_path):
    monkeypatch.setattr(_kernel_rows, "MIN_FORWARD_DEPTH", 1)  # these small layers' forwards too
    calls = _count_calls(monkeypatch)
    rows = _pass(make_layer, np.random.default_rng(3), param, shape, relu)
    assert calls["convolve"] and calls["add_weight_grad"], "an ungrouped stride-1 layer takes the kernel-row path"
    monkeypatch.setattr(_kernel_rows, "applies", lambda *a: False)
    full = _pass(make_layer, np.random.default_rng(3), param, shape, relu)
    for got, want in zip(rows, full):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_kernel_rows_apply_only_where_they_pay():
    assert _kernel_rows.applies(np, 1, (5, 5), (1, 2))
    assert not _kernel_rows.applies(np, 2, (3, 3), (1, 1))  # grouped: im2col's per-group columns
    assert not _kernel_rows.applies(np, 1, (3, 3), (2, 1))  # vertical stride: the rows are not a shift
    assert not _kernel_rows.applies(np, 1, (1, 3), (1, 1))  # one kernel row: nothing to save


def test_row_window_view_refuses_to_read_outside_the_image():
    with pytest.raises(ValueError, match="outside"):
        _kernel_rows.row_windows(np.zeros((1, 4, 4, 2)), (3, 3), (1, 1), (1, 1), 3)


@pytest.mark.parametrize("kernel, stride, dilation, pad", [
    ((5, 5), (1, 1), (1, 1), (2, 2)), ((3, 2), (1, 2), (2, 2), (2, 1)), ((3, 3), (1, 1), (1, 1), (0, 0)),
    ((3, 3), (1, 3), (1, 1), (0, 4))])
@pytest.mark.parametrize("channels_last", [True, False])
def test_a_chunk_padded_in_cache_unrolls_as_the_padded_batch_does(kernel, stride, dilation, pad, channels_last):
    rng = np.random.default_rng(5)
    nchw = rng.standard_normal((5, 3, 7, 9)).astype(np.float32)
    x = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)) if channels_last else nchw.transpose(0, 2, 3, 1)
    out_w = _im2col.out_size(9, kernel[1], stride[1], pad[1], dilation[1])
    whole = _kernel_rows.row_windows(_im2col.pad_nhwc(x, *pad), kernel, stride, dilation, out_w)
    for n0, n1 in [(0, 5), (1, 3), (4, 5)]:
        got = _kernel_rows.unroll_padded(x, n0, n1, kernel, stride, dilation, pad, out_w)
        np.testing.assert_array_equal(got, _kernel_rows.unroll(whole, n0, n1))


def test_shallow_kernel_rows_keep_im2col_in_the_forward_only(make_layer, monkeypatch):
    calls = _count_calls(monkeypatch)  # calls are per chunk; these batches are one chunk each
    _pass(make_layer, np.random.default_rng(3), {"num_output": 4, "kernel_size": 5, "pad": 2}, (2, 3, 8, 8), False)
    assert calls == {"convolve": 0, "add_weight_grad": 1}  # depth 5*3 < 64; the input gradient's 5*4 too
    calls.update(convolve=0, add_weight_grad=0)
    _pass(make_layer, np.random.default_rng(3), {"num_output": 32, "kernel_size": 3, "pad": 1}, (2, 32, 6, 6), False)
    assert calls == {"convolve": 2, "add_weight_grad": 1}  # the forward (depth 3*32) and the input gradient

