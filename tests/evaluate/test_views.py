"""Views on a known image: crops, flips, scales and the preprocessing."""
import numpy
import pytest
from PIL import Image

from minwa.errors import ConfigError
from minwa.evaluate.views import View, ViewMaker, parse_views


def known_image(h=4, w=4):
    return (numpy.arange(h * w * 3).reshape(h, w, 3) * 5 % 256).astype(numpy.uint8)


def chw(image):
    return image.astype(numpy.float32).transpose(2, 0, 1)


def test_parse_views_order_and_names():
    views = parse_views([32, 40], "corners5", flip=True)
    assert len(views) == 2 * 5 * 2
    assert views[0] == View(32, "center", False) and views[1] == View(32, "center", True)
    assert views[-1].name == "s40-br-flip"
    assert [v.name for v in parse_views([48], "dense")] == ["s48-dense"]


@pytest.mark.parametrize("kwargs,match", [({"scales": [32], "crops": "ten"}, "--crops 'ten'"),
                                          ({"scales": []}, "--scales"), ({"scales": [0]}, "--scales 0"),
                                          ({"scales": [32, 32]}, "twice")])
def test_parse_views_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        parse_views(**kwargs)


def test_crops_and_flips_of_a_known_image():
    image = known_image()
    maker = ViewMaker(crop_size=2)
    views = parse_views([4], "corners5", flip=True)
    out = maker.batches([image], views)
    expect = {"center": image[1:3, 1:3], "tl": image[:2, :2], "tr": image[:2, 2:], "bl": image[2:, :2],
              "br": image[2:, 2:]}
    for view in views:
        want = expect[view.crop][:, ::-1] if view.flip else expect[view.crop]
        numpy.testing.assert_array_equal(out[view][0], chw(want))


def test_scale_view_resizes_the_shorter_side():
    image = known_image(4, 6)
    maker = ViewMaker(crop_size=4)
    dense, centre = View(8, "dense", False), View(8, "center", True)
    out = maker.batches([image], [dense, centre])
    resized = numpy.asarray(Image.fromarray(image).resize((12, 8), Image.BILINEAR))  # 4x6 -> 8x12
    numpy.testing.assert_array_equal(out[dense][0], chw(resized[:, 2:10]))  # the centre square
    numpy.testing.assert_array_equal(out[centre][0], chw(resized[2:6, 4:8][:, ::-1]))
    same = maker.batches([image], [View(4, "center", False)])[View(4, "center", False)]
    numpy.testing.assert_array_equal(same[0], chw(image[:, 1:5]))  # the own scale: no interpolation


def test_mean_and_multiplier_follow_the_model():
    image = numpy.full((4, 4, 3), 100, dtype=numpy.uint8)
    channel = ViewMaker(2, mean=numpy.array([10.0, 20.0, 30.0]).reshape(3, 1, 1), multiplier=0.5)
    out = channel.batches([image], [View(4, "center", False)])[View(4, "center", False)]
    numpy.testing.assert_allclose(out[0, :, 0, 0], [45.0, 40.0, 35.0])
    mean_image = numpy.full((3, 4, 4), 40.0, dtype=numpy.float32)
    per_pixel = ViewMaker(4, mean=mean_image)
    out = per_pixel.batches([image], [View(8, "dense", False)])[View(8, "dense", False)]
    assert out.shape == (1, 3, 8, 8)
    numpy.testing.assert_allclose(out, 60.0, atol=1e-4)  # the mean image is resized with the picture


def test_window_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        ViewMaker(8).batches([known_image()], [View(4, "center", False)])
