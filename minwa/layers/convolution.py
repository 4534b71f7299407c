"""Convolution: 2-d cross-correlation with Caffe's parameters and weight layout.

Weights are (num_output, C / group, kh, kw) and the output size is
``(H + 2 pad - kernel) / stride + 1`` (floor), as in Caffe.  Internally the layer
works channels-last: a chunk of images is unrolled by im2col into a tall
(images*OH*OW, kh*kw*C) matrix and multiplied by the weights in one GEMM per group,
so the working set stays in cache and no Python loop runs over pixels; chunks run on
the host threads of _threads.py.  On a CPU, an ungrouped layer with vertical stride 1
unrolls one kernel row only and sums one GEMM per kernel row instead, each chunk zero-padded
in cache, so no padded copy of the batch is made or kept for backward (_kernel_rows.py); a layer
with few input channels (a first layer) unrolls padded image planes instead (_planes.py).  The output
is returned as an NCHW view of that channels-last memory (see _layout.py).  Backward reuses the
same kernels: the weight gradient is cols^T @ dY, and the input gradient of a stride-1 convolution is
itself a convolution of the padded output gradient with the flipped weights (otherwise col2im adds the
columns back).
"""
from ..backend import xp_of
from . import _conv_kernels, _conv_weights, _im2col, _jit, _kernel_rows, _planes, _threads
from ._layout import even_chunks, nchw_view
from ._util import boolean, filler_spec, four_d, number, shape_error, spatial_pair
from .layer import Layer
from .registry import register
from .relu import relu_mask

_CONSTANT_0 = {"type": "constant", "value": 0.0}
#: target number of elements in one chunk's column matrix on a CPU: 1 MB of float32, so a chunk's
#: im2col and GEMM run from L2 cache, one chunk per host thread with single-threaded BLAS (_threads.py)
CHUNK_ELEMENTS = 1 << 18
#: the chunk size when BLAS threads cannot be held at one and BLAS parallelises each GEMM itself:
#: bigger, because every multi-threaded BLAS call makes its threads meet (costly on a busy machine)
BLAS_THREADED_CHUNK_ELEMENTS = 1 << 22
#: the same bound on a GPU, where one big GEMM per layer is best
GPU_CHUNK_ELEMENTS = 1 << 27
#: when the whole batch is one chunk (small images, many channels: Deep Image's late layers), its GEMMs
#: are split into blocks of this many output channels instead, so they still spread over the threads
COLUMN_BLOCK = 128


def _add_bias_relu(xp, ymat, bias, relu):
    """``ymat += bias`` (none: ``bias`` None), then max(., 0) with ``relu``: one compiled pass where _jit.py has one."""
    if bias is None and not relu:
        return
    kernel = _jit.kernel(_conv_kernels.add_bias_relu, xp)
    if kernel is not None:
        kernel(ymat, ymat[0] if bias is None else bias, bias is not None, relu)
        return
    if bias is not None:
        ymat += bias
    if relu:
        xp.maximum(ymat, 0, out=ymat)


@register
class Convolution(Layer):
    type = "Convolution"
    #: an in-place ReLU folded in by the Net (minwa/relu_fusion.py): applied to each chunk while in cache
    relu = False
    _relu_out = None

    def fuse_relu(self):
        """Take over the in-place ReLU that follows (the Net then skips it); always possible here."""
        self.relu = True
        return True

    def setup(self, bottom_shapes):
        n, c, h, w = four_d(self, bottom_shapes[0])
        if self.option("num_output") is None:
            raise self.error("missing num_output", "num_output")
        self.num_output = number(self, "num_output", None, int, minimum=1)
        self.kernel = spatial_pair(self, "kernel_size", None, minimum=1)
        self.stride = spatial_pair(self, "stride", 1, minimum=1)
        self.pad = spatial_pair(self, "pad", 0, minimum=0)
        self.dilation = spatial_pair(self, "dilation", 1, minimum=1)
        self.group = number(self, "group", 1, int, minimum=1)
        self.bias_term = boolean(self, "bias_term", True)
        if c % self.group:
            raise self.error(f"input channels {c} are not divisible by group {self.group}", "group")
        if self.num_output % self.group:
            raise self.error(f"num_output {self.num_output} is not divisible by group {self.group}", "group")
        self.channels = c
        oh, ow = self._out_hw(h, w)
        if oh <= 0 or ow <= 0:
            raise shape_error(self, f"kernel {self.kernel} with pad {self.pad} does not fit the {h}x{w} input")
        kh, kw = self.kernel
        self.weight = self.add_param("weight", (self.num_output, c // self.group, kh, kw),
                                     filler_spec(self, "weight_filler", _CONSTANT_0))
        self.bias = None
        if self.bias_term:
            self.bias = self.add_param("bias", (self.num_output,), filler_spec(self, "bias_filler", _CONSTANT_0))
        return [(n, self.num_output, oh, ow)]

    def _out_hw(self, h, w):
        return (_im2col.out_size(h, self.kernel[0], self.stride[0], self.pad[0], self.dilation[0]),
                _im2col.out_size(w, self.kernel[1], self.stride[1], self.pad[1], self.dilation[1]))

    def _check(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise shape_error(self, f"input has shape {tuple(x.shape)}; expected (N, {self.channels}, H, W)")

    @staticmethod
    def _chunks(xp, n, per_image, rows=1, out_cols=1):
        """(start, stop) image ranges of about a chunk's worth of column elements each.

        A chunk also gets at least ``out_cols`` GEMM rows (``rows`` per image): a chunk's GEMM
        reads the whole weight matrix, which costs as much as the multiply when a chunk has
        fewer rows than the weights have columns (measured on Deep Image's 4x4 layers: 2x).
        """
        if xp.__name__ != "numpy":
            limit = GPU_CHUNK_ELEMENTS
        else:
            limit = CHUNK_ELEMENTS if _threads.blas_held() else BLAS_THREADED_CHUNK_ELEMENTS
        size = max(1, min(n, limit // max(per_image, 1)))
        size = max(size, min(n, -(-out_cols // max(rows, 1))))
        return even_chunks(n, size)

    def _column_blocks(self, chunks, out_cols):
        """Output-channel blocks for a batch that is one chunk of an ungrouped layer, else None."""
        if len(chunks) > 1 or self.group > 1 or out_cols < 2 * COLUMN_BLOCK:
            return None
        return [(c0, min(out_cols, c0 + COLUMN_BLOCK)) for c0 in range(0, out_cols, COLUMN_BLOCK)]

    @staticmethod
    def _all_columns(xp, view, n, rows, width, dtype):
        """im2col of the whole batch into one (n * rows, width) matrix, images copied on the threads."""
        cols = xp.empty((n * rows, width), dtype=dtype)
        _threads.run_chunks(xp, lambda n0, n1: _im2col.im2col(view, n0, n1, cols[n0 * rows:n1 * rows]),
                            [(i, i + 1) for i in range(n)])
        return cols

    def _groups(self, channels):
        """(start, stop) channel ranges per group, or [None] for an ungrouped layer."""
        if self.group == 1:
            return [None]
        size = channels // self.group
        return [(g * size, (g + 1) * size) for g in range(self.group)]

    # -- forward ------------------------------------------------------------------
    def forward(self, bottoms):
        x = bottoms[0]
        self._check(x)
        h, w = x.shape[2], x.shape[3]
        oh, ow = self._out_hw(h, w)
        bias = self.bias.data if self.bias is not None else None
        if _planes.applies(x, self.group, self.kernel, _kernel_rows.MIN_FORWARD_DEPTH):
            xp = xp_of(x)
            y = xp.empty((x.shape[0], oh, ow, self.num_output), dtype=x.dtype)
            chunks = self._chunks(xp, x.shape[0], oh * ow * self.weight.data[0].size, oh * ow, self.num_output)
            _planes.convolve(x, self.weight.data, y, chunks, self.kernel, self.stride, self.dilation, self.pad,
                             lambda rows: _add_bias_relu(xp, rows, bias, self.relu))
            self._source = (x.transpose(0, 2, 3, 1), self.pad)
        else:
            wcols = _conv_weights.columns(self.weight.data, self.group)
            y, self._source = self._conv_nhwc(x.transpose(0, 2, 3, 1), self.pad, wcols, self.kernel, self.stride,
                                              self.dilation, (oh, ow), self.num_output, bias, self.relu)
        self._in_shape = x.shape
        self._relu_out = y if self.relu else None  # y > 0 exactly where the ReLU passes a gradient
        return [nchw_view(y)]

    def _conv_nhwc(self, x, pad, wcols, kernel, stride, dilation, out_hw, out_channels, bias=None, relu=False):
        """Channels-last convolution of ``x`` zero-padded by ``pad`` with column weights ``wcols`` (+ bias,
        then max(., 0) with ``relu``): (N, OH, OW, out); and (the array read, its padding still to add) for
        the weight gradient.  Kernel-row chunks pad their own images in cache; im2col reads a padded copy."""
        xp = xp_of(x)
        n = x.shape[0]
        oh, ow = out_hw
        groups = self._groups(x.shape[3])
        og = out_channels // self.group
        width = wcols[0].shape[0]
        y = xp.empty((n, oh, ow, out_channels), dtype=x.dtype)
        chunks = self._chunks(xp, n, oh * ow * width, oh * ow, og)
        blocks = self._column_blocks(chunks, out_channels)
        if (blocks is None and _kernel_rows.applies(xp, self.group, kernel, stride)
                and kernel[1] * x.shape[3] >= _kernel_rows.MIN_FORWARD_DEPTH):
            wrows = xp.ascontiguousarray(wcols[0]).reshape(kernel[0], width // kernel[0], out_channels)

            def row_chunk(n0, n1):
                out = y[n0:n1].reshape(n1 - n0, oh * ow, out_channels)
                rows = _kernel_rows.unroll_padded(x, n0, n1, kernel, stride, dilation, pad, ow)
                _kernel_rows.convolve(rows, wrows, out, dilation[0], oh)
                _add_bias_relu(xp, out.reshape(-1, out_channels), bias, relu)

            # a chunk's cache footprint: its unrolled rows, its output and one kernel row's product
            per_image = (x.shape[1] + 2 * pad[0]) * ow * (width // kernel[0]) + 2 * oh * ow * out_channels
            _threads.run_chunks(xp, row_chunk, self._chunks(xp, n, per_image, oh * ow, og))
            return y, (x, pad)
        xpad = _im2col.pad_nhwc(x, *pad)
        views = [_im2col.patches(xpad, kernel, stride, dilation, out_hw, channels) for channels in groups]
        if blocks is not None:
            cols = self._all_columns(xp, views[0], n, oh * ow, width, xpad.dtype)
            ymat = y.reshape(n * oh * ow, out_channels)

            def block(c0, c1):
                ymat[:, c0:c1] = cols @ wcols[0][:, c0:c1]
                _add_bias_relu(xp, ymat[:, c0:c1], None if bias is None else bias[c0:c1], relu)

            _threads.run_chunks(xp, block, blocks)
            return y, (xpad, (0, 0))

        # chunks' GEMMs have few rows: there BLAS is faster on contiguous weights than on a transposed view
        wcols = [xp.ascontiguousarray(wg) for wg in wcols]

        def chunk(n0, n1):
            m = (n1 - n0) * oh * ow
            buf = xp.empty((m, width), dtype=xpad.dtype)
            ymat = y[n0:n1].reshape(m, out_channels)
            for gi, channels in enumerate(groups):
                cols = _im2col.im2col(views[gi], n0, n1, buf)
                if channels is None:
                    xp.matmul(cols, wcols[0], out=ymat)
                else:
                    ymat[:, gi * og:(gi + 1) * og] = cols @ wcols[gi]
            _add_bias_relu(xp, ymat, bias, relu)  # while the chunk is still in cache

        _threads.run_chunks(xp, chunk, chunks)
        return y, (xpad, (0, 0))

    # -- backward -----------------------------------------------------------------
    def backward(self, top_grads, propagate_down):
        source, pad = self._source
        xp = xp_of(source)
        n, _, h, w = self._in_shape
        oh, ow = self._out_hw(h, w)
        o = self.num_output
        dy = top_grads[0]
        if dy is None:
            dy = xp.zeros((n, o, oh, ow), dtype=source.dtype)
        dy = xp.ascontiguousarray(dy.transpose(0, 2, 3, 1))  # (N, OH, OW, O); a no-op for our own layout
        rows, masked = self._output_grad_rows(xp, dy)
        self.weight.grad, bias_grad = self._weight_grad(source, pad, rows, (oh, ow))
        if self.bias is not None:
            self.bias.grad = bias_grad
        if not propagate_down[0]:
            return [None]
        return [nchw_view(self._input_grad(masked, (h, w), (oh, ow)))]

    def _transposed_pad(self):
        """The padding of the input gradient as a full convolution of the output gradient with the flipped
        kernel (a stride-1 layer whose pad is at most its kernel's reach), else None."""
        (kh, kw), (ph, pw), (dh, dw) = self.kernel, self.pad, self.dilation
        qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
        return (qh, qw) if self.stride == (1, 1) and qh >= 0 and qw >= 0 else None

    def _output_grad_rows(self, xp, dy):
        """``rows(n0, n1, sums)``: images n0:n1 of the output gradient as an (images*OH*OW, O) matrix,
        with the fused ReLU's mask applied and their column sums (the bias gradient) added to ``sums``,
        while the chunk is in cache; and the whole masked gradient, which the calls fill in."""
        o = dy.shape[3]
        mask = self._relu_out
        sums_kernel = _jit.kernel(_conv_kernels.add_column_sums, xp)
        if sums_kernel is None:  # numpy: the mask as one pass first, a numpy sum per chunk
            masked = dy if mask is None else relu_mask(dy, mask)

            def numpy_rows(n0, n1, sums):
                g = masked[n0:n1].reshape(-1, o)
                sums += g.sum(axis=0)
                return g

            return numpy_rows, masked
        masked = dy if mask is None else xp.empty_like(dy)
        mask_kernel = _jit.kernel(_conv_kernels.mask_with_column_sums, xp)

        def kernel_rows(n0, n1, sums):
            g = dy[n0:n1].reshape(-1, o)
            if mask is None:
                sums_kernel(g, sums)
                return g
            out = masked[n0:n1].reshape(-1, o)
            mask_kernel(g, mask[n0:n1].reshape(-1, o), out, sums)
            return out

        return kernel_rows, masked

    def _weight_grad(self, source, pad, rows, out_hw):
        """Gradients of the weights (Caffe's layout) and of the bias, from one pass of im2col over the input
        ``source`` zero-padded by ``pad`` and the output gradient's ``rows`` (``_output_grad_rows``)."""
        xp = xp_of(source)
        n = source.shape[0]
        oh, ow = out_hw
        o, cg, kh, kw = self.weight.shape
        og = o // self.group
        width = kh * kw * cg
        groups = self._groups(source.shape[3])
        chunks = self._chunks(xp, n, oh * ow * width, oh * ow, og)
        blocks = self._column_blocks(chunks, o)
        by_rows = blocks is None and _kernel_rows.applies(xp, self.group, self.kernel, self.stride)
        if by_rows:  # rows + gradient
            chunks = self._chunks(xp, n, (source.shape[1] + 2 * pad[0]) * ow * kw * cg + oh * ow * o, oh * ow, og)
        else:
            xpad = _im2col.pad_nhwc(source, *pad) if any(pad) else source
            views = [_im2col.patches(xpad, self.kernel, self.stride, self.dilation, out_hw, channels)
                     for channels in groups]
        # one partial sum per lane in use, added up in lane order: the result does not depend on threads.
        # One chunk's GEMM makes (O, kh*kw*Cg) rows; many small chunks' GEMMs run faster as (kh*kw*Cg, O)
        lanes = 1 if blocks is not None else min(_threads.LANES, len(chunks))
        shape = (lanes, o, width) if blocks is not None else (lanes, self.group, width, og)
        partial = xp.zeros(shape, dtype=source.dtype)
        partial_bias = xp.zeros((lanes, o), dtype=source.dtype)
        if blocks is not None:
            cols = self._all_columns(xp, views[0], n, oh * ow, width, source.dtype)
            dymat = rows(0, n, partial_bias[0])

            def block(c0, c1):
                xp.matmul(dymat[:, c0:c1].T, cols, out=partial[0, c0:c1])

            _threads.run_chunks(xp, block, blocks)
            chunks = []

        def chunk(lane, n0, n1):
            dymat = rows(n0, n1, partial_bias[lane])
            if by_rows:
                unrolled = _kernel_rows.unroll_padded(source, n0, n1, self.kernel, self.stride, self.dilation, pad, ow)
                _kernel_rows.add_weight_grad(unrolled, dymat.reshape(n1 - n0, oh * ow, o),
                                             partial[lane, 0].reshape(kh, kw * cg, o), self.dilation[0], oh)
                return
            buf = xp.empty(((n1 - n0) * oh * ow, width), dtype=source.dtype)
            for gi in range(len(groups)):
                cols = _im2col.im2col(views[gi], n0, n1, buf)
                partial[lane, gi] += cols.T @ dymat[:, gi * og:(gi + 1) * og]

        if chunks:
            _threads.run_lanes(xp, chunk, chunks, lanes)
        dwsum, dbias = partial[0], partial_bias[0]
        for lane in range(1, lanes):
            dwsum += partial[lane]
            dbias += partial_bias[lane]
        return _conv_weights.to_caffe(dwsum, self.weight.shape, self.group, blocks is not None), dbias

    def _input_grad(self, dy, in_hw, out_hw):
        """dL/dx as a channels-last (N, H, W, C) array."""
        xp = xp_of(dy)
        (kh, kw), (ph, pw) = self.kernel, self.pad
        q = self._transposed_pad()
        if q is not None:  # a stride-1 convolution's input gradient is the full convolution with the flipped kernel
            flipped = _conv_weights.flipped_columns(self.weight.data, self.group)
            return self._conv_nhwc(dy, q, flipped, self.kernel, (1, 1), self.dilation, in_hw, self.channels)[0]
        n = dy.shape[0]
        h, w = in_hw
        oh, ow = out_hw
        o, cg = self.num_output, self.channels // self.group
        og = o // self.group
        wcols = _conv_weights.columns(self.weight.data, self.group)
        dxpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, self.channels), dtype=dy.dtype)
        groups = self._groups(self.channels)

        def chunk(n0, n1):
            dymat = dy[n0:n1].reshape((n1 - n0) * oh * ow, o)
            for gi, channels in enumerate(groups):
                dcols = dymat[:, gi * og:(gi + 1) * og] @ wcols[gi].T
                _im2col.col2im_add(dcols, dxpad[n0:n1], self.kernel, self.stride, self.dilation, out_hw, channels)

        _threads.run_chunks(xp, chunk, self._chunks(xp, n, oh * ow * kh * kw * cg, oh * ow, cg))
        return dxpad[:, ph:ph + h, pw:pw + w]

    def flops(self, bottom_shapes, top_shapes):
        n, o, oh, ow = top_shapes[0]
        return 2 * n * o * oh * ow * (self.channels // self.group) * self.kernel[0] * self.kernel[1]
