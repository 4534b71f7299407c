"""Input, ReLU, Flatten, Split, Softmax and InnerProduct: references, gradients, in-place safety, errors."""
import numpy as np
import pytest

from minwa.errors import ConfigError, ShapeError


# -- Input ---------------------------------------------------------------------------
def test_input_shapes(make_layer):
    spec = {"type": "Input", "top": ["data", "label"], "bottom": [],
            "input_param": {"shape": [{"dim": [8, 3, 32, 32]}, {"dim": [8]}]}}
    _, tops = make_layer(spec, [])
    assert tops == [(8, 3, 32, 32), (8,)]
    spec = {"type": "Input", "top": ["a", "b"], "bottom": [], "input_param": {"shape": {"dim": [2, 5]}}}
    assert make_layer(spec, [])[1] == [(2, 5), (2, 5)]


@pytest.mark.parametrize("param, match", [({}, "missing"), ({"shape": [{"dim": [2, -1]}]}, "positive"),
                                          ({"shape": [{"dim": [1]}, {"dim": [2]}, {"dim": [3]}]}, "tops")])
def test_input_errors_name_the_field(make_layer, param, match):
    spec = {"type": "Input", "name": "data", "top": ["a", "b"], "bottom": [], "input_param": param}
    with pytest.raises(ConfigError, match=match) as info:
        make_layer(spec, [])
    assert "'data'" in str(info.value)


# -- ReLU ----------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_relu_reference_and_gradient(make_layer, gradcheck, helpers, rng, slope):
    x = helpers.away_from_zero(rng, (3, 4, 5))
    layer, _ = make_layer({"type": "ReLU", "relu_param": {"negative_slope": slope}}, [x.shape])
    y = layer.forward([x])[0]
    np.testing.assert_allclose(y, np.where(x > 0, x, slope * x))
    gradcheck(layer, [x])


def test_relu_keeps_float32_and_never_mutates_its_input(make_layer, rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    keep = x.copy()
    layer, _ = make_layer({"type": "ReLU", "top": ["b0"]}, [x.shape], dtype="float32")  # in place: top == bottom
    y = layer.forward([x])[0]
    dx = layer.backward([np.ones_like(y)], [True])[0]
    assert y.dtype == np.float32 and dx.dtype == np.float32
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(dx, (x > 0).astype(np.float32))


# -- Flatten / Split -----------------------------------------------------------------
def test_flatten_shapes_and_gradient(make_layer, gradcheck, rng):
    layer, tops = make_layer({"type": "Flatten"}, [(2, 3, 4, 5)])
    assert tops == [(2, 60)]
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(layer.forward([x])[0], x.reshape(2, 60))
    gradcheck(layer, [x])
    layer, tops = make_layer({"type": "Flatten", "flatten_param": {"axis": 2, "end_axis": 3}}, [(2, 3, 4, 5)])
    assert tops == [(2, 3, 20)]


def test_split_copies_forward_and_sums_backward(make_layer, gradcheck, rng):
    layer, tops = make_layer({"type": "Split", "top": ["a", "b", "c"]}, [(2, 3)])
    assert tops == [(2, 3)] * 3
    x = rng.standard_normal((2, 3))
    outs = layer.forward([x])
    assert len(outs) == 3 and all(np.array_equal(o, x) for o in outs)
    g = [rng.standard_normal((2, 3)) for _ in range(3)]
    np.testing.assert_allclose(layer.backward(g, [True])[0], g[0] + g[1] + g[2])
    np.testing.assert_allclose(layer.backward([g[0], None, g[2]], [True])[0], g[0] + g[2])
    gradcheck(layer, [x])


# -- Softmax -------------------------------------------------------------------------
@pytest.mark.parametrize("axis, shape", [(1, (3, 5)), (1, (2, 4, 3, 2)), (-1, (2, 3, 4))])
def test_softmax_reference_and_gradient(make_layer, gradcheck, rng, axis, shape):
    x = rng.standard_normal(shape) * 3
    layer, _ = make_layer({"type": "Softmax", "softmax_param": {"axis": axis}}, [shape])
    y = layer.forward([x])[0]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=axis, keepdims=True), rtol=1e-12)
    gradcheck(layer, [x])


def test_softmax_is_stable_for_large_scores(make_layer):
    layer, _ = make_layer({"type": "Softmax"}, [(1, 3)], dtype="float32")
    y = layer.forward([np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32)])[0]
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0]])


# -- InnerProduct --------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_inner_product_reference_and_gradient(make_layer, gradcheck, rng, bias):
    spec = {"type": "InnerProduct", "inner_product_param": {"num_output": 4, "bias_term": bias}}
    layer, tops = make_layer(spec, [(3, 2, 2, 2)])
    assert tops == [(3, 4)]
    assert layer.weight.shape == (4, 8)  # Caffe's (num_output, K)
    assert len(layer.params) == (2 if bias else 1)
    x = rng.standard_normal((3, 2, 2, 2))
    y = layer.forward([x])[0]
    ref = x.reshape(3, 8) @ layer.weight.data.T + (layer.bias.data if bias else 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    gradcheck(layer, [x])


def test_inner_product_axis_and_transpose(make_layer, gradcheck, rng):
    spec = {"type": "InnerProduct", "inner_product_param": {"num_output": 3, "axis": 2, "transpose": True}}
    layer, tops = make_layer(spec, [(2, 4, 5)])
    assert tops == [(2, 4, 3)] and layer.weight.shape == (5, 3)
    x = rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(layer.forward([x])[0], x @ layer.weight.data + layer.bias.data, rtol=1e-12)
    gradcheck(layer, [x])


def test_inner_product_defaults_and_errors(make_layer):
    spec = {"type": "InnerProduct", "name": "fc", "inner_product_param": {"num_output": 2}}
    layer, _ = make_layer(spec, [(1, 3)], param_scale=None)
    assert np.all(layer.weight.data == 0) and np.all(layer.bias.data == 0)  # Caffe's constant-0 defaults
    assert layer.weight.filler["type"] == "constant"
    with pytest.raises(ConfigError, match="'fc'.*num_output"):
        make_layer({"type": "InnerProduct", "name": "fc", "inner_product_param": {}}, [(1, 3)])
    with pytest.raises(ConfigError, match="num_output"):
        make_layer({"type": "InnerProduct", "inner_product_param": {"num_output": 0}}, [(1, 3)])
    layer, _ = make_layer(spec, [(1, 3)])
    with pytest.raises(ShapeError, match="'fc'"):
        layer.forward([np.zeros((1, 4))])


def test_inner_product_param_multipliers(make_layer):
    spec = {"type": "InnerProduct", "name": "ip1", "inner_product_param": {"num_output": 2},
            "param": [{"lr_mult": 1, "decay_mult": 250}, {"lr_mult": 2, "decay_mult": 0}]}
    layer, _ = make_layer(spec, [(1, 3)])
    w, b = layer.params
    assert (w.name, w.lr_mult, w.decay_mult) == ("ip1.weight", 1.0, 250.0)
    assert (b.name, b.lr_mult, b.decay_mult) == ("ip1.bias", 2.0, 0.0)


def test_inner_product_flops(make_layer):
    layer, tops = make_layer({"type": "InnerProduct", "inner_product_param": {"num_output": 10}}, [(100, 64, 4, 4)])
    assert layer.flops([(100, 64, 4, 4)], tops) == 2 * 100 * 1024 * 10
