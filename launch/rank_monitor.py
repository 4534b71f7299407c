"""RankMonitor: minwa-launch's view of its local ranks -- who ended first, and the cause each one reported."""
import json
import os
import select
import socket
import threading
import time

from minwa.failure import LIFELINE, RANK_DIR_ENV

_RANK_ENV = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")


def _scan_ranks(marker, found):
    """pid -> rank of this job's local processes, read from /proc (Linux) by our unique $MINWA_RANK_DIR."""
    needle = f"{RANK_DIR_ENV}={marker}".encode()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return
    for pid in pids:
        if pid in found:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        if needle not in entries:
            continue
        for entry in entries:
            key, _, value = entry.partition(b"=")
            if key.decode(errors="replace") in _RANK_ENV and value.isdigit():
                found[pid] = int(value)
                break


class RankMonitor:
    """Watches this host's ranks and notes the order in which they end.

    mpiexec (hydra) kills every other rank once one has died and then reports one
    process id, not necessarily the one that died first. Each minwa rank connects a
    "lifeline" socket to this monitor when it starts (``minwa.failure.register_rank``)
    and keeps it open; the kernel closes it as the process ends, before mpiexec can
    react and kill the others, so the first lifeline to close names the rank that
    died first. Ranks that do not register are found in /proc by this job's
    $MINWA_RANK_DIR and watched through a pidfd (Linux), a weaker signal: a large
    process may finish exiting after the ones mpiexec killed. Ends seen in one
    wake-up form one group.
    """

    def __init__(self, rank_dir, size):
        self.rank_dir, self.size = rank_dir, int(size)
        self.ranks = {}  # pid -> rank
        self.ended = []  # [(group number, pid)] in the order observed
        self._group = 0
        self._poller = select.poll()
        self._conns = {}  # fd -> [socket, bytes received, pid]
        self._pidfds = {}  # fd -> pid, for ranks found in /proc
        self._lifelines = set()
        self.reports = []  # (rank, the cause a rank sent before it aborted), in the order received
        self.listener = None
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(rank_dir, LIFELINE))
            listener.listen(1024)
            listener.setblocking(False)
            self.listener = listener
            self._poller.register(listener.fileno(), select.POLLIN)
        except (OSError, AttributeError):
            self.listener = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="minwa-launch-monitor", daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, OSError):
                return
            conn.setblocking(False)
            self._conns[conn.fileno()] = [conn, b"", None]
            self._poller.register(conn.fileno(), select.POLLIN)

    def _read(self, fd):
        """Data from a lifeline (its registration line) or its end; returns the pid that ended, if any."""
        entry = self._conns[fd]
        try:
            data = entry[0].recv(4096)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if data:
            entry[1] += data
            while b"\n" in entry[1]:
                line, entry[1] = entry[1].split(b"\n", 1)
                self._note(entry, line)
            return None
        self._poller.unregister(fd)
        entry[0].close()
        del self._conns[fd]
        return entry[2]

    def _note(self, entry, line):
        """A line from a rank: its registration (rank, pid, host) or the cause of its failure."""
        try:
            info = json.loads(line)
            if "failed" in info:
                self.reports.append((self.ranks.get(entry[2]), str(info["failed"]).split("\n")[0]))
            elif entry[2] is None:
                entry[2] = int(info["pid"])
                self.ranks[entry[2]] = int(info["rank"])
                self._lifelines.add(entry[2])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass

    def _discover(self):
        if len(self.ranks) >= self.size or not hasattr(os, "pidfd_open"):
            return
        found = {}
        _scan_ranks(self.rank_dir, found)
        for pid, rank in found.items():
            if pid in self.ranks:
                continue
            self.ranks[pid] = rank
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            self._pidfds[fd] = pid
            self._poller.register(fd, select.POLLIN)

    def _run(self):
        started, next_scan = time.monotonic(), time.monotonic() + 0.5
        while not self._stop.is_set():
            ended = []
            for fd, _ in self._poller.poll(100):
                if self.listener is not None and fd == self.listener.fileno():
                    self._accept()
                elif fd in self._conns:
                    pid = self._read(fd)
                    if pid is not None:
                        ended.append(pid)
                elif fd in self._pidfds:
                    self._poller.unregister(fd)
                    os.close(fd)
                    pid = self._pidfds.pop(fd)
                    if pid not in self._lifelines:
                        ended.append(pid)
            if ended:
                self._group += 1
                self.ended += [(self._group, pid) for pid in ended]
            now = time.monotonic()
            if now >= next_scan:
                self._discover()
                next_scan = now + (0.5 if now - started < 10 else 3.0)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=5)
        for entry in self._conns.values():
            entry[0].close()
        for fd in self._pidfds:
            os.close(fd)
        if self.listener is not None:
            self.listener.close()
        self._conns, self._pidfds = {}, {}

    def first_to_end(self):
        """(pids of the rank(s) seen to end first, whether that is known from lifelines rather than guessed)."""
        if not self.ended:
            return [], False
        first_group = self.ended[0][0]
        first = [pid for group, pid in self.ended if group == first_group]
        return first, all(pid in self._lifelines for pid in first)
