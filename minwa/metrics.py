"""MetricsLog: JSON-lines records of a run (one object per line), written by rank 0."""
import json
import math
import os
import time


def _plain(value):
    """A JSON value: numbers as floats, NaN and infinities as null (bare NaN is not JSON)."""
    if hasattr(value, "__float__") and not isinstance(value, (int, bool)):
        value = float(value)
    return None if isinstance(value, float) and not math.isfinite(value) else value


class MetricsLog:
    """Appends {"phase": ..., "step": ..., ...} records to RUN_DIR/metrics.jsonl (a non-finite value is null)."""

    def __init__(self, run_dir, enabled=True):
        self.path = os.path.join(run_dir, "metrics.jsonl")
        self.enabled = enabled
        self.started = time.time()
        if enabled:
            os.makedirs(run_dir, exist_ok=True)

    def write(self, phase, step, **values):
        if not self.enabled:
            return
        record = {"phase": phase, "step": int(step), "time": round(time.time() - self.started, 3)}
        record.update({k: _plain(v) for k, v in values.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")


def read_metrics(run_dir):
    """All records of RUN_DIR/metrics.jsonl (skipping a torn last line)."""
    path = os.path.join(run_dir, "metrics.jsonl") if os.path.isdir(run_dir) else run_dir
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
