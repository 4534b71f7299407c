"""The loader hook: determinism across workers and orders, evaluation view, batch checks."""
import numpy
import pytest

from minwa.augment import PAPER, build_transform
from minwa.errors import DataError

BLOCK = dict(PAPER, crop=48, scales=[56, 72])


def _images(count, seed=0):
    rng = numpy.random.default_rng(seed)
    shapes = [(64, 64), (80, 60), (56, 90), (100, 100)]
    return [rng.integers(0, 256, size=shapes[i % 4] + (3,), dtype=numpy.uint8) for i in range(count)]


def test_same_seed_same_images_for_any_split_or_order():
    images = _images(8)
    indices = numpy.array([5, 17, 3, 99, 42, 8, 61, 23])
    whole = build_transform(BLOCK, seed=11, train=True)(images, indices, 3)
    assert whole.shape == (8, 48, 48, 3) and whole.dtype == numpy.uint8
    for workers in (2, 4):
        fresh = build_transform(BLOCK, seed=11, train=True)  # another process would have its own cache
        parts = [fresh(images[k::workers], indices[k::workers], 3) for k in range(workers)]
        rebuilt = numpy.empty_like(whole)
        for k in range(workers):
            rebuilt[k::workers] = parts[k]
        assert (rebuilt == whole).all()
        chunks = numpy.array_split(numpy.arange(8), workers)
        contiguous = numpy.concatenate([fresh([images[i] for i in c], indices[c], 3) for c in chunks])
        assert (contiguous == whole).all()
    order = numpy.random.default_rng(0).permutation(8)
    shuffled = build_transform(BLOCK, seed=11)([images[i] for i in order], indices[order], 3)
    assert (shuffled == whole[order]).all()


def test_epoch_and_seed_change_the_draws():
    images = _images(4)
    indices = numpy.arange(4)
    transform = build_transform(BLOCK, seed=1)
    first = transform(images, indices, 0)
    assert (transform(images, indices, 0) == first).all()
    assert not (transform(images, indices, 1) == first).all()
    assert not (build_transform(BLOCK, seed=2)(images, indices, 0) == first).all()


def test_evaluation_is_deterministic_centre_crop():
    images = _images(4, 1)
    evaluate = build_transform(BLOCK, seed=5, train=False)
    a = evaluate(images, numpy.arange(4), 0)
    b = evaluate(images, numpy.arange(10, 14), 7)
    assert (a == b).all()
    assert a.shape == (4, 48, 48, 3)
    square = numpy.random.default_rng(2).integers(0, 256, (56, 70, 3), dtype=numpy.uint8)  # already at test scale
    assert (evaluate([square], [0], 0)[0] == square[4:52, 11:59]).all()


def test_grey_images_and_bad_batches():
    block = {"crop": 20, "scales": [24], "flip": True, "rotation": True}
    grey = [numpy.full((24, 30), 100, numpy.uint8), numpy.full((24, 24), 100, numpy.uint8)]
    out = build_transform(block, seed=0)(grey, [0, 1], 0)
    assert out.shape == (2, 20, 20, 1) and (out == 100).all()
    with pytest.raises(DataError, match="sample 1"):
        build_transform(block)([grey[0], numpy.zeros((24, 24, 3), numpy.uint8)], [0, 1], 0)
    with pytest.raises(DataError, match="color_cast needs RGB"):
        build_transform({"crop": 20, "color_cast": {"p": 1.0}})(grey, [0, 1], 0)
    with pytest.raises(DataError, match="uint8"):
        build_transform(block)([numpy.zeros((24, 24, 3), numpy.float32)], [0], 0)
    with pytest.raises(DataError, match="2 images but 1 indices"):
        build_transform(block)(grey, [0], 0)
