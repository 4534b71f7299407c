"""Input: declares the net's fed blobs and their shapes (Caffe's Input layer)."""
from .layer import Layer
from .registry import register


@register
class Input(Layer):
    """Tops are fed by the caller; ``input_param.shape`` gives one shape for all tops or one per top."""

    type = "Input"
    n_bottoms = 0
    n_tops = (1, None)

    def setup(self, bottom_shapes):
        shapes = self.option("shape")
        if shapes is None:
            raise self.error("missing input_param.shape, e.g. shape: [{dim: [100, 3, 32, 32]}]", "shape")
        if isinstance(shapes, dict):
            shapes = [shapes]
        if not isinstance(shapes, (list, tuple)) or not shapes:
            raise self.error(f"expected a list of {{dim: [...]}} entries, got {shapes!r}", "shape")
        if len(shapes) not in (1, len(self.tops)):
            raise self.error(f"{len(shapes)} shapes given for {len(self.tops)} tops; give 1 or one per top",
                             "shape")
        out = []
        for entry in shapes:
            dims = entry.get("dim") if isinstance(entry, dict) else entry
            if isinstance(dims, int):
                dims = [dims]
            if not isinstance(dims, (list, tuple)) or not dims:
                raise self.error(f"expected {{dim: [N, C, H, W]}}, got {entry!r}", "shape")
            try:
                dims = tuple(int(d) for d in dims)
            except (TypeError, ValueError):
                raise self.error(f"dimensions must be integers, got {dims!r}", "shape") from None
            if any(d <= 0 for d in dims):
                raise self.error(f"dimensions must be positive, got {dims}", "shape")
            out.append(dims)
        if len(out) == 1:
            out = out * len(self.tops)
        return out

    def forward(self, bottoms):
        """The fed arrays, unchanged (the Net normally binds them itself)."""
        return list(bottoms)
