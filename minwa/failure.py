"""Rank failure handling: one failing rank ends the whole MPI job with a message naming it, never a hang.

* ``install_abort_on_error(comm)``: an uncaught exception on any rank (main thread or
  a helper thread) prints ``minwa: rank R (pid P on HOST) failed: <cause>`` and calls
  MPI Abort, so the other ranks are not left waiting in a collective.
* ``Watchdog``: rank 0 collects a heartbeat (the step each rank has reached); when
  some ranks stay behind a step the others reached for longer than ``timeout``, it
  names them and aborts the job.
* ``check_finite``: a NaN or infinite loss stops the run (or skips the step), decided
  the same way on every rank.
* ``install_stop_handler``: SIGINT/SIGTERM set a flag that the training loop polls to
  write a checkpoint and exit cleanly.

``comm`` is an mpi4py communicator or a minwa Communicator wrapping one.
"""
import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback

from . import backend
from .errors import ConfigError, MinwaError

#: Set by minwa-launch: the directory holding its lifeline socket, through which it learns which rank ended first.
RANK_DIR_ENV = "MINWA_RANK_DIR"
LIFELINE = "lifeline.sock"
_TAG_HEARTBEAT = 0x6D77  # on a private duplicate communicator, so it cannot meet other traffic
_installed = {}


class NonFiniteLoss(MinwaError, FloatingPointError):
    """The loss became NaN or infinite."""


def _mpi_comm(comm):
    """The mpi4py communicator behind ``comm`` (COMM_WORLD when None)."""
    if comm is None:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    if hasattr(comm, "Abort") and hasattr(comm, "Get_rank"):
        return comm
    for name in ("comm", "mpi_comm", "_comm"):
        inner = getattr(comm, name, None)
        if inner is not None and hasattr(inner, "Abort"):
            return inner
    raise TypeError(f"expected an mpi4py communicator or a minwa Communicator, got {type(comm).__name__}")


def _host():
    return socket.gethostname().split(".")[0]


def _who(rank):
    return f"rank {rank} (pid {os.getpid()} on {_host()})"


def _say(text, stream=None):
    stream = stream or sys.stderr
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def abort(comm, message, code=1):
    """Print ``minwa: <message>`` and end every rank of ``comm``'s job with MPI Abort."""
    _say(f"minwa: {message}")
    mpi = _mpi_comm(comm)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    mpi.Abort(int(code))


def register_rank(comm=None):
    """Connect this rank's lifeline to minwa-launch ($MINWA_RANK_DIR), so that if it dies it can be named.

    The socket stays open for the life of the process; the kernel closes it when the
    process ends, however it ends. Does nothing outside minwa-launch or on a host
    where the launcher does not run.
    """
    directory = os.environ.get(RANK_DIR_ENV)
    if not directory or _installed.get("lifeline") is not None:
        return None
    rank = _mpi_comm(comm).Get_rank()
    try:
        lifeline = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lifeline.connect(os.path.join(directory, LIFELINE))
        lifeline.sendall(json.dumps({"rank": rank, "pid": os.getpid(), "host": _host()}).encode() + b"\n")
    except (OSError, AttributeError):
        return None
    _installed["lifeline"] = lifeline
    return lifeline


def _cause(exc_type, exc, limit=300):
    text = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    return text if len(text) <= limit else text[:limit] + "..."


def install_abort_on_error(comm=None, code=1):
    """Make an uncaught exception on this rank (any thread) abort the whole MPI job with a clear message.

    With a single rank nothing is changed beyond registering the rank: Python's own
    error exit is already clean there.
    """
    mpi = _mpi_comm(comm)
    rank, size = mpi.Get_rank(), mpi.Get_size()
    register_rank(mpi)
    if size == 1 or _installed.get("comm") is mpi:
        return
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def fail(exc_type, exc, tb, where=""):
        try:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            _say(f"{text.rstrip()}\nminwa: {_who(rank)} failed{where}: {_cause(exc_type, exc)}\n"
                 f"minwa: rank {rank}: aborting all {size} ranks")
        finally:
            mpi.Abort(code)

    def excepthook(exc_type, exc, tb):
        fail(exc_type, exc, tb)

    def thread_excepthook(args):
        if args.exc_type is SystemExit:
            return
        name = f" in thread {args.thread.name!r}" if args.thread is not None else " in a thread"
        fail(args.exc_type, args.exc_value, args.exc_traceback, name)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    _installed.update(comm=mpi, hooks=(previous_hook, previous_thread_hook))


def uninstall_abort_on_error():
    """Put back the exception hooks that ``install_abort_on_error`` replaced."""
    hooks = _installed.pop("hooks", None)
    _installed.pop("comm", None)
    if hooks:
        sys.excepthook, threading.excepthook = hooks


@contextlib.contextmanager
def abort_on_error(comm=None, code=1):
    """``with abort_on_error(comm): ...``: any exception, or ``sys.exit(nonzero)``, inside aborts the job.

    For code that catches errors to print them and return an exit code, which on its
    own would leave the other ranks blocked in their next collective.
    """
    mpi = _mpi_comm(comm)
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (None, 0) and mpi.Get_size() > 1:
            abort(mpi, f"{_who(mpi.Get_rank())} exited with status {exc.code}; aborting all {mpi.Get_size()} ranks",
                  code if isinstance(exc.code, str) else int(exc.code))
        raise
    except BaseException as exc:
        if mpi.Get_size() > 1:
            _say("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
            abort(mpi, f"{_who(mpi.Get_rank())} failed: {_cause(type(exc), exc)}\n"
                       f"minwa: rank {mpi.Get_rank()}: aborting all {mpi.Get_size()} ranks", code)
        raise


class Watchdog:
    """Names the ranks that have not reached a collective the others wait in, and aborts after ``timeout`` s.

    Every rank calls ``arrive(step)`` right before it blocks in the step's
    collective(s) and ``done()`` once they completed (or uses ``with
    watchdog.waiting(step):``); both are cheap (no MPI call on the caller's thread).
    A background thread sends (step, waiting) to rank 0 over a private duplicate
    communicator; rank 0's thread tracks the newest step any rank reached and:

    * when some ranks stay behind it for ``timeout`` seconds, prints which ranks and
      the step each was last seen at, then aborts the job;
    * when every rank has been waiting in the same step for ``stall_timeout``
      seconds (default: ``timeout``), reports a stuck collective and aborts.

    Creating a Watchdog is collective. Python-object reductions (mpi4py's lowercase
    ``allreduce``) hold the GIL while they wait and so pause the watchdog thread of
    that rank; buffer collectives, ``allgather``, ``bcast`` and waits on requests do
    not.
    """

    def __init__(self, comm=None, timeout=60.0, poll=0.2, stall_timeout=None, on_timeout=None):
        from mpi4py import MPI

        if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise MinwaError("Watchdog needs MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default); "
                             "mpi4py.rc.thread_level was changed")
        self._MPI = MPI
        self.comm = _mpi_comm(comm).Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout, self.poll = float(timeout), float(poll)
        self.stall_timeout = self.timeout if stall_timeout is None else float(stall_timeout)
        self.on_timeout = on_timeout  # tests and embedders may replace the abort
        self.fired = None
        self._mark = (-1, False)  # (step, waiting) of this rank, set by the caller's thread
        self._sent = None
        self._requests = []
        self._seen = [(-1, False)] * self.size
        self._newest, self._newest_since = -1, time.monotonic()
        self._stuck_since = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minwa-watchdog", daemon=True)
        self._thread.start()

    def arrive(self, step):
        """This rank is about to wait in the collective(s) of ``step``."""
        self._mark = (int(step), True)

    def done(self):
        """This rank's collectives of the current step have completed."""
        self._mark = (self._mark[0], False)

    @contextlib.contextmanager
    def waiting(self, step):
        """``with watchdog.waiting(step): handle.wait()``: arrive before, done after."""
        self.arrive(step)
        try:
            yield self
        finally:
            self.done()

    def _run(self):
        while not self._stop.wait(self.poll):
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - a watchdog must never be the thing that fails
                _say(f"minwa: watchdog on rank {self.rank} stopped: {exc}")
                return

    def _tick(self):
        mark = self._mark
        if self.rank != 0:
            if mark != self._sent:
                self._requests.append(self.comm.isend(mark, dest=0, tag=_TAG_HEARTBEAT))
                self._sent = mark
            self._requests = [r for r in self._requests if not r.Test()]
            return
        self._drain()
        self._seen[0] = mark
        self._judge(time.monotonic())

    def _judge(self, now):
        steps = [step for step, _ in self._seen]
        newest = max(steps)
        if newest > self._newest:
            self._newest, self._newest_since = newest, now
        behind = [r for r, step in enumerate(steps) if step < newest]
        if behind and now - self._newest_since > self.timeout:
            seen = ", ".join(f"rank {r} at step {steps[r]}" if steps[r] >= 0 else f"rank {r} not yet at any"
                             for r in behind)
            self._fire(f"watchdog: rank(s) {', '.join(map(str, behind))} have not reached step {newest} "
                       f"within {self.timeout:g} s while the other ranks wait for them (last seen: {seen}); "
                       f"aborting all {self.size} ranks")
            return
        stuck = newest >= 0 and not behind and all(waiting for _, waiting in self._seen)
        if not stuck:
            self._stuck_since = None
        elif self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since > self.stall_timeout:
            self._fire(f"watchdog: all {self.size} ranks have waited in the collective(s) of step {newest} for "
                       f"{self.stall_timeout:g} s without it completing (communication is stuck); aborting")

    def _drain(self):
        status = self._MPI.Status()
        while self.comm.Iprobe(source=self._MPI.ANY_SOURCE, tag=_TAG_HEARTBEAT, status=status):
            source = status.Get_source()
            step, waiting = self.comm.recv(source=source, tag=_TAG_HEARTBEAT)
            if step >= self._seen[source][0]:
                self._seen[source] = (int(step), bool(waiting))

    def _fire(self, message):
        self.fired = message
        self._stop.set()
        if self.on_timeout is not None:
            self.on_timeout(message)
            return
        abort(self.comm, message, code=3)

    def stop(self):
        """End the background thread (every rank, at the end of training)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        if self.rank == 0:
            self._drain()
        else:
            for request in self._requests:
                request.Wait()
            self._requests = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def check_finite(loss, step, policy="stop", comm=None):
    """True when ``loss`` is finite on every rank; otherwise raise NonFiniteLoss ('stop') or return False ('skip').

    With a communicator of several ranks the decision is shared (an allgather of
    one flag per rank), so every rank stops or skips the same step and the message
    names the ranks whose loss was not finite.
    """
    if policy not in ("stop", "skip"):
        raise ConfigError(f"train.on_nan {policy!r}: expected 'stop' or 'skip'")
    host = backend.to_host(loss)
    try:
        values = [float(v) for v in getattr(host, "ravel", lambda: [host])()]
    except (TypeError, ValueError):
        raise ConfigError(f"check_finite: loss {loss!r} is not a number") from None
    bad_here = next((v for v in values if not math.isfinite(v)), None)
    if comm is not None and _mpi_comm(comm).Get_size() > 1:
        flags = _mpi_comm(comm).allgather(None if bad_here is None else repr(bad_here))
    else:
        flags = [None if bad_here is None else repr(bad_here)]
    bad = [(r, v) for r, v in enumerate(flags) if v is not None]
    if not bad:
        return True
    where = ", ".join(f"rank {r}: {v}" for r, v in bad) if len(flags) > 1 else f"{bad[0][1]}"
    if policy == "stop":
        raise NonFiniteLoss(f"step {step}: the loss is not finite ({where}); stopping. Lower solver.base_lr, "
                            "check the data, or set train.on_nan=skip to skip such steps")
    return False


class StopRequest:
    """Set by SIGINT/SIGTERM; the training loop polls it (call it) to checkpoint and leave cleanly.

    With ``comm`` of several ranks, calling it is collective and true on every rank
    as soon as any rank got a signal, so all ranks stop at the same step.
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.signum = None
        self.count = 0
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def agreed(self):
        """True on every rank when any rank was asked to stop (collective with several ranks)."""
        if self.comm is None:
            return self.requested
        mpi = _mpi_comm(self.comm)
        if mpi.Get_size() == 1:
            return self.requested
        return any(mpi.allgather(self.requested))

    def __call__(self):
        return self.agreed()

    def _handle(self, signum, frame):
        self.count += 1
        name = signal.Signals(signum).name
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt(f"second {name}")
        self.signum = signum
        _say(f"minwa: {name} received: stopping after this step and writing a checkpoint"
             + (" (press Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""))

    def restore(self):
        """Put back the signal handlers that were replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def install_stop_handler(comm=None, signals=(signal.SIGINT, signal.SIGTERM)):
    """Route SIGINT/SIGTERM to a StopRequest (main thread only); a second Ctrl-C interrupts at once."""
    request = StopRequest(comm)
    for signum in signals:
        request._previous[signum] = signal.signal(signum, request._handle)
    return request
