"""Timeline: what each rank did when, as Chrome trace JSON (open in chrome://tracing or ui.perfetto.dev).

Each rank is one process row (pid = rank) with named lanes (threads): ``compute``
(steps, per-layer forward/backward, updates), ``wait`` (time blocked on
communication) and one lane per gradient bucket showing its transfer in flight,
so the overlap of communication with compute is visible at a glance.

Times are microseconds since ``bind(comm)`` (a barrier, so all ranks share the
origin) or since construction. On ``close()`` every rank writes its events to
``PATH.rank<k>``; rank 0 then merges the parts it finds (waiting up to
``merge_timeout`` seconds for the others) into PATH. No MPI is needed to close, so
a failing rank cannot leave the others blocked here.
"""
import contextlib
import json
import os
import sys
import threading
import time


class Timeline:
    """Collects trace events of one rank; ``close()`` writes the merged Chrome trace."""

    def __init__(self, path, rank=0, size=None, merge_timeout=30.0):
        self.path = os.fspath(path)
        self.rank = int(rank)
        self.size = size
        self.merge_timeout = float(merge_timeout)
        self.origin = time.perf_counter()
        self.events = []
        self.closed = False
        self._lanes = {}
        self._lock = threading.Lock()
        self.lane("compute")

    # -- clock and lanes ------------------------------------------------------------------
    def bind(self, comm, barrier=True):
        """Take rank and size from ``comm`` and align the time origin after a barrier (collective).

        ``barrier=False`` when the caller has just left another collective that
        synchronised the ranks (every rank must make the same choice).
        """
        self.rank, self.size = comm.rank, comm.size
        if barrier:
            comm.barrier()
        self.origin = time.perf_counter()

    def us(self, t=None):
        """Microseconds since the origin of a ``time.perf_counter()`` value (default: now)."""
        return ((time.perf_counter() if t is None else t) - self.origin) * 1e6

    def lane(self, name):
        """The thread id of lane ``name`` (created with a name label on first use)."""
        tid = self._lanes.get(name)
        if tid is None:
            tid = self._lanes[name] = len(self._lanes)
            self._add({"ph": "M", "name": "thread_name", "tid": tid, "args": {"name": name}})
            self._add({"ph": "M", "name": "thread_sort_index", "tid": tid, "args": {"sort_index": tid}})
        return tid

    def _add(self, event):
        event.setdefault("pid", self.rank)
        with self._lock:
            self.events.append(event)

    # -- events -------------------------------------------------------------------------------
    def begin(self, name, cat="compute", lane="compute", args=None):
        self._add(_event("B", name, cat, self.lane(lane), self.us(), args))

    def end(self, name, cat="compute", lane="compute", args=None):
        self._add(_event("E", name, cat, self.lane(lane), self.us(), args))

    def instant(self, name, cat="mark", lane="compute", args=None):
        event = _event("i", name, cat, self.lane(lane), self.us(), args)
        event["s"] = "t"
        self._add(event)

    def complete(self, name, start, stop, cat="compute", lane="compute", args=None):
        """A finished span between two ``time.perf_counter()`` values."""
        event = _event("X", name, cat, self.lane(lane), self.us(start), args)
        event["dur"] = max(stop - start, 0.0) * 1e6
        self._add(event)

    def counter(self, name, values):
        self._add({"ph": "C", "name": name, "ts": self.us(), "tid": 0, "args": dict(values)})

    @contextlib.contextmanager
    def span(self, name, cat="compute", lane="compute", args=None):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.complete(name, start, time.perf_counter(), cat, lane, args)

    # -- output ---------------------------------------------------------------------------------
    def _own_events(self):
        meta = {"ph": "M", "name": "process_name", "pid": self.rank, "tid": 0, "args": {"name": f"rank {self.rank}"}}
        sort = {"ph": "M", "name": "process_sort_index", "pid": self.rank, "tid": 0, "args": {"sort_index": self.rank}}
        with self._lock:
            return [meta, sort, *self.events]

    def part_path(self, rank):
        return f"{self.path}.rank{rank}"

    def close(self):
        """Write this rank's events; rank 0 merges all parts into ``path``. Safe to call twice."""
        if self.closed:
            return self.path
        self.closed = True
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        if self.size in (None, 1) and self.rank == 0:
            _write_json(self.path, {"traceEvents": self._own_events(), "displayTimeUnit": "ms"})
            return self.path
        _write_json(self.part_path(self.rank), self._own_events())
        if self.rank != 0:
            return self.part_path(self.rank)
        return self._merge()

    def _merge(self):
        ranks = range(self.size) if self.size else [0]
        deadline = time.monotonic() + self.merge_timeout
        while self.size and time.monotonic() < deadline:
            if all(os.path.exists(self.part_path(r)) for r in ranks):
                break
            time.sleep(0.05)
        events, missing = [], []
        for r in ranks:
            try:
                with open(self.part_path(r), encoding="utf-8") as f:
                    events += json.load(f)
                os.remove(self.part_path(r))
            except (OSError, ValueError):
                missing.append(r)
        if missing:
            sys.stderr.write(f"minwa timeline: no events from rank(s) {missing} after {self.merge_timeout:.0f} s; "
                             f"{self.path} holds the other ranks only\n")
        _write_json(self.path, {"traceEvents": events, "displayTimeUnit": "ms",
                                "otherData": {"ranks": len(ranks), "missing_ranks": missing}})
        return self.path


def _event(ph, name, cat, tid, ts, args):
    event = {"ph": ph, "name": name, "cat": cat, "tid": tid, "ts": ts}
    if args:
        event["args"] = args
    return event


def _write_json(path, payload):
    """Write then rename, so a reader never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)
