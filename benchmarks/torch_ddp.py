"""PyTorch DistributedDataParallel (gloo, 1 thread per rank) weak scaling, for data_parallel.py (torch optional).

Run as a script it is one rank (``--rank R --world N --port P``); ``weak_scaling`` starts
one plain process (N = 1, no DDP) and then N ranks over loopback TCP, each its own
process with one intra-op thread, on the same synthetic batch per rank as minwa.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(args):
    import torch
    import torch.distributed as dist
    from data_parallel import _model
    from torch_reference import build_torch_net

    torch.set_num_threads(1)
    model, _ = _model(args.model, args.batch)
    module, in_shape = build_torch_net(model)
    if args.world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=args.rank,
                                world_size=args.world)
        module = torch.nn.parallel.DistributedDataParallel(module)
    torch.manual_seed(args.rank)
    opt = torch.optim.SGD(module.parameters(), lr=0.001, momentum=0.9, weight_decay=0.004)
    x = torch.randn((args.batch,) + tuple(in_shape))
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(module(x), y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if args.world > 1:
        dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if args.world > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    if args.rank == 0:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"images_per_s": args.steps * args.batch * args.world / seconds,
                       "seconds_per_step": seconds / args.steps}, f)
    if args.world > 1:
        # both ranks are past their last collective and the figures are written. Leave without gloo's
        # teardown: a rank closing its sockets while the other still tears down aborted the other one
        # ("terminate called without an active exception", exit -6): two of four data_parallel.py runs in a row
        dist.barrier()
        sys.stdout.flush()
        os._exit(0)


def run(world, model, batch, steps, warmup, timeout=1800):
    """images/s and seconds per step of ``world`` ranks (1: a plain process without DDP)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "torch.json")
        procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--rank", str(r), "--world", str(world),
                                   "--port", str(port), "--model", model, "--batch", str(batch), "--steps", str(steps),
                                   "--warmup", str(warmup), "--out", out], env=env) for r in range(world)]
        try:
            codes = [p.wait(timeout=timeout) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        if any(codes):
            raise RuntimeError(f"torch DDP ranks exited with {codes}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def weak_scaling(model, batch, steps, warmup, world=2):
    """{'N=1': row, 'N=world': row, 'speedup': img/s ratio}, or None when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    single = run(1, model, batch, steps, warmup)
    many = run(world, model, batch, steps, warmup)
    return {"N=1": single, f"N={world}": many, "speedup": many["images_per_s"] / single["images_per_s"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, kind in (("rank", int), ("world", int), ("port", int), ("batch", int), ("steps", int),
                       ("warmup", int), ("model", str), ("out", str)):
        parser.add_argument(f"--{name}", type=kind, required=True)
    rank_main(parser.parse_args())
