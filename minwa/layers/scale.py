"""Scale: y = x * scale (+ bias), the scale broadcast over axes [axis, axis + num_axes) (Caffe's Scale).

With one bottom the scale is a learnable parameter (filler constant 1 unless
given), per channel by default; with two bottoms the second bottom is the scale.
``bias_term`` adds a learnable bias of the same shape (filler constant 0).
"""
from ._util import boolean, canonical_axis, count, filler_spec, number, shape_error
from .layer import Layer
from .registry import register


@register
class Scale(Layer):
    type = "Scale"
    n_bottoms = (1, 2)

    def setup(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        self.bias_term = boolean(self, "bias_term", False)
        if len(bottom_shapes) == 2:
            sshape = tuple(bottom_shapes[1])
            self.axis = canonical_axis(self, self.option("axis", 1), len(shape)) if sshape else 0
            if shape[self.axis:self.axis + len(sshape)] != sshape:
                raise shape_error(self, f"scale blob {sshape} does not match input {shape} from axis {self.axis}")
            self.scale_shape = sshape
            self.scale = None
        else:
            self.axis = canonical_axis(self, self.option("axis", 1), len(shape))
            num_axes = number(self, "num_axes", 1, int, minimum=-1)
            end = len(shape) if num_axes == -1 else self.axis + num_axes
            if end > len(shape):
                raise self.error(f"axis {self.axis} + num_axes {num_axes} exceeds the {len(shape)}-d input",
                                 "num_axes")
            self.scale_shape = shape[self.axis:end]
            self.scale = self.add_param("scale", self.scale_shape,
                                        filler_spec(self, "filler", {"type": "constant", "value": 1.0}))
        self.bias = None
        if self.bias_term:
            self.bias = self.add_param("bias", self.scale_shape,
                                       filler_spec(self, "bias_filler", {"type": "constant", "value": 0.0}))
        return [shape]

    def _broadcast(self, a, ndim):
        """``a`` (the scale shape) reshaped to broadcast against an ndim input from self.axis."""
        trailing = ndim - self.axis - len(self.scale_shape)
        return a.reshape((1,) * self.axis + tuple(self.scale_shape) + (1,) * trailing)

    def _reduce(self, a, ndim):
        """Sum ``a`` (input-shaped) down to the scale shape."""
        axes = tuple(range(self.axis)) + tuple(range(self.axis + len(self.scale_shape), ndim))
        return a.sum(axis=axes) if axes else a

    def forward(self, bottoms):
        x = bottoms[0]
        s = bottoms[1] if len(bottoms) == 2 else self.scale.data
        if count(x.shape, self.axis, self.axis + len(self.scale_shape)) != count(self.scale_shape):
            raise shape_error(self, f"input {tuple(x.shape)} does not fit scale shape {self.scale_shape}")
        y = x * self._broadcast(s, x.ndim)
        if self.bias is not None:
            y += self._broadcast(self.bias.data, x.ndim)
        self._x, self._s = x, s
        return [y]

    def backward(self, top_grads, propagate_down):
        x, s = self._x, self._s
        dy = top_grads[0]
        if dy is None:
            dy = x * 0
        dscale = self._reduce(dy * x, x.ndim).reshape(self.scale_shape)
        out = [dy * self._broadcast(s, x.ndim) if propagate_down[0] else None]
        if self.scale is not None:
            self.scale.grad = dscale
        else:
            out.append(dscale if propagate_down[1] else None)
        if self.bias is not None:
            self.bias.grad = self._reduce(dy, x.ndim).reshape(self.scale_shape)
        return out
