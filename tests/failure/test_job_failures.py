"""`minwa train` under mpiexec and minwa-launch: any failure of any rank ends the job quickly, naming the rank.

Each job is bounded by a timeout (a hang fails the test); "quickly" is LIMIT seconds
from the failure to the end of the whole job, at 2 and 4 ranks.
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
LIMIT = 30
WAYS = [(n, launcher) for launcher in ("mpiexec", "minwa-launch") for n in (2, 4)]
STARTED = r"train\.timeout_s=\S+: a rank that keeps"


def _ended_soon(job, since):
    code, out, _ = job.wait(timeout=LIMIT + 30)
    assert time.monotonic() - since < LIMIT, f"the job took {time.monotonic() - since:.0f} s to end:\n{out}"
    assert code != 0, out
    return out


@pytest.mark.parametrize("n,launcher", WAYS)
def test_an_error_on_one_rank_ends_the_job_naming_it(jobs, tiny_job, tmp_path, n, launcher):
    """Rank 0 cannot write its checkpoint while the others wait for it in the barrier after it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("a file where the checkpoint folder should be")
    job = jobs.Job(jobs.minwa("train", tiny_job(), "--run-dir", run_dir, "--max-iter", 3, n=n, launcher=launcher))
    out = _ended_soon(job, job.started)
    assert len(re.findall(r"minwa: rank 0 \(pid \d+ on \S+\) failed: FileExistsError", out)) == 1, out
    if launcher == "minwa-launch":
        assert re.search(r"minwa-launch: the job failed: rank 0 \(pid \d+ on \S+\) failed: FileExistsError", out), out


@pytest.mark.parametrize("n,launcher", WAYS)
def test_a_stopped_rank_is_named_within_the_timeout(jobs, tiny_job, n, launcher):
    """kill -STOP one rank mid-run: the others' watchdog names it after train.timeout_s and ends the job."""
    job = jobs.Job(jobs.minwa("train", tiny_job(**{"solver.max_iter": 100000, "solver.snapshot": 0}),
                              "--run-dir", job_dir(tiny_job), "--set", "train.timeout_s=3", n=n, launcher=launcher))
    try:
        job.wait_for(STARTED)
        victim = n - 1
        pid = job.rank_pids(n)[victim]
        time.sleep(1.0)
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        out = _ended_soon(job, stopped)
        assert _gone(pid), f"the stopped rank (pid {pid}) outlived its job"
    finally:
        job.kill()
    assert re.search(rf"minwa: watchdog: rank \d has waited \d+ s \(train.timeout_s=3\) at step \d+ in .*"
                     rf"rank {victim} \(pid {pid} on \S+\) is not responding", out), out
    assert out.count("minwa: watchdog:") == 1, out


def _gone(pid):
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def job_dir(tiny_job):
    return os.path.join(os.path.dirname(tiny_job()), "run")


@pytest.mark.parametrize("n", [2, 4])
def test_a_killed_rank_ends_the_job_and_is_never_named_with_another_pid(jobs, tiny_job, n):
    """Plain mpiexec: hydra kills the other ranks within milliseconds and names *some* pid of the job.

    The survivors' watchdogs name the killed rank when they get to say it before hydra
    kills them (best effort: often they do not); what they say must be the right pid.
    minwa-launch names it reliably (test_failure.py: a rank killed mid run).
    """
    job = jobs.Job(jobs.minwa("train", tiny_job(**{"solver.max_iter": 100000, "solver.snapshot": 0}),
                              "--run-dir", job_dir(tiny_job), n=n))
    try:
        job.wait_for(STARTED)
        victim = n - 1
        pid = job.rank_pids(n)[victim]
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)
        out = _ended_soon(job, time.monotonic())
    finally:
        job.kill()
    named = re.findall(r"minwa: rank (\d+) \(pid (\d+) on \S+\) has died", out)
    assert all((int(r), int(p)) == (victim, pid) for r, p in named), (named, out)


def test_killing_minwa_launch_ends_mpiexec_and_every_rank(jobs, tiny_job):
    job = jobs.Job(jobs.minwa("train", tiny_job(**{"solver.max_iter": 100000, "solver.snapshot": 0}),
                              "--run-dir", job_dir(tiny_job), n=2, launcher="minwa-launch"))
    try:
        job.wait_for(STARTED)
        ranks = job.rank_pids(2)
        os.kill(job.proc.pid, signal.SIGKILL)
        job.proc.wait(timeout=10)
        killed = time.monotonic()
        while job.processes() and time.monotonic() - killed < LIMIT:
            time.sleep(0.2)
        left = job.processes()
    finally:
        job.kill()
    assert not left, f"still running {LIMIT} s after minwa-launch was killed: {sorted(left)} (ranks {ranks})"


@pytest.mark.parametrize("launcher", ["mpiexec", "minwa-launch"])
def test_a_config_error_every_rank_meets_is_printed_once(jobs, tiny_job, launcher):
    code, out, seconds = jobs.run_job(jobs.minwa("train", tiny_job(), "--set", "train.on_nan=sometimes", n=4,
                                                 launcher=launcher), timeout=LIMIT + 30)
    assert code != 0 and seconds < LIMIT, out
    expected = 2 if launcher == "minwa-launch" else 1  # minwa-launch repeats the cause in its own last line
    assert out.count("train.on_nan: expected one of stop, skip, got 'sometimes'") == expected, out


SLOW_FS = """
    import os, sys, time
    real_fsync, slowed = os.fsync, []

    def slow_fsync(fd):  # the first fsync of this rank takes SECONDS, like a big write on a slow shared file system
        if not slowed:
            slowed.append(fd)
            print(f"minwa-test: fsync slowed by {sys.argv[1]} s", flush=True)
            time.sleep(float(sys.argv[1]))
        real_fsync(fd)

    os.fsync = slow_fsync
    from minwa.launch.cli import main
    sys.exit(main(sys.argv[2:]))
"""


def test_a_checkpoint_write_slower_than_the_timeout_does_not_end_the_job(jobs, tiny_job, tmp_path):
    """Rank 0's write of checkpoint step 20 takes 15 s: past train.timeout_s=2 and past the 13 s bound on a transfer."""
    driver = tmp_path / "slow_fs.py"
    driver.write_text(textwrap.dedent(SLOW_FS))
    run_dir = tmp_path / "run"
    cmd = jobs.command([sys.executable, str(driver), "15", "train", tiny_job(**{"solver.max_iter": 30}),
                        "--run-dir", str(run_dir), "--set", "train.timeout_s=2",
                        "--set", "train.checkpoint_timeout_s=120"], 2)
    code, out, _ = jobs.run_job(cmd, timeout=120)
    assert code == 0, out
    assert "train.checkpoint_timeout_s=120" in out and out.count("minwa-test: fsync slowed by 15 s") == 1, out
    assert "watchdog:" not in out, out
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["step_00000020.h5", "step_00000030.h5"]
