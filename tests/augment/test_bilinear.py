"""The vectorised fixed-point bilinear gather against a plain per-pixel float reference."""
import numpy
import pytest

from minwa.augment.bilinear import ONE, bilinear_fixed, finish_planar, fixed_weights
from minwa.augment.warp_map import split_fixed


def _reference(image, ys, xs):
    height, width, channels = image.shape
    out = numpy.zeros((len(ys), channels))
    for k, (y, x) in enumerate(zip(ys, xs)):
        y = min(max(y, 0.0), height - 1.0)
        x = min(max(x, 0.0), width - 1.0)
        y0, x0 = int(numpy.floor(y)), int(numpy.floor(x))
        y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
        fy, fx = y - y0, x - x0
        out[k] = ((1 - fy) * (1 - fx) * image[y0, x0] + (1 - fy) * fx * image[y0, x1]
                  + fy * (1 - fx) * image[y1, x0] + fy * fx * image[y1, x1])
    return out


def _interpolate(image, ys, xs):
    n = len(ys)
    bounds = (float(ys.min()), float(ys.max()), float(xs.min()), float(xs.max()))
    flat, weights, box = split_fixed(ys * ONE + 0.5, xs * ONE + 0.5, bounds, image.shape[0], image.shape[1],
                                     numpy.empty(n, numpy.intp), numpy.empty((4, n), numpy.uint16))
    return bilinear_fixed(image, flat, weights, box)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("spread", ["everywhere", "inside", "corner"])
def test_matches_reference(channels, spread):
    rng = numpy.random.default_rng(channels)
    image = rng.integers(0, 256, size=(13, 17, channels), dtype=numpy.uint8)
    low, high = {"everywhere": (-2, 19), "inside": (3, 9), "corner": (10, 30)}[spread]
    ys = rng.uniform(low, min(high, 15), size=400).astype(numpy.float32)
    xs = rng.uniform(low, high, size=400).astype(numpy.float32)
    expected = _reference(image, ys, xs)
    acc = _interpolate(image, ys.copy(), xs.copy())
    # 1/256-pixel positions and weights on pure noise (the steepest possible image), then rounding
    error = numpy.abs(acc.T.astype(float) - expected)
    assert error.max() <= 1.5 and error.mean() < 0.35
    dst = numpy.empty((400, 1, channels), numpy.uint8)
    finish_planar(acc, dst)
    assert (dst[:, 0] == acc.T).all()


def test_whole_pixels_are_exact_and_the_last_pixel_is_reachable():
    rng = numpy.random.default_rng(9)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=numpy.uint8)
    ys, xs = numpy.meshgrid(numpy.arange(5, dtype=numpy.float32), numpy.arange(7, dtype=numpy.float32),
                            indexing="ij")
    acc = _interpolate(image, ys.ravel(), xs.ravel())
    assert (acc.T.reshape(5, 7, 3) == image).all()


def test_fixed_weights_sum_to_one_and_are_never_negative():
    fy, fx = numpy.meshgrid(numpy.arange(ONE + 1, dtype=numpy.int32), numpy.arange(ONE + 1, dtype=numpy.int32))
    w = fixed_weights(fy.ravel(), fx.ravel(), numpy.empty((4, fy.size), numpy.uint16)).astype(int)
    assert (w.sum(axis=0) == ONE).all()
    assert w.min() >= 0
    exact = numpy.stack([(ONE - fx) * (ONE - fy), fx * (ONE - fy), (ONE - fx) * fy, fx * fy]).reshape(4, -1) / ONE
    assert numpy.abs(w - exact).max() <= 1.0


def test_finish_adds_the_cast_then_the_mask():
    acc = numpy.array([[10, 250], [100, 100], [0, 5]], dtype=numpy.uint16)
    dst = numpy.empty((1, 2, 3), numpy.uint8)
    finish_planar(acc.copy(), dst, shifts=(-20, 10, 3))
    assert dst.tolist() == [[[0, 110, 3], [230, 110, 8]]]
    finish_planar(acc.copy(), dst, shifts=(20, 0, 0), mask=numpy.array([ONE, ONE // 2], numpy.uint16))
    assert dst.tolist() == [[[30, 100, 0], [128, 50, 3]]]


@pytest.mark.parametrize("kernel", ["default", "numpy"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [numpy.uint8, numpy.uint16])
def test_mirrored_copies_match_numpy(monkeypatch, kernel, channels, dtype):
    from minwa.augment import bilinear

    if kernel == "numpy":
        monkeypatch.setenv("MINWA_AUGMENT_OPENCV", "0")
    image = numpy.random.default_rng(0).integers(0, 256, size=(50, 61, channels), dtype=numpy.uint8)
    view = image[3:43, 5:45][:, ::-1]
    dst = numpy.zeros((40, 40, channels), dtype=dtype)
    bilinear._copy_pixels(dst, view)
    numpy.testing.assert_array_equal(dst, view)
