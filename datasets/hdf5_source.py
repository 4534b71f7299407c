"""Hdf5Source: one split of a pack written by ``minwa pack``, read by index.

Pack layout (one group per split, e.g. ``/train``, ``/test``):
``labels`` int64 (N,); either ``images`` uint8 (N, H, W, C) chunked one image per
chunk (layout "fixed"), or ``data`` variable-length uint8 (N,) holding each
flattened image plus ``shapes`` int32 (N, 3) (layout "variable"); group attribute
``classes`` (JSON list of names).  File attribute ``minwa_pack`` = format version.

The file is opened read-only, without HDF5 file locking, lazily in the process
that reads (a handle is never carried across a fork), so several ranks can read
one pack at once.  Labels and shapes are read once at construction.
"""
import json
import os

import numpy

from minwa.errors import DataError, MissingSplit

from .source import Source

PACK_VERSION = 1


def open_pack(path):
    """An h5py File of ``path``, read-only and without file locking (safe for many readers)."""
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    import h5py

    try:
        try:
            return h5py.File(path, "r", locking=False)
        except TypeError:  # h5py built without the locking option: the environment variable covers it
            return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5: {exc}") from exc


class Hdf5Source(Source):
    """Split ``split`` of the pack at ``path``."""

    def __init__(self, path, split):
        self.path = os.fspath(path)
        self.split = split
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: pack file does not exist")
        with open_pack(self.path) as handle:
            if "minwa_pack" not in handle.attrs:
                raise DataError(f"{self.path}: not a minwa pack (write one with `minwa pack SOURCE {self.path}`)")
            if split not in handle:
                groups = ", ".join(sorted(handle)) or "none"
                raise MissingSplit(f"{self.path}: no split {split!r} in the pack (it holds: {groups})")
            group = handle[split]
            try:
                self._labels = numpy.asarray(group["labels"][()], dtype=numpy.int64)
                self.classes = tuple(json.loads(group.attrs["classes"]))
                self.layout = "fixed" if "images" in group else "variable"
                if self.layout == "fixed":
                    count, self.shape = group["images"].shape[0], tuple(group["images"].shape[1:])
                    self.shapes = None
                else:
                    count, self.shape = group["data"].shape[0], None
                    self.shapes = numpy.asarray(group["shapes"][()], dtype=numpy.int64)
            except (KeyError, ValueError, OSError) as exc:
                raise DataError(f"{self.path}: split {split!r} is not a valid pack group: {exc}") from exc
        if count != len(self._labels):
            raise DataError(f"{self.path}: split {split!r} holds {count} images but {len(self._labels)} labels")
        self.name = f"hdf5({self.path}, {split})"
        self._handle, self._pid = None, None

    def _group(self):
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = open_pack(self.path), os.getpid()
        return self._handle[self.split]

    def close(self):
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __len__(self):
        return len(self._labels)

    def labels(self):
        return self._labels

    def where(self, index):
        return f"{self.path}:/{self.split} image {index}"

    def get(self, index):
        index = self.check_index(index)
        try:
            group = self._group()
            if self.layout == "fixed":
                image = group["images"][index]
            else:
                image = numpy.asarray(group["data"][index], dtype=numpy.uint8).reshape(self.shapes[index])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{self.where(index)}: cannot read: {exc}") from exc
        return image, int(self._labels[index])

    def get_many(self, indices):
        indices = numpy.asarray(indices, dtype=numpy.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"{self.name}: index out of range for {len(self)} samples")
        if self.layout != "fixed":
            return super().get_many(indices)
        try:
            images = self._group()["images"]
            out = numpy.empty((len(indices),) + self.shape, dtype=numpy.uint8)
            for k, index in enumerate(indices):  # one chunk per image: measured far faster than fancy indexing
                out[k] = images[index]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{self.name}: cannot read images: {exc}") from exc
        return out, self._labels[indices]
