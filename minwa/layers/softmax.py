"""Softmax along one axis (Caffe's Softmax, softmax_param.axis, default 1)."""
from ..backend import xp_of
from ._util import canonical_axis
from .layer import Layer
from .registry import register


def softmax(x, axis):
    """exp(x - max) / sum, along ``axis``; a new array."""
    xp = xp_of(x)
    e = x - x.max(axis=axis, keepdims=True)
    xp.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


@register
class Softmax(Layer):
    type = "Softmax"

    def setup(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        self.axis = canonical_axis(self, self.option("axis", 1), len(shape))
        return [shape]

    def forward(self, bottoms):
        self._y = softmax(bottoms[0], self.axis)
        return [self._y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        y = self._y
        return [y * (dy - (dy * y).sum(axis=self.axis, keepdims=True))]
