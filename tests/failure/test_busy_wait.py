"""A rank busy in a known long operation (``busy_in``, e.g. writing a checkpoint) is waited for longer, never forever.

Real jobs of 2 ranks under mpiexec, each bounded by a timeout: rank 0 sits in
``busy_in("writing checkpoint step 2")`` while rank 1 waits for it in a barrier, with
``train.timeout_s`` 1 s. Busy for longer than that but within the longer bound, the job
ends cleanly; busy past the longer bound, or stopped (SIGSTOP) while busy, rank 0 is named.
"""
import os
import re
import shutil
import signal
import sys
import textwrap
import time

import pytest

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec")]
LIMIT = 60  # seconds a job may take to end once it should

BUSY = """
    import os, sys, time
    from mpi4py import MPI
    from minwa.failure import Watchdog, install_abort_on_error
    from minwa.failure.watchdog import busy_in, waiting_in
    comm = MPI.COMM_WORLD
    install_abort_on_error(comm)
    busy_s, busy_timeout = float(sys.argv[1]), float(sys.argv[2])
    with Watchdog(comm, timeout=1, poll=0.1, busy_timeout=busy_timeout) as watchdog:
        watchdog.at_step(2)
        if comm.rank == 0:
            with busy_in("writing checkpoint step 2"):
                print(f"rank 0 pid {os.getpid()} is busy", flush=True)
                time.sleep(busy_s)
        with waiting_in("the barrier after rank 0 writes checkpoint step 2"):
            comm.Barrier()
    print(f"rank {comm.rank} finished; watchdog fired: {watchdog.fired}", flush=True)
"""


def _busy_job(jobs, tmp_path, busy_s, busy_timeout):
    script = tmp_path / "busy.py"
    script.write_text(textwrap.dedent(BUSY))
    return jobs.Job(jobs.command([sys.executable, str(script), str(busy_s), str(busy_timeout)], 2))


def test_a_busy_rank_within_the_longer_bound_is_waited_for(jobs, tmp_path):
    """Busy 4 s against timeout_s=1: without the longer bound rank 1's watchdog ends the job after 1 s."""
    job = _busy_job(jobs, tmp_path, busy_s=4, busy_timeout=60)
    try:
        code, out, _ = job.wait(timeout=LIMIT + 30)
    finally:
        job.kill()
    assert code == 0, out
    assert out.count("finished; watchdog fired: None") == 2, out


def test_a_rank_busy_past_the_longer_bound_is_named_with_its_operation(jobs, tmp_path):
    job = _busy_job(jobs, tmp_path, busy_s=600, busy_timeout=4)
    try:
        code, out, seconds = job.wait(timeout=LIMIT + 30)
    finally:
        job.kill()
    assert code != 0 and seconds < LIMIT, out
    found = re.search(r"minwa: watchdog: rank 1 has waited (\d+) s \(train\.timeout_s=1, and "
                      r"train\.checkpoint_timeout_s=4 for a rank busy in a long operation\) at step 2 in the barrier "
                      r"after rank 0 writes checkpoint step 2; rank 0 \(pid \d+ on \S+\) is still writing checkpoint "
                      r"step 2 after \d+ s, past train\.checkpoint_timeout_s=4", out)
    assert found, out
    assert int(found.group(1)) >= 4, out  # the longer bound applied, not timeout_s
    assert out.count("minwa: watchdog:") == 1, out


def test_a_rank_stopped_while_busy_is_named_within_the_ordinary_bound(jobs, tmp_path):
    """SIGSTOP inside busy_in: its heartbeats stop, so the longer bound (300 s here) does not apply."""
    job = _busy_job(jobs, tmp_path, busy_s=600, busy_timeout=300)
    try:
        job.wait_for(r"rank 0 pid \d+ is busy")
        pid = int(re.search(r"rank 0 pid (\d+) is busy", job.output).group(1))
        time.sleep(0.5)
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        code, out, _ = job.wait(timeout=LIMIT + 30)
        seconds = time.monotonic() - stopped
    finally:
        job.kill()
    # timeout_s (1) + the silence threshold (1 s here), with a generous margin for a loaded machine
    assert code != 0 and seconds < 30, (seconds, out)
    assert re.search(rf"minwa: watchdog: rank 1 has waited \d+ s \(train\.timeout_s=1\) at step 2 in the barrier "
                     rf"after rank 0 writes checkpoint step 2; rank 0 \(pid {pid} on \S+\) is not responding \(last "
                     rf"heard \d+ s ago at step 2 while writing checkpoint step 2\)", out), out
