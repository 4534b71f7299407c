"""Handshake: a shared-secret HMAC challenge-response, both ways, before any data.

1. server -> CHALLENGE with a fresh 32-byte random nonce ``ns``;
2. client -> AUTH: its own nonce ``nc`` and HMAC-SHA256(secret, "minwa-pipeline-1 client" | ns | nc);
3. server checks it (constant-time) and answers WELCOME with
   HMAC-SHA256(secret, "minwa-pipeline-1 server" | nc | ns), which the client checks.

The secret never crosses the wire; an AUTH recorded from one connection is useless on
another because ``ns`` is new each time (no replay); the client learns that the server
knows the secret too. The secret comes from a file or an environment variable, never
from the command line (where ``ps`` shows it to every user).
"""
import hashlib
import hmac
import os
import secrets

from minwa.errors import ConfigError

from .frame import FrameError, pack, read_frame

NONCE_BYTES = 32
SECRET_ENV = "MINWA_PIPELINE_SECRET"
_CLIENT, _SERVER = b"minwa-pipeline-1 client", b"minwa-pipeline-1 server"


class AuthError(FrameError):
    """The peer could not prove it knows the shared secret."""


def load_secret(path=None, env=SECRET_ENV):
    """The shared secret (bytes) from ``path``, else from the environment variable ``env``."""
    if path:
        try:
            with open(path, "rb") as f:
                secret = f.read().strip()
        except OSError as exc:
            raise ConfigError(f"pipeline secret file {path!r}: cannot read it ({exc.strerror})") from None
        where = f"secret file {path!r}"
    else:
        secret = os.environ.get(env, "").strip().encode()
        where = f"environment variable {env}"
        if not secret:
            raise ConfigError(f"pipeline: no shared secret; put one in a file and pass --secret-file FILE, "
                              f"or set {env} (e.g. {env}=$(openssl rand -hex 32))")
    if len(secret) < 16:
        raise ConfigError(f"pipeline: the {where} holds {len(secret)} bytes; use at least 16 "
                          f"(e.g. openssl rand -hex 32)")
    return secret


def _mac(secret, label, first, second):
    return hmac.new(secret, label + first + second, hashlib.sha256).digest()


def _expect(kind):
    """A header check: only ``kind`` (or the peer's ERROR), and no tensor, before authentication."""
    def check(frame):
        if frame.kind_name not in (kind, "ERROR") or frame.dtype:
            raise AuthError(f"expected an {kind} frame, got {frame.kind_name} before authentication")
    return check


def server_handshake(sock, secret):
    """Challenge the client; raises AuthError when it fails (the caller tells the client and closes)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sock.sendall(pack("CHALLENGE", nonce))
    frame = read_frame(sock, check=_expect("AUTH"), control_limit=2 * NONCE_BYTES + 64)
    if len(frame.payload) != NONCE_BYTES + 32:
        raise AuthError(f"expected an AUTH frame of {NONCE_BYTES + 32} bytes, got {frame.kind_name} of "
                        f"{len(frame.payload)}")
    client_nonce, mac = frame.payload[:NONCE_BYTES], frame.payload[NONCE_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, _CLIENT, nonce, client_nonce)):
        raise AuthError("authentication failed (wrong secret, or a replayed handshake)")
    sock.sendall(pack("WELCOME", _mac(secret, _SERVER, client_nonce, nonce)))


def client_handshake(sock, secret):
    """Answer the server's challenge and check its proof; raises AuthError."""
    frame = read_frame(sock, check=_expect("CHALLENGE"), control_limit=NONCE_BYTES)
    if len(frame.payload) != NONCE_BYTES:
        raise AuthError(f"expected a CHALLENGE of {NONCE_BYTES} bytes, got {frame.kind_name}")
    nonce = frame.payload
    client_nonce = secrets.token_bytes(NONCE_BYTES)
    sock.sendall(pack("AUTH", client_nonce + _mac(secret, _CLIENT, nonce, client_nonce)))
    frame = read_frame(sock, check=_expect("WELCOME"), control_limit=1024)
    if frame.kind_name == "ERROR":
        raise AuthError(f"the server refused us: {frame.payload.decode('utf-8', 'replace')}")
    if frame.kind_name != "WELCOME" or not hmac.compare_digest(frame.payload,
                                                               _mac(secret, _SERVER, client_nonce, nonce)):
        raise AuthError("the server did not prove it knows the shared secret")
