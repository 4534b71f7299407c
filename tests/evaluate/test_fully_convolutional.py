"""FC-to-conv conversion: identical scores at the training size, a sliding-window map at a larger one."""
import numpy
import pytest

from minwa.errors import ConfigError
from minwa.evaluate.fully_convolutional import FullyConvolutional, fully_convolutional
from minwa.net import Net


def small_model(size=8, flatten=False, transpose=False):
    layers = [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [4, 2, size, size]}, {"dim": [4]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 3, "kernel_size": 3, "weight_filler": {"type": "gaussian", "std": 0.5},
                               "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
    ]
    bottom = "pool1"
    if flatten:
        layers.append({"name": "flat", "type": "Flatten", "bottom": "pool1", "top": "flat"})
        bottom = "flat"
    layers += [
        {"name": "ip1", "type": "InnerProduct", "bottom": bottom, "top": "ip1",
         "inner_product_param": {"num_output": 5, "transpose": transpose,
                                 "weight_filler": {"type": "gaussian", "std": 0.3},
                                 "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "relu2", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
        {"name": "drop", "type": "Dropout", "bottom": "ip1", "top": "ip1"},
        {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "ip2",
         "inner_product_param": {"num_output": 4, "weight_filler": {"type": "gaussian", "std": 0.3},
                                 "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "acc", "type": "Accuracy", "bottom": ["ip2", "label"], "top": "acc", "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss"},
    ]
    return {"name": "small", "layers": layers}


def trained(model, seed=3):
    net = Net(model, phase="TEST", dtype="float64", seed=seed)
    return net, {p.name: numpy.array(p.data) for p in net.params}


def converted_net(fc, params, height, width, batch):
    net = Net(fc.at_size(height, width, batch), phase="TEST", dtype="float64", init=False)
    for p in net.params:
        p.data = params[p.name]
    return net


@pytest.mark.parametrize("flatten,transpose", [(False, False), (True, False), (False, True)])
def test_same_scores_at_training_size(flatten, transpose):
    model = small_model(flatten=flatten, transpose=transpose)
    net, params = trained(model)
    fc = FullyConvolutional(model)
    assert fc.converted == {"ip1": (3, 3), "ip2": (1, 1)}
    assert fc.scores == "ip2"
    assert [layer["type"] for layer in fc.model["layers"]].count("Convolution") == 3
    x = numpy.random.default_rng(0).normal(size=(4, 2, 8, 8))
    want = net.forward({"data": x, "label": numpy.zeros(4)}) and net.blobs["ip2"]
    got = converted_net(fc, fc.convert_params(params), 8, 8, 4).forward({"data": x})["ip2"]
    assert got.shape == (4, 4, 1, 1)
    numpy.testing.assert_allclose(got[:, :, 0, 0], want, rtol=0, atol=1e-10)


def test_dense_map_equals_sliding_the_original_net():
    model = small_model()
    net, params = trained(model)
    fc = FullyConvolutional(model)
    x = numpy.random.default_rng(1).normal(size=(2, 2, 14, 12))
    dense = converted_net(fc, fc.convert_params(params), 14, 12, 2).forward({"data": x})["ip2"]
    # input 14x12 -> conv 12x10 -> pool 6x5 -> 3x3 kernel -> 4x3 map; one map step = 2 input pixels
    assert dense.shape == (2, 4, 4, 3)
    for i in range(4):
        for j in range(3):
            crop = x[:, :, 2 * i:2 * i + 8, 2 * j:2 * j + 8]
            net.forward({"data": crop, "label": numpy.zeros(2)})
            numpy.testing.assert_allclose(dense[:, :, i, j], net.blobs["ip2"], rtol=0, atol=1e-10)


def test_function_form_and_receptive_field():
    model = small_model()
    _, params = trained(model)
    conv_model, conv_params = fully_convolutional(model, params)
    assert conv_params["ip1.weight"].shape == (5, 3, 3, 3)
    numpy.testing.assert_array_equal(conv_params["ip1.weight"].reshape(5, -1), params["ip1.weight"])
    assert conv_model["layers"][0]["type"] == "Input"
    assert all(layer["type"] not in ("Accuracy", "SoftmaxWithLoss") for layer in conv_model["layers"])
    # 7x7 -> conv 5x5 -> pool 3x3 still fits the 3x3 kernel; 6x6 -> 4x4 -> 2x2 does not
    assert FullyConvolutional(model).min_size() == 7


def test_converting_twice_changes_nothing():
    fc = FullyConvolutional(small_model())
    again = FullyConvolutional(fc.model)
    assert again.converted == {}
    assert again.model["layers"] == fc.model["layers"]


def test_inner_product_on_a_vector_input_is_an_error():
    model = {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [2, 6]}, {"dim": [2]}]}},
        {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "ip", "inner_product_param": {"num_output": 3}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"}]}
    with pytest.raises(ConfigError, match="images"):
        FullyConvolutional(model)
