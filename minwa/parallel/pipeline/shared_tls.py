"""SharedTLS: one TLS connection that a reader thread and writer threads may use at the same time.

OpenSSL's SSL objects are not thread safe, and Python's ssl module does not make one
SSLSocket safe for a ``recv`` in one thread during a ``send`` in another (a read can
need to write and a write to read: renegotiation, key updates, session tickets). So
every SSL call here runs under one lock on a non-blocking socket: it never waits
while it holds the lock, and waiting for the socket (SSLWantReadError /
SSLWantWriteError) happens in ``poll`` (``select`` where there is none, as on
Windows) outside it, in slices short enough to notice what another thread's call
did meanwhile (bytes it read for us, a close). A reader therefore never stalls a
writer, and ``settimeout`` bounds every wait as before: a ``recv_into`` that gets
nothing, or a ``send`` that makes no progress, for that long raises socket.timeout.
Plain TCP needs none of this: the OS socket is full duplex.
"""
import errno
import selectors
import socket
import ssl
import threading
import time

SLICE_S = 0.05  # longest poll between two looks at the SSL object
CHUNK = 1 << 16  # plaintext bytes per SSL write, so the lock is held briefly
#: poll(2) where the OS has it (no limit on descriptor numbers), else select(2)
WAITER = getattr(selectors, "PollSelector", selectors.SelectSelector)


class SharedTLS:
    """Wraps a connected, handshaken ssl.SSLSocket; has the socket methods the pipeline uses."""

    def __init__(self, sock):
        self._sock, self._lock, self._closed = sock, threading.Lock(), False
        self._timeout = sock.gettimeout()
        sock.setblocking(False)

    def settimeout(self, seconds):
        self._timeout = seconds

    def gettimeout(self):
        return self._timeout

    def _call(self, method, *args):
        """``method(*args)`` under the lock, retried until the socket is ready or the timeout passes."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                if self._closed:
                    raise OSError(errno.EBADF, "the TLS connection is closed")
                try:
                    return method(*args)
                except ssl.SSLWantReadError:
                    events = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    events = selectors.EVENT_WRITE
                fd = self._sock.fileno()
            left = SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            with WAITER() as waiter:
                waiter.register(fd, events)
                waiter.select(min(left, SLICE_S))

    def recv_into(self, buffer, nbytes=None):
        return self._call(self._sock.recv_into, buffer, nbytes)

    def send(self, data):
        """Send up to CHUNK bytes of ``data``; the count sent (after a timeout, retry with the same bytes)."""
        return self._call(self._sock.send, memoryview(data).cast("B")[:CHUNK])

    def sendall(self, data):
        view = memoryview(data).cast("B")
        while view:
            # after SSLWantWriteError OpenSSL wants the same bytes again: the slice is the same
            view = view[self._call(self._sock.send, view[:CHUNK]):]

    def shutdown(self, how):
        """Mark closed (later calls raise OSError) and shut the socket down, which wakes a waiting thread."""
        with self._lock:
            self._closed = True
            self._sock.shutdown(how)

    def close(self):
        with self._lock:
            self._closed = True
            self._sock.close()
