import numpy
import pytest

from minwa.augment import WarpMap, lens_distortion, rotate
from minwa.augment.lens_distortion import TYPES, lens_coefficients
from minwa.augment.warp_map import warp_coords


def _image(shape, seed=0):
    return numpy.random.default_rng(seed).integers(0, 256, size=shape, dtype=numpy.uint8)


def test_identity_map_reproduces_the_crop_exactly():
    image = _image((60, 80, 3))
    warp = WarpMap.build(24, 24)
    dst = numpy.empty((24, 24, 3), numpy.uint8)
    for top, left in ((0, 0), (10, 30), (35, 55), (36, 56)):  # the last touches the bottom-right corner
        warp.resample(image, dst, top, left)
        assert (dst == image[top:top + 24, left:left + 24]).all()


def test_zero_rotation_and_zero_distortion_are_identity():
    image = _image((31, 40, 3), 1)
    assert (rotate(image, 0) == image).all()
    for kind in TYPES:
        assert (lens_distortion(image, kind, 0.0) == image).all()
        assert not (lens_distortion(image, kind, 0.2) == image).all()
    assert (WarpMap.build(31, 40, degrees=0, lens=lens_coefficients("barrel", 0)).apply(image) == image).all()


def test_quarter_turns_are_exact_and_counter_clockwise():
    image = _image((21, 21, 3), 2)
    assert (rotate(image, 90) == numpy.rot90(image)).all()
    assert (rotate(image, -90) == numpy.rot90(image, -1)).all()
    assert (rotate(image, 180) == image[::-1, ::-1]).all()
    # a bright bar right of the centre ends up above it after +30 degrees
    bar = numpy.zeros((41, 41, 1), numpy.uint8)
    bar[20, 25:40] = 255
    turned = rotate(bar, 30)[:, :, 0]
    ys, xs = numpy.nonzero(turned > 128)
    assert ys.mean() < 20 and xs.mean() > 20


def test_stretch_changes_one_axis_only():
    columns = numpy.tile(numpy.arange(0, 240, 6, dtype=numpy.uint8)[None, :, None], (30, 1, 3))  # varies along x
    wide = lens_distortion(columns, "stretch_h", 0.2)
    assert (wide == wide[:1]).all()  # every row still the same: nothing moved vertically
    assert (lens_distortion(columns, "stretch_v", 0.2) == columns).all()
    # the centre stays, the content is wider: the column at the image centre keeps its value
    assert wide[0, 20, 0] in (columns[0, 19, 0], columns[0, 20, 0])


def test_radial_distortions_keep_the_centre_and_bend_lines():
    grid = numpy.zeros((41, 41, 1), numpy.uint8)
    grid[:, 27] = 255  # a vertical line right of centre
    for kind, outward in (("barrel", True), ("pincushion", False)):
        out = lens_distortion(grid, kind, 0.3)[:, :, 0].astype(float)
        centre_x = (out[20] * numpy.arange(41)).sum() / out[20].sum()
        corner_x = (out[2] * numpy.arange(41)).sum() / max(out[2].sum(), 1)
        # barrel bows lines outwards in the middle (relative to the ends); pincushion inwards
        assert (centre_x > corner_x) == outward, kind
    image = _image((41, 41, 3), 4)
    for kind in ("barrel", "pincushion"):
        assert (lens_distortion(image, kind, 0.3)[20, 20] == image[20, 20]).all()


def test_reads_outside_the_image_repeat_the_border():
    image = _image((30, 30, 3), 5)
    warp = WarpMap.build(30, 30, degrees=45)
    out = warp.apply(image)
    assert out.shape == (30, 30, 3)
    assert (out[0, 0] == image[0, 15]).all() or numpy.abs(out[0, 0].astype(int) - image[0, 14:17].mean(0)).max() < 60


def test_fast_and_clamped_paths_agree_inside_the_image():
    image = _image((64, 64, 3), 6)
    warp = WarpMap.build(20, 20, degrees=7, lens=lens_coefficients("pincushion", 0.2))
    fast = warp.resample(image, numpy.empty((20, 20, 3), numpy.uint8), 20, 20)
    assert warp.source_index(20, 20, 64, 64) is not None
    slow = warp.resample(image, numpy.empty((20, 20, 3), numpy.uint8), 20, 20, factor=1.0 + 1e-9)
    assert numpy.abs(fast.astype(int) - slow).max() <= 1


@pytest.mark.parametrize("flip", [False, True])
def test_batched_coordinates_match_one_by_one(flip):
    angles = numpy.array([0.0, 13.0, -40.0], dtype=numpy.float32)
    lens = [lens_coefficients(k, a) for k, a in ((None, 0), ("barrel", 0.2), ("stretch_v", 0.1))]

    def col(values):
        return numpy.asarray(values, dtype=numpy.float32).reshape(-1, 1, 1)

    cos, sin = numpy.cos(numpy.radians(angles)), numpy.sin(numpy.radians(angles))
    sign = -1.0 if flip else 1.0
    ys, xs = warp_coords(numpy, 9, 11, col([sign] * 3), col(cos), col(sin), tuple(col(c) for c in zip(*lens)))
    for i in range(3):
        y1, x1 = warp_coords(numpy, 9, 11, sign, float(cos[i]), float(sin[i]), lens[i])
        numpy.testing.assert_allclose(ys[i], y1, atol=1e-4)
        numpy.testing.assert_allclose(xs[i], x1, atol=1e-4)
