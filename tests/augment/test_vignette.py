import numpy

from minwa.augment import vignette, vignette_mask


def test_centre_unchanged_and_darker_towards_the_corners():
    image = numpy.full((101, 101, 3), 200, dtype=numpy.uint8)
    out = vignette(image, radius=0.3, strength=0.5).astype(int)
    centre = out[50, 50]
    assert (centre == 200).all()
    # inside the start radius nothing changes
    assert (out[40:61, 40:61] == 200).all()
    # along the diagonal and along a side, brightness never rises going outwards, and really falls
    for ray in (out[numpy.arange(50, 101), numpy.arange(50, 101), 0], out[50, 50:, 0], out[50::-1, 50, 0]):
        assert (numpy.diff(ray) <= 0).all()
        assert ray[-1] < ray[0]
    assert out[0, 0, 0] < out[50, 0, 0] < 200
    # corners lose about ``strength`` of their brightness
    assert abs(out[0, 0, 0] - 100) <= 4  # the corner pixel centre lies just inside the corner


def test_mask_is_monotone_in_radius_and_strength():
    weak = vignette_mask(64, 48, 0.5, 0.2)
    strong = vignette_mask(64, 48, 0.5, 0.4)
    wide = vignette_mask(64, 48, 0.2, 0.2)
    assert (strong <= weak).all() and (wide <= weak).all()
    assert weak.max() == 1.0 and 0.79 < weak.min() < 0.85


def test_batched_masks_match_single_ones():
    radius = numpy.array([0.2, 0.6], dtype=numpy.float32).reshape(2, 1, 1)
    strength = numpy.array([0.5, 0.1], dtype=numpy.float32).reshape(2, 1, 1)
    batch = vignette_mask(20, 30, radius, strength)
    assert batch.shape == (2, 20, 30)
    numpy.testing.assert_allclose(batch[1], vignette_mask(20, 30, 0.6, 0.1), rtol=1e-6)
