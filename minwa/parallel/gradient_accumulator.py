"""GradientAccumulator: Caffe's ``iter_size``, one solver step from the gradients of several batches.

Caffe's Solver::Step runs forward and backward on ``iter_size`` batches, summing the
parameter diffs, then divides them by ``iter_size`` (Normalize) and updates once;
the loss it reports is the mean of the batches' losses. Here the first
``iter_size - 1`` backward passes run with the net's hooks detached (no gradient
leaves the rank) and their gradients are summed into a stash; during the last
backward pass a hook placed before the engine's adds the stash to each layer's
gradients and divides by ``iter_size``, so the engine (one process or data parallel)
sees ordinary, already averaged gradients and communicates once per step.

Caffe clips (``clip_gradients``) the summed diffs before dividing; ``Solver.clip_scale``
gets the same result from the averaged ones by comparing with clip_gradients / iter_size.
"""
import numpy

from .. import backend


class GradientAccumulator:
    """Runs the ``iter_size`` forward passes of one step; the engine's update then uses their mean gradient."""

    def __init__(self, net, engine, iter_size=1):
        self.net, self.engine = net, engine
        self.iter_size = int(iter_size)
        self._stash = {}
        self._armed = False
        if self.iter_size > 1:
            net.after_backward.insert(0, self._add_stash)  # before the engine's hook packs the gradients

    def forward(self, next_feed):
        """Forward ``iter_size`` feeds (``next_feed()`` gives each); all but the last also run backward.

        Returns the last pass's outputs with every scalar output averaged over the passes;
        ``net.loss`` is the mean loss, as Caffe reports it.
        """
        if self.iter_size == 1:
            return self.engine.forward(next_feed())
        self._stash, self._armed = {}, False
        loss, sums = 0.0, {}
        for index in range(self.iter_size):
            # the engine starts the step (waits for last step's updates, opens its timeline span) once;
            # the later batches run through the net itself, whose hooks still run
            forward = self.engine.forward if index == 0 else self.net.forward
            outputs = forward(next_feed())
            loss += self.net.loss
            for name, value in outputs.items():
                if getattr(value, "ndim", 1) == 0:
                    sums[name] = sums.get(name, 0.0) + float(backend.to_host(value))
            if index < self.iter_size - 1:
                self._backward_into_stash()
        self.net.loss = loss / self.iter_size
        self._armed = True  # the engine's backward now adds the stash
        return {**outputs, **{name: numpy.asarray(total / self.iter_size) for name, total in sums.items()}}

    def _backward_into_stash(self):
        hooks, self.net.after_backward = self.net.after_backward, []
        try:
            self.net.backward()
        finally:
            self.net.after_backward = hooks
        for p in self.net.params:
            if p.grad is None:
                continue
            if p.name in self._stash:
                self._stash[p.name] += p.grad
            else:
                self._stash[p.name] = p.grad.copy()

    def _add_stash(self, index, layer):
        if not self._armed:
            return
        for p in layer.params:
            if p.grad is None:
                continue
            total = p.grad + self._stash[p.name] if p.name in self._stash else p.grad
            p.grad = total * p.grad.dtype.type(1.0 / self.iter_size)

    def close(self):
        """Detach the hook."""
        if self._add_stash in self.net.after_backward:
            self.net.after_backward.remove(self._add_stash)
