"""Array backend: numpy on a CPU, cupy on a GPU, chosen once by ``MINWA_DEVICE``.

``MINWA_DEVICE=auto`` (default) uses cupy when it imports and sees a device,
``cpu`` forces numpy and ``gpu`` requires cupy.  cupy is imported lazily, so
``import minwa`` never needs CUDA.  Layer code asks for ``xp_of(array)`` and never
names numpy itself, so the same code runs on either library.
"""
import os

import numpy

_state = {"xp": None, "device": None}


def _cupy_or_none():
    try:
        import cupy  # noqa: PLC0415 - optional, imported only on demand
    except Exception:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cupy


def device_kind():
    """'gpu' or 'cpu': what ``MINWA_DEVICE`` resolves to on this machine."""
    get_xp()
    return "gpu" if _state["xp"] is not numpy else "cpu"


def get_xp():
    """The array module of the configured device (numpy or cupy)."""
    if _state["xp"] is None:
        choice = os.environ.get("MINWA_DEVICE", "auto").lower()
        if choice not in ("auto", "cpu", "gpu"):
            raise ValueError(f"MINWA_DEVICE={choice!r}: expected auto, cpu or gpu")
        if choice == "cpu":
            _state["xp"] = numpy
        else:
            cupy = _cupy_or_none()
            if cupy is None and choice == "gpu":
                raise RuntimeError("MINWA_DEVICE=gpu but cupy is not installed or sees no CUDA device")
            _state["xp"] = cupy or numpy
    return _state["xp"]


def xp_of(array):
    """numpy or cupy, whichever owns ``array`` (CuPy's get_array_module)."""
    if type(array).__module__.startswith("cupy"):
        import cupy  # noqa: PLC0415

        return cupy
    return numpy


def is_gpu_array(array):
    return type(array).__module__.startswith("cupy")


def to_device(array, dtype=None):
    """Copy a host array onto the configured device (a no-op view on the CPU)."""
    xp = get_xp()
    out = xp.asarray(array)
    return out.astype(dtype, copy=False) if dtype is not None else out


def to_host(array):
    """A numpy array holding ``array``'s values (copies from a GPU)."""
    if is_gpu_array(array):
        return array.get()
    return numpy.asarray(array)


def bind_device(local_rank):
    """Select GPU ``local_rank % device_count`` for this process; no-op on a CPU."""
    xp = get_xp()
    if xp is numpy:
        return None
    count = xp.cuda.runtime.getDeviceCount()
    device = int(local_rank) % count
    xp.cuda.Device(device).use()
    _state["device"] = device
    return device


def use_bound_device():
    """In a thread minwa starts: make the device ``bind_device`` chose current here too.

    CUDA's current device is per thread; a new thread starts on device 0, where its
    sums, decodes and updates would otherwise run. A no-op on a CPU or before binding.
    """
    device = _state.get("device")
    if device is None or _state.get("xp") is None or _state["xp"] is numpy:
        return None
    _state["xp"].cuda.Device(device).use()
    return device


def reset():
    """Forget the chosen backend (tests switch ``MINWA_DEVICE``)."""
    _state["xp"] = None
    _state["device"] = None
