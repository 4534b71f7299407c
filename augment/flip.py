"""Flip: mirror the crop left to right; 2 states (mirrored or not), the count in Table 1."""
import numpy

from ._checks import mapping, probability


def flip(image):
    """``image`` (HWC) mirrored left to right."""
    return numpy.ascontiguousarray(numpy.asarray(image)[:, ::-1])


class Flip:
    """The horizontal flip: its parameter space and how a sample draws from it."""

    name = "flip"
    KEYS = ("enabled", "p")
    SLOTS = 1

    def __init__(self, p=0.5):
        self.p = float(p)

    @classmethod
    def from_config(cls, block, where):
        block = mapping(block, where, cls.KEYS)
        return cls(p=probability(block.get("p", 0.5), f"{where}.p"))

    def space_size(self):
        return 2

    def draw(self, u):
        return bool(u[0] < self.p)

    def describe(self, flipped):
        return "flip"
