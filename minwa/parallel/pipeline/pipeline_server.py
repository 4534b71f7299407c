"""PipelineServer: the cloud side: authenticated connections, each client's batches through the cloud net.

One thread accepts; each connection gets a reader thread (handshake, frames checked
against the Source shapes before their payload is read, ACK per complete batch) and a
worker thread (cloud forward, RESULT with the class scores). The net is shared under a
lock; a connection that is slow, idle or hostile only ever blocks its own threads, and
a bad frame closes that connection with a logged reason. With TLS the socket is a
SharedTLS, so the reader's reads and the ACK/RESULT writes never use the SSL object at
the same time. ``stop()`` (SIGTERM in ``minwa pipeline serve``) closes the listener and
every connection.
"""
import queue
import socket
import ssl
import sys
import threading
import time

import numpy

from minwa import backend
from minwa.errors import CommError, ConfigError

from . import feature_codec
from .frame import ConnectionClosed, FrameError, close_quietly, pack, read_frame
from .handshake import server_handshake
from .shared_tls import SharedTLS


class PipelineServer:
    """Serve ``net`` (a cloud-side Net that starts with Source layers) on ``host:port``."""

    def __init__(self, net, secret, host="127.0.0.1", port=0, tls=None, depth=4, idle_timeout=60.0,
                 handshake_timeout=10.0, max_clients=64, log=None):
        self.net, self.secret, self.tls = net, secret, tls
        self.depth, self.max_clients = max(1, int(depth)), int(max_clients)
        self.idle_timeout, self.handshake_timeout = float(idle_timeout), float(handshake_timeout)
        self.log = log or (lambda text: print(f"minwa pipeline serve: {text}", file=sys.stderr, flush=True))
        self.sources = {layer.pair: layer for layer in net.layers if layer.type == "Source"}
        if not self.sources:
            raise ConfigError("pipeline serve: the cloud net has no Source layer (give the cloud.yaml of "
                              "'minwa pipeline split')")
        if len(net.output_names) != 1:
            raise ConfigError(f"pipeline serve: the cloud net has outputs {net.output_names}; expected one blob of "
                              "class scores")
        self.output = net.output_names[0]
        self._net_lock = threading.Lock()
        self._stop = threading.Event()
        self._connections = set()
        self._lock = threading.Lock()
        self.batches = 0
        self.rejected = 0
        self._listener = socket.create_server((host, int(port)), backlog=64, reuse_port=False)
        self._listener.settimeout(0.2)
        self.address = self._listener.getsockname()[:2]
        self._accept_thread = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self):
        self._accept_thread = threading.Thread(target=self._accept_loop, name="minwa-pipeline-accept", daemon=True)
        self._accept_thread.start()
        return self

    def wait(self, timeout=None):
        """Block until stop() (returns True) or ``timeout`` seconds (False)."""
        return self._stop.wait(timeout)

    def stop(self):
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            close_quietly(sock)
        if self._accept_thread is not None and self._accept_thread is not threading.current_thread():
            self._accept_thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- connections --------------------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                sock, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                full = len(self._connections) >= self.max_clients
            if full:
                self.log(f"client {peer[0]}:{peer[1]}: refused, {self.max_clients} clients connected already")
                try:
                    sock.settimeout(1.0)
                    sock.sendall(pack("ERROR", b"server full"))
                except OSError:
                    pass
                close_quietly(sock)
                continue
            threading.Thread(target=self._serve, args=(sock, f"{peer[0]}:{peer[1]}"), daemon=True,
                             name=f"minwa-pipeline-{peer[1]}").start()

    def _serve(self, sock, peer):
        with self._lock:
            self._connections.add(sock)
        work = queue.Queue(maxsize=self.depth)
        send_lock = threading.Lock()
        worker = None
        try:
            sock.settimeout(self.handshake_timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            # ACK and RESULT frames are small: without this, Nagle holds one back until the client's delayed
            # TCP ack of the previous one (measured on loopback: every ACK 27 ms late, round trips 30-38 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                plain = sock
                sock = SharedTLS(self.tls.wrap_socket(plain, server_side=True))
                with self._lock:
                    self._connections.discard(plain)
                    self._connections.add(sock)
            server_handshake(sock, self.secret)
            sock.settimeout(self.idle_timeout)
            worker = threading.Thread(target=self._work, args=(sock, peer, work, send_lock), daemon=True)
            worker.start()
            self._read_batches(sock, peer, work, send_lock)
        except ConnectionClosed as exc:
            if exc.partial:
                self._reject(sock, peer, str(exc), send_lock, tell=False)
        except (FrameError, TimeoutError) as exc:
            self._reject(sock, peer, str(exc), send_lock)
        except (ssl.SSLError, OSError) as exc:
            if not self._stop.is_set():
                self.log(f"client {peer}: connection dropped ({exc})")
        finally:
            if worker is not None:
                _put(work, None, self._stop)
                worker.join(timeout=self.idle_timeout)
            close_quietly(sock)
            with self._lock:
                self._connections.discard(sock)

    def _reject(self, sock, peer, reason, send_lock, tell=True):
        self.rejected += 1
        self.log(f"client {peer}: {reason}; connection closed")
        if tell:
            try:
                sock.settimeout(1.0)
                with send_lock:
                    sock.sendall(pack("ERROR", reason.encode("utf-8")[:1024]))
            except (OSError, ValueError):
                pass

    def _read_batches(self, sock, peer, work, send_lock):
        pending, seq = {}, None
        while not self._stop.is_set():
            frame = read_frame(sock, check=self._check)
            if frame.kind_name == "BYE":
                return
            if frame.kind_name != "DATA":
                raise FrameError(f"unexpected {frame.kind_name} frame during data transfer")
            if seq is not None and frame.seq != seq:
                raise FrameError(f"batch {frame.seq} started before batch {seq} was complete "
                                 f"(missing pairs {sorted(set(self.sources) - set(pending))})")
            if frame.pair in pending:
                raise FrameError(f"pair {frame.pair} sent twice for batch {frame.seq}")
            seq = frame.seq
            pending[frame.pair] = frame
            if len(pending) < len(self.sources):
                continue
            sizes = {f.shape[0] for f in pending.values()}
            if len(sizes) != 1:
                raise FrameError(f"batch {seq}: pairs carry different batch sizes {sorted(sizes)}")
            with send_lock:
                sock.sendall(pack("ACK", seq=seq))
            if not _put(work, (seq, pending), self._stop):
                return
            pending, seq = {}, None

    def _check(self, frame):
        """Header checks against the Source shapes, before any payload is read."""
        if frame.kind_name != "DATA":
            return
        source = self.sources.get(frame.pair)
        if source is None:
            raise FrameError(f"DATA frame for pair {frame.pair}; this server's Sources are pairs "
                             f"{sorted(self.sources)}")
        if frame.dtype == 0:
            raise FrameError(f"pair {frame.pair}: DATA frame without a tensor dtype")
        want = source.shape
        shape = frame.shape
        if len(shape) != len(want) or tuple(shape[1:]) != tuple(want[1:]) or not 1 <= shape[0] <= want[0]:
            raise FrameError(f"pair {frame.pair}: shape {tuple(shape)} but Source {source.name!r} takes "
                             f"(1..{want[0]}, {', '.join(map(str, want[1:]))})")

    def _work(self, sock, peer, work, send_lock):
        while True:
            try:
                item = work.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is None:
                return
            seq, frames = item
            start = time.perf_counter()
            feed = {self.sources[p].tops[0]: backend.to_device(
                feature_codec.decode(f.dtype, f.scale, f.offset, f.shape, f.payload)) for p, f in frames.items()}
            with self._net_lock:
                scores = backend.to_host(self.net.forward(feed)[self.output])
            scores = numpy.ascontiguousarray(scores, dtype=numpy.float32)
            seconds = time.perf_counter() - start
            code, scale, offset, payload = feature_codec.encode(scores, "float32")
            try:
                with send_lock:
                    sock.sendall(pack("RESULT", payload, seq=seq, dtype=code, shape=scores.shape, aux=seconds))
            except OSError as exc:
                self.log(f"client {peer}: cannot send the result of batch {seq} ({exc})")
                close_quietly(sock)
                return
            self.batches += 1


def _put(work, item, stop):
    """Queue ``item``, waiting for room but not past stop()."""
    while not stop.is_set():
        try:
            work.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False



def server_tls_context(cert, key):
    """A TLS server context (stdlib ssl) from a PEM certificate and key."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CommError(f"pipeline serve: cannot load the TLS certificate {cert!r} / key {key!r}: {exc}") from None
    return context
