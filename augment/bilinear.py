"""Bilinear gathering and the photometric finish in 8-bit fixed point, vectorised for numpy.

``bilinear_fixed`` reads the 2x2 neighbourhood of every output pixel with two gathers.
The part of the source the map touches (a box) is first copied into an aligned array of
words that each hold two horizontally adjacent pixels (6 bytes of a uint64 for RGB), so
one gather fetches a top pair and one the bottom pair (numpy gathers quickly only from
aligned, contiguous arrays). The bytes are widened to uint16 planes (channel-major) and
weighted with integer weights that sum to 256 (1/256-pixel positions): a product is at
most 255 * 256, so the sum of four fits uint16 exactly, and integer vector arithmetic runs
several times faster than float32 here. The finish adds the colour cast, applies the
vignette mask (also in 1/256 steps), rounds and stores uint8 HWC. All temporaries live in
per-thread scratch buffers (see _workspace).
"""
import numpy

from ._workspace import scratch
from .opencv import opencv

#: fixed-point one: weights and masks are integers in [0, ONE]
ONE = 256
_HALF = ONE // 2
_PAIR_WORD = {1: numpy.uint16, 2: numpy.uint32, 3: numpy.uint64, 4: numpy.uint64}


def bilinear_fixed(image, flat, weights, box=None):
    """Interpolated values, shape (C, n) uint16 in [0, 255], of a uint8 H x W x C ``image``.

    ``box`` = (y_lo, x_lo, rows, cols) is the region holding every top-left corner (y0, x0)
    and the row below (default: the whole image); ``flat`` (n,) is (y0 - y_lo) * cols + (x0 - x_lo),
    with x0 <= W - 2 and y0 <= H - 2 unless the image is one pixel wide/high. ``weights`` is
    (4, n) uint16 summing to ONE: top-left, top-right, bottom-left, bottom-right. The result is a
    scratch buffer, valid until the next call on this thread.
    """
    height, width, channels = image.shape
    if box is None:
        box = (0, 0, height, width)
    n = flat.shape[0]
    index = scratch("bl_index", (2, n), numpy.intp)  # top pairs, then the pairs one row below
    numpy.copyto(index[0], flat)
    numpy.add(flat, box[3], out=index[1])
    word = _PAIR_WORD.get(channels)
    if word is None:
        region = numpy.ascontiguousarray(image[box[0]:box[0] + box[2], box[1]:box[1] + box[3] + 1])
        planes = _gather_rows(region, box[3], index)
    else:
        planes = _gather_pairs(_pair_words(image, box, word), index, channels)
    corners = planes.reshape(4, channels, n)  # top-left, top-right, bottom-left, bottom-right
    products = scratch("bl_products", (4, channels, n), numpy.uint16)
    numpy.multiply(corners, weights.reshape(4, 1, n), out=products)
    acc = scratch("bl_acc", (channels, n), numpy.uint16)
    numpy.add(products[0], products[1], out=acc)  # the sum is at most 255 * 256: fits
    acc += products[2]
    acc += products[3]
    acc += _HALF
    acc >>= 8
    return acc


def _pair_words(image, box, word):
    """Aligned (rows * cols,) array: word k holds the pixel at box position k and its right neighbour."""
    width, channels = image.shape[1:]
    y_lo, x_lo, rows, cols = box
    image = numpy.ascontiguousarray(image)
    data = image.reshape(-1)
    size = numpy.dtype(word).itemsize
    pairs = scratch("bl_pairs", (rows, cols), word)
    row_bytes = width * channels
    start = (y_lo * width + x_lo) * channels
    # a word reads ``size`` bytes from its pixel: only the very end of the image can run past the data
    last = start + (rows - 1) * row_bytes + (cols - 1) * channels + size
    safe = rows if last <= data.size else rows - 1
    if safe > 0:
        view = numpy.ndarray((safe, cols), dtype=word, buffer=data, offset=start, strides=(row_bytes, channels))
        numpy.copyto(pairs[:safe], view)
    if safe < rows:
        tail = scratch("bl_tail", ((cols + 1) * channels + size,), numpy.uint8)
        begin = start + (rows - 1) * row_bytes
        piece = data[begin:begin + (cols + 1) * channels]  # the pixels and the right neighbour of the last
        tail[:piece.size] = piece
        tail[piece.size:] = 0
        pairs[rows - 1] = numpy.ndarray((cols,), dtype=word, buffer=tail, strides=(channels,))
    return pairs.reshape(-1)


def _gather_pairs(pairs, index, channels):
    """(2, 2C, n) uint16 planes of the pairs at ``index`` (2, n): for the top and the bottom row, the C
    channels of the left pixel of each pair, then the right pixel's.

    The 2C bytes of a pair are read as C little-endian uint16 lanes, moved to lane-major order (a
    transposed copy of C lanes is much cheaper than one of 2C bytes), and split: the low bytes are
    planes 0, 2, 4, ... and the high bytes planes 1, 3, 5, ..., which is exactly the pixel order."""
    n = index.shape[1]
    words = scratch("gp_words", (2, n), pairs.dtype)
    pairs.take(index, out=words, mode="wrap")  # every index is valid; "wrap" is the cheapest checked mode
    lanes = scratch("gp_lanes", (2, channels, n), numpy.uint16)
    numpy.copyto(lanes, words.view("<u2").reshape(2, n, pairs.dtype.itemsize // 2)[:, :, :channels]
                 .transpose(0, 2, 1))
    planes = scratch("gp_planes", (2, 2 * channels, n), numpy.uint16)
    numpy.bitwise_and(lanes, 0xFF, out=planes[:, 0::2])
    numpy.right_shift(lanes, 8, out=planes[:, 1::2])
    return planes


def _gather_rows(region, cols, index):
    """Generic path for more than 4 channels: like _gather_pairs, from the pixel rows of a box region."""
    channels = region.shape[2]
    rows = region.reshape(-1, channels)
    at = index // cols * region.shape[1] + index % cols  # the region may be one column wider than the box
    planes = scratch("gr_planes", (2, 2 * channels, index.shape[1]), numpy.uint16)
    for row in range(2):
        numpy.copyto(planes[row, :channels], rows.take(at[row], axis=0, mode="clip").T)
        numpy.copyto(planes[row, channels:], rows.take(at[row] + 1, axis=0, mode="clip").T)
    return planes


def fixed_weights(fy, fx, out):
    """The four bilinear weights (uint16 (4, n), summing to ONE) of fractions fy, fx in [0, ONE].

    w11 = round(fx * fy / ONE), w01 = fx - w11, w10 = fy - w11 and w00 = ONE - fx - fy + w11, which
    is (ONE - fx)(ONE - fy) / ONE rounded the same way, so never negative. With uint16 fractions
    (all below ONE) everything runs in uint16, where ONE - fx - fy may wrap around harmlessly (the
    arithmetic is modulo 2^16); int32 fractions may reach ONE (a corner pulled back from the last
    row or column) and are worked out in int32."""
    if fx.dtype == numpy.uint16:
        w = out
    else:
        w = scratch("fw_wide", out.shape, numpy.int32)
    numpy.multiply(fx, fy, out=w[3])
    w[3] += _HALF
    w[3] >>= 8
    numpy.subtract(fx, w[3], out=w[1])
    numpy.subtract(fy, w[3], out=w[2])
    numpy.add(fx, fy, out=w[0])
    numpy.subtract(w[3], w[0], out=w[0])
    w[0] += ONE
    if w is not out:
        numpy.copyto(out, w, casting="unsafe")
    return out


def to_fixed_mask(mask, out):
    """A float mask in [0, 1] as uint16 in [0, ONE] (rounded)."""
    tmp = scratch("tfm", mask.shape, numpy.float32)
    numpy.multiply(mask, float(ONE), out=tmp)
    tmp += 0.5
    numpy.copyto(out, tmp, casting="unsafe")
    return out


def finish_planar(acc, dst, shifts=None, mask=None):
    """Store planar values ``acc`` (C, n) uint16 into ``dst`` (uint8, h x w x C, n = h * w): add the
    per-channel ``shifts`` and clip to [0, 255], multiply by the fixed-point ``mask`` (n,), round."""
    channels = acc.shape[0]
    if shifts is not None:
        signed = acc.view(numpy.int16)  # values are <= 255, so the same bits
        signed += numpy.asarray(shifts, dtype=numpy.int16).reshape(channels, 1)
        numpy.clip(signed, 0, 255, out=signed)
    if mask is not None:
        acc *= mask.reshape(1, -1)
        acc += _HALF
        acc >>= 8
    out = dst.reshape(-1, channels)
    for c in range(channels):  # one long strided copy per channel beats a transposed 2-D copy
        numpy.copyto(out[:, c], acc[c], casting="unsafe")
    return dst


def finish_interleaved(src, dst, shifts=None, mask=None):
    """Store a uint8 h x w x C view ``src`` into ``dst`` with the photometric finish; ``mask`` is the
    fixed-point vignette repeated per channel, h x (w * C) (Pipeline.mask with ``channels``), or None."""
    height, width, channels = src.shape
    if shifts is None and mask is None:
        _copy_pixels(dst, src)
        return dst
    acc = scratch("fi_acc", (height, width * channels), numpy.uint16)
    _copy_pixels(acc.reshape(height, width, channels), src)
    if shifts is not None:
        signed = acc.view(numpy.int16)
        signed += numpy.tile(numpy.asarray(shifts, dtype=numpy.int16), width)
        numpy.clip(signed, 0, 255, out=signed)
    if mask is not None:
        acc *= mask
        acc += _HALF
        acc >>= 8
    numpy.copyto(dst.reshape(height, width * channels), acc, casting="unsafe")
    return dst


def _copy_pixels(dst, src):
    """dst[...] = src for h x w x C arrays.

    A mirrored view (negative pixel stride) is the slow case for numpy, whose copy then
    moves 3 bytes per inner loop (about 280 us for a 224 x 224 RGB crop): OpenCV's flip,
    when installed (see opencv), mirrors in about 7 us; otherwise it is copied one channel at a time.
    The crop is first copied as it is (numpy's fast strided copy from the big source) and then
    mirrored in place, in cache: 20-30% faster than OpenCV reading the source itself.
    """
    if src.strides[1] >= 0:
        numpy.copyto(dst, src)
        return
    cv2 = opencv() if src.dtype == numpy.uint8 and src.shape[2] <= 4 else None
    if cv2 is None:
        for c in range(src.shape[2]):
            numpy.copyto(dst[:, :, c], src[:, :, c])
        return
    target = dst if dst.dtype == numpy.uint8 and dst.flags.c_contiguous else scratch("mirror", src.shape, numpy.uint8)
    numpy.copyto(target, src[:, ::-1])
    cv2.flip(target, 1, dst=target)  # in place: OpenCV's horizontal flip swaps pixel pairs
    if target is not dst:
        numpy.copyto(dst, target)
