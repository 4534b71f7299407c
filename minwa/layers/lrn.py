"""LRN: local response normalisation, y = x / scale^beta (Caffe's LRN).

ACROSS_CHANNELS: scale = k + alpha / n * (sum of x^2 over n neighbouring channels).
WITHIN_CHANNEL:  scale = 1 + alpha / n^2 * (sum of x^2 over an n x n spatial window);
as in Caffe this mode ignores k (its power layer's shift is fixed at 1).
Windows are centred and zero-padded; local_size must be odd.  The window sums are
separable box sums, one pass per offset, so nothing loops over pixels.
"""
from ..backend import xp_of
from . import _jit, _lrn_kernels
from ._layout import batch_chunks, empty_like_layout, nhwc_view
from ._threads import run_chunks
from ._util import choice, four_d, number
from .layer import Layer
from .registry import register

REGIONS = ("ACROSS_CHANNELS", "WITHIN_CHANNEL")


def _box_sum(a, size, axis):
    """Centred, zero-padded sum of ``size`` neighbours along ``axis`` (size odd); a new array."""
    out = a.copy(order="K")
    n = a.shape[axis]
    for o in range(1, min((size - 1) // 2, n - 1) + 1):
        head = [slice(None)] * a.ndim
        tail = [slice(None)] * a.ndim
        head[axis], tail[axis] = slice(o, None), slice(None, n - o)
        out[tuple(head)] += a[tuple(tail)]  # neighbour o places before
        out[tuple(tail)] += a[tuple(head)]  # neighbour o places after
    return out


def _power_neg(scale, beta):
    """scale ** -beta, with a fast path for Caffe's usual beta 0.75."""
    xp = xp_of(scale)
    if beta == 0.75:
        r = 1 / xp.sqrt(scale)
        return r * xp.sqrt(r)
    if beta == 0.5:
        return 1 / xp.sqrt(scale)
    if beta == 1.0:
        return 1 / scale
    return scale ** -beta


@register
class LRN(Layer):
    type = "LRN"

    def setup(self, bottom_shapes):
        shape = four_d(self, bottom_shapes[0])
        self.size = number(self, "local_size", 5, int, minimum=1)
        if self.size % 2 == 0:
            raise self.error(f"local_size must be odd, got {self.size}", "local_size")
        self.alpha = number(self, "alpha", 1.0)
        self.beta = number(self, "beta", 0.75)
        self.k = number(self, "k", 1.0)
        self.region = choice(self, "norm_region", "ACROSS_CHANNELS", REGIONS)
        return [shape]

    def _window_sum(self, a):
        if self.region == "ACROSS_CHANNELS":
            return _box_sum(a, self.size, 1)
        return _box_sum(_box_sum(a, self.size, 3), self.size, 2)

    def _coeff(self):
        n = self.size if self.region == "ACROSS_CHANNELS" else self.size * self.size
        return self.alpha / n

    def _power_mode(self):
        """The finishing kernels' choice of scale^-beta (see _lrn_kernels.py)."""
        return {0.75: 0, 0.5: 1, 1.0: 2}.get(self.beta, 3)

    def forward(self, bottoms):
        x = bottoms[0]
        xp = xp_of(x)
        t = x.dtype.type
        y = empty_like_layout(x)
        scale = empty_like_layout(x)
        factor = empty_like_layout(x)
        shift = t(self.k if self.region == "ACROSS_CHANNELS" else 1.0)
        window, finish = _jit.kernel(_lrn_kernels.window_sum, xp), _jit.kernel(_lrn_kernels.finish_forward, xp)
        self._compiled = window is not None
        across = self.region == "ACROSS_CHANNELS"
        views = [nhwc_view(a) for a in (x, y, scale, factor)]

        # one cache-sized chunk of images at a time: the dozen passes below then run from cache
        def chunk(n0, n1):
            xs = x[n0:n1]
            s = self._window_sum(xs * xs)
            s *= t(self._coeff())
            s += shift
            scale[n0:n1] = s
            f = _power_neg(s, self.beta)
            factor[n0:n1] = f
            xp.multiply(xs, f, out=y[n0:n1])

        def compiled_chunk(n0, n1):
            xs, ys, ss, fs = (v[n0:n1] for v in views)
            window(xs * xs, ss, self.size, across)
            finish(xs, ss, fs, ys, t(self._coeff()), shift, t(1), self._power_mode(), t(-self.beta))

        run_chunks(xp, compiled_chunk if self._compiled else chunk, batch_chunks(xp, x.shape[0], x[0].size))
        self._x, self._y, self._scale, self._factor = x, y, scale, factor
        return [y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        xp = xp_of(dy)
        t = dy.dtype.type
        x, y, scale, factor = self._x, self._y, self._scale, self._factor
        dx = empty_like_layout(dy)
        coeff = t(2.0 * self._coeff() * self.beta)
        # d/dx_i: dy_i * scale_i^-beta - 2 alpha beta / n * x_i * sum_{windows o containing i} dy_o y_o / scale_o
        # the centred window is symmetric, so that sum is the same window sum again.
        def chunk(n0, n1):
            g = dy[n0:n1]
            ratio = g * y[n0:n1]
            ratio /= scale[n0:n1]
            acc = self._window_sum(ratio)
            acc *= x[n0:n1]
            acc *= coeff
            out = dx[n0:n1]
            xp.multiply(g, factor[n0:n1], out=out)
            out -= acc

        views = [nhwc_view(a) for a in (dy, x, y, scale, factor, dx)]
        across = self.region == "ACROSS_CHANNELS"
        if self._compiled:
            window, finish = _jit.compiled(_lrn_kernels.window_sum), _jit.compiled(_lrn_kernels.finish_backward)

        def compiled_chunk(n0, n1):
            g, xs, ys, ss, fs, out = (v[n0:n1] for v in views)
            ratio = g * ys
            ratio /= ss
            acc = xp.empty_like(ratio)
            window(ratio, acc, self.size, across)
            finish(g, xs, fs, acc, out, coeff)

        chunk = compiled_chunk if self._compiled else chunk
        run_chunks(xp, chunk, batch_chunks(xp, dy.shape[0], dy[0].size))
        return [dx]
