"""Pooling: MAX or AVE over 2-d windows with Caffe's ceil-mode sizes and padding rules.

Output size is ``ceil((H + 2 pad - kernel) / stride) + 1``, minus one when the layer
has any padding and the last window would start outside the image plus its left pad
(Caffe's clip, applied to both axes when either pad is non-zero).
MAX takes the largest value inside the image (padding never wins; ties go to the
first position in row-major order, as in Caffe).  AVE sums the window inside the
image and divides by the window size clipped to the padded image.
The window is separable, so both pools run a pass along W then a pass along H,
each looping only over kernel offsets, over cache-sized chunks of images that run
on the host threads of _threads.py.
"""
import math

from ..backend import xp_of
from . import _jit, _pool_kernels
from ._layout import CACHE_CHUNK, batch_chunks, empty_like_layout, nchw_view, nhwc, nhwc_view, zeros_like_layout
from ._threads import run_chunks
from ._util import boolean, choice, four_d, shape_error, spatial_pair
from .layer import Layer
from .registry import register

METHODS = ("MAX", "AVE", "STOCHASTIC")
#: elements per chunk of images (2 MB of float32): each chunk runs a dozen short passes, so smaller
#: chunks spend their time in per-call overhead and the GIL (measured on cifar10_full's pool1, 2 threads:
#: 7.2 / 10.0 ms forward / backward at 512 KB, 4.1 / 6.0 ms at 2 MB)
CHUNK = 1 << 19


def pooled_size(size, kernel, stride, pad, clip=None):
    """Caffe's pooled output length along one axis.

    Caffe drops a last window that would start in the padding on *both* axes as soon as
    either pad is non-zero, so ``clip`` (default: this axis's pad is non-zero) says whether
    the layer has any padding at all.
    """
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if (bool(pad) if clip is None else clip) and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _window_slice(offset, stride, count):
    return slice(offset, offset + stride * (count - 1) + 1, stride)


@register
class Pooling(Layer):
    type = "Pooling"
    #: an in-place ReLU folded in by the Net (minwa/relu_fusion.py); MAX only
    relu = False
    _relu_out = None

    def fuse_relu(self):
        """Take over the in-place ReLU that follows when this is a windowed MAX pool (max and ReLU commute)."""
        if self.method != "MAX" or self.global_pooling:
            return False
        self.relu = True
        return True

    def setup(self, bottom_shapes):
        n, c, h, w = four_d(self, bottom_shapes[0])
        self.method = choice(self, "pool", "MAX", METHODS)
        if self.method == "STOCHASTIC":
            raise self.error("STOCHASTIC pooling is not supported; use MAX or AVE", "pool")
        self.global_pooling = boolean(self, "global_pooling", False)
        if self.global_pooling:
            if any(self.option(k) is not None for k in ("kernel_size", "kernel_h", "kernel_w")):
                raise self.error("global_pooling takes the whole image; do not give a kernel size", "kernel_size")
            self.pad = spatial_pair(self, "pad", 0)
            self.stride = spatial_pair(self, "stride", 1, minimum=1)
            if any(self.pad) or self.stride != (1, 1):
                raise self.error("global_pooling needs pad 0 and stride 1", "pad" if any(self.pad) else "stride")
            self.kernel = None
        else:
            self.kernel = spatial_pair(self, "kernel_size", None, minimum=1)
            self.stride = spatial_pair(self, "stride", 1, minimum=1)
            self.pad = spatial_pair(self, "pad", 0)
            for p, k in zip(self.pad, self.kernel):
                if p >= k:
                    raise self.error(f"pad {p} must be smaller than the kernel {k}", "pad")
        oh, ow = self._out_hw(h, w)
        if oh <= 0 or ow <= 0:
            raise shape_error(self, f"kernel {self._kernel(h, w)} does not fit the {h}x{w} input")
        return [(n, c, oh, ow)]

    def _kernel(self, h, w):
        return (h, w) if self.global_pooling else self.kernel

    def _out_hw(self, h, w):
        if self.global_pooling:
            return 1, 1
        clip = any(self.pad)
        return (pooled_size(h, self.kernel[0], self.stride[0], self.pad[0], clip),
                pooled_size(w, self.kernel[1], self.stride[1], self.pad[1], clip))

    # -- forward ------------------------------------------------------------------
    def forward(self, bottoms):
        x = bottoms[0]
        if x.ndim != 4:
            raise shape_error(self, f"expects a 4-d input, got shape {tuple(x.shape)}")
        h, w = x.shape[2], x.shape[3]
        self._in_shape = x.shape
        if self.global_pooling:
            return [self._global_forward(x)]
        oh, ow = self._out_hw(h, w)
        xp = xp_of(x)
        name = "max_forward" if self.method == "MAX" else "ave_forward"
        compiled = _jit.kernel(getattr(_pool_kernels, name), xp)
        self._compiled = compiled is not None
        if self._compiled:
            return [self._compiled_forward(compiled, x, oh, ow)]
        if self.method == "MAX":
            y = self._max_forward(x, oh, ow)
            if self.relu:
                xp.maximum(y, 0, out=y)
                self._relu_out = y
            return [y]
        return [self._ave_forward(x, oh, ow)]

    def _compiled_forward(self, kernel, x, oh, ow):
        """One compiled pass per chunk of images (see _jit.py); MAX keeps each winner's flat position."""
        xp = xp_of(x)
        n, c, h, w = x.shape
        bounds = self._window_bounds(xp, h, w, oh, ow)
        self._channels_last = x.strides[1] < x.strides[3]
        y = empty_like_layout(x, (n, c, oh, ow))
        xs, ys = nhwc_view(x), nhwc_view(y)
        if self.method == "MAX":
            self._flat_arg = empty_like_layout(x, (n, c, oh, ow), dtype="int32")
            extra = nhwc_view(self._flat_arg)
        else:
            self._inv_area = 1 / self._pool_sizes(h, w, oh, ow, x.dtype, xp)
            extra = None

        def chunk(n0, n1):
            if extra is None:
                kernel(xs[n0:n1], ys[n0:n1], self._inv_area, *bounds)
            else:
                kernel(xs[n0:n1], ys[n0:n1], extra[n0:n1], *bounds, self.relu)

        run_chunks(xp, chunk, batch_chunks(xp, n, x[0].size, CACHE_CHUNK))
        return y

    def _window_bounds(self, xp, h, w, oh, ow):
        """Each window's [start, stop) clipped to the image: (OH, 2) rows and (OW, 2) columns, for the kernels."""
        def along(size, k, s, p, count):
            start = xp.arange(count) * s - p
            return xp.stack([xp.maximum(start, 0), xp.minimum(start + k, size)], axis=1)

        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.pad
        return along(h, kh, sh, ph, oh), along(w, kw, sw, pw, ow)

    def _compiled_backward(self, dy):
        xp = xp_of(dy)
        n, c, h, w = self._in_shape
        dx = empty_like_layout(dy, (n, c, h, w))
        dys, dxs = nhwc_view(dy), nhwc_view(dx)
        if self.method == "MAX":
            kernel = _jit.compiled(_pool_kernels.max_backward)
            arg = nhwc_view(self._flat_arg)

            def chunk(n0, n1):
                kernel(dys[n0:n1], arg[n0:n1], dxs[n0:n1])
        else:
            kernel = _jit.compiled(_pool_kernels.ave_backward)
            bounds = self._window_bounds(xp, h, w, dy.shape[2], dy.shape[3])

            def chunk(n0, n1):
                kernel(dys[n0:n1], self._inv_area, dxs[n0:n1], *bounds)

        run_chunks(xp, chunk, batch_chunks(xp, n, c * h * w, CACHE_CHUNK))
        return dx

    # The image is padded and split by column phase (column mod stride_w) into one buffer
    # (N, C, Hp, stride_w, Wp / stride_w), laid out in memory like the input.  Every window
    # column j of every output column is then the contiguous slice [j % s, j // s : j // s + OW],
    # so both separable passes run over long contiguous runs, even channels-last.
    def _plan_buffer(self, x, oh, ow):
        """Remember the per-image shape and memory order of x's padded, phase-split form."""
        c, h, w = x.shape[1:]
        (kh, kw), (sh, sw), ph = self.kernel, self.stride, self.pad[0]
        hp = max(h + ph, (oh - 1) * sh + kh)
        wq = -(-max(w + self.pad[1], (ow - 1) * sw + kw) // sw)
        self._buf_shape = (c, hp, sw, wq)
        self._channels_last = x.strides[1] < x.strides[3]

    def _fill_buffer(self, buf, x):
        """Copy the images x into the (already padded) phase buffer ``buf``."""
        h, w = x.shape[2], x.shape[3]
        ph, sw = self.pad[0], self.stride[1]
        for r, q0, x0, count in self._phases(w):
            buf[:x.shape[0], :, ph:ph + h, r, q0:q0 + count] = x[:, :, :, x0::sw][..., :count]
        return buf[:x.shape[0]]

    def _alloc_buffer(self, xp, images, dtype, fill):
        """A phase buffer for ``images`` images, filled with ``fill``."""
        shape = (images,) + self._buf_shape
        if not self._channels_last:
            return xp.full(shape, fill, dtype=dtype)
        order = (0, 2, 3, 4, 1)
        base = xp.full(tuple(shape[a] for a in order), fill, dtype=dtype)
        return base.transpose([order.index(a) for a in range(5)])

    def _phases(self, w):
        """(phase r, first slot, first image column, count) for each column phase that holds image columns."""
        sw, pw = self.stride[1], self.pad[1]
        out = []
        for r in range(sw):
            first = pw + (r - pw) % sw  # first padded column >= pw that is r mod sw
            count = len(range(first, pw + w, sw))
            if count:
                out.append((r, first // sw, first - pw, count))
        return out

    def _column(self, buf, j, ow):
        """Window column j of every output column: a (N, C, Hp, OW) view."""
        s = self.stride[1]
        return buf[:, :, :, j % s, j // s:j // s + ow]

    def _max_forward(self, x, oh, ow):
        xp = xp_of(x)
        n, c = x.shape[:2]
        (kh, kw), sh = self.kernel, self.stride[0]
        chunks = batch_chunks(xp, n, x[0].size, CHUNK)
        self._plan_buffer(x, oh, ow)
        hp = self._buf_shape[1]
        y = empty_like_layout(x, (n, c, oh, ow))
        jarg = zeros_like_layout(x, (n, c, hp, ow), dtype="int8") if kw > 1 else None
        iarg = zeros_like_layout(x, (n, c, oh, ow), dtype="int8") if kh > 1 else None

        def chunk(n0, n1):
            part = self._fill_buffer(self._alloc_buffer(xp, n1 - n0, x.dtype, -xp.inf), x[n0:n1])
            # pass 1 along W: the best column of each window row, and which offset won (first on ties)
            row_max = self._column(part, 0, ow).copy(order="K")
            for j in range(1, kw):
                cand = self._column(part, j, ow)
                better = cand > row_max
                xp.maximum(row_max, cand, out=row_max)
                # j grows, so the latest strict improvement is also the largest index: max() records it
                xp.maximum(jarg[n0:n1], better * jarg.dtype.type(j), out=jarg[n0:n1])
            # pass 2 along H: the best row, first on ties, so the winner is Caffe's first in row-major order
            out = y[n0:n1]
            out[...] = row_max[:, :, _window_slice(0, sh, oh)]
            for i in range(1, kh):
                cand = row_max[:, :, _window_slice(i, sh, oh)]
                better = cand > out
                xp.maximum(out, cand, out=out)
                xp.maximum(iarg[n0:n1], better * iarg.dtype.type(i), out=iarg[n0:n1])

        run_chunks(xp, chunk, chunks)
        self._jarg, self._iarg = jarg, iarg
        return y

    def _pool_sizes(self, h, w, oh, ow, dtype, xp):
        """Caffe's AVE divisor: window area clipped to the padded image, (OH, OW)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.pad

        def along(size, k, s, p, count):
            start = xp.arange(count) * s - p
            end = xp.minimum(start + k, size + p)
            return (end - start).astype(dtype)

        return along(h, kh, sh, ph, oh)[:, None] * along(w, kw, sw, pw, ow)[None, :]

    def _ave_forward(self, x, oh, ow):
        xp = xp_of(x)
        n, c, h, w = x.shape
        (kh, kw), sh = self.kernel, self.stride[0]
        self._inv_area = 1 / self._pool_sizes(h, w, oh, ow, x.dtype, xp)
        chunks = batch_chunks(xp, n, x[0].size, CHUNK)
        self._plan_buffer(x, oh, ow)
        y = empty_like_layout(x, (n, c, oh, ow))

        def chunk(n0, n1):
            part = self._fill_buffer(self._alloc_buffer(xp, n1 - n0, x.dtype, 0), x[n0:n1])
            row_sum = self._column(part, 0, ow).copy(order="K")
            for j in range(1, kw):
                row_sum += self._column(part, j, ow)
            out = y[n0:n1]
            out[...] = row_sum[:, :, _window_slice(0, sh, oh)]
            for i in range(1, kh):
                out += row_sum[:, :, _window_slice(i, sh, oh)]
            out *= self._inv_area

        run_chunks(xp, chunk, chunks)
        return y

    def _global_forward(self, x):
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        if self.method == "MAX":
            self._arg = flat.argmax(axis=2)
            return flat.max(axis=2).reshape(n, c, 1, 1)
        return flat.mean(axis=2).reshape(n, c, 1, 1)

    # -- backward -----------------------------------------------------------------
    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        if not propagate_down[0] or dy is None:
            return [None]
        if self.global_pooling:
            return [self._global_backward(dy)]
        xp = xp_of(dy)
        if self._channels_last and dy.strides[1] > dy.strides[3] and dy.shape[1] > 1:
            # a gradient that arrives NCHW (e.g. from InnerProduct) is brought to the forward's layout
            # once, so every pass below runs over one memory order and dx leaves channels-last
            dy = nchw_view(nhwc(dy))
        if self._compiled:
            return [self._compiled_backward(dy)]
        if self.relu:
            dy = dy * (self._relu_out > 0)
        n, c, h, w = self._in_shape
        (kh, kw), sh = self.kernel, self.stride[0]
        oh, ow = dy.shape[2], dy.shape[3]
        ph, sw = self.pad[0], self.stride[1]
        hp = self._buf_shape[1]
        dx = empty_like_layout(dy, (n, c, h, w))
        is_max = self.method == "MAX"
        iarg, jarg = (self._iarg, self._jarg) if is_max else (None, None)

        def chunk(n0, n1):
            g = dy[n0:n1] if is_max else dy[n0:n1] * self._inv_area
            # undo pass 2: spread each output's gradient over its window rows
            drow = zeros_like_layout(g, (n1 - n0, c, hp, ow))
            for i in range(kh):
                drow[:, :, _window_slice(i, sh, oh)] += g if iarg is None else g * (iarg[n0:n1] == i)
            # undo pass 1 into the phase-split padded buffer, then gather the image columns back
            dbuf = self._alloc_buffer(xp, n1 - n0, dy.dtype, 0)
            for j in range(kw):
                self._column(dbuf, j, ow)[...] += drow if jarg is None else drow * (jarg[n0:n1] == j)
            for r, q0, x0, count in self._phases(w):
                dx[n0:n1, :, :, x0::sw] = dbuf[:, :, ph:ph + h, r, q0:q0 + count]

        run_chunks(xp, chunk, batch_chunks(xp, n, c * h * w, CHUNK))
        return [dx]

    def _global_backward(self, dy):
        xp = xp_of(dy)
        n, c, h, w = self._in_shape
        if self.method == "MAX":
            hit = xp.arange(h * w).reshape(1, 1, h * w) == self._arg[:, :, None]
            return xp.where(hit, dy.reshape(n, c, 1), dy.dtype.type(0)).reshape(n, c, h, w)
        return xp.broadcast_to(dy / (h * w), (n, c, h, w)).copy()
