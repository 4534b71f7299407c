"""What many tests share: a tiny training job, and runners of whole jobs (mpiexec / minwa-launch) with a timeout.

A job that runs past its timeout is killed with its whole process group and the
test fails, so a hang is a failure, never a stuck CI run.
"""
import copy
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import yaml

needs_mpiexec = pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec is not on PATH")

#: a job that trains in about a second: 16x16 shapes, one conv, one pool, one inner product
TINY_JOB = {
    "name": "tiny",
    "model": {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [16, 3, 16, 16]}, {"dim": [16]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 8, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "msra"}}},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1",
         "inner_product_param": {"num_output": 10, "weight_filler": {"type": "xavier"}}},
        {"name": "accuracy", "type": "Accuracy", "bottom": ["ip1", "label"], "top": "accuracy",
         "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip1", "label"], "top": "loss"},
    ]},
    "solver": {"base_lr": 0.02, "momentum": 0.9, "weight_decay": 0.0005, "max_iter": 40, "test_interval": 0,
               "display": 10, "snapshot": 20, "random_seed": 3},
    "data": {"source": "shapes", "image_size": 16, "train_count": 320, "test_count": 64, "batch_size": 16,
             "test_batch_size": 32, "mean": "channel", "scale": 0.0125, "prefetch": 1},
    "train": {"progress": False},
}

#: the environment of every job a test starts: CPU, one BLAS thread per rank
JOB_ENV = {"MINWA_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MINWA_THREADS": "1"}


def write_job(path, job=None, **changes):
    """Write TINY_JOB (or ``job``) as YAML at ``path``, with ``changes`` as dotted keys ('solver.max_iter': 5)."""
    raw = copy.deepcopy(job or TINY_JOB)
    for key, value in changes.items():
        node, parts = raw, key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f)
    return str(path)


def command(program, n=1, launcher="mpiexec", mpi_args=()):
    """``program`` (a list) on ``n`` ranks through ``launcher``: 'mpiexec', 'minwa-launch', or None for one process."""
    if launcher is None or (n == 1 and launcher == "mpiexec" and not mpi_args):
        return list(program)
    if launcher == "minwa-launch":
        extra = [f"--mpi-arg={a}" for a in mpi_args]
        return [sys.executable, "-m", "minwa.launch.mpirun", "-n", str(n), *extra, "--", *program]
    return ["mpiexec", *mpi_args, "-n", str(n), *program]


def minwa(*args, n=1, launcher="mpiexec", mpi_args=()):
    """The ``minwa ARGS`` command line (this interpreter's minwa) on ``n`` ranks."""
    return command([sys.executable, "-m", "minwa.launch.cli", *map(str, args)], n, launcher, mpi_args)


class Job:
    """A whole job started in the background; ``wait()`` bounds it, ``rank_pids()`` finds its ranks in /proc."""

    def __init__(self, cmd, env=None, cwd=None):
        self.marker = uuid.uuid4().hex
        full_env = dict(os.environ, **JOB_ENV, MINWA_TEST_JOB=self.marker, **(env or {}))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=full_env, cwd=cwd, start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def output(self):
        return "".join(list(self.lines))

    def wait_for(self, pattern, timeout=60):
        """Block until the output matches ``pattern`` (a regex); fails the test if the job ends or time runs out."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                if re.search(pattern, self.output):
                    break
                pytest.fail(f"the job ended before printing {pattern!r}:\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {pattern!r} within {timeout} s:\n{self.output[-3000:]}")
            time.sleep(0.05)

    def processes(self):
        """{pid: environment entries} of every live process carrying this job's marker (Linux /proc)."""
        needle = f"MINWA_TEST_JOB={self.marker}".encode()
        found = {}
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    entries = f.read().split(b"\0")
                with open(f"/proc/{name}/stat", "rb") as f:
                    zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
            except (OSError, IndexError):
                continue
            if needle in entries and not zombie:
                found[int(name)] = entries
        return found

    def rank_pids(self, n, timeout=60):
        """{rank: pid} of this job's ranks on this host (by its marker in /proc/PID/environ)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for pid, entries in self.processes().items():
                rank = [e for e in entries if e.startswith((b"PMI_RANK=", b"OMPI_COMM_WORLD_RANK="))]
                if rank:
                    found[int(rank[0].split(b"=")[1])] = pid
            if len(found) >= n:
                return found
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                pytest.fail(f"found ranks {found} of {n}:\n{self.output[-3000:]}")
            time.sleep(0.1)

    def wait(self, timeout=90):
        """(exit code, output, seconds since start); kills the job and fails the test after ``timeout``."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the job did not end within {timeout} s (a hang):\n{self.output[-3000:]}")
        self._reader.join(timeout=10)
        return self.proc.returncode, self.output, time.monotonic() - self.started

    def kill(self):
        """SIGKILL the job's process group (and any rank left, e.g. a stopped one)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self.processes():  # minwa-launch starts mpiexec in a session of its own
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()


def run_job(cmd, timeout=90, env=None, cwd=None):
    """Run a whole job to its end: (exit code, stdout+stderr, seconds); a hang fails the test."""
    return Job(cmd, env=env, cwd=cwd).wait(timeout)


@pytest.fixture
def tiny_job(tmp_path):
    """``tiny_job(**changes)`` -> the path of a TINY_JOB YAML in tmp_path (a new file per call)."""
    count = [0]

    def make(**changes):
        count[0] += 1
        return write_job(tmp_path / f"job{count[0]}.yaml", **changes)

    return make


@pytest.fixture
def jobs():
    """This module: ``jobs.minwa(...)``, ``jobs.Job(cmd)``, ``jobs.run_job(cmd)``, ``jobs.write_job(...)``."""
    return sys.modules[__name__]


def run_mpi(n, script, args, timeout=120, expect_ok=True):
    """Run ``python script *args`` on ``n`` ranks (stdout and stderr apart); kill the whole job after ``timeout``."""
    if shutil.which("mpiexec") is None:
        pytest.skip("mpiexec is not installed")
    cmd = command([sys.executable, str(script), *map(str, args)], n)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, **JOB_ENV), start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"mpiexec -n {n} {script} {args} did not finish in {timeout} s (hang?)\n{out}\n{err}")
    if expect_ok and process.returncode != 0:
        pytest.fail(f"mpiexec -n {n} {script} {args} exited with {process.returncode}\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, process.returncode, out, err)


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


def _self_signed(cert, key):
    """A certificate for 127.0.0.1 from the cryptography package, else the openssl command, else skip."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is here")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        return
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


@pytest.fixture
def tls_files(tmp_path):
    """(certificate, key) paths: a self-signed TLS certificate for 127.0.0.1, for pipeline tests."""
    cert, key = tmp_path / "tls-cert.pem", tmp_path / "tls-key.pem"
    _self_signed(cert, key)
    return cert, key
