"""Fp16Codec: half-precision gradients on the wire (2 bytes per element)."""
import numpy

from .. import backend
from .codec import Codec

_FP16_MAX = float(numpy.finfo(numpy.float16).max)


class Fp16Codec(Codec):
    """float -> float16 (clipped to the finite range so a large value cannot become inf)."""

    name = "fp16"
    lossy = True

    def wire_nbytes(self, n, dtype=None):
        return 2 * int(n)

    def encode(self, x):
        xp = backend.xp_of(x)
        half = xp.clip(x.reshape(-1), -_FP16_MAX, _FP16_MAX).astype(xp.float16)
        return half.view(xp.uint8)

    def decode(self, wire, out):
        out[...] = wire.view(backend.xp_of(wire).float16).astype(out.dtype)
        return out
