"""InnerProduct: a fully connected layer, y = x W^T + b (Caffe's InnerProduct).

Axes from ``axis`` (default 1) on are flattened into K inputs; the weight has
Caffe's shape (num_output, K), or (K, num_output) with ``transpose: true``.
"""
from ..backend import xp_of
from ._gemm import matmul
from ._util import boolean, canonical_axis, count, filler_spec, number
from .layer import Layer
from .registry import register

_CONSTANT_0 = {"type": "constant", "value": 0.0}


@register
class InnerProduct(Layer):
    type = "InnerProduct"

    def setup(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if self.option("num_output") is None:
            raise self.error("missing num_output", "num_output")
        self.num_output = number(self, "num_output", None, int, minimum=1)
        self.axis = canonical_axis(self, self.option("axis", 1), len(shape))
        self.bias_term = boolean(self, "bias_term", True)
        self.transpose = boolean(self, "transpose", False)
        self.k = count(shape, self.axis)
        self._dw = None
        wshape = (self.k, self.num_output) if self.transpose else (self.num_output, self.k)
        self.weight = self.add_param("weight", wshape, filler_spec(self, "weight_filler", _CONSTANT_0))
        self.bias = None
        if self.bias_term:
            self.bias = self.add_param("bias", (self.num_output,), filler_spec(self, "bias_filler", _CONSTANT_0))
        return [shape[:self.axis] + (self.num_output,)]

    def _check(self, x):
        if count(x.shape, self.axis) != self.k:
            from ._util import shape_error

            raise shape_error(self, f"input {tuple(x.shape)} has {count(x.shape, self.axis)} features "
                                    f"from axis {self.axis} on; the weights expect {self.k}")

    def forward(self, bottoms):
        x = bottoms[0]
        self._check(x)
        x2 = x.reshape(count(x.shape, 0, self.axis), self.k)
        w = self.weight.data
        y = matmul(x2, w if self.transpose else w.T)
        if self.bias is not None:
            y += self.bias.data
        self._x2, self._in_shape = x2, x.shape
        return [y.reshape(x.shape[:self.axis] + (self.num_output,))]

    def backward(self, top_grads, propagate_down):
        x2 = self._x2
        xp = xp_of(x2)
        dy = top_grads[0]
        if dy is None:
            dy = xp.zeros((x2.shape[0], self.num_output), dtype=x2.dtype)
        dy = dy.reshape(x2.shape[0], self.num_output)
        # the previous step's gradient buffer is refilled: by this backward its readers (solver,
        # gradient exchange, accumulation) are done with it or hold their own copy
        self._dw = matmul(x2.T, dy, self._dw) if self.transpose else matmul(dy.T, x2, self._dw)
        self.weight.grad = self._dw
        if self.bias is not None:
            self.bias.grad = dy.sum(axis=0)
        if not propagate_down[0]:
            return [None]
        w = self.weight.data
        dx = matmul(dy, w.T if self.transpose else w)
        return [dx.reshape(self._in_shape)]

    def flops(self, bottom_shapes, top_shapes):
        return 2 * count(bottom_shapes[0], 0, self.axis) * self.k * self.num_output
