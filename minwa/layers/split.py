"""Split: one blob to several consumers; backward sums their gradients (Caffe's Split)."""
from .layer import Layer
from .registry import register


@register
class Split(Layer):
    type = "Split"
    n_tops = (1, None)

    def setup(self, bottom_shapes):
        return [tuple(bottom_shapes[0])] * len(self.tops)

    def forward(self, bottoms):
        # Blobs are never mutated in place, so every top can share the one array.
        return [bottoms[0]] * len(self.tops)

    def backward(self, top_grads, propagate_down):
        if not propagate_down[0]:
            return [None]
        total = None
        for g in top_grads:
            if g is None:
                continue
            total = g if total is None else total + g
        return [total]
