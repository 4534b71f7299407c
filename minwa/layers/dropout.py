"""Dropout: zero each value with probability dropout_ratio in TRAIN (Caffe's Dropout).

Kept values are scaled by 1 / (1 - ratio) during training ("inverted" dropout, as
Caffe does), so TEST is the identity.  The mask comes from ``self.rng``, a numpy
Generator the Net seeds per layer; a layer used alone seeds one from its name.
"""
import zlib

from ..backend import xp_of
from ._layout import physical_order
from ._util import number
from .layer import Layer
from .registry import register


@register
class Dropout(Layer):
    type = "Dropout"

    def __init__(self, spec, phase="TRAIN"):
        super().__init__(spec, phase)
        self.rng = None  # set by the Net; a Generator with .random(shape, dtype=...)

    def setup(self, bottom_shapes):
        self.ratio = number(self, "dropout_ratio", 0.5)
        if not 0.0 <= self.ratio < 1.0:
            raise self.error(f"must be in [0, 1), got {self.ratio}", "dropout_ratio")
        return [tuple(bottom_shapes[0])]

    def _generator(self, xp):
        if self.rng is None:
            self.rng = xp.random.default_rng(zlib.crc32(self.name.encode()))
        return self.rng

    def forward(self, bottoms):
        x = bottoms[0]
        if self.phase != "TRAIN" or self.ratio == 0.0:
            self._multiplier = None
            return [x]
        xp = xp_of(x)
        # draw in x's memory order so the product below runs over contiguous memory
        order = physical_order(x)
        draws = self._generator(xp).random(tuple(x.shape[a] for a in order), dtype=x.dtype)
        draws = xp.asarray(draws).transpose([order.index(a) for a in range(x.ndim)])
        t = x.dtype.type
        # the multiplier is 0 or 1 / (1 - ratio); backward reuses it
        self._multiplier = (draws >= t(self.ratio)) * t(1.0 / (1.0 - self.ratio))
        return [x * self._multiplier]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        if self._multiplier is None:
            return [dy]
        return [dy * self._multiplier]
