"""Augmentation throughput per core: minwa's pipeline against references measured in the same run.

    python benchmarks/augment_throughput.py                 # 512x512 sources, 224x224 crops
    python benchmarks/augment_throughput.py --rounds 7 --images 48

Everything runs on one thread (OMP/OPENBLAS/MKL threads and OpenCV pinned to 1), so the
figures are images per second per core. Printed:

- the full training pipeline (crop from a 512 source, flip, rotation, lens distortion, colour
  cast, vignette) with each operation at p = 0.5 (the defaults) and at p = 1 (always all);
- each operation alone (p = 1) after the crop;
- if albumentations is importable: the closest albumentations pipeline on the same images
  (RandomCrop 224, HorizontalFlip, Rotate +-10, OpticalDistortion, RGBShift of 20,
  Illumination in corner mode as the vignette) at the same probabilities, each op alone
  likewise, and the ratio minwa / albumentations;
- the training step of cifar10_full (minwa.Net + minwa.Solver, batch 100) in images/s, for scale:
  the loader must feed at least that many images per second per training process.

Both sides deliver each augmented image into a reused uint8 batch array (minwa's transform
writes into the ``out`` its loader passes; albumentations' result is copied into one), because a
loader needs the pixels: a bare albumentations crop is a view that has not touched them yet.

Times are this thread's CPU time (time.thread_time), so other processes competing for the
cores do not count against either side; rounds alternate between minwa and the reference so
both see the same cache and memory pressure; each figure is the median over rounds.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - after pinning the thread counts
import statistics  # noqa: E402 - after pinning the thread counts
import sys  # noqa: E402 - after pinning the thread counts
import time  # noqa: E402 - after pinning the thread counts

import numpy  # noqa: E402 - after pinning the thread counts

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from minwa.augment import build_transform  # noqa: E402 - after pinning the thread counts

OPS = ("flip", "rotation", "lens_distortion", "color_cast", "vignette")


def source_images(count, side, seed=0):
    """``count`` side x side uint8 RGB pictures: the shared photos when present, else smooth noise."""
    photos = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "photos")
    rng = numpy.random.default_rng(seed)
    pictures = []
    if os.path.isdir(photos):
        from PIL import Image

        for name in sorted(os.listdir(photos)):
            with Image.open(os.path.join(photos, name)) as pil:
                pil = pil.convert("RGB")
                scale = side / min(pil.size)
                pil = pil.resize((max(side, round(pil.size[0] * scale)), max(side, round(pil.size[1] * scale))))
                pictures.append(numpy.asarray(pil)[:side, :side])
    if not pictures:
        coarse = rng.integers(0, 256, size=(count, side // 16, side // 16, 3)).astype(numpy.float32)
        pictures = [numpy.kron(c, numpy.ones((16, 16, 1))).astype(numpy.uint8) for c in coarse]
    images = []
    for i in range(count):
        base = pictures[i % len(pictures)].astype(numpy.int16)
        noise = rng.integers(-8, 9, size=base.shape, dtype=numpy.int16)  # distinct images, same content
        images.append(numpy.clip(base + noise, 0, 255).astype(numpy.uint8))
    return images


def minwa_block(crop, source, p, only=None):
    block = {"crop": crop, "scales": [source]}
    for name in OPS:
        if only is None or name == only:
            block[name] = {"p": p}
    return block


def minwa_runner(block, images):
    transform = build_transform(block, seed=0, train=True)
    state = {"epoch": 0}
    out = numpy.empty((len(images), transform.size, transform.size, 3), dtype=numpy.uint8)

    def run():
        # the whole list as one batch, into a reused batch array, as minwa's loader calls it
        state["epoch"] += 1
        transform(images, numpy.arange(len(images)), state["epoch"], out=out)

    return run


def albumentations_runner(crop, p, only, images):
    import albumentations

    ops = {
        "flip": lambda: albumentations.HorizontalFlip(p=p),
        "rotation": lambda: albumentations.Rotate(limit=10, p=p),
        "lens_distortion": lambda: albumentations.OpticalDistortion(p=p),
        "color_cast": lambda: albumentations.RGBShift(r_shift_limit=20, g_shift_limit=20, b_shift_limit=20, p=p),
        "vignette": lambda: albumentations.Illumination(mode="corner", p=p),
    }
    chain = [albumentations.RandomCrop(crop, crop)] + [make() for name, make in ops.items()
                                                       if only is None or name == only]
    pipeline = albumentations.Compose(chain, seed=0) if "seed" in _parameters(albumentations.Compose) \
        else albumentations.Compose(chain)

    out = numpy.empty((len(images), crop, crop, 3), dtype=numpy.uint8)

    def run():
        # into a batch array, as minwa's transform returns it: a loader needs the pixels, not a view
        for i, image in enumerate(images):
            out[i] = pipeline(image=image)["image"]

    return run


def _parameters(cls):
    import inspect

    return inspect.signature(cls).parameters


def measure(runners, count, rounds):
    """images/s of each runner (median over rounds; runners alternate within a round)."""
    for run in runners.values():
        run()  # warm-up: caches, imports, first allocations
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.thread_time()
            run()
            times[name].append(time.thread_time() - start)
    return {name: count / statistics.median(values) for name, values in times.items()}


def training_step_rate(batch=100, steps=3):
    """images/s of a cifar10_full training step (forward, backward, update) on numpy, or None."""
    try:
        import minwa

        job = minwa.load_config(os.path.join(os.path.dirname(HERE), "configs", "cifar10_full.yaml"))
        net = minwa.Net(job.model, phase="TRAIN", dtype="float32", seed=1)
        solver = minwa.Solver(net, {"base_lr": 0.001, "momentum": 0.9})
        data_name, label_name = net.input_names
        shape = tuple(net.blob_shapes[data_name][1:])
        rng = numpy.random.default_rng(0)
        x = rng.standard_normal((batch,) + shape, dtype=numpy.float32)
        y = rng.integers(0, 10, size=batch)
        times = []
        for i in range(steps + 1):
            start = time.thread_time()
            net.forward({data_name: x, label_name: y})
            net.backward()
            solver.step()
            if i:
                times.append(time.thread_time() - start)
        return batch / statistics.median(times)
    except Exception as exc:  # noqa: BLE001 - the training engine is optional for this benchmark
        print(f"(training step not measured: {type(exc).__name__}: {exc})")
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="images per round (default 32)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported (default 5)")
    parser.add_argument("--source", type=int, default=512, help="source side (default 512)")
    parser.add_argument("--crop", type=int, default=224, help="crop side (default 224)")
    parser.add_argument("--no-train-step", action="store_true", help="skip the cifar10_full step measurement")
    parser.add_argument("--quick", action="store_true", help="16 images, 3 rounds (about 1-2 minutes)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 16, 3
    print("uptime:", os.popen("uptime").read().strip())
    try:
        import albumentations  # noqa: F401
        import cv2

        cv2.setNumThreads(1)
        have_albu = True
    except ImportError:
        have_albu = False
        print("albumentations is not installed: minwa figures only (pip install albumentations to compare)")
    images = source_images(args.images, args.source)
    print(f"{args.images} images {args.source}x{args.source} -> {args.crop}x{args.crop} crops, 1 thread, "
          f"median of {args.rounds} rounds")
    print(f"{'pipeline':<34}{'minwa img/s':>12}{'albu img/s':>12}{'minwa/albu':>12}")
    cases = [("full pipeline, every op p=0.5", None, 0.5), ("full pipeline, every op p=1", None, 1.0),
             ("crop only", "none", 1.0)] + [(f"crop + {name} (p=1)", name, 1.0) for name in OPS]
    for label, only, p in cases:
        runners = {"minwa": minwa_runner(minwa_block(args.crop, args.source, p, only), images)}
        if have_albu:
            runners["albu"] = albumentations_runner(args.crop, p, only, images)
        rates = measure(runners, len(images), args.rounds)
        line = f"{label:<34}{rates['minwa']:>12.0f}"
        if have_albu:
            line += f"{rates['albu']:>12.0f}{rates['minwa'] / rates['albu']:>12.2f}"
        print(line, flush=True)
    if not args.no_train_step:
        rate = training_step_rate()
        if rate is not None:
            print(f"{'cifar10_full training step (b=100)':<34}{rate:>12.0f}   (forward + backward + SGD, numpy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
