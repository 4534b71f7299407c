"""HMAC challenge-response: the right secret passes both ways, a wrong one or a replay does not."""
import socket
import threading

import pytest

from minwa.errors import ConfigError
from minwa.parallel.pipeline.frame import pack, read_frame
from minwa.parallel.pipeline.handshake import AuthError, client_handshake, load_secret, server_handshake

SECRET = b"s" * 32


def _run_server(sock, secret, outcome):
    try:
        server_handshake(sock, secret)
        outcome.append("ok")
    except AuthError as exc:
        sock.sendall(pack("ERROR", str(exc).encode()))  # as PipelineServer does
        outcome.append(str(exc))


def _pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_same_secret_authenticates_both_sides():
    a, b = _pair()
    outcome = []
    thread = threading.Thread(target=_run_server, args=(a, SECRET, outcome))
    thread.start()
    client_handshake(b, SECRET)
    thread.join(5)
    assert outcome == ["ok"]


def test_wrong_secret_is_refused_with_a_message():
    a, b = _pair()
    outcome = []
    thread = threading.Thread(target=_run_server, args=(a, SECRET, outcome))
    thread.start()
    with pytest.raises(AuthError, match="refused us: authentication failed"):
        client_handshake(b, b"w" * 32)
    thread.join(5)
    assert "authentication failed" in outcome[0]


def test_a_recorded_handshake_replayed_on_a_new_connection_fails():
    # record an honest client's AUTH frame
    a, b = _pair()
    outcome = []
    thread = threading.Thread(target=_run_server, args=(a, SECRET, outcome))
    thread.start()
    recorded = []
    original = b.sendall

    class Tap:
        def __getattr__(self, name):
            return getattr(b, name)

        def sendall(self, data):
            recorded.append(bytes(data))
            original(data)

    client_handshake(Tap(), SECRET)
    thread.join(5)
    assert outcome == ["ok"]
    # an attacker without the secret replays it to a fresh server connection
    a, b = _pair()
    outcome = []
    thread = threading.Thread(target=_run_server, args=(a, SECRET, outcome))
    thread.start()
    read_frame(b)  # the new, different challenge
    b.sendall(recorded[0])
    assert read_frame(b).kind_name == "ERROR"
    thread.join(5)
    assert "replayed" in outcome[0]


def test_secret_from_file_or_environment(tmp_path, monkeypatch):
    path = tmp_path / "secret"
    path.write_bytes(b"0123456789abcdef0123\n")
    assert load_secret(str(path)) == b"0123456789abcdef0123"
    monkeypatch.setenv("MINWA_PIPELINE_SECRET", "from-the-environment-1234")
    assert load_secret() == b"from-the-environment-1234"
    monkeypatch.delenv("MINWA_PIPELINE_SECRET")
    with pytest.raises(ConfigError, match="no shared secret"):
        load_secret()
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="at least 16"):
        load_secret(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_secret(str(tmp_path / "missing"))


def test_client_refuses_a_server_that_does_not_know_the_secret():
    a, b = _pair()
    outcome = []
    thread = threading.Thread(target=_run_server, args=(a, b"x" * 32, outcome))
    thread.start()
    with pytest.raises(AuthError):
        client_handshake(b, SECRET)
    thread.join(5)
    assert pack("BYE")  # the wire format is still usable after a failure
