"""``minwa convert``: Caffe net + solver prototxt -> a YAML job that loads and builds."""
import os

import pytest
import yaml

from minwa.errors import ConfigError
from minwa.launch import convert_command
from minwa.launch.cli import main as minwa_main

CAFFE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "caffe")

NET = '''
name: "small"
layer { name: "d" type: "Data" top: "data" top: "label"
        transform_param { crop_size: 6 scale: 0.0039 } data_param { source: "train.lmdb" batch_size: 5 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
'''
SOLVER = 'net: "small.prototxt" base_lr: 0.05 momentum: 0.9 lr_policy: "step" stepsize: 10 gamma: 0.5 ' \
         'max_iter: 30 solver_mode: CPU test_iter: 2 test_interval: 10'


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_writes_a_yaml_job_that_loads_and_builds(tmp_path, capsys):
    from minwa.config import load_config

    net = _write(tmp_path, "small.prototxt", NET)
    solver = _write(tmp_path, "solver.prototxt", SOLVER)
    out = str(tmp_path / "small.yaml")
    assert convert_command.main([net, "--solver", solver, "-o", out, "--input-shape", "1,9,9"]) == 0
    text = (tmp_path / "small.yaml").read_text(encoding="utf-8")
    assert "# Caffe's data layers said" in text and "train.lmdb" in text
    job = yaml.safe_load(text)
    assert [layer["type"] for layer in job["model"]["layers"]] == ["Input", "InnerProduct", "SoftmaxWithLoss"]
    assert job["model"]["layers"][0]["input_param"]["shape"] == [{"dim": [5, 1, 6, 6]}, {"dim": [5]}]
    assert job["solver"]["base_lr"] == 0.05 and job["solver"]["stepsize"] == 10 and "net" not in job["solver"]
    loaded = load_config(out)  # the lead's loader accepts it as a job
    assert loaded.solver["lr_policy"] == "step"
    err = capsys.readouterr().err
    assert "solver_mode is Caffe-specific" in err and f"wrote {out}" in err


def test_prints_to_stdout_without_output(tmp_path, capsys):
    net = _write(tmp_path, "small.prototxt", NET)
    assert convert_command.main([net, "--input-shape", "3,8,8"]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    assert job["name"] == "small" and job["model"]["layers"][0]["input_param"]["shape"][0]["dim"] == [5, 3, 6, 6]


def test_shape_errors_of_the_converted_net_are_reported(tmp_path):
    bad = NET.replace('bottom: "ip" bottom: "label"', 'bottom: "ip" bottom: "nowhere"')
    net = _write(tmp_path, "bad.prototxt", bad)
    with pytest.raises(ConfigError, match="the converted TRAIN net does not build.*nowhere"):
        convert_command.main([net, "--input-shape", "1,9,9"])
    assert convert_command.main([net, "--input-shape", "1,9,9", "--no-check", "-o", str(tmp_path / "x.yaml")]) == 0


@pytest.mark.parametrize("shape", ["3,32", "a,b,c", "3,0,4"])
def test_bad_input_shape(tmp_path, shape):
    net = _write(tmp_path, "small.prototxt", NET)
    with pytest.raises(ConfigError, match="--input-shape"):
        convert_command.main([net, "--input-shape", shape])


def test_cli_names_unsupported_layer_and_exits_nonzero(tmp_path, capsys):
    net = _write(tmp_path, "warp.prototxt", NET.replace('type: "InnerProduct"', 'type: "Warp"'))
    assert minwa_main(["convert", net, "--input-shape", "1,9,9"]) == 1
    err = capsys.readouterr().err
    assert "minwa convert: error:" in err and "layer 'ip' (Warp)" in err and "not supported" in err


def test_reference_cifar10_full_with_its_solver(tmp_path):
    net = os.path.join(CAFFE_DIR, "cifar10__cifar10_full_train_test.prototxt")
    solver = os.path.join(CAFFE_DIR, "cifar10__cifar10_full_solver.prototxt")
    if not os.path.exists(net):
        pytest.skip("../shared/data/caffe is not here")
    out = str(tmp_path / "cifar10_full.yaml")
    try:
        code = convert_command.main([net, "--solver", solver, "-o", out])
    except ConfigError as exc:
        if "not supported by minwa" in str(exc):
            pytest.skip(f"layers not registered yet: {exc}")
        raise
    assert code == 0
    job = yaml.safe_load((tmp_path / "cifar10_full.yaml").read_text(encoding="utf-8"))
    assert job["solver"]["weight_decay"] == 0.004 and job["solver"]["max_iter"] == 60000
    assert [layer["name"] for layer in job["model"]["layers"]][-3:] == ["ip1", "accuracy", "loss"]
