"""RestrictedUnpickler: reads CIFAR's python batches without letting a pickle run code.

A pickle can name any importable callable and call it while loading; that is how a
hostile file runs code.  CIFAR's batches only need plain containers (dicts, lists,
bytes, str, ints) and numpy's array reconstruction, so this unpickler resolves
exactly those few globals — to objects it looked up itself — and refuses every
other name with a DataError that names the file.
"""
import io
import pickle

import numpy

from minwa.errors import DataError


def _numpy_core(name):
    """``name`` from numpy's private core module (``numpy._core`` on numpy 2, ``numpy.core`` before)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray", "numpy._core.numeric", "numpy.core.numeric"):
        try:
            value = getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):
            continue
        return value
    raise ImportError(name)


def _encode(text, encoding="latin1"):
    """What ``_codecs.encode`` does for the bytes python 3 writes at pickle protocol 2 — a string, nothing else."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise pickle.UnpicklingError("_codecs.encode: only str arguments are allowed")
    return text.encode(encoding)


def _allowed():
    reconstruct, frombuffer = _numpy_core("_reconstruct"), _numpy_core("_frombuffer")
    table = {("_codecs", "encode"): _encode, ("numpy", "ndarray"): numpy.ndarray, ("numpy", "dtype"): numpy.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = reconstruct
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "_frombuffer")] = frombuffer
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler admitting only plain builtins and numpy's array reconstruction."""

    _table = None

    def find_class(self, module, name):
        if RestrictedUnpickler._table is None:
            RestrictedUnpickler._table = _allowed()
        value = RestrictedUnpickler._table.get((module, name))
        if value is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return value

    @classmethod
    def load_bytes(cls, data, where):
        """Unpickle ``data`` (read from ``where``); any refusal or corruption is a DataError naming ``where``."""
        try:
            return cls(io.BytesIO(data), encoding="bytes").load()
        except pickle.UnpicklingError as exc:
            raise DataError(f"{where}: not a safe CIFAR python batch: {exc}") from exc
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
            raise DataError(f"{where}: corrupt or truncated python batch: {exc}") from exc

    @classmethod
    def load_path(cls, path):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
        return cls.load_bytes(data, path)
