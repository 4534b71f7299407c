"""Handle: one communication in flight, with ``wait()`` and ``test()`` (Horovod's async handles).

A transfer is written as a generator that posts nonblocking MPI requests and
yields them (a list that may also hold other Handles, to chain operations); the
code after a ``yield`` runs once those requests are complete
(sum the received parts, post the next stage, ...) and the generator's return
value is the handle's result. ``test()`` advances the generator as far as it can
without blocking, ``wait()`` blocks until the end. Either may be called from the
main thread or from a progress thread; a lock keeps one driver at a time.

``wait()`` keeps every other transfer in flight in this process moving while it
waits. A later stage is posted only when its handle is driven, so a rank blocked
on transfer A alone could starve transfer B that a peer is blocked on -- two
ranks waiting in opposite orders would deadlock.
"""
import os
import threading
import time

from ..errors import CommError
from ..failure.watchdog import current as current_watchdog
from ..failure.watchdog import waiting_in


def _testall(pending):
    """True when every MPI request and inner Handle in ``pending`` is complete (never blocks)."""
    requests = [r for r in pending if not isinstance(r, Handle)]
    if requests:
        from mpi4py import MPI

        if not MPI.Request.Testall(requests):
            return False
    return all(h.test() for h in pending if isinstance(h, Handle))


#: how long ``wait()`` polls without sleeping: a transfer over shared memory or a fast link ends within it
SPIN_S = 1e-3
#: gives the GIL and the core to whatever else is ready, and returns at once (0.6 us here) when nothing is.
#: ``time.sleep(0)`` is a timed sleep: 70 us each on Linux (timer slack), which made every stage of a
#: transfer that finishes in 20 us end 50-150 us late (a 0.36 MB butterfly over shared memory: 0.7 ms)
_yield = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))

_IN_FLIGHT = set()
_IN_FLIGHT_LOCK = threading.Lock()


def _others_in_flight(handle):
    with _IN_FLIGHT_LOCK:
        return [h for h in _IN_FLIGHT if h is not handle]


def progress_all(skip=None):
    """Advance every transfer in flight in this process but ``skip``, without blocking."""
    for handle in _others_in_flight(skip):
        handle.test()


class Handle:
    """A nonblocking operation: ``test()`` -> bool, ``wait()`` -> result.

    ``wait()`` is bounded: after ``Handle.timeout`` seconds (None: no bound; the trainer
    sets it from ``train.timeout_s``, later than the watchdog, which names the ranks
    first) it raises CommError naming the transfer.
    """

    timeout = None

    def __init__(self, stages, name="transfer"):
        self.name = name
        self.started_at = time.perf_counter()
        self.finished_at = None
        self.done = False
        self.stage = 0  # how many times the transfer has moved on to a next stage
        self.result = None
        self._gen = stages
        self._requests = []
        self._error = None
        self._lock = threading.Lock()
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.add(self)
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
                self.stage += 1
                self._requests = list(requests or [])
                if self._requests and not _testall(self._requests):
                    return
        except StopIteration as stop:
            self._finish(stop.value, None)
        except Exception as exc:  # noqa: BLE001 - kept and raised by wait(), so a progress thread never dies
            self._finish(None, exc)

    def _finish(self, value, error):
        self.result, self._error = value, error
        self._requests = []
        self.finished_at = time.perf_counter()
        self.done = True
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.discard(self)

    def test(self):
        """True when complete; advances the transfer without blocking."""
        if self.done:
            return True
        if not self._lock.acquire(blocking=False):
            return False  # another thread is driving it right now
        try:
            while not self.done and _testall(self._requests):
                self._advance()
        except Exception as exc:  # noqa: BLE001 - raised again by wait()
            self._finish(None, exc)
        finally:
            self._lock.release()
        return self.done

    def wait(self, timeout=None):
        """Block until complete and return the result (re-raises a failure as CommError)."""
        start = time.perf_counter()
        bound = timeout if timeout is not None else Handle.timeout
        with waiting_in(self.name):
            while not self.test():
                progress_all(skip=self)
                waited = time.perf_counter() - start
                if bound is not None and waited > bound:
                    watchdog = current_watchdog()
                    heard = f"; the other ranks were last seen as: {watchdog.describe()}" if watchdog else ""
                    raise CommError(f"{self.name}: not complete after {waited:.0f} s (train.timeout_s); a rank "
                                    f"did not take part{heard}")
                # spin briefly (fast links), then poll gently so a long wait leaves the core to others
                if waited < SPIN_S:
                    _yield()
                else:
                    time.sleep(5e-5)
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
