"""LensDistortion: barrel, pincushion and horizontal/vertical stretching (Deep Image §4.1).

The paper makes the type and the degree of distortion random and counts stretching
as a special kind of lens distortion. Here there are 4 types x 65 degrees (each degree
a non-zero amount, amount = max * degree / 65) = 260 changes, the count in Table 1.

Every type is an inverse map: for each output pixel it says where to read the input.
With offsets (dx, dy) from the centre and r the radius in units of half the shorter side:

- barrel:     read at (dx, dy) * (1 + k r^2) / (1 + k)  (edges bow outwards; the middle of
              each side stays put, so hardly anything is read from outside the frame)
- pincushion: read at (dx, dy) / (1 + k r^2)            (edges bow inwards; reads stay inside)
- stretch_h:  read at (dx / (1 + a), dy)                 (content wider by 1 + a)
- stretch_v:  read at (dx, dy / (1 + a))                 (content taller by 1 + a)

All four are one formula with coefficients (kb, kp, sx, sy), so a batch of different
types is computed in one pass; zero amount gives exactly the identity. k is at most 0.5
(``max_radial``), which keeps the pincushion map one-to-one up to the corners.
Defaults: k up to 0.3 and a up to 0.2, in 65 equal steps.
"""
from minwa.errors import ConfigError

from ._checks import mapping, number, pick, probability, whole
from .warp_map import WarpMap

TYPES = ("barrel", "pincushion", "stretch_h", "stretch_v")


def lens_coefficients(kind, amount):
    """(kb, kp, sx, sy) of the unified distortion formula for ``kind`` at ``amount`` (>= 0)."""
    if kind is None or amount == 0:
        return 0.0, 0.0, 1.0, 1.0
    if kind == "barrel":
        return float(amount), 0.0, 1.0, 1.0
    if kind == "pincushion":
        return 0.0, float(amount), 1.0, 1.0
    if kind == "stretch_h":
        return 0.0, 0.0, 1.0 + amount, 1.0
    if kind == "stretch_v":
        return 0.0, 0.0, 1.0, 1.0 + amount
    raise ValueError(f"lens distortion type {kind!r}: expected one of {', '.join(TYPES)}")


def lens_distortion(image, kind, amount):
    """``image`` (uint8 HWC) distorted by ``kind`` (barrel | pincushion | stretch_h | stretch_v) at ``amount``."""
    warp = WarpMap.build(image.shape[0], image.shape[1], lens=lens_coefficients(kind, amount))
    return warp.apply(image)


class LensDistortion:
    """The lens-distortion operation: its parameter space and how a sample draws from it."""

    name = "lens_distortion"
    KEYS = ("enabled", "p", "types", "levels", "max_radial", "max_stretch")
    SLOTS = 3  # apply, type, degree

    def __init__(self, p=0.5, types=TYPES, levels=65, max_radial=0.3, max_stretch=0.2):
        self.p = float(p)
        self.types = tuple(types)
        self.levels = int(levels)
        self.max_radial = float(max_radial)
        self.max_stretch = float(max_stretch)

    @classmethod
    def from_config(cls, block, where):
        block = mapping(block, where, cls.KEYS)
        types = block.get("types", list(TYPES))
        if not isinstance(types, (list, tuple)) or not types:
            raise ConfigError(f"{where}.types: expected a non-empty list of {', '.join(TYPES)}, got {types!r}")
        for kind in types:
            if kind not in TYPES:
                raise ConfigError(f"{where}.types: unknown type {kind!r}; known: {', '.join(TYPES)}")
        if len(set(types)) != len(types):
            raise ConfigError(f"{where}.types: {types!r} lists a type twice")
        return cls(p=probability(block.get("p", 0.5), f"{where}.p"), types=types,
                   levels=whole(block.get("levels", 65), f"{where}.levels", 1),
                   max_radial=number(block.get("max_radial", 0.3), f"{where}.max_radial", 0.0, 0.5),
                   max_stretch=number(block.get("max_stretch", 0.2), f"{where}.max_stretch", 0.0, 1.0))

    def space_size(self):
        return len(self.types) * self.levels

    def amount(self, kind, degree):
        top = self.max_stretch if kind.startswith("stretch") else self.max_radial
        return top * degree / self.levels

    def draw(self, u):
        """(type, degree in 1..levels) from 3 uniforms, or None when the image is left alone."""
        if u[0] >= self.p:
            return None
        return self.types[pick(u[1], len(self.types))], pick(u[2], self.levels) + 1

    def coefficients(self, drawn):
        if drawn is None:
            return lens_coefficients(None, 0)
        return lens_coefficients(drawn[0], self.amount(*drawn))

    def describe(self, drawn):
        return f"{drawn[0]} {self.amount(*drawn):.3f}"
