"""Split inference end to end on 127.0.0.1: exactness, depth, reconnect after a server restart, clear errors."""
import socket
import threading

import numpy
import pytest

from minwa.errors import CommError
from minwa.net import Net
from minwa.parallel.pipeline import runner
from minwa.parallel.pipeline.pipeline_client import PipelineClient
from minwa.parallel.pipeline.pipeline_server import PipelineServer
from minwa.parallel.pipeline.splitter import split_model

pytestmark = pytest.mark.timeout(90)


def _reference(full, xs):
    out = []
    for x, y in xs:
        full.forward({"data": x, "label": y})
        out.append(full.blobs["ip"].copy())
    return out


def _split_run(pipe, model, cuts, dtype, depth=2, count=5):
    full, client, cloud = pipe.halves(model, cuts)
    xs = pipe.batches(count=count)
    with PipelineServer(cloud, pipe.secret, log=lambda t: None) as srv:
        stats = runner.run(client, xs, pipe.secret, host="127.0.0.1", port=srv.address[1], dtype=dtype, depth=depth,
                           timeout=20, reconnect_s=2)
    return stats, _reference(full, xs)


@pytest.mark.parametrize("model, cuts", [("chain", ["pool1"]), ("branchy", ["a", "b"])], ids=["one-cut", "two-cuts"])
@pytest.mark.parametrize("depth", [1, 3])
def test_float32_split_equals_unsplit_exactly(pipe, model, cuts, depth):
    model = pipe.chain_model() if model == "chain" else pipe.branchy_model()
    stats, ref = _split_run(pipe, model, cuts, "float32", depth=depth)
    assert stats["batches"] == 5 and stats["reconnects"] == 0
    for seq, expected in enumerate(ref):
        assert numpy.array_equal(stats["scores"][seq], expected)


@pytest.mark.parametrize("model, cuts", [("chain", ["pool1"]), ("branchy", ["a", "b"])], ids=["one-cut", "two-cuts"])
@pytest.mark.parametrize("dtype, tolerance", [("float16", 2e-2), ("uint8", 0.2)])
def test_quantised_split_is_within_the_quantisation_error(pipe, model, cuts, dtype, tolerance):
    model = pipe.chain_model() if model == "chain" else pipe.branchy_model()
    stats, ref = _split_run(pipe, model, cuts, dtype)
    errors = [numpy.abs(stats["scores"][s] - ref[s]).max() / (numpy.abs(ref[s]).max() + 1e-6) for s in range(5)]
    assert 0 < max(errors) < tolerance
    agree = numpy.mean([numpy.mean(stats["scores"][s].argmax(1) == ref[s].argmax(1)) for s in range(5)])
    assert agree >= 0.8


def test_bytes_per_batch_count_every_pair(pipe):
    stats, _ = _split_run(pipe, pipe.branchy_model(), ["a", "b"], "uint8", count=2)
    # a: 4x3x8x8 and b: 4x2x8x8 values, one byte each, plus one 84-byte header per pair
    assert stats["payload_bytes_per_batch"] == 4 * 3 * 64 + 4 * 2 * 64
    assert stats["wire_bytes_per_batch"] == stats["payload_bytes_per_batch"] + 2 * 84


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_restart_the_client_reconnects_and_resends(pipe):
    full, client_net, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    port = _free_port()
    xs = pipe.batches(count=6)
    ref = _reference(full, xs)
    first = PipelineServer(cloud, pipe.secret, port=port, log=lambda t: None).start()
    client = PipelineClient("127.0.0.1", port, pipe.secret, depth=2, timeout=10, reconnect_s=20)
    results = {}
    for seq, (x, _) in enumerate(xs[:3]):
        client.submit([(0, client_net_features(client_net, x))])
        results[seq] = client.result(seq)[0]
    first.stop()
    second = {}

    def restart():
        threading.Event().wait(1.0)
        second["server"] = PipelineServer(cloud, pipe.secret, port=port, log=lambda t: None).start()

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        for seq, (x, _) in enumerate(xs[3:], start=3):
            client.submit([(0, client_net_features(client_net, x))])
            results[seq] = client.result(seq)[0]
        assert client.reconnects >= 1
    finally:
        thread.join(10)
        client.close()
        second["server"].stop()
    for seq, expected in enumerate(ref):
        assert numpy.array_equal(results[seq], expected)


def client_net_features(net, x):
    net.forward({"data": x, "label": numpy.zeros(len(x), numpy.int64)})
    return net.layers[-1].value


def test_a_server_that_is_gone_gives_a_clear_error(pipe):
    port = _free_port()
    with pytest.raises(CommError, match=rf"cannot reach the server 127.0.0.1:{port} \(\d+ attempts"):
        PipelineClient("127.0.0.1", port, pipe.secret, timeout=2, reconnect_s=1)


def test_wrong_secret_gives_a_clear_error(server, pipe):
    srv, _, _ = server
    with pytest.raises(CommError, match="authentication failed"):
        PipelineClient("127.0.0.1", srv.address[1], b"not-the-secret-at-all", timeout=5, reconnect_s=1)


def test_a_source_shape_that_does_not_match_is_named(pipe):
    # a client cut from a net with 5 conv1 filters talks to a cloud cut from one with 4
    model = pipe.chain_model()
    _, _, cloud = pipe.halves(model, ["pool1"])
    model["layers"][1]["convolution_param"]["num_output"] = 5
    client_net = Net(split_model(model, ["pool1"], port=0).client, phase="TEST")
    with PipelineServer(cloud, pipe.secret, log=lambda t: None) as srv:
        with pytest.raises(CommError, match=r"shape \(4, 5, 4, 4\) but Source 'source_pool1' takes \(1..4, 4, 4, 4\)"):
            runner.run(client_net, pipe.batches(count=3), pipe.secret, host="127.0.0.1", port=srv.address[1],
                       timeout=10, reconnect_s=1)


@pytest.mark.parametrize("secure", [False, True], ids=["tcp", "tls"])
def test_a_connection_closed_for_idleness_between_batches_is_reopened(pipe, request, secure):
    ca, context = request.getfixturevalue("tls") if secure else (None, None)
    full, client_net, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    xs = pipe.batches(count=2)
    ref = _reference(full, xs)
    with PipelineServer(cloud, pipe.secret, idle_timeout=1.0, tls=context, log=lambda t: None) as srv:
        with PipelineClient("127.0.0.1", srv.address[1], pipe.secret, tls_ca=ca, timeout=10,
                            reconnect_s=10) as client:
            client.submit([(0, client_net_features(client_net, xs[0][0]))])
            first = client.result(0)[0]
            threading.Event().wait(2.5)  # the server drops the silent connection meanwhile
            client.submit([(0, client_net_features(client_net, xs[1][0]))])
            second = client.result(1)[0]
            assert client.reconnects >= 1
    assert numpy.array_equal(first, ref[0]) and numpy.array_equal(second, ref[1])
