"""Frame: minwa's binary framing for the pipeline link (no pickle, sizes checked before allocation).

Every message is one fixed 84-byte header, in network byte order, then ``length``
payload bytes::

    offset size field
     0     4    magic    b"MWPL"
     4     1    version  1
     5     1    kind     CHALLENGE 1, AUTH 2, WELCOME 3, DATA 4, ACK 5, RESULT 6, ERROR 7, BYE 8
     6     2    pair     which Sink/Source pair a DATA frame belongs to (its pair key, default the port)
     8     1    dtype    0 none, 1 float32, 2 float16, 3 uint8
     9     1    ndim     0..8
    10     2    flags    0 (reserved)
    12     8    seq      batch sequence number
    20     8    scale    float64; uint8 values decode as q * scale + offset
    28     8    offset   float64
    36     8    aux      float64; RESULT: the cloud's compute seconds for that batch
    44    32    dims     8 x uint32, the first ndim used
    76     8    length   payload bytes; must equal prod(dims) x itemsize for tensors

A reader validates the header (magic, version, kind, dtype, ndim, and through a
caller's check the pair, shape and length) before it allocates the payload, so a
frame that declares 4 GB costs nothing but the header.
"""
import socket
import struct
import time
from dataclasses import dataclass

import numpy

from minwa.errors import CommError

MAGIC = b"MWPL"
VERSION = 1
HEADER = struct.Struct("!4sBBHBBHQddd8IQ")
HEADER_BYTES = HEADER.size  # 84
MAX_DIMS = 8
KINDS = {"CHALLENGE": 1, "AUTH": 2, "WELCOME": 3, "DATA": 4, "ACK": 5, "RESULT": 6, "ERROR": 7, "BYE": 8}
KIND_NAMES = {v: k for k, v in KINDS.items()}
DTYPES = {0: None, 1: numpy.dtype(">f4"), 2: numpy.dtype(">f2"), 3: numpy.dtype("u1")}
DTYPE_CODES = {"float32": 1, "float16": 2, "uint8": 3}
#: payload limit of frames that carry no tensor (nonces, MACs, error text)
CONTROL_LIMIT = 4096


class FrameError(CommError):
    """A frame broke the protocol (bad magic, version, kind, shape, size...); the connection is closed."""


class ConnectionClosed(CommError):
    """The peer closed the connection (``partial``: in the middle of a frame)."""

    def __init__(self, message, partial=False):
        super().__init__(message)
        self.partial = partial


class IdleTimeout(CommError, TimeoutError):
    """No bytes arrived within the socket's timeout (``partial``: a frame was half read)."""

    def __init__(self, message, partial=False):
        super().__init__(message)
        self.partial = partial


@dataclass
class Frame:
    kind: int
    seq: int = 0
    pair: int = 0
    dtype: int = 0
    shape: tuple = ()
    scale: float = 1.0
    offset: float = 0.0
    aux: float = 0.0
    length: int = 0
    payload: bytes = b""

    @property
    def kind_name(self):
        return KIND_NAMES.get(self.kind, str(self.kind))


def pack(kind, payload=b"", seq=0, pair=0, dtype=0, shape=(), scale=1.0, offset=0.0, aux=0.0):
    """Header + payload bytes of one frame (``kind`` a name or code)."""
    kind = KINDS[kind] if isinstance(kind, str) else int(kind)
    shape = tuple(int(d) for d in shape)
    if len(shape) > MAX_DIMS:
        raise FrameError(f"frame: {len(shape)} dimensions, at most {MAX_DIMS}")
    dims = shape + (0,) * (MAX_DIMS - len(shape))
    header = HEADER.pack(MAGIC, VERSION, kind, int(pair), int(dtype), len(shape), 0, int(seq), float(scale),
                         float(offset), float(aux), *dims, len(payload))
    return header + bytes(payload)


def parse_header(raw):
    """A Frame without payload from 84 header bytes; raises FrameError naming what is wrong."""
    (magic, version, kind, pair, dtype, ndim, _flags, seq, scale, offset, aux, *dims_length) = HEADER.unpack(raw)
    dims, length = dims_length[:MAX_DIMS], dims_length[MAX_DIMS]
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r} (expected {MAGIC!r}): not a minwa pipeline peer")
    if version != VERSION:
        raise FrameError(f"protocol version {version}, this side speaks {VERSION}")
    if kind not in KIND_NAMES:
        raise FrameError(f"unknown frame kind {kind}")
    if dtype not in DTYPES:
        raise FrameError(f"unknown dtype code {dtype} (known: 1 float32, 2 float16, 3 uint8)")
    if ndim > MAX_DIMS:
        raise FrameError(f"{ndim} dimensions declared, at most {MAX_DIMS}")
    return Frame(kind, seq, pair, dtype, tuple(dims[:ndim]), scale, offset, aux, length)


def recv_exact(sock, count, what="frame"):
    """Exactly ``count`` bytes (bounded by the socket's timeout); ConnectionClosed on EOF."""
    buffer = bytearray(count)
    view, got = memoryview(buffer), 0
    while got < count:
        try:
            n = sock.recv_into(view[got:], count - got)
        except socket.timeout:
            raise IdleTimeout(f"no data for {sock.gettimeout():.0f} s while reading a {what}",
                              partial=got > 0) from None
        if n == 0:
            raise ConnectionClosed(f"peer closed the connection {'in the middle of' if got else 'before'} a "
                                   f"{what} ({got} of {count} bytes)", partial=got > 0)
        got += n
    return bytes(buffer)


def read_frame(sock, check=None, control_limit=CONTROL_LIMIT):
    """Read one frame. ``check(frame)`` may raise FrameError before the payload is allocated.

    Frames without a tensor (``dtype`` 0) may carry at most ``control_limit`` bytes;
    a tensor's length must equal its shape times its item size.
    """
    frame = parse_header(recv_exact(sock, HEADER_BYTES, "frame header"))
    if frame.dtype == 0:
        if frame.shape or frame.length > control_limit:
            raise FrameError(f"{frame.kind_name} frame declares {frame.length} bytes, at most {control_limit}")
    else:
        expected = int(numpy.prod(frame.shape, dtype=numpy.int64)) * DTYPES[frame.dtype].itemsize
        if frame.length != expected:
            raise FrameError(f"{frame.kind_name} frame declares {frame.length} payload bytes but shape "
                             f"{frame.shape} of {DTYPES[frame.dtype].name} needs {expected}")
    if check is not None:
        check(frame)
    if frame.length:
        frame.payload = recv_exact(sock, frame.length, f"{frame.kind_name} payload")
    return frame


def send_all(sock, data, stall_s, chunk=1 << 16):
    """Send every byte of ``data``, failing (socket.timeout) only when ``stall_s`` pass without progress.

    ``sock.sendall`` would bound the whole frame by the socket's timeout, which the client's
    receiver keeps short (1 s) to poll for ACKs: a large frame on a slow link then timed out
    and was resent in a loop. Here the socket's timeout bounds one ``send`` of at most ``chunk``
    bytes; a timed-out ``send`` has sent nothing, so it is retried with the same bytes."""
    view = memoryview(data).cast("B")
    last = time.monotonic()
    while view:
        try:
            view = view[sock.send(view[:chunk]):]
            last = time.monotonic()
        except socket.timeout:
            if time.monotonic() - last > stall_s:
                raise


def close_quietly(sock):
    """Shut down and close ``sock``, ignoring a peer that is already gone."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
