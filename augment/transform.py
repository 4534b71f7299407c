"""Transform: the loader hook, ``transform(images, indices, epoch) -> uint8 NHWC``.

Training draws every sample's parameters from (seed, epoch, sample index), so a batch
gives the same pictures whether it is processed at once, split across workers or
ranks, or in another order. Evaluation resizes the shorter side to ``test_scale`` and
takes the centre crop.
"""
import numpy

from minwa.errors import DataError

from .augment_config import AugmentConfig
from .pipeline import Pipeline, as_hwc
from .sample_params import sample_uniforms_batch


class Transform:
    """Callable applying a Pipeline to a batch of uint8 HWC images of any sizes."""

    def __init__(self, config, seed=0, train=True):
        self.pipeline = config if isinstance(config, Pipeline) else Pipeline(AugmentConfig(config))
        self.seed = int(seed)
        self.train = bool(train)
        if self.seed < 0:
            raise ValueError(f"augment seed must be >= 0, got {seed}")

    @property
    def size(self):
        return self.pipeline.size

    def batch_params(self, shapes, indices, epoch):
        """The SampleParams of each sample ``indices[k]`` (image shape ``shapes[k]``), drawn for the batch at once."""
        if not self.train:
            return [self.pipeline.centre(*shape[:2]) for shape in shapes]
        uniforms = sample_uniforms_batch(self.seed, epoch, indices).tolist()  # Python floats: 1 us less a sample
        return [self.pipeline.draw(u, *shape[:2]) for u, shape in zip(uniforms, shapes)]

    def __call__(self, images, indices, epoch=0, out=None):
        """uint8 N x size x size x C; written into ``out`` when it is a C-contiguous array of that
        shape (a loader reusing one buffer skips the page faults of a fresh batch)."""
        indices = numpy.asarray(indices).reshape(-1)
        if len(images) != len(indices):
            raise DataError(f"augment: {len(images)} images but {len(indices)} indices")
        size = self.pipeline.size
        if len(images) == 0:
            return numpy.zeros((0, size, size, 3), dtype=numpy.uint8)
        images = [as_hwc(image, f"augment: sample {int(index)}") for image, index in zip(images, indices)]
        shape = (len(images), size, size, images[0].shape[2])
        if out is None or out.shape != shape or out.dtype != numpy.uint8 or not out.flags.c_contiguous:
            out = numpy.empty(shape, dtype=numpy.uint8)
        params = self.batch_params([image.shape for image in images], indices, epoch)
        for i, (image, index) in enumerate(zip(images, indices)):
            where = f"augment: sample {int(index)}"
            if image.shape[2] != shape[3]:
                raise DataError(f"{where}: {image.shape[2]} channel(s) where the batch has {shape[3]}")
            self.pipeline.apply(image, params[i], out[i], where)
        return out


def build_transform(aug_cfg, seed=0, train=True):
    """The loader hook for an ``augment:`` block: callable(images, indices, epoch) -> uint8 NHWC.

    ``train=True`` applies the configured random pipeline; ``train=False`` the deterministic
    evaluation view (shorter side to ``test_scale``, centre crop). Raises ConfigError for a bad block.
    """
    return Transform(aug_cfg, seed=seed, train=train)
