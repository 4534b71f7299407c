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

Between its chunks the thread that started a pass calls the registered polls
(``add_poll``), at most every ``POLL_S``: MPI moves a transfer on only inside an MPI
call, and the data-parallel engine's lazy update has transfers in flight while the
layers compute.  Polling here costs a test of each transfer (microseconds) instead of
a helper thread's wake-ups.
"""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

#: reductions are split over this many lanes whatever the thread count (determinism)
LANES = 4

#: the shortest time between two rounds of polls (seconds)
POLL_S = 5e-4
_polls = {}  # (fn, thread id) -> how many add_poll calls are not yet removed
_last_poll = [0.0]

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


def add_poll(fn):
    """Call ``fn()`` between the chunks of every pass this thread starts (each call needs a ``remove_poll``).

    Only this thread calls it: MPI without MPI_THREAD_MULTIPLE allows calls from one thread only.
    """
    key = (fn, threading.get_ident())
    with _lock:
        _polls[key] = _polls.get(key, 0) + 1


def remove_poll(fn):
    key = (fn, threading.get_ident())
    with _lock:
        if _polls.get(key, 0) > 1:
            _polls[key] -= 1
        else:
            _polls.pop(key, None)


def _poll():
    """Call this thread's polls, unless the last round was under POLL_S ago."""
    now = time.perf_counter()
    if now - _last_poll[0] < POLL_S:
        return
    _last_poll[0] = now
    me = threading.get_ident()
    for fn, thread in list(_polls):
        if thread == me:
            fn()


class _InOrder:
    """Hands out items in order, each once."""

    def __init__(self, items):
        self.count = len(items)
        self._items = iter(items)
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            return next(self._items, None)

    def done(self, item):
        pass


class _ByLane:
    """Hands out (lane, chunk) for chunks i = 0, 1, ... where chunk i belongs to lane i % lanes.

    A lane runs one chunk at a time and its chunks in order, so what it sums never depends on the
    threads; a free thread takes the lowest-numbered chunk of a lane no other thread is in.  So the
    threads share out chunks, not whole lanes: with 4 lanes on 2 threads, a thread the OS holds up
    for a while no longer leaves its second lane to finish after the other thread is done.
    """

    def __init__(self, chunks, lanes):
        self.count = len(chunks)
        self._chunks, self._lanes = chunks, lanes
        self._left = list(range(len(chunks)))
        self._busy = set()
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            for position, index in enumerate(self._left):
                lane = index % self._lanes
                if lane not in self._busy:
                    del self._left[position]
                    self._busy.add(lane)
                    return (lane,) + tuple(self._chunks[index])
            return None  # all that is left belongs to lanes in use; their threads take it

    def done(self, item):
        with self._lock:
            self._busy.discard(item[0])


def _run(xp, queue, work):
    """Call ``work(item)`` for every item of ``queue``: the workers (the calling thread among them) each
    take the next item as soon as they are free, so a core the OS lends elsewhere for a while does not
    hold the others up.  Which thread runs an item never changes a result (see the module docstring)."""
    inside = getattr(_inside, "active", False)

    def drain(caller=False):
        _inside.active = True
        try:
            while True:
                item = queue.take()
                if item is None:
                    return
                try:
                    work(item)
                finally:
                    queue.done(item)
                if caller and _polls:
                    _poll()
        finally:
            _inside.active = False

    if xp.__name__ != "numpy" or inside or not blas_held():  # in order, here, BLAS left as it is
        try:
            drain(caller=True)
        finally:
            _inside.active = inside
        return
    workers = min(thread_count(), queue.count)
    with blas_controller().limit(limits=1):
        if workers < 2:
            drain(caller=True)
            return
        pool = _pool(thread_count() - 1)  # one size, whatever this pass uses: no pool rebuilt
        futures = [pool.submit(drain) for _ in range(workers - 1)]
        try:
            drain(caller=True)
        finally:
            wait(futures)  # all of them, so none still runs once BLAS threads are restored
        for future in futures:
            future.result()  # re-raises a worker's exception here


def run_lanes(xp, fn, chunks, lanes=LANES):
    """Call ``fn(lane, n0, n1)`` for every chunk; lane k takes chunks k, k + lanes, ... in order."""
    _run(xp, _ByLane(chunks, lanes), lambda item: fn(*item))


def run_chunks(xp, fn, chunks):
    """Call ``fn(n0, n1)`` for every chunk (chunks write disjoint outputs, so any order will do)."""
    _run(xp, _InOrder(chunks), lambda chunk: fn(*chunk))
