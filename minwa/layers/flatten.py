"""Flatten: merge axes [axis, end_axis] into one (Caffe's Flatten; a reshape)."""
from ._util import canonical_axis, count
from .layer import Layer
from .registry import register


@register
class Flatten(Layer):
    type = "Flatten"

    def setup(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        self.axis = canonical_axis(self, self.option("axis", 1), len(shape), "axis")
        self.end_axis = canonical_axis(self, self.option("end_axis", -1), len(shape), "end_axis")
        if self.end_axis < self.axis:
            raise self.error(f"end_axis {self.end_axis} comes before axis {self.axis}", "end_axis")
        return [self._out_shape(shape)]

    def _out_shape(self, shape):
        return (tuple(shape[:self.axis]) + (count(shape, self.axis, self.end_axis + 1),)
                + tuple(shape[self.end_axis + 1:]))

    def forward(self, bottoms):
        x = bottoms[0]
        self._in_shape = x.shape
        return [x.reshape(self._out_shape(x.shape))]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        return [dy.reshape(self._in_shape)]
