"""Parallel training engines: data parallel (``DataParallel``) and the one-process engine.

Names load on first use, so importing this package does not import MPI.
"""
import importlib

_EXPORTS = {"DataParallel": "minwa.parallel.data", "SingleProcess": "minwa.parallel.single"}

__all__ = ["DataParallel", "SingleProcess"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'minwa.parallel' has no attribute {name!r}")
