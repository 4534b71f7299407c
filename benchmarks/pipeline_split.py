"""Pipeline split: the papers' three cases (client-only, split, cloud-only) over shaped links, and the planner.

    python benchmarks/pipeline_split.py                                  # full grid (root: tc-shaped veth links)
    python benchmarks/pipeline_split.py --filters 4,32 --link 10mbit --link 1gbit --rounds 1   # reduced grid

cifar10_full at batch 100, features as uint8 (the papers' Table 3 bytes):

- client-only: the whole net on the client, nothing sent;
- split: cut after pool1 with conv1 = f filters, or after pool2 with conv2 = f (f in --filters);
- cloud-only: the raw images sent (cut at the input blob), the whole net on the cloud.

Each split / cloud-only case runs ``minwa pipeline serve`` and ``minwa pipeline run`` as two processes, one in
each of two network namespaces joined by a veth pair shaped with tc (ShapedLink of benchmarks/data_parallel.py);
without root or iproute2 it says so and uses unshaped loopback. Rounds alternate the cases; medians over
rounds, with the spread. Printed per case: the steady-state time per batch (between results), bytes per batch,
the per-stage medians and, for split, the pipelining check: measured throughput / (1 / slowest stage), which
should be >= 0.9 (the sum of the stages is shown beside it); the link stage there is the measured link busy
time or the payload's time on the wire at the shaped rate, whichever is longer. Then the planner's choice
(per-layer times profiled here + the link rate) against the measured best, and its predicted time per batch
against the measured. The per-layer times are measured as each case runs them: by the client-only process
just before it times its forward (client-only, and cloud-only, whose client only reads and sends), and for
split by two profiling processes side by side, because there a computing client and a computing cloud process
share this machine's cores (on separate machines, as deployed, each one's solo profile would be the input).
Timings on a shared machine: read the uptime line first.
"""
import argparse
import copy
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from data_parallel import LINK_ADDRESSES, ShapedLink, _bits_per_s  # noqa: E402 - the benchmark's own link set-up

SECRET = "pipeline-benchmark-secret-not-for-production"
CUTS = {"conv1": "pool1", "conv2": "pool2"}


def _env():
    return dict(os.environ, MINWA_PIPELINE_SECRET=SECRET, MINWA_DEVICE="cpu", OMP_NUM_THREADS="1",
                OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT)


def _minwa(*args):
    return [sys.executable, "-m", "minwa.launch.cli", *map(str, args)]


# ---------------------------------------------------------------------------------------------
# workers (own processes, one BLAS thread)
def _worker_local(args):
    """Client-only: the whole net here; median seconds per forward of one batch, and the per-layer profile
    taken just before in this process (the planner's input for this case: no drift between the two)."""
    import time

    import numpy

    import minwa
    from minwa.parallel.pipeline.planner import profile_layers

    job = minwa.load_config(args.config)
    net = minwa.Net(job.model, phase="TEST", init=False)
    profile = profile_layers(net, repeats=9)  # initialises the weights it then runs with
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((100, 3, 32, 32)).astype(numpy.float32)
    y = rng.integers(0, 10, 100)
    times = []
    for _ in range(args.batches + 1):
        start = time.perf_counter()
        net.forward({"data": x, "label": y})
        times.append(time.perf_counter() - start)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"interval_s": statistics.median(times[1:]), "profile": profile}, f)


def _worker_load(args):
    """What reading one test batch costs the client (its loader alone, in its own process)."""
    import time

    import minwa
    from minwa.datasets import make_loader

    job = minwa.load_config(args.config)
    loader = make_loader(job.data, "test", seed=job.seed)
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in loader.batches(0, min(args.batches, loader.steps_per_epoch)))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"wall_s": (time.perf_counter() - start) / count, "cpu_s": (time.process_time() - cpu) / count}, f)


def _worker_profile(args):
    import minwa
    from minwa.parallel.pipeline.planner import profile_layers

    job = minwa.load_config(args.config)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(profile_layers(minwa.Net(job.model, phase="TEST", init=False), repeats=args.batches), f)


# ---------------------------------------------------------------------------------------------
# launcher
def _variant_model(layer, filters):
    import minwa

    model = copy.deepcopy(minwa.load_config(os.path.join(ROOT, "configs", "cifar10_full.yaml")).model)
    for spec in model["layers"]:
        if spec["name"] == layer:
            spec["convolution_param"]["num_output"] = filters
    return model


def _prepare(directory, layer, filters, data):
    """job.yaml, weights.h5 and the split (cut) and cloud-only (raw) halves of one variant."""
    import yaml

    import minwa

    model = _variant_model(layer, filters)
    os.makedirs(directory, exist_ok=True)
    job = os.path.join(directory, "job.yaml")
    with open(job, "w", encoding="utf-8") as f:
        yaml.safe_dump({"name": f"{layer}_{filters}", "model": model, "data": data}, f)
    minwa.save_checkpoint(os.path.join(directory, "weights.h5"), minwa.Net(model, phase="TEST", seed=1))
    for case, blob in (("split", CUTS[layer]), ("cloud-only", "data")):
        out = subprocess.run(_minwa("pipeline", "split", job, "--at", blob, "--out", os.path.join(directory, case)),
                             capture_output=True, text=True, env=_env(), timeout=120)
        if out.returncode:
            sys.exit(f"pipeline_split benchmark: split failed: {out.stderr}")
    return job


def _wait_line(stream, text, timeout):
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"server did not say {text!r} in {timeout} s: {''.join(seen)}") from None
        seen.append(line)
        if text in line:
            return


def _remote(directory, case, link, args, port):
    """One split or cloud-only run: server in namespace A, client in namespace B (or both on loopback)."""
    server_prefix, client_prefix = link.prefixes() if link else ([], [])
    address = LINK_ADDRESSES[0].split("/")[0] if link else "127.0.0.1"
    half = os.path.join(directory, case)
    weights = os.path.join(directory, "weights.h5")
    server = subprocess.Popen(server_prefix + _minwa("pipeline", "serve", os.path.join(half, "cloud.yaml"),
                                                     "--weights", weights, "--listen", f"{address}:{port}"),
                              stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True)
    try:
        _wait_line(server.stderr, "listening on", 120)
        out = os.path.join(directory, f"{case}.json")
        before = link.rx_bytes() if link else 0
        run = subprocess.run(client_prefix + _minwa(
            "pipeline", "run", os.path.join(half, "client.yaml"), "--weights", weights, "--connect",
            f"{address}:{port}", "--dtype", "uint8", "--depth", str(args.depth), "--batches", str(args.batches),
            "--json", out, "--timeout", "120"), capture_output=True, text=True, env=_env(), timeout=1800)
        if run.returncode:
            raise RuntimeError(f"pipeline run failed: {run.stderr}")
        with open(out, encoding="utf-8") as f:
            stats = json.load(f)
        stats["link_bytes_per_batch"] = (link.rx_bytes() - before) / stats["batches"] if link else float("nan")
        return stats
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _worker(kind, config, batches, copies=1):
    """Run a worker in its own process (``copies`` of it at once); its result (a list of them for copies > 1)."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"out{i}.json") for i in range(copies)]
        procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind, "--config", config,
                                   "--batches", str(batches), "--out", out], env=_env()) for out in outs]
        try:
            codes = [p.wait(timeout=1800) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        if any(codes):
            sys.exit(f"pipeline_split benchmark: the {kind} worker exited with {codes}")
        rows = []
        for out in outs:
            with open(out, encoding="utf-8") as f:
                rows.append(json.load(f))
        return rows[0] if copies == 1 else rows


def _paired_profile(config):
    """Per-layer times taken while the other core runs the same profile: a split run computes in a client and a
    cloud process side by side on this machine, and a stage is 20-30% slower there than alone (shared cache,
    memory bandwidth, clock); the mean of the two copies per layer."""
    pair = _worker("profile", config, 9, copies=2)
    return {name: (pair[0][name] + pair[1][name]) / 2 for name in pair[0]}


def _summary(values):
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan")
    return statistics.median(values), (max(values) - min(values)) / 2


def _plan(model, profile, bandwidth, cut):
    """Planner rows for the three cases of this variant (per-layer times profiled here, the link's rate)."""
    from minwa.parallel.pipeline.planner import plan_cuts

    rows = plan_cuts(model, bandwidth=bandwidth, dtype="uint8", measured=profile)
    keep = {"client-only": "client-only", "data (cloud-only)": "cloud-only", cut: "split"}
    return {keep[r["cut"]]: r for r in rows if r["cut"] in keep}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--filters", default="4,8,16,32")
    parser.add_argument("--layers", default="conv1,conv2", help="conv1 (cut after pool1) and/or conv2 (pool2)")
    parser.add_argument("--link", action="append", default=[], help="tc rate, repeatable (default 10mbit, "
                        "100mbit, 1gbit)")
    parser.add_argument("--batches", type=int, default=10, help="batches per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--depth", type=int, default=3, help="batches in flight")
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--data", help="an HDF5 pack (minwa pack) whose test split the client reads; default: the "
                        "built-in shapes set, whose images are drawn on the client's CPU while it computes")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return {"local": _worker_local, "profile": _worker_profile, "load": _worker_load}[args.worker](args)
    if args.batches < args.depth + 3:
        # the first depth + 1 results come before the pipeline is full: fewer leave no steady-state interval
        parser.error(f"--batches must be at least --depth + 3 = {args.depth + 3}, so the steady state is timed")
    links = args.link or ["10mbit", "100mbit", "1gbit"]
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    reason = ShapedLink.available()
    if reason:
        print(f"links: tc-shaped veth pairs unavailable ({reason}); every case runs over unshaped loopback")
        links = ["loopback"]
    data = ({"source": "hdf5", "path": os.path.abspath(args.data), "mean": "none", "batch_size": 100,
             "test_batch_size": 100} if args.data else {"source": "shapes", "image_size": 32, "train_count": 100,
                                          "test_count": 100 * args.batches, "batch_size": 100,
                                          "test_batch_size": 100, "mean": "none"})
    print(f"cifar10_full, batch 100, uint8 features, depth {args.depth}, {args.batches} batches per run, "
          f"{args.rounds} round(s); test images from {data.get('path', 'the built-in shapes set')}")
    variants = [(layer, int(f)) for layer in args.layers.split(",") for f in args.filters.split(",")]
    results, port = {}, 5700
    with tempfile.TemporaryDirectory() as tmp:
        prepared = {}
        for layer, f in variants:
            directory = os.path.join(tmp, f"{layer}_{f}")
            prepared[(layer, f)] = (directory, _prepare(directory, layer, f, data))
        load = _worker("load", next(iter(prepared.values()))[1], args.batches)
        print(f"reading one test batch costs the client {load['wall_s'] * 1e3:.1f} ms ({load['cpu_s'] * 1e3:.1f} ms "
              "of CPU) beside its forward, in split and cloud-only runs (client-only times the forward alone; the "
              "planner counts compute and the link only)")
        profiles = {}
        for rate in links:
            shaped = None if rate == "loopback" else ShapedLink(rate)
            if shaped:
                shaped.__enter__()
            try:
                for _ in range(args.rounds):
                    for (layer, f), (directory, job) in prepared.items():
                        # per-layer times for the planner, profiled in every round just before the runs they
                        # predict (the shared machine's speed drifts by 20-30% over minutes); the plan uses
                        # their median over rounds (see the module docstring for which profile predicts what)
                        profiles.setdefault((rate, layer, f, "paired"), []).append(_paired_profile(job))
                        for case in ("split", "cloud-only", "client-only"):
                            key = (rate, layer, f, case)
                            if case == "client-only":
                                row = _worker("local", job, args.batches)
                                profiles.setdefault((rate, layer, f, "solo"), []).append(row["profile"])
                            else:
                                port += 1
                                row = _remote(directory, case, shaped, args, port)
                            results.setdefault(key, []).append(row)
            finally:
                if shaped:
                    shaped.__exit__()
        _report(results, profiles, links, variants)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"|".join(map(str, k)): v for k, v in results.items()}, f, indent=1)
    return 0


def _verdict(best, chosen, measured, spreads):
    """agrees; a tie (the chosen case's median is within the two cases' spreads of the best's); or differs."""
    if best == chosen:
        return "agrees"
    if measured[chosen] - measured[best] <= spreads[chosen] + spreads[best]:
        return "a tie within the spread"
    return "differs"


def _report(results, profiles, links, variants):
    verdicts, errors = [], []
    for rate in links:
        bandwidth = _bits_per_s(rate) if rate != "loopback" else 1e10
        print(f"\nlink: {'unshaped loopback' if rate == 'loopback' else f'veth pair shaped to {rate} (tc tbf)'}")
        print(f"{'variant':<11} {'case':<12} {'ms/batch':>9} {'±':>6} {'bytes/batch':>12} {'client ms':>9} "
              f"{'link ms':>8} {'cloud ms':>8} {'sum ms':>7} {'thr/(1/slowest)':>15} {'planned ms':>10} "
              f"{'plan/meas':>9}")
        for layer, f in variants:
            model = _variant_model(layer, f)
            plans = {}
            for kind in ("solo", "paired"):
                taken = profiles[(rate, layer, f, kind)]
                profile = {name: statistics.median(p[name] for p in taken) for name in taken[0]}
                plans[kind] = _plan(model, profile, bandwidth, CUTS[layer])
            # only in split do both processes compute (cloud-only's client reads and sends): the paired profile
            plan = {case: plans["paired" if case == "split" else "solo"][case]
                    for case in ("client-only", "split", "cloud-only")}
            measured, spreads = {}, {}
            for case in ("client-only", "split", "cloud-only"):
                rows = results[(rate, layer, f, case)]
                ms, spread = (v * 1e3 for v in _summary([r["interval_s"] for r in rows]))
                measured[case], spreads[case] = ms, spread
                predicted = 1e3 / plan[case]["throughput"]
                errors.append(predicted / ms - 1)
                if case == "client-only":
                    print(f"{layer}={f:<5} {case:<12} {ms:>9.1f} {spread:>6.1f} {0:>12,} {'':>9} {'':>8} {'':>8} "
                          f"{'':>7} {'':>15} {predicted:>10.1f} {predicted / ms:>9.2f}")
                    continue
                med = {k: _summary([r[k] for r in rows])[0] * 1e3 for k in ("client_s", "encode_s", "transfer_s",
                                                                             "cloud_s")}
                client = med["client_s"] + med["encode_s"]
                # the link stage is at least the payload's time on the wire at the shaped rate: the measured
                # busy time (ready to ACK) misses what the socket buffers took in before the previous ACK
                wire = rows[0]["payload_bytes_per_batch"] * 8 / bandwidth * 1e3
                slowest = max(client, med["transfer_s"], wire, med["cloud_s"])
                total = client + med["transfer_s"] + med["cloud_s"]
                print(f"{'':<11} {case:<12} {ms:>9.1f} {spread:>6.1f} {rows[0]['payload_bytes_per_batch']:>12,.0f} "
                      f"{client:>9.1f} {med['transfer_s']:>8.1f} {med['cloud_s']:>8.1f} {total:>7.1f} "
                      f"{slowest / ms:>15.2f} {predicted:>10.1f} {predicted / ms:>9.2f}")
            best = min(measured, key=measured.get)
            chosen = max(plan, key=lambda c: plan[c]["throughput"])
            verdicts.append(_verdict(best, chosen, measured, spreads))
            print(f"{'':<11} measured best: {best}; planner's choice: {chosen} ({verdicts[-1]})")
    within = sum(abs(e) <= 0.2 for e in errors)
    print(f"\nplanner: picks the measured best in {verdicts.count('agrees')} of {len(verdicts)} cells "
          f"({verdicts.count('a tie within the spread')} more are ties within the spread); predicted time per batch "
          f"within 20% of the measured in {within} of {len(errors)} rows")


if __name__ == "__main__":
    sys.exit(main())
