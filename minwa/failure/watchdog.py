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

A rank in a known long operation says so with ``busy_in(what)`` ("writing checkpoint
step 8"), carried in its heartbeat. While every rank a waiting rank waits for is heard
from and busy, that wait is bounded by ``busy_timeout`` (``train.checkpoint_timeout_s``)
instead: a slow but healthy checkpoint write does not end the job. A busy rank that
stops sending heartbeats (SIGSTOP) is still named after ``timeout`` and the silence
threshold, as any other; one busy for longer than ``busy_timeout`` is named as still
busy in that operation.

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


@contextlib.contextmanager
def busy_in(what):
    """Declare a known long operation of this rank to the running watchdog (a no-op without one).

    ``what`` reads after "is still": ``busy_in(f"writing checkpoint step {step}")``. The
    ranks waiting for this one meanwhile wait up to the watchdog's ``busy_timeout``.
    """
    watchdog = current()
    if watchdog is None:
        yield
        return
    outermost = watchdog.begin_busy(what)
    try:
        yield
    finally:
        watchdog.end_busy(outermost)


class Watchdog:
    """Names the rank(s) that keep the others waiting longer than ``timeout`` seconds, then aborts.

    ``busy_timeout``: the bound of a wait for ranks that are alive and declare a long
    operation (``busy_in``); never below ``timeout`` (None: the same as ``timeout``).
    """

    def __init__(self, comm=None, timeout=300.0, poll=None, on_timeout=None, busy_timeout=None):
        from mpi4py import MPI

        from .abort import mpi_comm  # noqa: PLC0415

        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise MinwaError("Watchdog needs MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default); "
                             "mpi4py.rc.thread_level was changed")
        self.timeout = float(timeout)
        if not self.timeout > 0:
            raise MinwaError(f"train.timeout_s: expected a number of seconds > 0, got {timeout!r}")
        busy = self.timeout if busy_timeout is None else float(busy_timeout)
        if not busy > 0:
            raise MinwaError(f"train.checkpoint_timeout_s: expected a number of seconds > 0, got {busy_timeout!r}")
        self.busy_timeout = max(self.timeout, busy)
        self.poll = float(poll) if poll is not None else min(0.5, self.timeout / 10)
        self.comm = mpi_comm(comm).Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.on_timeout = on_timeout  # tests and embedders may replace the abort
        self.fired = None
        self._step, self._what, self._since, self._depth = -1, None, None, 0
        self._busy = None  # (what, since) of this rank's long operation, set and read as one tuple
        self.peers = self.comm.allgather((os.getpid(), host()))  # (pid, host) of every rank
        started = time.monotonic()
        self._seen = {r: {"step": -1, "what": None, "waited": None, "heard": started, "pid": pid, "host": where,
                          "state": None, "busy": None, "busy_for": None}
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

    def begin_busy(self, what):
        """This rank starts a long operation (see ``busy_in``); True when it is not inside another one."""
        if self._busy is not None:
            return False
        self._busy = (str(what), time.monotonic())
        return True

    def end_busy(self, outermost=True):
        if outermost:
            self._busy = None

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
        since, busy = self._since, self._busy
        beat = (self._step, self._what, None if since is None else now - since, None,
                None if busy is None else (busy[0], now - busy[1]))
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
            step, what, waited, state, busy = self.comm.recv(source=source, tag=_TAG)
            self._seen[source].update(step=step, what=what, waited=waited, heard=now, state=state,
                                      busy=busy and busy[0], busy_for=busy and busy[1])

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
        busy = bool(behind) and not silent and all(self._seen[r]["busy"] for r in behind)
        bound = self.busy_timeout if busy else self.timeout
        if waited <= bound:
            return  # the ranks waited for are alive and busy in a long operation (a checkpoint write)
        waiting = sorted([self.rank] + [r for r in self._seen if r not in silent and r not in behind])
        if waiting[0] != self.rank and waited < bound + 3 * self.poll + 5:
            return  # a lower rank reports; this one is the backstop
        parts = [self._silent(r, now) for r in silent] + [self._behind(r, now, busy) for r in behind]
        if not parts:
            places = "; ".join(f"{self._name(r)}: {self._seen[r]['what']}" for r in sorted(self._seen))
            parts.append(f"every rank is waiting, so communication itself is stuck ({places})")
        bounds = f"train.timeout_s={self.timeout:g}"
        if busy:
            bounds += f", and train.checkpoint_timeout_s={self.busy_timeout:g} for a rank busy in a long operation"
        here = host()
        self._fire(f"watchdog: rank {self.rank} has waited {waited:.0f} s ({bounds}) at step {self._step} in "
                   f"{self._what}; " + "; ".join(parts) + f"; aborting all {self.size} ranks",
                   stopped_pids=[self._seen[r]["pid"] for r in silent if self._seen[r]["host"] == here])

    def _silent(self, r, now):
        s = self._seen[r]
        last = f"last heard {now - s['heard']:.0f} s ago at step {s['step']}" + \
               (f" waiting in {s['what']}" if s["what"] else "") + (f" while {s['busy']}" if s["busy"] else "")
        return f"{self._name(r)} is not responding ({last}): stopped (e.g. SIGSTOP), or blocked outside Python"

    def _behind(self, r, now, busy):
        """What a rank that is not in this wait is doing; ``busy``: every such rank is past ``busy_timeout``."""
        s = self._seen[r]
        if s["busy"]:
            took = f"{s['busy_for'] + now - s['heard']:.0f} s"
            if busy:
                return (f"{self._name(r)} is still {s['busy']} after {took}, past train.checkpoint_timeout_s="
                        f"{self.busy_timeout:g} (stuck, e.g. in I/O, or slower than that bound allows)")
            return f"{self._name(r)} is at step {s['step']}, {s['busy']} for {took}"
        state = "not waiting in any collective" if s["what"] is None else f"waiting in {s['what']}"
        state = f"{s['state']}" if s["state"] else state
        return f"{self._name(r)} is at step {s['step']}, {state} (still computing, or stuck)"

    def _fire(self, message, same_as="watchdog", announce=True, stopped_pids=()):
        """End the job with ``message``; ``stopped_pids``: silent ranks of this host, killed as it ends."""
        if self.fired is not None:
            return
        self.fired = message
        self._stop.set()
        if self.on_timeout is not None:
            self.on_timeout(message)
            return
        from .abort import report_and_abort  # noqa: PLC0415

        report_and_abort(self.comm, message, code=3, same_as=same_as, announce=announce, stopped_pids=stopped_pids)

    def describe(self):
        """What this rank last heard from the others (for a timeout raised elsewhere)."""
        now = time.monotonic()
        return "; ".join(f"{self._name(r)}: step {s['step']}, {s['what'] or s['busy'] or 'not waiting'}, heard "
                         f"{now - s['heard']:.0f} s ago" for r, s in sorted(self._seen.items()))

    def announce(self, state):
        """Tell every other rank at once that this one is 'finished' or 'aborting' (its end is then no news)."""
        beat = (self._step, self._what, None, state, None)
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
