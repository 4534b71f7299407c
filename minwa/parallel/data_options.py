"""The ``parallel:`` options of a job in data mode (DataParallel's keyword arguments) and their checks.

They are checked before any communication, so a bad option is a ConfigError on
the rank that has it instead of a hang or a mismatch between ranks.
"""
from ..errors import ConfigError

#: gradients per bucket before a new one is started (whole layers; a larger layer gets its own bucket)
DEFAULT_BUCKET_BYTES = 64 * 1024
#: the ``parallel:`` options of a job in data mode (DataParallel's keyword arguments)
OPTIONS = ("strategy", "bucket_bytes", "lazy", "sharded", "error_feedback", "int8_block", "progress_thread")


def clips_gradients(solver):
    """Whether the solver clips gradients by their global norm (solver.clip_gradients >= 0)."""
    return solver.cfg.get("clip_gradients", -1.0) >= 0


def check_options(solver, bucket_bytes, lazy, sharded, error_feedback, int8_block, progress_thread, unknown):
    """Raise ConfigError for a bad option; returns ``bucket_bytes`` with None read as no limit (one bucket)."""
    if unknown:
        raise ConfigError(f"parallel: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}")
    if progress_thread is not None and not isinstance(progress_thread, bool):
        raise ConfigError(f"parallel.progress_thread: expected true, false or nothing (auto), got {progress_thread!r}")
    for name, value in (("lazy", lazy), ("sharded", sharded), ("error_feedback", error_feedback)):
        if not isinstance(value, bool):
            raise ConfigError(f"parallel.{name}: expected true or false, got {value!r}")
    if isinstance(int8_block, bool) or not isinstance(int8_block, int) or int8_block < 1:
        raise ConfigError(f"parallel.int8_block: expected a whole number >= 1, got {int8_block!r}")
    if bucket_bytes is None:
        bucket_bytes = float("inf")
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, float)) or bucket_bytes < 0:
        raise ConfigError(f"parallel.bucket_bytes: expected a number of bytes >= 0, got {bucket_bytes!r}")
    if sharded and clips_gradients(solver):
        raise ConfigError("parallel.sharded: solver.clip_gradients needs the norm of the whole gradient, which "
                          "no rank holds in sharded mode; turn one of them off")
    return bucket_bytes
