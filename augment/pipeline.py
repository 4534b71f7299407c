"""Pipeline: one configured augmentation applied image by image on the CPU.

Order (Deep Image §4.1): the crop is taken first, from the source resized so its
shorter side is the sample's scale; flip, rotation and lens distortion act on the crop
through one fused coordinate map (a single bilinear pass from the original pixels, by
OpenCV's remap where it is installed, see opencv);
colour cast and vignette follow on the result. Maps and vignette masks depend only on
discrete parameters and are kept in an LRU cache. A sample without flip, rotation or
distortion at its source's own scale is a plain slice, no interpolation at all.
"""
import numpy
from PIL import Image

from minwa.errors import DataError

from ._workspace import scratch
from .augment_config import AugmentConfig
from .bilinear import ONE, finish_interleaved
from .lru_cache import LRUCache
from .opencv import opencv
from .opencv_remap import RemapTable, remap_direct, warp_affine
from .sample_params import SLOTS, SampleParams, sample_uniforms
from .vignette import vignette_falloff
from .warp_map import IDENTITY_LENS, WarpMap, radial_factor


def as_hwc(image, where="image"):
    """``image`` as a uint8 H x W x C array (a 2-D grey image gets C = 1)."""
    image = numpy.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype != numpy.uint8 or image.ndim != 3 or min(image.shape) < 1:
        raise DataError(f"{where}: expected a uint8 HxWxC image, got {image.dtype} {image.shape}")
    return image


def box_reduce(image, k):
    """``image`` shrunk by the integer factor ``k`` with a box filter (anti-aliasing before big downscales)."""
    if image.shape[2] in (1, 3):
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out = numpy.asarray(pil.reduce(k))
        return out[:, :, None] if out.ndim == 2 else out
    height, width, channels = image.shape
    h, w = height // k, width // k
    blocks = image[:h * k, :w * k].reshape(h, k, w, k, channels).astype(numpy.float32)
    return (blocks.mean(axis=(1, 3)) + 0.5).astype(numpy.uint8)


class Pipeline:
    """Draws per-sample parameters and applies them (``sample``/``centre`` then ``apply``)."""

    def __init__(self, config):
        self.config = config if isinstance(config, AugmentConfig) else AugmentConfig(config)
        self.crop = self.config.crop
        self.ops = self.config.ops
        self.cache = LRUCache(self.config.cache_mb * 2 ** 20)
        self._cache_lens = self._lens_maps_fit()

    @property
    def size(self):
        return self.crop.size

    # -- parameters ----------------------------------------------------------------
    def sample(self, seed, epoch, index, height, width):
        """The random SampleParams of sample ``index`` at ``epoch`` for a ``height`` x ``width`` source."""
        return self.draw(sample_uniforms(seed, epoch, index), height, width)

    def draw(self, u, height, width):
        """SampleParams from a vector of uniforms (see sample_params.SLOTS)."""
        def part(name):
            lo, hi = SLOTS[name]
            return u[lo:hi]

        ops = self.ops
        scale, top, left = self.crop.draw(part("crop"), height, width)
        return SampleParams(
            scale=scale, top=top, left=left,
            flip=ops["flip"].draw(part("flip")) if ops["flip"] else False,
            degrees=ops["rotation"].draw(part("rotation")) if ops["rotation"] else 0,
            lens=ops["lens_distortion"].draw(part("lens_distortion")) if ops["lens_distortion"] else None,
            cast=ops["color_cast"].draw(part("color_cast")) if ops["color_cast"] else None,
            vignette=ops["vignette"].draw(part("vignette")) if ops["vignette"] else None)

    def centre(self, height, width):
        """The evaluation SampleParams: ``test_scale`` and the centre crop, nothing else."""
        scale, top, left = self.crop.centre(height, width)
        return SampleParams(scale=scale, top=top, left=left)

    def describe(self, params):
        """A short label of what ``params`` does, for pictures and logs."""
        parts = [self.crop.describe(params.scale, params.top, params.left)]
        if params.flip:
            parts.append("flip")
        if params.degrees:
            parts.append(self.ops["rotation"].describe(params.degrees))
        if params.lens is not None:
            parts.append(self.ops["lens_distortion"].describe(params.lens))
        if params.cast is not None:
            parts.append(self.ops["color_cast"].describe(params.cast))
        if params.vignette is not None:
            parts.append(self.ops["vignette"].describe(params.vignette))
        return ", ".join(parts)

    # -- cached pieces ---------------------------------------------------------------
    def _lens_maps_fit(self):
        """Whether every map with lens distortion fits the cache; if not, caching them would only evict
        the few rotation maps that do repeat, so they are computed directly each time."""
        lens = self.ops["lens_distortion"]
        if lens is None:
            return True
        rotation = self.ops["rotation"]
        count = 2 * (2 * rotation.max_degrees + 1 if rotation else 1) * lens.space_size()
        map_bytes = self.size * self.size * (numpy.dtype(numpy.intp).itemsize + 8)
        return count * map_bytes <= self.cache.max_bytes // 2

    def _lens(self, params):
        """(coefficients, radial factor or None) of params' lens distortion; the factor is cached when the
        maps themselves are not (it depends on the lens alone, not on flip or angle)."""
        lens = params.lens
        if lens is None:
            return IDENTITY_LENS, None
        coeffs = self.ops["lens_distortion"].coefficients(lens)
        if self._cache_lens or not (coeffs[0] or coeffs[1]):  # only barrel and pincushion have a factor
            return coeffs, None
        return coeffs, self.cache.get(("radial", self.size, lens), lambda: radial_factor(self.size, self.size, coeffs))

    def warp_map(self, params):
        """The WarpMap of params' flip, rotation and lens distortion (cached when worth it)."""
        coeffs, fac = self._lens(params)
        if params.lens is not None and not self._cache_lens:
            return WarpMap.build(self.size, self.size, params.flip, params.degrees, coeffs, tabulate=False, fac=fac)
        key = ("warp", self.size, params.flip, params.degrees, params.lens)
        return self.cache.get(key, lambda: WarpMap.build(self.size, self.size, params.flip, params.degrees, coeffs))

    def remap(self, cv2, image, params, factor, dst):
        """The warp of ``params`` by OpenCV into ``dst``: warpAffine without barrel or pincushion; else a
        cached RemapTable at the source's own scale when it fits the image, or coordinates for this crop."""
        coeffs, fac = self._lens(params)
        if not (coeffs[0] or coeffs[1]):  # no radial factor: an affine map
            warp_affine(cv2, image, dst, params.flip, params.degrees, coeffs, params.top, params.left, factor)
            return dst
        if factor == 1.0 and self._cache_lens:
            key = ("remap", self.size, params.flip, params.degrees, params.lens)
            table = self.cache.get(key, lambda: RemapTable(cv2, self.size, params.flip, params.degrees, coeffs))
            if table.remap(cv2, image, dst, params.top, params.left):
                return dst
        remap_direct(cv2, image, dst, params.flip, params.degrees, coeffs, params.top, params.left, factor, fac)
        return dst

    def mask(self, levels, channels=None):
        """The fixed-point vignette mask (uint16, ONE = unchanged) of (radius level, strength level):
        flat (n,) or, with ``channels``, repeated per channel as size x (size * channels); None when
        ``levels`` is None. The falloff of each radius level is cached; the strength is applied here.
        The result is a scratch buffer, valid until the next call on this thread."""
        if levels is None:
            return None
        size = self.size
        radius, strength = self.ops["vignette"].values(levels)

        def build():
            falloff = vignette_falloff(size, size, radius)
            return falloff.reshape(-1) if channels is None else numpy.repeat(falloff, channels, axis=1)

        falloff = self.cache.get(("vignette", size, levels[0], channels), build)
        tmp = scratch("mask_f", falloff.shape, numpy.float32)
        numpy.multiply(falloff, -ONE * strength, out=tmp)
        tmp += ONE + 0.5
        out = scratch("mask_p" if channels is None else "mask_i", falloff.shape, numpy.uint16)
        numpy.copyto(out, tmp, casting="unsafe")
        return out

    # -- applying ----------------------------------------------------------------------
    def apply(self, image, params, dst=None, where="image"):
        """The augmented crop (uint8 size x size x C) of ``image`` under ``params``, written to ``dst``."""
        image = as_hwc(image, where)
        channels = image.shape[2]
        if params.cast is not None and channels != 3:
            raise DataError(f"{where}: color_cast needs RGB images, got {channels} channel(s)")
        size = self.size
        if dst is not None and (dst.shape != (size, size, channels) or not dst.flags.c_contiguous):
            numpy.copyto(dst, self.apply(image, params, None, where))  # the fast paths write contiguous arrays
            return dst
        if dst is None:
            dst = numpy.empty((size, size, channels), dtype=numpy.uint8)
        factor = min(image.shape[:2]) / params.scale
        if factor >= 2.0:  # shrink by a whole factor first so the bilinear pass does not alias
            image = box_reduce(image, int(factor))
            factor = min(image.shape[:2]) / params.scale
        top, left = params.top, params.left
        height, width = image.shape[:2]
        fits = 0 <= top and top + size <= height and 0 <= left and left + size <= width
        if factor == 1.0 and fits and params.degrees == 0 and params.lens is None:
            view = image[top:top + size, left:left + size]
            if params.flip:
                view = view[:, ::-1]
            return finish_interleaved(view, dst, params.cast, self.mask(params.vignette, channels))
        cv2 = opencv()
        if cv2 is not None:
            self.remap(cv2, image, params, factor, dst)
            return finish_interleaved(dst, dst, params.cast, self.mask(params.vignette, channels))
        warp = self.warp_map(params)
        return warp.resample(image, dst, top, left, factor, params.cast, self.mask(params.vignette))
