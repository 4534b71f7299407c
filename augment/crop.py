"""Crop: multi-scale random crops, taken first (Deep Image §4.1: every other operation
works on the crop, so the whole augmented picture feeds the net).

The shorter side of the source is resized to a scale (one of ``scales``, chosen per
image), then a crop x crop window is taken at offsets top in [0, H - crop) and left in
[0, W - crop). On a 512 x 512 image with 224 x 224 crops that is (512 - 224)^2 = 82,944
positions, the count in Table 1. The resize is not done on its own: it is folded into
the same coordinate map as the other geometric operations, so each output pixel is
interpolated once from the original image. Evaluation resizes to ``test_scale`` and
takes the centre crop.
"""
import numpy
from PIL import Image

from minwa.errors import ConfigError

from ._checks import pick, whole


def scaled_size(height, width, scale):
    """(H, W) of an image whose shorter side is resized to ``scale`` (aspect ratio kept)."""
    shorter = min(height, width)
    return max(scale, round(height * scale / shorter)), max(scale, round(width * scale / shorter))


def rescale(image, scale):
    """``image`` (uint8 HWC) with its shorter side resized to ``scale`` (Pillow, antialiased bilinear)."""
    image = numpy.asarray(image)
    height, width = scaled_size(image.shape[0], image.shape[1], scale)
    if (height, width) == image.shape[:2]:
        return image.copy()
    squeeze = image.ndim == 3 and image.shape[2] == 1
    pil = Image.fromarray(image[:, :, 0] if squeeze else image)
    out = numpy.asarray(pil.resize((width, height), Image.BILINEAR))
    return out[:, :, None] if squeeze else out


def crop(image, top, left, size):
    """The ``size`` x ``size`` window of ``image`` starting at row ``top``, column ``left``."""
    height, width = image.shape[:2]
    if not (0 <= top <= height - size and 0 <= left <= width - size):
        raise ValueError(f"crop: a {size}x{size} window at ({top}, {left}) does not fit a {height}x{width} image")
    return numpy.ascontiguousarray(image[top:top + size, left:left + size])


class Crop:
    """Multi-scale crop: the scales, the crop size, and how a sample draws a scale and offsets."""

    name = "crop"
    SLOTS = 3  # scale, top, left

    def __init__(self, size=224, scales=(256, 512), test_scale=None):
        self.size = int(size)
        self.scales = tuple(sorted({int(s) for s in scales}))
        self.test_scale = int(test_scale) if test_scale is not None else self.scales[0]

    @classmethod
    def from_config(cls, block, where):
        """Reads ``crop``, ``scales`` and ``test_scale`` of the augment block."""
        if "crop" not in block:
            raise ConfigError(f"{where}.crop: missing (the side of the square crops, e.g. 224)")
        size = whole(block["crop"], f"{where}.crop", 2)
        scales = _scales(block.get("scales", [size]), f"{where}.scales")
        for scale in scales:
            if scale < size:
                raise ConfigError(f"{where}.scales: scale {scale} is smaller than crop {size}")
        test_scale = block.get("test_scale")
        if test_scale is not None:
            test_scale = whole(test_scale, f"{where}.test_scale", size)
        return cls(size, scales, test_scale)

    def space_size(self, source=None):
        """Crop positions on a square ``source`` x ``source`` image (default: the largest scale)."""
        source = max(self.scales) if source is None else int(source)
        return max(source - self.size, 1) ** 2

    def draw(self, u, height, width):
        """(scale, top, left) for an image of ``height`` x ``width`` from 3 uniforms."""
        scale = self.scales[pick(u[0], len(self.scales))]
        sh, sw = scaled_size(height, width, scale)
        return scale, pick(u[1], max(sh - self.size, 1)), pick(u[2], max(sw - self.size, 1))

    def centre(self, height, width):
        """(scale, top, left) of the evaluation crop: ``test_scale`` and the centre window."""
        sh, sw = scaled_size(height, width, self.test_scale)
        return self.test_scale, (sh - self.size) // 2, (sw - self.size) // 2

    def describe(self, scale, top, left):
        return f"crop@{scale} ({top},{left})"


def _scales(value, where):
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max", "step"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; known: min, max, step")
        if "min" not in value or "max" not in value:
            raise ConfigError(f"{where}: a range needs min and max, got {value!r}")
        low = whole(value["min"], f"{where}.min", 1)
        high = whole(value["max"], f"{where}.max", low)
        step = whole(value.get("step", 1), f"{where}.step", 1)
        return list(range(low, high + 1, step))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [whole(value, where, 1)]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where}: expected a scale, a list of scales or {{min, max, step}}, got {value!r}")
    return [whole(s, f"{where}[{i}]", 1) for i, s in enumerate(value)]
