"""Eltwise: element-wise SUM (with optional coefficients), PROD or MAX of equal-shaped blobs (Caffe's Eltwise)."""
from ..backend import xp_of
from ._util import choice, shape_error
from .layer import Layer
from .registry import register

OPERATIONS = ("PROD", "SUM", "MAX")


@register
class Eltwise(Layer):
    type = "Eltwise"
    n_bottoms = (2, None)

    def setup(self, bottom_shapes):
        self.operation = choice(self, "operation", "SUM", OPERATIONS)
        first = tuple(bottom_shapes[0])
        for index, shape in enumerate(bottom_shapes):
            if tuple(shape) != first:
                raise shape_error(self, f"bottom {index} has shape {tuple(shape)}, bottom 0 has {first}; "
                                        "Eltwise needs equal shapes")
        coeff = self.option("coeff")
        if coeff is None:
            self.coeff = [1.0] * len(bottom_shapes)
        else:
            if self.operation != "SUM":
                raise self.error("coeff is only allowed with operation SUM", "coeff")
            coeff = list(coeff) if isinstance(coeff, (list, tuple)) else [coeff]
            if len(coeff) != len(bottom_shapes):
                raise self.error(f"{len(coeff)} coefficients for {len(bottom_shapes)} bottoms", "coeff")
            self.coeff = [float(c) for c in coeff]
        return [first]

    def forward(self, bottoms):
        xp = xp_of(bottoms[0])
        t = bottoms[0].dtype.type
        if self.operation == "SUM":
            y = bottoms[0] * t(self.coeff[0]) if self.coeff[0] != 1 else bottoms[0].copy()
            for b, c in zip(bottoms[1:], self.coeff[1:]):
                if c == 1:
                    y += b
                else:
                    y += b * t(c)
        elif self.operation == "PROD":
            y = bottoms[0] * bottoms[1]
            for b in bottoms[2:]:
                y *= b
            self._bottoms = list(bottoms)
        else:
            # Caffe's tie rule: bottoms 0 and 1 compare as ``a > b ? 0 : 1`` (a tie goes to bottom 1);
            # each later bottom takes over only where it is strictly larger
            a, b = bottoms[0], bottoms[1]
            self._arg = (~(a > b)).astype("int32")
            y = xp.where(self._arg == 1, b, a)
            for index, b in enumerate(bottoms[2:], start=2):
                wins = b > y
                self._arg[wins] = index
                y = xp.where(wins, b, y)
        return [y]

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        out = []
        for index, wanted in enumerate(propagate_down):
            if not wanted or dy is None:
                out.append(None)
                continue
            if self.operation == "SUM":
                c = self.coeff[index]
                out.append(dy if c == 1 else dy * dy.dtype.type(c))
            elif self.operation == "PROD":
                # the product of the other bottoms, computed directly so zeros are handled exactly
                others = [b for j, b in enumerate(self._bottoms) if j != index]
                g = dy * others[0]
                for b in others[1:]:
                    g *= b
                out.append(g)
            else:
                out.append(dy * (self._arg == index))
        return out
