"""guard_job: the watchdog and the bound on every transfer of a training job of several ranks."""
import sys

from .watchdog import Watchdog


def backstop(timeout_s):
    """The bound on a transfer whose wait the watchdog bounds by ``timeout_s``: later, so the watchdog names first."""
    return 1.5 * float(timeout_s) + 10


def guard_job(comm, timeout_s, checkpoint_timeout_s=None):
    """Start a Watchdog with ``train.timeout_s`` and bound ``Handle.wait`` a little later (collective).

    ``checkpoint_timeout_s`` (``train.checkpoint_timeout_s``) bounds a wait for ranks that
    are alive and busy writing a checkpoint (``busy_in``) instead. Returns the Watchdog
    (None on one rank, where nothing waits for another process). The watchdog names the
    ranks first; the bound on the transfers is the backstop should the watchdog's thread
    itself be stuck.
    """
    if comm is None or comm.size == 1:
        return None
    from ..comm.handle import Handle  # noqa: PLC0415

    watchdog = Watchdog(comm, timeout=timeout_s, busy_timeout=checkpoint_timeout_s)
    Handle.timeout = backstop(timeout_s)
    if comm.rank == 0:
        print(f"minwa: train.timeout_s={float(timeout_s):g}: a rank that keeps the others waiting longer than "
              f"this ends the job, named (one writing a checkpoint: after train.checkpoint_timeout_s="
              f"{watchdog.busy_timeout:g})", file=sys.stderr, flush=True)
    return watchdog
