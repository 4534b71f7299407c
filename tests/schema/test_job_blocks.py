"""train, parallel, data and augment blocks: checked at load time, on one rank as on N."""
import glob
import os

import pytest

from minwa.config import TRAIN_DEFAULTS, load_config
from minwa.datasets.loader_factory import DATA_KEYS
from minwa.errors import ConfigError
from minwa.parallel.data_options import OPTIONS
from minwa.schema.job_blocks import DATA_FIELDS, PARALLEL_FIELDS, TRAIN_FIELDS, undeclared

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
QUICK = os.path.join(REPO, "configs", "cifar10_quick.yaml")
CAFFE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "caffe")


def test_every_key_a_module_reads_has_a_declared_type():
    assert undeclared(TRAIN_DEFAULTS, TRAIN_FIELDS) == []
    assert undeclared(("mode", *OPTIONS), PARALLEL_FIELDS) == []
    assert undeclared(DATA_KEYS, DATA_FIELDS) == []


@pytest.mark.parametrize(("override", "message"), [
    ("parallel.strategyy=butterfly", r"parallel\.strategyy: unknown key; did you mean 'strategy'\?"),
    ("parallel.strategy=butterfli", r"parallel\.strategy: expected one of .*; did you mean 'butterfly'\?"),
    ("parallel.lazy=3", r"parallel\.lazy: expected true or false"),
    ("train.dtyp=float64", r"train\.dtyp: unknown key; did you mean 'dtype'\?"),
    ("train.dtype=float16", r"train\.dtype: expected one of float32, float64"),
    ("train.on_nan=ignore", r"train\.on_nan: expected one of stop, skip"),
    ("train.keep_checkpoints=-1", r"train\.keep_checkpoints: must be >= 0"),
    ("data.batchsize=3", r"data\.batchsize: unknown key; did you mean 'batch_size'\?"),
    ("data.batch_size=true", r"data\.batch_size: expected a whole number"),
    ("data.augment={crop: 24, flipp: true}", r"data\.augment\.flipp: unknown key; did you mean 'flip'\?"),
    ("data.augment={crop: 24, flip: {pp: 0.5}}", r"data\.augment\.flip\.pp: unknown key; did you mean 'p'\?"),
])
def test_block_mistakes_are_named_at_load_time(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(QUICK, overrides=[override])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml"))))
def test_shipped_configs_load(path):
    load_config(path)


def test_caffe_reference_nets_load():
    nets = sorted(glob.glob(os.path.join(CAFFE, "*.prototxt")))
    nets = [p for p in nets if "solver" not in p]
    if not nets:
        pytest.skip("../shared/data/caffe is only beside the project checkout")
    for path in nets:
        load_config(path)


def test_top_level_and_model_keys_are_named():
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) solvr; did you mean 'solver'\?"):
        load_config({"model": {"layers": []}, "solvr": {}}, validate=False)
    with pytest.raises(ConfigError, match=r"model\.layer_s: unknown key"):
        load_config({"model": {"layers": [], "layer_s": []}}, validate=False)


def test_declared_train_defaults_are_the_ones_applied():
    declared = {k: f.default for k, f in TRAIN_FIELDS.items()}
    assert {k: TRAIN_DEFAULTS[k] for k in declared} == declared
