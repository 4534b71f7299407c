"""Run independent batch chunks of a layer on a few host threads, with BLAS kept to one thread each.

numpy releases the GIL inside its element-wise loops, copies and BLAS calls, so
cache-sized chunks of a pass (pooling, LRN, im2col + GEMM) run in parallel on a
multi-core CPU.  While chunks run, the BLAS library is asked to use one thread per
call (threadpoolctl: OpenBLAS, MKL, BLIS): many small multi-threaded GEMMs each make
all BLAS threads meet, which on a busy machine costs far more than the work, and a
BLAS thread pool that was just used keeps spinning on the other cores for a while
afterwards, stealing them from our workers (measured: a 100 ms cifar10_full step
became 138 ms).  The BLAS thread count is restored afterwards, so large GEMMs in
user code still use every core.  Without a BLAS threadpoolctl can control, chunks
run one after another and BLAS threads itself.

The worker count follows ``MINWA_THREADS``, else ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` (what a launcher sets per rank), else the CPUs this process
may use.  On a GPU chunks run in order.  Every chunk writes its own slice of the
outputs, and reductions go through a fixed number of lanes summed in a fixed
order, so results never depend on the thread count or on scheduling.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

#: reductions are split over this many lanes whatever the thread count (determinism)
LANES = 4

_state = {"pool": None, "size": None, "blas": None}
_lock = threading.Lock()
#: set while a thread runs chunks, so a pass started inside a chunk runs there, in order
_inside = threading.local()


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


def blas_controller():
    """A threadpoolctl controller of the loaded BLAS libraries, or None (looked up once).

    Asked only while numpy is in use, so numpy's BLAS is loaded by then.
    """
    if _state["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            blas = ThreadpoolController().select(user_api="blas")
        except Exception:  # noqa: BLE001 - no threadpoolctl, or it cannot inspect this process
            blas = None
        _state["blas"] = blas if blas is not None and blas.lib_controllers else False
    return _state["blas"] or None


def blas_held():
    """True when BLAS can be held at one thread while chunks run (then chunks may be small)."""
    return blas_controller() is not None


def _pool(size):
    with _lock:
        if _state["pool"] is None or _state["size"] != size:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=True)
            _state["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="minwa-layer")
            _state["size"] = size
        return _state["pool"]


def _run_groups(xp, groups, work):
    """Call ``work(group)`` for every group: the workers (the calling thread among them) each take
    the next group as soon as they are free, so a core the OS lends elsewhere for a while does not
    hold the others up.  Which thread runs a group never changes a result (see the module docstring)."""
    if xp.__name__ != "numpy" or getattr(_inside, "active", False) or not blas_held():
        for group in groups:
            work(group)
        return
    workers = min(thread_count(), len(groups))
    pending = iter(groups)
    take = threading.Lock()

    def drain():
        _inside.active = True
        try:
            while True:
                with take:
                    group = next(pending, None)
                if group is None:
                    return
                work(group)
        finally:
            _inside.active = False

    with blas_controller().limit(limits=1):
        if workers < 2:
            drain()
            return
        pool = _pool(thread_count() - 1)  # one size, whatever this pass uses: no pool rebuilt
        futures = [pool.submit(drain) for _ in range(workers - 1)]
        try:
            drain()
        finally:
            wait(futures)  # all of them, so none still runs once BLAS threads are restored
        for future in futures:
            future.result()  # re-raises a worker's exception here


def run_lanes(xp, fn, chunks, lanes=LANES):
    """Call ``fn(lane, n0, n1)`` for every chunk; lane k takes chunks k, k + lanes, ... in order."""
    groups = [(lane, chunks[lane::lanes]) for lane in range(lanes) if chunks[lane::lanes]]

    def work(group):
        lane, assigned = group
        for n0, n1 in assigned:
            fn(lane, n0, n1)

    _run_groups(xp, groups, work)


def run_chunks(xp, fn, chunks):
    """Call ``fn(n0, n1)`` for every chunk (chunks write disjoint outputs, so any order will do)."""
    _run_groups(xp, chunks, lambda chunk: fn(*chunk))
