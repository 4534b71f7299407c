"""A convolution's weights between Caffe's (O, Cg, kh, kw) layout and the column orders its GEMMs use.

im2col and kernel-row columns run over (kh, kw, C); the transposed convolution of the input gradient
reads the kernel flipped.  A big layer's weights are re-laid out by blocks of output channels on the
threads: one strided gather of Deep Image's weights costs milliseconds.
"""
from ..backend import xp_of
from . import _threads

#: output channels per block when weights are copied to or from Caffe's layout on the threads
WEIGHT_BLOCK = 32
#: weights smaller than this (elements) are re-laid out in one call: a pass on the threads costs ~0.5 ms
THREADED_COPY = 1 << 18


def copy_by_channels(xp, fn, count, elements):
    """Run ``fn(c0, c1)`` over blocks of ``count`` output channels, on the threads for a big weight."""
    if elements < THREADED_COPY:
        fn(0, count)
        return
    _threads.run_chunks(xp, fn, [(c0, min(count, c0 + WEIGHT_BLOCK)) for c0 in range(0, count, WEIGHT_BLOCK)])


def columns(weight, group):
    """``weight`` (O, Cg, kh, kw) as one (kh*kw*Cg, O/group) matrix per group, in im2col's (kh, kw, C) order:
    transposed views of an (O, kh, kw, Cg) copy."""
    o, cg, kh, kw = weight.shape
    xp = xp_of(weight)
    rows = xp.empty((o, kh, kw, cg), dtype=weight.dtype)

    def block(o0, o1):
        rows[o0:o1] = weight[o0:o1].transpose(0, 2, 3, 1)

    copy_by_channels(xp, block, o, weight.size)
    og = o // group
    return [rows[g * og:(g + 1) * og].reshape(og, kh * kw * cg).T for g in range(group)]


def flipped_columns(weight, group):
    """The transposed convolution's weights: (group, kh*kw*O/group, Cg), kernel flipped."""
    o, cg, kh, kw = weight.shape
    w = weight.reshape(group, o // group, cg, kh, kw)[:, :, :, ::-1, ::-1]
    return w.transpose(0, 3, 4, 1, 2).reshape(group, kh * kw * (o // group), cg)


def to_caffe(dwsum, shape, group, by_output_rows):
    """A weight gradient summed in column order back in Caffe's layout ``shape`` (O, Cg, kh, kw).

    ``dwsum`` is (O, kh*kw*Cg) when ``by_output_rows`` (one chunk's GEMM made output-channel rows),
    else (group, kh*kw*Cg, O/group).
    """
    xp = xp_of(dwsum)
    o, cg, kh, kw = shape
    if by_output_rows:
        src = dwsum.reshape(1, o, kh, kw, cg).transpose(0, 1, 4, 2, 3)
    else:
        src = dwsum.reshape(group, kh, kw, cg, o // group).transpose(0, 4, 3, 1, 2)
    dw = xp.empty((group, src.shape[1], cg, kh, kw), dtype=dwsum.dtype)

    def block(o0, o1):
        dw[:, o0:o1] = src[:, o0:o1]

    copy_by_channels(xp, block, src.shape[1], src.size)
    return dw.reshape(shape)
