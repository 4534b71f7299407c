"""MeanImage: the training-set mean that the loader subtracts ("image" CHW or per-"channel").

Every rank computes the same mean from the training source (over all samples, or
over a fixed evenly spaced subset of ``samples`` of them on a big set), so no
communication is needed.  ``cache`` names a ``.npz`` file that stores the mean
with what it was computed from; a matching cache is loaded instead of
recomputing, a stale one is recomputed and replaced (written atomically).
"""
import os
import tempfile

import numpy

from minwa.errors import ConfigError, DataError

KINDS = ("image", "channel")
_CHUNK = 500
_memo = {}


class MeanImage:
    """A float32 mean of shape (C, H, W) ("image") or (C, 1, 1) ("channel")."""

    def __init__(self, values, kind):
        self.values = numpy.ascontiguousarray(values, dtype=numpy.float32)
        self.kind = kind

    @classmethod
    def of(cls, reader, kind, samples=50000, cache=None):
        """Mean of ``reader.source`` (read through the SampleReader ``reader``), cached in ``cache``."""
        if kind not in KINDS:
            raise ConfigError(f"data.mean {kind!r}: expected image, channel, none, a list of channel values "
                              "or a .npy file")
        source = reader.source
        indices = _subset(len(source), samples)
        key = (source.name, len(source), kind, len(indices))
        if key in _memo:
            return cls(_memo[key], kind)
        values = _load_cache(cache, key) if cache else None
        if values is None:
            values = _compute(reader, kind, indices)
            if cache:
                _save_cache(cache, key, values)
        _memo[key] = values
        return cls(values, kind)

    @classmethod
    def from_setting(cls, setting):
        """A fixed mean from a config: a list of per-channel values or a path to a .npy array."""
        if isinstance(setting, (list, tuple)):
            values = numpy.asarray(setting, dtype=numpy.float32).reshape(-1, 1, 1)
            return cls(values, "channel")
        path = os.fspath(setting) if isinstance(setting, (str, os.PathLike)) else None
        if path is None or not path.endswith(".npy") and not os.path.isfile(path):
            raise ConfigError(f"data.mean {setting!r}: expected image, channel, none, a list of channel values "
                              "or a .npy file")
        if not os.path.isfile(path):
            raise DataError(f"data.mean: file {path} does not exist")
        try:
            values = numpy.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"data.mean: cannot read {path}: {exc}") from exc
        if values.ndim == 1:
            values = values.reshape(-1, 1, 1)
        if values.ndim != 3:
            raise DataError(f"data.mean: {path} holds shape {values.shape}; expected (C,), (C, H, W) or (C, 1, 1)")
        return cls(values, "channel" if values.shape[1:] == (1, 1) else "image")

    def fitted(self, chw):
        """The mean as an array broadcastable to a batch of images of shape ``chw`` (centre crop if needed)."""
        c, h, w = chw
        values = self.values
        if values.shape[0] != c:
            raise DataError(f"data.mean has {values.shape[0]} channels but the images have {c}")
        if values.shape[1:] == (1, 1):
            return values
        mh, mw = values.shape[1:]
        if mh < h or mw < w:
            raise DataError(f"data.mean: the mean image is {mh}x{mw} but batches are {h}x{w}; "
                            "use mean: channel for images larger than the source's")
        top, left = (mh - h) // 2, (mw - w) // 2
        return numpy.ascontiguousarray(values[:, top:top + h, left:left + w])


def _subset(count, samples):
    """All indices, or ``samples`` evenly spaced ones (the same on every rank)."""
    if samples is None or count <= int(samples):
        return numpy.arange(count, dtype=numpy.int64)
    return numpy.unique(numpy.linspace(0, count - 1, int(samples)).round().astype(numpy.int64))


def _compute(reader, kind, indices):
    total, pixels, shape = None, 0, None
    for start in range(0, len(indices), _CHUNK):
        chunk = indices[start:start + _CHUNK]
        images, _ = reader.read(chunk)
        for offset, image in enumerate(images if isinstance(images, list) else [images]):
            batch = image if image.ndim == 4 else image[None]
            if kind == "image":
                if shape is None:
                    shape = batch.shape[1:]
                elif batch.shape[1:] != shape:
                    where = reader.source.where(int(chunk[offset]))
                    raise DataError(f"data.mean: image: {where} is {batch.shape[1:]} but earlier images are "
                                    f"{shape}; use mean: channel for images of different sizes")
                part = batch.sum(axis=0, dtype=numpy.float64)
            else:
                part = batch.reshape(-1, batch.shape[-1]).sum(axis=0, dtype=numpy.float64)
                pixels += batch.shape[0] * batch.shape[1] * batch.shape[2]
            total = part if total is None else total + part
    if kind == "image":
        return (total / len(indices)).transpose(2, 0, 1).astype(numpy.float32)
    return (total / pixels).reshape(-1, 1, 1).astype(numpy.float32)


def _load_cache(path, key):
    if not os.path.isfile(path):
        return None
    try:
        with numpy.load(path, allow_pickle=False) as stored:
            if [str(k) for k in stored["key"]] != [str(k) for k in key]:
                return None
            return stored["values"]
    except (OSError, ValueError, KeyError):
        return None


def _save_cache(path, key, values):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".mean-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            numpy.savez(out, values=values, key=numpy.asarray([str(k) for k in key]))
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
