"""ShapesSource: a built-in synthetic data set of procedurally drawn shapes in 10 classes.

Every image is a function of (seed, split, index) alone: the shape's class is
``index % 10`` (balanced), and its position, size, small rotation, foreground and
background colours and background noise come from a generator seeded by
``(seed, split, index)``.  Nothing is read from disk or network, any resolution
works, and a batch is drawn with vectorised numpy masks (2x2 supersampled edges),
so thousands of images take about a second.  Drawn images are kept in memory
(up to ``cache_mb``) so later epochs cost nothing.  Used by minwa's default job and
by tests that need real-looking, learnable data.
"""
import numpy

from minwa.errors import ConfigError

from .source import Source

CLASSES = ("circle", "square", "triangle", "cross", "ring", "horizontal_bar", "vertical_bar", "diamond", "plus",
           "ellipse")
_SPLITS = {"train": 0, "test": 1, "val": 2}
_MAX_TILT = numpy.deg2rad(15.0)


def _inside(label, u, v):
    """Boolean mask of shape ``label`` at normalised, rotated coordinates (u, v); |u|,|v| <~ 1."""
    au, av = numpy.abs(u), numpy.abs(v)
    if label == 0:  # circle
        return u * u + v * v <= 0.81
    if label == 1:  # square
        return numpy.maximum(au, av) <= 0.7
    if label == 2:  # equilateral triangle, inradius 0.475, pointing along -v
        inside = v <= 0.475
        for angle in (numpy.deg2rad(210.0), numpy.deg2rad(330.0)):
            inside &= numpy.cos(angle) * u + numpy.sin(angle) * v <= 0.475
        return inside
    if label == 3:  # diagonal cross: a plus turned by 45 degrees
        d1, d2 = numpy.abs(u + v) * 0.7071, numpy.abs(u - v) * 0.7071
        return (numpy.minimum(d1, d2) <= 0.2) & (numpy.maximum(d1, d2) <= 0.9)
    if label == 4:  # ring
        rr = u * u + v * v
        return (rr <= 0.9025) & (rr >= 0.25)
    if label == 5:  # horizontal bar
        return (au <= 0.95) & (av <= 0.27)
    if label == 6:  # vertical bar
        return (au <= 0.27) & (av <= 0.95)
    if label == 7:  # diamond
        return au + av <= 0.95
    if label == 8:  # plus
        return (numpy.minimum(au, av) <= 0.22) & (numpy.maximum(au, av) <= 0.95)
    if label == 9:  # ellipse (axis ratio ~0.5; its orientation is drawn per image)
        return (u / 0.95) ** 2 + (v / 0.5) ** 2 <= 1.0
    raise ValueError(f"no shape for label {label}")


class ShapesSource(Source):
    """``count`` images of ``image_size`` x ``image_size`` x 3 shapes, deterministic by (seed, split, index)."""

    classes = CLASSES

    def __init__(self, count=5000, image_size=32, seed=0, split="train", noise=(4.0, 20.0), supersample=2,
                 cache_mb=256):
        if int(count) <= 0:
            raise ConfigError(f"data.{split}_count (shapes): must be > 0, got {count}")
        if int(image_size) < 8:
            raise ConfigError(f"data.image_size (shapes): must be >= 8, got {image_size}")
        if split not in _SPLITS:
            raise ConfigError(f"shapes split {split!r}: expected one of {', '.join(_SPLITS)}")
        self.count = int(count)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.split = split
        self.noise = (float(noise[0]), float(noise[1]))
        self.supersample = max(1, int(supersample))
        self.name = f"shapes({split}, seed={self.seed}, {self.image_size}px, {self.count})"
        self._cache = None
        if self.count * self.image_size ** 2 * 3 <= cache_mb * 2 ** 20:
            self._cache = numpy.zeros((self.count, self.image_size, self.image_size, 3), dtype=numpy.uint8)
            self._cached = numpy.zeros(self.count, dtype=bool)

    def __len__(self):
        return self.count

    def labels(self):
        return numpy.arange(self.count, dtype=numpy.int64) % len(CLASSES)

    def get(self, index):
        images, labels = self.get_many([self.check_index(index)])
        return images[0], int(labels[0])

    def _params(self, index):
        """Per-image drawing parameters and noise from the (seed, split, index) generator."""
        rng = numpy.random.default_rng([self.seed, _SPLITS[self.split], int(index)])
        size = self.image_size
        radius = rng.uniform(0.22, 0.42) * size
        cx, cy = rng.uniform(radius, size - radius, size=2)
        tilt = rng.uniform(-_MAX_TILT, _MAX_TILT)
        if int(index) % len(CLASSES) == 9 and rng.random() < 0.5:
            tilt += numpy.pi / 2  # upright ellipses too
        background = rng.uniform(0.0, 255.0, size=3)
        foreground = numpy.mod(background + rng.uniform(70.0, 186.0, size=3), 256.0)
        sigma = rng.uniform(*self.noise)
        noise = rng.standard_normal((size, size, 3), dtype=numpy.float32) * numpy.float32(sigma)
        return (cx, cy, radius, tilt), background, foreground, noise

    def get_many(self, indices):
        indices = numpy.asarray(indices, dtype=numpy.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= self.count):
            bad = indices[(indices < 0) | (indices >= self.count)][0]
            raise IndexError(f"{self.name}: index {bad} out of range for {self.count} samples")
        if self._cache is None:
            return self._draw(indices)
        missing = numpy.unique(indices[~self._cached[indices]])
        if missing.size:
            self._cache[missing], _ = self._draw(missing)
            self._cached[missing] = True
        return self._cache[indices], indices % len(CLASSES)

    def _draw(self, indices):
        count, size, ss = len(indices), self.image_size, self.supersample
        labels = indices % len(CLASSES)
        geometry = numpy.empty((count, 4), dtype=numpy.float32)
        background = numpy.empty((count, 3), dtype=numpy.float32)
        foreground = numpy.empty((count, 3), dtype=numpy.float32)
        noise = numpy.empty((count, size, size, 3), dtype=numpy.float32)
        for k, index in enumerate(indices):
            geometry[k], background[k], foreground[k], noise[k] = self._params(index)
        # Sub-pixel sample positions: ss x ss per pixel, averaged into soft edges.
        offsets = ((numpy.arange(ss) + 0.5) / ss).astype(numpy.float32)
        axis = (numpy.arange(size, dtype=numpy.float32)[:, None] + offsets[None, :]).ravel()  # size*ss positions
        alpha = numpy.zeros((count, size, size), dtype=numpy.float32)
        for label in numpy.unique(labels):
            pick = numpy.flatnonzero(labels == label)
            cx, cy, radius, tilt = (geometry[pick, j][:, None, None] for j in range(4))
            dx = (axis[None, None, :] - cx) / radius
            dy = (axis[None, :, None] - cy) / radius
            cos, sin = numpy.cos(tilt), numpy.sin(tilt)
            u, v = cos * dx + sin * dy, cos * dy - sin * dx
            mask = _inside(int(label), u, v).reshape(len(pick), size, ss, size, ss)
            alpha[pick] = mask.sum(axis=(2, 4), dtype=numpy.float32) * numpy.float32(1.0 / (ss * ss))
        alpha = alpha[..., None]
        pixels = background[:, None, None, :] * (1.0 - alpha) + foreground[:, None, None, :] * alpha + noise
        images = numpy.clip(numpy.rint(pixels), 0, 255).astype(numpy.uint8)
        return images, labels
