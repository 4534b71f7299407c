"""Loader throughput: images/s from an HDF5 pack and from the JPEG folder, beside the training step's images/s.

Extracts the shared CIFAR-10 JPEG tarball (../shared/data/cifar10-jpeg.tar.gz) to a
temporary folder once, packs it with ``minwa pack``, then times the training
Loader (global batch 100, shuffled, mean image subtracted, prefetch thread) on both,
and one training step of cifar10_full (forward + backward + update, batch 100) in
the same run.  The ratio loader/step says whether loading keeps up: above 1 it
does, with that much to spare.  Machines are shared and noisy, so only ratios
measured in one run are meaningful.

    python benchmarks/loader_throughput.py [--steps 30] [--train-steps 3] [--workdir DIR] [--tarball PATH]
"""
import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARBALL = os.path.join(HERE, "..", "..", "shared", "data", "cifar10-jpeg.tar.gz")


def extract(tarball, folder):
    """Extract the tarball into ``folder`` (skipped when a previous run left it there)."""
    marker = os.path.join(folder, ".extracted")
    if os.path.exists(marker):
        return
    with tarfile.open(tarball) as archive:
        try:
            archive.extractall(folder, filter="data")
        except TypeError:  # Python without extraction filters
            archive.extractall(folder)
    open(marker, "w").close()


def loader_rate(data, steps, warmup=3):
    """Images/s of the training loader described by ``data`` over ``steps`` batches after a warm-up."""
    from minwa.datasets import make_loader

    loader = make_loader(data, "train", seed=0)
    stream = loader.batches(0)
    for _ in range(warmup):
        next(stream)
    start = time.perf_counter()
    count = 0
    for _ in range(steps):
        x, _ = next(stream)
        count += x.shape[0]
    elapsed = time.perf_counter() - start
    stream.close()
    return count / elapsed


def source_rate(data, count):
    """Images/s of plain random reads from the source (no thread, no normalisation)."""
    import numpy

    from minwa.datasets import build_source

    source = build_source(data, "train")
    indices = numpy.random.default_rng(0).permutation(len(source))[:count]
    start = time.perf_counter()
    for chunk in range(0, count, 100):
        source.get_many(indices[chunk:chunk + 100])
    return count / (time.perf_counter() - start)


def step_rate(steps, conv1=32):
    """Images/s of cifar10_full training steps at batch 100 on random data (None when the engine is missing)."""
    import numpy

    try:
        import minwa
        from minwa.net import Net
        from minwa.solver import Solver
    except ImportError as exc:
        print(f"(training step not timed: {exc})")
        return None
    config = os.path.join(HERE, "..", "configs", "cifar10_full.yaml")
    job = minwa.load_config(config, overrides={"model.layers.conv1.convolution_param.num_output": conv1},
                            validate=False)
    net = Net(job.model, phase="TRAIN")
    solver = Solver(net, job.solver)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((100, 3, 32, 32)).astype(numpy.float32)
    y = rng.integers(0, 10, size=100)
    net.forward({"data": x, "label": y})
    net.backward()
    solver.step()
    start = time.perf_counter()
    for _ in range(steps):
        net.forward({"data": x, "label": y})
        net.backward()
        solver.step()
    return 100 * steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", default=TARBALL, help="CIFAR-10 JPEG tarball (train/<class>/*.jpg)")
    parser.add_argument("--workdir", default=None, help="keep the extracted folder and pack here (default: temp)")
    parser.add_argument("--steps", type=int, default=30, help="loader batches of 100 to time (default 30)")
    parser.add_argument("--train-steps", type=int, default=3, help="training steps to time (default 3)")
    args = parser.parse_args(argv)
    tarball = os.path.abspath(args.tarball)
    if not os.path.isfile(tarball):
        print(f"skipped: {tarball} is not present (the benchmark needs the CIFAR-10 JPEG tarball)")
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix="minwa-loader-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        folder = os.path.join(workdir, "cifar10-jpeg")
        pack_path = os.path.join(workdir, "cifar10.h5")
        start = time.perf_counter()
        extract(tarball, folder)
        print(f"extracted {tarball} in {time.perf_counter() - start:.1f} s")
        if not os.path.exists(pack_path):
            from minwa.datasets.pack import main as pack

            start = time.perf_counter()
            if pack([f"folder:{folder}", pack_path, "--quiet"]) != 0:
                return 1
            print(f"packed to {pack_path} in {time.perf_counter() - start:.1f} s")
        common = {"batch_size": 100, "mean": "image", "scale": 1.0, "prefetch": 2, "mean_samples": 5000}
        hdf5, jpeg = {"source": "hdf5", "path": pack_path}, {"source": "folder", "path": folder}
        measures = [
            ("HDF5 pack, random reads", lambda: source_rate(hdf5, 100 * args.steps)),
            ("JPEG folder, random reads + decode", lambda: source_rate(jpeg, 100 * args.steps)),
            ("HDF5 pack, Loader (shuffle, mean, prefetch)", lambda: loader_rate(dict(common, **hdf5), args.steps)),
            ("JPEG folder, Loader (shuffle, mean, prefetch)", lambda: loader_rate(dict(common, **jpeg), args.steps)),
        ]
        # best of two rounds: the first round also warms the page cache for every reader alike
        rates = [[measure() for _, measure in measures] for _ in range(2)]
        rows = [(name, max(rates[0][k], rates[1][k])) for k, (name, _) in enumerate(measures)]
        train = step_rate(args.train_steps)
        print()
        print(f"{'what':<48}{'images/s':>12}{'x training step':>18}")
        for name, rate in rows:
            ratio = f"{rate / train:>18.1f}" if train else f"{'-':>18}"
            print(f"{name:<48}{rate:>12.0f}{ratio}")
        if train:
            print(f"{'cifar10_full training step (batch 100, numpy)':<48}{train:>12.0f}{1.0:>18.1f}")
        print("\nA ratio above 1 means the loader produces batches faster than training consumes them.")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
