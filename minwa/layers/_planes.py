"""Convolution by image planes, for layers with few input channels: a network's first layer above all.

The first convolution gets its input in NCHW memory with a few channels (3 for RGB).  Channels-last
im2col would copy it to a padded NHWC batch first (a pass of its own over main memory) and then copy
runs of only kw*C values (15 for a 5x5 kernel) per window.  Here each chunk pads its own images in
cache, as NCHW planes whatever its input's layout, and copies, for every kernel offset (c, i, j),
whole output rows (OW values) into columns (C*kh*kw, images*OH*OW).  Their row order is Caffe's
weight layout (O, C, kh, kw), so the GEMM reads the weights as they are (one small transposed copy),
and it reads the columns transposed, which BLAS does without a copy.  cifar10_full's conv1 forward,
batch 100, the layer alone, both paths taking turns (best of 15, five runs): 0.3-1.6 ms less at 1
thread (9.5-11.5 against 9.9-13.3 ms) and 0.2-0.8 ms less at 2.  The column copy alone takes 2.7 ms
against im2col's 4.1 (1 thread), while the GEMM on transposed columns is about 1 ms slower than on
im2col's (6.9 against 5.8).
"""
from ..backend import xp_of
from ._im2col import write_padded
from ._threads import run_chunks


def applies(x, group, kernel, depth_bound):
    """Whether a forward takes this path: numpy, ungrouped, a kernel of more than one tap, and kernel rows
    shallower than ``depth_bound`` (kw*C), where the kernel-row path (_kernel_rows.py) does not go.

    The choice depends on shapes only, never on how ``x`` lies in memory: the pipeline split's cloud
    half gets a layer's input as NCHW from the network where the whole net had it channels-last, and
    both must add up the same products in the same order (split equals unsplit bit for bit).
    """
    xp = xp_of(x)
    return (xp.__name__ == "numpy" and group == 1 and kernel[0] * kernel[1] > 1
            and kernel[1] * x.shape[1] < depth_bound)


def columns(x, n0, n1, kernel, stride, dilation, pad, out_hw):
    """Columns (C*kh*kw, images*OH*OW) of images n0:n1 of ``x`` (N, C, H, W; any memory order) zero-padded
    by ``pad`` (ph, pw)."""
    xp = xp_of(x)
    part = x[n0:n1]
    n, c, h, w = part.shape
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (oh, ow) = kernel, stride, dilation, pad, out_hw
    if ph or pw:
        padded = xp.empty((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        write_padded(part.transpose(0, 2, 3, 1), padded.transpose(0, 2, 3, 1), ph, pw)
        part = padded
    if (oh - 1) * sh + (kh - 1) * dh >= part.shape[2] or (ow - 1) * sw + (kw - 1) * dw >= part.shape[3]:
        raise ValueError("window view would read outside the padded image")  # guards the strided view
    s_n, s_c, s_h, s_w = part.strides
    view = xp.lib.stride_tricks.as_strided(part, shape=(c, kh, kw, n, oh, ow),
                                           strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw))
    cols = xp.empty(view.shape, dtype=x.dtype)
    cols[...] = view
    return cols.reshape(c * kh * kw, n * oh * ow)


def convolve(x, weight, y, chunks, kernel, stride, dilation, pad, finish):
    """``y`` (N, OH, OW, O) = the convolution of NCHW ``x`` with Caffe-layout ``weight`` (O, C, kh, kw),
    by chunks of images on the threads; ``finish(rows)`` runs on each chunk's (images*OH*OW, O) output."""
    xp = xp_of(x)
    o = weight.shape[0]
    wmat = xp.ascontiguousarray(weight.reshape(o, -1).T)  # (C*kh*kw, O), rows in the columns' order
    out_hw = y.shape[1:3]

    def chunk(n0, n1):
        cols = columns(x, n0, n1, kernel, stride, dilation, pad, out_hw)
        rows = y[n0:n1].reshape(-1, o)
        xp.matmul(cols.T, wmat, out=rows)
        finish(rows)

    run_chunks(xp, chunk, chunks)
