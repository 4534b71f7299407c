"""ReLU: max(x, 0) + negative_slope * min(x, 0) (Caffe's ReLU, leaky when negative_slope != 0)."""
from ..backend import xp_of
from .layer import Layer
from .registry import register
from ._util import number


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
            y = xp.maximum(x, 0)
            self._positive = None
            self._y = y  # y > 0 exactly where x > 0, so the output doubles as the mask
        else:
            positive = x > 0
            y = xp.where(positive, x, x * x.dtype.type(slope))
            self._positive = positive
            self._y = None
        return [y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        xp = xp_of(dy)
        if self._positive is None:
            return [xp.where(self._y > 0, dy, dy.dtype.type(0))]
        return [xp.where(self._positive, dy, dy * dy.dtype.type(self.negative_slope))]
