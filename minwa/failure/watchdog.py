"""Watchdog: bounds every blocking wait of a job and names the rank(s) the others wait for.

Each rank's watchdog thread sends a small heartbeat to every other rank about every
``poll`` seconds over a private duplicate communicator: the step the rank is at and
the wait it is in ("bucket 3 (conv2, ...)", "barrier after checkpoint", ...) or none.
When a rank has waited in one place longer than ``timeout`` (``train.timeout_s``), its
watchdog looks at what it last heard from the others and aborts the job with a
message naming

* the ranks not heard from for a while (stopped, e.g. ``kill -STOP``, or blocked in
  native code), with their pid, host and where they were last;
* the ranks that are not waiting in that step (still computing, stuck in I/O);
* or, when every rank is waiting, that communication itself is stuck, and in what.

Only the lowest-numbered waiting rank reports at once; the others are a backstop a
few seconds later. Waits are marked with ``waiting_in(what)`` (``Handle.wait`` does it
for every transfer); ``at_step(step)`` tells which step the rank is in. Creating a
Watchdog is collective.
"""
import contextlib
import os
import select
import threading
import time

from ..errors import MinwaError
from ._output import host

_TAG = 0x6D77
_active = []


def current():
    """The running Watchdog of this process, or None."""
    return _active[-1] if _active else None


@contextlib.contextmanager
def waiting_in(what):
    """Mark a blocking wait for the running watchdog (a no-op without one)."""
    watchdog = current()
    if watchdog is None:
        yield
        return
    watchdog.begin_wait(what)
    try:
        yield
    finally:
        watchdog.end_wait()


class Watchdog:
    """Names the rank(s) that keep the others waiting longer than ``timeout`` seconds, then aborts."""

    def __init__(self, comm=None, timeout=300.0, poll=None, on_timeout=None):
        from mpi4py import MPI

        from .abort import mpi_comm  # noqa: PLC0415

        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise MinwaError("Watchdog needs MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default); "
                             "mpi4py.rc.thread_level was changed")
        self.timeout = float(timeout)
        if not self.timeout > 0:
            raise MinwaError(f"train.timeout_s: expected a number of seconds > 0, got {timeout!r}")
        self.poll = float(poll) if poll is not None else min(0.5, self.timeout / 10)
        self.comm = mpi_comm(comm).Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.on_timeout = on_timeout  # tests and embedders may replace the abort
        self.fired = None
        self._step, self._what, self._since, self._depth = -1, None, None, 0
        self.peers = self.comm.allgather((os.getpid(), host()))  # (pid, host) of every rank
        started = time.monotonic()
        self._seen = {r: {"step": -1, "what": None, "waited": None, "heard": started, "pid": pid, "host": where,
                          "state": None}
                      for r, (pid, where) in enumerate(self.peers) if r != self.rank}
        self._sends = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minwa-watchdog", daemon=True)
        self._thread.start()
        self._deaths = threading.Thread(target=self._watch_local_peers, name="minwa-peer-deaths", daemon=True)
        self._deaths.start()
        _active.append(self)

    # -- marks, set by the rank's own threads ---------------------------------------------------
    def at_step(self, step):
        """This rank has started step ``step``."""
        self._step = int(step)

    def begin_wait(self, what):
        self._depth += 1
        if self._depth == 1:
            self._what, self._since = str(what), time.monotonic()

    def end_wait(self):
        self._depth = max(0, self._depth - 1)
        if self._depth == 0:
            self._what, self._since = None, None

    def arrive(self, step, what="the step's collectives"):
        """This rank is about to wait in the collective(s) of ``step`` (``done()`` ends the wait)."""
        self.at_step(step)
        self.begin_wait(what)

    def done(self):
        self.end_wait()

    @contextlib.contextmanager
    def waiting(self, step_or_what):
        """``with watchdog.waiting(step): ...`` (or a description of the wait)."""
        if isinstance(step_or_what, int):
            self.arrive(step_or_what)
        else:
            self.begin_wait(step_or_what)
        try:
            yield self
        finally:
            self.end_wait()

    # -- the thread ----------------------------------------------------------------------------
    def _run(self):
        while not self._stop.wait(self.poll):
            try:
                self._tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - a watchdog must never be the thing that fails
                from ._output import say  # noqa: PLC0415

                say(f"minwa: watchdog on rank {self.rank} stopped: {exc}", drain_s=0)
                return

    def _watch_local_peers(self):
        """Name a rank of this host the moment it dies (SIGKILL, a crash): mpiexec names some pid, not always it."""
        if not hasattr(os, "pidfd_open"):
            return
        here, fds = host(), {}
        for r, (pid, where) in enumerate(self.peers):
            if r != self.rank and where == here:
                try:
                    fds[os.pidfd_open(pid)] = r
                except OSError:
                    continue
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        try:
            while fds and not self._stop.is_set():
                ready = poller.poll(500)
                if not ready or self._stop.is_set():
                    continue
                fd = ready[0][0]
                r = fds.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                if self._lock.acquire(timeout=0.2):  # not held for long unless MPI itself is stuck
                    try:
                        self._drain(time.monotonic())
                    finally:
                        self._lock.release()
                if self._seen[r]["state"] is None:  # it neither finished nor announced its own abort
                    pid, where = self.peers[r]
                    self._fire(f"rank {r} (pid {pid} on {where}) has died without a Python error (killed, or a "
                               f"crash in native code), seen by rank {self.rank}; aborting all {self.size} ranks",
                               same_as="a rank died", announce=False)
                    return
        finally:
            for fd in fds:
                os.close(fd)

    def _tick(self, now):
        since = self._since
        beat = (self._step, self._what, None if since is None else now - since, None)
        with self._lock:
            for peer in self._seen:
                pending = self._sends.get(peer)
                if pending is None or pending.Test():
                    self._sends[peer] = self.comm.isend(beat, dest=peer, tag=_TAG)
            self._drain(now)
        if since is not None and now - since > self.timeout:
            self._judge(now, now - since)

    def _drain(self, now):
        from mpi4py import MPI

        status = MPI.Status()
        while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG, status=status):
            source = status.Get_source()
            step, what, waited, state = self.comm.recv(source=source, tag=_TAG)
            self._seen[source].update(step=step, what=what, waited=waited, heard=now, state=state)

    def _name(self, rank):
        seen = self._seen[rank]
        return f"rank {rank} (pid {seen['pid']} on {seen['host']})"

    def _judge(self, now, waited):
        quiet = max(3 * self.poll, min(self.timeout, 10.0))
        fresh = min(4 * self.poll, quiet)  # a live peer's beat arrives every poll
        if any(fresh < now - s["heard"] <= quiet for s in self._seen.values()):
            return  # a peer went quiet only lately (stopped just now?): judge once it is heard again or is silent
        silent = [r for r, s in self._seen.items() if now - s["heard"] > quiet]
        behind = [r for r, s in self._seen.items() if r not in silent
                  and (s["step"] < self._step or s["what"] is None)]
        waiting = sorted([self.rank] + [r for r in self._seen if r not in silent and r not in behind])
        if waiting[0] != self.rank and waited < self.timeout + 3 * self.poll + 5:
            return  # a lower rank reports; this one is the backstop
        parts = []
        for r in silent:
            s = self._seen[r]
            last = f"last heard {now - s['heard']:.0f} s ago at step {s['step']}" + \
                   (f" waiting in {s['what']}" if s["what"] else "")
            parts.append(f"{self._name(r)} is not responding ({last}): stopped (e.g. SIGSTOP), or blocked "
                         "outside Python")
        for r in behind:
            s = self._seen[r]
            state = "not waiting in any collective" if s["what"] is None else f"waiting in {s['what']}"
            state = f"{s['state']}" if s["state"] else state
            parts.append(f"{self._name(r)} is at step {s['step']}, {state} (still computing, or stuck)")
        if not parts:
            places = "; ".join(f"{self._name(r)}: {self._seen[r]['what']}" for r in sorted(self._seen))
            parts.append(f"every rank is waiting, so communication itself is stuck ({places})")
        self._fire(f"watchdog: rank {self.rank} has waited {waited:.0f} s (train.timeout_s={self.timeout:g}) at "
                   f"step {self._step} in {self._what}; " + "; ".join(parts) + f"; aborting all {self.size} ranks")

    def _fire(self, message, same_as="watchdog", announce=True):
        if self.fired is not None:
            return
        self.fired = message
        self._stop.set()
        if self.on_timeout is not None:
            self.on_timeout(message)
            return
        from .abort import report_and_abort  # noqa: PLC0415

        report_and_abort(self.comm, message, code=3, same_as=same_as, announce=announce)

    def describe(self):
        """What this rank last heard from the others (for a timeout raised elsewhere)."""
        now = time.monotonic()
        return "; ".join(f"{self._name(r)}: step {s['step']}, {s['what'] or 'not waiting'}, heard "
                         f"{now - s['heard']:.0f} s ago" for r, s in sorted(self._seen.items()))

    def announce(self, state):
        """Tell every other rank at once that this one is 'finished' or 'aborting' (its end is then no news)."""
        beat = (self._step, self._what, None, state)
        with self._lock:
            for peer in self._seen:
                self.comm.isend(beat, dest=peer, tag=_TAG)

    def stop(self):
        """End the background threads (every rank, at the end of training)."""
        if not self._stop.is_set():
            self.announce("finished")
        self._stop.set()
        if self in _active:
            _active.remove(self)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        self._sends = {}  # beats still in flight are small (eager) messages; nothing waits for them

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
