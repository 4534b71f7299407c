"""``minwa train CONFIG``: train a job on this process, or on every rank under mpiexec."""
import argparse
import json
import sys

from minwa.config import load_config
from minwa.multi_scale import scaled_jobs


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="minwa train", description=__doc__)
    parser.add_argument("config", help="YAML job (configs/*.yaml) or Caffe .prototxt net")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set solver.base_lr=0.01 (repeatable)")
    parser.add_argument("--solver", help="Caffe solver .prototxt or YAML (overrides the job's solver:)")
    parser.add_argument("--run-dir", help="where metrics.jsonl and checkpoints go (default runs/NAME)")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="PATH|latest",
                        help="continue from a checkpoint (default: the latest in the run directory)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in a run directory that already holds a run (deletes its checkpoints, "
                             "metrics.jsonl and config.yaml)")
    parser.add_argument("--max-iter", type=int, help="stop after this many steps (overrides solver.max_iter)")
    parser.add_argument("--timeline", metavar="FILE", help="write a Chrome trace of compute and communication")
    parser.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    return parser.parse_args(argv)


def main(argv):
    from minwa.trainer import train  # noqa: PLC0415 - keeps 'minwa --help' fast

    args = parse_args(argv)
    overrides = list(args.set)
    if args.run_dir:
        overrides.append(f"train.run_dir={args.run_dir}")
    if args.timeline:
        overrides.append(f"train.timeline={args.timeline}")
    if args.no_progress:
        overrides.append("train.progress=false")
    if args.solver:
        overrides.append(f"solver={args.solver}")
    for job in scaled_jobs(load_config(args.config, overrides=overrides)):  # one job, or one per `scales:`
        _report(job, train(job, resume=args.resume, max_iter=args.max_iter, overwrite=args.overwrite))
    return 0


def _report(job, summary):
    if summary.get("test") is not None and summary.get("rank", 0) == 0:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
        print(f"minwa train: {job.name}: {summary['final_step']} steps in {summary['seconds']:.1f} s; "
              f"test {shown}; run directory {summary['run_dir']}", file=sys.stderr)
        print(json.dumps({"final_test": summary["test"], "steps": summary["final_step"]}), file=sys.stderr)
