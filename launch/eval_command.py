"""``minwa eval CONFIG --weights W.h5 [--model CONFIG2 --weights W2.h5 ...]``: multi-scale ensemble evaluation.

Each model is a config (the job it was trained with) and a checkpoint. Views: every
``--scales`` x ``--crops`` (x ``--flip``); the table gives the top-1 and top-5 error of
each model alone (a centre crop at its own scale, as its trainer tested it), of each
view, of each model's views fused, and of the ensemble of all models. One ``--scales``
applies to every model; with several, each applies to the model it follows (a model
without one takes the first list). Under ``mpiexec -n N`` each rank scores 1/N of the images.
"""
import argparse
import json
import os
import sys

from minwa.errors import ConfigError


def _model_parser():
    parser = argparse.ArgumentParser(prog="minwa eval", add_help=False)
    parser.add_argument("config")
    parser.add_argument("--weights")
    parser.add_argument("--scales", type=int, nargs="+")
    parser.add_argument("--label")
    return parser


def _global_parser():
    parser = argparse.ArgumentParser(prog="minwa eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the first model's job config (YAML)")
    parser.add_argument("--weights", required=True, help="the first model's checkpoint (.h5)")
    parser.add_argument("--model", metavar="CONFIG", help="another model (repeatable; each followed by --weights)")
    parser.add_argument("--label", help="the model's name in the table (default: the job name)")
    parser.add_argument("--scales", type=int, nargs="+", metavar="S",
                        help="shorter image sides to evaluate at (default: each model's own)")
    parser.add_argument("--flip", action="store_true", help="also evaluate every view mirrored")
    parser.add_argument("--crops", default="center", help="center | corners5 | dense (default center)")
    parser.add_argument("--merge", default="mean", help="mean | gmean | max | logits (default mean)")
    parser.add_argument("--data", metavar="SOURCE",
                        help="test images: a pack (.h5), an image folder (or .tar.gz), or KIND:PATH with a data.source "
                             "kind, e.g. cifar10:/data/cifar-10-batches-bin (default: the first model's data:)")
    parser.add_argument("--split", default="test", help="split of the data to evaluate (default test)")
    parser.add_argument("--limit", type=int, help="evaluate only this many evenly spaced images")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument("--chunk", type=int, default=100, help="images read and scored at a time (default 100)")
    parser.add_argument("--memory-mb", type=float, default=256,
                        help="bound on the blobs of one forward pass (default 256)")
    parser.add_argument("--dtype", choices=("float32", "float64"),
                        help="compute type (default: each model's train.dtype); float64 makes near-ties "
                             "independent of thread and MPI settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    return parser


def parse_args(argv):
    """(global options, [(config, weights, scales or None, label)]) from argv with repeated --model groups."""
    argv = list(argv)
    if any(a in ("-h", "--help") for a in argv):
        _global_parser().parse_args(["-h"])
    groups, current = [], []
    for token in argv:
        if token == "--model":
            groups.append(current)
            current = []
        else:
            current.append(token)
    groups.append(current)
    models, rest = [], []
    for number, group in enumerate(groups):
        if not group or group[0].startswith("-"):
            what = "CONFIG" if number == 0 else "--model CONFIG"
            raise ConfigError(f"minwa eval: expected {what} before {group[0] if group else 'the end'}")
        known, extra = _model_parser().parse_known_args(group)
        if not known.weights:
            raise ConfigError(f"model {known.config}: missing --weights W.h5 after it")
        models.append((known.config, known.weights, known.scales, known.label))
        rest += extra
    first = models[0]
    args = _global_parser().parse_args([first[0], "--weights", first[1]] + rest)
    given = [m[2] for m in models if m[2] is not None]
    if len(given) == 1:  # one --scales: every model
        models = [(c, w, given[0], label) for c, w, _, label in models]
    else:  # several: each model its own, a model without one takes the first list
        models = [(c, w, s if s is not None else (given[0] if given else None), label) for c, w, s, label in models]
    return args, models


def _source(args, job):
    from minwa.datasets import build_source  # noqa: PLC0415
    from minwa.datasets.source_factory import SOURCE_KEYS, SOURCES  # noqa: PLC0415

    if args.split not in ("train", "test"):
        raise ConfigError(f"--split {args.split!r}: expected train or test")
    kind, _, path = (args.data or "").rpartition(":") if ":" in (args.data or "") else ("", "", args.data)
    if args.data is None:
        data = {k: v for k, v in job.data.items() if k in SOURCE_KEYS and not k.endswith("_limit")}
    elif kind:
        if kind not in SOURCES:
            raise ConfigError(f"--data {args.data}: unknown source kind {kind!r}; expected one of {', '.join(SOURCES)}")
        data = {"source": kind, "path": path}
    elif path.endswith((".h5", ".hdf5")):
        data = {"source": "hdf5", "path": path}
    elif os.path.exists(path):
        data = {"source": "folder", "path": path}
    else:
        raise ConfigError(f"--data {path}: no such file or folder (a pack .h5, an image folder, or KIND:PATH)")
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit {args.limit}: must be >= 1")
        data[f"{args.split}_limit"] = args.limit
    return build_source(data, args.split)


def run(argv, comm=None):
    """Parse, evaluate, print; returns the result dict (rank 0) or None."""
    from minwa.config import load_config  # noqa: PLC0415
    from minwa.evaluate.ensemble_evaluator import EnsembleEvaluator, format_table  # noqa: PLC0415
    from minwa.evaluate.merge import check_rule  # noqa: PLC0415
    from minwa.evaluate.model_scorer import ModelScorer  # noqa: PLC0415
    from minwa.evaluate.views import parse_views  # noqa: PLC0415

    args, models = parse_args(argv)
    check_rule(args.merge)
    parse_views([1], args.crops)  # an unknown --crops stops here, before any model is loaded
    if comm is None:
        from minwa.trainer import world_communicator  # noqa: PLC0415

        comm = world_communicator()
    if comm is not None and comm.size > 1:
        from minwa import backend  # noqa: PLC0415
        from minwa.failure import install_abort_on_error  # noqa: PLC0415

        backend.bind_device(comm.local_rank)
        install_abort_on_error(comm)
    rank = comm.rank if comm is not None else 0
    scorers = []
    for config, weights, scales, label in models:
        scorers.append(ModelScorer(load_config(config), weights, scales, args.crops, args.flip,
                                   memory_mb=args.memory_mb, label=label, dtype=args.dtype))
    labels = [s.label for s in scorers]
    for i, scorer in enumerate(scorers):  # two models of one job name: tell them apart in the table
        if labels.count(scorer.label) > 1:
            scorer.label = f"{scorer.label}#{i + 1}"
    source = _source(args, scorers[0].job)
    evaluator = EnsembleEvaluator(scorers, args.merge, comm=comm, chunk=args.chunk,
                                  progress=not args.no_progress)
    result = evaluator.run(source)
    if rank != 0:
        return None
    result["data"] = getattr(source, "name", str(args.data))
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
        print(f"minwa eval: wrote {args.json}", file=sys.stderr)
    return result


def main(argv):
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
