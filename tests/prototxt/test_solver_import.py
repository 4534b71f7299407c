"""SolverParameter -> the solver block: kept fields, enums, Caffe-only fields, errors."""
import pytest

from minwa.errors import ConfigError
from minwa.prototxt import parse_prototxt, solver_to_dict


def test_solver_fields_and_enums():
    parsed = parse_prototxt('''
        net: "x.prototxt" base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: "multistep"
        gamma: 0.1 stepvalue: 100 stepvalue: 200 max_iter: 300 test_iter: 10 test_interval: 50
        display: 20 snapshot: 100 snapshot_prefix: "snap" random_seed: 7 solver_type: NESTEROV
        solver_mode: GPU device_id: 1 snapshot_format: HDF5
    ''')
    notes = []
    solver = solver_to_dict(parsed, notes=notes)
    assert solver == {"net": "x.prototxt", "base_lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005,
                      "lr_policy": "multistep", "gamma": 0.1, "stepvalue": [100, 200], "max_iter": 300,
                      "test_iter": 10, "test_interval": 50, "display": 20, "snapshot": 100,
                      "snapshot_prefix": "snap", "random_seed": 7, "type": "Nesterov"}
    assert any("solver_mode" in note for note in notes)
    assert solver_to_dict(parse_prototxt('type: "Adam" stepvalue: 5'))["stepvalue"] == [5]


@pytest.mark.parametrize("text, message", [
    ("test_iter: 1 test_iter: 2", "one test net"),
    ("test_net: 'a'", "'test_net': not supported"),
    ("solver_type: MAGIC", "solver_type"),
    ("type: 'SGD' solver_type: ADAM", "disagree"),
    ("colour: 3", "'colour'"),
])
def test_solver_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        solver_to_dict(parse_prototxt(text))
