"""ProgressThread: keeps nonblocking transfers moving while the main thread computes.

MPI libraries move large messages forward only inside MPI calls. Without a helper,
a transfer started during backward would advance only when the main thread next
calls ``test()``. This daemon thread tests the registered handles in a loop,
sleeping a little between rounds so it does not take a core away from compute.
It needs an MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default).
"""
import threading
import time


class ProgressThread:
    """Polls registered handles until each is done; ``close()`` stops it."""

    def __init__(self, interval=2e-4, name="minwa-progress"):
        self.interval = float(interval)
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
        while True:
            with self._cond:
                while not self._handles and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                handles = list(self._handles)
            finished = [h for h in handles if h.test()]
            if finished:
                with self._cond:
                    self._handles = [h for h in self._handles if not h.done]
            else:
                time.sleep(self.interval)

    def close(self):
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=5.0)
