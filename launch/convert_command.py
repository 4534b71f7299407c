"""``minwa convert NET.prototxt [--solver S.prototxt] [-o OUT.yaml]``: a Caffe net (and solver) as a minwa job.

The YAML it writes holds ``model:`` (and ``solver:``) in Caffe's schema, ready for
``minwa train`` once a ``data:`` block is added; what Caffe's data layers said
(sources, batch sizes, mean file, crop, mirror, scale) is written above it as
comments, because minwa reads data through its own sources.
"""
import argparse
import os
import sys

import yaml

from minwa.errors import ConfigError
from minwa.prototxt import net_from_prototxt, solver_from_prototxt


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="minwa convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("net", help="Caffe net definition (.prototxt)")
    parser.add_argument("--solver", help="Caffe solver definition (.prototxt)")
    parser.add_argument("-o", "--output", help="YAML file to write (default: standard output)")
    parser.add_argument("--input-shape", metavar="C,H,W",
                        help="image shape of the data layers when the prototxt does not say it (e.g. 3,32,32)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip building the TRAIN and TEST nets to check shapes")
    return parser.parse_args(argv)


def _shape(text):
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"--input-shape {text!r}: expected three integers C,H,W, e.g. 3,32,32") from None
    if len(dims) != 3 or min(dims) <= 0:
        raise ConfigError(f"--input-shape {text!r}: expected three positive integers C,H,W")
    return dims


def _hint_comments(hint):
    if not hint:
        return []
    lines = ["# Caffe's data layers said (minwa reads data through its own sources; add a data: block):"]
    for phase, fields in hint.items():
        shown = ", ".join(f"{k}: {v}" for k, v in fields.items())
        lines.append(f"#   {phase}: {shown}")
    return lines


def convert(net_path, solver_path=None, input_shape=None, check=True, notes=None):
    """(job dict, comment lines) for a Caffe net and optional solver; raises ConfigError."""
    notes = notes if notes is not None else []
    model, hint = net_from_prototxt(net_path, input_shape=input_shape, notes=notes)
    job = {"name": os.path.splitext(os.path.basename(net_path))[0], "model": model}
    if solver_path:
        solver = solver_from_prototxt(solver_path, notes=notes)
        if "net" in solver:
            notes.append(f"solver: net {solver.pop('net')!r} replaced by the converted model")
        job["solver"] = solver
    if check:
        from minwa.net import Net

        for phase in ("TRAIN", "TEST"):
            if any(layer["type"] in ("Sink", "Source") for layer in model["layers"]):
                break  # pipeline halves are checked when their transport exists
            try:
                Net(model, phase=phase, init=False)
            except ConfigError as exc:
                raise ConfigError(f"{net_path}: the converted {phase} net does not build: {exc}") from None
    comments = [f"# converted by minwa convert from {net_path}" + (f" and {solver_path}" if solver_path else "")]
    return job, comments + _hint_comments(hint)


def main(argv):
    if "--fully-convolutional" in argv:  # a trained net's FC layers as convolutions
        from minwa.launch.fully_convolutional_command import main as fully_convolutional  # noqa: PLC0415

        return fully_convolutional(argv)
    args = parse_args(argv)
    notes = []
    shape = _shape(args.input_shape) if args.input_shape else None
    job, comments = convert(args.net, args.solver, input_shape=shape, check=not args.no_check, notes=notes)
    text = "\n".join(comments) + "\n" + yaml.safe_dump(job, sort_keys=False, default_flow_style=None, width=110)
    for note in notes:
        print(f"minwa convert: note: {note}", file=sys.stderr)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"minwa convert: wrote {args.output} ({len(job['model']['layers'])} layers)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
