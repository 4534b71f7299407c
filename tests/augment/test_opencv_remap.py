"""OpenCV's remap and flip, where installed, give the numpy kernels' pictures up to rounding."""
import numpy
import pytest

from minwa.augment import PAPER, build_transform
from minwa.augment.opencv import opencv
from minwa.augment.opencv_remap import RemapTable

pytest.importorskip("cv2")

BLOCK = dict(PAPER, crop=40, scales=[40, 48, 64], flip={"p": 0.5}, rotation={"p": 0.7},
             lens_distortion={"p": 0.7}, color_cast={"p": 0.7}, vignette={"p": 0.7})


def _both(monkeypatch, images, block, seed=3, epoch=2):
    indices = numpy.arange(100, 100 + len(images))
    fast = build_transform(block, seed=seed, train=True)(list(images), indices, epoch)
    monkeypatch.setenv("MINWA_AUGMENT_OPENCV", "0")
    plain = build_transform(block, seed=seed, train=True)(list(images), indices, epoch)
    monkeypatch.delenv("MINWA_AUGMENT_OPENCV")
    return fast, plain


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(60, 72), (40, 40), (130, 90)])
def test_opencv_and_numpy_pictures_agree(monkeypatch, channels, size):
    # noise is the worst case for rounding differences: neighbours differ by up to 255
    images = numpy.random.default_rng(5).integers(0, 256, size=(24,) + size + (channels,), dtype=numpy.uint8)
    block = BLOCK if channels == 3 else {k: v for k, v in BLOCK.items() if k != "color_cast"}
    fast, plain = _both(monkeypatch, images, block)
    assert fast.shape == plain.shape == (24, 40, 40, channels)
    diff = numpy.abs(fast.astype(int) - plain)
    # positions on 1/32 (OpenCV) against 1/256 pixel (numpy): measured at most 2, almost always 0 or 1
    assert diff.max() <= 2
    assert (diff > 1).mean() < 0.001
    assert diff.mean() < 0.3


def test_a_plain_crop_and_a_flip_are_exact(monkeypatch):
    images = numpy.random.default_rng(6).integers(0, 256, size=(16, 50, 50, 3), dtype=numpy.uint8)
    fast, plain = _both(monkeypatch, images, {"crop": 40, "scales": [50], "flip": {"p": 0.5}})
    numpy.testing.assert_array_equal(fast, plain)


def test_a_table_serves_every_offset_and_refuses_to_leave_the_image():
    cv2 = opencv()
    image = numpy.random.default_rng(7).integers(0, 256, size=(64, 64, 3), dtype=numpy.uint8)
    table = RemapTable(cv2, 32, flip=True, degrees=9)
    first, second = numpy.empty((32, 32, 3), numpy.uint8), numpy.empty((32, 32, 3), numpy.uint8)
    assert table.remap(cv2, image, first, 10, 12)
    assert table.remap(cv2, image[5:, 7:], second, 5, 5)  # the same pixels, seen from another corner
    numpy.testing.assert_array_equal(first, second)
    assert not table.remap(cv2, image, first, 0, 0)  # a 9 degree turn of a corner crop reads outside


def test_switched_off_by_the_environment(monkeypatch):
    assert opencv() is not None
    monkeypatch.setenv("MINWA_AUGMENT_OPENCV", "0")
    assert opencv() is None
