"""``minwa plan CONFIG``: predicted step time of data vs model-data parallelism for N = 1..gpus, and the winner.

The cost model is ``minwa.parallel.cost_model``: per-layer FLOPs and parameter bytes of the
net at ``--batch-per-gpu`` images per device, the device rate, the link's bandwidth and
latency, and the overlap minwa's engines achieve. ``--profile`` times a few training
steps of the net on this machine and uses the fitted rate instead of ``--flops``.
"""
import argparse
import copy
import json
import time

import numpy

from minwa.config import load_config
from minwa.errors import ConfigError
from minwa.net import Net
from minwa.parallel.cost_model import CostModel, Machine


def _net_at(job, batch, init=False, dtype="float32"):
    """The TRAIN net with its Input layer's batch dimension set to ``batch``."""
    model = copy.deepcopy(job.model)
    for spec in model["layers"]:
        if spec.get("type") == "Input":
            shapes = (spec.get("input_param") or {}).get("shape") or []
            for shape in shapes:
                if shape.get("dim"):
                    shape["dim"] = [batch] + list(shape["dim"][1:])
    return Net(model, phase="TRAIN", init=init, dtype=dtype)


def profile_rate(job, batch, steps=3, dtype="float32"):
    """FLOP/s one process reaches on a training step (forward + backward, 3x forward FLOPs), median of ``steps``."""
    from minwa.solver import Solver

    net = _net_at(job, batch, init=True, dtype=dtype)
    solver = Solver(net, job.solver)
    rng = numpy.random.default_rng(0)
    shapes = [net.blob_shapes[name] for name in net.input_names]
    classes = max(getattr(layer, "num_output", 2) for layer in net.layers if layer.type == "InnerProduct")
    feed = {net.input_names[0]: rng.normal(size=shapes[0]).astype(dtype),
            net.input_names[1]: rng.integers(0, classes, size=shapes[1])}
    times = []
    for k in range(steps + 1):
        start = time.perf_counter()
        net.forward(feed)
        net.backward()
        solver.step()
        if k:  # the first step warms caches and allocators
            times.append(time.perf_counter() - start)
    seconds = float(numpy.median(times))
    return 3.0 * net.flops() / seconds, seconds


def plan(job, gpus, machine, batch, itemsize=4, overlap=True):
    """CostModel.compare rows for N = 1..gpus, and the N at which the two modes' bytes per rank cross."""
    model = CostModel(_net_at(job, batch), machine, itemsize=itemsize, overlap=overlap)
    return model.compare(range(1, gpus + 1)), model.bytes_crossover()


def explain(rows, crossover):
    """Lines that say what grows with N in each mode and what the overlap hides, for the table's verdict."""
    split = [row for row in rows if row["model_data"] is not None]  # the N its FC layers can be split into
    if not split:
        return []
    first, last = split[0], split[-1]
    data, model = last["data"], last["model_data"]
    where = (f"model-data sends more from N = {crossover}" if crossover else
             "model-data sends less at every N its FC layers can be split into (up to 4096)")
    return [
        f"bytes per rank: data parallel sends 2(N-1)/N of the weights, {_fmt_bytes(first['data']['bytes_per_rank'])} "
        f"at N = {first['n']} and {_fmt_bytes(data['bytes_per_rank'])} at N = {last['n']} (about constant); "
        f"model-data sends its FC inputs for the global batch, {_fmt_bytes(first['model_data']['bytes_per_rank'])} "
        f"to {_fmt_bytes(model['bytes_per_rank'])} (growing with N); {where}",
        f"time at N = {last['n']}: data parallel's {data['overlapped_comm_s']:.4f} s of gradient transfers leave "
        f"{max(data['exposed_comm_s'], 0.0):.4f} s exposed beside {data['compute_s']:.4f} s of compute; "
        f"model-data's FC exchanges put {model['critical_comm_s']:.4f} s on the critical path",
    ]


def _fmt_bytes(n):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}B"


def format_table(rows):
    lines = [f"{'N':>4}  {'data s/step':>11}  {'model-data s/step':>17}  {'data bytes/rank':>15}  "
             f"{'m-d bytes/rank':>14}  {'m-d exposed s':>13}  winner"]
    for row in rows:
        d, m = row["data"], row["model_data"]
        md_step = f"{m['step_s']:.4f}" if m else "-"
        md_bytes = _fmt_bytes(m["bytes_per_rank"]) if m else "-"
        md_exposed = f"{m['exposed_comm_s']:.4f}" if m else "-"
        ratio = f" ({row['data_over_model_data']:.2f}x)" if row["winner"] == "model-data" else ""
        lines.append(f"{row['n']:>4}  {d['step_s']:>11.4f}  {md_step:>17}  {_fmt_bytes(d['bytes_per_rank']):>15}  "
                     f"{md_bytes:>14}  {md_exposed:>13}  {row['winner']}{ratio}")
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(prog="minwa plan", description=__doc__)
    parser.add_argument("config", help="YAML job or Caffe .prototxt net")
    parser.add_argument("--gpus", type=int, default=8, help="largest N to plan for (default 8)")
    parser.add_argument("--flops", type=float, default=None, help="device rate in FLOP/s (e.g. 4.29e12, a K40m)")
    parser.add_argument("--bandwidth", type=float, default=56e9, help="link bandwidth in bits/s (default 56e9)")
    parser.add_argument("--latency", type=float, default=2e-6, help="seconds per message (default 2e-6)")
    parser.add_argument("--batch-per-gpu", type=int, default=None, help="images per device (default: the config's)")
    parser.add_argument("--gpus-per-node", type=int, default=1, help="devices sharing one node's link (default 1)")
    parser.add_argument("--no-overlap", action="store_true", help="gradients exchanged after backward (lazy: false)")
    parser.add_argument("--host-ns-per-byte", type=float, default=0.0,
                        help="processor time per byte a rank sends, not overlapped with compute (CPU ranks; "
                             "about 1.7 on the 2-core development machine over MPI shared memory; default 0)")
    parser.add_argument("--itemsize", type=int, default=4, help="bytes per value on the wire (default 4)")
    parser.add_argument("--profile", action="store_true", help="fit the device rate from steps run here")
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = parser.parse_args(argv)
    if args.gpus < 1 or args.gpus_per_node < 1:
        raise ConfigError("plan: --gpus and --gpus-per-node must be >= 1")
    job = load_config(args.config, overrides=args.set, validate=False)
    batch = args.batch_per_gpu or _config_batch(job)
    rate, source = args.flops, "--flops"
    if args.profile:
        rate, seconds = profile_rate(job, batch, args.profile_steps)
        source = f"--profile ({seconds:.3f} s per step of batch {batch} here)"
    if rate is None:
        raise ConfigError("plan: give --flops RATE (FLOP/s of one device) or --profile to measure it here")
    machine = Machine(rate, args.bandwidth / 8.0, args.latency, gpus_per_node=args.gpus_per_node,
                      host_s_per_byte=args.host_ns_per_byte * 1e-9)
    rows, crossover = plan(job, args.gpus, machine, batch, itemsize=args.itemsize, overlap=not args.no_overlap)
    if args.json:
        print(json.dumps({"rate_flops": rate, "rate_from": source, "bandwidth_bits": args.bandwidth,
                          "latency_s": args.latency, "batch_per_gpu": batch, "overlap": not args.no_overlap,
                          "gpus_per_node": args.gpus_per_node, "bytes_crossover_n": crossover, "rows": rows},
                         indent=1))
        return 0
    print(f"{job.name}: {batch} images per device, {rate:.3g} FLOP/s ({source}), {args.bandwidth:.3g} bit/s, "
          f"{args.latency:.2g} s latency, {args.gpus_per_node} per node, "
          f"{'lazy overlap' if not args.no_overlap else 'no overlap'}")
    print(format_table(rows))
    wins = [row["n"] for row in rows if row["winner"] == "model-data"]
    print(f"model-data wins at N = {_ranges(wins)}" if wins else "data parallel wins at every N")
    for line in explain(rows, crossover):
        print(line)
    return 0


def _config_batch(job):
    for spec in job.model["layers"]:
        if spec.get("type") == "Input":
            shapes = (spec.get("input_param") or {}).get("shape") or []
            if shapes and shapes[0].get("dim"):
                return int(shapes[0]["dim"][0])
    return int(job.data.get("batch_size") or 1)


def _ranges(ns):
    out, start = [], None
    for i, n in enumerate(ns):
        if start is None:
            start = n
        if i + 1 == len(ns) or ns[i + 1] != n + 1:
            out.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)
