"""One training step (forward + backward + SGD update) of minwa against PyTorch CPU on the same net.

    python benchmarks/step_time.py                  # cifar10_full b100 and Deep Image 32x32 b8, all cores and 1 thread
    python benchmarks/step_time.py --quick          # the same, fewer rounds and steps (about 2-3 minutes)
    python benchmarks/step_time.py --layers         # also minwa's per-layer forward/backward times
    python benchmarks/step_time.py --models cifar10_full --threads 1 --rounds 5
    MINWA_NUMBA=0 python benchmarks/step_time.py    # minwa without its compiled pooling/LRN kernels
    python benchmarks/step_time.py --openblas-coretype auto   # numpy's OpenBLAS picks its kernels for this CPU

Honest by construction: every figure comes from its own subprocess (minwa, PyTorch and the
float32 GEMM reference never share a process, so no idle BLAS/OpenMP pool of one steals the
other's cores); each thread setting runs the frameworks alternated over ``--rounds`` rounds
(order swapped every round); medians are printed with their spread (min-max over rounds),
with the thread counts each process really used and its peak resident memory (RSS, and the
part a training step adds over the imports).  The GEMM rate is numpy's float32 1024^3 matrix
product with the same thread count and the same OpenBLAS kernels as minwa (printed for both: an
environment can pin them, as earlier development machines' OPENBLAS_CORETYPE=Haswell did); a step's
rate counts 3x the forward FLOPs.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

#: name -> (config, input CHW or None for the config's own, default batch)
MODELS = {
    "cifar10_full": ("configs/cifar10_full.yaml", None, 100),
    "deep_image_32": ("configs/deep_image.yaml", (3, 32, 32), 8),  # Table 2's net at 32x32, as data_parallel.py
}
THREAD_ENV = ("MINWA_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _model(name, batch):
    import copy

    import minwa

    path, chw, _ = MODELS[name]
    job = minwa.load_config(os.path.join(ROOT, path))
    model = copy.deepcopy(job.model)
    for layer in model["layers"]:
        if layer["type"] == "Input":
            shapes = layer["input_param"]["shape"]
            shapes[0]["dim"] = [batch] + list(chw or shapes[0]["dim"][1:])
            shapes[1]["dim"] = [batch]
    return model, job.solver


def _timed(fn, warmup, steps):
    """Wall times of ``steps`` calls after ``warmup`` untimed ones, and the CPU seconds per timed call
    (all threads; the warm-up, where numba loads its kernels and PyTorch its, is left out)."""
    for _ in range(warmup):
        fn()
    times = []
    cpu0 = time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times, (time.process_time() - cpu0) / steps


# -- workers: one per subprocess ------------------------------------------------------------
def work_gemm(args):
    import numpy

    from minwa.layers._threads import blas_controller

    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=numpy.float32)
    b = rng.standard_normal((1024, 1024), dtype=numpy.float32)
    times, _ = _timed(lambda: a @ b, 2, 9)
    blas = blas_controller()
    return {"gflops": 2.0 * 1024 ** 3 / statistics.median(times) / 1e9,
            "blas_threads": [lib["num_threads"] for lib in blas.info()] if blas else None,
            "blas_kernels": [lib.get("architecture") for lib in blas.info()] if blas else None}


def _wrap_layers(net, fwd, bwd):
    for layer in net.layers:
        def forward(bottoms, f=layer.forward, name=layer.name):
            start = time.perf_counter()
            out = f(bottoms)
            fwd.setdefault(name, []).append(time.perf_counter() - start)
            return out

        def backward(top_grads, propagate, b=layer.backward, name=layer.name):
            start = time.perf_counter()
            out = b(top_grads, propagate)
            bwd.setdefault(name, []).append(time.perf_counter() - start)
            return out

        layer.forward, layer.backward = forward, backward


def work_minwa(args):
    import numpy

    import minwa
    from minwa.layers import _jit
    from minwa.layers._threads import blas_controller, thread_count

    base = _rss_mb()
    model, _ = _model(args.model, args.batch)
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=1)
    solver = minwa.Solver(net, {"base_lr": 0.001, "momentum": 0.9, "weight_decay": 0.004})
    data, label = net.input_names
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((args.batch,) + tuple(net.blob_shapes[data][1:]), dtype=numpy.float32)
    y = rng.integers(0, net.blob_shapes[net.layers[-1].bottoms[0]][1], size=args.batch)

    def step():
        net.forward({data: x, label: y})
        net.backward()
        solver.step()

    times, cpu = _timed(step, args.warmup, args.steps)
    out = {"times": times, "cpu_per_step": cpu, "peak_rss_mb": _rss_mb(), "base_rss_mb": base,
           "flops": 3.0 * net.flops() * args.batch / net.blob_shapes[data][0],
           "threads": thread_count(), "kernels": "numba" if _jit.enabled() else "numpy",
           "blas_threads": [lib["num_threads"] for lib in blas_controller().info()],
           "blas_kernels": [lib.get("architecture") for lib in blas_controller().info()]}
    if args.layers:
        fwd, bwd = {}, {}
        _wrap_layers(net, fwd, bwd)
        _timed(step, 0, max(3, args.steps))
        out["layers"] = [(name, statistics.median(fwd[name]), statistics.median(bwd.get(name, [0.0])))
                         for name in fwd]
    return out


def work_torch(args):
    try:
        import torch
    except ImportError:
        return None
    from torch_reference import build_torch_net

    torch.set_num_threads(args.threads)
    base = _rss_mb()
    model, _ = _model(args.model, args.batch)
    built = build_torch_net(model)
    if built is None:
        return None
    module, in_shape = built
    opt = torch.optim.SGD(module.parameters(), lr=0.001, momentum=0.9, weight_decay=0.004)
    x = torch.randn((args.batch,) + tuple(in_shape))
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(module(x), y).backward()
        opt.step()

    times, cpu = _timed(step, args.warmup, args.steps)
    return {"times": times, "cpu_per_step": cpu, "peak_rss_mb": _rss_mb(), "base_rss_mb": base,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


WORKERS = {"gemm": work_gemm, "minwa": work_minwa, "torch": work_torch}


# -- the driver -----------------------------------------------------------------------------
def _spawn(kind, model, batch, threads, args):
    env = dict(os.environ, **{key: str(threads) for key in THREAD_ENV})
    if args.openblas_coretype == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif args.openblas_coretype:
        env["OPENBLAS_CORETYPE"] = args.openblas_coretype
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--model", model, "--batch", str(batch),
           "--thread-count", str(threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.layers:
        cmd.append("--layers")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise SystemExit(f"step_time: the {kind} worker ({model}, {threads} threads) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _spread(values, scale=1.0, fmt="{:.1f}"):
    values = sorted(v * scale for v in values)
    med = statistics.median(values)
    return f"{fmt.format(med)} [{fmt.format(values[0])}-{fmt.format(values[-1])}]", med


def _report(model, batch, threads, runs):
    print(f"\n== {model}, batch {batch}, {threads} thread(s) per process, {len(runs['minwa'])} alternated rounds ==")
    gemm_text, gemm = _spread([r["gflops"] for r in runs["gemm"]])
    first = runs["minwa"][0]
    print(f"numpy float32 GEMM   : {gemm_text} GFLOP/s   (BLAS threads {runs['gemm'][0]['blas_threads']}, "
          f"kernels {runs['gemm'][0]['blas_kernels']})")
    step_m = [statistics.median(r["times"]) for r in runs["minwa"]]
    text_m, med_m = _spread(step_m, 1e3)
    rate = first["flops"] / med_m * 1e3 / 1e9
    cpu_m = statistics.median(r["cpu_per_step"] for r in runs["minwa"]) * 1e3
    print(f"minwa step           : {text_m} ms   cpu {cpu_m:.1f} ms/step   {batch / med_m * 1e3:.1f} img/s"
          f"   threads {first['threads']}, BLAS {first['blas_threads']} {first['blas_kernels']}, pooling/LRN kernels "
          f"{first['kernels']}")
    # each round's step against the GEMM rate measured just before it, so slow drift of the host cancels
    shares, _ = _spread([first["flops"] / m / 1e9 / r["gflops"] for m, r in zip(step_m, runs["gemm"])], 100,
                        fmt="{:.1f}%")
    print(f"minwa achieved rate  : {rate:.1f} GFLOP/s = {rate / gemm:.1%} of the GEMM rate (per round: {shares})")
    rss = max(r["peak_rss_mb"] for r in runs["minwa"])
    grow = max(r["peak_rss_mb"] - r["base_rss_mb"] for r in runs["minwa"])
    print(f"minwa peak RSS       : {rss:.0f} MB ({grow:.0f} MB over the imports)")
    if not runs.get("torch") or runs["torch"][0] is None:
        print("pytorch              : not installed or no mapping for this net - skipped")
        return
    step_t = [statistics.median(r["times"]) for r in runs["torch"]]
    text_t, med_t = _spread(step_t, 1e3)
    t0 = runs["torch"][0]
    cpu_t = statistics.median(r["cpu_per_step"] for r in runs["torch"]) * 1e3
    print(f"pytorch step         : {text_t} ms   cpu {cpu_t:.1f} ms/step   {batch / med_t * 1e3:.1f} img/s"
          f"   threads {t0['threads']} (interop {t0['interop_threads']})")
    rss_t = max(r["peak_rss_mb"] for r in runs["torch"])
    grow_t = max(r["peak_rss_mb"] - r["base_rss_mb"] for r in runs["torch"])
    print(f"pytorch peak RSS     : {rss_t:.0f} MB ({grow_t:.0f} MB over the imports)")
    ratios, _ = _spread([m / t for m, t in zip(step_m, step_t)], fmt="{:.2f}")
    print(f"minwa / pytorch      : {med_m / med_t:.2f}x the PyTorch step time (per round: {ratios})")


def _report_layers(runs):
    rounds = [r["layers"] for r in runs["minwa"] if "layers" in r]
    if not rounds:
        return
    print("  per-layer ms (median over rounds)   forward  backward")
    for k, (name, _, _) in enumerate(rounds[0]):
        f = statistics.median(r[k][1] for r in rounds) * 1e3
        b = statistics.median(r[k][2] for r in rounds) * 1e3
        print(f"  {name:34s} {f:8.2f} {b:9.2f}")


def _all_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cifar10_full,deep_image_32", help=f"comma list of {sorted(MODELS)}")
    parser.add_argument("--batch", type=int, default=None, help="per model default: cifar10_full 100, deep_image 8")
    parser.add_argument("--threads", default="all,1", help="thread counts per process; all = every core")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--layers", action="store_true", help="also per-layer forward/backward times of minwa")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 4 steps (about 2-3 minutes)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one worker may take")
    parser.add_argument("--openblas-coretype", help="OPENBLAS_CORETYPE for every worker (e.g. SkylakeX, Haswell); "
                        "auto = unset it, so OpenBLAS picks its kernels for this CPU (default: the environment's)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--thread-count", type=int, dest="thread_count", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.threads = args.thread_count
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if args.quick:
        args.rounds, args.steps, args.warmup = 3, 4, 1
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            parser.error(f"unknown model {m!r}; known: {sorted(MODELS)}")
    threads = [_all_cores() if t.strip() == "all" else int(t) for t in args.threads.split(",")]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"python {sys.version.split()[0]}, {_all_cores()} usable cores; rounds {args.rounds}, "
          f"steps {args.steps} (+{args.warmup} warm-up) per process")
    coretype = args.openblas_coretype or os.environ.get("OPENBLAS_CORETYPE")
    print("OPENBLAS_CORETYPE: " + ("unset (OpenBLAS picks its kernels for this CPU)" if coretype in (None, "auto") else
                                  f"{coretype} ({'--openblas-coretype' if args.openblas_coretype else 'environment'})"))
    kinds = ["minwa"] + ([] if args.no_torch else ["torch"])
    for model in models:
        batch = args.batch or MODELS[model][2]
        for count in threads:
            runs = {"gemm": [], "minwa": [], "torch": []}
            for r in range(args.rounds):
                runs["gemm"].append(_spawn("gemm", model, batch, count, args))
                for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                    runs[kind].append(_spawn(kind, model, batch, count, args))
            _report(model, batch, count, runs)
            if args.layers:
                _report_layers(runs)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
