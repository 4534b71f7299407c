"""Job configuration: YAML files with ``model:``, ``solver:``, ``data:`` and ``train:``.

Everything is validated before any compute (layer types, blob wiring, shapes,
solver values), each problem reported once with the layer and field it concerns.
``model:`` may also name a Caffe ``.prototxt`` net and ``solver:`` a solver prototxt.
"""
import copy
import os

import yaml

from .errors import ConfigError
from .schema import job_blocks
from .solver import normalize_solver_config

JOB_KEYS = ("name", "seed", "model", "solver", "data", "train", "parallel", "augment", "scales")

#: ``train:`` block defaults (how a job runs, beyond Caffe's solver fields)
TRAIN_DEFAULTS = {
    "run_dir": None,          # default runs/<name>
    "dtype": "float32",
    "progress": True,         # progress bar on rank 0
    "keep_checkpoints": 3,
    "on_nan": "stop",         # stop | skip
    "max_consecutive_nan_skips": 5,  # on_nan: skip gives up (NonFiniteLoss) after this many skips in a row
    "timeout_s": 300.0,       # a rank that keeps the others waiting longer than this ends the job, named
    "checkpoint_timeout_s": 1800.0,  # ... unless it is alive and writing a checkpoint: then after this
    "timeline": None,
}


class Job:
    """A validated job: the dicts of each block plus where it came from."""

    def __init__(self, raw, path=None, text=None):
        self.raw = raw
        self.path = path
        self.text = text if text is not None else yaml.safe_dump(raw, sort_keys=False)
        self.name = str(raw.get("name") or (os.path.splitext(os.path.basename(path))[0] if path else "job"))
        self.seed = int(raw.get("seed", 0))
        self.model = raw["model"]
        self.solver = raw["solver"]
        self.data = raw.get("data") or {}
        self.train = raw["train"]
        self.parallel = raw.get("parallel") or {}
        self.data_hint = raw.get("_data_hint") or {}

    def resolved_text(self):
        """The job as it runs (overrides, defaults, a prototxt net expanded) as YAML: what config.yaml records."""
        return yaml.safe_dump({k: v for k, v in self.raw.items() if not k.startswith("_")}, sort_keys=False)

    @property
    def run_dir(self):
        return self.train.get("run_dir") or os.path.join("runs", self.name)

    def __repr__(self):
        return f"Job({self.name!r}, {len(self.model['layers'])} layers, solver={self.solver['type']})"


def parse_override(text):
    """'a.b.c=value' -> ('a.b.c', value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. solver.base_lr=0.01")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from None


def apply_overrides(raw, overrides):
    """Set dotted keys (``{"solver.base_lr": 0.01}`` or ``["solver.base_lr=0.01"]``)."""
    if not overrides:
        return raw
    if isinstance(overrides, (list, tuple)):
        overrides = dict(parse_override(o) for o in overrides)
    for key, value in overrides.items():
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = _list_item(node, part, parts[:i + 1])
                continue
            if part not in node or node[part] is None:
                node[part] = {}
            if not isinstance(node[part], (dict, list)):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
            node = node[part]
        last = parts[-1]
        if isinstance(node, list):
            raise ConfigError(f"--set {key}: cannot replace a list item, set a field inside it")
        node[last] = value
    return raw


def _list_item(items, part, where):
    """A list element by index or by its 'name' (model.layers.conv1.convolution_param...)."""
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    for item in items:
        if isinstance(item, dict) and item.get("name") == part:
            return item
    raise ConfigError(f"--set: {'.'.join(where)}: no list item with index or name {part!r}")


def load_config(path_or_dict, overrides=None, validate=True):
    """Read a YAML job (or a Caffe net .prototxt), apply overrides, validate, return a Job."""
    path, text = None, None
    if isinstance(path_or_dict, dict):
        raw = copy.deepcopy(path_or_dict)
    else:
        path = str(path_or_dict)
        if not os.path.exists(path):
            raise ConfigError(f"config file {path!r} does not exist")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".prototxt"):
            raw = {"name": os.path.splitext(os.path.basename(path))[0], "model": path}
        else:
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping with model:, solver:, data:")
    base_dir = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    whole, dotted = _split_overrides(overrides)
    raw = apply_overrides(raw, whole)  # --solver FILE, --set model=FILE: replace a block first,
    _expand_files(raw, base_dir)       # then read the files they name,
    raw = apply_overrides(raw, dotted)  # so that --set solver.base_lr=... refines it, in any order
    raw = normalize_job(raw, base_dir=base_dir)
    job = Job(raw, path=path, text=text)
    if validate:
        validate_job(job)
    return job


def _split_overrides(overrides):
    """(overrides of whole top-level blocks, dotted ones), each as a dict in the given order."""
    if not overrides:
        return {}, {}
    if isinstance(overrides, (list, tuple)):
        overrides = dict(parse_override(o) for o in overrides)
    whole = {k: v for k, v in overrides.items() if "." not in k}
    return whole, {k: v for k, v in overrides.items() if "." in k}


def _expand_files(raw, base_dir):
    """Replace ``model:`` / ``solver:`` given as file names by what the files hold (in place)."""
    if isinstance(raw.get("model"), str):
        model = _load_model_file(_resolve(base_dir, raw["model"]), raw)
        if isinstance(model, dict) and "layer" in model and "layers" not in model:
            model["layers"] = model.pop("layer")
        raw["model"] = model
    if isinstance(raw.get("solver"), str):
        raw["solver"] = _load_solver_file(_resolve(base_dir, raw["solver"]))


def _resolve(base_dir, value):
    if os.path.isabs(value) or os.path.exists(value):
        return value
    candidate = os.path.join(base_dir, value)
    return candidate if os.path.exists(candidate) else value


def normalize_job(raw, base_dir="."):
    unknown = sorted(set(raw) - set(JOB_KEYS) - {"_data_hint"})
    if unknown:
        near = job_blocks.closest(unknown[0], JOB_KEYS)
        hint = f"did you mean {near!r}? " if near else ""
        raise ConfigError(f"job: unknown top-level key(s) {', '.join(unknown)}; {hint}known: {', '.join(JOB_KEYS)}")
    if "model" not in raw:
        raise ConfigError("job: missing 'model' (a list of layers, or the path of a .prototxt/.yaml net)")
    model = raw["model"]
    if isinstance(model, str):
        model = _load_model_file(_resolve(base_dir, model), raw)
    if isinstance(model, list):
        model = {"layers": model}
    if not isinstance(model, dict) or not isinstance(model.get("layers", model.get("layer")), list):
        raise ConfigError("model: expected a mapping with a 'layers' list")
    if "layer" in model and "layers" not in model:
        model["layers"] = model.pop("layer")
    job_blocks.MODEL.check(model, "model")
    raw["model"] = model
    solver = raw.get("solver") or {}
    if isinstance(solver, str):
        solver = _load_solver_file(_resolve(base_dir, solver))
    if not isinstance(solver, dict):
        raise ConfigError("solver: expected a mapping of Caffe solver fields")
    raw["solver"] = normalize_solver_config(solver)
    train = dict(TRAIN_DEFAULTS)
    given = raw.get("train") or {}
    if not isinstance(given, dict):
        raise ConfigError("train: expected a mapping")
    train.update(job_blocks.train_block().check(given, "train"))
    raw["train"] = train
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError("data: expected a mapping")
    if "augment" in raw and "augment" not in data:
        data["augment"] = raw.pop("augment")
    hint = raw.get("_data_hint") or {}
    for key, phase in (("batch_size", "train"), ("test_batch_size", "test")):
        value = (hint.get(phase) or {}).get("batch_size")
        if value and key not in data:
            data[key] = value  # a Caffe data layer's batch size, when the job does not say
    raw["data"] = data
    job_blocks.data_block().check(data, "data")
    job_blocks.check_augment(data.get("augment"))
    job_blocks.parallel_block().check(raw.get("parallel") or {}, "parallel")
    return raw


def _load_model_file(path, raw):
    if not os.path.exists(path):
        raise ConfigError(f"model: file {path!r} does not exist")
    if path.endswith(".prototxt"):
        from .prototxt import net_from_prototxt  # noqa: PLC0415 - only for Caffe files

        model, hint = net_from_prototxt(path)
        raw.setdefault("_data_hint", hint or {})
        return model
    with open(path, encoding="utf-8") as f:
        try:
            loaded = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return loaded.get("model", loaded) if isinstance(loaded, dict) else loaded


def _load_solver_file(path):
    if not os.path.exists(path):
        raise ConfigError(f"solver: file {path!r} does not exist")
    if path.endswith(".prototxt"):
        from .prototxt import solver_from_prototxt  # noqa: PLC0415

        return solver_from_prototxt(path)
    with open(path, encoding="utf-8") as f:
        loaded = yaml.safe_load(f)
    return loaded.get("solver", loaded) if isinstance(loaded, dict) else loaded


def validate_job(job):
    """Build the TRAIN and TEST nets shape-only: wiring and shape errors surface here."""
    from .net import Net  # noqa: PLC0415 - net imports layers; keep config importable alone

    for phase in ("TRAIN", "TEST"):
        Net(job.model, phase=phase, dtype=job.train["dtype"], init=False)
    return job
