"""BatchNorm: normalise each channel by its mean and variance (Caffe's BatchNorm).

TRAIN uses the batch statistics over (N, H, W) and folds them into three running
blobs, as Caffe does: mean sum, variance sum (unbiased, m / (m - 1)) and their
common scale factor, each decayed by moving_average_fraction.  TEST (or
``use_global_stats: true``) divides those sums by the scale factor.  The blobs are
Params with lr_mult 0 and decay_mult 0, so the solver leaves them alone and
checkpoints carry them; they are updated in place during forward.  Caffe's
BatchNorm has no affine part: follow it with a Scale layer (bias_term: true).

Under data parallelism the engine sets ``cross_rank_sum`` (an array sum over the
ranks): TRAIN statistics, the running blobs and backward's two channel means are
then those of the global batch, so N ranks compute what one process would.
"""
from ..backend import xp_of
from ._util import boolean, count, number, shape_error
from .layer import Layer
from .registry import register

_ZERO = {"type": "constant", "value": 0.0}


@register
class BatchNorm(Layer):
    type = "BatchNorm"
    #: set by a data-parallel engine: sums an array over every rank (None: this rank's batch only)
    cross_rank_sum = None

    def setup(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) < 2:
            raise shape_error(self, f"expects (N, C, ...) input, got shape {shape}")
        for index, ps in enumerate(self.param_specs[:3]):
            if float(ps.get("lr_mult", 0)) != 0:
                raise self.error("its blobs are running statistics, not learnable: lr_mult must be 0",
                                 f"param[{index}].lr_mult")
        default_global = self.phase == "TEST"
        self.use_global_stats = boolean(self, "use_global_stats", default_global)
        self.fraction = number(self, "moving_average_fraction", 0.999, minimum=0.0)
        self.eps = number(self, "eps", 1e-5, above=0.0)
        c = shape[1]
        self.channels = c
        self.mean = self.add_param("mean", (c,), _ZERO, 0.0, 0.0)
        self.variance = self.add_param("variance", (c,), _ZERO, 0.0, 0.0)
        self.scale_factor = self.add_param("scale_factor", (1,), _ZERO, 0.0, 0.0)
        for p in self.params:
            p.lr_mult, p.decay_mult = 0.0, 0.0
        return [shape]

    def forward(self, bottoms):
        x = bottoms[0]
        xp = xp_of(x)
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise shape_error(self, f"input {tuple(x.shape)} does not have {self.channels} channels on axis 1")
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, self.channels) + (1,) * (x.ndim - 2)
        t = x.dtype.type
        if self.use_global_stats:
            factor = float(self.scale_factor.data[0])
            factor = 0.0 if factor == 0 else 1.0 / factor
            mean = self.mean.data * t(factor)
            var = self.variance.data * t(factor)
        else:
            mean, centred, var, m = self._batch_statistics(x, xp, axes, bshape)
            unbias = m / (m - 1) if m > 1 else 1.0
            # the running sums, updated in place so views held by the solver or comm stay valid
            self.scale_factor.data *= t(self.fraction)
            self.scale_factor.data += t(1)
            self.mean.data *= t(self.fraction)
            self.mean.data += mean.astype(self.mean.data.dtype, copy=False)
            self.variance.data *= t(self.fraction)
            self.variance.data += (var * t(unbias)).astype(self.variance.data.dtype, copy=False)
        inv_std = 1 / xp.sqrt(var + t(self.eps))
        if self.use_global_stats:
            y = (x - mean.reshape(bshape)) * inv_std.reshape(bshape)
        else:
            y = centred * inv_std.reshape(bshape)
        self._y, self._inv_std, self._axes, self._bshape = y, inv_std, axes, bshape
        self._global = self.use_global_stats
        return [y]

    def _batch_statistics(self, x, xp, axes, bshape):
        """Channel mean, centred input, biased variance and count: of this rank's batch, or the global one."""
        t = x.dtype.type
        total = self.cross_rank_sum
        m = x.size // self.channels
        if total is None:
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(bshape)
            return mean, centred, (centred * centred).mean(axis=axes), m
        sums = total(xp.concatenate([x.sum(axis=axes), xp.asarray([m], dtype=x.dtype)]))
        m = int(round(float(sums[-1])))
        mean = sums[:-1] / t(m)
        centred = x - mean.reshape(bshape)
        self._count = m
        return mean, centred, total((centred * centred).sum(axis=axes)) / t(m), m

    def backward(self, top_grads, propagate_down):
        dy = top_grads[0]
        xp = xp_of(self._y)
        for p in self.params:
            p.grad = xp.zeros(p.shape, dtype=p.data.dtype)
        if not propagate_down[0] or dy is None:
            return [None]
        inv_std = self._inv_std.reshape(self._bshape)
        if self._global:
            return [dy * inv_std]
        y, axes = self._y, self._axes
        t = y.dtype.type
        sums = xp.concatenate([dy.sum(axis=axes), (dy * y).sum(axis=axes)])
        if self.cross_rank_sum is None:
            m = count(y.shape) // self.channels
        else:
            sums, m = self.cross_rank_sum(sums), self._count
        mean_dy = sums[:self.channels].reshape(self._bshape) / t(m)
        mean_dy_y = sums[self.channels:].reshape(self._bshape) / t(m)
        return [(dy - mean_dy - y * mean_dy_y) * inv_std]
