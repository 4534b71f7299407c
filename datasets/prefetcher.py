"""Prefetcher: runs a producer in a background thread, a bounded queue ahead of the consumer.

The loader uses it so that reading, decoding and augmenting the next batches
overlaps the training step (image decoding in Pillow and numpy copies release the
GIL).  An exception raised by the producer is re-raised in the consumer — the
same exception object, with its original traceback — at the position where it
happened.  ``close()`` (also called when the consuming generator is closed)
stops the thread without leaving it blocked on a full queue.
"""
import queue
import threading

_DONE = object()


class _Failure:
    def __init__(self, exc):
        self.exc = exc


class Prefetcher:
    """Iterate ``produce(item)`` for each item of ``items`` with up to ``depth`` results computed ahead."""

    def __init__(self, items, produce, depth=2, name="minwa-prefetch"):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items), produce), name=name, daemon=True)
        self._thread.start()

    def _put(self, value):
        """Put unless asked to stop; polls so a full queue never blocks close()."""
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items, produce):
        from minwa import backend  # noqa: PLC0415

        try:
            backend.use_bound_device()  # CUDA's current device is per thread
            for item in items:
                if self._stop.is_set():
                    return
                if not self._put(produce(item)):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, never lost in the thread
            self._put(_Failure(exc))

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                value = self._queue.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise StopIteration from None
        if value is _DONE:
            self.close()
            raise StopIteration
        if isinstance(value, _Failure):
            self.close()
            raise value.exc
        return value

    def close(self, timeout=5.0):
        """Stop the producer thread and wait for it (at most ``timeout`` s; it finishes its current item)."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self):
        return self._thread.is_alive()

    def __del__(self):
        self._stop.set()
