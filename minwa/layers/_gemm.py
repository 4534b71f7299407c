"""A matrix product split into fixed blocks of output rows or columns, run on the layer threads.

InnerProduct's GEMMs go through here instead of one multi-threaded BLAS call: a BLAS
thread pool left spinning after its call takes the cores the next layer's workers
need (see _threads.py).  Blocks depend only on the shapes, and every output element
is one whole dot product computed by one single-threaded BLAS call, so the result
does not depend on the thread count.
"""
from ..backend import xp_of
from . import _threads

#: products below this many multiply-adds run as one call (threads would cost more than they save)
MIN_SPLIT = 1 << 20
#: a block has at least this many rows (or columns) and there are at most BLOCKS blocks
MIN_BLOCK = 32
BLOCKS = 8


def _blocks(size):
    count = max(1, min(BLOCKS, size // MIN_BLOCK))
    step = -(-size // count)
    return [(i, min(size, i + step)) for i in range(0, size, step)]


def matmul(a, b, out=None):
    """``a @ b`` for 2-d ``a`` (M, K) and ``b`` (K, N) as a C-contiguous (M, N) array: written into
    ``out`` when it is one of that shape and dtype (a weight gradient's buffer, reused every step:
    a fresh 150 MB array costs more in page faults than its product), else a new one."""
    xp = xp_of(a)
    m, k = a.shape
    n = b.shape[1]
    dtype = xp.result_type(a, b)
    if out is None or out.shape != (m, n) or out.dtype != dtype or not out.flags.c_contiguous:
        out = None
    if xp.__name__ != "numpy":
        return a @ b if out is None else xp.matmul(a, b, out=out)
    if out is None:
        out = xp.empty((m, n), dtype=dtype)
    by_rows = m >= n or m * n * k < MIN_SPLIT
    if m * n * k < MIN_SPLIT:
        chunks = [(0, m)]  # one block, still with BLAS held at one thread
    else:
        chunks = _blocks(m if by_rows else n)

    if by_rows and len(chunks) > 1 and not a.flags.c_contiguous:
        a = xp.ascontiguousarray(a)  # (dy^T for a weight gradient): BLAS reads row blocks faster
    bt = b.T if not by_rows and b.T.flags.c_contiguous else None

    def block(i0, i1):
        if by_rows:  # contiguous slices of the output
            xp.matmul(a[i0:i1], b, out=out[i0:i1])
        elif bt is not None:  # b = W^T (a layer's forward): rows of W times a^T, 2x faster for few rows of a
            out[:, i0:i1] = (bt[i0:i1] @ a.T).T
        else:  # columns, through a small contiguous temporary
            out[:, i0:i1] = a @ b[:, i0:i1]

    _threads.run_chunks(xp, block, chunks)
    return out
