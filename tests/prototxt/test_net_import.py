"""NetParameter -> model dict: data layers, old-style inputs, V1 upgrade, pipeline layers, refusals."""
import pytest

from minwa.errors import ConfigError
from minwa.prototxt import net_from_prototxt, net_to_model, parse_prototxt


def _known():
    import minwa.layers

    return set(minwa.layers.known_types())


def _need_types(model):
    missing = sorted({layer["type"] for layer in model["layers"]} - _known())
    if missing:
        pytest.skip(f"layer types not registered yet: {missing}")


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
