"""Multi-scale ensemble on real CIFAR-10: two cifar10_full models trained at two scales, fused.

Deep Image §4.2/§5: models trained at different image scales complement each other; each
test image is seen at several scales and mirrored through the fully convolutional net,
and the models' softmax posteriors are averaged. This script trains cifar10_full at
``--scales`` (default 32 and 48, the CIFAR images upsampled), each with ``minwa train`` in
its own process, then runs ``minwa eval`` twice in its own process:

1. plain: each model alone (centre view at its own scale) and the two fused;
2. views: each model over its scale and two larger ones (``--view-steps``, dense
   fully convolutional evaluation), mirrored, fused per model, then across models.

It prints ``uptime`` first, the error table of each run, and the evaluation images/s of
each (the views run against the plain run: the ratio is the cost of the views).

    python benchmarks/ensemble_cifar10.py                                  # 12 epochs each, as cifar10_accuracy.py
    python benchmarks/ensemble_cifar10.py --epochs 3 --train-limit 20000   # a reduced run
    python benchmarks/ensemble_cifar10.py --epochs 1 --train-limit 1000 --test-limit 500   # smoke run
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "configs", "cifar10_full.yaml")
TARBALL = os.path.join(HERE, "..", "..", "shared", "data", "cifar10-jpeg.tar.gz")


def train_overrides(args, scale, steps_per_epoch):
    return [
        f"scales={scale}", "solver.base_lr=0.001", "solver.momentum=0.9", "solver.weight_decay=0.004",
        "solver.lr_policy=multistep", "solver.gamma=0.1",
        f"solver.stepvalue=[{max(1, args.drop_after) * steps_per_epoch}]",
        f"solver.max_iter={args.epochs * steps_per_epoch}", f"solver.test_interval={args.epochs * steps_per_epoch}",
        "solver.test_iter=0", "solver.test_initialization=false", f"solver.display={max(1, steps_per_epoch // 2)}",
        "solver.snapshot=0", f"data.path={args.data}", "data.batch_size=100", "data.test_batch_size=100",
        "data.mean=channel", f"data.train_limit={args.train_limit or 0}", f"data.test_limit={args.test_limit or 0}",
        f"train.run_dir={os.path.join(args.out, 'cifar10')}",
    ]


def run(command, what):
    print(f"$ {' '.join(command)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=TARBALL, help="CIFAR-10: a pack (faster) or the tarball (default)")
    parser.add_argument("--scales", type=int, nargs=2, default=[32, 48], help="the two training scales")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--drop-after", type=int, default=9, help="divide the learning rate by 10 after this epoch")
    parser.add_argument("--train-limit", type=int, default=None, help="train on this many images only")
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate on this many test images only")
    parser.add_argument("--view-steps", type=int, nargs="+", default=[8, 16],
                        help="extra evaluation scales, in pixels above each model's own (default 8 16)")
    parser.add_argument("--out", default=None, help="run directories and JSON results (default: a temporary folder)")
    parser.add_argument("--skip-training", action="store_true", help="reuse the models already in --out")
    args = parser.parse_args(argv)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    if not os.path.exists(args.data):
        print(f"skipped: {args.data} is not present (pass --data with a CIFAR-10 location)")
        return 0
    args.data = os.path.abspath(args.data)
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="minwa-ensemble-"))
    os.makedirs(args.out, exist_ok=True)
    if args.drop_after >= args.epochs:
        args.drop_after = args.epochs  # no drop inside a short run
    steps_per_epoch = min(args.train_limit or 50000, 50000) // 100
    minwa = [sys.executable, "-m", "minwa.launch.cli"]
    models = []
    for scale in args.scales:
        run_dir = os.path.join(args.out, f"cifar10-s{scale}")
        if not args.skip_training:
            sets = [x for o in train_overrides(args, scale, steps_per_epoch) for x in ("--set", o)]
            _, seconds = run(["nice", "-n", "10"] + minwa + ["train", CONFIG, "--no-progress"] + sets,
                             f"training at scale {scale}")
            print(f"trained scale {scale}: {args.epochs} epochs x {steps_per_epoch} steps in {seconds:.0f} s",
                  flush=True)
        from minwa.checkpoint import latest_checkpoint  # noqa: PLC0415

        weights = latest_checkpoint(os.path.join(run_dir, "checkpoints"))
        models.append((scale, os.path.join(run_dir, "config.yaml"), weights))
    limit = ["--limit", str(args.test_limit)] if args.test_limit else []
    common = ["--data", args.data, "--no-progress"] + limit
    plain = minwa + ["eval"]
    views = minwa + ["eval"]
    for i, (scale, config, weights) in enumerate(models):
        head = [] if i == 0 else ["--model"]
        plain += head + [config, "--weights", weights, "--label", f"s{scale} model"]
        views += head + [config, "--weights", weights, "--label", f"s{scale} model",
                         "--scales", str(scale)] + [str(scale + step) for step in args.view_steps]
    results = {}
    for name, command in (("plain", plain + common), ("views", views + common + ["--flip", "--crops", "dense"])):
        out = os.path.join(args.out, f"eval_{name}.json")
        done, seconds = run(["nice", "-n", "10"] + command + ["--json", out], f"minwa eval ({name})")
        print(done.stdout, flush=True)
        with open(out, encoding="utf-8") as f:
            results[name] = json.load(f)
    plain_rate, view_rate = results["plain"]["images_per_s"], results["views"]["images_per_s"]
    print(f"evaluation: plain {plain_rate:.1f} images/s, with views {view_rate:.1f} images/s "
          f"(ratio {view_rate / plain_rate:.3f}; {len(results['views']['models'][0]['views'])} views per model)")
    fused = results["views"]["ensemble"]["top1_error"]
    alone = [m["alone"]["top1_error"] for m in results["plain"]["models"]]
    best = min(min(alone), *[m["fused"]["top1_error"] for m in results["views"]["models"]])
    verdict = "lower" if fused < best else "NOT lower"
    print(f"fused ensemble top-1 error {100 * fused:.2f}% is {verdict} than the best single model "
          f"({100 * best:.2f}%); results in {args.out}")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
