"""Failure handling: one failing or stuck rank ends the whole MPI job with one message naming it, never a hang.

* ``abort``: ``install_abort_on_error``, ``abort_on_error``, ``abort`` -- an error on
  any rank prints ``minwa: rank R (pid P on HOST) failed: <cause>`` once and ends every rank;
* ``lifeline``: the socket to minwa-launch (who died first, the cause, the launcher's death);
* ``watchdog``: ``Watchdog`` -- a rank that does not arrive at a collective is named; ``waiting_in``
  marks a wait, ``busy_in`` a known long operation (a checkpoint write) that is waited for longer;
* ``nan_policy``: ``check_finite``, ``NanPolicy`` -- a NaN loss stops (or skips, a bounded number of times);
* ``stop_request``: ``install_stop_handler`` -- SIGINT/SIGTERM checkpoint and leave cleanly.
"""
from .abort import abort, abort_on_error, install_abort_on_error, report_and_abort, uninstall_abort_on_error
from .lifeline import LIFELINE, RANK_DIR_ENV, register_rank
from .nan_policy import NanPolicy, NonFiniteLoss, check_finite
from .stop_request import StopRequest, install_stop_handler
from .watchdog import Watchdog

__all__ = ["LIFELINE", "RANK_DIR_ENV", "NanPolicy", "NonFiniteLoss", "StopRequest", "Watchdog", "abort",
           "abort_on_error", "check_finite", "install_abort_on_error", "install_stop_handler", "register_rank",
           "report_and_abort", "uninstall_abort_on_error"]
