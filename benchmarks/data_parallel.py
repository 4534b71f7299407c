"""Data-parallel training: weak scaling, bytes on the wire and how much communication lazy update hides.

    python benchmarks/data_parallel.py                          # cifar10_full and Deep Image at 32x32, loopback
    python benchmarks/data_parallel.py --link 1gbit --link 10gbit   # also over tc-shaped veth links (root only)
    python benchmarks/data_parallel.py --models cifar10_full --batch 50 --steps 10
    python benchmarks/data_parallel.py --quick                  # cifar10_full, sync + lazy, 4 steps (~2-3 min)

For each model it runs, on synthetic data (throughput does not depend on the pixels):

- N = 1 and N = 2 ranks at a fixed per-rank batch (weak scaling); efficiency is
  images/s(N=2) / (2 x images/s(N=1)), both measured in this run; N = 1, N = 2 and
  PyTorch DDP alternate over ``--rounds`` rounds and the tables show medians;
- per mode (synchronous, lazy, sharded, MPI allreduce baseline, int8): the bytes one
  rank sends per step against the butterfly bound 2(N-1)/N x gradient bytes;
- the weak-scaling speedup img/s(N=2) / img/s(N=1) of every mode and of the best one and, when torch is
  installed, the same figure for PyTorch DistributedDataParallel (gloo over loopback TCP,
  1 thread per rank, its own processes: benchmarks/torch_ddp.py) on the same net and batch;
- the host's ceiling: two unconnected one-rank jobs run at once, their images/s over one
  alone's (per-step medians); what two ranks lose to each other here with no communication;
- the time one gradient exchange takes alone (no compute, measured in the same run),
  the time per step the training loop spends blocked on communication, and so the
  fraction of communication hidden: 1 - blocked / exchange-alone.

Loopback (shared memory) is faster than any real network, so with ``--link RATE`` the
two ranks also run in two network namespaces joined by a veth pair shaped with tc
(token bucket at RATE), their MPI traffic forced onto it (MPIR_CVAR_NOLOCAL=1, TCP).
Only the veth pair's own private addresses are used. This needs root and the ``ip``
and ``tc`` commands (apt-get install iproute2); without them it says so and skips.
"""
import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch_ddp  # noqa: E402 - beside this script; imports torch only when it runs

MODELS = {
    "cifar10_full": ("configs/cifar10_full.yaml", None),
    "deep_image_32": ("configs/deep_image.yaml", (3, 32, 32)),  # the paper's net at 32x32 input: 62M weights
}
#: --progress-thread -> DataParallel's progress_thread
PROGRESS_THREAD = {"auto": None, "on": True, "off": False}
#: mode -> DataParallel options
MODES = {
    "sync": {"lazy": False},
    "lazy": {"lazy": True},
    "sharded": {"lazy": True, "sharded": True},
    "allreduce": {"lazy": True, "strategy": "allreduce"},
    "int8": {"lazy": True, "strategy": "butterfly_int8"},
}
LINK_ADDRESSES = ("10.77.0.1/24", "10.77.0.2/24")  # on the benchmark's own veth pair only


# ---------------------------------------------------------------------------------------------
# worker: runs under mpiexec, one process per rank
def _model(name, batch):
    import minwa

    path, input_shape = MODELS[name]
    job = minwa.load_config(os.path.join(ROOT, path))
    model = copy.deepcopy(job.model)
    for layer in model["layers"]:
        if layer["type"] == "Input":
            shapes = layer["input_param"]["shape"]
            dims = shapes[0]["dim"]
            shapes[0]["dim"] = [batch] + list(input_shape or dims[1:])
            shapes[1]["dim"] = [batch]
    return model, job.solver


def _exchange_seconds(engine, repeats):
    """Median time of one gradient exchange of all buckets with no compute around it."""
    strategy, times = engine.strategy, []
    for _ in range(repeats):
        engine.comm.barrier()
        start = time.perf_counter()
        if engine.sharded:
            handles = [strategy.reduce_scatter_async(b.grad, key=b.index) for b in engine.buckets]
            for h in handles:
                h.wait()
            handles = [strategy.allgather_async(b.grad, key=b.index) for b in engine.buckets]
        else:
            handles = [strategy.allreduce_async(b.grad, key=b.index) for b in engine.buckets]
        for h in handles:
            h.wait()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(args):
    import minwa
    from minwa.comm import get_world
    from minwa.parallel.data import DataParallel

    comm = get_world()
    model, solver_cfg = _model(args.model, args.batch)
    rng = numpy.random.default_rng(comm.rank)
    results = {}
    # a first, unreported sync run warms the process (allocator, caches, compiled kernels), so the first mode
    # measured does not pay for it (a hand A/B on a noisy host: sync's median 5% lower when measured cold)
    for name, mode in [(None, "sync")] + [(mode, mode) for mode in args.modes.split(",")]:
        net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=1)
        solver = minwa.Solver(net, solver_cfg)
        data, label = net.input_names
        shape = net.blob_shapes[data][1:]
        classes = net.blob_shapes[net.layers[-1].bottoms[0]][1]
        feed = {data: rng.standard_normal((args.batch,) + tuple(shape), dtype=numpy.float32),
                label: rng.integers(0, classes, size=args.batch)}
        options = dict(MODES[mode], bucket_bytes=args.bucket_bytes,
                       progress_thread=PROGRESS_THREAD[args.progress_thread])
        engine = DataParallel(net, solver, comm, **options)
        for _ in range(args.warmup):
            engine.step(feed)
        engine.finish()
        comm.barrier()
        before = engine.stats()
        walls, blocked, backward = [], [], []
        start = time.perf_counter()
        for _ in range(args.steps):
            wait0, back0, t0 = engine.wait_seconds, engine.backward_seconds, time.perf_counter()
            engine.step(feed)
            walls.append(time.perf_counter() - t0)
            blocked.append(engine.wait_seconds - wait0)
            backward.append(engine.backward_seconds - back0)
        engine.finish()
        seconds = time.perf_counter() - start
        after = engine.stats()
        exchange = _exchange_seconds(engine, max(3, args.steps // 2)) if comm.size > 1 else 0.0
        steps = args.steps
        # medians per step: this machine is shared, and one slow step should not decide a figure
        row = {"seconds_per_step": statistics.median(walls), "images_per_s": steps * args.batch * comm.size / seconds,
               "bytes_per_step": (after["bytes_sent"] - before["bytes_sent"]) / steps,
               "bytes_bound": after["bytes_bound"], "gradient_bytes": after["gradient_bytes"],
               "buckets": after["buckets"], "exchange_seconds": exchange,
               "wait_per_step": statistics.median(blocked), "backward_per_step": statistics.median(backward),
               "exact_bytes": engine.strategy.counts_exact_bytes}
        engine.close()
        if name is None:
            continue
        rows = comm.gather(row, root=0)
        if comm.rank == 0:
            # the slowest rank sets the pace; bytes are per rank (rank 0's)
            merged = dict(rows[0])
            for key in ("seconds_per_step", "wait_per_step", "exchange_seconds"):
                merged[key] = max(r[key] for r in rows)
            merged["images_per_s"] = min(r["images_per_s"] for r in rows)
            results[mode] = merged
    if comm.rank == 0:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f)


# ---------------------------------------------------------------------------------------------
# launcher
def _mpiexec(n, worker_args, env=None, prefixes=None, timeout=3600, script=__file__):
    """Run ``script --worker worker_args`` on n ranks, 1 thread each; ``prefixes``: one command prefix per rank."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit(f"{os.path.basename(script)}: mpiexec not found (pip install mpich)")
    program = [sys.executable, os.path.abspath(script), "--worker", *worker_args]
    if prefixes:  # MPMD: one rank per prefix (e.g. ip netns exec NAME)
        command = [mpiexec]
        for i, prefix in enumerate(prefixes):
            command += ([":"] if i else []) + ["-n", "1", *prefix, *program]
    else:
        command = [mpiexec, "-n", str(n), *program]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                    MINWA_THREADS="1", MINWA_DEVICE="cpu", **(env or {}))
    subprocess.run(command, check=True, env=full_env, timeout=timeout)


def _worker_args(model, args, modes, out):
    worker_args = ["--model", model, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--modes", ",".join(modes), "--out", out,
                   "--bucket-bytes", str(args.bucket_bytes)]
    worker_args.append(f"--progress-thread={args.progress_thread}")
    return worker_args


def _run(n, model, args, modes, env=None, prefixes=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        _mpiexec(n, _worker_args(model, args, modes, out), env=env, prefixes=prefixes)
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def _host_ceiling(model, args):
    """img/s of two unconnected one-rank jobs run at once over one alone's, from per-step medians.

    The two never talk, so this is the most any two ranks can reach on this host: what
    they lose to each other in cores, caches and memory bandwidth, with no communication.
    """
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"{i}.json") for i in range(3)]
        _mpiexec(1, _worker_args(model, args, ["sync"], outs[0]))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda out: _mpiexec(1, _worker_args(model, args, ["sync"], out)), outs[1:]))
        rates = []
        for out in outs:
            with open(out, encoding="utf-8") as f:
                rates.append(args.batch / json.load(f)["sync"]["seconds_per_step"])
    return (rates[1] + rates[2]) / rates[0]


def _hidden(row):
    if row["exchange_seconds"] <= 0:
        return float("nan")
    return min(max(1.0 - row["wait_per_step"] / row["exchange_seconds"], 0.0), 1.0)


def _table(title, single, rows):
    print(f"\n{title}")
    header = (f"{'mode':<10} {'img/s':>8} {'efficiency':>12} {'MB/step/rank':>13} {'/bound':>7} "
              f"{'exchange ms':>11} {'backward ms':>11} {'blocked ms':>10} {'hidden':>7}")
    print(header)
    print("-" * len(header))
    if single is not None:
        print(f"{'N=1':<10} {single['images_per_s']:>8.1f} {'1.00 (ref)':>12} {0:>13.3f} {'':>7} {'':>11} "
              f"{single['backward_per_step'] * 1e3:>11.1f} {'':>10} {'':>7}")
    for mode, row in rows.items():
        efficiency = row["images_per_s"] / (2 * single["images_per_s"]) if single else float("nan")
        ratio = row["bytes_per_step"] / row["bytes_bound"] if row["bytes_bound"] else float("nan")
        mark = "" if row["exact_bytes"] else "*"
        megabytes = row["bytes_per_step"] / 1e6
        print(f"{mode:<10} {row['images_per_s']:>8.1f} {efficiency:>12.2f} {megabytes:>12.3f}{mark:1} "
              f"{ratio:>7.3f} {row['exchange_seconds'] * 1e3:>11.1f} {row['backward_per_step'] * 1e3:>11.1f} "
              f"{row['wait_per_step'] * 1e3:>10.1f} {_hidden(row):>7.0%}")


def _median_row(rows):
    """The median over rounds of every number in a result row (other fields from the first round)."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(row[key] for row in rows)
    return out


def _median_spread(values):
    return f"{statistics.median(values):.2f}x [{min(values):.2f}-{max(values):.2f}]"


def _bits_per_s(rate):
    """tc's rate syntax ('1gbit', '500mbit') in bits per second."""
    text = rate.lower().strip()
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise SystemExit(f"--link {rate!r}: expected a tc rate such as 1gbit or 500mbit")


class ShapedLink:
    """Two network namespaces joined by a veth pair whose both ends are shaped to ``rate`` with tc."""

    def __init__(self, rate):
        self.rate = rate
        tag = f"{os.getpid() % 100000}"
        self.namespaces = (f"mwb{tag}a", f"mwb{tag}b")

    @staticmethod
    def available():
        if os.name != "posix" or os.geteuid() != 0:
            return "needs root (network namespaces and tc)"
        missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
        if missing:
            return f"needs {' and '.join(missing)} (apt-get install iproute2)"
        return None

    def _ip(self, *args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def __enter__(self):
        try:
            for ns in self.namespaces:
                self._ip("netns", "add", ns)
            self._ip("link", "add", "mwbA", "type", "veth", "peer", "name", "mwbB")
            for ns, dev, address in zip(self.namespaces, ("mwbA", "mwbB"), LINK_ADDRESSES):
                self._ip("link", "set", dev, "netns", ns)
                self._ip("-n", ns, "link", "set", dev, "name", "mwlink")
                self._ip("-n", ns, "addr", "add", address, "dev", "mwlink")
                self._ip("-n", ns, "link", "set", "lo", "up")
                self._ip("-n", ns, "link", "set", "mwlink", "up")
                # a bucket of 2 ms at the rate (at least 32 KB): large enough to reach the rate, small enough
                # that a step's traffic cannot slip through in one burst while the link rests between steps
                burst = f"{max(int(_bits_per_s(self.rate) / 8 * 0.002), 32 * 1024)}b"
                subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "mwlink", "root", "tbf",
                                "rate", self.rate, "burst", burst, "latency", "50ms"], check=True, capture_output=True)
        except (subprocess.CalledProcessError, OSError):
            self.__exit__()
            raise
        return self

    def rx_bytes(self):
        out = subprocess.run(["ip", "-n", self.namespaces[1], "-s", "-j", "link", "show", "mwlink"], check=True,
                             capture_output=True, text=True).stdout
        return int(json.loads(out)[0]["stats64"]["rx"]["bytes"])

    def prefixes(self):
        return [["ip", "netns", "exec", ns] for ns in self.namespaces]

    @staticmethod
    def env():
        # every message over the network module (not shared memory), TCP on the veth device
        return {"MPIR_CVAR_NOLOCAL": "1", "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp",
                "FI_TCP_IFACE": "mwlink", "UCX_TLS": "tcp", "UCX_NET_DEVICES": "mwlink"}

    def __exit__(self, *exc):
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batch", type=int, default=32, help="images per rank and step (weak scaling)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of N=1, N=2 and PyTorch DDP")
    parser.add_argument("--bucket-bytes", type=int, default=64 * 1024, help="DataParallel's bucket_bytes")
    parser.add_argument("--link", action="append", default=[], help="also run over a veth link shaped to RATE "
                        "(tc syntax, e.g. 1gbit); may be repeated")
    parser.add_argument("--link-modes", default="sync,lazy,sharded")
    parser.add_argument("--progress-thread", choices=sorted(PROGRESS_THREAD), default="auto",
                        help="lazy modes' helper thread (auto: on GPUs only; CPU passes poll between chunks)")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch DDP (gloo) reference")
    parser.add_argument("--quick", action="store_true", help="cifar10_full only, sync and lazy, 4 steps (~2-3 min)")
    # worker side
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.models, args.modes, args.steps, args.warmup, args.rounds = "cifar10_full", "sync,lazy", 4, 1, 2

    everything = {}
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"data-parallel benchmark: per-rank batch {args.batch}, {args.steps} timed steps, "
          f"buckets of {args.bucket_bytes / 1024:.0f} KiB, 1 BLAS thread per rank, {os.cpu_count()} cores")
    print("hidden = 1 - (median time per step blocked on communication) / (median time of one exchange alone), "
          "same run;")
    print("/bound = bytes sent per rank and step / (2(N-1)/N x gradient bytes); * = bytes handed to MPI's own "
          "allreduce (its wire traffic is not visible)")
    for model in args.models.split(","):
        runs = []  # one (N=1, N=2 rows, DDP, host ceiling) per round, minwa and PyTorch alternated
        for _ in range(args.rounds):
            single = _run(1, model, args, ["sync"])["sync"]
            rows = _run(2, model, args, args.modes.split(","))
            ddp = None if args.no_torch else torch_ddp.weak_scaling(model, args.batch, args.steps, args.warmup)
            runs.append((single, rows, ddp, _host_ceiling(model, args)))
        single = _median_row([r[0] for r in runs])
        rows = {mode: _median_row([r[1][mode] for r in runs]) for mode in runs[0][1]}
        grad_mb = rows[next(iter(rows))]["gradient_bytes"] / 1e6
        _table(f"{model}: {grad_mb:.1f} MB of gradients, loopback (shared memory); medians of {args.rounds} rounds",
               single, rows)
        everything[model] = {"N=1": single, "loopback": rows, "rounds": runs}
        per_mode = {mode: [r[1][mode]["images_per_s"] / r[0]["images_per_s"] for r in runs] for mode in rows}
        print("weak scaling per mode, img/s(N=2) / img/s(N=1) in the same round: "
              + ", ".join(f"{mode} {_median_spread(values)}" for mode, values in per_mode.items()))
        best = max(per_mode, key=lambda mode: statistics.median(per_mode[mode]))
        print(f"weak scaling, 2 ranks x 1 thread over 1 rank (best mode by median, {best}): minwa "
              f"{_median_spread(per_mode[best])}", end="")
        if runs[0][2] is None:
            print("; pytorch DDP: skipped (torch not installed or --no-torch)")
        else:
            ddp_speedups = [r[2]["speedup"] for r in runs]
            print(f"; pytorch DDP (gloo): {_median_spread(ddp_speedups)} (medians over rounds, [min-max])")
            everything[model]["torch_ddp"] = [r[2] for r in runs]
        ceilings = [r[3] for r in runs]
        print(f"host ceiling, two unconnected 1-rank jobs at once over one alone (per-step medians): "
              f"{_median_spread(ceilings)}; minwa's best mode reaches "
              f"{statistics.median(per_mode[best]) / statistics.median(ceilings):.0%} of it")
        everything[model]["host_ceiling"] = ceilings
        for rate in args.link:
            reason = ShapedLink.available()
            if reason:
                print(f"\n{model} over a {rate} link: skipped ({reason})")
                continue
            with ShapedLink(rate) as link:
                before = link.rx_bytes()
                shaped = _run(2, model, args, args.link_modes.split(","), env=link.env(), prefixes=link.prefixes())
                crossed = link.rx_bytes() - before
            _table(f"{model} over a veth pair shaped to {rate} (tc tbf); {crossed / 1e6:.0f} MB crossed the link",
                   single, shaped)
            everything[model][f"link {rate}"] = shaped
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(everything, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
