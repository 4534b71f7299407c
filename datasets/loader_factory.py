"""loader_factory: ``make_loader`` builds a split's Loader from a job's ``data:`` block.

Keys read here (the source keys are documented in build_source):
``batch_size`` (global, train), ``test_batch_size`` (global, test; default
batch_size), ``mean`` (image | channel | none | [c0, c1, c2] | file.npy),
``mean_file`` (.npz cache of a computed mean), ``mean_samples`` (subset size on big
sets, default 50000), ``scale`` (multiplier after mean subtraction, default 1),
``shuffle`` (training only, default true; evaluation reads in order),
``drop_last`` (training only, default true), ``on_error`` (fail | skip), ``prefetch``
(batches computed ahead, default 2; 0 = no thread), ``crop`` (centre crop when
there is no augment block) and ``augment`` (a block handed to
``minwa.augment.build_transform``).  Training drops the last partial global
batch; evaluation keeps it (see Loader).
"""
import weakref

from minwa.errors import ConfigError

from .loader import Loader
from .source_factory import SOURCE_KEYS, build_source

LOADER_KEYS = ("batch_size", "test_batch_size", "mean", "mean_file", "mean_samples", "scale", "shuffle", "on_error",
               "prefetch", "crop", "augment", "drop_last")
#: Every key a ``data:`` block may hold.
DATA_KEYS = tuple(sorted(set(LOADER_KEYS) | set(SOURCE_KEYS)))
_train_sources = weakref.WeakValueDictionary()  # training sources alive in this process, for the test mean


def make_loader(data_cfg, split, rank=0, size=1, seed=0):
    """The Loader of ``split`` ("train" | "test") for this rank, as ``data_cfg`` describes it."""
    data_cfg = dict(data_cfg or {})
    if split not in ("train", "test"):
        raise ConfigError(f"make_loader: split {split!r}: expected train or test")
    unknown = sorted(set(data_cfg) - set(DATA_KEYS))
    if unknown:
        raise ConfigError(f"data: unknown key(s) {', '.join(unknown)}; known: {', '.join(DATA_KEYS)}")
    train = split == "train"
    batch_size = data_cfg.get("batch_size")
    if not train:
        batch_size = data_cfg.get("test_batch_size", batch_size)
    if batch_size is None:
        raise ConfigError(f"data.{'batch_size' if train else 'test_batch_size'}: missing")
    batch_size = _whole(batch_size, "batch_size" if train else "test_batch_size", minimum=1)
    source = build_source(data_cfg, split)
    mean = data_cfg.get("mean")
    if train:
        _train_sources[_source_key(data_cfg)] = source
    mean_source = None
    if isinstance(mean, str) and mean.lower() in ("image", "channel") and not train:
        # the test set is normalised by the training mean; reuse the training source built in this process
        mean_source = _train_sources.get(_source_key(data_cfg)) or build_source(data_cfg, "train")
    transform = None
    if data_cfg.get("augment"):
        transform = _build_transform(data_cfg["augment"], seed, train)
    return Loader(
        source, batch_size, rank=rank, size=size, seed=seed,
        shuffle=bool(data_cfg.get("shuffle", True)) and train,
        transform=transform, mean=mean, scale=_number(data_cfg.get("scale", 1.0), "scale"),
        drop_last=bool(data_cfg.get("drop_last", True)) if train else False,
        prefetch=_whole(data_cfg.get("prefetch", 2), "prefetch", minimum=0),
        on_error=data_cfg.get("on_error", "fail"), crop=data_cfg.get("crop"),
        mean_samples=_whole(data_cfg.get("mean_samples", 50000), "mean_samples", minimum=1),
        mean_cache=data_cfg.get("mean_file"), mean_source=mean_source)


def _source_key(data_cfg):
    return repr(sorted((k, repr(data_cfg.get(k))) for k in SOURCE_KEYS))


def _build_transform(aug_cfg, seed, train):
    try:
        from minwa.augment import build_transform
    except ImportError as exc:
        raise ConfigError(f"data.augment: minwa.augment.build_transform is not available ({exc})") from exc
    return build_transform(aug_cfg, seed=seed, train=train)


def _whole(value, key, minimum):
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise ConfigError(f"data.{key}: expected a whole number, got {value!r}")
    if int(value) < minimum:
        raise ConfigError(f"data.{key}: must be >= {minimum}, got {value}")
    return int(value)


def _number(value, key):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"data.{key}: expected a number, got {value!r}") from None
