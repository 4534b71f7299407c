"""RunDirectory: what a run directory holds, and the rules for starting a run in one.

A run directory holds one run: ``config.yaml`` (the job as actually run, overrides
included), ``metrics.jsonl`` and ``checkpoints/``. So that runs never mix:

* a fresh run refuses a directory that already holds a run, unless ``--overwrite``
  (which deletes those files, and only those) or ``--resume``;
* ``--resume`` continues the run there: metrics logged after the checkpoint's step
  (by an attempt that died later) are dropped, so the curves do not zig-zag.
"""
import json
import os
import shutil

from .errors import ConfigError

#: the files and folders minwa writes into a run directory
OUTPUTS = ("config.yaml", "metrics.jsonl", "checkpoints")


class RunDirectory:
    """The run directory ``path`` of a job (only rank 0 touches it)."""

    def __init__(self, path):
        self.path = path

    def existing(self):
        """minwa's outputs already in the directory (checkpoints/ counts when it holds checkpoints)."""
        from .checkpoint import list_checkpoints  # noqa: PLC0415

        found = [name for name in OUTPUTS[:2] if os.path.lexists(os.path.join(self.path, name))]
        folder = os.path.join(self.path, "checkpoints")
        if os.path.isdir(folder) and list_checkpoints(folder):
            found.append("checkpoints")
        return found

    def prepare(self, resume=None, overwrite=False):
        """Check (and for ``overwrite`` clear) the directory before a run starts; raises ConfigError."""
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: continue the run, or start over")
        found = self.existing()
        if found and not resume:
            if not overwrite:
                raise ConfigError(f"run directory {self.path!r} already holds a run ({', '.join(found)}); "
                                  "continue it with --resume, start over with --overwrite (deletes those), or "
                                  "choose another --run-dir")
            for name in found:
                target = os.path.join(self.path, name)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.remove(target)
        os.makedirs(self.path, exist_ok=True)

    def write_config(self, text):
        """config.yaml: the job as this run actually runs it."""
        with open(os.path.join(self.path, "config.yaml"), "w", encoding="utf-8") as f:
            f.write(text)

    def trim_metrics(self, step):
        """Drop the metrics records after ``step`` (resuming from a checkpoint of that step)."""
        path = os.path.join(self.path, "metrics.jsonl")
        if not os.path.exists(path):
            return 0
        kept, dropped = [], 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    dropped += 1
                    continue
                if int(record.get("step", 0)) > step:
                    dropped += 1
                else:
                    kept.append(line if line.endswith("\n") else line + "\n")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(kept)
        return dropped
