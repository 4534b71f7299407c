"""source_factory: ``build_source``, the factory that turns a job's ``data:`` block into the Source of one split.

``data.source`` picks the kind; the keys each kind reads:

- ``shapes``: ``image_size`` (32), ``train_count`` (5000), ``test_count`` (1000), ``seed`` (0).
- ``cifar10`` / ``cifar100``: ``path`` = a folder holding the binary batches (``data_batch_N.bin``,
  ``test_batch.bin``; CIFAR-100 ``train.bin``/``test.bin``) or the python batches (``data_batch_N``,
  ``test_batch``; ``train``/``test``), or their official ``.tar.gz``, or an image folder / ``.tar.gz``
  with ``train/<class>/*.jpg``, or a pack made by ``minwa pack``; ``format`` forces
  binary | python | folder | tar | hdf5 (default auto); ``label``: fine | coarse (CIFAR-100, default fine).
- ``mnist``: ``path`` = a folder with ``train-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``, ...
- ``folder``: ``path`` = root whose ``train/`` and ``test/`` (or ``val/``) hold ``<class>/*.jpg|png``, or a
  ``.tar.gz`` of that layout; ``resize``: scale the shorter side to this many pixels.
- ``hdf5``: ``path`` = a pack written by ``minwa pack`` (one group per split).

``train_path`` / ``test_path`` override ``path`` for one split; ``train_limit`` /
``test_limit`` keep only that many evenly spaced samples (quick runs).  Every source is
validated (not empty, labels in range) before it is returned, so a bad data set
stops the job before training starts.
"""
import os

from minwa.errors import ConfigError, DataError

SOURCES = ("shapes", "cifar10", "cifar100", "mnist", "folder", "hdf5")
SOURCE_KEYS = ("source", "path", "train_path", "test_path", "format", "label", "resize", "image_size", "train_count",
               "test_count", "seed", "train_limit", "test_limit")
SPLITS = ("train", "test")


def build_source(data_cfg, split):
    """The validated Source of ``split`` ("train" | "test") described by ``data_cfg``."""
    data_cfg = dict(data_cfg or {})
    if split not in SPLITS:
        raise ConfigError(f"data: split {split!r}: expected train or test")
    source = _open(data_cfg, split)
    limit = data_cfg.get(f"{split}_limit")
    if limit:
        from .subset_source import SubsetSource

        source = SubsetSource.evenly(source, _whole(limit, f"{split}_limit"))
    return source.validate()


def _open(data_cfg, split):
    kind = data_cfg.get("source")
    if kind not in SOURCES:
        raise ConfigError(f"data.source {kind!r}: expected one of {', '.join(SOURCES)}")
    if kind == "shapes":
        from .shapes_source import ShapesSource

        defaults = {"train": 5000, "test": 1000}
        source = ShapesSource(count=_whole(data_cfg.get(f"{split}_count", defaults[split]), f"{split}_count"),
                              image_size=_whole(data_cfg.get("image_size", 32), "image_size"),
                              seed=_whole(data_cfg.get("seed", 0), "seed"), split=split)
        return source
    path = data_cfg.get(f"{split}_path") or data_cfg.get("path")
    if not path:
        raise ConfigError(f"data.path: missing (data.source {kind} reads its files from a path)")
    path = os.path.expanduser(os.path.expandvars(str(path)))
    if not os.path.exists(path):
        raise DataError(f"data.path: {path} does not exist")
    resize = data_cfg.get("resize")
    resize = None if resize in (None, 0) else _whole(resize, "resize")
    fmt = str(data_cfg.get("format", "auto")).lower()
    specific = bool(data_cfg.get(f"{split}_path"))
    if kind in ("cifar10", "cifar100"):
        from .cifar_source import open_cifar

        label = str(data_cfg.get("label", "fine")).lower()
        source = open_cifar(path, split, classes=10 if kind == "cifar10" else 100, label=label, fmt=fmt,
                            resize=resize, split_folder=not specific)
    elif kind == "mnist":
        from .mnist_source import MnistSource

        source = MnistSource.from_folder(path, split)
    elif kind == "folder":
        from .image_folder import open_image_folder

        source = open_image_folder(path, split, resize=resize, split_folder=not specific)
    else:
        from .hdf5_source import Hdf5Source

        source = Hdf5Source(path, split)
    return source


def _whole(value, key):
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise ConfigError(f"data.{key}: expected a whole number, got {value!r}")
    if int(value) < 0:
        raise ConfigError(f"data.{key}: must be >= 0, got {value}")
    return int(value)
