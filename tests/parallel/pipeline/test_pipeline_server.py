"""The server against malformed, hostile and silent peers, on 127.0.0.1; every socket has a timeout."""
import socket
import struct
import threading

import numpy
import pytest

from minwa.parallel.pipeline import runner
from minwa.parallel.pipeline.frame import HEADER, ConnectionClosed, pack, read_frame
from minwa.parallel.pipeline.handshake import client_handshake
from minwa.parallel.pipeline.pipeline_server import PipelineServer

pytestmark = pytest.mark.timeout(60)


def _connect(srv, secret=None, timeout=10):
    sock = socket.create_connection(tuple(srv.address), timeout=timeout)
    sock.settimeout(timeout)
    if secret is not None:
        client_handshake(sock, secret)
    return sock


def _refusal(sock):
    """The server's ERROR text, after which it must close the connection."""
    frame = read_frame(sock)
    assert frame.kind_name == "ERROR"
    with pytest.raises((ConnectionClosed, ConnectionResetError)):
        read_frame(sock)
    return frame.payload.decode()


def _header(kind=4, version=1, magic=b"MWPL", dtype=3, dims=(4, 4, 4, 4), length=None):
    if length is None:
        length = int(numpy.prod(dims))
    padded = tuple(dims) + (0,) * (8 - len(dims))
    return HEADER.pack(magic, version, kind, 0, dtype, len(dims), 0, 0, 1.0, 0.0, 0.0, *padded, length)


def _still_serves(srv, client_net, full, pipe):
    xs = pipe.batches(count=2, seed=5)
    stats = runner.run(client_net, xs, pipe.secret, host="127.0.0.1", port=srv.address[1], timeout=10,
                       reconnect_s=2)
    for seq, (x, y) in enumerate(xs):
        full.forward({"data": x, "label": y})
        assert numpy.array_equal(stats["scores"][seq], full.blobs["ip"])


def test_listens_on_loopback_by_default(pipe):
    _, _, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    with PipelineServer(cloud, pipe.secret, log=lambda t: None) as srv:
        assert srv.address[0] == "127.0.0.1"


@pytest.mark.parametrize("raw, reason", [
    (b"GET / HTTP/1.1\r\n" + b"x" * 68, "bad magic"),
    (_header(version=2), "protocol version 2"),
    (_header(dtype=9), "unknown dtype code 9"),
    (_header(dtype=0), "declares"),
    (_header(dims=(4, 3, 4, 4)), "shape (4, 3, 4, 4) but Source"),
    (_header(dims=(4, 1024, 1024, 1024)), "shape (4, 1024, 1024, 1024)"),  # declares 4 GiB
    (_header(dims=(4, 4, 4, 4), length=1 << 32), "needs 256"),
    (_header(kind=2, dtype=0, dims=(), length=0), "unexpected AUTH"),
], ids=["bad-magic", "bad-version", "wrong-dtype", "no-dtype", "wrong-shape", "declares-4GB", "bad-length",
        "wrong-kind"])
def test_bad_frames_close_only_that_connection(server, pipe, raw, reason):
    srv, client_net, full = server
    bystander = _connect(srv, pipe.secret)
    sock = _connect(srv, pipe.secret)
    sock.sendall(raw)
    assert reason in _refusal(sock)
    assert srv.rejected == 1
    _still_serves(srv, client_net, full, pipe)
    bystander.sendall(pack("BYE"))


def test_failed_authentication_is_refused(server, pipe):
    srv, client_net, full = server
    sock = _connect(srv)
    read_frame(sock)  # challenge
    sock.sendall(pack("AUTH", b"\x00" * 64))
    assert "authentication failed" in _refusal(sock)
    _still_serves(srv, client_net, full, pipe)


def test_data_before_authentication_is_refused(server, pipe):
    srv, _, _ = server
    sock = _connect(srv)
    read_frame(sock)
    sock.sendall(_header())
    assert "expected an AUTH frame" in _refusal(sock)


def test_replayed_handshake_is_refused(server, pipe):
    srv, _, _ = server
    # an eavesdropper saw one AUTH frame; on its own connection the challenge is different
    honest = _connect(srv)
    read_frame(honest)
    tapped = []

    class Tap:
        def __init__(self, sock):
            self.sock = sock

        def sendall(self, data):
            tapped.append(bytes(data))
            self.sock.sendall(data)

        def __getattr__(self, name):
            return getattr(self.sock, name)

    honest.close()
    witness = _connect(srv)
    client_handshake(Tap(witness), pipe.secret)
    attacker = _connect(srv)
    read_frame(attacker)
    attacker.sendall(tapped[0])
    assert "authentication failed" in _refusal(attacker)


def test_client_disconnecting_mid_frame_is_logged_and_others_continue(pipe):
    logs = []
    full, client_net, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    with PipelineServer(cloud, pipe.secret, idle_timeout=5, log=logs.append) as srv:
        sock = _connect(srv, pipe.secret)
        sock.sendall(_header() + b"\x00" * 100)  # 100 of 256 payload bytes
        sock.close()
        _still_serves(srv, client_net, full, pipe)
        for _ in range(100):
            if logs:
                break
            threading.Event().wait(0.05)
    assert any("in the middle of" in line and "connection closed" in line for line in logs), logs


def test_idle_connections_time_out(server, pipe):
    srv, _, _ = server  # idle_timeout 3 s, handshake_timeout 2 s
    silent = _connect(srv, pipe.secret)
    assert "no data for 3 s" in _refusal(silent)
    unauthenticated = _connect(srv)
    read_frame(unauthenticated)
    assert "no data for 2 s" in _refusal(unauthenticated)


def test_two_clients_one_hostile_the_other_is_served(pipe):
    full, client_net, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    with PipelineServer(cloud, pipe.secret, idle_timeout=30, log=lambda t: None) as srv:
        hostile = _connect(srv, pipe.secret)
        hostile.sendall(_header()[:50])  # half a header, then silence: it holds its connection open
        silent = _connect(srv)  # never answers the challenge
        _still_serves(srv, client_net, full, pipe)
        hostile.settimeout(0.2)
        with pytest.raises(socket.timeout):
            hostile.recv(1)  # still open: the good client did not wait for it to be dropped
        hostile.close()
        silent.close()


def test_served_connections_send_small_frames_at_once(pipe):
    """TCP_NODELAY: without it Nagle holds an ACK back until the client's delayed TCP ack (27 ms on loopback)."""
    _, _, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    with PipelineServer(cloud, pipe.secret, log=lambda t: None) as srv:
        sock = _connect(srv, pipe.secret)
        served = list(srv._connections)
        assert served and all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in served)
        sock.close()


def test_stop_closes_connections(pipe):
    _, _, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    srv = PipelineServer(cloud, pipe.secret, log=lambda t: None).start()
    sock = _connect(srv, pipe.secret)
    srv.stop()
    with pytest.raises((ConnectionClosed, ConnectionResetError)):
        read_frame(sock)
    with pytest.raises(OSError):
        socket.create_connection(tuple(srv.address), timeout=2)
    assert struct.calcsize("!I") == 4


def test_connections_beyond_max_clients_are_refused(pipe):
    _, _, cloud = pipe.halves(pipe.chain_model(), ["pool1"])
    with PipelineServer(cloud, pipe.secret, max_clients=1, log=lambda t: None) as srv:
        first = _connect(srv, pipe.secret)
        second = _connect(srv)
        assert "server full" in _refusal(second)
        first.close()
