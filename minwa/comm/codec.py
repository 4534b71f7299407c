"""Codec: how a float part of a gradient bucket is written on the wire and read back.

The base class is the identity (the part's own bytes); the compressed butterfly
uses a lossy codec (fp16, or int8 with a per-block scale). ``encode`` returns a
uint8 array, ``decode`` writes floats into ``out``; ``wire_nbytes(n)`` is what
encoding n elements costs, so receivers can size their buffers in advance.
"""
import numpy

from .. import backend


class Codec:
    """Identity codec: the float32/float64 bytes as they are."""

    name = "raw"
    lossy = False

    def wire_nbytes(self, n, dtype):
        return int(n) * numpy.dtype(dtype).itemsize

    def encode(self, x):
        return x.reshape(-1).view(numpy.uint8)

    def decode(self, wire, out):
        out[...] = wire.view(out.dtype)
        return out

    def roundtrip(self, x):
        """What a receiver will see for ``x`` (decode(encode(x)))."""
        out = backend.xp_of(x).empty_like(x)
        return self.decode(self.encode(x), out)

    def __repr__(self):
        return f"{type(self).__name__}()"
