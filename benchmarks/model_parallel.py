"""Data parallel vs model-data parallel on a reduced Deep Image model, measured beside the cost model's prediction.

    python benchmarks/model_parallel.py                              # N = 1, 2, 4 on loopback
    python benchmarks/model_parallel.py --link 1gbit --link 100mbit  # also over tc-shaped veth links (root)
    python benchmarks/model_parallel.py --scale 8 --batch 8 --steps 4 --rounds 1   # a quick check

The model is Deep Image's basic model (Table 2: 13 conv layers, FC 6144-6144-1000) at
``--input`` x ``--input`` pixels (32) with every width divided by ``--scale`` (4: conv
16..128 channels, FC 1536-1536-1000), so the FC layers still hold most weights (the script
prints the share). Weak scaling at ``--batch`` images per rank, synthetic data.

For each N and mode it prints images/s, the bytes one rank sends per step, the FC bytes
(weights, gradients, momentum) one rank holds, and the cost model's predicted step time
beside the measured one. The model is calibrated in the same run: the device rate from the
N = 1 step (3 x forward FLOPs / seconds); the link's latency (a ping-pong between two
ranks) and its bandwidth per rank with every rank sending to every other at once (an
all-to-all: the collectives' traffic, which shares bridges and switches, unlike one
ping-pong), both taken in each N's data-parallel run on that link; ``cores`` = this machine's cores
(ranks beyond them share); the host cost of communication (CPU seconds per byte sent, which
on a CPU cannot overlap compute) from the N = 2 data parallel step on loopback, the one
measured point that calibrates rather than tests the model (marked * in the table).
Every configuration runs in its own mpiexec, alternated over
``--rounds``; figures are medians over rounds (spread = min..max).
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

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


def reduced_model(scale, size, batch):
    """Deep Image's basic model with widths / scale at size x size input (FC 1000 classes kept)."""
    import minwa

    job = minwa.load_config(os.path.join(ROOT, "configs", "deep_image.yaml"), validate=False)
    model = copy.deepcopy(job.model)
    for layer in model["layers"]:
        if layer["type"] == "Input":
            layer["input_param"]["shape"] = [{"dim": [batch, 3, size, size]}, {"dim": [batch]}]
        param = layer.get("convolution_param") or layer.get("inner_product_param")
        if param is not None and not (layer["type"] == "InnerProduct" and param["num_output"] == 1000):
            param["num_output"] = max(1, param["num_output"] // scale)
    return model, job.solver


# ---------------------------------------------------------------------------------------------
# worker: one process per rank
def _pingpong(comm, nbytes, repeats):
    buf = numpy.zeros(max(nbytes // 4, 1), dtype=numpy.float32)
    times = []
    for _ in range(repeats):
        comm.barrier()
        start = time.perf_counter()
        if comm.rank == 0:
            comm.send(buf, 1)
            comm.recv(buf, 1)
        elif comm.rank == 1:
            comm.recv(buf, 0)
            comm.send(buf, 0)
        times.append((time.perf_counter() - start) / 2)
    return statistics.median(times)


def _exchange_bandwidth(comm, nbytes, repeats, latency):
    """Bytes/s one rank sends while every rank sends to every other at once (an all-to-all of ``nbytes``
    per rank), the traffic of the collectives: on shared links and switches that is less than one
    ping-pong's rate. MPICH runs it as n - 1 pairwise exchanges, hence the n - 1 latencies."""
    n = comm.size
    count = max(nbytes // 4 // n, 1) * n
    send, recv = numpy.ones(count, dtype=numpy.float32), numpy.empty(count, dtype=numpy.float32)
    times = []
    for _ in range(repeats):
        comm.barrier()
        start = time.perf_counter()
        comm.mpi.Alltoall(send, recv)
        times.append(time.perf_counter() - start)
    comm.barrier()
    sent = send.nbytes * (n - 1) / n
    return sent / max(statistics.median(times) - (n - 1) * latency, 1e-9)


def worker(args):
    import minwa
    from minwa.comm import get_world

    comm = get_world()
    model, solver_cfg = reduced_model(args.scale, args.input, args.batch)
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=1)
    solver = minwa.Solver(net, solver_cfg)
    if comm.size == 1 or args.mode == "alone":  # alone: N processes computing side by side, no communication
        from minwa.parallel.single import SingleProcess

        engine = SingleProcess(net, solver)
    elif args.mode == "model-data":
        from minwa.parallel.model import ModelDataParallel

        engine = ModelDataParallel(net, solver, comm)
    else:
        from minwa.parallel.data import DataParallel

        engine = DataParallel(net, solver, comm)
    rng = numpy.random.default_rng(comm.rank)
    feed = {"data": rng.standard_normal((args.batch, 3, args.input, args.input), dtype=numpy.float32),
            "label": rng.integers(0, 1000, size=args.batch)}
    for _ in range(args.warmup):
        engine.forward(feed)
        engine.backward_and_update()
    engine.finish()
    bytes0 = comm.bytes_sent if comm.size > 1 else 0
    walls = []
    start = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        engine.forward(feed)
        engine.backward_and_update()
        walls.append(time.perf_counter() - t0)
    engine.finish()
    seconds = time.perf_counter() - start
    sent = ((comm.bytes_sent if comm.size > 1 else 0) - bytes0) / args.steps
    comm.barrier()
    fc = [layer for layer in net.layers if layer.type == "InnerProduct"]
    slots = 2 + len(solver.rule.state_names)
    fc_bytes = sum(slots * p.data.nbytes for layer in fc for p in layer.params)
    row = {"step_s": statistics.median(walls), "images_per_s": args.steps * args.batch * comm.size / seconds,
           "bytes_per_step": sent, "fc_bytes_per_rank": fc_bytes}
    if comm.size > 1 and args.calibrate:
        row["latency_s"] = _pingpong(comm, 8, 20)
        row["bandwidth"] = _exchange_bandwidth(comm, 4 << 20, 5, row["latency_s"])
    rows = comm.gather(row, root=0)
    if comm.rank == 0:
        merged = dict(rows[0])
        merged["step_s"] = max(r["step_s"] for r in rows)  # the slowest rank sets the pace
        merged["images_per_s"] = min(r["images_per_s"] for r in rows)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(merged, f)


# ---------------------------------------------------------------------------------------------
# launcher
def _run(n, mode, args, env=None, prefixes=None, calibrate=False):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        worker_args = ["--worker", "--mode", mode, "--scale", str(args.scale), "--input", str(args.input),
                       "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--out", out] + (["--calibrate"] if calibrate else [])
        _launch(n, worker_args, env, prefixes)
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def _launch(n, worker_args, env, prefixes):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("model_parallel benchmark: mpiexec not found (pip install mpich)")
    program = [sys.executable, os.path.abspath(__file__), *worker_args]
    if prefixes:
        command = [mpiexec]
        for i, prefix in enumerate(prefixes):
            command += ([":"] if i else []) + ["-n", "1", *prefix, *program]
    else:
        command = [mpiexec, "-n", str(n), *program]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                    MINWA_DEVICE="cpu", **(env or {}))
    subprocess.run(command, check=True, env=full_env, timeout=1800)


def _median_rows(samples):
    out = dict(samples[0])
    for key in ("step_s", "images_per_s", "bytes_per_step"):
        values = [s[key] for s in samples]
        out[key] = statistics.median(values)
        out[key + "_spread"] = (min(values), max(values))
    for key in ("latency_s", "bandwidth"):
        if key in samples[0]:
            out[key] = statistics.median(s[key] for s in samples)
    return out


def _cost_row(args, rates, link, n, mode, host=0.0):
    """The cost model's row for (n, mode): per-core rate from the N-alone step, this machine's cores, the link."""
    from minwa.net import Net
    from minwa.parallel.cost_model import CostModel, Machine

    model, _ = reduced_model(args.scale, args.input, args.batch)
    cores = os.cpu_count() or 1
    per_core = rates[n] / min(1.0, cores / n)  # the Machine divides it again when ranks share cores
    machine = Machine(per_core, link["bandwidth"], link["latency_s"], cores=cores, host_s_per_byte=host)
    cost = CostModel(Net(model, init=False), machine)
    return cost.data(n) if mode == "data" or n == 1 else cost.model_data(n)


def host_cost(args, rates, loop):
    """Seconds per byte sent that the ranks' own cores spend on communication, from N = 2 data parallel on
    loopback: its measured step minus the model's step without that cost, over the bytes a rank sends."""
    row, link = loop.get((2, "data")), loop.get((2, "data"), {})
    if row is None or "bandwidth" not in link:
        return 0.0
    bare = _cost_row(args, rates, link, 2, "data")
    return max(0.0, row["step_s"] - bare["step_s"]) / max(bare["bytes_per_rank"], 1.0)


def _links(rows):
    """{n: the link as measured in the N = n data-parallel run} (latency_s, bandwidth)."""
    return {n: row for (n, mode), row in rows.items() if mode == "data" and "bandwidth" in row}


def _table(title, rows, rates, args, host, calibration=False):
    shown = ", ".join(f"N={n}: {r / 1e9:.2f}" for n, r in sorted(rates.items()))
    links = _links(rows)
    measured = "; ".join(f"N={n}: {link['latency_s'] * 1e6:.1f} us + {link['bandwidth'] / 1e6:.0f} MB/s"
                         for n, link in sorted(links.items()))
    print(f"\n{title}\n  model calibrated here: link per rank ({measured}; latency by ping-pong, bandwidth with "
          f"every rank sending to every other at once); device GFLOP/s per rank with N processes computing alone "
          f"({shown}); host cost {host * 1e9:.2f} ns per byte sent (from N=2 data on loopback"
          f"{', marked *' if calibration else ''})")
    header = (f"{'N':>2} {'mode':<11} {'img/s':>8} {'spread':>15} {'MB/step/rank':>12} {'FC MB/rank':>10} "
              f"{'predicted s':>11} {'measured s':>10} {'error':>6}")
    print(header)
    print("-" * len(header))
    for (n, mode), row in rows.items():
        if mode == "alone" or (n > 1 and n not in links):
            continue
        link = links[n] if n > 1 else {"latency_s": 0.0, "bandwidth": 1.0}  # one rank sends nothing
        predicted = _cost_row(args, rates, link, n, mode, host)["step_s"]
        lo, hi = row["images_per_s_spread"]
        error = predicted / row["step_s"] - 1
        row["predicted_step_s"] = predicted
        mark = "*" if calibration and (n, mode) == (2, "data") else ""
        print(f"{n:>2} {mode:<11} {row['images_per_s']:>8.1f} {lo:>7.1f}..{hi:<7.1f} "
              f"{row['bytes_per_step'] / 1e6:>12.3f} {row['fc_bytes_per_rank'] / 1e6:>10.2f} {predicted:>11.4f} "
              f"{row['step_s']:>10.4f} {error:>+6.0%}{mark}")
    for n in sorted({n for n, _ in rows if n > 1}):
        d, m = rows.get((n, "data")), rows.get((n, "model-data"))
        if d and m:
            faster = "model-data" if m["images_per_s"] > d["images_per_s"] else "data"
            ratio = max(m["images_per_s"], d["images_per_s"]) / min(m["images_per_s"], d["images_per_s"])
            print(f"N={n}: {faster} parallel is faster by {ratio:.2f}x (images/s)")


class BridgedLink:
    """N network namespaces, each joined to a bridge by its own veth pair shaped to ``rate`` both ways (tc tbf).

    Every rank gets a link of its own (as every GPU of a cluster has its NIC), on private
    addresses of the benchmark's own bridge only; needs root and iproute2, like ShapedLink.
    """

    def __init__(self, rate, n):
        from data_parallel import _bits_per_s

        self.rate, self.n = rate, n
        tag = f"{os.getpid() % 10000}"
        self.hub = f"mwh{tag}"
        self.namespaces = [f"mwr{tag}{k}" for k in range(n)]
        self.burst = f"{max(int(_bits_per_s(rate) / 8 * 0.002), 32 * 1024)}b"

    def _ip(self, *args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def _shape(self, ns, dev):
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate",
                        self.rate, "burst", self.burst, "latency", "50ms"], check=True, capture_output=True)

    def __enter__(self):
        try:
            self._ip("netns", "add", self.hub)
            self._ip("-n", self.hub, "link", "add", "mwbr", "type", "bridge")
            self._ip("-n", self.hub, "link", "set", "mwbr", "up")
            for k, ns in enumerate(self.namespaces):
                self._ip("netns", "add", ns)
                self._ip("link", "add", f"mwq{k}", "type", "veth", "peer", "name", f"mwp{k}")
                self._ip("link", "set", f"mwq{k}", "netns", ns)
                self._ip("link", "set", f"mwp{k}", "netns", self.hub)
                self._ip("-n", ns, "link", "set", f"mwq{k}", "name", "mwlink")
                self._ip("-n", ns, "addr", "add", f"10.78.0.{k + 1}/24", "dev", "mwlink")
                self._ip("-n", ns, "link", "set", "lo", "up")
                self._ip("-n", ns, "link", "set", "mwlink", "up")
                self._ip("-n", self.hub, "link", "set", f"mwp{k}", "master", "mwbr")
                self._ip("-n", self.hub, "link", "set", f"mwp{k}", "up")
                self._shape(ns, "mwlink")  # what the rank sends
                self._shape(self.hub, f"mwp{k}")  # what the rank receives
        except (subprocess.CalledProcessError, OSError):
            self.__exit__()
            raise
        return self

    def prefixes(self):
        return [["ip", "netns", "exec", ns] for ns in self.namespaces]

    @staticmethod
    def env():
        from data_parallel import ShapedLink

        return ShapedLink.env()

    def __exit__(self, *exc):
        for ns in [*self.namespaces, self.hub]:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def measure(args, ns, env=None, prefixes=None):
    samples = {}
    for _ in range(args.rounds):  # alternate the configurations round by round
        for n in ns:
            for mode in (["data"] if n == 1 else ["alone", "data", "model-data"]):
                row = _run(n, mode, args, env, prefixes, calibrate=(mode == "data" and n > 1))
                samples.setdefault((n, mode), []).append(row)
    return {key: _median_rows(value) for key, value in samples.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=4, help="divide every width of Deep Image by this (4)")
    parser.add_argument("--input", type=int, default=32, help="input side in pixels (32)")
    parser.add_argument("--batch", type=int, default=16, help="images per rank and step (16)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--link", action="append", default=[], help="also run every N > 1 with each rank on a "
                        "veth link shaped to RATE with tc (e.g. 1gbit, 100mbit); root only")
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    from minwa.net import Net

    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    model, _ = reduced_model(args.scale, args.input, args.batch)
    net = Net(model, init=False)
    total = sum(p.size for p in net.params)
    fc = sum(p.size for layer in net.layers if layer.type == "InnerProduct" for p in layer.params)
    print(f"reduced Deep Image: {args.input}x{args.input} input, widths / {args.scale}: {total / 1e6:.2f}M weights, "
          f"{fc / total:.0%} in FC layers; {args.batch} images per rank, {args.steps} timed steps, "
          f"{args.rounds} rounds, {os.cpu_count()} cores")
    ns = [int(n) for n in args.ranks.split(",")]
    everything = {}
    loop = measure(args, ns)
    rates = {n: 3 * net.flops() / loop[(n, "alone" if n > 1 else "data")]["step_s"] for n in ns}
    host = host_cost(args, rates, loop)
    _table("loopback (shared memory)", loop, rates, args, host, calibration=True)
    everything["loopback"] = {f"{n} {m}": row for (n, m), row in loop.items()}
    from data_parallel import ShapedLink

    for rate_text in args.link:
        reason = ShapedLink.available()
        if reason:
            print(f"\nN=2 over a {rate_text} link: skipped ({reason})")
            continue
        rows = {}
        for n in [n for n in ns if n > 1]:
            try:
                with BridgedLink(rate_text, n) as shaped:
                    for _ in range(args.rounds):
                        for mode in ("data", "model-data"):
                            row = _run(n, mode, args, shaped.env(), shaped.prefixes(), calibrate=(mode == "data"))
                            rows.setdefault((n, mode), []).append(row)
            except (subprocess.CalledProcessError, OSError) as exc:
                print(f"\nN={n} over a {rate_text} link: could not set up or run ({exc})")
        rows = {key: _median_rows(value) for key, value in rows.items()}
        if (2, "data") in rows:
            _table(f"every rank on its own veth link shaped to {rate_text} (tc tbf), through a bridge", rows, rates,
                   args, host)
            everything[f"link {rate_text}"] = {f"{n} {m}": row for (n, m), row in rows.items()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(everything, f, indent=1, default=list)
    return 0


if __name__ == "__main__":
    sys.exit(main())
