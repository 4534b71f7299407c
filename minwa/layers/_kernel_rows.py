"""Convolution by kernel rows: unroll each window over one kernel row, then one GEMM per kernel row.

Full im2col copies every input value kh*kw times.  When the vertical stride is 1, the
columns of kernel row i are those of kernel row 0 moved down by i*dilation image rows.
So a chunk's images are unrolled over (kw, C) only, into (images, Hp, OW, kw*C): a copy
kh times smaller.  Kernel row i's GEMM then reads rows i*dh : i*dh + OH of it in place,
and the kh products are summed while the chunk is in cache.  The GEMMs keep their
shape class (kw*C deep instead of kh*kw*C; a 32-wide product runs as fast at depth 160
as at 800 with OpenBLAS), so the work saved is the copy.  Measured in cifar10_full's
training step at 1 thread, batch 100 (forward / backward): conv1 8.7 / 9.4 -> 7.6 / 7.0 ms,
conv2 15.5 / 29.1 -> 14.2 / 27.4 ms, conv3 6.4 / 14.4 -> 4.9 / 11.7 ms.
"""
from ..backend import xp_of
from ._im2col import write_padded

#: the forward takes this path only for kernel rows at least this deep (kw*C).  Shallow rows make each
#: output be written kh times by small GEMMs and sums: cifar10_full's conv1 (5x5, C = 3, depth 15) took
#: 6.6 ms by rows against 7.8 by im2col at 1 thread, but 5.6 against 4.5 ms at 2 threads, while conv2
#: (depth 160) gains at both.  conv1's weight gradient gains at both, so the weight gradient has no bound.
MIN_FORWARD_DEPTH = 64


def applies(xp, group, kernel, stride):
    """Whether a layer's chunks take this path: numpy, ungrouped, vertical stride 1, kernel taller than 1.

    On a GPU one im2col GEMM per layer is best; grouped layers keep im2col's per-group columns.
    """
    return xp.__name__ == "numpy" and group == 1 and stride[0] == 1 and kernel[0] > 1


def row_windows(xpad, kernel, stride, dilation, out_w):
    """Strided view (N, Hp, OW, kw, C) of every kernel-row window of ``xpad`` (N, Hp, Wp, C); no copy."""
    xp = xp_of(xpad)
    n, hp, wp, c = xpad.shape
    kw, sw, dw = kernel[1], stride[1], dilation[1]
    if (out_w - 1) * sw + (kw - 1) * dw >= wp:
        raise ValueError("row window view would read outside the padded image")  # guards the strided view
    s_n, s_h, s_w, s_c = xpad.strides
    return xp.lib.stride_tricks.as_strided(xpad, shape=(n, hp, out_w, kw, c),
                                           strides=(s_n, s_h, s_w * sw, s_w * dw, s_c))


def unroll(view, n0, n1):
    """Images n0:n1 of a ``row_windows`` view as a new contiguous (images, Hp, OW, kw*C) array."""
    xp = xp_of(view)
    chunk = view[n0:n1]
    rows = xp.empty(chunk.shape, dtype=chunk.dtype)
    rows[...] = chunk
    n, hp, ow, kw, c = chunk.shape
    return rows.reshape(n, hp, ow, kw * c)


def unroll_padded(x, n0, n1, kernel, stride, dilation, pad, out_w):
    """Images n0:n1 of channels-last ``x`` (N, H, W, C), zero-padded by ``pad`` (ph, pw), unrolled as
    ``unroll`` does: (images, H + 2 ph, OW, kw*C).

    The chunk is padded into a small buffer that stays in cache.  Padding the whole batch first is a
    pass of its own over main memory that does not speed up with threads (measured at 1 thread on
    cifar10_full's conv2: pad + unroll 1.77 ms a batch, padded per chunk 1.11 ms).
    """
    xp = xp_of(x)
    ph, pw = pad
    part = x[n0:n1]
    if ph or pw:
        n, h, w, c = part.shape
        padded = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
        write_padded(part, padded, ph, pw)
        part = padded
    return unroll(row_windows(part, kernel, stride, dilation, out_w), 0, n1 - n0)


def _kernel_row(rows, i, dh, out_h):
    """The (images, OH*OW, kw*C) columns of kernel row ``i``: a view, each image's block contiguous."""
    n, _, ow, width = rows.shape
    return rows[:, i * dh:i * dh + out_h].reshape(n, out_h * ow, width)


def convolve(rows, wrows, out, dh, out_h):
    """``out`` (images, OH*OW, O) = the sum over kernel rows i of columns_i @ ``wrows[i]`` (kw*C, O)."""
    xp = xp_of(rows)
    xp.matmul(_kernel_row(rows, 0, dh, out_h), wrows[0], out=out)
    if len(wrows) > 1:
        product = xp.empty_like(out)
        for i in range(1, len(wrows)):
            xp.matmul(_kernel_row(rows, i, dh, out_h), wrows[i], out=product)
            out += product


def add_weight_grad(rows, dy, acc, dh, out_h):
    """``acc[i]`` (kw*C, O) += columns_i^T @ ``dy`` summed over the chunk's images, for each kernel row i.

    ``dy`` is (images, OH*OW, O).  Images are summed in order, so the result depends only on the chunk.
    """
    xp = xp_of(rows)
    n = rows.shape[0]
    product = xp.empty((n,) + acc.shape[1:], dtype=acc.dtype) if n > 1 else None
    for i in range(acc.shape[0]):
        cols = _kernel_row(rows, i, dh, out_h)
        if product is None:
            acc[i] += cols[0].T @ dy[0]
        else:
            xp.matmul(cols.transpose(0, 2, 1), dy, out=product)
            acc[i] += product.sum(axis=0)
