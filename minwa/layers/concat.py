"""Concat: join several blobs along one axis (Caffe's Concat; axis 1 by default)."""
from ..backend import xp_of
from ._util import canonical_axis, shape_error
from .layer import Layer
from .registry import register


@register
class Concat(Layer):
    type = "Concat"
    n_bottoms = (1, None)

    def setup(self, bottom_shapes):
        first = tuple(bottom_shapes[0])
        if self.option("concat_dim") is not None and self.option("axis") is None:
            axis = self.option("concat_dim")  # Caffe's legacy name
        else:
            axis = self.option("axis", 1)
        self.axis = canonical_axis(self, axis, len(first))
        total = 0
        for index, shape in enumerate(bottom_shapes):
            shape = tuple(shape)
            same = len(shape) == len(first) and all(
                a == b for d, (a, b) in enumerate(zip(shape, first)) if d != self.axis)
            if not same:
                raise shape_error(self, f"bottom {index} has shape {shape}; all bottoms must match "
                                        f"{first} except along axis {self.axis}")
            total += shape[self.axis]
        return [first[:self.axis] + (total,) + first[self.axis + 1:]]

    def forward(self, bottoms):
        xp = xp_of(bottoms[0])
        self._sizes = [b.shape[self.axis] for b in bottoms]
        if len(bottoms) == 1:
            return [bottoms[0]]
        return [xp.concatenate(bottoms, axis=self.axis)]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        out, start = [], 0
        for size, wanted in zip(self._sizes, propagate_down):
            if wanted and dy is not None:
                index = [slice(None)] * dy.ndim
                index[self.axis] = slice(start, start + size)
                out.append(dy[tuple(index)])
            else:
                out.append(None)
            start += size
        return out
