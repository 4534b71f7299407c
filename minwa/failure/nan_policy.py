"""What a NaN or infinite loss does: stop the run, or skip the step -- a bounded number of times in a row."""
import math

from .. import backend
from ..errors import ConfigError, MinwaError


class NonFiniteLoss(MinwaError, FloatingPointError):
    """The loss became NaN or infinite."""


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
    if comm is not None:
        from .abort import mpi_comm  # noqa: PLC0415
        from .watchdog import waiting_in  # noqa: PLC0415

        mpi = mpi_comm(comm)
        with waiting_in(f"the loss check of step {step} (allgather)"):
            flags = mpi.allgather(None if bad_here is None else repr(bad_here)) if mpi.Get_size() > 1 else None
    else:
        flags = None
    flags = flags or [None if bad_here is None else repr(bad_here)]
    bad = [(r, v) for r, v in enumerate(flags) if v is not None]
    if not bad:
        return True
    where = ", ".join(f"rank {r}: {v}" for r, v in bad) if len(flags) > 1 else f"{bad[0][1]}"
    if policy == "stop":
        raise NonFiniteLoss(f"step {step}: the loss is not finite ({where}); stopping. Lower solver.base_lr, "
                            "check the data, or set train.on_nan=skip to skip such steps")
    return False


class NanPolicy:
    """``train.on_nan`` with ``train.max_consecutive_nan_skips``: skipping never goes on forever.

    ``check(loss, step, comm)`` is True for a step to apply and False for one to skip;
    after ``max_skips`` skipped steps in a row it raises NonFiniteLoss (a diverged net
    does not come back by skipping).
    """

    def __init__(self, policy="stop", max_skips=5):
        if policy not in ("stop", "skip"):
            raise ConfigError(f"train.on_nan {policy!r}: expected 'stop' or 'skip'")
        if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 1:
            raise ConfigError(f"train.max_consecutive_nan_skips: expected a whole number >= 1, got {max_skips!r}")
        self.policy, self.max_skips = policy, max_skips
        self.in_a_row = 0
        self.skipped = 0

    def check(self, loss, step, comm=None):
        if check_finite(loss, step, self.policy, comm):
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.skipped += 1
        if self.in_a_row >= self.max_skips:
            raise NonFiniteLoss(f"step {step}: the loss was not finite for {self.in_a_row} steps in a row "
                                f"(train.max_consecutive_nan_skips={self.max_skips}); stopping: the net has "
                                "diverged. Lower solver.base_lr or check the data")
        return False
