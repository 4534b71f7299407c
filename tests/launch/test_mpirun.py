"""minwa-launch: the command for each MPI flavour, failure explanations, and a real 2-rank run."""
import re
import shutil
import subprocess
import sys

import pytest

from minwa.errors import ConfigError
from minwa.launch import mpirun

HYDRA_VERSION = """HYDRA build details:
    Version:                                 5.0.2
    Process Manager:                         pmi
"""
OPENMPI_VERSION = "mpirun (Open MPI) 4.1.2\n\nReport bugs to http://www.open-mpi.org/community/help/\n"
PROGRAM = ["minwa", "train", "configs/cifar10_full.yaml"]


@pytest.mark.parametrize("text, flavour", [
    (HYDRA_VERSION, "mpich"),
    ("Intel(R) MPI Library for Linux* OS, Version 2021.6 Build 20220227", "mpich"),
    (OPENMPI_VERSION, "openmpi"),
    ("mpirun (Open MPI) 5.0.0\n", "openmpi"),
])
def test_flavour_from_version_text(text, flavour):
    assert mpirun.flavour_of(text) == flavour


def test_unknown_flavour_says_how_to_choose():
    with pytest.raises(ConfigError, match="--flavour mpich or --flavour openmpi"):
        mpirun.flavour_of("some launcher 1.0")


def test_mpich_command():
    cmd = mpirun.build_command("mpich", 8, PROGRAM, hostfile="hosts", gpus_per_node=4, env={"A": "1"})
    assert cmd == ["mpiexec", "-n", "8", "-f", "hosts", "-ppn", "4", "-genv", "A", "1",
                   "-genv", "MINWA_GPUS_PER_NODE", "4", *PROGRAM]


def test_openmpi_command():
    cmd = mpirun.build_command("openmpi", 8, PROGRAM, hostfile="hosts", gpus_per_node=4, env={"A": "1"},
                               mpiexec="/opt/ompi/bin/mpirun", as_root=True)
    assert cmd == ["/opt/ompi/bin/mpirun", "-n", "8", "--allow-run-as-root", "--hostfile", "hosts",
                   "--map-by", "ppr:4:node", "-x", "A=1", "-x", "MINWA_GPUS_PER_NODE=4", *PROGRAM]


def test_plain_commands_and_extra_arguments():
    assert mpirun.build_command("mpich", 2, ["python", "x.py"]) == ["mpiexec", "-n", "2", "python", "x.py"]
    assert mpirun.build_command("openmpi", 2, ["p"], extra=["--bind-to", "core"]) == \
        ["mpiexec", "-n", "2", "--bind-to", "core", "p"]


def test_srun_command():
    cmd = mpirun.build_command("srun", 16, PROGRAM, gpus_per_node=4, env={"A": "1"})
    assert cmd == ["srun", "-n", "16", "--ntasks-per-node=4", "--export=ALL,A=1,MINWA_GPUS_PER_NODE=4", *PROGRAM]
    with pytest.raises(ConfigError, match="hostfile does not apply to srun"):
        mpirun.build_command("srun", 2, PROGRAM, hostfile="hosts")


@pytest.mark.parametrize("kwargs, message", [
    ({"flavour": "lam", "n": 2, "program": PROGRAM}, "flavour 'lam'"),
    ({"flavour": "mpich", "n": 0, "program": PROGRAM}, "-n must be >= 1"),
    ({"flavour": "mpich", "n": 2, "program": []}, "no program"),
    ({"flavour": "mpich", "n": 2, "program": PROGRAM, "gpus_per_node": 0}, "--gpus-per-node"),
])
def test_bad_commands(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        mpirun.build_command(**kwargs)


def test_arguments_split_at_double_dash():
    args = mpirun.parse_args(["-n", "4", "--hostfile", "h", "--env", "X=1", "--", "minwa", "train", "-n", "c.yaml"])
    assert (args.n, args.hostfile, args.env) == (4, "h", ["X=1"])
    assert args.program == ["minwa", "train", "-n", "c.yaml"]


@pytest.mark.parametrize("flavour, expected", [("openmpi", "-x X=1"), ("mpich", "-genv X 1"), ("srun", "ALL,X=1")])
def test_dry_run_prints_the_command(capsys, flavour, expected):
    code = mpirun.main(["-n", "3", "--dry-run", "--flavour", flavour, "--env", "X=1", "--", "minwa", "train", "c.yaml"])
    assert code == 0
    err = capsys.readouterr().err
    assert err.startswith("minwa-launch: ") and expected in err and err.rstrip().endswith("minwa train c.yaml")


def test_bad_options_exit_with_2(capsys):
    assert mpirun.main(["-n", "2", "--flavour", "mpich", "--env", "novalue", "--", "p"]) == 2
    assert "--env 'novalue'" in capsys.readouterr().err
    assert mpirun.main(["-n", "2", "--mpiexec", "no-such-mpiexec-here", "--", "p"]) == 2
    assert "is not on PATH" in capsys.readouterr().err


# -- explaining a failed job ---------------------------------------------------------------------

HYDRA_BANNER = """
===================================================================================
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   PID 6669 RUNNING AT node7
=   EXIT CODE: 9
=   CLEANING UP REMAINING PROCESSES
=   YOU CAN IGNORE THE BELOW CLEANUP MESSAGES
===================================================================================
YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)
"""


def test_explain_uses_the_rank_seen_to_end_first():
    text = mpirun.explain_failure(HYDRA_BANNER, {6668: 0, 6669: 1, 6670: 2}, first=[6670])
    assert text.startswith("rank 2 (pid 6670 on node7) died first")
    assert "Killed (signal 9, SIGKILL)" in text
    both = mpirun.explain_failure(HYDRA_BANNER, {6668: 0, 6669: 1, 6670: 2}, first=[6670, 6668])
    assert both.startswith("rank 0 (pid 6668) or rank 2 (pid 6670) on node7 died first (they ended within")
    guess = mpirun.explain_failure(HYDRA_BANNER, {6670: 2}, first=[6670], certain=False)
    assert guess.startswith("rank 2 (pid 6670 on node7) seems to have died first") and "a guess" in guess


def test_explain_falls_back_to_hydras_process_id():
    text = mpirun.explain_failure(HYDRA_BANNER, {6669: 1})
    assert text.startswith("rank 1 (pid 6669 on node7) ended with Killed (signal 9, SIGKILL)")
    assert "a rank (pid 6669" in mpirun.explain_failure(HYDRA_BANNER, {})


def test_explain_prefers_the_ranks_own_message_and_open_mpis_report():
    own = "Traceback ...\nminwa: rank 3 (pid 12 on n1) failed: RuntimeError: boom\n" + HYDRA_BANNER
    assert mpirun.explain_failure(own, {}) == "the job failed: rank 3 (pid 12 on n1) failed: RuntimeError: boom"
    ompi = "mpirun noticed that process rank 5 with PID 4242 on node n3 exited on signal 9 (Killed)."
    assert mpirun.explain_failure(ompi, {}).startswith("rank 5 (pid 4242 on n3) was killed by signal 9 (SIGKILL)")
    assert mpirun.explain_failure("nothing useful", {}) is None


# -- real runs ---------------------------------------------------------------------------------

needs_mpiexec = pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec is not on PATH")


@needs_mpiexec
def test_detects_the_installed_mpi():
    assert mpirun.detect_flavour() in ("mpich", "openmpi")


@pytest.mark.mpi
@needs_mpiexec
def test_real_two_rank_run():
    code = ("import sys; from mpi4py import MPI; c = MPI.COMM_WORLD; total = c.allreduce(c.rank); "
            "sys.stdout.write(f'rank {c.rank} of {c.size} sum {total}\\n')")
    done = subprocess.run([sys.executable, "-m", "minwa.launch.mpirun", "-n", "2", "--", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rank 0 of 2 sum 1" in done.stdout and "rank 1 of 2 sum 1" in done.stdout
    assert done.stderr.startswith("minwa-launch: ") and "-n 2" in done.stderr.splitlines()[0]


@pytest.mark.mpi
@needs_mpiexec
def test_exit_code_of_the_job_is_returned():
    code = "import sys; from mpi4py import MPI; sys.exit(0 if MPI.COMM_WORLD.rank == 0 else 7)"
    done = subprocess.run([sys.executable, "-m", "minwa.launch.mpirun", "-n", "2", "--", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "(exit code 7)" in done.stderr


@pytest.mark.mpi
@needs_mpiexec
def test_sigterm_to_the_launcher_reaches_every_rank(tmp_path):
    script = tmp_path / "wait.py"
    script.write_text(
        "import time\n"
        "from mpi4py import MPI\n"
        "from minwa.failure import install_stop_handler\n"
        "comm = MPI.COMM_WORLD\n"
        "stop = install_stop_handler(comm)\n"
        "print(f'ready {comm.rank}', flush=True)\n"
        "for step in range(3000):\n"
        "    time.sleep(0.01)\n"
        "    if stop():\n"
        "        print(f'rank {comm.rank} checkpoints and stops at step {step}', flush=True)\n"
        "        break\n")
    proc = subprocess.Popen([sys.executable, "-m", "minwa.launch.mpirun", "-n", "2", "--", sys.executable,
                             str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        while seen.count("ready") < 2:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        proc.terminate()
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = seen + rest
    assert proc.returncode == 0, out + err
    assert err.count("SIGTERM received") == 2
    assert sorted(re.findall(r"rank (\d) checkpoints and stops at step", out)) == ["0", "1"], out
