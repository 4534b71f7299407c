"""WarpMap: the geometric operations fused into one coordinate map and one bilinear pass.

For every pixel of the output crop the map says where to read the source image. The
inverse of the forward chain (resize -> crop -> flip -> rotation -> lens distortion) is
applied to the output pixel's offset (dx, dy) from the crop centre: undo the lens
distortion, turn back by the angle, mirror, move to the crop's place and scale to the
original image. Everything but the radial lens factor is affine, so the source
coordinates are

    xs = fac * (ax * dx + bx * dy) + ox,    ys = fac * (ay * dx + by * dy) + oy

with fac = 1 unless the map has barrel or pincushion distortion: one broadcast add of a
row and a column vector per coordinate, a few more operations for the radial factor.

Positions are kept in 1/256 pixel (see bilinear): the coordinates are computed in
float32 already multiplied by 256, then split into the integer corner and an integer
fraction. A map at the source's own scale depends only on discrete parameters (flip,
angle, lens type and degree, crop size) and, relative to the box of pixels it reads, not
even on the crop offset, so the pipeline caches it whole: flat corner indices and four
weights. Other scales and maps that would read outside the image are computed directly,
with clamping (the border pixels repeat).

The ``xp`` helpers at the top accept (N, 1, 1) parameter arrays, so the batched GPU path
builds a whole batch of maps with the same formulas.
"""
import functools
import math

import numpy

from ._workspace import scratch
from .bilinear import ONE, bilinear_fixed, finish_planar, fixed_weights

IDENTITY_LENS = (0.0, 0.0, 1.0, 1.0)


def cos_sin(degrees):
    """(cos, sin) of an angle in degrees, exact at multiples of 90 so such maps hit pixels exactly."""
    quarter, rest = divmod(degrees, 90)
    if rest == 0:
        return ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[int(quarter) % 4]
    rad = math.radians(degrees)
    return math.cos(rad), math.sin(rad)


def warp_coords(xp, height, width, flip_sign=1.0, cos=1.0, sin=0.0, lens=IDENTITY_LENS, dtype=numpy.float32):
    """Source coordinates (ys, xs), in the crop's own pixel frame, of each pixel of a height x width output.

    ``flip_sign`` is -1 to mirror; ``lens`` = (kb, kp, sx, sy) (see lens_distortion). Any
    parameter may be an array of shape (N, 1, 1); the result then has shape (N, height, width).
    """
    kb, kp, sx, sy = lens
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    dy = xp.arange(height, dtype=dtype)[:, None] - cy
    dx = xp.arange(width, dtype=dtype)[None, :] - cx
    if all(isinstance(v, float) for v in lens) and tuple(lens) == IDENTITY_LENS:
        x1, y1 = dx, dy
    else:
        r2 = (dx * dx + dy * dy) * (4.0 / min(height, width) ** 2)
        factor = (1 + kb * r2) / ((1 + kb) * (1 + kp * r2))
        x1, y1 = dx * factor / sx, dy * factor / sy
    xs = cx + flip_sign * (cos * x1 - sin * y1)
    ys = cy + (sin * x1 + cos * y1)
    xs, ys = xp.broadcast_arrays(xs, ys)
    return ys.astype(dtype), xs.astype(dtype)


def decompose(xp, ys, xs, height, width):
    """Clamp source coordinates to a height x width image and split them into the top-left corner
    (y0, x0) of their 2x2 neighbourhood and fractions (wy, wx); border pixels are repeated."""
    xs = xp.clip(xs, 0, width - 1)
    ys = xp.clip(ys, 0, height - 1)
    x0 = xp.minimum(xp.floor(xs), max(width - 2, 0))
    y0 = xp.minimum(xp.floor(ys), max(height - 2, 0))
    return y0.astype(xp.int64), x0.astype(xp.int64), ys - y0, xs - x0


def corner_weights(xp, wy, wx, dtype=numpy.float32, out=None):
    """The four bilinear weights (top-left, top-right, bottom-left, bottom-right), stacked first."""
    if out is None:
        out = xp.empty((4,) + tuple(wy.shape), dtype=dtype)
    xp.multiply(wx, wy, out=out[3])
    xp.subtract(wx, out[3], out=out[1])
    xp.subtract(wy, out[3], out=out[2])
    xp.subtract(1, wx, out=out[0])
    out[0] -= out[2]
    return out


def radial_factor(height, width, lens):
    """The radial factor fac of every output pixel (float32 height x width) for ``lens`` (kb, kp, sx, sy)."""
    kb, kp = float(lens[0]), float(lens[1])
    dx, dy = _offsets(height, width)
    scale = 4.0 / min(height, width) ** 2
    fac = numpy.empty((height, width), numpy.float32)
    if kp == 0.0:  # barrel: (1 + kb r^2) / (1 + kb), all folded into the two vectors
        gain = kb / (1.0 + kb)
        numpy.add(_row(dx * dx * scale * gain + 1.0 / (1.0 + kb)), _col(dy * dy * scale * gain), out=fac)
        return fac
    den = scratch("rf_den", (height, width), numpy.float32)  # pincushion and the general form
    numpy.add(_row((dx * dx * scale * kp + 1.0) * (1.0 + kb)), _col(dy * dy * scale * kp * (1.0 + kb)), out=den)
    if kb == 0.0:
        return numpy.reciprocal(den, out=fac)
    numpy.add(_row(dx * dx * scale * kb + 1.0), _col(dy * dy * scale * kb), out=fac)
    return numpy.divide(fac, den, out=fac)


@functools.lru_cache(maxsize=32)
def _offsets(height, width):
    """Offsets (dx, dy) of the pixel centres from the centre of a height x width output (float64)."""
    return numpy.arange(width) - (width - 1) / 2.0, numpy.arange(height) - (height - 1) / 2.0


def _row(values):
    return values.astype(numpy.float32)[None, :]


def _col(values):
    return values.astype(numpy.float32)[:, None]


def affine_terms(height, width, flip=False, degrees=0, lens=IDENTITY_LENS, top=0, left=0, factor=1.0):
    """(ax, bx, ox, ay, by, oy) of the module docstring's affine form for a height x width output whose
    crop sits at (top, left) of the source resized by 1 / ``factor`` (the lens' radial factor aside)."""
    sx, sy = float(lens[2]), float(lens[3])
    cos, sin = cos_sin(degrees)
    sign = -1.0 if flip else 1.0
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ax, bx = factor * sign * cos / sx, -factor * sign * sin / sy
    ay, by = factor * sin / sx, factor * cos / sy
    return ax, bx, factor * (cx + left + 0.5) - 0.5, ay, by, factor * (cy + top + 0.5) - 0.5


def fill_coords(ys, xs, flip=False, degrees=0, lens=IDENTITY_LENS, top=0, left=0, factor=1.0, unit=1.0,
                offset=0.0, fac=None):
    """Write ``unit`` * source coordinate + ``offset`` of each pixel of an output of ys.shape (numpy
    float32 arrays) and return the bounds (ymin, ymax, xmin, xmax) of the plain coordinates; the
    crop sits at (top, left) of the source resized by 1 / ``factor``. Uses the affine form of the
    module docstring: 2 array operations without radial distortion, 6 more with it; ``fac`` is the
    radial_factor of ``lens`` when the caller has it at hand."""
    height, width = ys.shape
    kb, kp = float(lens[0]), float(lens[1])
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ax, bx, ox, ay, by, oy = affine_terms(height, width, flip, degrees, lens, top, left, factor)
    dx, dy = _offsets(height, width)
    if kb == 0.0 and kp == 0.0:
        numpy.add(_row(unit * (ax * dx + ox) + offset), _col(unit * bx * dy), out=xs)
        numpy.add(_row(unit * (ay * dx + oy) + offset), _col(unit * by * dy), out=ys)
        corners = [(ax * x + bx * y + ox, ay * x + by * y + oy) for x in (-cx, cx) for y in (-cy, cy)]
        return (min(c[1] for c in corners), max(c[1] for c in corners),
                min(c[0] for c in corners), max(c[0] for c in corners))
    if fac is None:
        fac = radial_factor(height, width, lens)
    for out, a, b, o in ((xs, ax, bx, ox), (ys, ay, by, oy)):
        numpy.add(_row(unit * a * dx), _col(unit * b * dy), out=out)
        out *= fac
        out += unit * o + offset
    # the map is one-to-one, so the extremes of each coordinate lie on the output's border
    edges = [(ys[0], xs[0]), (ys[-1], xs[-1]), (ys[:, 0], xs[:, 0]), (ys[:, -1], xs[:, -1])]
    low = [(float(min(e[k].min() for e in edges)) - offset) / unit for k in (0, 1)]
    high = [(float(max(e[k].max() for e in edges)) - offset) / unit for k in (0, 1)]
    return low[0], high[0], low[1], high[1]


def _corner_range(low, high, size):
    """Range of top-left corners for coordinates in [low, high] clamped to an axis of ``size`` (with a
    margin for rounding to 1/256 pixel)."""
    top = max(size - 2, 0)
    return min(max(math.floor(low - 0.01), 0), top), min(max(math.floor(high + 0.01), 0), top)


def split_fixed(ys, xs, bounds, src_height, src_width, flat, weights):
    """Turn coordinates given in 1/ONE pixel plus 0.5 (float32 (n,), overwritten) into ``flat`` =
    (y0 - y_lo) * cols + (x0 - x_lo) of each 2x2 neighbourhood and its four fixed-point ``weights``;
    returns the box (y_lo, x_lo, rows, cols). Clamps to the source only when ``bounds`` leave it.

    Away from the last row and column every fraction is below ONE and the weights are worked out
    in uint16; a map reaching them pulls such corners back by one pixel (fraction ONE) in int32."""
    ymin, ymax, xmin, xmax = bounds
    if xmin < 0 or xmax > src_width - 1:
        numpy.clip(xs, 0, ONE * (src_width - 1), out=xs)
    if ymin < 0 or ymax > src_height - 1:
        numpy.clip(ys, 0, ONE * (src_height - 1), out=ys)
    y_lo, y_hi = _corner_range(ymin, ymax, src_height)
    x_lo, x_hi = _corner_range(xmin, xmax, src_width)
    box = (y_lo, x_lo, min(y_hi + 2, src_height) - y_lo, x_hi - x_lo + 1)
    n = ys.shape[0]
    fixed = scratch("sf_fixed", (2, n), numpy.int32)
    numpy.copyto(fixed[0], ys, casting="unsafe")  # non-negative here, so truncation is floor
    numpy.copyto(fixed[1], xs, casting="unsafe")
    edge = 1.0 / ONE  # within this of the last pixel, the rounded position may land on it
    if xmax < src_width - 1 - edge and ymax < src_height - 1 - edge:
        frac = scratch("sf_frac", (2, n), numpy.uint16)
        numpy.bitwise_and(fixed, ONE - 1, out=frac, casting="unsafe")
        fixed >>= 8
    else:
        frac = scratch("sf_frac_wide", (2, n), numpy.int32)
        numpy.copyto(frac, fixed)
        fixed >>= 8
        numpy.minimum(fixed[0], max(src_height - 2, 0), out=fixed[0])
        numpy.minimum(fixed[1], max(src_width - 2, 0), out=fixed[1])
        frac -= fixed << 8
    fixed_weights(frac[0], frac[1], weights)
    cols = box[3]
    index = fixed[0]
    index *= cols
    index += fixed[1]
    index -= y_lo * cols + x_lo
    numpy.copyto(flat, index)
    return flat, weights, box


def direct_map(height, width, flip, degrees, lens, top, left, factor, src_height, src_width, fac=None):
    """(flat, weights, box) of a map computed for one use, in scratch buffers (see split_fixed)."""
    ys, xs = scratch("dm_ys", (height, width), numpy.float32), scratch("dm_xs", (height, width), numpy.float32)
    bounds = fill_coords(ys, xs, flip, degrees, lens, top, left, factor, unit=float(ONE), offset=0.5, fac=fac)
    n = height * width
    flat = scratch("dm_flat", (n,), numpy.intp)
    weights = scratch("dm_weights", (4, n), numpy.uint16)
    return split_fixed(ys.reshape(n), xs.reshape(n), bounds, src_height, src_width, flat, weights)


class WarpMap:
    """A fused geometric map for a height x width output: integer corners and bilinear weights in the
    crop's own frame (cached), and the parameters to recompute it at another scale or with clamping."""

    def __init__(self, height, width, flip=False, degrees=0, lens=IDENTITY_LENS, tabulate=True, fac=None):
        self.height, self.width = int(height), int(width)
        self.flip, self.degrees, self.lens = bool(flip), degrees, tuple(float(v) for v in lens)
        self.tabulated = bool(tabulate)
        self.fac = fac
        self.nbytes = 0
        if not self.tabulated:  # used once: every call computes the map directly in scratch memory
            return
        n = self.height * self.width
        ys = numpy.empty(n, numpy.float32)
        xs = numpy.empty(n, numpy.float32)
        fill_coords(ys.reshape(self.height, self.width), xs.reshape(self.height, self.width), self.flip, degrees,
                    self.lens, unit=float(ONE), offset=0.5)
        numpy.floor(ys, out=ys)  # may be negative in the crop's own frame: floor, not truncation
        numpy.floor(xs, out=xs)
        fixed = numpy.empty((2, n), numpy.int32)
        numpy.copyto(fixed[0], ys, casting="unsafe")
        numpy.copyto(fixed[1], xs, casting="unsafe")
        frac = (fixed & (ONE - 1)).astype(numpy.uint16)
        corner = fixed >> 8
        self.weights = fixed_weights(frac[0], frac[1], numpy.empty((4, n), numpy.uint16))
        iy, ix = corner
        self.bounds = (int(iy.min()), int(iy.max()), int(ix.min()), int(ix.max()))
        ymin, _, xmin, xmax = self.bounds
        self.cols = xmax - xmin + 1
        self.flat = ((iy - ymin) * self.cols + (ix - xmin)).astype(numpy.intp)
        self.nbytes = self.flat.nbytes + self.weights.nbytes

    @classmethod
    def build(cls, height, width, flip=False, degrees=0, lens=IDENTITY_LENS, tabulate=True, fac=None):
        """The map of a mirror (``flip``), a rotation by ``degrees`` and a lens distortion (kb, kp, sx, sy);
        ``tabulate`` precomputes the corners and weights for reuse (worth it only when cached); ``fac``
        is the lens' radial_factor if the caller keeps it."""
        return cls(height, width, flip, degrees, lens, tabulate, fac)

    def source_index(self, top, left, src_height, src_width):
        """(flat, box) locating each output pixel's top-left source corner when the crop sits at
        (top, left) of an image used at its own size (see bilinear_fixed), or None when some read
        would leave the image (then the map is recomputed with clamping)."""
        ymin, ymax, xmin, xmax = self.bounds
        if top + ymin < 0 or top + ymax + 1 > src_height - 1 or left + xmin < 0 or left + xmax + 1 > src_width - 1:
            return None
        return self.flat, (top + ymin, left + xmin, ymax - ymin + 2, self.cols)

    def source_map(self, top, left, factor, src_height, src_width):
        """(flat, weights, box) for the crop at (top, left) of the source resized by 1 / ``factor``."""
        if factor == 1.0 and self.tabulated:
            found = self.source_index(top, left, src_height, src_width)
            if found is not None:
                return found[0], self.weights, found[1]
        return direct_map(self.height, self.width, self.flip, self.degrees, self.lens, top, left, factor,
                          src_height, src_width, self.fac)

    def resample(self, image, dst, top=0, left=0, factor=1.0, shifts=None, mask=None):
        """Write the warped crop at (top, left) of ``image`` (rescaled by 1/``factor``) into ``dst``
        (uint8, height x width x C), adding per-channel ``shifts`` then multiplying by the fixed-point
        ``mask`` (see bilinear.finish_planar)."""
        flat, weights, box = self.source_map(top, left, factor, image.shape[0], image.shape[1])
        finish_planar(bilinear_fixed(image, flat, weights, box), dst, shifts, mask)
        return dst

    def apply(self, image):
        """The warped image (uint8), reading ``image`` at its own size with the map centred on it."""
        image = numpy.asarray(image)
        if image.dtype != numpy.uint8 or image.ndim != 3:
            raise ValueError(f"expected a uint8 HxWxC image, got {image.dtype} {image.shape}")
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"the map is {self.height}x{self.width} but the image is {image.shape[:2]}")
        dst = numpy.empty((self.height, self.width, image.shape[2]), dtype=numpy.uint8)
        return self.resample(image, dst)
