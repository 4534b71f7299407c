"""Memory layout helpers: blobs are NCHW to the user, but may sit channels-last in memory.

Convolution works channels-last (NHWC) internally because its im2col then copies long
contiguous runs and its GEMMs run on tall matrices.  It hands its output on as an NCHW
*view* of NHWC memory, and the layers after it allocate their outputs in the same
physical order as their input, so element-wise passes never stride across memory.
Values and shapes are exactly Caffe's; only strides differ.
"""
from ..backend import xp_of


def physical_order(x):
    """Axes of ``x`` from the largest stride to the smallest (ties keep axis order)."""
    return sorted(range(x.ndim), key=lambda a: (-abs(x.strides[a]), a))


def empty_like_layout(x, shape=None, dtype=None, fill=None):
    """A new array of logical ``shape`` laid out in memory like ``x`` (optionally filled)."""
    xp = xp_of(x)
    shape = tuple(x.shape if shape is None else shape)
    dtype = x.dtype if dtype is None else dtype
    order = physical_order(x) if x.ndim == len(shape) else list(range(len(shape)))
    if order == sorted(order):
        base = xp.empty(shape, dtype=dtype) if fill is None else xp.full(shape, fill, dtype=dtype)
        return base
    physical = tuple(shape[a] for a in order)
    base = xp.empty(physical, dtype=dtype) if fill is None else xp.full(physical, fill, dtype=dtype)
    inverse = [order.index(a) for a in range(len(shape))]
    return base.transpose(inverse)


def zeros_like_layout(x, shape=None, dtype=None):
    return empty_like_layout(x, shape, dtype, fill=0)


def flat_in_memory_order(x):
    """The 1-d view of ``x`` in its memory order, or None when ``x`` is not one contiguous block."""
    physical = x.transpose(physical_order(x))
    return physical.reshape(-1) if physical.flags.c_contiguous else None


def copy_like_layout(x):
    """A copy of ``x`` (possibly a strided view) keeping its memory order."""
    out = empty_like_layout(x)
    out[...] = x
    return out


def nhwc(x):
    """``x`` (N, C, H, W) as a C-contiguous (N, H, W, C) array (a view when it already is one)."""
    xp = xp_of(x)
    return xp.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_view(x):
    """The (N, H, W, C) view of an (N, C, H, W) array (no copy; contiguous for channels-last memory)."""
    return x.transpose(0, 2, 3, 1)


def nchw_view(y):
    """The (N, C, H, W) view of a channels-last (N, H, W, C) array."""
    return y.transpose(0, 3, 1, 2)


#: elements of float32 work per chunk for memory-bound passes on a CPU (512 KB: the chain of
#: element-wise passes over one chunk then runs from L2 cache instead of main memory)
CACHE_CHUNK = 1 << 17


#: a pass over a batch is cut into at least this many chunks when it has the images: with one chunk per
#: worker, the first to finish waits idle for the other, which started later (a worker wakes ~50 us
#: after the caller); smaller shares even that out
MIN_CHUNKS = 4


def even_chunks(n, size):
    """(start, stop) ranges over ``n`` items, as few as hold at most ``size`` each, sizes differing by at most one.

    Equal shares keep threads busy to the end: 100 images in chunks of 64 leave one worker 64 and the other 36.
    """
    count = -(-n // max(1, size))
    return [(n * i // count, n * (i + 1) // count) for i in range(count)]


def batch_chunks(xp, n, per_image, target=None):
    """(start, stop) image ranges so each chunk holds at most about ``target`` elements (and there are at least
    ``MIN_CHUNKS`` when there are that many images); one chunk on a GPU."""
    if xp.__name__ != "numpy":
        return [(0, n)]
    size = max(1, min(n, (target or CACHE_CHUNK) // max(1, per_image), -(-n // MIN_CHUNKS)))
    return even_chunks(n, size)
