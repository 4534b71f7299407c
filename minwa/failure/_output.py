"""Saying things on stderr so that they survive an MPI Abort, once per job and host."""
import fcntl
import hashlib
import os
import socket
import struct
import sys
import termios
import time

_claims = []  # abstract sockets this process holds (freed by the kernel when it ends)


def host():
    return socket.gethostname().split(".")[0]


def who(rank):
    return f"rank {rank} (pid {os.getpid()} on {host()})"


def _unread(fd):
    """Bytes written to ``fd`` (a pipe) that its reader has not taken yet; 0 when unknown."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except (OSError, ValueError, struct.error):
        return 0


def say(text, stream=None, drain_s=2.0):
    """Write ``text`` (one line or more) and wait until the reader of the pipe has taken it.

    mpiexec's proxy tears a job down on MPI Abort without reading what a rank already
    wrote into its stderr pipe; waiting (bounded) until the pipe is empty is what keeps
    the message.
    """
    stream = stream or sys.stderr
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    deadline = time.monotonic() + drain_s
    while _unread(fd) > 0 and time.monotonic() < deadline:
        time.sleep(0.005)


def job_key():
    """What tells this MPI job apart from others on this host: minwa-launch's rank directory or mpiexec's proxy."""
    return os.environ.get("MINWA_RANK_DIR") or f"ppid-{os.getppid()}"


def first_to_say(what):
    """True in the first process of this job on this host to claim ``what`` (Linux abstract sockets; else True)."""
    digest = hashlib.sha1(f"{job_key()}\0{what}".encode()).hexdigest()[:24]
    try:
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        claim.bind(f"\0minwa-{digest}")
    except OSError as exc:
        return getattr(exc, "errno", None) != 98  # EADDRINUSE: another rank said it already
    except AttributeError:
        return True
    _claims.append(claim)
    return True
