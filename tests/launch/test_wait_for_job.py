"""wait_for_job: once a rank has reported a failure, a stopped rank cannot keep minwa-launch waiting."""
import signal
import subprocess
import sys
import time
import types

from minwa.launch.mpirun import wait_for_job

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def test_a_stopped_rank_is_killed_after_the_grace_and_then_mpiexec():
    rank = subprocess.Popen(SLEEPER)
    mpiexec = subprocess.Popen(SLEEPER)  # stands for an mpiexec that never ends by itself
    try:
        rank.send_signal(signal.SIGSTOP)
        monitor = types.SimpleNamespace(reports=[(0, "watchdog: rank 1 is not responding")], ranks={rank.pid: 1})
        start = time.monotonic()
        code = wait_for_job(mpiexec, monitor, grace_s=0.5, poll_s=0.1)
        assert time.monotonic() - start < 10
        assert rank.wait(timeout=5) == -signal.SIGKILL
        assert code == -signal.SIGKILL
    finally:
        for proc in (rank, mpiexec):
            proc.kill()
            proc.wait()


def test_without_a_report_the_job_is_left_to_end_by_itself():
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    monitor = types.SimpleNamespace(reports=[], ranks={})
    assert wait_for_job(job, monitor, grace_s=0.1, poll_s=0.1) == 0
