"""MetricsLog: JSON-lines records of a run (one object per line), written by rank 0."""
import json
import os
import time


class MetricsLog:
    """Appends {"phase": ..., "step": ..., ...} records to RUN_DIR/metrics.jsonl."""

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
        record.update({k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, bool)) else v)
                       for k, v in values.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


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
