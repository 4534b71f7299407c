"""ReLU: max(x, 0) + negative_slope * min(x, 0) (Caffe's ReLU, leaky when negative_slope != 0)."""
from ..backend import xp_of
from ._layout import batch_chunks, empty_like_layout
from ._threads import run_chunks
from ._util import number
from .layer import Layer
from .registry import register


def _chunks(xp, x):
    return batch_chunks(xp, x.shape[0], x[0].size if x.ndim else 1)


@register
class ReLU(Layer):
    type = "ReLU"

    def setup(self, bottom_shapes):
        self.negative_slope = number(self, "negative_slope", 0.0)
        return [tuple(bottom_shapes[0])]

    def forward(self, bottoms):
        x = bottoms[0]
        xp = xp_of(x)
        slope = self.negative_slope
        if slope == 0:
            # by chunks of images on the layer threads: a big activation is a pass through main memory
            y = empty_like_layout(x)
            run_chunks(xp, lambda n0, n1: xp.maximum(x[n0:n1], 0, out=y[n0:n1]), _chunks(xp, x))
            self._positive = None
            self._y = y  # y > 0 exactly where x > 0, so the output doubles as the mask
            return [y]
        y = xp.maximum(x, 0)
        y += xp.minimum(x, 0) * x.dtype.type(slope)
        self._positive = x > 0
        return [y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        if self._positive is None:
            xp, y = xp_of(dy), self._y
            dx = empty_like_layout(dy)
            # a product, not xp.where: far faster on numpy
            run_chunks(xp, lambda n0, n1: xp.multiply(dy[n0:n1], y[n0:n1] > 0, out=dx[n0:n1]), _chunks(xp, dy))
            return [dx]
        t = dy.dtype.type
        factor = self._positive * t(1.0 - self.negative_slope)
        factor += t(self.negative_slope)
        return [dy * factor]
