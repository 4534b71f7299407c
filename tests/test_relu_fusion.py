"""In-place ReLUs folded into their Convolution or MAX Pooling give the unfolded net's values bit for bit."""
import copy
import os

import numpy as np
import pytest

import minwa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cifar10_full(batch):
    model = copy.deepcopy(minwa.load_config(os.path.join(ROOT, "configs", "cifar10_full.yaml")).model)
    model["layers"][0]["input_param"]["shape"] = [{"dim": [batch, 3, 32, 32]}, {"dim": [batch]}]
    return model


def _out_of_place(model):
    """The same net with every ReLU writing a new blob (nothing can be folded then)."""
    model = copy.deepcopy(model)
    renamed = {}
    for spec in model["layers"]:
        spec["bottom"] = [renamed.get(b, b) for b in minwa.net._as_list(spec.get("bottom"), "bottom")]
        if spec["type"] == "ReLU":
            spec["top"] = [spec["bottom"][0] + "_relu"]
            renamed[spec["bottom"][0]] = spec["top"][0]
    return model


def _step(model, x, y):
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=5)
    data, label = net.input_names
    out = net.forward({data: x, label: y})
    net.backward()
    return net, [np.array(net.loss)] + [np.array(v) for v in out.values()] + [np.array(p.grad) for p in net.params]


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_cifar10_full_folds_its_three_relus_and_keeps_every_value(monkeypatch, kernels):
    rng = np.random.default_rng(7)
    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("MINWA_NUMBA", "1" if kernels == "numba" else "0")
    model = _cifar10_full(4)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=4)
    folded, folded_values = _step(model, x, y)
    plain, plain_values = _step(_out_of_place(model), x, y)
    assert folded.fused_relus == ["relu1", "relu2", "relu3"]  # after pool1 (MAX), conv2 and conv3
    assert plain.fused_relus == []
    for a, b in zip(folded_values, plain_values):
        np.testing.assert_array_equal(a, b)


def _tiny(extra_layers, relu_param=None, pool="MAX"):
    layers = [
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [2, 3, 8, 8]}]}},
        {"name": "conv", "type": "Convolution", "bottom": ["data"], "top": ["conv"],
         "convolution_param": {"num_output": 4, "kernel_size": 3, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "pool", "type": "Pooling", "bottom": ["conv"], "top": ["pool"],
         "pooling_param": {"pool": pool, "kernel_size": 2, "stride": 2}},
        {"name": "relu", "type": "ReLU", "bottom": ["pool"], "top": ["pool"], **({"relu_param": relu_param}
                                                                                  if relu_param else {})},
    ]
    return {"name": "tiny", "layers": layers + extra_layers}


def test_a_relu_is_folded_only_where_nothing_reads_the_value_before_it():
    assert minwa.Net(_tiny([])).fused_relus == ["relu"]
    assert minwa.Net(_tiny([], pool="AVE")).fused_relus == []  # ReLU and mean do not commute
    assert minwa.Net(_tiny([], relu_param={"negative_slope": 0.1})).fused_relus == []
    spy = _tiny([])
    spy["layers"].insert(3, {"name": "peek", "type": "Split", "bottom": ["pool"], "top": ["pool_copy"]})
    assert minwa.Net(spy).fused_relus == []  # 'peek' reads the pre-ReLU blob


def test_a_folded_max_pool_passes_no_gradient_where_the_relu_cut_it(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("MINWA_NUMBA", "1")
    net = minwa.Net(_tiny([]), seed=2)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = net.forward({"data": x})["pool"]
    assert (out >= 0).all() and (out == 0).any()
