"""TLS: many batches in flight both ways with no SSL object used by two threads at once; bounded waits."""
import collections
import functools
import selectors
import socket
import ssl
import threading

import numpy
import pytest

from minwa.parallel.pipeline import shared_tls
from minwa.parallel.pipeline.frame import close_quietly
from minwa.parallel.pipeline.pipeline_client import PipelineClient
from minwa.parallel.pipeline.pipeline_server import PipelineServer
from minwa.parallel.pipeline.shared_tls import SharedTLS

pytestmark = pytest.mark.timeout(120)


class _Watched(ssl.SSLSocket):
    """An SSLSocket that notes each call begun while another thread is inside one on the same socket."""
    guard = threading.Lock()
    calls = collections.Counter()
    overlaps = []


def _watch(name):
    method = getattr(ssl.SSLSocket, name)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        me = threading.get_ident()
        with _Watched.guard:
            inside = self.__dict__.setdefault("_inside", collections.Counter())
            if set(inside) - {me}:
                _Watched.overlaps.append(name)
            inside[me] += 1
            _Watched.calls[name] += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            with _Watched.guard:
                inside[me] -= 1
                if not inside[me]:
                    del inside[me]
    return call


for _name in ("read", "write", "recv", "recv_into", "send", "sendall", "pending", "do_handshake", "unwrap"):
    setattr(_Watched, _name, _watch(_name))


def test_tls_many_batches_in_flight_both_ways(pipe, tls, monkeypatch):
    monkeypatch.setattr(ssl.SSLContext, "sslsocket_class", _Watched)
    monkeypatch.setattr(_Watched, "calls", collections.Counter())
    monkeypatch.setattr(_Watched, "overlaps", [])
    ca, server_context = tls
    count, depth = 300, 4
    full, client_net, cloud = pipe.halves(pipe.chain_model(batch=16), ["pool1"])
    xs = pipe.batches(model_batch=16, count=count)
    features, expected = [], []
    for x, y in xs:
        client_net.forward({"data": x, "label": y})
        features.append(client_net.layers[-1].value.copy())
        full.forward({"data": x, "label": y})
        expected.append(full.blobs["ip"].copy())
    results = {}
    with PipelineServer(cloud, pipe.secret, tls=server_context, depth=depth, log=lambda t: None) as srv:
        with PipelineClient("127.0.0.1", srv.address[1], pipe.secret, depth=depth, tls_ca=ca, timeout=20,
                            reconnect_s=5) as client:
            for seq, array in enumerate(features):
                assert client.submit([(0, array)]) == seq
                if seq >= depth:
                    results[seq - depth] = client.result(seq - depth)
            for seq in range(count - depth, count):
                results[seq] = client.result(seq)
            assert client.reconnects == 0
    assert _Watched.calls["send"] and _Watched.calls["recv_into"]  # TLS was on
    assert _Watched.overlaps == [], collections.Counter(_Watched.overlaps)
    assert sorted(results) == list(range(count))
    for seq in range(count):
        scores, record = results[seq]
        assert numpy.array_equal(scores, expected[seq]), seq
        assert "t_ack" in record
    arrivals = [results[seq][1]["t_result"] for seq in range(count)]
    assert arrivals == sorted(arrivals)  # the results came back in the order the batches went out


@pytest.mark.parametrize("waiter", ["default", "select"])
def test_tls_waits_stay_bounded_and_a_close_wakes_the_reader(tls, waiter, monkeypatch):
    if waiter == "select":  # what a system without poll(2) (Windows) waits with
        monkeypatch.setattr(shared_tls, "WAITER", selectors.SelectSelector)
    ca, server_context = tls
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = {}

    def accept():
        plain, _ = listener.accept()
        plain.settimeout(10)
        accepted["sock"] = SharedTLS(server_context.wrap_socket(plain, server_side=True))

    thread = threading.Thread(target=accept)
    thread.start()
    plain = socket.create_connection(listener.getsockname(), timeout=10)
    client = SharedTLS(ssl.create_default_context(cafile=ca).wrap_socket(plain, server_hostname="127.0.0.1"))
    thread.join(10)
    server = accepted["sock"]
    try:
        client.settimeout(0.2)
        with pytest.raises(socket.timeout):
            client.recv_into(bytearray(1))  # nothing sent: the wait ends at the timeout
        client.settimeout(30)
        failure = []

        def read():
            try:
                client.recv_into(bytearray(1))
            except OSError as exc:
                failure.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        close_quietly(client)  # as stop() and reconnect do, from another thread
        reader.join(10)
        assert not reader.is_alive() and failure
    finally:
        close_quietly(server)
        listener.close()
