"""Caffe prototxt import: the text-format reader, net and solver conversion, and the reference nets."""
import os

import pytest
import yaml

from minwa.errors import ConfigError
from minwa.prototxt import (
    net_from_prototxt,
    net_to_model,
    parse_prototxt,
    read_prototxt,
    solver_from_prototxt,
    solver_to_dict,
)

CAFFE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "caffe")
REPO = os.path.join(os.path.dirname(__file__), "..")


def _known():
    import minwa.layers

    return set(minwa.layers.known_types())


def _need_types(model):
    missing = sorted({layer["type"] for layer in model["layers"]} - _known())
    if missing:
        pytest.skip(f"layer types not registered yet: {missing}")


# -- the text format ---------------------------------------------------------------------

def test_messages_scalars_and_comments():
    parsed = parse_prototxt('''
        # a comment
        name: "net"   # trailing comment
        force_backward: true
        layer {
          name: 'a' type: "Convolution"
          convolution_param: { num_output: 32 bias_term: false engine: CAFFE }
        }
        layer < name: "b" type: "ReLU" relu_param { negative_slope: -1.5e-2 } >
        values: 0x1F ratio: 2.5f big: -3 neg_inf: -inf
    ''')
    assert parsed["name"] == "net" and parsed["force_backward"] is True
    first, second = parsed["layer"]
    assert first["convolution_param"] == {"num_output": 32, "bias_term": False, "engine": "CAFFE"}
    assert second["relu_param"]["negative_slope"] == pytest.approx(-0.015)
    assert parsed["values"] == 31 and parsed["ratio"] == 2.5 and parsed["big"] == -3
    assert parsed["neg_inf"] == float("-inf")


def test_strings_escapes_and_concatenation():
    parsed = parse_prototxt(r'''a: "x\"y\n\101" b: 'it''s' c: "one " "two"''')
    assert parsed["a"] == 'x"y\nA'
    assert parsed["b"] == "it" + "s"  # adjacent strings concatenate
    assert parsed["c"] == "one two"


def test_repeated_fields_follow_caffes_schema():
    parsed = parse_prototxt('''
        layer { name: "in" type: "Input" top: "data"
                input_param { shape { dim: 1 dim: 3 } } }
        layer { name: "r" type: "Reshape" bottom: "data" top: "r"
                reshape_param { shape { dim: [1, 3] } } }
    ''')
    input_layer, reshape = parsed["layer"]
    assert input_layer["top"] == ["data"]  # repeated even when given once
    assert input_layer["input_param"]["shape"] == [{"dim": [1, 3]}]  # InputParameter.shape is repeated
    assert reshape["reshape_param"]["shape"] == {"dim": [1, 3]}  # ReshapeParameter.shape is not
    assert reshape["name"] == "r"  # singular fields stay scalars


def test_a_singular_field_given_twice_becomes_a_list():
    assert parse_prototxt("foo: 1 foo: 2")["foo"] == [1, 2]


@pytest.mark.parametrize("text, where", [
    ("layer { name: 'a' ", "1:"),
    ("a: }", "1:4"),
    ("layer {\n  name 'a'\n}", "2:"),
    ("a: 1 $", "1:6"),
    ("a: [1, 2", "1:"),
    ("[ext.name]: 3", "1:1"),
])
def test_syntax_errors_name_line_and_column(text, where):
    with pytest.raises(ConfigError) as info:
        parse_prototxt(text, filename="bad.prototxt")
    assert f"bad.prototxt:{where}" in str(info.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_prototxt(str(tmp_path / "missing.prototxt"))


# -- the pipeline papers' Sink and Source layers -----------------------------------------

SINK = '''
layer {
  name: "sink1"
  type: "Sink"
  bottom: "pool1"
  sink_param: {
    host_name: "server.example.com"
    port: 3000
  }
}
'''
SOURCE = '''
layer {
  name: "source1"
  type: "Source"
  top: "pool1"
  source_param: {
    port: 3000
  }
  reshape_param{ shape { dim : [ 100, 32, 16, 16 ] } }
}
'''


def test_sink_and_source_of_the_papers_figures_keep_their_parameters():
    client, _ = net_to_model(parse_prototxt(SINK), check_types=False)
    cloud, _ = net_to_model(parse_prototxt(SOURCE), check_types=False)
    sink, source = client["layers"][0], cloud["layers"][0]
    assert sink == {"name": "sink1", "type": "Sink", "bottom": ["pool1"],
                    "sink_param": {"host_name": "server.example.com", "port": 3000}}
    assert source["source_param"] == {"port": 3000}
    assert source["reshape_param"]["shape"]["dim"] == [100, 32, 16, 16]
    assert source["top"] == ["pool1"]


def test_sink_and_source_pass_the_layer_type_check():
    model, _ = net_to_model(parse_prototxt(SINK + SOURCE), check_types=True)
    assert [layer["type"] for layer in model["layers"]] == ["Sink", "Source"]


# -- nets --------------------------------------------------------------------------------

DATA_NET = '''
name: "tiny"
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { mirror: true crop_size: 24 mean_file: "mean.binaryproto" scale: 0.5 }
        data_param { source: "train_lmdb" batch_size: 16 backend: LMDB } }
layer { name: "d" type: "Data" top: "data" top: "label" exclude { phase: TRAIN }
        transform_param { crop_size: 24 } data_param { source: "test_lmdb" batch_size: 8 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 } inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
        loss_param { ignore_label: -1 } }
'''


def test_data_layers_become_input_layers_with_a_data_hint():
    model, hint = net_to_model(parse_prototxt(DATA_NET), input_shape=(3, 32, 32))
    train_in, test_in, ip, loss = model["layers"]
    assert train_in == {"name": "d", "type": "Input", "top": ["data", "label"],
                        "input_param": {"shape": [{"dim": [16, 3, 24, 24]}, {"dim": [16]}]},
                        "include": [{"phase": "TRAIN"}]}
    assert test_in["input_param"]["shape"][0]["dim"] == [8, 3, 24, 24]
    assert test_in["include"] == [{"phase": "TEST"}]  # exclude TRAIN == include TEST
    assert ip["param"] == [{"lr_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]
    assert loss["loss_param"] == {"ignore_label": -1}
    assert hint["train"] == {"type": "Data", "batch_size": 16, "input_shape": [3, 24, 24], "source": "train_lmdb",
                             "backend": "LMDB", "mean_file": "mean.binaryproto", "crop_size": 24, "mirror": True,
                             "scale": 0.5}
    assert hint["test"]["source"] == "test_lmdb" and hint["test"]["batch_size"] == 8


def test_converted_net_builds_and_runs():
    from minwa.net import Net

    model, _ = net_to_model(parse_prototxt(DATA_NET), input_shape=(3, 32, 32))
    _need_types(model)
    for phase, batch in (("TRAIN", 16), ("TEST", 8)):
        net = Net(model, phase=phase, dtype="float64", init=False)
        assert net.blob_shapes["data"] == (batch, 3, 24, 24)
        assert net.blob_shapes["ip"] == (batch, 10)
        assert net.input_names == ["data", "label"]


def test_image_shape_must_come_from_somewhere():
    with pytest.raises(ConfigError, match=r"layer 'd' \(Data\).*input_shape"):
        net_to_model(parse_prototxt(DATA_NET.replace("crop_size: 24", "")), check_types=False)


def test_image_shape_of_a_known_data_set_is_guessed_with_a_note():
    text = DATA_NET.replace("crop_size: 24", "").replace("train_lmdb", "examples/cifar10/cifar10_train_lmdb")
    text = text.replace('"test_lmdb"', '"examples/cifar10/cifar10_test_lmdb"')
    notes = []
    model, _ = net_to_model(parse_prototxt(text), check_types=False, notes=notes)
    assert model["layers"][0]["input_param"]["shape"][0]["dim"] == [16, 3, 32, 32]
    assert any("guessed" in note and "cifar" in note for note in notes)


def test_other_data_layer_kinds():
    text = '''
    layer { name: "m" type: "MemoryData" top: "data" top: "label"
            memory_data_param { batch_size: 4 channels: 2 height: 5 width: 6 } }
    layer { name: "i" type: "ImageData" top: "img" top: "lab"
            image_data_param { source: "list.txt" batch_size: 3 new_height: 40 new_width: 30 is_color: false } }
    layer { name: "h" type: "HDF5Data" top: "x" top: "y" hdf5_data_param { source: "files.txt" batch_size: 7 } }
    layer { name: "z" type: "DummyData" top: "noise" dummy_data_param { shape { dim: 2 dim: 9 } } }
    '''
    with pytest.raises(ConfigError, match=r"layer 'h' \(HDF5Data\)"):
        net_to_model(parse_prototxt(text), check_types=False)
    model, _ = net_to_model(parse_prototxt(text.replace('"files.txt"', '"mnist_files.txt"')), check_types=False)
    shapes = [layer["input_param"]["shape"] for layer in model["layers"]]
    assert shapes[0] == [{"dim": [4, 2, 5, 6]}, {"dim": [4]}]
    assert shapes[1] == [{"dim": [3, 1, 40, 30]}, {"dim": [3]}]
    assert shapes[2] == [{"dim": [7, 1, 28, 28]}, {"dim": [7]}]
    assert shapes[3] == [{"dim": [2, 9]}]


def test_old_style_inputs():
    dims = parse_prototxt('input: "data" input_dim: 10 input_dim: 3 input_dim: 8 input_dim: 8 '
                          'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }')
    model, _ = net_to_model(dims)
    assert model["layers"][0] == {"name": "data", "type": "Input", "top": ["data"],
                                  "input_param": {"shape": [{"dim": [10, 3, 8, 8]}]}}
    shaped = parse_prototxt('input: "a" input_shape { dim: 2 dim: 5 } input: "b" input_shape { dim: 2 }'
                            'layer { name: "r" type: "ReLU" bottom: "a" top: "r" }')
    model, _ = net_to_model(shaped)
    assert [layer["input_param"]["shape"][0]["dim"] for layer in model["layers"][:2]] == [[2, 5], [2]]
    with pytest.raises(ConfigError, match="input_dim"):
        net_to_model(parse_prototxt('input: "a" input_dim: 1 input_dim: 2 layer { name: "r" type: "ReLU" }'))


def test_v1_layers_are_upgraded():
    text = '''
    name: "old"
    input: "data" input_dim: 2 input_dim: 4 input_dim: 1 input_dim: 1
    layers { name: "fc" type: INNER_PRODUCT bottom: "data" top: "fc" blobs_lr: 1 blobs_lr: 2
             weight_decay: 1 weight_decay: 0 inner_product_param { num_output: 3 } }
    layers { name: "relu" type: RELU bottom: "fc" top: "fc" }
    layers { name: "loss" type: SOFTMAX_LOSS bottom: "fc" bottom: "data" top: "loss" }
    '''
    model, _ = net_to_model(parse_prototxt(text), check_types=False)
    fc, relu, loss = model["layers"][1:]
    assert (fc["type"], relu["type"], loss["type"]) == ("InnerProduct", "ReLU", "SoftmaxWithLoss")
    assert fc["param"] == [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]


@pytest.mark.parametrize("layer, message", [
    ('layer { name: "w" type: "Warp" bottom: "x" top: "y" }',
     r"layer 'w' \(Warp\): layer type 'Warp' is not supported by minwa; supported types: .*InnerProduct"),
    ('layer { name: "c" type: "InnerProduct" pooling_param { pool: MAX } }',
     r"layer 'c' \(InnerProduct\), field 'pooling_param': not used by InnerProduct layers"),
    ('layer { name: "c" type: "InnerProduct" blobs { data: 1 } }', r"layer 'c' \(InnerProduct\), field 'blobs'"),
    ('layer { name: "c" type: "InnerProduct" frobnicate: 3 }', r"field 'frobnicate': unknown key; known: bottom"),
    ('layer { name: "c" type: "ReLU" include { stage: "deploy" } }',
     r"layer 'c' \(ReLU\), field 'include': rule field\(s\) stage"),
    ('layer { name: "c" type: "ReLU" include { phase: TRAIN } exclude { phase: TRAIN } }', "no phase"),
    ('layer { name: "c" }', r"layer 'c' \(\?\): missing 'type'"),
    ('layers { layer { name: "c" type: "conv" } }', "V0 format"),
    ('layer { name: "c" type: "ReLU" } frob: 1', r"net: field\(s\) frob"),
])
def test_unsupported_types_and_fields_are_named(layer, message):
    with pytest.raises(ConfigError, match=message):
        net_to_model(parse_prototxt(layer))


def test_unknown_type_error_through_the_file_names_the_file(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text('layer { name: "w" type: "Warp" }')
    with pytest.raises(ConfigError, match=r"net\.prototxt: layer 'w' \(Warp\)"):
        net_from_prototxt(str(path))


# -- solvers -----------------------------------------------------------------------------

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


# -- Caffe's reference files -------------------------------------------------------------

def _caffe_files():
    if not os.path.isdir(CAFFE_DIR):
        return []
    return sorted(os.path.join(CAFFE_DIR, name) for name in os.listdir(CAFFE_DIR) if name.endswith(".prototxt"))


def _caffe(name):
    path = os.path.join(CAFFE_DIR, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not here (../shared is only beside the project checkout)")
    return path


@pytest.mark.parametrize("path", _caffe_files() or [pytest.param(None, marks=pytest.mark.skip("no ../shared"))])
def test_every_reference_file_parses_and_converts(path):
    if "solver" in os.path.basename(path):
        solver = solver_from_prototxt(path)
        assert solver["base_lr"] > 0 and solver["max_iter"] > 0 and isinstance(solver["test_iter"], int)
        return
    model, _ = net_from_prototxt(path, check_types=False)
    assert len(model["layers"]) >= 10
    assert all(set(layer) >= {"name", "type"} for layer in model["layers"])
    if not {layer["type"] for layer in model["layers"]} - _known():
        net_from_prototxt(path)  # with the type check


@pytest.mark.parametrize("name, phase, blob, shape", [
    ("cifar10__cifar10_full_train_test.prototxt", "TRAIN", "pool3", (100, 64, 4, 4)),
    ("cifar10__cifar10_full_train_test.prototxt", "TEST", "pool1", (100, 32, 16, 16)),
    ("cifar10__cifar10_quick_train_test.prototxt", "TRAIN", "pool3", (100, 64, 4, 4)),
    ("cifar10__cifar10_quick_train_test.prototxt", "TEST", "ip2", (100, 10)),
    ("mnist__lenet_train_test.prototxt", "TRAIN", "pool2", (64, 50, 4, 4)),
    ("mnist__lenet_train_test.prototxt", "TEST", "ip2", (100, 10)),
    ("bvlc_alexnet__train_val.prototxt", "TRAIN", "pool5", (256, 256, 6, 6)),
    ("bvlc_alexnet__train_val.prototxt", "TEST", "fc8", (50, 1000)),
    ("bvlc_alexnet__deploy.prototxt", "TEST", "pool5", (10, 256, 6, 6)),
])
def test_reference_nets_build_with_caffes_shapes(name, phase, blob, shape):
    from minwa.net import Net

    model, _ = net_from_prototxt(_caffe(name), check_types=False)
    _need_types(model)
    net = Net(model, phase=phase, init=False)
    assert net.blob_shapes[blob] == shape


def test_reference_solver_values():
    solver = solver_from_prototxt(_caffe("cifar10__cifar10_full_solver.prototxt"))
    assert (solver["base_lr"], solver["momentum"], solver["weight_decay"]) == (0.001, 0.9, 0.004)
    assert (solver["lr_policy"], solver["max_iter"], solver["test_iter"]) == ("fixed", 60000, 100)


def test_cifar10_full_matches_the_shipped_yaml_config():
    """The converted Caffe file and configs/cifar10_full.yaml define the same layers and parameters."""
    from minwa.net import Net

    config = os.path.join(REPO, "configs", "cifar10_full.yaml")
    if not os.path.exists(config):
        pytest.skip("configs/cifar10_full.yaml is not there")
    model, _ = net_from_prototxt(_caffe("cifar10__cifar10_full_train_test.prototxt"), check_types=False)
    _need_types(model)
    with open(config, encoding="utf-8") as f:
        shipped = yaml.safe_load(f)["model"]
    for phase in ("TRAIN", "TEST"):
        ours, theirs = Net(model, phase=phase, init=False), Net(shipped, phase=phase, init=False)
        assert [(layer.name, layer.type) for layer in ours.layers] == [(layer.name, layer.type)
                                                                        for layer in theirs.layers]
        assert [(p.name, p.shape, p.lr_mult, p.decay_mult, p.filler) for p in ours.params] == \
               [(p.name, p.shape, p.lr_mult, p.decay_mult, p.filler) for p in theirs.params]
