"""BatchNorm (Caffe's three running blobs) and Scale."""
import numpy as np
import pytest

from minwa.errors import ConfigError


def bn_spec(**param):
    return {"type": "BatchNorm", "name": "bn", "top": ["b0"], "batch_norm_param": param}


def test_batchnorm_train_normalises_with_batch_stats(make_layer, gradcheck, rng):
    shape = (4, 3, 2, 3)
    layer, _ = make_layer(bn_spec(eps=1e-5), [shape])
    x = rng.standard_normal(shape) * 3 + 1
    keep = x.copy()
    y = layer.forward([x])[0]
    np.testing.assert_array_equal(x, keep)
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10)
    gradcheck(layer, [x])


def test_batchnorm_running_blobs_follow_caffe(make_layer, rng):
    shape = (5, 2, 3, 3)
    layer, _ = make_layer(bn_spec(moving_average_fraction=0.9), [shape])
    assert [p.lr_mult for p in layer.params] == [0, 0, 0] and [p.decay_mult for p in layer.params] == [0, 0, 0]
    assert [p.shape for p in layer.params] == [(2,), (2,), (1,)]
    data_ids = [id(p.data) for p in layer.params]
    x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape) + 2
    layer.forward([x1])
    layer.forward([x2])
    assert [id(p.data) for p in layer.params] == data_ids  # updated in place
    m = 5 * 9

    def mean(x):
        return x.mean(axis=(0, 2, 3))

    def uvar(x):  # Caffe's running variance is the unbiased one
        return x.var(axis=(0, 2, 3)) * m / (m - 1)

    np.testing.assert_allclose(layer.scale_factor.data, [0.9 * 1 + 1])
    np.testing.assert_allclose(layer.mean.data, 0.9 * mean(x1) + mean(x2))
    np.testing.assert_allclose(layer.variance.data, 0.9 * uvar(x1) + uvar(x2))
    layer.backward([np.ones(shape)], [True])
    assert all(np.all(p.grad == 0) and p.grad.shape == p.shape for p in layer.params)


def test_batchnorm_test_phase_uses_global_stats(make_layer, gradcheck, rng):
    shape = (3, 2, 2, 2)
    layer, _ = make_layer(bn_spec(), [shape], phase="TEST")
    assert layer.use_global_stats
    layer.mean.data[:] = [2.0, -4.0]
    layer.variance.data[:] = [8.0, 2.0]
    layer.scale_factor.data[:] = [2.0]
    x = rng.standard_normal(shape)
    y = layer.forward([x])[0]
    ref = (x - np.array([1.0, -2.0]).reshape(1, 2, 1, 1)) / np.sqrt(np.array([4.0, 1.0]) + 1e-5).reshape(1, 2, 1, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    before = [p.data.copy() for p in layer.params]
    gradcheck(layer, [x], check_params=False)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, layer.params))  # TEST never updates


def test_batchnorm_2d_input_and_learnable_blobs_rejected(make_layer, gradcheck, rng):
    layer, _ = make_layer(bn_spec(), [(6, 4)])
    x = rng.standard_normal((6, 4))
    np.testing.assert_allclose(layer.forward([x])[0], (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)
    gradcheck(layer, [x])
    spec = dict(bn_spec(), param=[{"lr_mult": 1}])
    with pytest.raises(ConfigError, match="'bn'.*lr_mult"):
        make_layer(spec, [(2, 3)])


def scale_spec(**param):
    return {"type": "Scale", "name": "scale", "top": ["b0"], "scale_param": param}


@pytest.mark.parametrize("bias", [False, True])
def test_scale_per_channel(make_layer, gradcheck, rng, bias):
    shape = (2, 3, 2, 2)
    layer, tops = make_layer(scale_spec(bias_term=bias), [shape])
    assert tops == [shape] and layer.scale.shape == (3,)
    x = rng.standard_normal(shape)
    keep = x.copy()
    y = layer.forward([x])[0]
    ref = x * layer.scale.data.reshape(1, 3, 1, 1)
    if bias:
        ref = ref + layer.bias.data.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    np.testing.assert_array_equal(x, keep)
    gradcheck(layer, [x])


def test_scale_defaults_axes_and_second_bottom(make_layer, gradcheck, rng):
    layer, _ = make_layer(scale_spec(bias_term=True), [(2, 3, 4)], param_scale=None)
    assert np.all(layer.scale.data == 1) and np.all(layer.bias.data == 0)  # Caffe's fillers
    layer, _ = make_layer(scale_spec(axis=1, num_axes=2), [(2, 3, 4)])
    assert layer.scale.shape == (3, 4)
    gradcheck(layer, [rng.standard_normal((2, 3, 4))])
    layer, tops = make_layer({"type": "Scale"}, [(2, 3, 4), (3,)])
    assert tops == [(2, 3, 4)] and not layer.params
    x, s = rng.standard_normal((2, 3, 4)), rng.standard_normal(3)
    np.testing.assert_allclose(layer.forward([x, s])[0], x * s.reshape(1, 3, 1))
    gradcheck(layer, [x, s])
