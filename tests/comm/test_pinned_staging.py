"""PinnedStaging: the buffer pool reuses memory, and staging copies in and back out."""
import numpy
import pytest

from minwa.comm.pinned_staging import PinnedStaging


def _counting_allocator(log):
    def allocate(nbytes):
        log.append(nbytes)
        return numpy.empty(nbytes, dtype=numpy.uint8)

    return allocate


def test_pool_rounds_up_and_reuses_released_buffers():
    log = []
    staging = PinnedStaging(allocate=_counting_allocator(log))
    a = staging.acquire(100)
    assert a.size == 128 and log == [128]
    staging.release(a)
    b = staging.acquire(120)
    assert b is a and log == [128]  # reused, nothing new allocated
    c = staging.acquire(120)
    assert c is not a and log == [128, 128]  # a is in use
    assert staging.allocated_bytes == 256


def test_stage_copies_out_and_back_in():
    staging = PinnedStaging(allocate=_counting_allocator([]))
    array = numpy.arange(12, dtype=numpy.float64).reshape(3, 4)
    host, finish = staging.stage(array, incoming=True)
    numpy.testing.assert_array_equal(host, array)
    host[...] = -1.0  # what a receive would write
    finish()
    numpy.testing.assert_array_equal(array, -1.0)
    again, finish_again = staging.stage(numpy.zeros(10), incoming=False)
    assert again.base is host.base or numpy.shares_memory(again, host)  # the released buffer came back
    finish_again()


@pytest.mark.gpu
def test_stage_a_cupy_array_through_pinned_memory():
    cupy = pytest.importorskip("cupy")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no CUDA device")
    staging = PinnedStaging()
    array = cupy.arange(10, dtype=cupy.float32)
    host, finish = staging.stage(array, incoming=True)
    numpy.testing.assert_array_equal(host, numpy.arange(10))
    host[...] = 7
    finish()
    numpy.testing.assert_array_equal(array.get(), 7)
