"""``minwa plot RUN_DIR [-o OUT.png] [--x step|epoch|time]``: loss, accuracy and learning-rate curves of a run.

Reads RUN_DIR/metrics.jsonl (one JSON object per line, as ``minwa train`` writes
it: ``phase`` train/test, ``step``, ``epoch``, ``time``, ``loss``, ``lr``,
``images_per_s``, accuracies) and draws one PNG with a panel per quantity.
matplotlib is optional (``pip install matplotlib``); without it the command says
so and exits with status 2.
"""
import argparse
import json
import os
import sys

from minwa.errors import DataError

EXIT_NO_MATPLOTLIB = 2


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="minwa plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory (holding metrics.jsonl) or a metrics .jsonl file")
    parser.add_argument("-o", "--output", help="PNG to write (default: RUN_DIR/curves.png)")
    parser.add_argument("--x", choices=("step", "epoch", "time"), default="step", help="horizontal axis")
    parser.add_argument("--dpi", type=int, default=110)
    return parser.parse_args(argv)


def read_records(path):
    """The JSON objects of a metrics.jsonl file; a torn last line (a run still writing) is skipped."""
    file = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise DataError(f"minwa plot: {file} does not exist (is {path!r} a run directory of minwa train?)")
    records = []
    with open(file, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise DataError(f"minwa plot: {file}:{number}: not a JSON object") from None
        if isinstance(record, dict):
            records.append(record)
    if not records:
        raise DataError(f"minwa plot: {file} holds no records yet")
    return records


def _phase(record):
    phase = str(record.get("phase", "train")).lower()
    return "test" if phase.startswith("test") or phase in ("val", "eval") else phase


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collect_series(records, x="step"):
    """{panel: {label: ([x...], [y...])}} for the panels loss, accuracy, lr and images_per_s."""
    panels = {"loss": {}, "accuracy": {}, "lr": {}, "images_per_s": {}}
    for record in records:
        if not _is_number(record.get(x)):
            continue
        phase = _phase(record)
        for key, value in record.items():
            if key in ("step", "epoch", "time", "phase") or not _is_number(value):
                continue
            name = key.removeprefix("test_")
            label_phase = "test" if key.startswith("test_") else phase
            if "acc" in name:
                panel = "accuracy"
            elif "loss" in name:
                panel = "loss"
            elif name in ("lr", "learning_rate"):
                panel, label_phase = "lr", ""
            elif name in ("images_per_s", "img_per_s", "throughput"):
                panel, label_phase = "images_per_s", label_phase if label_phase == "test" else ""
            else:
                continue
            label = f"{label_phase} {name}".strip() if panel != "lr" else "lr"
            xs, ys = panels[panel].setdefault(label, ([], []))
            xs.append(record[x])
            ys.append(float(value))
    return {name: series for name, series in panels.items() if series}


def draw(series, out_png, x="step", title=None, dpi=110):
    """Write the panels of ``collect_series`` to ``out_png`` with matplotlib's Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(series)
    columns = 2 if len(names) > 1 else 1
    rows = (len(names) + columns - 1) // columns
    figure = Figure(figsize=(6.0 * columns, 3.6 * rows))
    FigureCanvasAgg(figure)
    units = {"step": "step", "epoch": "epoch", "time": "seconds"}
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        for label, (xs, ys) in series[name].items():
            axes.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label,
                      drawstyle="steps-post" if name == "lr" else "default")
        axes.set_title({"images_per_s": "images / s", "lr": "learning rate"}.get(name, name))
        axes.set_xlabel(units[x])
        axes.grid(alpha=0.3)
        if name == "lr" and all(y > 0 for _, ys in series[name].values() for y in ys):
            axes.set_yscale("log")
        if len(series[name]) > 1 or name in ("loss", "accuracy"):
            axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out_png, dpi=dpi)
    return out_png


def main(argv):
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401 - only to say clearly when it is missing
    except ImportError:
        print("minwa plot: matplotlib is not installed; install it with 'pip install matplotlib' "
              "(or pip install 'minwa[plot]')", file=sys.stderr)
        return EXIT_NO_MATPLOTLIB
    records = read_records(args.run_dir)
    series = collect_series(records, args.x)
    if not series:
        raise DataError(f"minwa plot: {args.run_dir}: no loss, accuracy or lr values with a {args.x!r} field")
    base = args.run_dir if os.path.isdir(args.run_dir) else os.path.dirname(os.path.abspath(args.run_dir))
    out = args.output or os.path.join(base, "curves.png")
    draw(series, out, x=args.x, title=os.path.basename(os.path.abspath(base)), dpi=args.dpi)
    counts = ", ".join(f"{name} ({sum(len(xs) for xs, _ in s.values())} points)" for name, s in series.items())
    print(f"minwa plot: wrote {out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
