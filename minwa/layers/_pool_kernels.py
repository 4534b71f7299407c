"""Pooling kernels for _jit.py: plain loops over (N, H, W, C) views, compiled by numba.

Windows follow Caffe: a window starts at ``o * stride - pad``, ends at most ``pad``
past the image, and is clipped to the image; ``rows`` (OH, 2) and ``cols`` (OW, 2) hold
each window's clipped [start, stop), computed once by the layer.  MAX keeps the first largest value in
row-major order (padding never wins; a NaN propagates, as in the numpy path) and
records its flat position ``row * W + col``; with ``relu`` (an in-place ReLU folded
in) a window whose maximum is not positive gives 0 and position -1, which backward
skips.  AVE divides the clipped window's sum by ``inv_area`` (the unclipped size's
reciprocal, given per output position).  The innermost loop runs over channels,
contiguous in channels-last memory.  The sums are taken in the numpy passes' order
(along W, then along H), so forward outputs equal the numpy path's exactly.
"""
import numpy as np


def max_forward(x, y, arg, rows, cols, relu):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for b in range(n):
        for oy in range(oh):
            y0, y1 = rows[oy, 0], rows[oy, 1]
            for ox in range(ow):
                x0, x1 = cols[ox, 0], cols[ox, 1]
                best = y[b, oy, ox]
                where = arg[b, oy, ox]
                for ch in range(c):
                    best[ch] = -np.inf
                    where[ch] = 0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        pixel = x[b, iy, ix]
                        flat = iy * w + ix
                        for ch in range(c):
                            v = pixel[ch]
                            better = v > best[ch] or v != v  # a NaN wins and stays, as numpy's maximum
                            best[ch] = v if better else best[ch]
                            where[ch] = flat if better else where[ch]
                if relu:  # a fused ReLU: nothing positive wins, nothing gets a gradient (a NaN stays)
                    for ch in range(c):
                        if best[ch] <= 0:
                            best[ch] = 0
                            where[ch] = -1


def max_backward(dy, arg, dx):
    n, oh, ow, c = dy.shape
    w = dx.shape[2]
    dx[...] = 0
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                g = dy[b, oy, ox]
                where = arg[b, oy, ox]
                for ch in range(c):
                    flat = where[ch]
                    if flat >= 0:
                        dx[b, flat // w, flat % w, ch] += g[ch]


def ave_forward(x, y, inv_area, rows, cols):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    row_sum = np.empty(c, dtype=x.dtype)
    for b in range(n):
        for oy in range(oh):
            y0, y1 = rows[oy, 0], rows[oy, 1]
            for ox in range(ow):
                x0, x1 = cols[ox, 0], cols[ox, 1]
                out = y[b, oy, ox]
                for ch in range(c):
                    out[ch] = 0
                for iy in range(y0, y1):
                    row = x[b, iy]
                    for ch in range(c):
                        row_sum[ch] = row[x0, ch]
                    for ix in range(x0 + 1, x1):
                        for ch in range(c):
                            row_sum[ch] += row[ix, ch]
                    for ch in range(c):
                        out[ch] += row_sum[ch]
                scale = inv_area[oy, ox]
                for ch in range(c):
                    out[ch] *= scale


def ave_backward(dy, inv_area, dx, rows, cols):
    n, oh, ow, c = dy.shape
    dx[...] = 0
    for b in range(n):
        for oy in range(oh):
            y0, y1 = rows[oy, 0], rows[oy, 1]
            for ox in range(ow):
                x0, x1 = cols[ox, 0], cols[ox, 1]
                g = dy[b, oy, ox]
                scale = inv_area[oy, ox]
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        target = dx[b, iy, ix]
                        for ch in range(c):
                            target[ch] += g[ch] * scale
