"""Multi-scale training: one job trained at several image scales, one model per scale (Deep Image §4.2).

A job's top-level ``scales: [32, 48]`` (or ``--set scales=48``) makes ``minwa train`` train
one model per scale, named ``<name>-s<scale>`` in ``runs/<name>-s<scale>/``. At scale s
every image is resized so its shorter side is s pixels, through the augmentation module:

- a job with an ``augment:`` block keeps its crop size and its other operations; its
  ``scales`` and ``test_scale`` become s (Deep Image: 224 crops of 256- or 512-px images);
- a job without one gets ``augment: {crop: s, scales: [s]}`` (``data.crop`` c, if set,
  stays the crop size) and, without a crop, its Input layer takes s x s images.

A per-pixel mean (``data.mean: image``) is computed at the source's own size, so at
another scale it is replaced by the per-channel mean (a note says so).
"""
import copy
import sys

from .errors import ConfigError


def _scales(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError("scales: an empty list; give one or more image sizes, e.g. scales: [32, 48]")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ConfigError(f"scales: {s!r} is not a positive whole number of pixels")
    if len(set(values)) != len(values):
        raise ConfigError(f"scales: {list(values)} names a scale twice")
    return [int(s) for s in values]


def _resize_input(model, size):
    inputs = [layer for layer in model["layers"] if layer.get("type") == "Input"]
    if not inputs:
        raise ConfigError("scales: the model has no Input layer whose image size could change")
    for layer in inputs:
        shapes = layer.get("input_param", {}).get("shape")
        shapes = [shapes] if isinstance(shapes, dict) else shapes
        first = shapes[0]
        dims = list(first["dim"] if isinstance(first, dict) else first)
        if len(dims) != 4:
            raise ConfigError(f"scales: Input layer {layer.get('name')!r} has shape {dims}; expected [N, C, H, W]")
        dims[2] = dims[3] = size
        shapes[0] = {"dim": dims} if isinstance(first, dict) else dims
        layer["input_param"]["shape"] = shapes


def at_scale(raw, scale, notes=None):
    """A copy of the normalised job dict ``raw`` that trains at ``scale`` (see the module docstring)."""
    notes = notes if notes is not None else []
    raw = copy.deepcopy(raw)
    raw.pop("scales", None)
    raw.pop("_data_hint", None)
    name = str(raw.get("name") or "job")
    raw["name"] = f"{name}-s{scale}"
    train = raw.setdefault("train", {})
    if train.get("run_dir"):
        train["run_dir"] = f"{train['run_dir']}-s{scale}"
    data = raw.setdefault("data", {})
    augment = data.get("augment")
    if augment:
        augment = dict(augment)
        augment["scales"] = [scale]
        augment["test_scale"] = scale
        if int(augment.get("crop", 0)) > scale:
            raise ConfigError(f"scales: {scale} is smaller than augment.crop {augment['crop']}")
    else:
        crop = data.pop("crop", None)
        augment = {"crop": int(crop) if crop else scale, "scales": [scale]}
        if crop and int(crop) > scale:
            raise ConfigError(f"scales: {scale} is smaller than data.crop {crop}")
        if not crop:
            _resize_input(raw["model"], scale)
    data["augment"] = augment
    if isinstance(data.get("mean"), str) and data["mean"].lower() == "image":
        data["mean"] = "channel"
        notes.append(f"{raw['name']}: data.mean image -> channel (the mean image is at the source's size)")
    return raw


def scaled_jobs(job):
    """The jobs ``job`` stands for: itself, or one per entry of its ``scales:``."""
    from .config import load_config  # noqa: PLC0415

    if job.raw.get("scales") is None:
        return [job]
    jobs = []
    for scale in _scales(job.raw["scales"]):
        notes = []
        scaled = load_config(at_scale(job.raw, scale, notes))
        scaled.path = job.path
        for note in notes:
            print(f"minwa: note: {note}", file=sys.stderr)
        jobs.append(scaled)
    return jobs
