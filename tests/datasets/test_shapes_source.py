"""ShapesSource: deterministic by (seed, split, index), any resolution, balanced, not trivial."""
import numpy
import pytest

from minwa.datasets import ShapesSource, build_source
from minwa.errors import ConfigError


def test_images_are_uint8_hwc_and_deterministic_by_seed_and_index():
    a = ShapesSource(count=40, image_size=24, seed=5)
    b = ShapesSource(count=40, image_size=24, seed=5)
    images, labels = a.get_many([3, 17, 3])
    assert images.shape == (3, 24, 24, 3) and images.dtype == numpy.uint8
    assert numpy.array_equal(images[0], images[2])
    image, label = b.get(17)  # a fresh object (no cache) draws the same pixels
    assert numpy.array_equal(image, images[1]) and label == labels[1] == 17 % 10
    other_seed, _ = ShapesSource(count=40, image_size=24, seed=6).get(17)
    test_split, _ = ShapesSource(count=40, image_size=24, seed=5, split="test").get(17)
    assert not numpy.array_equal(other_seed, image) and not numpy.array_equal(test_split, image)


def test_cached_and_uncached_draws_agree_and_any_resolution_works():
    cached = ShapesSource(count=30, image_size=16, seed=1)
    uncached = ShapesSource(count=30, image_size=16, seed=1, cache_mb=0)
    order = numpy.array([29, 0, 5, 5, 12])
    assert numpy.array_equal(cached.get_many(order)[0], uncached.get_many(order)[0])
    big, _ = ShapesSource(count=2, image_size=96).get(1)
    assert big.shape == (96, 96, 3)


def test_classes_are_balanced_and_visibly_different():
    source = ShapesSource(count=200, image_size=32, seed=0)
    labels = source.labels()
    assert numpy.bincount(labels).tolist() == [20] * 10 and len(source.classes) == 10
    images, _ = source.get_many(numpy.arange(200))
    # the foreground covers a real part of each image, and backgrounds carry noise
    spread = images.reshape(200, -1, 3).astype(float).std(axis=1).mean(axis=1)
    assert (spread > 8).all()
    # per class mean "foreground fraction" differs: a ring covers less than a disc of the same radius
    assert len({round(float(images[labels == c].std()), 1) for c in range(10)}) > 5


def test_out_of_range_and_bad_settings_raise():
    source = ShapesSource(count=10)
    with pytest.raises(IndexError, match="out of range"):
        source.get(10)
    with pytest.raises(ConfigError, match="image_size"):
        ShapesSource(count=10, image_size=4)
    with pytest.raises(ConfigError, match="train_count"):
        build_source({"source": "shapes", "train_count": 0}, "train")


def test_build_source_reads_the_shapes_keys():
    source = build_source({"source": "shapes", "image_size": 20, "train_count": 30, "test_count": 11, "seed": 2},
                          "test")
    assert len(source) == 11 and source.get(0)[0].shape == (20, 20, 3)
