"""Wire codecs: raw is exact; fp16 and int8 (per-block absmax scale) stay within their error bounds."""
import numpy
import pytest

from minwa.comm.codec import Codec
from minwa.comm.fp16_codec import Fp16Codec
from minwa.comm.int8_codec import Int8Codec


def _values(n, seed=0):
    rng = numpy.random.default_rng(seed)
    # blocks of very different magnitudes, so a single global scale would fail the per-block bound
    scales = numpy.repeat(10.0 ** rng.integers(-4, 3, size=n // 16 + 1), 16)[:n]
    return (rng.normal(size=n) * scales).astype(numpy.float32)


@pytest.mark.parametrize("n", [0, 1, 5, 256, 1000])
def test_raw_codec_is_exact_and_zero_copy(n):
    x = _values(n)
    codec = Codec()
    wire = codec.encode(x)
    assert wire.dtype == numpy.uint8 and wire.size == codec.wire_nbytes(n, x.dtype) == 4 * n
    numpy.testing.assert_array_equal(codec.roundtrip(x), x)


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_fp16_roundtrip_relative_error(n):
    x = _values(n) * 1e-1 + numpy.float32(1e-3)
    codec = Fp16Codec()
    wire = codec.encode(x)
    assert wire.size == codec.wire_nbytes(n) == 2 * n
    out = codec.roundtrip(x)
    assert out.dtype == numpy.float32
    normal = numpy.abs(x) > 6.2e-5  # below that float16 is subnormal and the error is absolute
    numpy.testing.assert_allclose(out[normal], x[normal], rtol=2.0 ** -11, atol=0)
    assert numpy.all(numpy.abs(out[~normal] - x[~normal]) <= 2.0 ** -24)


def test_fp16_clips_instead_of_overflowing():
    out = Fp16Codec().roundtrip(numpy.array([1e6, -1e6, 3.0], dtype=numpy.float32))
    assert numpy.all(numpy.isfinite(out))
    numpy.testing.assert_array_equal(out, [65504.0, -65504.0, 3.0])


@pytest.mark.parametrize("block", [1, 16, 64, 256])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000])
def test_int8_error_is_within_half_a_step_of_each_block(n, block):
    x = _values(n, seed=n)
    codec = Int8Codec(block)
    wire = codec.encode(x)
    assert wire.size == codec.wire_nbytes(n) == n + 4 * -(-n // block)
    out = codec.roundtrip(x)
    for start in range(0, n, block):
        chunk = slice(start, start + block)
        absmax = numpy.abs(x[chunk]).max()
        bound = absmax / 254.0 * (1 + 1e-5) + 1e-30
        assert numpy.abs(out[chunk] - x[chunk]).max() <= bound, (start, absmax)


def test_int8_keeps_block_extremes_and_zero_blocks_exact():
    x = numpy.zeros(40, dtype=numpy.float32)
    x[20:] = numpy.linspace(-3, 5, 20)
    out = Int8Codec(20).roundtrip(x)
    numpy.testing.assert_array_equal(out[:20], 0.0)
    assert out[39] == pytest.approx(5.0, rel=1e-6)  # the block's absmax maps to +-127 exactly
    assert numpy.abs(out[20:] - x[20:]).max() <= 5.0 / 254 + 1e-6


def test_int8_is_about_a_quarter_of_float32():
    codec = Int8Codec(256)
    assert codec.wire_nbytes(1 << 20) / (4 << 20) == pytest.approx(0.25 + 1 / 256, rel=1e-9)


def test_int8_rejects_a_bad_block():
    with pytest.raises(ValueError, match="block"):
        Int8Codec(0)
