"""The wire format: round trip, and every malformed header rejected before its payload is read."""
import socket
import struct
import threading
import time

import pytest

from minwa.parallel.pipeline.frame import (
    HEADER,
    HEADER_BYTES,
    ConnectionClosed,
    FrameError,
    pack,
    parse_header,
    read_frame,
    send_all,
)


def _pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_header_is_84_bytes_and_round_trips():
    assert HEADER_BYTES == 84
    a, b = _pair()
    payload = bytes(range(24))
    a.sendall(pack("DATA", payload, seq=7, pair=3, dtype=3, shape=(2, 3, 4), scale=0.5, offset=-1.0, aux=2.0))
    frame = read_frame(b)
    assert (frame.kind_name, frame.seq, frame.pair, frame.shape, frame.payload) == ("DATA", 7, 3, (2, 3, 4), payload)
    assert (frame.scale, frame.offset, frame.aux) == (0.5, -1.0, 2.0)


def _raw(magic=b"MWPL", version=1, kind=4, dtype=3, ndim=1, dims=(4,), length=4):
    dims = tuple(dims) + (0,) * (8 - len(dims))
    return HEADER.pack(magic, version, kind, 0, dtype, ndim, 0, 0, 1.0, 0.0, 0.0, *dims, length)


@pytest.mark.parametrize("fields, message", [
    ({"magic": b"HTTP"}, "bad magic"),
    ({"version": 9}, "protocol version 9"),
    ({"kind": 99}, "unknown frame kind"),
    ({"dtype": 7}, "unknown dtype code 7"),
    ({"ndim": 9}, "9 dimensions"),
])
def test_malformed_headers_are_named(fields, message):
    with pytest.raises(FrameError, match=message):
        parse_header(_raw(**fields))


def test_a_frame_declaring_4_gb_is_rejected_from_its_header_alone():
    a, b = _pair()
    # 4 GiB of uint8 declared, consistently with its shape; only the header is ever sent
    a.sendall(_raw(dims=(1024, 1024, 4096), ndim=3, length=4 << 30))
    seen = []

    def check(frame):
        seen.append(frame.length)
        raise FrameError(f"declares {frame.length} bytes, the Source takes at most 1000")

    with pytest.raises(FrameError, match="declares 4294967296 bytes"):
        read_frame(b, check=check)
    assert seen == [4 << 30]


def test_length_must_match_the_shape():
    a, b = _pair()
    a.sendall(_raw(dims=(4,), length=5))
    with pytest.raises(FrameError, match="needs 4"):
        read_frame(b)


def test_control_frames_are_small():
    a, b = _pair()
    a.sendall(_raw(kind=7, dtype=0, ndim=0, dims=(), length=1 << 20))
    with pytest.raises(FrameError, match="at most 4096"):
        read_frame(b)


def test_truncated_frames_are_connection_closed_partial():
    a, b = _pair()
    a.sendall(_raw()[:40])
    a.close()
    with pytest.raises(ConnectionClosed, match="in the middle of a frame header") as info:
        read_frame(b)
    assert info.value.partial
    a, b = _pair()
    a.sendall(_raw() + b"\x01\x02")  # 2 of the 4 payload bytes
    a.close()
    with pytest.raises(ConnectionClosed, match="2 of 4 bytes") as info:
        read_frame(b)
    assert info.value.partial


def test_clean_close_between_frames_is_not_partial():
    a, b = _pair()
    a.close()
    with pytest.raises(ConnectionClosed) as info:
        read_frame(b)
    assert not info.value.partial


def test_pack_refuses_too_many_dimensions():
    with pytest.raises(FrameError):
        pack("DATA", b"", shape=(1,) * 9)
    assert struct.calcsize("!4sBBHBBHQddd8IQ") == HEADER_BYTES


def _slow_reader(sock, total, out, pause_s=0.05, step=32768):
    """Read ``total`` bytes in ``step`` pieces with a pause between them (a slow link)."""
    got = bytearray()
    while len(got) < total:
        time.sleep(pause_s)
        got += sock.recv(step)
    out.append(bytes(got))


def test_a_frame_slower_than_the_socket_timeout_is_sent_whole():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    data = bytes(range(256)) * 8192  # 2 MiB: about 3 s at 32 KiB per 50 ms
    a.settimeout(0.3)  # as the client's receiver keeps it, to poll for ACKs
    out = []
    reader = threading.Thread(target=_slow_reader, args=(b, len(data), out))
    reader.start()
    try:
        start = time.monotonic()
        send_all(a, data, stall_s=5.0)
        assert time.monotonic() - start > 0.3  # slower than one socket timeout, and still whole
    finally:
        reader.join(30)
        a.close()
        b.close()
    assert out and out[0] == data


def test_a_stalled_peer_ends_the_send_after_the_stall_bound():
    a, b = socket.socketpair()
    a.settimeout(0.1)
    try:
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            send_all(a, b"x" * (64 << 20), stall_s=0.5)  # b never reads
        assert time.monotonic() - start < 10
    finally:
        a.close()
        b.close()
