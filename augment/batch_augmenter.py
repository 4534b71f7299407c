"""BatchAugmenter: the augmentation of a whole batch on the device, through the backend's xp.

For GPU training the sources can be copied to the device once (uint8, N x H x W x C, one
size per batch, e.g. already resized) and augmented there: every map, weight and mask
is built for the whole batch with broadcasting, and the four bilinear corners are
gathered with one fancy index each, in float32. Parameters are drawn exactly as the CPU
Transform draws them (same seed, epoch and index give the same crop, angle, cast...), so
both paths agree up to rounding: the CPU path works in 1/256-pixel fixed point, and the
two differ by at most 2 grey levels (almost always 0 or 1). One real difference: sources
more than twice the scale are not box-filtered first, so feed this path sources at most
twice the largest scale.
"""
import numpy

from minwa import backend
from minwa.errors import DataError

from .lens_distortion import lens_coefficients
from .transform import Transform
from .vignette import vignette_mask
from .warp_map import corner_weights, cos_sin, decompose, warp_coords


class BatchAugmenter:
    """``augmenter(images, indices, epoch)`` -> uint8 N x crop x crop x C on the images' device."""

    def __init__(self, config, seed=0, train=True):
        self.transform = config if isinstance(config, Transform) else Transform(config, seed=seed, train=train)
        self.pipeline = self.transform.pipeline

    def __call__(self, images, indices, epoch=0):
        if images.ndim != 4 or images.dtype != numpy.uint8:
            raise DataError(f"augment: expected a uint8 NHWC batch, got {images.dtype} {tuple(images.shape)}")
        indices = numpy.asarray(backend.to_host(indices)).reshape(-1)
        if len(indices) != images.shape[0]:
            raise DataError(f"augment: {images.shape[0]} images but {len(indices)} indices")
        params = self.transform.batch_params([images.shape[1:3]] * len(indices), indices, epoch)
        return self.apply(images, params)

    def apply(self, images, params):
        """Augment ``images`` (xp uint8 NHWC) with one SampleParams per image."""
        xp = backend.xp_of(images)
        count, height, width, channels = images.shape
        size = self.pipeline.size
        if any(p.cast is not None for p in params) and channels != 3:
            raise DataError(f"augment: color_cast needs RGB images, got {channels} channel(s)")
        host = self._parameters(params, height, width, channels)
        dev = {key: xp.asarray(value) for key, value in host.items()}
        col = {key: value.reshape(-1, 1, 1) for key, value in dev.items() if value.ndim == 1}
        lens = (col["kb"], col["kp"], col["sx"], col["sy"])
        ys, xs = warp_coords(xp, size, size, col["flip"], col["cos"], col["sin"], lens, dtype=numpy.float32)
        ys = (ys + (col["top"] + 0.5)) * col["factor"] - 0.5
        xs = (xs + (col["left"] + 0.5)) * col["factor"] - 0.5
        y0, x0, wy, wx = decompose(xp, ys, xs, height, width)
        flat = (xp.arange(count, dtype=xp.int64) * (height * width)).reshape(-1, 1, 1) + y0 * width + x0
        weights = corner_weights(xp, wy, wx)[..., None]
        rows = images.reshape(count * height * width, channels)
        last = count * height * width - 1
        out = xp.take(rows, flat, axis=0).astype(xp.float32) * weights[0]
        for k, step in ((1, 1), (2, width), (3, width + 1)):
            out += xp.take(rows, xp.minimum(flat + step, last), axis=0).astype(xp.float32) * weights[k]
        out += dev["shifts"].reshape(count, 1, 1, channels)
        out *= vignette_mask(size, size, col["radius"], col["strength"], xp=xp)[..., None]
        xp.clip(out, 0, 255, out=out)
        out += 0.5
        return out.astype(xp.uint8)

    def _parameters(self, params, height, width, channels):
        ops = self.pipeline.ops
        count = len(params)
        host = {key: numpy.zeros(count, dtype=numpy.float32)
                for key in ("factor", "top", "left", "flip", "cos", "sin", "kb", "kp", "sx", "sy", "radius",
                            "strength")}
        host["shifts"] = numpy.zeros((count, channels), dtype=numpy.float32)
        for i, p in enumerate(params):
            host["factor"][i] = min(height, width) / p.scale
            host["top"][i], host["left"][i] = p.top, p.left
            host["flip"][i] = -1.0 if p.flip else 1.0
            host["cos"][i], host["sin"][i] = cos_sin(p.degrees)
            coeffs = ops["lens_distortion"].coefficients(p.lens) if p.lens is not None else lens_coefficients(None, 0)
            host["kb"][i], host["kp"][i], host["sx"][i], host["sy"][i] = coeffs
            if p.cast is not None:
                host["shifts"][i] = p.cast
            if p.vignette is not None:
                host["radius"][i], host["strength"][i] = ops["vignette"].values(p.vignette)
        return host
