"""PipelineClient: the client side of the link: sends each batch's cut blobs, collects the class scores.

``submit`` encodes a batch's features (one DATA frame per Sink/Source pair) and queues
them; a sender thread writes them while the caller computes the next batch, and a
receiver thread takes the server's ACK (batch received) and RESULT (scores) frames.
At most ``depth`` batches are in flight (sent, no result yet): depth 1 is the papers'
send-and-wait-for-ACK, more lets transfer and both computations overlap. If the
connection drops, the client reconnects with exponential backoff and resends the
batches still in flight; if the server does not come back within ``reconnect_s`` the
next call raises a CommError naming the server. With TLS the socket is a SharedTLS, so
the two threads (and ``close``'s BYE) never use the SSL object at the same time.
"""
import collections
import socket
import ssl
import threading
import time

from minwa.errors import CommError

from . import feature_codec
from .frame import ConnectionClosed, FrameError, IdleTimeout, close_quietly, pack, read_frame, send_all
from .handshake import AuthError, client_handshake
from .shared_tls import SharedTLS

RESULT_LIMIT = 1 << 26  # bytes of class scores accepted per batch


class PipelineClient:
    def __init__(self, host, port, secret, dtype="float32", depth=2, tls_ca=None, timeout=30.0, reconnect_s=30.0,
                 log=None):
        if dtype not in feature_codec.WIRE_DTYPES:
            raise CommError(f"pipeline: feature dtype {dtype!r}: expected one of "
                            f"{', '.join(feature_codec.WIRE_DTYPES)}")
        self.host, self.port, self.secret, self.dtype = host, int(port), secret, dtype
        self.depth, self.timeout, self.reconnect_s = max(1, int(depth)), float(timeout), float(reconnect_s)
        self.log = log or (lambda text: None)
        self.tls = None
        if tls_ca:
            try:
                self.tls = ssl.create_default_context(cafile=tls_ca)
            except (OSError, ssl.SSLError) as exc:
                raise CommError(f"pipeline: cannot load the TLS CA certificate {tls_ca!r}: {exc}") from None
        self._cv = threading.Condition()
        self._queue = collections.deque()   # seqs waiting to be written
        self._flight = {}                   # seq -> record, sent or queued, no result yet
        self._results = {}                  # seq -> (scores, record)
        self._error = None                  # fatal: raised by the next call
        self._broken = None                 # the current connection failed; the sender reconnects
        self._closed = False
        self._next_seq = 0
        self.reconnects = 0
        self.bytes_sent = 0
        self._sock = self._connect()
        self._generation = 0
        self._start_receiver()
        self._sender = threading.Thread(target=self._send_loop, name="minwa-pipeline-send", daemon=True)
        self._sender.start()

    # -- public -------------------------------------------------------------------------
    def submit(self, features):
        """Queue one batch: ``features`` is [(pair key, host array), ...]; returns its sequence number."""
        with self._cv:
            seq = self._next_seq
            self._next_seq += 1
        frames, payload = [], 0
        start = time.perf_counter()
        for pair, array in features:
            code, scale, offset, data = feature_codec.encode(array, self.dtype)
            frames.append(pack("DATA", data, seq=seq, pair=pair, dtype=code, shape=array.shape, scale=scale,
                               offset=offset))
            payload += len(data)
        record = {"frames": b"".join(frames), "payload_bytes": payload, "encode_s": time.perf_counter() - start}
        record["wire_bytes"] = len(record["frames"])
        with self._cv:
            self._wait(lambda: len(self._flight) < self.depth, "room in the pipeline")
            record["t_submit"] = time.perf_counter()
            self._flight[seq] = record
            self._queue.append(seq)
            self._cv.notify_all()
        return seq

    def result(self, seq):
        """(class scores, timing record) of batch ``seq``, waiting for it (bounded)."""
        with self._cv:
            self._wait(lambda: seq in self._results, f"the result of batch {seq}")
            return self._results.pop(seq)

    def close(self):
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        self._sender.join(timeout=5)
        try:
            self._sock.settimeout(1.0)
            self._sock.sendall(pack("BYE"))
        except OSError:
            pass
        close_quietly(self._sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- waiting ------------------------------------------------------------------------
    def _wait(self, ready, what):
        deadline = time.monotonic() + self.timeout + self.reconnect_s
        while not ready():
            if self._error is not None:
                raise self._error
            if self._closed:
                raise CommError("pipeline: the client is closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommError(f"pipeline: waited {self.timeout + self.reconnect_s:.0f} s for {what} from "
                                f"{self.host}:{self.port}; the server is stuck or gone")
            self._cv.wait(min(left, 0.5))

    # -- connection ---------------------------------------------------------------------
    def _open(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.tls is not None:
                sock = SharedTLS(self.tls.wrap_socket(sock, server_hostname=self.host))
            client_handshake(sock, self.secret)
        except BaseException:
            close_quietly(sock)
            raise
        return sock

    def _connect(self):
        """A connected, authenticated socket; retries with backoff up to ``reconnect_s``."""
        start, delay, attempts = time.monotonic(), 0.1, 0
        while True:
            attempts += 1
            try:
                return self._open()
            except (AuthError, ssl.SSLCertVerificationError) as exc:
                raise CommError(f"pipeline: {self.host}:{self.port}: {exc}") from None
            except (OSError, ConnectionClosed, IdleTimeout, FrameError) as exc:
                last = exc
            if time.monotonic() - start + delay > self.reconnect_s:
                raise CommError(f"pipeline: cannot reach the server {self.host}:{self.port} ({attempts} attempts "
                                f"over {time.monotonic() - start:.1f} s; last: {last})")
            self.log(f"server {self.host}:{self.port} unreachable ({last}); retrying in {delay:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _start_receiver(self):
        threading.Thread(target=self._receive_loop, args=(self._sock, self._generation), daemon=True,
                         name="minwa-pipeline-receive").start()

    def _lost(self, generation, exc):
        with self._cv:
            if generation == self._generation and self._broken is None and not self._closed:
                self._broken = exc
                self._cv.notify_all()

    def _fail(self, exc):
        with self._cv:
            if self._error is None:
                self._error = exc
            self._cv.notify_all()

    def _reconnect(self):
        cause = self._broken
        close_quietly(self._sock)
        self.log(f"lost the server {self.host}:{self.port} ({cause}); reconnecting")
        try:
            sock = self._connect()
        except CommError as exc:
            self._fail(CommError(f"{exc}; the connection was lost: {cause}"))
            return False
        with self._cv:
            self._sock, self._generation, self._broken = sock, self._generation + 1, None
            self._queue = collections.deque(sorted(self._flight))  # resend whatever has no result yet
            self.reconnects += 1
            self._cv.notify_all()
        self._start_receiver()
        return True

    # -- threads ------------------------------------------------------------------------
    def _send_loop(self):
        while True:
            with self._cv:
                # a broken connection is reopened only when there is something to (re)send
                while not (self._queue or (self._broken and self._flight) or self._closed or self._error):
                    self._cv.wait(0.5)
                if self._closed or self._error:
                    return
                if self._broken is not None:
                    seq = None
                else:
                    seq = self._queue.popleft()
                    record, sock, generation = self._flight[seq], self._sock, self._generation
            if seq is None:
                if not self._reconnect():
                    return
                continue
            try:
                record["t_send"] = time.perf_counter()
                send_all(sock, record["frames"], self.timeout)
                record["t_sent"] = time.perf_counter()
                self.bytes_sent += record["wire_bytes"]
            except (OSError, ValueError) as exc:
                self._lost(generation, exc)

    def _receive_loop(self, sock, generation):
        sock.settimeout(min(self.timeout, 1.0))
        quiet_since = time.monotonic()
        while True:
            try:
                frame = read_frame(sock, check=_check_result, control_limit=4096)
            except IdleTimeout as exc:
                with self._cv:
                    waiting = bool(self._flight) and not self._closed
                    stale = generation != self._generation or self._closed
                if stale:
                    return
                if exc.partial or (waiting and time.monotonic() - quiet_since > self.timeout):
                    self._lost(generation, CommError(f"no answer from the server for {self.timeout:.0f} s"))
                    return
                if not waiting:
                    quiet_since = time.monotonic()
                continue
            except (OSError, ConnectionClosed, ValueError) as exc:
                self._lost(generation, exc)
                return
            except FrameError as exc:
                self._fail(CommError(f"pipeline: the server {self.host}:{self.port} sent a bad frame: {exc}"))
                return
            quiet_since = time.monotonic()
            now = time.perf_counter()
            with self._cv:
                record = self._flight.get(frame.seq)
                if frame.kind_name == "ERROR":
                    reason = frame.payload.decode("utf-8", "replace")
                    if not self._flight:  # e.g. closed for idleness between batches: reconnect when needed
                        self._lost(generation, CommError(f"the server closed the connection: {reason}"))
                        return
                    self._error = CommError(f"pipeline: the server {self.host}:{self.port} refused batch data: "
                                            f"{reason}")
                elif frame.kind_name == "ACK" and record is not None:
                    record["t_ack"] = now
                elif frame.kind_name == "RESULT" and record is not None:
                    scores = feature_codec.decode(frame.dtype, frame.scale, frame.offset, frame.shape, frame.payload)
                    record.update(t_result=now, cloud_s=frame.aux)
                    del self._flight[frame.seq]
                    self._results[frame.seq] = (scores, record)
                self._cv.notify_all()
                if self._error is not None:
                    return


def _check_result(frame):
    if frame.kind_name == "RESULT" and frame.length > RESULT_LIMIT:
        raise FrameError(f"RESULT frame of {frame.length} bytes (limit {RESULT_LIMIT})")

