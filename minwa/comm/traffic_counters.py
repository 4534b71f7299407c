"""TrafficCounters: the bytes and messages a process has put on the wire through minwa's communicators."""
import threading


class TrafficCounters(dict):
    """Traffic totals shared by a communicator and those split/dup'ed from it (thread-safe)."""

    def __init__(self):
        super().__init__(bytes_sent=0, messages=0, collective_bytes=0, collectives=0)
        self._lock = threading.Lock()

    def add(self, **amounts):
        with self._lock:
            for key, amount in amounts.items():
                self[key] += amount
