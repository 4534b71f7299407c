"""``minwa pipeline split|serve|run|plan`` as a user runs them: two processes on 127.0.0.1, SIGTERM, TLS."""
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import numpy
import pytest
import yaml

from minwa.checkpoint import save_checkpoint
from minwa.datasets import make_loader
from minwa.net import Net

pytestmark = pytest.mark.timeout(180)
SECRET = "cli-test-secret-0123456789"
MODEL = {"name": "tiny", "layers": [
    {"name": "in", "type": "Input", "top": ["data", "label"],
     "input_param": {"shape": [{"dim": [4, 3, 8, 8]}, {"dim": [4]}]}},
    {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
     "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "xavier"}}},
    {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
     "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
    {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
    {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1",
     "inner_product_param": {"num_output": 10, "weight_filler": {"type": "xavier"}}},
    {"name": "accuracy", "type": "Accuracy", "bottom": ["ip1", "label"], "top": "accuracy",
     "include": {"phase": "TEST"}},
    {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip1", "label"], "top": "loss"}]}
DATA = {"source": "shapes", "image_size": 8, "train_count": 40, "test_count": 20, "batch_size": 4,
        "test_batch_size": 4, "mean": "none", "prefetch": 0}


def _minwa(*args):
    return [sys.executable, "-m", "minwa.launch.cli", *map(str, args)]


def _env():
    return dict(os.environ, MINWA_PIPELINE_SECRET=SECRET, MINWA_DEVICE="cpu", OMP_NUM_THREADS="1")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "model": MODEL, "data": DATA}))
    weights = tmp_path / "weights.h5"
    save_checkpoint(str(weights), Net(MODEL, phase="TEST", seed=3))
    port = _free_port()
    out = subprocess.run(_minwa("pipeline", "split", path, "--at", "pool1", "--port", port, "--out", tmp_path / "s"),
                         capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 0, out.stderr
    assert "pair 0: blob 'pool1' 4x4x4x4" in out.stdout and "256 as uint8" in out.stdout
    return tmp_path, weights, port


class Server:
    """``minwa pipeline serve`` in its own process group; stderr lines read by a thread."""

    def __init__(self, *args):
        self.process = subprocess.Popen(_minwa("pipeline", "serve", *args), stderr=subprocess.PIPE, text=True,
                                        env=_env(), start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, text, timeout=60):
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"server did not print {text!r} within {timeout} s; saw {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _unsplit_accuracy(weights):
    net = Net(MODEL, phase="TEST")
    from minwa.checkpoint import load_checkpoint

    load_checkpoint(str(weights), net)
    loader = make_loader(DATA, "test")
    correct = total = 0
    for x, y in loader.batches(0, loader.steps_per_epoch):
        net.forward({"data": x, "label": y})
        correct += int((net.blobs["ip1"].argmax(1) == y).sum())
        total += len(y)
    return correct / total


def _run_client(directory, weights, *extra):
    out = subprocess.run(_minwa("pipeline", "run", directory / "s" / "client.yaml", "--weights", weights,
                                "--json", directory / "run.json", *extra),
                         capture_output=True, text=True, timeout=90, env=_env())
    assert out.returncode == 0, out.stderr
    with open(directory / "run.json", encoding="utf-8") as f:
        return out.stdout, json.load(f)


def test_serve_and_run_in_two_processes_then_sigterm(job):
    directory, weights, port = job
    server = Server(directory / "s" / "cloud.yaml", "--weights", weights)
    try:
        assert f"listening on 127.0.0.1:{port}" in server.wait_for("listening on")
        stdout, stats = _run_client(directory, weights, "--dtype", "float32", "--depth", "2")
        assert "accuracy" in stdout and "bytes per batch" in stdout and "per-stage medians" in stdout
        assert stats["batches"] == 5 and stats["images"] == 20
        assert stats["accuracy"] == pytest.approx(_unsplit_accuracy(weights), abs=1e-12)
        assert stats["payload_bytes_per_batch"] == 4 * 4 * 4 * 4 * 4
        _, stats = _run_client(directory, weights, "--dtype", "uint8")
        assert stats["payload_bytes_per_batch"] == 4 * 4 * 4 * 4
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
        assert "stopped after 10 batches" in server.wait_for("stopped")
    finally:
        server.kill()


def test_serve_refuses_to_start_without_a_secret(job):
    directory, weights, _ = job
    env = {k: v for k, v in _env().items() if k != "MINWA_PIPELINE_SECRET"}
    out = subprocess.run(_minwa("pipeline", "serve", directory / "s" / "cloud.yaml", "--weights", weights),
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1 and "no shared secret" in out.stderr


def test_split_errors_are_one_line(job):
    directory, _, _ = job
    out = subprocess.run(_minwa("pipeline", "split", directory / "job.yaml", "--at", "nope", "--out", directory / "x"),
                         capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 1 and "unknown blob 'nope'" in out.stderr and "Traceback" not in out.stderr


def test_plan_names_the_best_cut(job):
    directory, _, _ = job
    out = subprocess.run(_minwa("pipeline", "plan", directory / "job.yaml", "--client-flops", "1e6",
                                "--cloud-flops", "1e12", "--bandwidth", "1gbit"),
                         capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 0, out.stderr
    assert "best by latency: data (cloud-only)" in out.stdout  # a very slow client: send the images


def test_tls(job, tls_files):
    directory, weights, port = job
    cert, key = tls_files
    server = Server(directory / "s" / "cloud.yaml", "--weights", weights, "--tls-cert", cert, "--tls-key", key)
    try:
        assert "TLS" in server.wait_for("listening on")
        _, stats = _run_client(directory, weights, "--dtype", "float32", "--tls-ca", cert)
        assert stats["accuracy"] == pytest.approx(_unsplit_accuracy(weights), abs=1e-12)
        # a plain-TCP client cannot talk to a TLS server: a clear error, not a hang
        out = subprocess.run(_minwa("pipeline", "run", directory / "s" / "client.yaml", "--weights", weights,
                                    "--timeout", "3", "--reconnect-s", "1"),
                             capture_output=True, text=True, timeout=90, env=_env())
        assert out.returncode == 1 and f"127.0.0.1:{port}" in out.stderr
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        server.kill()
    assert numpy.isfinite(stats["images_per_s"])
