"""``minwa pipeline split|serve|run|plan``: split inference over TCP between a client and a cloud process.

    minwa pipeline split configs/cifar10_full.yaml --at pool1 --host 127.0.0.1 --port 5600 --out split/
    MINWA_PIPELINE_SECRET=... minwa pipeline serve split/cloud.yaml --weights ckpt.h5
    MINWA_PIPELINE_SECRET=... minwa pipeline run split/client.yaml --weights ckpt.h5 --data cifar10.h5 --dtype uint8
    minwa pipeline plan configs/cifar10_full.yaml --client-flops 5e9 --cloud-flops 5e11 --bandwidth 10mbit
"""
import argparse
import json
import os
import sys

import yaml

from minwa.config import load_config
from minwa.errors import ConfigError


def _split(args):
    from minwa.parallel.pipeline.splitter import split_model

    job = load_config(args.config, overrides=args.set, validate=False)
    split = split_model(job.model, args.at, host=args.host, port=args.port)
    os.makedirs(args.out, exist_ok=True)
    client = {"name": f"{job.name}_client", "model": split.client}
    if job.data:
        client["data"] = job.data
    files = {"client.yaml": client, "cloud.yaml": {"name": f"{job.name}_cloud", "model": split.cloud}}
    for name, content in files.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(f"# written by: minwa pipeline split {args.config} --at {' --at '.join(args.at)}\n")
            yaml.safe_dump(content, f, sort_keys=False)
    print(f"client: {len(split.client_layers)} layers, ends in {len(split.blobs)} Sink(s) -> "
          f"{args.host}:{args.port}; cloud: {len(split.cloud_layers)} layers after the Source(s)")
    for pair, blob, shape in zip(split.pairs, split.blobs, split.shapes):
        values = 1
        for d in shape:
            values *= d
        print(f"  pair {pair}: blob {blob!r} {'x'.join(map(str, shape))}: {values * 4:,} B per batch as float32, "
              f"{values * 2:,} as float16, {values:,} as uint8")
    print(f"wrote {os.path.join(args.out, 'client.yaml')} and {os.path.join(args.out, 'cloud.yaml')}")
    return 0


def _secret(args):
    from minwa.parallel.pipeline.handshake import load_secret

    return load_secret(args.secret_file)


def _serve(args):
    from minwa.parallel.pipeline import runner
    from minwa.parallel.pipeline.pipeline_server import server_tls_context

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("pipeline serve: give both --tls-cert and --tls-key (or neither)")
    job = load_config(args.config)
    net = runner.load_half(job.model, args.weights)
    sources = [layer for layer in net.layers if layer.type == "Source"]
    default = f"127.0.0.1:{sources[0].port if sources else 5600}"
    host, port = runner.parse_address(args.listen or default)
    tls = server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    secret = _secret(args)
    runner.serve(net, secret, host, port, tls=tls, depth=args.depth, idle_timeout=args.idle_timeout,
                 max_clients=args.max_clients)
    return 0


def _run(args):
    from minwa.datasets import make_loader
    from minwa.parallel.pipeline import runner

    overrides = list(args.set)
    if args.data:
        overrides.append(f"data.path={args.data}")
    job = load_config(args.config, overrides=overrides)
    net = runner.load_half(job.model, args.weights)
    host, port = runner.parse_address(args.connect) if args.connect else (None, None)
    loader = make_loader(job.data, "test", seed=job.seed)
    steps = loader.steps_per_epoch if args.batches is None else min(args.batches, loader.steps_per_epoch)
    secret = _secret(args)

    def log(text):
        print(f"minwa pipeline run: {text}", file=sys.stderr, flush=True)

    stats = runner.run(net, loader.batches(0, steps), secret, host=host, port=port, dtype=args.dtype,
                       depth=args.depth, tls_ca=args.tls_ca, timeout=args.timeout, reconnect_s=args.reconnect_s,
                       log=log)
    runner.report(stats, args.dtype, args.depth)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in stats.items() if k != "scores"}, f, indent=1)
    return 0


def _plan(args):
    from minwa.parallel.pipeline.planner import parse_rate, plan_cuts

    job = load_config(args.config, overrides=args.set, validate=False)
    client = parse_rate(args.client_flops, "--client-flops") if args.client_flops else None
    cloud = parse_rate(args.cloud_flops, "--cloud-flops") if args.cloud_flops else None
    bandwidth = parse_rate(args.bandwidth)
    rows = plan_cuts(job.model, client, cloud, bandwidth, args.latency, args.dtype, profile=args.profile)
    basis = "per-layer times measured here" if args.profile else f"client {client:.3g} FLOP/s, cloud {cloud:.3g} FLOP/s"
    print(f"pipeline plan: {basis}; link {bandwidth:.3g} bit/s + {args.latency * 1e3:.1f} ms; features as {args.dtype}")
    print(f"{'cut':<28} {'bytes/batch':>12} {'client ms':>10} {'link ms':>10} {'cloud ms':>10} "
          f"{'latency ms':>11} {'batches/s':>10}")
    for row in rows[:args.top]:
        print(f"{row['cut']:<28} {row['bytes']:>12,} {row['client_s'] * 1e3:>10.1f} {row['link_s'] * 1e3:>10.1f} "
              f"{row['cloud_s'] * 1e3:>10.1f} {row['latency_s'] * 1e3:>11.1f} {row['throughput']:>10.2f}")
    fastest = max(rows, key=lambda r: r["throughput"])
    print(f"best by latency: {rows[0]['cut']} ({rows[0]['latency_s'] * 1e3:.1f} ms per batch); "
          f"best by pipelined throughput: {fastest['cut']} ({fastest['throughput']:.2f} batches/s)")
    return 0


def _secret_options(parser):
    parser.add_argument("--secret-file", help="file holding the shared secret (default: environment variable "
                        "MINWA_PIPELINE_SECRET); never put the secret itself on the command line")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="minwa pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("split", help="cut a net into client.yaml (Sinks) and cloud.yaml (Sources)")
    p.add_argument("config")
    p.add_argument("--at", action="append", required=True, metavar="BLOB", help="cut at this blob (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="where the client connects (the Sinks' host_name)")
    p.add_argument("--port", type=int, default=5600)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p = sub.add_parser("serve", help="run the cloud half: listen, authenticate, return class scores")
    p.add_argument("config", help="cloud.yaml")
    p.add_argument("--weights", required=True, help="checkpoint (.h5) of the whole trained net")
    p.add_argument("--listen", metavar="HOST:PORT", help="default 127.0.0.1 and the Sources' port")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--depth", type=int, default=4, help="batches queued per client")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="seconds a silent connection is kept")
    p.add_argument("--max-clients", type=int, default=64, help="connections served at once")
    _secret_options(p)
    p = sub.add_parser("run", help="run the client half on a data set through a serving cloud half")
    p.add_argument("config", help="client.yaml")
    p.add_argument("--weights", required=True, help="checkpoint (.h5) of the whole trained net")
    p.add_argument("--data", help="data.path of the test split (any source the loader reads)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--connect", metavar="HOST:PORT", help="default: the Sinks' host_name and port")
    p.add_argument("--dtype", default="uint8", choices=["float32", "float16", "uint8"])
    p.add_argument("--depth", type=int, default=2, help="batches in flight (1 = send and wait, as the papers)")
    p.add_argument("--batches", type=int, help="only the first N test batches")
    p.add_argument("--tls-ca", help="CA certificate to verify the server's TLS certificate (turns TLS on)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--reconnect-s", type=float, default=30.0, help="how long to retry a lost server")
    p.add_argument("--json", help="also write the figures to this file")
    _secret_options(p)
    p = sub.add_parser("plan", help="rank the cuts by predicted latency and pipelined throughput")
    p.add_argument("config")
    p.add_argument("--client-flops", help="client FLOP/s, e.g. 5e9 or 5G")
    p.add_argument("--cloud-flops", help="cloud FLOP/s")
    p.add_argument("--bandwidth", default="1gbit", help="bits per second, e.g. 10mbit or 1e9")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added per batch by the link")
    p.add_argument("--dtype", default="uint8", choices=["float32", "float16", "uint8"])
    p.add_argument("--profile", action="store_true", help="measure per-layer times here instead of FLOP rates")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    return {"split": _split, "serve": _serve, "run": _run, "plan": _plan}[args.action](args)
