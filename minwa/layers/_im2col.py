"""Channels-last im2col / col2im for 2-d convolution, vectorised over a chunk of images.

Images are (N, H, W, C) in memory.  ``patches`` is a strided view of every kernel
window, (N, OH, OW, kh, kw, C); copying it into a contiguous (N*OH*OW, kh*kw*C)
matrix is one array copy whose inner runs are whole kernel rows (kw*C values), so
no Python loop touches pixels.  ``col2im_add`` scatters columns back with one
strided add per kernel offset (kh*kw of them).
"""
from ..backend import xp_of
from . import _threads
from ._layout import batch_chunks


def out_size(size, kernel, stride, pad, dilation=1):
    """Caffe's convolution output size (floor)."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def pad_nhwc(x_nhwc, ph, pw):
    """A new zero-padded (N, H + 2 ph, W + 2 pw, C) contiguous copy of a channels-last array (or view).

    Copied by chunks of images on the layer threads (a convolution's input, or its output
    gradient, is tens of MB: one copy on one core showed as 4 ms of every cifar10_full step).
    """
    xp = xp_of(x_nhwc)
    n, h, w, c = x_nhwc.shape
    out = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
    _threads.run_chunks(xp, lambda n0, n1: write_padded(x_nhwc[n0:n1], out[n0:n1], ph, pw),
                        batch_chunks(xp, n, out[0].size))
    return out


def write_padded(x_nhwc, out, ph, pw):
    """Write (N, H, W, C) ``x_nhwc`` into the middle of ``out`` (N, H + 2 ph, W + 2 pw, C), zeros around it."""
    h, w = x_nhwc.shape[1], x_nhwc.shape[2]
    if ph:
        out[:, :ph] = 0
        out[:, ph + h:] = 0
    if pw:
        out[:, ph:ph + h, :pw] = 0
        out[:, ph:ph + h, pw + w:] = 0
    out[:, ph:ph + h, pw:pw + w] = x_nhwc


def patches(xpad, kernel, stride, dilation, out_hw, channels=None):
    """Strided view (N, OH, OW, kh, kw, Cg) of every window of ``xpad`` (N, Hp, Wp, C); no copy.

    ``channels`` is a (start, stop) range for grouped convolution.
    """
    xp = xp_of(xpad)
    if channels is not None:
        xpad = xpad[..., channels[0]:channels[1]]
    n, c = xpad.shape[0], xpad.shape[3]
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    s_n, s_h, s_w, s_c = xpad.strides
    if (oh - 1) * sh + (kh - 1) * dh >= xpad.shape[1] or (ow - 1) * sw + (kw - 1) * dw >= xpad.shape[2]:
        raise ValueError("window view would read outside the padded image")  # guards the strided view
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, oh, ow, kh, kw, c),
        strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))


def im2col(view, n0, n1, out):
    """Columns (images*OH*OW, kh*kw*Cg) of images n0:n1 of a ``patches`` view, written into ``out``.

    The view is built once per pass and sliced here, because building a strided
    view costs far more than slicing one.
    """
    chunk = view[n0:n1]
    out.reshape(chunk.shape)[...] = chunk
    return out


def col2im_add(cols, dxpad, kernel, stride, dilation, out_hw, channels=None):
    """Add columns (N*OH*OW, kh*kw*Cg) back onto the padded gradient ``dxpad`` (N, Hp, Wp, C)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n = dxpad.shape[0]
    if channels is not None:
        dxpad = dxpad[..., channels[0]:channels[1]]
    c = dxpad.shape[3]
    cols6 = cols.reshape(n, oh, ow, kh, kw, c)
    for i in range(kh):
        hi = i * dh
        for j in range(kw):
            wj = j * dw
            dxpad[:, hi:hi + sh * (oh - 1) + 1:sh, wj:wj + sw * (ow - 1) + 1:sw] += cols6[:, :, :, i, j]
    return dxpad
