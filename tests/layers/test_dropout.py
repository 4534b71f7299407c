"""Dropout: Caffe's inverted scaling in TRAIN, identity in TEST, a mask from the layer's own seeded Generator."""
import numpy as np
import pytest

from minwa.errors import ConfigError


def drop_spec(ratio=0.5):
    return {"type": "Dropout", "name": "drop", "top": ["b0"], "dropout_param": {"dropout_ratio": ratio}}


def test_train_drops_the_ratio_and_scales_the_rest(make_layer, rng):
    layer, _ = make_layer(drop_spec(0.3), [(200, 500)])
    layer.rng = np.random.default_rng(5)
    x = rng.uniform(1, 2, (200, 500))
    keep = x.copy()
    y = layer.forward([x])[0]
    np.testing.assert_array_equal(x, keep)  # in place (top == bottom) must not touch the input
    dropped = y == 0
    assert dropped.mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.7)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward([dy], [True])[0]
    np.testing.assert_allclose(dx, np.where(dropped, 0, dy / 0.7))


def test_test_phase_is_identity(make_layer, rng):
    layer, _ = make_layer(drop_spec(0.5), [(3, 4)], phase="TEST")
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(layer.forward([x])[0], x)
    np.testing.assert_array_equal(layer.backward([x], [True])[0], x)


def test_mask_follows_the_generator_seed(make_layer):
    x = np.ones((4, 50))
    masks = []
    for seed in (1, 1, 2):
        layer, _ = make_layer(drop_spec(), [x.shape])
        layer.rng = np.random.default_rng(seed)
        masks.append(layer.forward([x])[0] == 0)
    assert np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[0], masks[2])
    layer, _ = make_layer(drop_spec(), [x.shape])  # no Net: seeds itself from its name, reproducibly
    other, _ = make_layer(drop_spec(), [x.shape])
    np.testing.assert_array_equal(layer.forward([x])[0], other.forward([x])[0])


def test_dropout_gradient_with_a_replayed_mask(make_layer, gradcheck, rng):
    layer, _ = make_layer(drop_spec(0.4), [(3, 5)])

    def replay():
        layer.rng = np.random.default_rng(11)

    gradcheck(layer, [rng.standard_normal((3, 5))], reset=replay)


def test_float32_and_bad_ratio(make_layer):
    layer, _ = make_layer(drop_spec(0.5), [(2, 8)], dtype="float32")
    y = layer.forward([np.ones((2, 8), dtype=np.float32)])[0]
    assert y.dtype == np.float32 and set(np.unique(y)) <= {0.0, 2.0}
    for ratio in (1.0, -0.1):
        with pytest.raises(ConfigError, match="'drop'.*dropout_ratio"):
            make_layer(drop_spec(ratio), [(2, 8)])
