"""ShardedInnerProduct: an InnerProduct whose output neurons are split over the ranks (model-data mode).

Rank k of N holds rows ``out_bounds[k]`` of the weight (O_k of the O outputs) and the
matching bias entries; no rank holds or exchanges a whole weight matrix, and the
weight shards need no gradient reduction. The layer is handed a communicator by
the parallel engine (``minwa.parallel.model``); it never imports MPI itself.

The scheme (column-parallel, as Krizhevsky's "one weird trick"): every sharded layer
needs the whole input X (B x I, B the global batch) and computes its O_k outputs for
all B samples. The input arrives in one of two layouts:

- ``batch``: this rank's b_k samples with all I features (after the conv layers);
  forward allgathers the rows, backward reduce-scatters dX by rows;
- ``feature``: all B samples with this rank's I_k features (the output of the previous
  sharded layer, through ReLU/Dropout); forward allgathers the columns, backward
  reduce-scatters dX by columns.

The last sharded layer before a non-FC consumer (the loss, accuracy) gives its output
back in batch layout, b_k samples x all O classes, by one all-to-all (and the reverse
all-to-all of the gradient in backward). So SoftmaxWithLoss and Accuracy run unchanged
on whole logits of this rank's samples: the classes are gathered, not reduced with a
cross-rank max/sum-exp, because the logits are small (B x O, O = 1000 for ImageNet,
against B x 6144 activations per hidden layer), and every normalisation and ignore
rule of the loss stays exactly Caffe's.

**Bytes each rank k sends per step**, in elements (times the item size), with
|x_k| = b_k * I (batch input) or B * I_k (feature input):

- forward, allgather of the input:             (N - 1) * |x_k|
- backward, reduce-scatter of dX:              B * I - |x_k|       (none when dX is not needed)
- batch output only, forward all-to-all:       (B - b_k) * O_k
- batch output only, backward all-to-all:      b_k * (O - O_k)

With even splits an FC layer costs 2 (N-1)/N * B * I per rank and step (plus
2 (N-1)/N^2 * B * O for the last one), growing with the global batch B = N b while
data parallelism sends 2 (N-1)/N of the weights, I * O, whatever N.

Weight gradients are computed over the global batch from per-rank losses, so they
are N times the rank-average the data-parallel ranks exchange; ``grad_scale``
(1/N, set by the engine) makes them equal.
"""
from ..backend import xp_of
from ._util import count, shape_error
from .layer import Layer

_FORWARD, _BACKWARD, _TO_BATCH, _FROM_BATCH = range(4)


class ShardedInnerProduct(Layer):
    type = "InnerProduct"
    sharded = True

    def __init__(self, layer, comm, out_bounds, input="batch", output="batch", upstream=None):
        """Take over a built InnerProduct ``layer`` (spec, params, shapes, backward plan) and shard it.

        ``out_bounds``: (start, stop) of each rank's outputs; ``input``/``output``: "batch" or
        "feature"; ``upstream``: the sharded layer whose feature-split output this one reads.
        """
        vars(self).update(vars(layer))
        if input not in ("batch", "feature") or output not in ("batch", "feature"):
            raise ValueError(f"layer {self.name!r}: layouts are 'batch' or 'feature', got {input!r}, {output!r}")
        if input == "feature" and upstream is None:
            raise ValueError(f"layer {self.name!r}: a feature-split input needs its upstream sharded layer")
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.out_bounds = [tuple(b) for b in out_bounds]
        self.input, self.output, self.upstream = input, output, upstream
        self.grad_scale = 1.0 / self.size
        self.whole_output = self.num_output
        self._counts = None
        self._tag = 4 * int(getattr(layer, "index", 0))

    # -- shards ---------------------------------------------------------------------------
    @property
    def part(self):
        return self.out_bounds[self.rank]

    @property
    def in_bounds(self):
        """The feature bounds of a feature-split input (the upstream layer's output bounds)."""
        return self.upstream.out_bounds if self.input == "feature" else None

    def shard_params(self):
        """Keep only this rank's slice of the (whole, already identical) weight and bias."""
        lo, hi = self.part
        w = self.weight.data
        self.weight.data = (w[:, lo:hi] if self.transpose else w[lo:hi]).copy()
        self.weight.grad = None
        if self.bias is not None:
            self.bias.data = self.bias.data[lo:hi].copy()
            self.bias.grad = None

    def slice_of(self, param_name, whole):
        """This rank's part of a whole array of parameter ``param_name`` (weight or bias)."""
        lo, hi = self.part
        if param_name == self.weight.name and self.transpose:
            return whole[:, lo:hi]
        return whole[lo:hi]

    def shard_axis(self, param_name):
        return 1 if param_name == self.weight.name and self.transpose else 0

    def row_counts(self):
        """Samples per rank of the current batch (exchanged by the first sharded layer of the chain)."""
        return self._counts if self.input == "batch" else self.upstream.row_counts()

    # -- point-to-point exchange -------------------------------------------------------------
    def _exchange(self, sends, recvs, phase):
        """Post every receive, then every send ({rank: array}); wait for all of them."""
        tag = self._tag + phase
        handles = [self.comm.irecv(buf, j, tag) for j, buf in recvs.items()]
        handles += [self.comm.isend(buf, j, tag) for j, buf in sends.items()]
        for handle in handles:
            handle.wait()

    def _others(self):
        return [j for j in range(self.size) if j != self.rank]

    def _row_offsets(self, counts):
        offsets, start = [], 0
        for c in counts:
            offsets.append((start, start + c))
            start += c
        return offsets

    def _gather_rows(self, x2, counts):
        xp = xp_of(x2)
        rows = self._row_offsets(counts)
        out = xp.empty((rows[-1][1], x2.shape[1]), dtype=x2.dtype)
        a, b = rows[self.rank]
        out[a:b] = x2
        mine = xp.ascontiguousarray(x2)
        self._exchange({j: mine for j in self._others()}, {j: out[rows[j][0]:rows[j][1]] for j in self._others()},
                       _FORWARD)
        return out

    def _gather_cols(self, x2):
        xp = xp_of(x2)
        bounds = self.in_bounds
        out = xp.empty((x2.shape[0], bounds[-1][1]), dtype=x2.dtype)
        recvs = {j: xp.empty((x2.shape[0], bounds[j][1] - bounds[j][0]), dtype=x2.dtype) for j in self._others()}
        mine = xp.ascontiguousarray(x2)
        self._exchange({j: mine for j in self._others()}, recvs, _FORWARD)
        lo, hi = bounds[self.rank]
        out[:, lo:hi] = x2
        for j, buf in recvs.items():
            out[:, bounds[j][0]:bounds[j][1]] = buf
        return out

    def _reduce_scatter(self, full, blocks):
        """Sum over ranks of ``full``'s block k, on rank k; ``blocks(j)`` slices block j out of an array."""
        xp = xp_of(full)
        sends = {j: xp.ascontiguousarray(blocks(full, j)) for j in self._others()}
        mine = blocks(full, self.rank)
        recvs = {j: xp.empty(mine.shape, dtype=full.dtype) for j in self._others()}
        self._exchange(sends, recvs, _BACKWARD)
        total = None
        for j in range(self.size):  # rank order: every rank sums its block the same way
            part = mine if j == self.rank else recvs[j]
            total = part.copy() if total is None else total + part
        return total

    # -- the layer contract -------------------------------------------------------------------
    def forward(self, bottoms):
        x = bottoms[0]
        xp = xp_of(x)
        rows = int(x.shape[0])
        x2 = x.reshape(rows, count(x.shape, 1))
        if self.input == "batch":
            if x2.shape[1] != self.k:
                raise shape_error(self, f"input {tuple(x.shape)} has {x2.shape[1]} features; the weights "
                                        f"expect {self.k}")
            self._counts = [int(c) for c in self.comm.allgather(rows)]
            X = self._gather_rows(x2, self._counts)
        else:
            lo, hi = self.in_bounds[self.rank]
            if x2.shape[1] != hi - lo:
                raise shape_error(self, f"input {tuple(x.shape)} has {x2.shape[1]} features; this rank's "
                                        f"slice of the upstream layer has {hi - lo}")
            X = self._gather_cols(x2)
        w = self.weight.data
        y = X @ w if self.transpose else X @ w.T
        if self.bias is not None:
            y += self.bias.data
        self._X = X
        if self.output == "batch":
            y = self._to_batch(xp, y)
        return [y]

    def _to_batch(self, xp, y):
        """(B, O_k) on every rank -> (b_k, O) of this rank's samples (all-to-all)."""
        rows = self._row_offsets(self.row_counts())
        a, b = rows[self.rank]
        out = xp.empty((b - a, self.whole_output), dtype=y.dtype)
        recvs = {j: xp.empty((b - a, self.out_bounds[j][1] - self.out_bounds[j][0]), dtype=y.dtype)
                 for j in self._others()}
        self._exchange({j: y[rows[j][0]:rows[j][1]] for j in self._others()}, recvs, _TO_BATCH)
        lo, hi = self.part
        out[:, lo:hi] = y[a:b]
        for j, buf in recvs.items():
            out[:, self.out_bounds[j][0]:self.out_bounds[j][1]] = buf
        return out

    def _from_batch(self, xp, dy):
        """(b_k, O) gradient of this rank's samples -> (B, O_k) of this rank's outputs (all-to-all)."""
        rows = self._row_offsets(self.row_counts())
        lo, hi = self.part
        out = xp.empty((rows[-1][1], hi - lo), dtype=dy.dtype)
        a, b = rows[self.rank]
        out[a:b] = dy[:, lo:hi]
        sends = {j: xp.ascontiguousarray(dy[:, self.out_bounds[j][0]:self.out_bounds[j][1]]) for j in self._others()}
        self._exchange(sends, {j: out[rows[j][0]:rows[j][1]] for j in self._others()}, _FROM_BATCH)
        return out

    def backward(self, top_grads, propagate_down):
        X = self._X
        xp = xp_of(X)
        lo, hi = self.part
        dy = top_grads[0]
        if self.output == "batch":
            rows = self.row_counts()[self.rank]
            dy = xp.zeros((rows, self.whole_output), dtype=X.dtype) if dy is None else dy.reshape(rows, -1)
            dy = self._from_batch(xp, dy)
        elif dy is None:
            dy = xp.zeros((X.shape[0], hi - lo), dtype=X.dtype)
        scale = X.dtype.type(self.grad_scale)
        self.weight.grad = (X.T @ dy if self.transpose else dy.T @ X) * scale
        if self.bias is not None:
            self.bias.grad = dy.sum(axis=0) * scale
        if not propagate_down[0]:
            return [None]
        w = self.weight.data
        dX = dy @ w.T if self.transpose else dy @ w
        if self.input == "batch":
            rows = self._row_offsets(self.row_counts())
            dx = self._reduce_scatter(dX, lambda a, j: a[rows[j][0]:rows[j][1]])
        else:
            bounds = self.in_bounds
            dx = self._reduce_scatter(dX, lambda a, j: a[:, bounds[j][0]:bounds[j][1]])
        return [dx.reshape(self._bottom_shape(dx))]

    def _bottom_shape(self, dx):
        shape = tuple(self.bottom_shapes[0])
        return (dx.shape[0],) + shape[1:] if self.input == "batch" else dx.shape

    # -- accounting -------------------------------------------------------------------------------
    def bytes_per_step(self, counts, backward=True):
        """The docstring's formula: bytes this rank sends in one forward (+ backward) at these row counts."""
        n, k = self.size, self.rank
        B, b = sum(counts), counts[k]
        item = self.weight.data.dtype.itemsize
        if self.input == "batch":
            whole, mine = B * self.k, b * self.k
        else:
            lo, hi = self.in_bounds[k]
            whole, mine = B * self.k, B * (hi - lo)
        total = (n - 1) * mine
        if backward and self.propagate_down[0]:
            total += whole - mine
        if self.output == "batch":
            lo, hi = self.part
            total += (B - b) * (hi - lo)
            if backward:
                total += b * (self.whole_output - (hi - lo))
        return total * item

    def __repr__(self):
        lo, hi = self.part
        return (f"ShardedInnerProduct({self.name!r}, outputs {lo}:{hi} of {self.whole_output}, "
                f"{self.input}->{self.output})")
