"""ColorCast: shift whole colour channels by integers (Deep Image §4.1).

For each image three booleans choose which of R, G, B are altered; an altered channel
gets an integer shift in [-max_shift, max_shift]. An unaltered channel is the same as a
shift of 0, so a cast is a triple (sR, sG, sB) with every entry in [-m, m]: (2m+1)^3
triples, and all but the all-zero one change the image. With m = 20:
41^3 - 1 = 68,921 - 1 = 68,920, the count in Table 1.
"""
import numpy

from ._checks import mapping, pick, probability, whole


def color_cast(image, shifts):
    """``image`` (uint8 HWC, 3 channels) with channel k shifted by ``shifts[k]`` and clipped to [0, 255]."""
    image = numpy.asarray(image)
    if image.dtype != numpy.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"color_cast: expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
    shifts = numpy.asarray(shifts, dtype=numpy.int16).reshape(3)
    out = image.astype(numpy.int16)
    out += shifts
    return numpy.clip(out, 0, 255).astype(numpy.uint8)


class ColorCast:
    """The colour-cast operation: its parameter space and how a sample draws from it."""

    name = "color_cast"
    KEYS = ("enabled", "p", "channel_p", "max_shift")
    SLOTS = 7  # uniforms per sample: apply, three channel choices, three shifts

    def __init__(self, p=0.5, channel_p=0.5, max_shift=20):
        self.p = float(p)
        self.channel_p = float(channel_p)
        self.max_shift = int(max_shift)

    @classmethod
    def from_config(cls, block, where):
        block = mapping(block, where, cls.KEYS)
        return cls(p=probability(block.get("p", 0.5), f"{where}.p"),
                   channel_p=probability(block.get("channel_p", 0.5), f"{where}.channel_p"),
                   max_shift=whole(block.get("max_shift", 20), f"{where}.max_shift", 1, 255))

    def space_size(self):
        return (2 * self.max_shift + 1) ** 3 - 1

    def draw(self, u):
        """Shifts (sR, sG, sB) from 7 uniforms, or None when the image is left alone."""
        if u[0] >= self.p:
            return None
        span = 2 * self.max_shift + 1
        shifts = tuple(pick(u[4 + k], span) - self.max_shift if u[1 + k] < self.channel_p else 0 for k in range(3))
        return shifts if any(shifts) else None

    def describe(self, shifts):
        return "cast " + ",".join(f"{s:+d}" for s in shifts)
