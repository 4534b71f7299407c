"""ReLU: max(x, 0) + negative_slope * min(x, 0) (Caffe's ReLU, leaky when negative_slope != 0)."""
from ..backend import xp_of
from . import _jit, _relu_kernels
from ._layout import flat_in_memory_order
from ._util import number
from .layer import Layer
from .registry import register


def relu_mask(g, y):
    """``g`` where ``y > 0``, else 0: a ReLU's backward (``y`` its output, or its input).

    One compiled pass where the two share a contiguous memory order (see _jit.py), else a
    product (not xp.where: far faster on numpy)."""
    xp = xp_of(g)
    kernel = _jit.kernel(_relu_kernels.mask_by_positive, xp)
    flat = flat_in_memory_order(g) if kernel is not None and g.strides == y.strides and g.dtype == y.dtype else None
    if flat is None:
        return g * (y > 0)
    out = xp.empty_like(g)  # same strides as g
    kernel(flat, flat_in_memory_order(y), flat_in_memory_order(out))
    return out


@register
class ReLU(Layer):
    type = "ReLU"
    #: the layer that writes this ReLU's blob applies it instead (minwa/relu_fusion.py): pass through
    fused_into = None

    def setup(self, bottom_shapes):
        self.negative_slope = number(self, "negative_slope", 0.0)
        return [tuple(bottom_shapes[0])]

    def forward(self, bottoms):
        x = bottoms[0]
        if self.fused_into is not None:
            return [x]
        xp = xp_of(x)
        slope = self.negative_slope
        y = xp.maximum(x, 0)
        if slope == 0:
            self._positive = None
            self._y = y  # y > 0 exactly where x > 0, so the output doubles as the mask
            return [y]
        y += xp.minimum(x, 0) * x.dtype.type(slope)
        self._positive = x > 0
        return [y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        if self.fused_into is not None:
            return [dy]
        if self._positive is None:
            return [relu_mask(dy, self._y)]
        t = dy.dtype.type
        factor = self._positive * t(1.0 - self.negative_slope)
        factor += t(self.negative_slope)
        return [dy * factor]
