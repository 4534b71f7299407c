"""Loader: turns a source into this rank's stream of float32 NCHW batches on the backend device.

Sharding.  ``batch_size`` is the GLOBAL batch.  Epoch ``e`` visits the samples in
one permutation drawn from ``(seed, e)`` (identity when ``shuffle`` is off), the
same on every rank.  Global batch ``b`` of an epoch is ``perm[b*B:(b+1)*B]``; rank
``k`` of ``N`` takes its k-th contiguous slice of ``B/N`` samples, so the samples a
step sees (and their order) do not depend on N.  ``B`` must be divisible by N.

Remainder rule.  With ``drop_last=True`` (training) the last partial global batch
of an epoch is dropped: ``steps_per_epoch = len // B`` and every batch is full.
With ``drop_last=False`` (evaluation) the last global batch is shorter: its
``m = len - b*B`` samples are split as ``[k*m//N, (k+1)*m//N)`` between ranks, so
every sample is seen exactly once over the ranks, and a rank's last batch may be
smaller (even empty when m < N).  Evaluation code should sum correct counts and
sample counts over ranks rather than average per-batch accuracies.

Steps.  ``batches(start_step)`` is an endless generator over steps across epochs
(step s is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``); it can
start at any step without reading the skipped data, so a resumed run sees exactly
what an uninterrupted one would.  ``epoch(e)`` yields the batches of one epoch.

Per batch: read (``on_error`` policy), ``transform(images, indices, epoch)`` (the
augmentation hook; uint8 NHWC out) or a centre ``crop``, then
``(x - mean) * scale`` as float32 NCHW, with int64 labels, both on the device.
Reading and transforming run in a background thread ``prefetch`` batches ahead.
"""
import inspect
import threading

import numpy

from minwa import backend
from minwa.errors import ConfigError, DataError, ShapeError

from .mean_image import MeanImage
from .prefetcher import Prefetcher
from .sample_reader import SampleReader


class Loader:
    """This rank's batches of ``source``; see the module docstring for the sharding and remainder rules."""

    def __init__(self, source, batch_size, rank=0, size=1, seed=0, shuffle=True, transform=None, mean=None,
                 scale=1.0, drop_last=True, prefetch=2, on_error="fail", crop=None, mean_samples=50000,
                 mean_cache=None, mean_source=None):
        batch_size, rank, size = int(batch_size), int(rank), int(size)
        if batch_size <= 0:
            raise ConfigError(f"data.batch_size: must be > 0, got {batch_size}")
        if size <= 0 or not 0 <= rank < size:
            raise ConfigError(f"loader: rank {rank} is not in a job of {size} ranks")
        if batch_size % size:
            raise ConfigError(f"data.batch_size {batch_size} (global) is not divisible by the {size} ranks; "
                              f"use a multiple of {size}")
        if len(source) == 0:
            raise DataError(f"{source.name}: holds no samples")
        if drop_last and len(source) < batch_size:
            raise ConfigError(f"data.batch_size {batch_size} is larger than the {len(source)} samples of "
                              f"{source.name}; lower it or set drop_last off")
        self.source = source
        self.batch_size = batch_size
        self.local_batch_size = batch_size // size
        self.rank, self.size, self.seed = rank, size, int(seed)
        self.shuffle = bool(shuffle)
        self.transform = transform
        # a transform taking ``out`` refills one batch buffer per thread (images are copied out at once)
        self._reuse_out = transform is not None and _takes_out(transform)
        self._buffers = threading.local()
        self.scale = float(scale)
        self.drop_last = bool(drop_last)
        self.prefetch = int(prefetch)
        self.crop = None if crop in (None, 0) else int(crop)
        self.reader = SampleReader(source, on_error)
        self.mean = self._resolve_mean(mean, mean_source, mean_samples, mean_cache, on_error)
        self._mean_cache = {}
        self._device_mean = {}
        self._input_shape = None

    # -- geometry ----------------------------------------------------------------
    def __len__(self):
        return self.steps_per_epoch

    @property
    def steps_per_epoch(self):
        count = len(self.source)
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    @property
    def num_classes(self):
        return len(self.source.classes)

    @property
    def classes(self):
        return self.source.classes

    @property
    def skipped(self):
        """How many times an unreadable sample was replaced (``on_error: skip``)."""
        return self.reader.skipped

    @property
    def input_shape(self):
        """(C, H, W) of the batches this loader yields (after the transform or crop)."""
        if self._input_shape is None:
            images, _ = self._images(numpy.zeros(1, dtype=numpy.int64), 0)
            self._input_shape = (images.shape[3], images.shape[1], images.shape[2])
        return self._input_shape

    def permutation(self, epoch):
        """The order of epoch ``epoch``, shared by all ranks."""
        if not self.shuffle:
            return numpy.arange(len(self.source), dtype=numpy.int64)
        return numpy.random.default_rng([self.seed, int(epoch)]).permutation(len(self.source))

    def global_indices(self, step):
        """Sample indices of global batch ``step`` (all ranks together)."""
        epoch, batch = divmod(int(step), self.steps_per_epoch)
        lo = batch * self.batch_size
        return self.permutation(epoch)[lo:lo + self.batch_size]

    def indices(self, step, rank=None):
        """Sample indices this rank (or ``rank``) reads at ``step``."""
        rank = self.rank if rank is None else int(rank)
        chosen = self.global_indices(step)
        count = len(chosen)
        return chosen[rank * count // self.size:(rank + 1) * count // self.size]

    # -- iteration ---------------------------------------------------------------
    def batches(self, start_step=0, stop_step=None):
        """Yield (x, y) on the device for steps start_step, start_step+1, ... (endless unless stop_step)."""
        if int(start_step) < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        steps = _count(int(start_step), stop_step)
        if self.prefetch <= 0:
            for step in steps:
                yield self._to_device(self.host_batch(step))
            return
        worker = Prefetcher(steps, self.host_batch, depth=self.prefetch, name=f"minwa-loader-{self.rank}")
        try:
            for host in worker:
                yield self._to_device(host)
        finally:
            worker.close()

    def epoch(self, epoch):
        """The batches of one epoch (for evaluation: with drop_last off it covers every sample once)."""
        start = int(epoch) * self.steps_per_epoch
        return self.batches(start, start + self.steps_per_epoch)

    def host_batch(self, step):
        """(x, y) of ``step`` on the host: uint8 NCHW (GPU) or normalised float32 NCHW (CPU), int64 labels."""
        epoch = int(step) // self.steps_per_epoch
        indices = self.indices(step)
        images, labels = self._images(indices, epoch)
        nchw = numpy.array(images.transpose(0, 3, 1, 2), order="C")  # a copy: ``images`` may be a reused buffer
        if backend.device_kind() == "gpu":
            return nchw, labels  # converted on the device: 4x fewer bytes to copy
        return self._normalise(nchw, numpy), labels

    def _images(self, indices, epoch):
        if len(indices) == 0:
            c, h, w = self.input_shape
            return numpy.zeros((0, h, w, c), dtype=numpy.uint8), numpy.zeros(0, dtype=numpy.int64)
        images, labels = self.reader.read(indices)
        labels = numpy.asarray(labels, dtype=numpy.int64)
        if self.transform is not None:
            if self._reuse_out:
                images = self.transform(list(images), numpy.asarray(indices), int(epoch),
                                        out=getattr(self._buffers, "images", None))
                self._buffers.images = images
            else:
                images = self.transform(list(images), numpy.asarray(indices), int(epoch))
            images = numpy.asarray(images)
            if images.dtype != numpy.uint8 or images.ndim != 4 or images.shape[0] != len(indices):
                raise ShapeError(f"data transform returned {images.dtype} {images.shape}; expected uint8 NHWC "
                                 f"with {len(indices)} images")
            return images, labels
        if self.crop:
            images = [_centre_crop(image, self.crop, self.source.where(int(i))) for image, i in zip(images, indices)]
        if isinstance(images, numpy.ndarray):
            return images, labels
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise DataError(f"{self.source.name}: images of different sizes {sorted(shapes)[:3]} in one batch; "
                            "set data.crop, data.resize with data.crop, or an augment block")
        return numpy.stack(images), labels

    def _normalise(self, nchw, xp):
        x = nchw.astype(xp.float32)
        if self.mean is not None:
            x -= self._fitted_mean(tuple(nchw.shape[1:]), xp)
        if self.scale != 1.0:
            x *= xp.float32(self.scale)
        return x

    def _fitted_mean(self, chw, xp):
        if chw not in self._mean_cache:
            self._mean_cache[chw] = self.mean.fitted(chw)
        if xp is numpy:
            return self._mean_cache[chw]
        if chw not in self._device_mean:
            self._device_mean[chw] = backend.to_device(self._mean_cache[chw])
        return self._device_mean[chw]

    def _to_device(self, host):
        x, y = host
        if x.dtype == numpy.uint8:
            device = backend.to_device(x)
            return self._normalise(device, backend.xp_of(device)), backend.to_device(y)
        return backend.to_device(x), backend.to_device(y)

    def _resolve_mean(self, mean, mean_source, samples, cache, on_error):
        if mean is None or isinstance(mean, str) and mean.lower() in ("none", ""):
            return None
        if isinstance(mean, MeanImage):
            return mean
        if isinstance(mean, numpy.ndarray):
            values = mean.reshape(-1, 1, 1) if mean.ndim == 1 else mean
            return MeanImage(values, "channel" if values.shape[1:] == (1, 1) else "image")
        if isinstance(mean, str) and mean.lower() in ("image", "channel"):
            source = mean_source if mean_source is not None else self.source
            reader = SampleReader(source, on_error)
            return MeanImage.of(reader, mean.lower(), samples=samples, cache=cache)
        return MeanImage.from_setting(mean)

    def __repr__(self):
        return (f"Loader({self.source.name}, batch {self.batch_size} = {self.size} x {self.local_batch_size}, "
                f"rank {self.rank}, {self.steps_per_epoch} steps/epoch)")


def _takes_out(transform):
    """Whether ``transform`` accepts an ``out`` keyword (the augment Transform does)."""
    try:
        return "out" in inspect.signature(transform).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


def _count(start, stop):
    step = start
    while stop is None or step < stop:
        yield step
        step += 1


def _centre_crop(image, size, where):
    h, w = image.shape[:2]
    if h < size or w < size:
        raise DataError(f"{where}: image {h}x{w} is smaller than data.crop {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]
