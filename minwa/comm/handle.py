"""Handle: one communication in flight, with ``wait()`` and ``test()`` (Horovod's async handles).

A transfer is written as a generator that posts nonblocking MPI requests and
yields them; the code after a ``yield`` runs once those requests are complete
(sum the received parts, post the next stage, ...) and the generator's return
value is the handle's result. ``test()`` advances the generator as far as it can
without blocking, ``wait()`` blocks until the end. Either may be called from the
main thread or from a progress thread; a lock keeps one driver at a time.
"""
import threading
import time

from ..errors import CommError


def _testall(requests):
    from mpi4py import MPI  # noqa: PLC0415 - only reached once MPI is in use

    return MPI.Request.Testall(requests)


def _waitall(requests):
    from mpi4py import MPI  # noqa: PLC0415

    MPI.Request.Waitall(requests)


class Handle:
    """A nonblocking operation: ``test()`` -> bool, ``wait()`` -> result."""

    def __init__(self, stages, name="transfer"):
        self.name = name
        self.started_at = time.perf_counter()
        self.finished_at = None
        self.done = False
        self.result = None
        self._gen = stages
        self._requests = []
        self._error = None
        self._lock = threading.Lock()
        with self._lock:
            self._advance()

    @classmethod
    def completed(cls, value=None, name="transfer"):
        """A handle that is already done with ``value`` (e.g. a collective on one rank)."""
        def stages():
            return value
            yield  # pragma: no cover - makes this function a generator

        return cls(stages(), name=name)

    def _advance(self):
        """Run the generator until it yields requests that are still pending, or ends."""
        try:
            while True:
                requests = next(self._gen)
                self._requests = list(requests or [])
                if self._requests and not _testall(self._requests):
                    return
        except StopIteration as stop:
            self._finish(stop.value, None)
        except Exception as exc:  # kept and raised by wait(), so a progress thread never dies silently
            self._finish(None, exc)

    def _finish(self, value, error):
        self.result, self._error = value, error
        self._requests = []
        self.finished_at = time.perf_counter()
        self.done = True

    def test(self):
        """True when complete; advances the transfer without blocking."""
        if self.done:
            return True
        if not self._lock.acquire(blocking=False):
            return False  # another thread is driving it right now
        try:
            while not self.done and _testall(self._requests):
                self._advance()
        except Exception as exc:
            self._finish(None, exc)
        finally:
            self._lock.release()
        return self.done

    def wait(self):
        """Block until complete and return the result (re-raises a failure as CommError)."""
        if not self.done:
            with self._lock:
                try:
                    while not self.done:
                        _waitall(self._requests)
                        self._advance()
                except Exception as exc:
                    self._finish(None, exc)
        if self._error is not None:
            if isinstance(self._error, CommError):
                raise self._error
            raise CommError(f"{self.name}: {type(self._error).__name__}: {self._error}") from self._error
        return self.result

    @property
    def seconds(self):
        """Time from start to completion (None while in flight)."""
        return None if self.finished_at is None else self.finished_at - self.started_at

    def __repr__(self):
        return f"Handle({self.name!r}, {'done' if self.done else 'in flight'})"
