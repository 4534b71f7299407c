"""build_transform plugged into the data loader: rank slices see what one rank sees."""
import numpy
import pytest

from minwa.augment import build_transform

datasets = pytest.importorskip("minwa.datasets")

DATA = {"source": "shapes", "image_size": 40, "train_count": 48, "test_count": 16, "batch_size": 8, "prefetch": 0,
        "mean": "none", "augment": {"crop": 32, "scales": [36, 40], "flip": True, "rotation": True,
                                    "lens_distortion": True, "color_cast": True, "vignette": True}}


def test_ranks_see_the_same_augmented_batch_as_one_rank():
    whole = datasets.make_loader(DATA, "train", rank=0, size=1, seed=3)
    for step in (0, 7):
        x, _ = whole.host_batch(step)
        assert x.shape == (8, 3, 32, 32)
        for size in (2, 4):
            parts = [datasets.make_loader(DATA, "train", rank=r, size=size, seed=3).host_batch(step)[0]
                     for r in range(size)]
            assert numpy.array_equal(numpy.concatenate(parts), x)
    # what the loader yields is exactly this module's transform of those samples at that epoch
    step = whole.steps_per_epoch + 2
    indices = whole.indices(step)
    images = [whole.source.get(int(i))[0] for i in indices]
    expected = build_transform(DATA["augment"], seed=3, train=True)(images, indices, 1)
    assert numpy.array_equal(whole.host_batch(step)[0], expected.transpose(0, 3, 1, 2).astype(numpy.float32))
    assert not numpy.array_equal(expected, build_transform(DATA["augment"], seed=3, train=True)(images, indices, 0))


def test_evaluation_loader_uses_the_centre_crop():
    test = datasets.make_loader(DATA, "test", rank=0, size=1, seed=3)
    a, _ = test.host_batch(0)
    b, _ = datasets.make_loader(DATA, "test", rank=0, size=1, seed=99).host_batch(0)
    assert a.shape == (8, 3, 32, 32) and numpy.array_equal(a, b)
