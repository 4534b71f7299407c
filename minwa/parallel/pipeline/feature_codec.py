"""How a feature blob travels: float32 (exact), float16, or uint8 with a per-tensor scale and offset.

uint8 maps [min, max] of the tensor onto 0..255 (``q = round((x - min) / scale)``,
``scale = (max - min) / 255``); decoding gives ``q * scale + min``, within ``scale / 2``
of the original. After a ReLU or a pooling of ReLUs the minimum is usually 0.
"""
import numpy

from .frame import DTYPE_CODES, DTYPES, FrameError

WIRE_DTYPES = tuple(DTYPE_CODES)


def encode(array, dtype):
    """(dtype code, scale, offset, payload bytes) of a host array for the wire."""
    if dtype not in DTYPE_CODES:
        raise ValueError(f"feature dtype {dtype!r}: expected one of {', '.join(WIRE_DTYPES)}")
    code = DTYPE_CODES[dtype]
    x = numpy.asarray(array, dtype=numpy.float32)
    if dtype == "uint8":
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        scale = (high - low) / 255.0 if high > low else 1.0
        q = numpy.rint((x - numpy.float32(low)) / numpy.float32(scale))
        return code, scale, low, numpy.clip(q, 0, 255).astype(numpy.uint8).tobytes()
    return code, 1.0, 0.0, x.astype(DTYPES[code]).tobytes()


def decode(code, scale, offset, shape, payload):
    """The float32 array a frame's payload stands for."""
    if code not in DTYPES or DTYPES[code] is None:
        raise FrameError(f"dtype code {code} carries no tensor")
    values = numpy.frombuffer(payload, dtype=DTYPES[code]).reshape(shape)
    if code == DTYPE_CODES["uint8"]:
        return (values.astype(numpy.float32) * numpy.float32(scale) + numpy.float32(offset)).astype(numpy.float32)
    return values.astype(numpy.float32)
