"""Config: YAML jobs, --set overrides and validation errors that name the layer and field."""
import pytest
import yaml

from minwa.config import load_config, parse_override
from minwa.errors import ConfigError, ShapeError


def job(**changes):
    raw = {
        "name": "tiny",
        "model": {"layers": [
            {"name": "data", "type": "Input", "top": ["data", "label"],
             "input_param": {"shape": [{"dim": [2, 6]}, {"dim": [2]}]}},
            {"name": "fc", "type": "InnerProduct", "bottom": "data", "top": "fc",
             "inner_product_param": {"num_output": 4}},
            {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["fc", "label"], "top": "loss"},
        ]},
        "solver": {"base_lr": 0.1},
        "data": {"source": "shapes"},
    }
    raw.update(changes)
    return raw


def test_loads_yaml_file_and_applies_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job()))
    loaded = load_config(str(path), overrides=["solver.base_lr=0.02", "data.batch_size=8",
                                               "model.layers.fc.inner_product_param.num_output=7"])
    assert loaded.name == "tiny"
    assert loaded.solver["base_lr"] == 0.02
    assert loaded.solver["momentum"] == 0.0  # Caffe default filled in
    assert loaded.model["layers"][1]["inner_product_param"]["num_output"] == 7
    assert loaded.data["batch_size"] == 8
    assert loaded.run_dir.endswith("tiny")


def test_override_dict_form():
    loaded = load_config(job(), overrides={"solver.momentum": 0.9})
    assert loaded.solver["momentum"] == 0.9


@pytest.mark.parametrize("text", ["solver.base_lr", "=3"])
def test_bad_override_syntax(text):
    with pytest.raises(ConfigError, match="--set"):
        parse_override(text)


def test_unknown_layer_type_is_reported_before_compute():
    raw = job()
    raw["model"]["layers"][1]["type"] = "FullyConnected"
    with pytest.raises(ConfigError, match=r"layer 'fc'.*'FullyConnected'.*known types: .*InnerProduct"):
        load_config(raw)


def test_missing_bottom_blob():
    raw = job()
    raw["model"]["layers"][2]["bottom"] = ["fc", "labels"]
    with pytest.raises(ConfigError, match=r"layer 'loss'.*bottom.*'labels'"):
        load_config(raw)


def test_shape_mismatch_names_the_layer():
    raw = job()
    raw["model"]["layers"][0]["input_param"]["shape"][1]["dim"] = [3]
    with pytest.raises(ShapeError, match=r"layer 'loss'"):
        load_config(raw)


def test_bad_parameter_value_names_layer_and_field():
    raw = job()
    raw["model"]["layers"][1]["inner_product_param"]["num_output"] = 0
    with pytest.raises(ConfigError, match=r"layer 'fc'.*num_output"):
        load_config(raw)


def test_bad_solver_value():
    with pytest.raises(ConfigError, match="solver.base_lr"):
        load_config(job(solver={"base_lr": "fast"}))


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown top-level key.*modle"):
        load_config(job(modle={}))


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such/job.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))


@pytest.mark.parametrize("name", ["default", "cifar10_full", "cifar10_quick", "deep_image"])
def test_shipped_configs_validate(name):
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    loaded = load_config(os.path.join(root, f"{name}.yaml"))
    assert loaded.model["layers"]
