"""Weight fillers: Caffe's constant, uniform, gaussian, xavier and msra."""
import numpy as np
import pytest

from minwa.errors import ConfigError
from minwa.layers.fillers import fill

SHAPE = (64, 32, 5, 5)  # fan_in 800, fan_out 1600


def draw(spec, shape=SHAPE, dtype="float64"):
    return fill(spec, shape, dtype, np.random.default_rng(7))


def test_constant_and_default():
    assert np.all(draw({"type": "constant", "value": 0.25}) == 0.25)
    assert np.all(draw(None, (3, 4)) == 0)
    out = draw({"type": "constant", "value": 2}, (2, 3), "float32")
    assert out.dtype == np.float32 and out.shape == (2, 3) and out.flags.c_contiguous


def test_uniform_range():
    out = draw({"type": "uniform", "min": -0.3, "max": 0.7})
    assert out.min() >= -0.3 and out.max() <= 0.7
    assert out.min() < -0.29 and out.max() > 0.69  # the whole range is used
    assert abs(out.mean() - 0.2) < 0.01


def test_gaussian_moments():
    out = draw({"type": "gaussian", "mean": 1.0, "std": 0.05})
    assert abs(out.mean() - 1.0) < 0.002 and abs(out.std() - 0.05) < 0.002


@pytest.mark.parametrize("norm, fan", [("FAN_IN", 800), ("FAN_OUT", 1600), ("AVERAGE", 1200)])
def test_xavier_variance(norm, fan):
    out = draw({"type": "xavier", "variance_norm": norm})
    bound = np.sqrt(3.0 / fan)
    assert np.abs(out).max() <= bound
    assert out.var() == pytest.approx(1.0 / fan, rel=0.03)


@pytest.mark.parametrize("norm, fan", [("FAN_IN", 800), ("FAN_OUT", 1600)])
def test_msra_variance(norm, fan):
    out = draw({"type": "msra", "variance_norm": norm})
    assert out.var() == pytest.approx(2.0 / fan, rel=0.03)
    assert abs(out.mean()) < 0.005


def test_fills_are_deterministic_by_rng():
    a = draw({"type": "gaussian", "std": 1.0}, (10,))
    b = draw({"type": "gaussian", "std": 1.0}, (10,))
    np.testing.assert_array_equal(a, b)


def test_bad_filler_specs_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown filler type"):
        draw({"type": "gausian"})
    with pytest.raises(ConfigError, match="std"):
        draw({"type": "gaussian", "std": -1})
    with pytest.raises(ConfigError, match="variance_norm"):
        draw({"type": "xavier", "variance_norm": "SIDEWAYS"})
