"""MnistSource: MNIST-style IDX files (images magic 2051, labels magic 2049, big-endian), gzipped or not.

``from_folder`` finds ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
(``t10k-...`` for test; also the ``train-images.idx3-ubyte`` spelling, each with or
without ``.gz``).  Uncompressed files are memory-mapped; gzipped ones are read
into memory.  Headers, sizes and the image/label counts are checked, so a
truncated or mismatched pair is a DataError naming the file before training.
"""
import gzip
import os

import numpy

from minwa.errors import DataError, MissingSplit

from .source import Source

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
_PREFIX = {"train": "train", "test": "t10k"}


def _read_idx(path, magic, dims):
    """The payload of an IDX file as a uint8 array of shape (N, *rest) after checking its header."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                raw = numpy.frombuffer(handle.read(), dtype=numpy.uint8)
        else:
            raw = numpy.memmap(path, dtype=numpy.uint8, mode="r")
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot read IDX file: {exc}") from exc
    header = 4 + 4 * dims
    if raw.size < header:
        raise DataError(f"{path}: {raw.size} bytes is too short for an IDX header")
    found = int(numpy.frombuffer(raw[:4].tobytes(), dtype=">u4")[0])
    if found != magic:
        raise DataError(f"{path}: IDX magic number {found}, expected {magic}")
    shape = tuple(int(v) for v in numpy.frombuffer(raw[4:header].tobytes(), dtype=">u4"))
    expected = int(numpy.prod(shape))
    if raw.size - header != expected:
        raise DataError(f"{path}: header says {shape} ({expected} bytes of data) but the file holds "
                        f"{raw.size - header} (truncated or corrupt)")
    return raw[header:].reshape(shape)


def _find(folder, split, kind):
    dims = "idx3" if kind == "images" else "idx1"
    stem = _PREFIX[split]
    names = [f"{stem}-{kind}-{dims}-ubyte", f"{stem}-{kind}.{dims}-ubyte"]
    for name in names:
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    raise MissingSplit(f"{folder}: no MNIST {split} {kind} file (looked for {names[0]}[.gz], {names[1]}[.gz])")


class MnistSource(Source):
    """Grey images (H, W, 1) and labels from one IDX image file and one IDX label file."""

    def __init__(self, images_path, labels_path, classes=tuple(str(d) for d in range(10))):
        self.images = _read_idx(images_path, IMAGES_MAGIC, 3)
        self._labels = numpy.array(_read_idx(labels_path, LABELS_MAGIC, 1), dtype=numpy.int64)
        if len(self.images) != len(self._labels):
            raise DataError(f"{images_path}: {len(self.images)} images but {labels_path} holds "
                            f"{len(self._labels)} labels")
        self.images_path = images_path
        self.classes = tuple(classes)
        self.name = f"mnist({images_path})"

    @classmethod
    def from_folder(cls, folder, split):
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: MNIST folder does not exist")
        return cls(_find(folder, split, "images"), _find(folder, split, "labels"))

    def __len__(self):
        return len(self._labels)

    def labels(self):
        return self._labels

    def where(self, index):
        return f"{self.images_path} image {index}"

    def get(self, index):
        index = self.check_index(index)
        return numpy.array(self.images[index])[:, :, None], int(self._labels[index])

    def get_many(self, indices):
        indices = numpy.asarray(indices, dtype=numpy.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"{self.name}: index out of range for {len(self)} samples")
        return numpy.array(self.images[indices])[..., None], self._labels[indices]
