"""Fixtures for the communication tests: ``mpirun`` starts a test file's worker under mpiexec."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest


def run_mpi(n, script, args, timeout=120, expect_ok=True):
    """Run ``python script *args`` on ``n`` ranks; kill the whole job after ``timeout`` seconds."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec is not installed")
    command = [mpiexec, "-n", str(n), sys.executable, str(script), *map(str, args)]
    env = dict(os.environ, MINWA_DEVICE="cpu", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mpiexec -n {n} {script} {args} did not finish in {timeout} s (hang?)\n{out}\n{err}")
    if expect_ok and process.returncode != 0:
        pytest.fail(f"mpiexec -n {n} {script} {args} exited with {process.returncode}\n{out}\n{err}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def read_ranks(directory, n):
    """The JSON each rank wrote as rank<k>.json."""
    results = []
    for rank in range(n):
        with open(os.path.join(directory, f"rank{rank}.json"), encoding="utf-8") as f:
            results.append(json.load(f))
    return results


@pytest.fixture
def mpirun():
    return run_mpi


@pytest.fixture(name="read_ranks")
def read_ranks_fixture():
    return read_ranks
