"""Per-thread scratch arrays reused across images.

Allocating fresh megabyte-sized temporaries for every image costs page faults that can
exceed the arithmetic itself; the resampler asks for named buffers here instead. Each
thread (the loader's prefetch thread, the main thread) gets its own set, and the array
views handed out are remembered, so asking again costs one dictionary lookup.
"""
import threading

import numpy

_local = threading.local()


def scratch(name, shape, dtype):
    """A C-contiguous array of ``shape``/``dtype`` backed by this thread's buffer ``name`` (contents undefined)."""
    views = getattr(_local, "views", None)
    if views is None:
        views = _local.views = {}
        _local.buffers = {}
    key = (name, shape, dtype)
    view = views.get(key)
    if view is not None:
        return view
    dtype = numpy.dtype(dtype)
    count = 1
    for side in shape:
        count *= int(side)
    need = count * dtype.itemsize
    buffers = _local.buffers
    buf = buffers.get(name)
    if buf is None or buf.nbytes < need:
        buf = buffers[name] = numpy.empty(max(need, 1), dtype=numpy.uint8)
        for old in [k for k in views if k[0] == name]:  # views of the replaced buffer must not be reused
            del views[old]
        if len(views) > 4096:  # many distinct shapes (e.g. varying image sizes): start over
            views.clear()
    view = views[key] = buf[:need].view(dtype).reshape(shape)
    return view
