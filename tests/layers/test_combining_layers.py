"""Concat and Eltwise: references, gradients and shape errors."""
import numpy as np
import pytest

from minwa.errors import ConfigError, ShapeError


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(make_layer, gradcheck, rng, axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(d + i if k == axis % 3 else d for k, d in enumerate(s)) for i, s in enumerate(shapes)]
    layer, tops = make_layer({"type": "Concat", "concat_param": {"axis": axis}}, shapes)
    xs = [rng.standard_normal(s) for s in shapes]
    y = layer.forward(xs)[0]
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    assert tops == [y.shape]
    gradcheck(layer, xs)


def test_concat_legacy_dim_and_mismatch(make_layer):
    _, tops = make_layer({"type": "Concat", "concat_param": {"concat_dim": 0}}, [(1, 2), (3, 2)])
    assert tops == [(4, 2)]
    with pytest.raises(ShapeError, match="bottom 1"):
        make_layer({"type": "Concat"}, [(2, 3, 4), (2, 3, 5)])


def elt_spec(**param):
    return {"type": "Eltwise", "name": "elt", "eltwise_param": param}


def test_eltwise_sum_with_coefficients(make_layer, gradcheck, rng):
    xs = [rng.standard_normal((2, 3)) for _ in range(3)]
    layer, _ = make_layer(elt_spec(operation="SUM", coeff=[1, -2, 0.5]), [x.shape for x in xs])
    np.testing.assert_allclose(layer.forward(xs)[0], xs[0] - 2 * xs[1] + 0.5 * xs[2])
    gradcheck(layer, xs)


def test_eltwise_prod_handles_zeros(make_layer, gradcheck, rng):
    xs = [rng.standard_normal((2, 3)) for _ in range(3)]
    xs[1][0, 0] = 0.0
    layer, _ = make_layer(elt_spec(operation="PROD"), [x.shape for x in xs])
    np.testing.assert_allclose(layer.forward(xs)[0], xs[0] * xs[1] * xs[2])
    gradcheck(layer, xs)


def test_eltwise_max_and_ties(make_layer, gradcheck, helpers, rng):
    values = helpers.spaced(rng, (3, 2, 4))
    xs = [values[0], values[1], values[2]]
    layer, _ = make_layer(elt_spec(operation="MAX"), [x.shape for x in xs])
    np.testing.assert_allclose(layer.forward(xs)[0], np.maximum(np.maximum(xs[0], xs[1]), xs[2]))
    gradcheck(layer, xs)


def test_eltwise_max_ties_follow_caffe(make_layer):
    """Caffe: bottoms 0 and 1 compare as ``a > b ? 0 : 1`` (a tie goes to bottom 1); later bottoms win only
    where strictly larger."""
    layer, _ = make_layer(elt_spec(operation="MAX"), [(1, 2), (1, 2)])
    layer.forward([np.ones((1, 2)), np.ones((1, 2))])
    g = layer.backward([np.ones((1, 2))], [True, True])
    np.testing.assert_array_equal(g[0], [[0, 0]])
    np.testing.assert_array_equal(g[1], [[1, 1]])
    three = [np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 1.0, 3.0]]), np.array([[1.0, 2.0, 3.0]])]
    layer, _ = make_layer(elt_spec(operation="MAX"), [(1, 3)] * 3)
    np.testing.assert_array_equal(layer.forward(three)[0], [[1, 2, 3]])
    g = layer.backward([np.array([[10.0, 20.0, 30.0]])], [True] * 3)
    # position 0: 0-1 tie -> 1, bottom 2 only ties -> stays 1; position 1: bottom 0 wins, 2 ties -> 0;
    # position 2: like position 0
    np.testing.assert_array_equal(g[0], [[0, 20, 0]])
    np.testing.assert_array_equal(g[1], [[10, 0, 30]])
    np.testing.assert_array_equal(g[2], [[0, 0, 0]])


def test_eltwise_errors(make_layer):
    with pytest.raises(ConfigError, match="'elt'.*coeff"):
        make_layer(elt_spec(operation="PROD", coeff=[1, 1]), [(2,), (2,)])
    with pytest.raises(ConfigError, match="coeff"):
        make_layer(elt_spec(coeff=[1, 1, 1]), [(2,), (2,)])
    with pytest.raises(ShapeError, match="equal shapes"):
        make_layer(elt_spec(), [(2, 3), (3, 2)])
