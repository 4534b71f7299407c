"""StopRequest: SIGINT/SIGTERM set a flag that the training loop polls to write a checkpoint and leave cleanly."""
import signal

from ._output import say


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
        from .abort import mpi_comm  # noqa: PLC0415

        mpi = mpi_comm(self.comm)
        if mpi.Get_size() == 1:
            return self.requested
        from .watchdog import waiting_in  # noqa: PLC0415

        with waiting_in("the stop-request check (allgather)"):
            return any(mpi.allgather(self.requested))

    def __call__(self):
        return self.agreed()

    def _handle(self, signum, frame):
        self.count += 1
        name = signal.Signals(signum).name
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt(f"second {name}")
        self.signum = signum
        say(f"minwa: {name} received: stopping after this step and writing a checkpoint"
            + (" (press Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""), drain_s=0)

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
