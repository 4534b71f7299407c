import numpy
import pytest

from minwa.augment import color_cast


def test_only_chosen_channels_change_by_exactly_the_offset():
    rng = numpy.random.default_rng(1)
    image = rng.integers(30, 226, size=(17, 23, 3), dtype=numpy.uint8)  # no clipping at +-20
    out = color_cast(image, (12, 0, -20))
    diff = out.astype(int) - image.astype(int)
    assert (diff[..., 0] == 12).all()
    assert (diff[..., 1] == 0).all()
    assert (diff[..., 2] == -20).all()
    assert out.dtype == numpy.uint8 and out.shape == image.shape


def test_shifts_clip_at_0_and_255():
    image = numpy.array([[[0, 250, 10], [255, 5, 128]]], dtype=numpy.uint8)
    out = color_cast(image, (-20, 20, -15))
    assert out.tolist() == [[[0, 255, 0], [235, 25, 113]]]


def test_rejects_non_rgb():
    with pytest.raises(ValueError, match="HxWx3"):
        color_cast(numpy.zeros((4, 4, 1), numpy.uint8), (1, 2, 3))
