"""CifarSource: CIFAR-10 / CIFAR-100 from the official binary or python batches (or their tar.gz).

Binary records are ``<label byte(s)><3072 bytes: 1024 R, 1024 G, 1024 B>``: one label
byte for CIFAR-10, coarse then fine for CIFAR-100.  Binary files on disk are
memory-mapped, so a rank reads only the records it uses; python batches (dicts
with ``b'data'`` and ``b'labels'`` / ``b'fine_labels'``) are read whole through
the RestrictedUnpickler.  ``open_cifar`` finds whichever layout is at a path,
including image folders and ``minwa pack`` files of CIFAR.
"""
import os
import re
import tarfile

import numpy

from minwa.errors import ConfigError, DataError, MissingSplit

from .restricted_unpickler import RestrictedUnpickler
from .source import Source

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 3072
FORMATS = ("auto", "binary", "python", "folder", "tar", "hdf5")
_SUBFOLDERS = {10: ("cifar-10-batches-bin", "cifar-10-batches-py"), 100: ("cifar-100-binary", "cifar-100-python")}


class CifarSource(Source):
    """CIFAR images from one or more parts, each (where, flat uint8 records (M, 3072) CHW order, labels (M,))."""

    def __init__(self, parts, classes, name):
        if not parts:
            raise DataError(f"{name}: no batch files")
        self.parts = [(where, data, numpy.asarray(labels, dtype=numpy.int64)) for where, data, labels in parts]
        for where, data, labels in self.parts:
            if data.ndim != 2 or data.shape[1] != PIXELS:
                raise DataError(f"{where}: image data has shape {data.shape}; expected (N, {PIXELS})")
            if len(labels) != len(data):
                raise DataError(f"{where}: {len(labels)} labels for {len(data)} images")
        self.classes = tuple(classes)
        self.name = name
        self._starts = numpy.cumsum([0] + [len(labels) for _, _, labels in self.parts])
        self._labels = numpy.concatenate([labels for _, _, labels in self.parts])

    def __len__(self):
        return int(self._starts[-1])

    def labels(self):
        return self._labels

    def where(self, index):
        part = int(numpy.searchsorted(self._starts, index, side="right")) - 1
        return f"{self.parts[part][0]} record {index - self._starts[part]}"

    def get(self, index):
        images, labels = self.get_many([self.check_index(index)])
        return images[0], int(labels[0])

    def get_many(self, indices):
        indices = numpy.asarray(indices, dtype=numpy.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"{self.name}: index out of range for {len(self)} samples")
        flat = numpy.empty((len(indices), PIXELS), dtype=numpy.uint8)
        parts = numpy.searchsorted(self._starts, indices, side="right") - 1
        for part in numpy.unique(parts):
            pick = numpy.flatnonzero(parts == part)
            flat[pick] = self.parts[part][1][indices[pick] - self._starts[part]]
        images = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return numpy.ascontiguousarray(images), self._labels[indices]


def _binary_part(path, label_bytes, label_column, data=None):
    """(path, records, labels) of one binary batch file (memory-mapped) or of its bytes from a tarball."""
    record = label_bytes + PIXELS
    size = os.path.getsize(path) if data is None else len(data)
    if size == 0 or size % record:
        raise DataError(f"{path}: {size} bytes is not a whole number of {record}-byte CIFAR records "
                        "(truncated or not a CIFAR binary batch)")
    if data is None:
        table = numpy.memmap(path, dtype=numpy.uint8, mode="r", shape=(size // record, record))
    else:
        table = numpy.frombuffer(data, dtype=numpy.uint8).reshape(-1, record)
    return path, table[:, label_bytes:], numpy.array(table[:, label_column], dtype=numpy.int64)


def _python_part(path, label_key, data=None):
    batch = RestrictedUnpickler.load_path(path) if data is None else RestrictedUnpickler.load_bytes(data, path)
    if not isinstance(batch, dict) or b"data" not in batch:
        raise DataError(f"{path}: not a CIFAR python batch (expected a dict with b'data')")
    if label_key not in batch:
        keys = ", ".join(repr(k) for k in batch)
        raise DataError(f"{path}: has no {label_key!r} (keys: {keys})")
    images = numpy.asarray(batch[b"data"])
    if images.dtype != numpy.uint8 or images.ndim != 2 or images.shape[1] != PIXELS:
        raise DataError(f"{path}: b'data' is {images.dtype} {images.shape}; expected uint8 (N, {PIXELS})")
    try:
        labels = numpy.asarray(batch[label_key], dtype=numpy.int64).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: labels {label_key!r} are not integers") from exc
    return path, images, labels


def _split_files(names, classes, split, binary):
    """The batch file names of ``split`` among ``names`` (basenames), in their natural order."""
    if classes == 100:
        wanted = f"{split}.bin" if binary else split
        return [wanted] if wanted in names else []
    if split == "test":
        wanted = "test_batch.bin" if binary else "test_batch"
        return [wanted] if wanted in names else []
    pattern = re.compile(r"data_batch_(\d+)\.bin$" if binary else r"data_batch_(\d+)$")
    found = [(int(m.group(1)), n) for n in names for m in [pattern.match(n)] if m]
    return [n for _, n in sorted(found)]


def _read_classes_text(text, count):
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    return names if len(names) == count else None


def _class_names(classes, label, read):
    """Class names from the meta file that ``read(name) -> bytes | None`` finds, else built-in/generic names."""
    if classes == 10:
        text = read("batches.meta.txt")
        names = _read_classes_text(text.decode("utf-8", "replace"), 10) if text else None
        if names is None:
            meta = read("batches.meta")
            if meta:
                try:
                    decoded = RestrictedUnpickler.load_bytes(meta, "batches.meta")
                    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in decoded[b"label_names"])
                except (DataError, KeyError, TypeError):
                    names = None
        return names if names and len(names) == 10 else CIFAR10_CLASSES
    count = 100 if label == "fine" else 20
    text = read(f"{label}_label_names.txt")
    names = _read_classes_text(text.decode("utf-8", "replace"), count) if text else None
    if names is None:
        meta = read("meta")
        if meta:
            try:
                decoded = RestrictedUnpickler.load_bytes(meta, "meta")
                names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                              for n in decoded[f"{label}_label_names".encode()])
            except (DataError, KeyError, TypeError):
                names = None
    return names if names and len(names) == count else tuple(f"class_{i}" for i in range(count))


def _label_layout(classes, label):
    """(label bytes per binary record, column of the wanted label, python dict key)."""
    if classes == 10:
        return 1, 0, b"labels"
    if label not in ("fine", "coarse"):
        raise ConfigError(f"data.label {label!r}: expected fine or coarse (CIFAR-100)")
    return 2, (1 if label == "fine" else 0), (b"fine_labels" if label == "fine" else b"coarse_labels")


def _from_folder(folder, split, classes, label, fmt):
    names = set(os.listdir(folder))
    label_bytes, column, key = _label_layout(classes, label)
    for binary in ((True, False) if fmt == "auto" else (fmt == "binary",)):
        files = [f for f in _split_files(names, classes, split, binary) if os.path.isfile(os.path.join(folder, f))]
        if not files:
            continue
        paths = [os.path.join(folder, f) for f in files]
        parts = [_binary_part(p, label_bytes, column) if binary else _python_part(p, key) for p in paths]

        def read(name):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                return None
            with open(path, "rb") as handle:
                return handle.read()

        kind = "binary" if binary else "python"
        return CifarSource(parts, _class_names(classes, label, read), f"cifar{classes}({split}, {kind}, {folder})")
    return None


def _from_tarball(path, split, classes, label, fmt):
    """Official CIFAR tarball read in memory; None when it holds no CIFAR batches."""
    label_bytes, column, key = _label_layout(classes, label)
    try:
        with tarfile.open(path) as archive:
            members = {os.path.basename(m.name): m for m in archive.getmembers() if m.isfile()}
            for binary in ((True, False) if fmt in ("auto", "tar") else (fmt == "binary",)):
                files = _split_files(set(members), classes, split, binary)
                if not files:
                    continue
                parts = []
                for name in files:
                    data = archive.extractfile(members[name]).read()
                    where = f"{path}:{members[name].name}"
                    parts.append(_binary_part(where, label_bytes, column, data) if binary
                                 else _python_part(where, key, data))

                def read(name):
                    member = members.get(name)
                    return archive.extractfile(member).read() if member is not None else None

                name = f"cifar{classes}({split}, {'binary' if binary else 'python'}, {path})"
                return CifarSource(parts, _class_names(classes, label, read), name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the tarball: {exc}") from exc
    return None


def open_cifar(path, split, classes=10, label="fine", fmt="auto", resize=None, split_folder=True):
    """The CIFAR source of ``split`` at ``path`` in whichever supported layout it is (see module docstring)."""
    from .image_folder import open_image_folder

    if fmt not in FORMATS:
        raise ConfigError(f"data.format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "hdf5" or fmt == "auto" and os.path.isfile(path) and path.endswith((".h5", ".hdf5")):
        from .hdf5_source import Hdf5Source

        return Hdf5Source(path, split)
    if os.path.isfile(path):
        if fmt == "folder":
            raise ConfigError(f"data.format folder: {path} is a file, not a folder")
        source = _from_tarball(path, split, classes, label, fmt) if fmt != "folder" else None
        if source is not None:
            return source
        return open_image_folder(path, split, resize=resize, split_folder=split_folder)
    if fmt in ("auto", "binary", "python"):
        for folder in [path] + [os.path.join(path, sub) for sub in _SUBFOLDERS[classes]]:
            if os.path.isdir(folder):
                source = _from_folder(folder, split, classes, label, fmt)
                if source is not None:
                    return source
        if fmt != "auto":
            raise MissingSplit(f"data.path: no CIFAR-{classes} {fmt} batches for {split} in {path}")
    try:
        return open_image_folder(path, split, resize=resize, split_folder=split_folder)
    except DataError as exc:
        expected = ("data_batch_N.bin / test_batch.bin or data_batch_N / test_batch" if classes == 10
                    else "train.bin / test.bin or train / test")
        kind = MissingSplit if isinstance(exc, MissingSplit) else DataError
        raise kind(f"data.path: found no CIFAR-{classes} {split} data in {path} (looked for {expected}, "
                        f"an official .tar.gz, or an image folder: {exc})") from exc
