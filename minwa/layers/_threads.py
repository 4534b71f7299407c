"""Run independent batch chunks of a layer on a few host threads, with BLAS kept to one thread each.

numpy releases the GIL inside its element-wise loops, copies and BLAS calls, so
cache-sized chunks of a pass (pooling, LRN, im2col + GEMM) run in parallel on a
multi-core CPU.  While chunks run, the BLAS library is asked to use one thread per
call: many small multi-threaded GEMMs each make all BLAS threads meet, which on a
busy shared machine costs far more than the work (measured: 2-3x slower), while one
single-threaded GEMM per worker never waits for anybody.  The BLAS thread count is
restored afterwards, so large single GEMMs elsewhere (InnerProduct, user code)
still use every core.  BLAS threads can be set for numpy's OpenBLAS on Linux; with
another BLAS the chunks run one after another and BLAS threads itself.

The worker count follows ``MINWA_THREADS``, else ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` (what a launcher sets per rank), else the CPUs this process
may use.  On a GPU chunks run in order.  Every chunk writes its own slice of the
outputs, and reductions go through a fixed number of lanes summed in a fixed
order, so results never depend on the thread count or on scheduling.
"""
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

#: reductions are split over this many lanes whatever the thread count (determinism)
LANES = 4

_state = {"pool": None, "size": None, "blas": None}
_lock = threading.Lock()


def thread_count():
    for key in ("MINWA_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(key)
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                continue
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _find_blas_threads():
    """(get, set) for the OpenBLAS numpy loaded, or None when it cannot be found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                put.argtypes = [ctypes.c_int64 if suffix else ctypes.c_int]
                return get, put
    return None


def blas_threads():
    """(get, set) functions for BLAS threads, or None (looked up once)."""
    if _state["blas"] is None:  # asked only while numpy (which loads its BLAS) is in use
        _state["blas"] = _find_blas_threads() or False
    return _state["blas"] or None


def blas_held():
    """True when BLAS can be held at one thread while chunks run (then chunks may be small)."""
    return blas_threads() is not None


def _pool(size):
    with _lock:
        if _state["pool"] is None or _state["size"] != size:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=True)
            _state["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="minwa-layer")
            _state["size"] = size
        return _state["pool"]


def run_lanes(xp, fn, chunks, lanes=LANES):
    """Call ``fn(lane, n0, n1)`` for every chunk; lane k takes chunks k, k + lanes, ... in order."""
    groups = [(lane, chunks[lane::lanes]) for lane in range(lanes) if chunks[lane::lanes]]

    def work(assigned):
        for lane, group in assigned:
            for n0, n1 in group:
                fn(lane, n0, n1)

    in_worker = threading.current_thread().name.startswith("minwa-layer")
    if xp.__name__ != "numpy" or in_worker or not blas_held():
        work(groups)
        return
    workers = min(thread_count(), len(groups))
    get, put = blas_threads()
    before = int(get())
    put(1)
    try:
        if workers < 2:
            work(groups)
        else:
            pool = _pool(workers)
            futures = [pool.submit(work, groups[k::workers]) for k in range(workers)]
            for future in futures:
                future.result()  # re-raises a worker's exception here
    finally:
        put(before)


def run_chunks(xp, fn, chunks):
    """Call ``fn(n0, n1)`` for every chunk (chunks write disjoint outputs, so any order will do)."""
    run_lanes(xp, lambda lane, n0, n1: fn(n0, n1), chunks)
