"""Rotation: turn the crop about its centre by a whole number of degrees.

The angle is an integer in [-max_degrees, max_degrees] other than 0; with the default
max_degrees = 10 that is 2 x 10 = 20 changes, the count in Table 1. Positive angles turn
the picture counter-clockwise as seen on screen. Because rotation happens inside the
fused map after the crop, the corners are filled from the source image around the crop
rather than with a constant colour (the border is repeated only at the image edge).
"""
from ._checks import mapping, pick, probability, whole
from .warp_map import WarpMap


def rotate(image, degrees):
    """``image`` (uint8 HWC) rotated by ``degrees`` counter-clockwise about its centre (edge pixels repeated)."""
    return WarpMap.build(image.shape[0], image.shape[1], degrees=degrees).apply(image)


class Rotation:
    """The rotation operation: its parameter space and how a sample draws from it."""

    name = "rotation"
    KEYS = ("enabled", "p", "max_degrees")
    SLOTS = 2  # apply, angle

    def __init__(self, p=0.5, max_degrees=10):
        self.p = float(p)
        self.max_degrees = int(max_degrees)

    @classmethod
    def from_config(cls, block, where):
        block = mapping(block, where, cls.KEYS)
        return cls(p=probability(block.get("p", 0.5), f"{where}.p"),
                   max_degrees=whole(block.get("max_degrees", 10), f"{where}.max_degrees", 1, 180))

    def space_size(self):
        return 2 * self.max_degrees

    def draw(self, u):
        """A non-zero integer angle from 2 uniforms, or 0 when the image is left alone."""
        if u[0] >= self.p:
            return 0
        k = pick(u[1], 2 * self.max_degrees)  # 0 .. 2m-1 -> -m .. -1, 1 .. m
        return k - self.max_degrees if k < self.max_degrees else k - self.max_degrees + 1

    def describe(self, degrees):
        return f"rotate {degrees:+d}deg"
