"""Abort: an error on any rank ends every rank of the job, with one message naming the rank and the cause.

Every path (an uncaught exception in any thread, an error a command caught to print,
``sys.exit(nonzero)``, the watchdog) goes through ``report_and_abort``: the message is
written to stderr and drained from the pipe, sent to minwa-launch over the lifeline,
and only then is MPI Abort called. A message that several ranks would print alike (a
config error every rank meets) is printed once per host.
"""
import contextlib
import os
import signal
import sys
import threading
import time
import traceback

from . import lifeline
from ._output import first_to_say, say, who

_installed = {}
_QUIET_S = 3.0


def mpi_comm(comm):
    """The mpi4py communicator behind ``comm`` (COMM_WORLD when None)."""
    if comm is None:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    if hasattr(comm, "Abort") and hasattr(comm, "Get_rank"):
        return comm
    for name in ("comm", "mpi_comm", "_comm", "mpi"):
        inner = getattr(comm, name, None)
        if inner is not None and hasattr(inner, "Abort"):
            return inner
    raise TypeError(f"expected an mpi4py communicator or a minwa Communicator, got {type(comm).__name__}")


def cause(exc_type, exc, limit=300):
    text = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    return text if len(text) <= limit else text[:limit] + "..."


def report_and_abort(comm, message, code=1, detail="", same_as=None, announce=True, stopped_pids=()):
    """Say ``minwa: <message>`` (after ``detail``, e.g. a traceback), tell the launcher, then MPI Abort.

    ``same_as``: a text that is the same on every rank meeting this failure (the cause
    without the rank); only the first rank of this job on this host to meet it prints.
    ``announce``: first tell the other ranks' watchdogs (no MPI call when False: a peer
    has died and MPI may be failing).
    ``stopped_pids``: ranks of this host that stopped answering (``kill -STOP``), SIGKILLed
    once the message is out: hydra's SIGTERM stays pending in a stopped process, and plain
    mpiexec then waits for it forever (seen about one run in ten).
    """
    mpi = mpi_comm(comm)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    from .watchdog import current  # noqa: PLC0415

    watchdog = current()
    if watchdog is not None and announce:
        watchdog.announce("aborting")  # so the other ranks' watchdogs do not report this rank's end as news
    first = first_to_say(same_as or message)
    if first:
        say((detail.rstrip() + "\n" if detail else "") + f"minwa: {message}")
    lifeline.report(message)
    for pid in stopped_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # gone already
            pass
    if not first:
        time.sleep(_QUIET_S)  # the rank that said it is ending the job; its MPI Abort usually ends this one first
    mpi.Abort(int(code))
    os._exit(int(code))  # MPI Abort may return on this rank before the launcher kills it


def abort(comm, message, code=1):
    """Print ``minwa: <message>`` and end every rank of ``comm``'s job with MPI Abort."""
    report_and_abort(comm, message, code)


def abort_for_exception(comm, exc_type, exc, tb, where="", code=1):
    """End the job for an exception of this rank; minwa's own errors are shown without a traceback."""
    from ..errors import MinwaError  # noqa: PLC0415

    mpi = mpi_comm(comm)
    rank, size = mpi.Get_rank(), mpi.Get_size()
    text = cause(exc_type, exc)
    detail = "" if issubclass(exc_type, MinwaError) else "".join(traceback.format_exception(exc_type, exc, tb))
    report_and_abort(mpi, f"{who(rank)} failed{where}: {text}\nminwa: rank {rank}: aborting all {size} ranks",
                     code, detail=detail, same_as=f"{where}{text}")


def install_abort_on_error(comm=None, code=1):
    """Make an uncaught exception on this rank (any thread) abort the whole MPI job with a clear message.

    With a single rank nothing is changed beyond registering the rank: Python's own
    error exit is already clean there.
    """
    mpi = mpi_comm(comm)
    lifeline.register_rank(mpi)
    if mpi.Get_size() == 1 or _installed.get("comm") is mpi:
        return
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def excepthook(exc_type, exc, tb):
        abort_for_exception(mpi, exc_type, exc, tb, code=code)

    def thread_excepthook(args):
        if args.exc_type is SystemExit:
            return
        name = f" in thread {args.thread.name!r}" if args.thread is not None else " in a thread"
        abort_for_exception(mpi, args.exc_type, args.exc_value, args.exc_traceback, name, code)

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
    mpi = mpi_comm(comm)
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (None, 0) and mpi.Get_size() > 1:
            rank, size = mpi.Get_rank(), mpi.Get_size()
            report_and_abort(mpi, f"{who(rank)} exited with status {exc.code}; aborting all {size} ranks",
                             exc.code if isinstance(exc.code, int) else code, same_as=f"exit {exc.code}")
        raise
    except BaseException as exc:
        if mpi.Get_size() > 1:
            abort_for_exception(mpi, type(exc), exc, exc.__traceback__, code=code)
        raise


def launched_ranks(environ=None):
    """How many ranks the launcher (mpiexec, srun) started this process among; 1 outside one."""
    import os  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS", "PMIX_SIZE"):
        value = environ.get(key, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def end_job_for_error(exc, where=""):
    """For a command that caught ``exc`` to print it: under an MPI launcher with several ranks, abort them all.

    A rank that only printed its error and returned would block in MPI_Finalize while
    the others wait in a collective for it. Returns only outside such a job.
    """
    if launched_ranks() <= 1:
        return
    from mpi4py import MPI  # noqa: PLC0415 - initialises MPI if this rank had not yet

    abort_for_exception(MPI.COMM_WORLD, type(exc), exc, exc.__traceback__, where=where)
