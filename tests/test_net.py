"""Net: wiring, phases, in-place layers, gradient flow through the whole DAG, hooks and errors."""
import numpy
import pytest

from minwa.errors import ConfigError, ShapeError
from minwa.net import Net


def mlp(hidden=5, in_place=True, extra=()):
    relu_top = "h" if in_place else "h_relu"
    return {"name": "mlp", "layers": [
        {"name": "data", "type": "Input", "top": ["x", "y"],
         "input_param": {"shape": [{"dim": [4, 3]}, {"dim": [4]}]}},
        {"name": "fc1", "type": "InnerProduct", "bottom": "x", "top": "h",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}],
         "inner_product_param": {"num_output": hidden, "weight_filler": {"type": "gaussian", "std": 0.5},
                                 "bias_filler": {"type": "constant", "value": 0.1}}},
        {"name": "relu", "type": "ReLU", "bottom": "h", "top": relu_top},
        {"name": "fc2", "type": "InnerProduct", "bottom": relu_top, "top": "score",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "acc", "type": "Accuracy", "bottom": ["score", "y"], "top": "acc", "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["score", "y"], "top": "loss"},
        *extra,
    ]}


def batch(seed=0):
    rng = numpy.random.default_rng(seed)
    return {"x": rng.normal(size=(4, 3)), "y": numpy.array([0, 2, 1, 2])}


def test_phases_select_layers_and_outputs():
    train = Net(mlp(), phase="TRAIN", dtype="float64")
    test = Net(mlp(), phase="TEST", dtype="float64")
    assert [layer.name for layer in train.layers] == ["data", "fc1", "relu", "fc2", "loss"]
    assert train.output_names == ["loss"]
    assert sorted(test.output_names) == ["acc", "loss"]
    assert [p.name for p in train.params] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert train.blob_shapes["score"] == (4, 3)


def test_same_seed_same_weights_and_param_multipliers():
    a, b = Net(mlp(), seed=3), Net(mlp(), seed=3)
    for p, q in zip(a.params, b.params):
        numpy.testing.assert_array_equal(p.data, q.data)
    assert a.param("fc1.bias").lr_mult == 2.0
    numpy.testing.assert_array_equal(a.param("fc1.bias").data, numpy.full(5, 0.1, dtype=numpy.float32))


def _numeric_grad(net, feed, param, eps=1e-6):
    grad = numpy.zeros_like(param.data)
    flat, out = param.data.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        net.forward(feed)
        plus = net.loss
        flat[i] = old - eps
        net.forward(feed)
        minus = net.loss
        flat[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("in_place", [True, False])
def test_whole_net_gradients_match_central_differences(in_place):
    net = Net(mlp(in_place=in_place), dtype="float64", seed=1)
    feed = batch()
    net.forward(feed)
    net.backward()
    for param in net.params:
        numpy.testing.assert_allclose(param.grad, _numeric_grad(net, feed, param), rtol=1e-5, atol=1e-8)


def test_blob_with_two_consumers_sums_gradients():
    """x feeds fc1 and a second head; the gradient reaching fc1 params is unchanged, fc_side gets its own."""
    extra = [
        {"name": "side", "type": "InnerProduct", "bottom": "h", "top": "side_score",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "side_loss", "type": "SoftmaxWithLoss", "bottom": ["side_score", "y"], "top": "side_loss",
         "loss_weight": 0.5},
    ]
    net = Net(mlp(in_place=False, extra=extra), dtype="float64", seed=2)
    feed = batch(1)
    outputs = net.forward(feed)
    assert net.loss == pytest.approx(float(outputs["loss"]) + 0.5 * float(outputs["side_loss"]))
    net.backward()
    for param in net.params:
        numpy.testing.assert_allclose(param.grad, _numeric_grad(net, feed, param), rtol=1e-5, atol=1e-8)


def test_hooks_run_in_order():
    net = Net(mlp(), dtype="float64")
    seen = []
    net.before_forward.append(lambda i, layer: seen.append(("f", layer.name)))
    net.after_backward.append(lambda i, layer: seen.append(("b", layer.name)))
    net.forward(batch())
    net.backward()
    assert [n for k, n in seen if k == "f"] == ["data", "fc1", "relu", "fc2", "loss"]
    assert [n for k, n in seen if k == "b"] == ["loss", "fc2", "relu", "fc1"]


def test_batch_size_may_change_between_calls():
    net = Net(mlp(), dtype="float64")
    rng = numpy.random.default_rng(0)
    out = net.forward({"x": rng.normal(size=(7, 3)), "y": numpy.zeros(7, dtype=int)})
    assert numpy.isfinite(float(out["loss"]))


def test_shape_only_net_allocates_nothing():
    net = Net(mlp(hidden=1000), init=False)
    assert all(p.data is None for p in net.params)
    assert net.param_count() == 3 * 1000 + 1000 + 1000 * 3 + 3


def test_unknown_type_lists_known_types():
    model = mlp()
    model["layers"][2]["type"] = "Relu"
    with pytest.raises(ConfigError, match=r"layer 'relu'.*'Relu'.*known types:.*ReLU"):
        Net(model)


def test_missing_bottom_names_layer_and_blob():
    model = mlp()
    model["layers"][3]["bottom"] = "hidden"
    with pytest.raises(ConfigError, match=r"layer 'fc2'.*'bottom'.*'hidden'"):
        Net(model)


def test_duplicate_layer_name():
    model = mlp()
    model["layers"][3]["name"] = "fc1"
    with pytest.raises(ConfigError, match="duplicate layer name"):
        Net(model)


def test_wrong_input_shape_at_forward():
    net = Net(mlp())
    with pytest.raises(ShapeError, match=r"input 'x'.*\(4, 5\)"):
        net.forward({"x": numpy.zeros((4, 5), dtype=numpy.float32), "y": numpy.zeros(4)})


def test_missing_feed_and_unknown_feed():
    net = Net(mlp())
    with pytest.raises(ConfigError, match="'y' was not given"):
        net.forward({"x": numpy.zeros((4, 3), dtype=numpy.float32)})
    with pytest.raises(ConfigError, match="'z' is not an input"):
        net.forward({**batch(), "z": 1})


def test_float64_net_computes_in_float64_from_float32_inputs():
    """The loader feeds float32 batches; a float64 net casts them, so every gradient is float64."""
    from minwa.solver import Solver

    model = {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [2, 3, 6, 6]}, {"dim": [2]}]}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 4, "kernel_size": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "bn", "type": "BatchNorm", "bottom": "conv", "top": "conv"},
        {"name": "scale", "type": "Scale", "bottom": "conv", "top": "conv", "scale_param": {"bias_term": True}},
        {"name": "pool", "type": "Pooling", "bottom": "conv", "top": "pool",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "norm", "type": "LRN", "bottom": "pool", "top": "norm", "lrn_param": {"local_size": 3}},
        {"name": "ip", "type": "InnerProduct", "bottom": "norm", "top": "ip",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}
    net = Net(model, dtype="float64")
    solver = Solver(net, {"base_lr": 0.1, "momentum": 0.9})
    x = numpy.random.default_rng(0).normal(size=(2, 3, 6, 6)).astype(numpy.float32)
    outputs = net.forward({"data": x, "label": numpy.array([0, 2], dtype=numpy.int64)})
    assert outputs["loss"].dtype == numpy.float64
    net.backward()
    solver.step()
    assert net.params
    for p in net.params:
        assert p.grad is not None and p.grad.dtype == numpy.float64, p.name
        assert p.data.dtype == numpy.float64, p.name
