"""``minwa-launch -n N [--hostfile F] [--gpus-per-node G] [--dry-run] -- minwa train CONFIG``.

Builds the right launch command for the MPI found on PATH (MPICH's hydra and Open
MPI spell hostfiles, environment passing and ranks-per-node differently; SLURM's
srun is a third spelling), prints it, runs it and returns its exit code. While the
job runs its output is passed through unchanged; when it fails, minwa-launch adds
one line saying which rank failed and how (see RankMonitor for how the rank that
died first is found).
"""
import argparse
import contextlib
import functools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from minwa.errors import ConfigError
from minwa.failure import RANK_DIR_ENV

from .rank_monitor import RankMonitor

FLAVOURS = ("mpich", "openmpi", "srun")
_TAIL = 64 * 1024


def detect_flavour(mpiexec="mpiexec", timeout=20):
    """'mpich' (hydra, also Intel MPI and MVAPICH) or 'openmpi', from ``mpiexec --version``."""
    path = shutil.which(mpiexec)
    if path is None:
        raise ConfigError(f"minwa-launch: {mpiexec!r} is not on PATH; install an MPI (pip install mpich) "
                          "or name it with --mpiexec")
    try:
        done = subprocess.run([path, "--version"], check=False, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"minwa-launch: '{mpiexec} --version' did not run: {exc}") from None
    return flavour_of(done.stdout + done.stderr, mpiexec)


def flavour_of(version_text, mpiexec="mpiexec"):
    """The MPI flavour named by an ``mpiexec --version`` text."""
    text = version_text.lower()
    if "open mpi" in text or "openrte" in text or "open-mpi" in text or "prrte" in text:
        return "openmpi"
    if "hydra" in text or "mpich" in text or "intel(r) mpi" in text or "mvapich" in text:
        return "mpich"
    first = version_text.strip().splitlines()[0] if version_text.strip() else "(no output)"
    raise ConfigError(f"minwa-launch: cannot tell which MPI {mpiexec!r} is ({first!r}); "
                      "pass --flavour mpich or --flavour openmpi")


def build_command(flavour, n, program, hostfile=None, gpus_per_node=None, env=None, mpiexec="mpiexec",
                  extra=(), as_root=False):
    """The launch command (a list) for ``flavour``; ``env`` is passed to every rank."""
    if flavour not in FLAVOURS:
        raise ConfigError(f"minwa-launch: flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    n = int(n)
    if n < 1:
        raise ConfigError(f"minwa-launch: -n must be >= 1, got {n}")
    if not program:
        raise ConfigError("minwa-launch: no program given; e.g. minwa-launch -n 2 -- minwa train CONFIG")
    env = dict(env or {})
    if gpus_per_node is not None:
        if int(gpus_per_node) < 1:
            raise ConfigError(f"minwa-launch: --gpus-per-node must be >= 1, got {gpus_per_node}")
        env["MINWA_GPUS_PER_NODE"] = str(int(gpus_per_node))
    if flavour == "srun":
        if hostfile:
            raise ConfigError("minwa-launch: --hostfile does not apply to srun (SLURM chooses the nodes)")
        cmd = ["srun", "-n", str(n)]
        if gpus_per_node is not None:
            cmd += [f"--ntasks-per-node={int(gpus_per_node)}"]
        cmd += ["--export=" + ",".join(["ALL"] + [f"{k}={v}" for k, v in env.items()])]
    elif flavour == "mpich":
        cmd = [mpiexec, "-n", str(n)]
        if hostfile:
            cmd += ["-f", str(hostfile)]
        if gpus_per_node is not None:
            cmd += ["-ppn", str(int(gpus_per_node))]
        for key, value in env.items():
            cmd += ["-genv", key, str(value)]
    else:
        cmd = [mpiexec, "-n", str(n)]
        if as_root:
            cmd += ["--allow-run-as-root"]
        if hostfile:
            cmd += ["--hostfile", str(hostfile)]
        if gpus_per_node is not None:
            cmd += ["--map-by", f"ppr:{int(gpus_per_node)}:node"]
        for key, value in env.items():
            cmd += ["-x", f"{key}={value}"]
    return cmd + list(extra) + list(program)


# --------------------------------------------------------------------------------------
# running and explaining failures

_HYDRA = re.compile(r"BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\s*=\s*PID (?P<pid>\d+) RUNNING AT "
                    r"(?P<host>\S+)\s*=\s*EXIT CODE: (?P<code>-?\d+)")
_HYDRA_STRING = re.compile(r"TERMINATED WITH THE EXIT STRING: (?P<text>[^\n]+)")
_OPENMPI = re.compile(r"process rank (?P<rank>\d+) with PID (?P<pid>\d+) on node (?P<host>\S+) "
                      r"exited on signal (?P<sig>\d+)")
_MINWA_FAILED = re.compile(r"minwa: (?P<text>(?:rank \d+ \([^)]*\) (?:failed|exited with status)|watchdog)[^\n]*)")


class _Tail:
    """Passes a stream through to our own and keeps its last bytes for the failure report."""

    def __init__(self, source, sink):
        self.data = bytearray()
        self.thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
        self.thread.start()

    def _pump(self, source, sink):
        while True:
            try:
                chunk = os.read(source.fileno(), 65536)
            except OSError:
                break
            if not chunk:
                break
            try:
                sink.write(chunk)
                sink.flush()
            except (OSError, ValueError):
                pass
            self.data += chunk
            if len(self.data) > 2 * _TAIL:
                del self.data[:-_TAIL]

    def text(self):
        return bytes(self.data[-_TAIL:]).decode("utf-8", "replace")


def _signal_name(number):
    try:
        return signal.Signals(int(number)).name
    except ValueError:
        return f"signal {number}"


def _with_signal_name(text):
    """'Killed (signal 9)' -> 'Killed (signal 9, SIGKILL)'."""
    return re.sub(r"signal (\d+)\)", lambda m: f"signal {m.group(1)}, {_signal_name(m.group(1))})", text)


def _hydra_report(output):
    match = _HYDRA.search(output)
    if not match:
        return None
    string = _HYDRA_STRING.search(output)
    code = int(match.group("code"))
    text = string.group("text").strip() if string else f"exit code {code}"
    return int(match.group("pid")), match.group("host"), code, text


def explain_failure(output, pid_ranks, first=(), certain=True, reports=()):
    """One line naming the failed rank and the cause; None if nothing is recognised.

    In order of trust: the cause a rank sent over its lifeline before it aborted
    (``reports``: it does not depend on stderr surviving the abort), a rank's own minwa
    message on stderr (an exception, the watchdog), Open
    MPI's report (it names the rank), the local rank(s) seen to end first
    (``first``: pids; ``certain`` False when only seen through pidfds), and
    hydra's report of one process id.
    """
    if reports:
        return f"the job failed: {reports[0][1]}"
    minwa = _MINWA_FAILED.findall(output)
    if minwa:
        return f"the job failed: {minwa[0]}"
    match = _OPENMPI.search(output)
    if match:
        sig = int(match.group("sig"))
        return (f"rank {match.group('rank')} (pid {match.group('pid')} on {match.group('host')}) was killed by "
                f"signal {sig} ({_signal_name(sig)}); mpirun stopped the other ranks")
    hydra = _hydra_report(output)
    first = [pid for pid in first if pid in pid_ranks]
    if first:
        host = hydra[1] if hydra else socket.gethostname().split(".")[0]
        said = f"; mpiexec reports: {_with_signal_name(hydra[3])}" if hydra else ""
        verb = "died first" if certain else "seems to have died first"
        if len(first) == 1:
            who = f"rank {pid_ranks[first[0]]} (pid {first[0]} on {host}) {verb}"
        else:
            names = " or ".join(f"rank {pid_ranks[pid]} (pid {pid})" for pid in sorted(first, key=pid_ranks.get))
            who = f"{names} on {host} {verb} (they ended within the same moment)"
        guess = "" if certain else " (a guess from exit order: the program did not call minwa.failure.register_rank)"
        return (f"{who}, without a Python error (killed, crashed or exited outside minwa); mpiexec then stopped "
                f"the other ranks{said}{guess}")
    if hydra:
        pid, host, _, text = hydra
        rank = pid_ranks.get(pid)
        who = f"rank {rank}" if rank is not None else "a rank"
        return (f"{who} (pid {pid} on {host}) ended with {_with_signal_name(text)}; mpiexec stopped the other "
                "ranks (the first rank to die may be another one: mpiexec reports one process)")
    return None


def run(cmd, rank_dir=None, size=None, stdout=None, stderr=None):
    """Run ``cmd``, passing its output through; returns (exit code, explanation or None)."""
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    monitor = RankMonitor(rank_dir, size or 1) if rank_dir else None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                preexec_fn=functools.partial(_end_with_parent, os.getpid()))
    except BaseException:
        if monitor is not None:
            monitor.stop()
        raise
    tails = [_Tail(proc.stdout, stdout), _Tail(proc.stderr, stderr)]
    previous = {}

    def forward(signum, frame):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, forward)
    try:
        code = wait_for_job(proc, monitor)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if monitor is not None:
            monitor.stop()
    for tail in tails:
        tail.thread.join(timeout=10)
    if code == 0:
        return 0, None
    output = tails[0].text() + "\n" + tails[1].text()
    ranks = monitor.ranks if monitor else {}
    first, certain = monitor.first_to_end() if monitor else ([], True)
    reports = monitor.reports if monitor else []
    return (code if code >= 0 else 128 - code), explain_failure(output, ranks, first, certain, reports)


def wait_for_job(proc, monitor, grace_s=10.0, poll_s=0.5):
    """mpiexec's exit code, bounded once a rank has reported a failure.

    After a rank's report, mpiexec normally ends every rank within a second. A rank
    stopped with SIGSTOP ignores hydra's SIGTERM, so ``grace_s`` after the report the
    ranks still alive are SIGKILLed, and ``grace_s`` after that mpiexec itself.
    """
    deadline = None
    killed_ranks = False
    while True:
        try:
            return proc.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            pass
        if monitor is None or not monitor.reports:
            continue
        now = time.monotonic()
        if deadline is None:
            deadline = now + grace_s
        elif now > deadline and not killed_ranks:
            for pid in list(monitor.ranks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            killed_ranks, deadline = True, now + grace_s
        elif now > deadline:
            proc.kill()
            return proc.wait(timeout=grace_s)


def _end_with_parent(parent):
    """In the child, before exec: a session of its own (a terminal's Ctrl-C reaches it once, through us), and
    SIGTERM when minwa-launch dies, however it dies (Linux PR_SET_PDEATHSIG), so the job never outlives it."""
    os.setsid()
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the ranks still end when their lifeline to minwa-launch closes


def parse_args(argv):
    argv = list(argv)
    if "--" in argv:
        split = argv.index("--")
        own, program = argv[:split], argv[split + 1:]
    else:
        own, program = argv, []
    parser = argparse.ArgumentParser(prog="minwa-launch", description=__doc__.split("\n\n")[0],
                                     usage="minwa-launch -n N [options] -- PROGRAM [ARGS...]")
    parser.add_argument("-n", "--np", type=int, required=True, dest="n", help="number of ranks")
    parser.add_argument("--hostfile", help="hosts to run on (MPI hostfile)")
    parser.add_argument("--gpus-per-node", type=int, help="ranks (one per GPU) per node; sets MINWA_GPUS_PER_NODE")
    parser.add_argument("--dry-run", action="store_true", help="print the command without running it")
    parser.add_argument("--flavour", "--flavor", choices=("auto",) + FLAVOURS, default="auto",
                        help="launch command style (default: detect from 'mpiexec --version')")
    parser.add_argument("--mpiexec", default=os.environ.get("MINWA_MPIEXEC", "mpiexec"),
                        help="the mpiexec to use (default: $MINWA_MPIEXEC or mpiexec on PATH)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set an environment variable on every rank (repeatable)")
    parser.add_argument("--mpi-arg", action="append", default=[], metavar="ARG",
                        help="pass ARG to mpiexec before the program (repeatable)")
    args = parser.parse_args(own)
    if not program:
        parser.error("give the program after '--', e.g. minwa-launch -n 2 -- minwa train CONFIG")
    args.program = program
    return args


def _env_pairs(items):
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"minwa-launch: --env {item!r}: expected KEY=VALUE")
        env[key] = value
    return env


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        flavour = detect_flavour(args.mpiexec) if args.flavour == "auto" else args.flavour
        env = _env_pairs(args.env)
        rank_dir = None if args.dry_run else tempfile.mkdtemp(prefix="minwa-ranks-")
        if rank_dir:
            env[RANK_DIR_ENV] = rank_dir
        cmd = build_command(flavour, args.n, args.program, hostfile=args.hostfile, gpus_per_node=args.gpus_per_node,
                            env=env, mpiexec=args.mpiexec, extra=args.mpi_arg,
                            as_root=hasattr(os, "geteuid") and os.geteuid() == 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"minwa-launch: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    if args.dry_run:
        return 0
    try:
        code, why = run(cmd, rank_dir, size=args.n)
    except OSError as exc:
        print(f"minwa-launch: cannot start {cmd[0]!r}: {exc}", file=sys.stderr)
        return 127
    finally:
        if rank_dir:
            shutil.rmtree(rank_dir, ignore_errors=True)
    if code != 0:
        print(f"minwa-launch: {why or f'the job ended with exit code {code}'} (exit code {code})",
              file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
