"""RemapTable: OpenCV's remap as the bilinear pass of a fused warp map (see opencv for when).

``cv2.remap`` does the 2x2 gather and weighting in SIMD C++, about twice as fast per
224 x 224 crop as the numpy fixed-point pass of ``bilinear``. Both read the same
coordinates but round them differently: OpenCV keeps positions on a 1/32-pixel grid, the
numpy pass on 1/256, so a pixel may differ by a grey level (on noise, rarely two) between
a machine with OpenCV and one without (tests/augment/test_opencv_remap.py holds the
bound); ``MINWA_AUGMENT_OPENCV=0`` gives pictures that are bit-identical everywhere.
"""
import math

import numpy

from .warp_map import affine_terms, fill_coords


class RemapTable:
    """A fused map in the crop's own frame as OpenCV fixed-point maps: for every output pixel the source
    position relative to the box of source pixels it reads, so one table serves every crop offset."""

    def __init__(self, cv2, size, flip=False, degrees=0, lens=(0.0, 0.0, 1.0, 1.0), fac=None):
        self.size = int(size)
        xs = numpy.empty((self.size, self.size), numpy.float32)
        ys = numpy.empty((self.size, self.size), numpy.float32)
        ymin, ymax, xmin, xmax = fill_coords(ys, xs, flip, degrees, lens, fac=fac)
        self.y_lo, self.x_lo = math.floor(ymin), math.floor(xmin)
        self.rows, self.cols = math.floor(ymax) + 2 - self.y_lo, math.floor(xmax) + 2 - self.x_lo
        xs -= self.x_lo
        ys -= self.y_lo
        # OpenCV's own fixed-point form (whole pixels + a 1/32-pixel fraction index): a third faster
        # to remap with than float maps, and 3/4 of their size
        self.whole, self.fraction = cv2.convertMaps(xs, ys, cv2.CV_16SC2)
        self.nbytes = self.whole.nbytes + self.fraction.nbytes

    def box(self, top, left, height, width):
        """(y, x) of the box's corner for a crop at (top, left) of a height x width source, or None when
        the box would leave the source (that crop then needs clamped coordinates, see remap_direct)."""
        y, x = top + self.y_lo, left + self.x_lo
        if y < 0 or x < 0 or y + self.rows > height or x + self.cols > width:
            return None
        return y, x

    def remap(self, cv2, image, dst, top, left):
        """Write the warped crop at (top, left) of ``image`` into ``dst``; False when it would read
        outside the image."""
        corner = self.box(top, left, image.shape[0], image.shape[1])
        if corner is None:
            return False
        y, x = corner
        _remap(cv2, image[y:y + self.rows, x:x + self.cols], self.whole, self.fraction, dst)
        return True


def warp_affine(cv2, image, dst, flip, degrees, lens, top, left, factor):
    """A warp without radial distortion, by ``cv2.warpAffine``: no map in memory at all (a cached
    table of 224 x 224 is 300 KB read per image; the affine kernel computes positions as it goes)."""
    size = dst.shape[0]
    ax, bx, ox, ay, by, oy = affine_terms(size, size, flip, degrees, lens, top, left, factor)
    centre = (size - 1) / 2.0
    matrix = numpy.array([[ax, bx, ox - (ax + bx) * centre], [ay, by, oy - (ay + by) * centre]])
    grey = image.shape[2] == 1
    out = cv2.warpAffine(image[:, :, 0] if grey else image, matrix, (size, size), dst=dst[:, :, 0] if grey else dst,
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    _check_written(out, dst)


def remap_direct(cv2, image, dst, flip, degrees, lens, top, left, factor, fac=None):
    """The warp computed for this one crop (any scale factor), border pixels repeated outside the image."""
    size = dst.shape[0]
    xs = numpy.empty((size, size), numpy.float32)
    ys = numpy.empty((size, size), numpy.float32)
    fill_coords(ys, xs, flip, degrees, lens, top, left, factor, fac=fac)
    _remap(cv2, image, xs, ys, dst)


def _remap(cv2, image, map1, map2, dst):
    grey = image.shape[2] == 1
    out = cv2.remap(image[:, :, 0] if grey else image, map1, map2, cv2.INTER_LINEAR,
                    dst=dst[:, :, 0] if grey else dst, borderMode=cv2.BORDER_REPLICATE)
    _check_written(out, dst)


def _check_written(out, dst):
    if out.__array_interface__["data"][0] != dst.__array_interface__["data"][0]:
        dst[...] = out.reshape(dst.shape)  # OpenCV declined the destination (e.g. a view): copy
