"""Run independent batch chunks of a layer on a few host threads.

numpy releases the GIL inside its element-wise loops and copies, so chunks of a
memory-bound pass (pooling, LRN, im2col) proceed in parallel on a multi-core CPU
while BLAS already uses every core for the GEMMs.  The thread count follows
``MINWA_THREADS``, else ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` (what a
launcher sets per rank), else the CPUs this process may use.  On a GPU, or with one
thread, chunks simply run in order.  Every chunk writes its own slice of the
outputs, so results do not depend on the thread count or on scheduling.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_state = {"pool": None, "size": None}
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


def _pool(size):
    with _lock:
        if _state["pool"] is None or _state["size"] != size:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=True)
            _state["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="minwa-layer")
            _state["size"] = size
        return _state["pool"]


def run_chunks(xp, fn, chunks):
    """Call ``fn(n0, n1)`` for every chunk; in parallel on a multi-core CPU, in order otherwise."""
    size = thread_count()
    if xp.__name__ != "numpy" or size == 1 or len(chunks) < 2 or threading.current_thread().name.startswith(
            "minwa-layer"):
        for n0, n1 in chunks:
            fn(n0, n1)
        return
    workers = min(size, len(chunks))
    pool = _pool(workers)
    groups = [chunks[k::workers] for k in range(workers)]

    def work(group):
        for n0, n1 in group:
            fn(n0, n1)

    for future in [pool.submit(work, g) for g in groups if g]:
        future.result()  # re-raises a worker's exception here
