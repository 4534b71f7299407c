"""guard_job: the watchdog and the bound on every transfer of a training job of several ranks."""
import sys

from .watchdog import Watchdog


def guard_job(comm, timeout_s):
    """Start a Watchdog with ``train.timeout_s`` and bound ``Handle.wait`` a little later (collective).

    Returns the Watchdog (None on one rank, where nothing waits for another process).
    The watchdog names the ranks first; the bound on the transfers is the backstop
    should the watchdog's thread itself be stuck.
    """
    if comm is None or comm.size == 1:
        return None
    from ..comm.handle import Handle  # noqa: PLC0415

    watchdog = Watchdog(comm, timeout=timeout_s)
    Handle.timeout = 1.5 * float(timeout_s) + 10
    if comm.rank == 0:
        print(f"minwa: train.timeout_s={float(timeout_s):g}: a rank that keeps the others waiting longer than "
              "this ends the job, named", file=sys.stderr, flush=True)
    return watchdog
