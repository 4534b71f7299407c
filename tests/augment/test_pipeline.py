"""The whole CPU pipeline against a plain float64 reference of the same definition, on many random draws.

The reference follows the definitions step by step: source coordinates of every output pixel
(warp_coords), the crop offset and the resize, clamping, bilinear interpolation in float64,
colour cast with clipping, vignette, rounding. The pipeline's fast paths (cached maps, boxes,
fixed point, slices) must agree with it to within rounding of 1/256-pixel positions.
"""
from dataclasses import replace

import numpy
import pytest

from minwa.augment import PAPER, Pipeline, color_cast
from minwa.augment.crop import scaled_size
from minwa.augment.sample_params import SampleParams
from minwa.augment.vignette import vignette_mask
from minwa.augment.warp_map import cos_sin, warp_coords


def reference(pipeline, image, params):
    size = pipeline.size
    height, width = image.shape[:2]
    factor = min(height, width) / params.scale
    lens = pipeline.ops["lens_distortion"].coefficients(params.lens) if params.lens else (0.0, 0.0, 1.0, 1.0)
    cos, sin = cos_sin(params.degrees)
    ys, xs = warp_coords(numpy, size, size, -1.0 if params.flip else 1.0, cos, sin, lens, dtype=numpy.float64)
    ys = numpy.clip((ys + params.top + 0.5) * factor - 0.5, 0, height - 1)
    xs = numpy.clip((xs + params.left + 0.5) * factor - 0.5, 0, width - 1)
    y0 = numpy.minimum(numpy.floor(ys), max(height - 2, 0)).astype(int)
    x0 = numpy.minimum(numpy.floor(xs), max(width - 2, 0)).astype(int)
    y1, x1 = numpy.minimum(y0 + 1, height - 1), numpy.minimum(x0 + 1, width - 1)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    img = image.astype(numpy.float64)
    out = ((1 - fy) * (1 - fx) * img[y0, x0] + (1 - fy) * fx * img[y0, x1]
           + fy * (1 - fx) * img[y1, x0] + fy * fx * img[y1, x1])
    if params.cast is not None:
        out = numpy.clip(out + numpy.asarray(params.cast), 0, 255)
    if params.vignette is not None:
        radius, strength = pipeline.ops["vignette"].values(params.vignette)
        out = out * vignette_mask(size, size, radius, strength, dtype=numpy.float64)[..., None]
    return out


def _smooth_image(rng, height, width, channels):
    """A photo-like test picture: smooth gradients plus mild noise (bilinear error scales with the slope)."""
    y, x = numpy.mgrid[0:height, 0:width]
    base = [128 + 100 * numpy.sin(x / (7.0 + 3 * c) + y / (11.0 + c) + c) for c in range(channels)]
    noisy = numpy.stack(base, axis=2) + rng.normal(0, 6, (height, width, channels))
    return numpy.clip(noisy, 0, 255).astype(numpy.uint8)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_random_pipelines_match_the_reference(channels):
    rng = numpy.random.default_rng(channels)
    block = dict(PAPER, crop=24, scales=[24, 30, 40], flip={"p": 0.5}, rotation={"p": 0.7, "max_degrees": 30},
                 lens_distortion={"p": 0.7}, vignette={"p": 0.5}, color_cast={"p": 0.5} if channels == 3 else False)
    pipeline = Pipeline(block)
    shapes = [(30, 30), (24, 31), (41, 36), (60, 45), (33, 24)]
    worst = []
    for k in range(150):
        height, width = shapes[k % len(shapes)]
        image = _smooth_image(rng, height, width, channels)
        params = pipeline.sample(7, 0, k, height, width)
        if min(height, width) / params.scale >= 2.0:
            continue  # box-filtered first: covered by test_crop
        if k % 10 == 0:  # also hit the exact border: crops flush with the last row and column
            scaled = scaled_size(height, width, params.scale)
            params = replace(params, top=scaled[0] - 24, left=scaled[1] - 24)
        got = pipeline.apply(image, params).astype(float)
        diff = numpy.abs(got - reference(pipeline, image, params))
        worst.append(diff.max())
        assert diff.max() <= 2.0, (k, params)
        assert diff.mean() <= 0.45, (k, params)  # two roundings (interpolation, vignette) at most
    assert len(worst) > 100


def test_exact_paths_are_exact():
    """Identity geometry, flips, quarter turns and colour casts involve no interpolation at all."""
    rng = numpy.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=numpy.uint8)
    pipeline = Pipeline({"crop": 32, "scales": [40], "color_cast": True})
    for params in (SampleParams(40, 3, 7), SampleParams(40, 8, 18, flip=True),
                   SampleParams(40, 0, 0, degrees=90), SampleParams(40, 2, 5, cast=(20, -20, 3))):
        window = image[params.top:params.top + 32, params.left:params.left + 32]
        if params.flip:
            window = window[:, ::-1]
        if params.degrees:
            window = numpy.rot90(window)
        if params.cast:
            window = color_cast(window, params.cast)
        assert (pipeline.apply(image, params) == window).all(), params


def test_writes_into_a_strided_destination():
    rng = numpy.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50, 3), dtype=numpy.uint8)
    pipeline = Pipeline(dict(PAPER, crop=32, scales=[40]))
    params = pipeline.sample(0, 0, 3, 40, 50)
    wide = numpy.zeros((32, 64, 3), numpy.uint8)
    pipeline.apply(image, params, wide[:, ::2])
    assert (wide[:, ::2] == pipeline.apply(image, params)).all() and (wide[:, 1::2] == 0).all()
