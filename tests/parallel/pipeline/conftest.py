"""Small nets, a secret, a TLS certificate and a running server for the pipeline tests (all on 127.0.0.1)."""

import numpy
import pytest

from minwa.net import Net
from minwa.parallel.pipeline.pipeline_server import PipelineServer, server_tls_context
from minwa.parallel.pipeline.splitter import split_model

SECRET = b"test-secret-0123456789abcdef"


def _conv(name, bottom, n, kernel=3, pad=1):
    return {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
            "convolution_param": {"num_output": n, "kernel_size": kernel, "pad": pad,
                                  "weight_filler": {"type": "gaussian", "std": 0.3},
                                  "bias_filler": {"type": "constant", "value": 0.1}}}


def chain_model(batch=4):
    """data 3x8x8 -> conv1 -> pool1 -> relu -> conv2 -> ip (5 classes), with loss and accuracy."""
    return {"name": "chain", "layers": [
        {"name": "in", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 3, 8, 8]}, {"dim": [batch]}]}},
        _conv("conv1", "data", 4),
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
        _conv("conv2", "pool1", 6),
        {"name": "ip", "type": "InnerProduct", "bottom": "conv2", "top": "ip",
         "inner_product_param": {"num_output": 5, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "acc", "type": "Accuracy", "bottom": ["ip", "label"], "top": "acc", "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}


def branchy_model(batch=4):
    """conv1 feeds two branches (a, b) that meet in a Concat: one cut must cut both."""
    return {"name": "branchy", "layers": [
        {"name": "in", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 3, 8, 8]}, {"dim": [batch]}]}},
        _conv("conv1", "data", 4),
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        _conv("a", "conv1", 3),
        {"name": "relu_a", "type": "ReLU", "bottom": "a", "top": "a"},
        _conv("b", "conv1", 2, kernel=1, pad=0),
        {"name": "cat", "type": "Concat", "bottom": ["a", "b"], "top": "cat"},
        {"name": "ip", "type": "InnerProduct", "bottom": "cat", "top": "ip",
         "inner_product_param": {"num_output": 5, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}


def halves(model, cuts, seed=1):
    """(full net, client net, cloud net) sharing the full net's weights."""
    split = split_model(model, cuts, port=0)
    full = Net(model, phase="TEST", seed=seed)
    client, cloud = Net(split.client, phase="TEST"), Net(split.cloud, phase="TEST")
    for net in (client, cloud):
        for p in net.params:
            p.data[...] = full.param(p.name).data
    return full, client, cloud


def batches(model_batch=4, count=5, seed=0):
    rng = numpy.random.default_rng(seed)
    return [(rng.standard_normal((model_batch, 3, 8, 8)).astype(numpy.float32), rng.integers(0, 5, model_batch))
            for _ in range(count)]


@pytest.fixture
def server():
    """A running server for the chain net cut at pool1; yields (server, client net, full net)."""
    full, client, cloud = halves(chain_model(), ["pool1"])
    srv = PipelineServer(cloud, SECRET, host="127.0.0.1", port=0, idle_timeout=3.0, handshake_timeout=2.0,
                         log=lambda text: None).start()
    try:
        yield srv, client, full
    finally:
        srv.stop()


@pytest.fixture
def tls(tls_files):
    """(CA file for the client, server TLS context): a self-signed certificate for 127.0.0.1."""
    cert, key = tls_files
    return str(cert), server_tls_context(str(cert), str(key))


class Helpers:
    secret = SECRET
    chain_model = staticmethod(chain_model)
    branchy_model = staticmethod(branchy_model)
    halves = staticmethod(halves)
    batches = staticmethod(batches)


@pytest.fixture
def pipe():
    """The helpers above (test files cannot import a conftest under --import-mode=importlib)."""
    return Helpers
