"""The ``train:``, ``parallel:``, ``data:`` and ``augment:`` blocks of a job, checked before any compute.

Which keys a block has is owned by the module that reads it (``config.TRAIN_DEFAULTS``,
``parallel.data_options.OPTIONS``, ``datasets.DATA_KEYS``); the types and ranges of those keys
are declared here, in ``TRAIN_FIELDS``, ``PARALLEL_FIELDS`` and ``DATA_FIELDS``. A key a
module adds without a declaration here is checked by the type of its default (or not
at all when it has none), and ``tests/schema`` fails until it is declared. The augment
block is checked by ``minwa.augment.AugmentConfig`` itself (its operations declare
their keys), here at load time.
"""
from .field import Field, Message, closest  # noqa: F401 - closest is used by minwa.config

#: ``model:``: its layers are checked one by one (caffe_layers), by the Net
MODEL = Message("model", {"name": Field("str"), "layers": Field("any"), "layer": Field("any")})

TRAIN_FIELDS = {
    "run_dir": Field("str"), "dtype": Field("enum", "float32", choices=("float32", "float64")),
    "progress": Field("bool", True), "keep_checkpoints": Field("int", 3, minimum=0),
    "on_nan": Field("enum", "stop", choices=("stop", "skip")), "timeline": Field("str"),
    "max_consecutive_nan_skips": Field("int", 5, minimum=1, doc="on_nan: skip gives up after this many in a row"),
    "timeout_s": Field("float", 300.0, above=0.0, doc="a wait longer than this ends the job, naming the rank"),
    "checkpoint_timeout_s": Field("float", 1800.0, above=0.0,
                                  doc="the bound instead of timeout_s while the ranks waited for are alive and "
                                      "writing a checkpoint (never below timeout_s)"),
}
PARALLEL_FIELDS = {
    "mode": Field("enum", "data", choices=("data", "model-data", "single")),
    "strategy": Field("str", "butterfly"), "bucket_bytes": Field("float", minimum=0.0, doc="none: one bucket"),
    "lazy": Field("bool", True), "sharded": Field("bool", False), "error_feedback": Field("bool", False),
    "int8_block": Field("int", 256, minimum=1),
    "progress_thread": Field("bool", doc="lazy mode; none: on GPUs only (CPU passes poll between their chunks)"),
}
DATA_FIELDS = {
    "source": Field("str"), "path": Field("str"), "train_path": Field("str"), "test_path": Field("str"),
    "format": Field("str"), "label": Field("any"), "resize": Field("any"), "image_size": Field("int", minimum=1),
    "train_count": Field("int", minimum=1), "test_count": Field("int", minimum=1), "seed": Field("int"),
    "train_limit": Field("int", minimum=0), "test_limit": Field("int", minimum=0),
    "batch_size": Field("int", minimum=1), "test_batch_size": Field("int", minimum=1),
    "mean": Field("any", doc="image | channel | none | [c0, c1, c2] | file.npy"), "mean_file": Field("str"),
    "mean_samples": Field("int", minimum=1), "scale": Field("float"), "shuffle": Field("bool"),
    "on_error": Field("enum", choices=("fail", "skip")), "prefetch": Field("int", minimum=0),
    "crop": Field("any"), "augment": Field("any", doc="checked by minwa.augment.AugmentConfig"),
    "drop_last": Field("bool"),
}


def _inferred(default):
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(default, types):
            return Field(kind, default)
    return Field("any", default)


def block(name, keys, declared, defaults=None):
    """The Message of a block with exactly ``keys``: declared fields, else inferred from ``defaults``."""
    defaults = defaults or {}
    return Message(name, {k: declared.get(k) or _inferred(defaults.get(k)) for k in keys})


def undeclared(keys, declared):
    """Keys a module reads that have no declared type here (tests/schema keeps this empty)."""
    return sorted(set(keys) - set(declared))


def train_block():
    from ..config import TRAIN_DEFAULTS  # noqa: PLC0415 - config imports this module

    return block("train", TRAIN_DEFAULTS, TRAIN_FIELDS, TRAIN_DEFAULTS)


def parallel_block():
    from ..comm.factory import STRATEGIES  # noqa: PLC0415
    from ..parallel.data_options import OPTIONS  # noqa: PLC0415

    declared = dict(PARALLEL_FIELDS, strategy=Field("enum", "butterfly", choices=tuple(STRATEGIES)))
    return block("parallel", ("mode", *OPTIONS), declared)


def data_block():
    from ..datasets.loader_factory import DATA_KEYS  # noqa: PLC0415

    return block("data", DATA_KEYS, DATA_FIELDS)


def check_augment(augment, where="data.augment"):
    """The augment block parsed by its own declared operations (raises ConfigError naming the key)."""
    if not augment:
        return
    from ..augment import AugmentConfig  # noqa: PLC0415

    AugmentConfig(augment, where=where)
