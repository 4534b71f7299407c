"""LRN kernels for _jit.py: plain loops over (N, H, W, C) views, compiled by numba.

``window_sum`` is the centred, zero-padded box sum of the numpy path (over channels,
or over a size x size spatial window), with every term added in the same order
(offset 0, -1, +1, -2, +2, ...; along W before H), so outputs equal the numpy path's
exactly.  The two finishing kernels fuse the element-wise tail of the forward and
backward passes (each a chain of numpy passes otherwise), rounding step by step as
numpy does.  ``mode`` picks scale^-beta: 0 beta 0.75, 1 beta 0.5, 2 beta 1, else a power.
"""
import numpy as np


def window_sum(a, out, size, across):
    n, h, w, c = a.shape
    row = np.empty((w, c), dtype=a.dtype)
    for b in range(n):
        for iy in range(h):
            total = out[b, iy]
            if across:
                for ix in range(w):
                    for ch in range(c):
                        total[ix, ch] = a[b, iy, ix, ch]
                    for k in range(1, size):
                        o = (k + 1) // 2 * (1 - 2 * (k % 2))
                        for ch in range(max(0, -o), min(c, c - o)):
                            total[ix, ch] += a[b, iy, ix, ch + o]
                continue
            for kh in range(size):
                ry = iy + (kh + 1) // 2 * (1 - 2 * (kh % 2))
                if ry < 0 or ry >= h:
                    continue
                # the W pass of source row ry, then added onto output row iy
                src = a[b, ry]
                target = total if kh == 0 else row
                for ix in range(w):
                    for ch in range(c):
                        target[ix, ch] = src[ix, ch]
                for kw in range(1, size):
                    o = (kw + 1) // 2 * (1 - 2 * (kw % 2))
                    for ix in range(max(0, -o), min(w, w - o)):
                        for ch in range(c):
                            target[ix, ch] += src[ix + o, ch]
                if kh > 0:
                    for ix in range(w):
                        for ch in range(c):
                            total[ix, ch] += row[ix, ch]


def finish_forward(x, scale, factor, y, coeff, shift, one, mode, neg_beta):
    n, h, w, c = x.shape
    for b in range(n):
        for iy in range(h):
            for ix in range(w):
                xs, s_out, f_out, y_out = x[b, iy, ix], scale[b, iy, ix], factor[b, iy, ix], y[b, iy, ix]
                for ch in range(c):
                    s = s_out[ch] * coeff
                    s = s + shift
                    s_out[ch] = s
                    if mode == 0:
                        r = one / np.sqrt(s)
                        f = r * np.sqrt(r)
                    elif mode == 1:
                        f = one / np.sqrt(s)
                    elif mode == 2:
                        f = one / s
                    else:
                        f = s ** neg_beta
                    f_out[ch] = f
                    y_out[ch] = xs[ch] * f


def finish_backward(dy, x, factor, acc, dx, coeff):
    n, h, w, c = dy.shape
    for b in range(n):
        for iy in range(h):
            for ix in range(w):
                g, xs, f, a, out = dy[b, iy, ix], x[b, iy, ix], factor[b, iy, ix], acc[b, iy, ix], dx[b, iy, ix]
                for ch in range(c):
                    t = a[ch] * xs[ch]
                    t = t * coeff
                    out[ch] = g[ch] * f[ch] - t
