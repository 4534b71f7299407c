"""Compiled CPU kernels for the memory-bound layer passes, where numba is installed.

Pooling and LRN make a dozen numpy passes over every chunk (one per window offset,
plus temporaries), so on a CPU they cost as much as a convolution's GEMM.  A numba
kernel makes one pass, in cache, and releases the GIL, so the chunks of _threads.py
still run on every core.  numba is optional (``pip install "minwa[numba]"``): without
it, or with ``MINWA_NUMBA=0``, the numpy passes run instead.  The kernels are plain
Python loops over (N, H, W, C) views, compiled on first use and cached on disk, and
each chunk of images is one call, so results never depend on the thread count.
"""
import os

_compiled = {}


def _numba():
    """The numba module, or None (imported once, on first use: ``import minwa`` never loads it)."""
    if "numba" not in _compiled:
        try:
            import numba
        except ImportError:
            numba = None
        _compiled["numba"] = numba
    return _compiled["numba"]


def enabled():
    """True when the compiled kernels are to be used (numba importable, MINWA_NUMBA not 0)."""
    return os.environ.get("MINWA_NUMBA", "1").strip() != "0" and _numba() is not None


def kernel(fn, xp):
    """``fn`` compiled by numba (no GIL, cached on disk), or None: not numpy, no numba, or turned off."""
    if xp.__name__ != "numpy" or not enabled():
        return None
    return compiled(fn)


def compiled(fn):
    """``fn`` compiled (once per process): for a backward pass whose forward ran compiled.

    ``error_model="numpy"``: a division by zero gives inf or nan as in numpy instead of raising,
    which also lets the loops vectorise (measured: LRN's element-wise tail 8x faster).
    """
    if fn not in _compiled:
        njit = _numba().njit
        try:
            _compiled[fn] = njit(nogil=True, cache=True, error_model="numpy")(fn)
        except RuntimeError:  # no writable cache location (read-only install, no home): compile each run
            _compiled[fn] = njit(nogil=True, error_model="numpy")(fn)
    return _compiled[fn]
