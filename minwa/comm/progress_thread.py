"""ProgressThread: keeps nonblocking transfers moving while the main thread computes.

MPI libraries move large messages forward only inside MPI calls. Without a helper,
a transfer started during backward would advance only when the main thread next
calls ``test()``. This daemon thread tests the registered handles in a loop,
sleeping between rounds so it does not take a core away from compute: the pause
starts at ``interval`` after a round that moved something and doubles up to
``max_interval`` while nothing moves (a slow link needs few, late polls; a fast
one finishes before the pause grows). It needs an MPI initialised with
MPI_THREAD_MULTIPLE (mpi4py's default).
"""
import threading
import time


class ProgressThread:
    """Polls registered handles until each is done; ``close()`` stops it."""

    def __init__(self, interval=1e-4, max_interval=2e-3, name="minwa-progress"):
        self.interval = float(interval)
        self.max_interval = float(max_interval)
        self._handles = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, handle):
        with self._cond:
            if not handle.done:
                self._handles.append(handle)
                self._cond.notify()
        return handle

    @property
    def pending(self):
        with self._cond:
            return len(self._handles)

    def _run(self):
        from .. import backend  # noqa: PLC0415

        backend.use_bound_device()  # CUDA's current device is per thread
        pause = self.interval
        while True:
            with self._cond:
                while not self._handles and not self._stopping:
                    self._cond.wait()
                    pause = self.interval
                if self._stopping:
                    return
                handles = list(self._handles)
            stages = [h.stage for h in handles]
            finished = [h for h in handles if h.test()]
            if finished:
                with self._cond:
                    self._handles = [h for h in self._handles if not h.done]
            moved = finished or any(h.stage != s for h, s in zip(handles, stages))
            pause = self.interval if moved else min(2 * pause, self.max_interval)
            time.sleep(pause)

    def close(self):
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=5.0)
