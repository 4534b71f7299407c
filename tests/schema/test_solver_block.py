"""The solver block: Caffe's defaults, types and ranges, misspellings named, iter_size accepted."""
import os

import pytest

from minwa.config import load_config
from minwa.errors import ConfigError
from minwa.solver import SOLVER_DEFAULTS, normalize_solver_config

QUICK = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "cifar10_quick.yaml")


def test_defaults_are_caffes():
    cfg = normalize_solver_config({})
    assert cfg["base_lr"] == 0.01 and cfg["lr_policy"] == "fixed" and cfg["iter_size"] == 1
    assert cfg["stepvalue"] == [] and cfg["test_iter"] == 0 and set(SOLVER_DEFAULTS) <= set(cfg)
    assert normalize_solver_config({"solver_type": "NESTEROV", "type": "nesterov"})["type"] == "Nesterov"


@pytest.mark.parametrize(("cfg", "message"), [
    ({"bse_lr": 0.1}, r"solver\.bse_lr: unknown key; did you mean 'base_lr'\?"),
    ({"iter_sise": 2}, r"did you mean 'iter_size'\?"),
    ({"iter_size": 0}, r"solver\.iter_size: must be >= 1"),
    ({"max_iter": True}, r"solver\.max_iter: expected a whole number, got True"),
    ({"lr_policy": "stepp"}, r"did you mean 'step'\?"),
    ({"momentum": 1.0}, r"solver\.momentum: must be < 1\.0"),
    ({"test_iter": [1, 2]}, "one test net"),
    ({"lr_mult": 1}, r"solver\.lr_mult: unknown key"),
])
def test_solver_mistakes_are_named(cfg, message):
    with pytest.raises(ConfigError, match=message):
        normalize_solver_config(cfg)


def test_a_job_with_a_misspelt_solver_key_does_not_load():
    with pytest.raises(ConfigError, match=r"solver\.weight_decy: unknown key; did you mean 'weight_decay'\?"):
        load_config(QUICK, overrides=["solver.weight_decy=0.1"])
