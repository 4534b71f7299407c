"""Weight fillers with Caffe's semantics: constant, gaussian, xavier, msra, uniform."""
import numpy

from ..errors import ConfigError

FILLER_TYPES = ("constant", "gaussian", "xavier", "msra", "uniform")


def _fan(shape, variance_norm):
    count = int(numpy.prod(shape)) if shape else 1
    fan_in = count // shape[0] if shape and shape[0] else count
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    norm = str(variance_norm).upper()
    if norm == "FAN_IN":
        return fan_in
    if norm == "FAN_OUT":
        return fan_out
    if norm == "AVERAGE":
        return (fan_in + fan_out) / 2.0
    raise ConfigError(f"filler variance_norm {variance_norm!r}: expected FAN_IN, FAN_OUT or AVERAGE")


def fill(filler, shape, dtype, rng):
    """A host array of ``shape`` drawn as Caffe's filler spec ``filler`` says."""
    filler = dict(filler or {"type": "constant"})
    kind = str(filler.get("type", "constant")).lower()
    if kind == "constant":
        out = numpy.full(shape, float(filler.get("value", 0.0)))
    elif kind == "gaussian":
        std = float(filler.get("std", 1.0))
        if std < 0:
            raise ConfigError(f"gaussian filler std must be >= 0, got {std}")
        out = rng.normal(float(filler.get("mean", 0.0)), std, size=shape)
    elif kind == "uniform":
        out = rng.uniform(float(filler.get("min", 0.0)), float(filler.get("max", 1.0)), size=shape)
    elif kind == "xavier":
        scale = numpy.sqrt(3.0 / _fan(shape, filler.get("variance_norm", "FAN_IN")))
        out = rng.uniform(-scale, scale, size=shape)
    elif kind == "msra":
        std = numpy.sqrt(2.0 / _fan(shape, filler.get("variance_norm", "FAN_IN")))
        out = rng.normal(0.0, std, size=shape)
    else:
        raise ConfigError(f"unknown filler type {kind!r}; known: {', '.join(FILLER_TYPES)}")
    return numpy.ascontiguousarray(out, dtype=dtype)
