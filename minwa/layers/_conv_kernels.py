"""Convolution kernels for _jit.py: the element-wise work around a chunk's GEMM, in one pass each.

numpy needs two passes and a temporary for the forward's bias + ReLU, and its column
sum of an (images*OH*OW, O) gradient is slow (measured on cifar10_full's conv1 at one
thread: 2.0 ms and 1.6 ms per batch, against 0.3 ms each here).  Both run on a chunk
while it is in cache, on the thread that runs the chunk's GEMM.
"""


def add_bias_relu(y, bias, has_bias, relu):
    """``y += bias`` (per column) and then, with ``relu``, negatives set to 0; NaN stays NaN."""
    rows, cols = y.shape
    for i in range(rows):
        for j in range(cols):
            v = y[i, j] + bias[j] if has_bias else y[i, j]
            y[i, j] = 0 if relu and v < 0 else v


def add_column_sums(g, sums):
    """``sums += g.sum(axis=0)``, row after row (the bias gradient of a chunk)."""
    rows, cols = g.shape
    for i in range(rows):
        for j in range(cols):
            sums[j] += g[i, j]


def mask_with_column_sums(g, y, out, sums):
    """``out = g`` where ``y > 0`` else 0 (a fused ReLU's backward), then ``sums += out.sum(axis=0)``.

    ``g - g`` keeps a NaN or inf gradient as NaN where the mask is off, as numpy's ``g * 0`` does.
    """
    rows, cols = g.shape
    for i in range(rows):
        for j in range(cols):
            v = g[i, j] if y[i, j] > 0 else g[i, j] - g[i, j]
            out[i, j] = v
            sums[j] += v
