"""Features on the wire: float32 exact, float16 close, uint8 within half a quantisation step."""
import numpy
import pytest

from minwa.parallel.pipeline import feature_codec


def _round_trip(x, dtype):
    code, scale, offset, payload = feature_codec.encode(x, dtype)
    return feature_codec.decode(code, scale, offset, x.shape, payload), scale, len(payload)


def test_float32_is_exact():
    x = numpy.random.default_rng(0).standard_normal((3, 4, 5)).astype(numpy.float32)
    y, _, size = _round_trip(x, "float32")
    assert numpy.array_equal(x, y) and size == x.size * 4


def test_float16_is_within_its_precision():
    x = numpy.random.default_rng(1).standard_normal((100, 7)).astype(numpy.float32)
    y, _, size = _round_trip(x, "float16")
    assert numpy.allclose(x, y, rtol=1e-3, atol=1e-4) and size == x.size * 2


def test_uint8_is_within_half_a_step_and_one_byte_per_value():
    x = numpy.random.default_rng(2).uniform(-3, 5, (100, 4, 16, 16)).astype(numpy.float32)
    y, scale, size = _round_trip(x, "uint8")
    assert size == 102400  # the papers' Table 3: f = 4 after pool1
    assert numpy.abs(x - y).max() <= scale / 2 * 1.001
    assert scale == pytest.approx((x.max() - x.min()) / 255, rel=1e-6)


def test_uint8_of_a_constant_tensor_is_exact():
    x = numpy.full((2, 3), 1.5, numpy.float32)
    y, _, _ = _round_trip(x, "uint8")
    assert numpy.array_equal(x, y)


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="float64"):
        feature_codec.encode(numpy.zeros(2), "float64")
