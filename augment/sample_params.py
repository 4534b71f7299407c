"""SampleParams: everything random about one augmented image, a pure function of its name.

A sample's numbers are a counter-based hash of (seed, epoch, sample index, slot): the
three integers are chained through SplitMix64's finaliser into one 64-bit key per
sample, and slot ``j``'s uniform is the finaliser of ``key + (j + 1) * golden``, top 53
bits. So a sample's augmentation does not depend on which rank or worker handles it, on
the batch it is in, or on the order of the batch, and a whole batch is drawn with a few
vector operations (a seeded numpy Generator per sample cost ~25 us, half of a crop's
budget). Each sample draws one fixed-length vector of uniforms and every operation reads
its own slots, so enabling or tuning one operation never changes what the others draw.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

#: uniforms per sample: crop 3, flip 1, rotation 2, lens 3, colour cast 7, vignette 3
SLOTS = {"crop": (0, 3), "flip": (3, 4), "rotation": (4, 6), "lens_distortion": (6, 9),
         "color_cast": (9, 16), "vignette": (16, 19)}
NUM_UNIFORMS = 19


_MASK = (1 << 64) - 1
_GOLDEN_INT = 0x9E3779B97F4A7C15
_GOLDEN = numpy.uint64(_GOLDEN_INT)
_MIX = (numpy.uint64(0xBF58476D1CE4E5B9), numpy.uint64(0x94D049BB133111EB))
_SHIFTS = (numpy.uint64(30), numpy.uint64(27), numpy.uint64(31), numpy.uint64(11))
_SLOT_OFFSETS = numpy.arange(1, NUM_UNIFORMS + 1, dtype=numpy.uint64) * _GOLDEN


def _finalise(z):
    """SplitMix64's finaliser of a uint64 array, in place (wrap-around arithmetic is intended)."""
    z ^= z >> _SHIFTS[0]
    z *= _MIX[0]
    z ^= z >> _SHIFTS[1]
    z *= _MIX[1]
    z ^= z >> _SHIFTS[2]
    return z


def _finalise_int(z):
    """_finalise of one Python int, kept to 64 bits (the per-batch key costs no array operations)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def sample_uniforms_batch(seed, epoch, indices):
    """(len(indices), NUM_UNIFORMS) uniforms in [0, 1): row k belongs to sample ``indices[k]``."""
    seed, epoch = int(seed), int(epoch)
    indices = numpy.asarray(indices).reshape(-1)
    lowest = int(indices.min()) if indices.size else 0
    if seed < 0 or epoch < 0 or lowest < 0:
        raise ValueError(f"seed, epoch and sample indices must be >= 0, got {seed}, {epoch} and index {lowest}")
    key = _finalise_int(_finalise_int(seed + _GOLDEN_INT) ^ epoch) + _GOLDEN_INT
    keys = _finalise(indices.astype(numpy.uint64) ^ numpy.uint64(key & _MASK))
    bits = _finalise(keys[:, None] + _SLOT_OFFSETS)
    return (bits >> _SHIFTS[3]).astype(numpy.float64) * (1.0 / (1 << 53))


def sample_uniforms(seed, epoch, index):
    """The NUM_UNIFORMS uniforms in [0, 1) of sample ``index`` at ``epoch`` under ``seed``."""
    return sample_uniforms_batch(seed, epoch, [index])[0]


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
