"""minwa: distributed training of convolutional networks over MPI, on numpy or cupy.

The public names load on first use, so ``import minwa`` stays light and never needs
CUDA or an MPI launcher.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": ("minwa.config", "load_config"),
    "Job": ("minwa.config", "Job"),
    "Net": ("minwa.net", "Net"),
    "Solver": ("minwa.solver", "Solver"),
    "train": ("minwa.trainer", "train"),
    "evaluate": ("minwa.evaluate", "evaluate"),
    "save_checkpoint": ("minwa.checkpoint", "save_checkpoint"),
    "load_checkpoint": ("minwa.checkpoint", "load_checkpoint"),
    "MinwaError": ("minwa.errors", "MinwaError"),
    "ConfigError": ("minwa.errors", "ConfigError"),
    "ShapeError": ("minwa.errors", "ShapeError"),
    "DataError": ("minwa.errors", "DataError"),
    "CommError": ("minwa.errors", "CommError"),
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'minwa' has no attribute {name!r}")


def __dir__():
    return __all__
