"""The checkpoints of a run directory: their names, the newest readable one, keep-last-k, dead writers' temps.

Checkpoint files are ``<prefix>_<step:08d>.h5``; a writer's temporary file is
``.<name>.tmp.<host>.<pid>`` (see ``minwa.checkpoint``), so a temp file whose writer
on this host is gone can be removed safely.
"""
import os
import re
import socket

_TEMP = re.compile(r"^\..+\.tmp\.(?P<host>[^.]+)\.(?P<pid>\d+)$")
_NUMBER = re.compile(r"(\d+)\.h5$")


def checkpoint_path(directory, step, prefix="step"):
    """The conventional name of the checkpoint of ``step``: DIR/step_00001000.h5."""
    return os.path.join(directory, f"{prefix}_{int(step):08d}.h5")


def list_checkpoints(directory):
    """Checkpoint files of ``directory`` (names ending in a number and .h5), oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NUMBER.search(name)
        if match is None or name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            continue
        found.append((int(match.group(1)), mtime, path))
    return [path for _, _, path in sorted(found)]


def latest_checkpoint(directory, verify=True):
    """The newest checkpoint in ``directory`` (highest step), skipping unreadable ones; None if there is none."""
    from .checkpoint import is_valid  # noqa: PLC0415 - checkpoint re-exports this module

    for path in reversed(list_checkpoints(directory)):
        if not verify or is_valid(path):
            return path
    return None


def keep_last(directory, k):
    """Delete all but the newest ``k`` checkpoints (and dead writers' temp files); returns the deleted paths."""
    k = int(k)
    if k < 1:
        raise ValueError(f"keep_last: k must be >= 1, got {k}")
    removed = remove_stale_temps(directory)
    for path in list_checkpoints(directory)[:-k]:
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory):
    """Remove temp files left by checkpoint writers on this host that were killed; returns their paths."""
    if not os.path.isdir(directory):
        return []
    host = socket.gethostname().split(".")[0] or "host"
    removed = []
    for name in os.listdir(directory):
        match = _TEMP.match(name)
        if match and match.group("host") == host and not _alive(int(match.group("pid"))):
            path = os.path.join(directory, name)
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed
