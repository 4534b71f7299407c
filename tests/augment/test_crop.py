import numpy
import pytest

from minwa.augment import AugmentConfig, Pipeline, crop, rescale
from minwa.augment.crop import scaled_size
from minwa.augment.sample_params import SampleParams


def _image(shape, seed=0):
    return numpy.random.default_rng(seed).integers(0, 256, size=shape, dtype=numpy.uint8)


@pytest.mark.parametrize("shape", [(512, 512), (300, 700), (901, 256), (257, 256)])
def test_crops_stay_inside_the_resized_image(shape):
    cfg = AugmentConfig({"crop": 224, "scales": {"min": 224, "max": 600, "step": 16}})
    rng = numpy.random.default_rng(0)
    scales = set()
    for u in rng.random((2000, 3)):
        scale, top, left = cfg.crop.draw(u, *shape)
        height, width = scaled_size(*shape, scale)
        assert min(height, width) == scale
        assert 0 <= top and top + 224 <= height and 0 <= left and left + 224 <= width
        scales.add(scale)
    assert scales == set(range(224, 601, 16))


def test_crop_at_source_scale_is_the_plain_window():
    image = _image((300, 400, 3))
    pipeline = Pipeline({"crop": 100, "scales": [300]})
    for seed in range(5):
        p = pipeline.sample(seed, 0, 7, 300, 400)
        assert (pipeline.apply(image, p) == crop(image, p.top, p.left, 100)).all()


def test_multi_scale_crop_matches_resize_then_crop():
    base = numpy.linspace(0, 255, 40 * 50 * 3).reshape(40, 50, 3)
    image = (base + 30 * numpy.sin(numpy.arange(50) / 3.0)[None, :, None]).clip(0, 255).astype(numpy.uint8)
    pipeline = Pipeline({"crop": 32, "scales": [80]})  # upscale 2x, folded into the map
    params = SampleParams(scale=80, top=20, left=41)
    ours = pipeline.apply(image, params).astype(int)
    theirs = crop(rescale(image, 80), 20, 41, 32).astype(int)
    assert numpy.abs(ours - theirs).mean() < 1.0 and numpy.abs(ours - theirs).max() <= 3


def test_large_downscale_is_box_filtered_first():
    stripes = numpy.zeros((400, 400, 3), numpy.uint8)
    stripes[:, ::2] = 255  # alternating columns alias badly without a low-pass filter
    pipeline = Pipeline({"crop": 64, "scales": [100]})
    out = pipeline.apply(stripes, SampleParams(scale=100, top=10, left=10)).astype(int)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3


def test_evaluation_view_is_the_centre_crop():
    image = _image((256, 320, 3), 1)
    pipeline = Pipeline({"crop": 224, "scales": [256, 512], "rotation": True, "color_cast": {"p": 1.0}})
    params = pipeline.centre(256, 320)
    assert params == SampleParams(scale=256, top=16, left=48)
    assert (pipeline.apply(image, params) == image[16:240, 48:272]).all()


def test_crop_function_refuses_windows_outside():
    with pytest.raises(ValueError, match="does not fit"):
        crop(_image((10, 10, 3)), 5, 0, 8)
