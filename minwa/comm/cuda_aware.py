"""Whether the loaded MPI library is CUDA-aware: then cupy arrays go to MPI directly, without host staging.

``MINWA_CUDA_AWARE`` (1/0, true/false, yes/no, on/off) overrides what the library says.
"""
import ctypes
import os


def query_cuda_aware():
    """Whether the loaded MPI library can read GPU memory (MPIX_Query_cuda_support), False if unknown."""
    override = os.environ.get("MINWA_CUDA_AWARE", "").strip().lower()
    if override in ("1", "true", "yes", "on"):
        return True
    if override in ("0", "false", "no", "off"):
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libraries = {line.split()[-1] for line in f if "libmpi" in line and line.split()[-1].startswith("/")}
    except OSError:
        return False
    for path in sorted(libraries):
        try:
            query = ctypes.CDLL(path).MPIX_Query_cuda_support
        except (OSError, AttributeError):
            continue
        query.restype = ctypes.c_int
        return bool(query())
    return False
