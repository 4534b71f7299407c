"""One training step (forward + backward + SGD update) of a net on numpy, against references
measured in the same run: the machine's float32 matrix-multiply rate (numpy/BLAS) and, when torch
is installed, PyTorch CPU on the same net.

    python benchmarks/step_time.py                         # cifar10_full, batch 100
    python benchmarks/step_time.py --config configs/cifar10_quick.yaml --steps 20

Prints the step time, the FLOP rate the step achieves (3x the forward FLOPs: forward, and a backward
that costs about twice the forward), that rate as a fraction of the measured GEMM rate, and the
ratio minwa/PyTorch. Shared, noisy machines: every figure is the median of several repeats.
"""
import argparse
import os
import statistics
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import minwa  # noqa: E402


def gemm_rate(size=1024, repeats=7):
    """float32 matrix-multiply GFLOP/s of numpy's BLAS (median over repeats)."""
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=numpy.float32)
    b = rng.standard_normal((size, size), dtype=numpy.float32)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2.0 * size ** 3 / statistics.median(times) / 1e9


def minwa_step_time(model, batch, steps, warmup=2):
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=1)
    solver = minwa.Solver(net, {"base_lr": 0.001, "momentum": 0.9, "weight_decay": 0.004})
    data_name, label_name = net.input_names
    shape = net.blob_shapes[data_name][1:]
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((batch,) + tuple(shape), dtype=numpy.float32)
    num_classes = net.blob_shapes[net.layers[-1].bottoms[0]][1]
    y = rng.integers(0, num_classes, size=batch)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        net.forward({data_name: x, label_name: y})
        net.backward()
        solver.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    flops = net.flops() * batch / net.blob_shapes[data_name][0]
    return statistics.median(times), flops


def torch_step_time(model, batch, steps, warmup=2):
    """The same layer list in PyTorch (None when torch is not installed or a layer has no mapping)."""
    try:
        import torch
    except ImportError:
        return None
    from torch_reference import build_torch_net  # noqa: PLC0415

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    built = build_torch_net(model)
    if built is None:
        return None
    module, in_shape = built
    opt = torch.optim.SGD(module.parameters(), lr=0.001, momentum=0.9, weight_decay=0.004)
    x = torch.randn((batch,) + tuple(in_shape))
    y = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(module(x), y)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(os.path.dirname(HERE), "configs", "cifar10_full.yaml"))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    job = minwa.load_config(args.config)
    gemm = gemm_rate()
    step, flops = minwa_step_time(job.model, args.batch, args.steps)
    achieved = 3.0 * flops / step / 1e9
    print(f"net                 : {job.name}, batch {args.batch}, {flops / 1e9:.3f} GFLOP forward")
    print(f"numpy float32 GEMM  : {gemm:8.2f} GFLOP/s (1024x1024, median of 7)")
    print(f"minwa step          : {step * 1000:8.1f} ms  ({args.batch / step:7.1f} images/s)")
    print(f"minwa achieved rate : {achieved:8.2f} GFLOP/s = {achieved / gemm:6.1%} of the GEMM rate")
    reference = torch_step_time(job.model, args.batch, args.steps)
    if reference is None:
        print("pytorch             : not installed (pip install torch) - skipped")
    else:
        print(f"pytorch step        : {reference * 1000:8.1f} ms  ({args.batch / reference:7.1f} images/s)")
        print(f"minwa / pytorch     : {step / reference:8.2f}x the PyTorch step time")


if __name__ == "__main__":
    main()
