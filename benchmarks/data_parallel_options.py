"""Data-parallel engine options side by side in the same two ranks: which one is fastest on this host and link.

    python benchmarks/data_parallel_options.py                     # loopback, cifar10_full, the default options
    python benchmarks/data_parallel_options.py --link 100mbit      # over a tc-shaped veth pair (root)
    python benchmarks/data_parallel_options.py --option sync:lazy=false --option lazy:lazy=true,bucket_bytes=null

Every option set (``NAME:key=value,...``, DataParallel's options, values in YAML) gets its own
net and engine in the same two processes. They take turns, ``--steps`` steps each, in an
order that reverses every round, so a slow spell of a shared host falls on all of them
alike; separate processes minutes apart (data_parallel.py) cannot give that, and their
figures move by 10% between runs. Prints per option the median time per step with its
quartiles, the time blocked on communication, and the ratio to the first option (below 1:
faster than it). Equal results are not checked here: tests/parallel does that.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

DEFAULT_OPTIONS = ("sync:lazy=false", "lazy:lazy=true", "lazy-one-bucket:lazy=true,bucket_bytes=null",
                   "lazy-progress-thread:lazy=true,progress_thread=true")


def parse_option(text):
    """``NAME:key=value,...`` -> (name, {key: YAML value})."""
    name, _, body = text.partition(":")
    options = {}
    for item in filter(None, body.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--option {text!r}: expected NAME:key=value,... (got {item!r})")
        options[key.strip()] = yaml.safe_load(value)
    if not name:
        raise SystemExit(f"--option {text!r}: the option set needs a name before ':'")
    return name, options


def worker(args):
    from data_parallel import _model

    import minwa
    from minwa.comm import get_world
    from minwa.parallel.data import DataParallel

    comm = get_world()
    model, solver_cfg = _model(args.model, args.batch)
    engines = {}
    for text in args.option:
        name, options = parse_option(text)
        net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=1)
        engines[name] = DataParallel(net, minwa.Solver(net, solver_cfg), comm, **options)
    net = next(iter(engines.values())).net
    data, label = net.input_names
    classes = net.blob_shapes[net.layers[-1].bottoms[0]][1]
    rng = numpy.random.default_rng(comm.rank)
    feed = {data: rng.standard_normal(net.blob_shapes[data], dtype=numpy.float32),
            label: rng.integers(0, classes, size=args.batch)}
    names = list(engines)
    seconds = {name: [] for name in names}
    blocked = {name: [] for name in names}
    for rnd in range(-1, args.rounds):  # round -1 warms every engine up
        for name in (names if rnd % 2 == 0 else names[::-1]):
            engine = engines[name]
            comm.barrier()
            wait0, start = engine.wait_seconds, time.perf_counter()
            for _ in range(args.steps):
                engine.step(feed)
            engine.finish()
            if rnd >= 0:
                seconds[name].append((time.perf_counter() - start) / args.steps)
                blocked[name].append((engine.wait_seconds - wait0) / args.steps)
    for engine in engines.values():
        engine.close()
    # the slower rank sets the pace: per round, the larger of the two ranks' times
    seconds = {name: numpy.max(comm.allgather(values), axis=0).tolist() for name, values in seconds.items()}
    if comm.rank == 0:
        first = statistics.median(seconds[names[0]])
        print(f"{'option':<26} {'ms/step':>8} {'quartiles':>15} {'blocked ms':>10} {'vs ' + names[0]:>12}")
        for name in names:
            values = sorted(seconds[name])
            q1, q3 = values[len(values) // 4], values[(3 * len(values)) // 4]
            median = statistics.median(values)
            print(f"{name:<26} {median * 1e3:>8.2f} {q1 * 1e3:>7.2f}-{q3 * 1e3:<7.2f} "
                  f"{statistics.median(blocked[name]) * 1e3:>10.2f} {median / first:>11.3f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cifar10_full", help="cifar10_full or deep_image_32")
    parser.add_argument("--batch", type=int, default=32, help="images per rank and step")
    parser.add_argument("--steps", type=int, default=3, help="steps of one option per turn")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--option", action="append", help=f"NAME:key=value,... (default: {' '.join(DEFAULT_OPTIONS)})")
    parser.add_argument("--link", help="run the two ranks over a veth pair shaped to RATE with tc (root)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.option = args.option or list(DEFAULT_OPTIONS)
    for text in args.option:
        parse_option(text)  # a bad option ends here, before any rank starts
    if args.worker:
        return worker(args)
    from data_parallel import ShapedLink, _mpiexec

    worker_args = ["--model", args.model, "--batch", str(args.batch), "--steps", str(args.steps), "--rounds",
                   str(args.rounds), *(f"--option={text}" for text in args.option)]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"{args.model}, {args.batch} images per rank, 2 ranks x 1 thread, {args.rounds} rounds of {args.steps} steps "
          f"per option, {'a veth pair shaped to ' + args.link + ' (tc tbf)' if args.link else 'loopback'}")
    sys.stdout.flush()
    if not args.link:
        _mpiexec(2, worker_args, script=__file__)
        return 0
    reason = ShapedLink.available()
    if reason:
        sys.exit(f"data_parallel_options: --link {args.link}: {reason}")
    with ShapedLink(args.link) as link:
        _mpiexec(2, worker_args, env=link.env(), prefixes=link.prefixes(), script=__file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
