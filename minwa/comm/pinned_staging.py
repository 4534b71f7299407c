"""PinnedStaging: reusable page-locked host buffers for device arrays crossing a non-CUDA-aware MPI.

When MPI can read GPU memory the arrays go to it directly and this class is not
used. Otherwise every transfer of a cupy array is staged: copied into a pinned host
buffer before sending, and received into one and copied back after. Buffers are
pooled by capacity (powers of two) and handed back after each transfer, so a
training loop allocates pinned memory only in its first steps.
"""
import threading

import numpy

from .. import backend


def _pinned_bytes(nbytes):
    """A numpy uint8 array of ``nbytes`` in page-locked memory (cupy's pinned allocator)."""
    import cupy

    memory = cupy.cuda.alloc_pinned_memory(nbytes)
    return numpy.frombuffer(memory, dtype=numpy.uint8, count=nbytes)


class PinnedStaging:
    """A pool of host buffers; ``stage(array, incoming)`` -> (host view, finish callback)."""

    def __init__(self, allocate=_pinned_bytes):
        self._allocate = allocate
        self._free = {}
        self._lock = threading.Lock()
        self.allocated_bytes = 0

    def acquire(self, nbytes):
        """A host uint8 buffer of at least ``nbytes`` (from the pool when one is free)."""
        capacity = 1 << max(int(nbytes) - 1, 0).bit_length()
        with self._lock:
            free = self._free.get(capacity)
            if free:
                return free.pop()
        buffer = self._allocate(capacity)
        self.allocated_bytes += capacity
        return buffer

    def release(self, buffer):
        with self._lock:
            self._free.setdefault(buffer.size, []).append(buffer)

    def stage(self, array, incoming):
        """Host stand-in for the device ``array``; ``finish()`` copies back (if incoming) and frees it."""
        raw = self.acquire(array.nbytes)
        host = raw[:array.nbytes].view(array.dtype).reshape(array.shape)
        if backend.is_gpu_array(array):
            array.get(out=host)  # device -> pinned host, no temporary
        else:
            host[...] = array

        def finish():
            if incoming:
                if backend.is_gpu_array(array):
                    array.set(host)
                else:
                    array[...] = host
            self.release(raw)

        return host, finish
