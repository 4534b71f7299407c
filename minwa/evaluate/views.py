"""View: one way of showing a test image to a net (a scale, a crop, mirrored or not).

- scale ``s``: the image is resized so its shorter side is ``s`` pixels (bilinear, as the
  augmentation module's evaluation path does);
- crop ``center``: the net's training-size window from the middle of the resized image;
  ``tl``/``tr``/``bl``/``br``: the same window at a corner (``corners5`` = the centre and the
  four corners, as in the ten-crop evaluation of AlexNet/Caffe);
  ``dense``: the whole s x s picture (the centre square of a non-square one) through the
  fully convolutional net, whose map of class scores is averaged (Deep Image §5);
- ``flip``: the view mirrored left to right.

``ViewMaker`` turns a list of uint8 HWC images into the float NCHW batch of each view,
preprocessed as the model was trained: ``(pixel - mean) * scale``. A per-pixel mean
image is resized with the picture, so it stays aligned with what it was computed on.
"""
from collections import namedtuple

import numpy
from PIL import Image

from ..errors import ConfigError

CROPS = ("center", "tl", "tr", "bl", "br", "dense")
CROP_SETS = {"center": ("center",), "corners5": ("center", "tl", "tr", "bl", "br"), "dense": ("dense",)}


class View(namedtuple("View", ["scale", "crop", "flip"])):
    """(scale, crop, flip); ``name`` like ``s48-center-flip``."""

    @property
    def name(self):
        return f"s{self.scale}-{self.crop}" + ("-flip" if self.flip else "")


def parse_views(scales, crops="center", flip=False):
    """The views of every scale x crop (x flip) in a fixed order; errors name the option."""
    if crops not in CROP_SETS:
        raise ConfigError(f"--crops {crops!r}: expected one of {', '.join(CROP_SETS)}")
    scales = list(scales)
    if not scales:
        raise ConfigError("--scales: give at least one scale")
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, (int, numpy.integer)) or s < 1:
            raise ConfigError(f"--scales {s!r}: expected positive whole numbers of pixels")
    if len(set(scales)) != len(scales):
        raise ConfigError(f"--scales {scales}: a scale is given twice")
    flips = (False, True) if flip else (False,)
    return [View(int(s), c, f) for s in scales for c in CROP_SETS[crops] for f in flips]


_square_transforms = {}


def rescale(image, scale):
    """``image`` (uint8 HWC) with its shorter side at ``scale`` pixels.

    A square image goes through the augmentation module's evaluation transform, so a view
    at a model's test scale sees exactly the pixels its trainer tested on; others through
    Pillow's bilinear resize (the same up to rounding).
    """
    from minwa.augment.crop import rescale as _rescale  # noqa: PLC0415 - Pillow

    height, width = image.shape[:2]
    if height != width or height == scale:
        return _rescale(image, scale)
    if scale not in _square_transforms:
        from minwa.augment import build_transform  # noqa: PLC0415

        _square_transforms[scale] = build_transform({"crop": scale, "scales": [scale]}, seed=0, train=False)
    return numpy.asarray(_square_transforms[scale]([image], numpy.zeros(1, dtype=numpy.int64), 0))[0]


def window(height, width, size, crop):
    """(top, left) of a ``size`` window at ``crop`` in a height x width picture."""
    if crop in ("center", "dense"):
        return (height - size) // 2, (width - size) // 2
    top = 0 if crop[0] == "t" else height - size
    left = 0 if crop[1] == "l" else width - size
    return top, left


class ViewMaker:
    """Preprocessed view batches for one model: its crop size, mean and pixel multiplier."""

    def __init__(self, crop_size, mean=None, multiplier=1.0):
        self.crop_size = int(crop_size)
        self.mean = None if mean is None else numpy.asarray(mean, dtype=numpy.float32)  # (C, h, w) or (C, 1, 1)
        self.multiplier = float(multiplier)
        self._means = {}

    def _mean_at(self, height, width):
        if self.mean is None or self.mean.shape[1:] == (1, 1):
            return None if self.mean is None else self.mean.transpose(1, 2, 0)
        key = (height, width)
        if key not in self._means:
            if self.mean.shape[1:] == key:
                fitted = self.mean
            else:
                fitted = numpy.stack([numpy.asarray(Image.fromarray(channel, mode="F").resize(
                    (width, height), Image.BILINEAR)) for channel in self.mean])
            self._means[key] = fitted.transpose(1, 2, 0).astype(numpy.float32)
        return self._means[key]

    def _prepared(self, image):
        x = image.astype(numpy.float32)
        mean = self._mean_at(*image.shape[:2])
        if mean is not None:
            x -= mean
        if self.multiplier != 1.0:
            x *= numpy.float32(self.multiplier)
        return x

    def batches(self, images, views):
        """{view: float32 (N, C, h, w)} for ``views`` of ``images`` (a list of uint8 HWC arrays)."""
        out = {}
        by_scale = {}
        for view in views:
            by_scale.setdefault(view.scale, []).append(view)
        for scale, group in by_scale.items():
            resized = [self._prepared(rescale(image, scale)) for image in images]
            for view in group:
                size = scale if view.crop == "dense" else self.crop_size
                crops = []
                for picture in resized:
                    h, w = picture.shape[:2]
                    if size > min(h, w):
                        raise ValueError(f"view {view.name}: a {size}x{size} window does not fit a {h}x{w} picture")
                    top, left = window(h, w, size, view.crop)
                    part = picture[top:top + size, left:left + size]
                    crops.append(part[:, ::-1] if view.flip else part)
                batch = numpy.stack(crops) if crops else numpy.zeros((0, size, size, 3), numpy.float32)
                out[view] = numpy.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return out
