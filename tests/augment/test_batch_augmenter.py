"""The batched xp path agrees with the per-image CPU path (tested on numpy; on cupy where there is a GPU)."""
import numpy
import pytest

from minwa.augment import PAPER, BatchAugmenter, build_transform
from minwa.errors import DataError

BLOCK = dict(PAPER, crop=40, scales=[48, 64], flip={"p": 0.5}, rotation={"p": 0.7}, lens_distortion={"p": 0.7},
             color_cast={"p": 0.7}, vignette={"p": 0.7})


def _batch(count=12, size=(60, 72)):
    return numpy.random.default_rng(4).integers(0, 256, size=(count,) + size + (3,), dtype=numpy.uint8)


def _compare(xp_images, to_host):
    images = _batch()
    indices = numpy.arange(100, 112)
    cpu = build_transform(BLOCK, seed=3, train=True)(list(images), indices, 2)
    batched = to_host(BatchAugmenter(BLOCK, seed=3, train=True)(xp_images(images), indices, 2))
    assert batched.shape == cpu.shape and batched.dtype == numpy.uint8
    diff = numpy.abs(batched.astype(int) - cpu)
    # the CPU path works in 1/256 fixed point, the batched one in float32: a level or two apart at most
    assert diff.max() <= 2
    assert (diff > 1).mean() < 0.002
    assert diff.mean() < 0.3


def test_numpy_batch_matches_cpu_pipeline():
    _compare(lambda a: a, lambda a: a)


def test_evaluation_batch_is_the_centre_crop():
    images = _batch(3, (48, 48))
    out = BatchAugmenter(BLOCK, seed=0, train=False)(images, numpy.arange(3), 0)
    assert (out == images[:, 4:44, 4:44]).all()


def test_bad_batches():
    with pytest.raises(DataError, match="uint8 NHWC"):
        BatchAugmenter(BLOCK)(numpy.zeros((2, 8, 8, 3), numpy.float32), [0, 1], 0)
    with pytest.raises(DataError, match="2 images but 3 indices"):
        BatchAugmenter(BLOCK)(numpy.zeros((2, 48, 48, 3), numpy.uint8), [0, 1, 2], 0)


@pytest.mark.gpu
def test_cupy_batch_matches_cpu_pipeline():
    cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        count = 0
    if count < 1:
        pytest.skip("no CUDA device")
    _compare(cupy.asarray, cupy.asnumpy)
