import numpy

from minwa.augment import WarpMap, flip


def test_flipping_twice_is_identity():
    image = numpy.random.default_rng(2).integers(0, 256, size=(9, 14, 3), dtype=numpy.uint8)
    once = flip(image)
    assert not (once == image).all()
    assert (once == image[:, ::-1]).all()
    assert (flip(once) == image).all()


def test_flip_map_matches_the_mirror():
    image = numpy.random.default_rng(3).integers(0, 256, size=(12, 12, 3), dtype=numpy.uint8)
    warp = WarpMap.build(12, 12, flip=True)
    assert (warp.apply(image) == image[:, ::-1]).all()
    twice = WarpMap.build(12, 12, flip=True).apply(warp.apply(image))
    assert (twice == image).all()
