"""Vignette: darken the periphery of an image relative to its centre (Deep Image §4.1).

Two variables are random, as in the paper: the area of the effect and how much
brightness is reduced. The area is set by the radius where darkening starts, as a
fraction of the half-diagonal (49 levels, 0.20 to 0.68 in steps of 0.01); inside it
nothing changes. The reduction is the fraction of brightness lost at the corners
(40 levels, 1.25% to 50% in steps of 1.25%). 49 x 40 = 1,960, the count in Table 1.

Brightness falls as ``1 - strength * t^2`` with t going 0 -> 1 from the start radius
to the corners, so the effect is smooth and never brightens anything.
"""
import numpy

from ._checks import interval, level_value, mapping, pick, probability, whole


def vignette_falloff(height, width, radius, xp=numpy, dtype=numpy.float32):
    """t^2 of every pixel (height x width): 0 inside ``radius`` (a fraction of the half-diagonal),
    rising to 1 at the corners; ``radius`` may be an (N, 1, 1) array for a batch."""
    dy = xp.arange(height, dtype=dtype)[:, None] - dtype((height - 1) / 2)
    dx = xp.arange(width, dtype=dtype)[None, :] - dtype((width - 1) / 2)
    r = xp.sqrt(dx * dx + dy * dy) / dtype(numpy.hypot(height / 2, width / 2))
    t = xp.clip((r - radius) / (1 - radius), 0, 1)
    return (t * t).astype(dtype, copy=False)


def vignette_mask(height, width, radius, strength, xp=numpy, dtype=numpy.float32):
    """Brightness factors (height x width): 1 inside ``radius``, down to 1 - strength at the corners.

    ``radius`` and ``strength`` may be arrays of shape (N, 1, 1) for a batch of masks.
    """
    return (1 - strength * vignette_falloff(height, width, radius, xp, dtype)).astype(dtype, copy=False)


def vignette(image, radius, strength):
    """``image`` (uint8 HWC) darkened towards the corners; pixels within ``radius`` are unchanged."""
    image = numpy.asarray(image)
    if image.dtype != numpy.uint8 or image.ndim != 3:
        raise ValueError(f"vignette: expected a uint8 HxWxC image, got {image.dtype} {image.shape}")
    if not 0.0 <= radius < 1.0 or not 0.0 <= strength <= 1.0:
        raise ValueError(f"vignette: radius must be in [0, 1) and strength in [0, 1], got {radius}, {strength}")
    mask = vignette_mask(image.shape[0], image.shape[1], radius, strength)
    out = image.astype(numpy.float32) * mask[:, :, None]
    out += 0.5
    return out.astype(numpy.uint8)


class Vignette:
    """The vignetting operation: its parameter space and how a sample draws from it."""

    name = "vignette"
    KEYS = ("enabled", "p", "radius", "radius_levels", "strength", "strength_levels")
    SLOTS = 3  # apply, radius level, strength level

    def __init__(self, p=0.5, radius=(0.20, 0.68), radius_levels=49, strength=(0.0125, 0.5), strength_levels=40):
        self.p = float(p)
        self.radius = tuple(radius)
        self.radius_levels = int(radius_levels)
        self.strength = tuple(strength)
        self.strength_levels = int(strength_levels)

    @classmethod
    def from_config(cls, block, where):
        block = mapping(block, where, cls.KEYS)
        return cls(p=probability(block.get("p", 0.5), f"{where}.p"),
                   radius=interval(block.get("radius", [0.20, 0.68]), f"{where}.radius", 0.0, 0.99),
                   radius_levels=whole(block.get("radius_levels", 49), f"{where}.radius_levels", 1),
                   strength=interval(block.get("strength", [0.0125, 0.5]), f"{where}.strength", 0.0, 1.0),
                   strength_levels=whole(block.get("strength_levels", 40), f"{where}.strength_levels", 1))

    def space_size(self):
        return self.radius_levels * self.strength_levels

    def values(self, levels):
        """(radius, strength) of a (radius level, strength level) pair."""
        ri, si = levels
        return (level_value(*self.radius, self.radius_levels, ri),
                level_value(*self.strength, self.strength_levels, si))

    def draw(self, u):
        """(radius level, strength level) from 3 uniforms, or None when the image is left alone."""
        if u[0] >= self.p:
            return None
        return pick(u[1], self.radius_levels), pick(u[2], self.strength_levels)

    def describe(self, levels):
        radius, strength = self.values(levels)
        return f"vignette r{radius:.2f} -{strength * 100:.0f}%"
