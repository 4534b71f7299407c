"""SampleParams: everything random about one augmented image, drawn from its own RNG.

A sample's numbers come from ``numpy.random.Generator(Philox(SeedSequence((seed, epoch,
index))))``: a pure function of (seed, epoch, sample index), so a sample's augmentation
does not depend on which rank or worker handles it, on the batch it is in, or on the
order of the batch. Each sample draws one fixed-length vector of uniforms and
every operation reads its own slots, so enabling or tuning one operation never changes
what the others draw.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

#: uniforms per sample: crop 3, flip 1, rotation 2, lens 3, colour cast 7, vignette 3
SLOTS = {"crop": (0, 3), "flip": (3, 4), "rotation": (4, 6), "lens_distortion": (6, 9),
         "color_cast": (9, 16), "vignette": (16, 19)}
NUM_UNIFORMS = 19


def sample_uniforms(seed, epoch, index):
    """The NUM_UNIFORMS uniforms in [0, 1) of sample ``index`` at ``epoch`` under ``seed``."""
    if epoch < 0 or index < 0:
        raise ValueError(f"epoch and sample index must be >= 0, got {epoch}, {index}")
    entropy = numpy.random.SeedSequence((int(seed), int(epoch), int(index)))
    return numpy.random.Generator(numpy.random.Philox(entropy)).random(NUM_UNIFORMS)


@dataclass(frozen=True)
class SampleParams:
    """One sample's augmentation; ``lens``, ``cast`` and ``vignette`` are None when not applied."""

    scale: int                                  # shorter side the source is resized to
    top: int                                    # crop offset in the resized source
    left: int
    flip: bool = False
    degrees: int = 0                            # rotation, counter-clockwise
    lens: tuple[str, int] | None = None      # (type, degree 1..levels)
    cast: tuple[int, int, int] | None = None  # per-channel integer shifts
    vignette: tuple[int, int] | None = None  # (radius level, strength level)

    @property
    def geometric_identity(self):
        """True when the crop is taken as is (no flip, rotation or lens distortion)."""
        return not self.flip and self.degrees == 0 and self.lens is None
