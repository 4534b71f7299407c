"""The lifeline: a socket from each rank to minwa-launch ($MINWA_RANK_DIR/lifeline.sock).

The rank sends one registration line (rank, pid, host) and, when it fails, one line
with the cause before it aborts; the launcher's account then does not depend on
stderr surviving. The kernel closes the socket as the process ends, however it ends,
which tells the launcher who died first. The other way round, an end of file from the
launcher means minwa-launch itself is gone (killed): the rank then ends too, so a job
never outlives its launcher.
"""
import json
import os
import socket
import threading

from ._output import host, say

#: Set by minwa-launch: the directory holding its lifeline socket.
RANK_DIR_ENV = "MINWA_RANK_DIR"
LIFELINE = "lifeline.sock"
_state = {}


def register_rank(comm=None):
    """Connect this rank's lifeline (once per process); None outside minwa-launch or on another host."""
    directory = os.environ.get(RANK_DIR_ENV)
    if not directory or _state.get("socket") is not None:
        return _state.get("socket")
    from .abort import mpi_comm  # noqa: PLC0415

    rank = mpi_comm(comm).Get_rank()
    try:
        line = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        line.connect(os.path.join(directory, LIFELINE))
        line.sendall(json.dumps({"rank": rank, "pid": os.getpid(), "host": host()}).encode() + b"\n")
    except (OSError, AttributeError):
        return None
    _state.update(socket=line, rank=rank)
    threading.Thread(target=_watch_launcher, args=(line, rank), name="minwa-lifeline", daemon=True).start()
    return line


def report(message):
    """Tell minwa-launch why this rank is about to end (no-op without a lifeline)."""
    line = _state.get("socket")
    if line is None:
        return
    try:
        line.sendall(json.dumps({"failed": message}).encode() + b"\n")
    except OSError:
        pass


def _watch_launcher(line, rank):
    """End this rank when minwa-launch goes away (it never sends anything, so any return is its end)."""
    try:
        while line.recv(4096):
            pass
    except OSError:
        pass
    if _state.get("socket") is line:
        say(f"minwa: rank {rank}: minwa-launch has ended (killed?); ending this rank")
        os._exit(137)
