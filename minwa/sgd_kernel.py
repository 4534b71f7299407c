"""Caffe's SGD update fused over cache-sized chunks of a parameter, on the layer threads.

``history = momentum * history + rate * (grad + decay * w); w -= history`` written as
separate whole-array numpy expressions makes six passes over memory and three
parameter-sized temporaries; a large fully connected layer (Deep Image's 6144 x 6144)
then spends longer in the update than in its GEMMs.  Here every chunk does the same
operations in the same order in a small scratch buffer while it is in cache, so the
result is bit-identical to the whole-array form, for any chunking and thread count.
Where numba is installed (_jit.py) a chunk is one compiled loop doing those operations
element by element, with the GIL released: the numpy form's seven calls per chunk hold
the GIL long enough that two threads queue on it (Deep Image's update, 62 M parameters,
took 61 ms at 2 threads).
"""
from .layers import _jit
from .layers._threads import run_chunks

#: elements per chunk (256 KB of float32)
CHUNK = 1 << 16
#: parameters smaller than this are updated by the plain whole-array expressions
MIN_SIZE = 1 << 18


def fusable(data, grad, history, *scalars):
    """Whether the fused kernel applies: large contiguous numpy arrays of one dtype, scalar factors."""
    if type(data).__module__ != "numpy" or data.size < MIN_SIZE:
        return False
    arrays = (data, grad, history)
    if any(a.shape != data.shape or a.dtype != data.dtype or not a.flags.c_contiguous for a in arrays):
        return False
    return all(isinstance(s, (int, float)) for s in scalars)


def update_chunk(w, g, h, momentum, rate, decay):
    """The compiled chunk: the numpy form's operations, in its order and precision, element by element."""
    for i in range(w.shape[0]):
        t = g[i] + w[i] * decay if decay else g[i]
        v = h[i] * momentum + t * rate
        h[i] = v
        w[i] -= v


def sgd_update(data, grad, history, momentum, rate, decay):
    """In place: history = momentum*history + rate*(grad + decay*data); data -= history (decay 0: no term)."""
    import numpy

    flat_w, flat_g, flat_h = data.reshape(-1), grad.reshape(-1), history.reshape(-1)
    t = data.dtype.type
    momentum, rate, decay = t(momentum), t(rate), t(decay)
    size = flat_w.size
    compiled = _jit.kernel(update_chunk, numpy)
    if compiled is not None:
        run_chunks(numpy, lambda i0, i1: compiled(flat_w[i0:i1], flat_g[i0:i1], flat_h[i0:i1], momentum, rate, decay),
                   [(i, min(size, i + CHUNK)) for i in range(0, size, CHUNK)])
        return

    def chunk(i0, i1):
        w, g, h = flat_w[i0:i1], flat_g[i0:i1], flat_h[i0:i1]
        tmp = numpy.empty(i1 - i0, dtype=data.dtype)
        if decay:
            numpy.multiply(w, decay, out=tmp)  # grad + decay * data, as the whole-array form computes it
            numpy.add(g, tmp, out=tmp)
        else:
            tmp[...] = g
        h *= momentum
        tmp *= rate
        h += tmp
        w -= h

    run_chunks(numpy, chunk, [(i, min(size, i + CHUNK)) for i in range(0, size, CHUNK)])
