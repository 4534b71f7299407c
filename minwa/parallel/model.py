"""ModelDataParallel: conv layers data parallel, InnerProduct layers split by neurons (Deep Image §3.2).

Every rank keeps all weights of the non-FC layers and 1/N of each mini-batch there;
their gradients go through ``DataParallel`` (butterfly, lazy update, fp16/int8,
sharded update: the same options). Every InnerProduct layer (unless ``shard: false``)
becomes a ``ShardedInnerProduct`` holding O/N of its output neurons: its gathers live
inside its forward/backward (see that module for the scheme and the byte formula),
its weight shards need no gradient exchange and are updated by this engine as soon as
their layer's backward is done. Dropout layers between sharded layers draw the mask
of the whole (B, O) blob and keep their columns, so results equal one process.

Checkpoints hold whole layers: ``whole_params()`` and ``solver_state()`` gather the
shards (collective), ``load_whole_params`` / ``load_solver_state`` cut them again, so
a run resumes on any number of ranks in either mode.
"""
import numpy

from .. import backend
from ..comm import get_world
from ..errors import ConfigError
from ..layers.sharded_inner_product import ShardedInnerProduct
from .data import DataParallel
from .shard_plan import ShardPlan, check_shard_options


class _FeatureShardedRandom:
    """A Dropout generator for a feature-split blob: draws the whole (B, O) mask, keeps columns lo:hi."""

    def __init__(self, generator, width, bounds, rank):
        self.generator, self.width = generator, width
        self.lo, self.hi = bounds[rank]

    def random(self, size=None, dtype=numpy.float64, **kwargs):
        shape = (size,) if isinstance(size, int) else tuple(size)
        draws = self.generator.random(shape[:-1] + (self.width,), dtype=dtype, **kwargs)
        return draws[..., self.lo:self.hi]

    def __getattr__(self, name):
        return getattr(self.generator, name)


def shard_net(net, comm, plan=None):
    """Replace the planned InnerProduct layers of ``net`` by sharded ones (weights still whole); returns the plan."""
    check_shard_options(net.layers)
    plan = plan if plan is not None else ShardPlan(net.layers, comm.size)
    for index in plan.indices:
        entry = plan.entries[index]
        upstream = net.layers[entry.upstream] if entry.upstream is not None else None
        net.layers[index] = ShardedInnerProduct(net.layers[index], comm, entry.bounds, entry.input, entry.output,
                                                upstream)
    return plan


class ModelDataParallel:
    """Model-data parallel SGD: the engine interface of ``DataParallel`` plus whole-layer checkpoints."""

    def __init__(self, net, solver, comm=None, timeline=None, **options):
        comm = comm if comm is not None else get_world()
        if comm.size < 2:
            raise ConfigError("parallel.mode 'model-data' needs more than one rank (start with mpiexec -n N, N >= 2)")
        if solver.cfg.get("clip_gradients", -1.0) >= 0:
            raise ConfigError("parallel.mode 'model-data': solver.clip_gradients needs the norm of the whole "
                              "gradient, which no rank holds when FC layers are sharded; turn one of them off")
        self.net, self.solver, self.comm = net, solver, comm
        self.rank, self.size = comm.rank, comm.size
        self.layer_comm = comm.dup()  # the layers' gathers never match the gradient exchange's messages
        self.plan = shard_net(net, self.layer_comm)
        if not self.plan.entries:
            raise ConfigError("parallel.mode 'model-data': the net has no InnerProduct layer to shard "
                              "(use mode: data)")
        self.sharded_layers = [net.layers[i] for i in self.plan.indices]
        # broadcasts rank 0's whole weights, agrees on the net, and skips the sharded layers' parameters
        self.dp = DataParallel(net, solver, comm, timeline=timeline, **options)
        self._layer_of = {}
        for layer in self.sharded_layers:
            layer.shard_params()
            for p in layer.params:
                self._layer_of[p.name] = layer
        self._shard_dropouts(net)
        self.state = {p.name: solver.rule.init_state(p.data) for layer in self.sharded_layers for p in layer.params
                      if p.lr_mult != 0}
        self._hook = self._after_backward
        net.after_backward.append(self._hook)
        self._expected = 0

    def _shard_dropouts(self, net):
        for index, (width, bounds) in self.plan.feature_dropouts.items():
            layer = net.layers[index]
            generator = getattr(layer.rng, "generator", layer.rng)
            if generator is not None:
                layer.rng = _FeatureShardedRandom(generator, width, bounds, self.rank)

    def shard_test_net(self, test_net):
        """Shard a TEST net the same way (call before sharing the TRAIN net's parameters with it)."""
        plan = shard_net(test_net, self.layer_comm)
        test_net.collective_forward = True  # evaluate() runs it even on a rank whose share of a batch is empty
        return plan

    # -- the sharded layers' updates ---------------------------------------------------------
    def _after_backward(self, index, layer):
        if not getattr(layer, "sharded", False):
            return
        solver = self.solver
        lr = solver.learning_rate(solver.iter)
        for p in layer.params:
            if p.lr_mult == 0 or p.grad is None:
                continue
            solver.rule.apply(p.data, p.grad, self.state[p.name], lr, p.lr_mult, p.decay_mult, solver.iter)

    # -- the engine interface -------------------------------------------------------------------
    def forward(self, feed):
        return self.dp.forward(feed)

    def backward_and_update(self):
        counts = self.sharded_layers[0].row_counts()
        self._expected += sum(layer.bytes_per_step(counts) for layer in self.sharded_layers)
        self.dp.backward_and_update()

    def step(self, feed):
        outputs = self.forward(feed)
        self.backward_and_update()
        return outputs

    def skip_update(self):
        self.dp.skip_update()

    def finish(self):
        self.dp.finish()

    def close(self):
        self.dp.close()
        if self._hook in self.net.after_backward:
            self.net.after_backward.remove(self._hook)

    # -- whole layers (checkpoints) ------------------------------------------------------------------
    def _gather(self, layer, name, shard):
        parts = self.comm.allgather([numpy.array(backend.to_host(shard))])  # a list: shards may differ in shape
        return numpy.concatenate([part[0] for part in parts], axis=layer.shard_axis(name))

    def whole_params(self, gather=True):
        """{name: whole host array} of every parameter (collective). ``gather=False``: zeros of the whole shapes
        for the sharded ones, to load a checkpoint into before ``load_whole_params``."""
        out = {}
        for p in self.net.params:
            layer = self._layer_of.get(p.name)
            if layer is None:
                out[p.name] = p.data
            elif gather:
                out[p.name] = self._gather(layer, p.name, p.data)
            else:
                out[p.name] = numpy.zeros(p.shape, dtype=p.data.dtype)
        return out

    def load_whole_params(self, whole):
        """Take this rank's slices of the sharded parameters from ``{name: whole array}``."""
        for name, layer in self._layer_of.items():
            param = next(p for p in layer.params if p.name == name)
            param.data[...] = backend.to_device(numpy.ascontiguousarray(layer.slice_of(name, whole[name])))

    def solver_state(self):
        """``Solver.state_dict()`` of the whole net, shards gathered (collective)."""
        state = self.dp.solver_state()
        state = {"iter": state["iter"], "state": dict(state["state"])}
        for name in sorted(self.state):
            layer = self._layer_of[name]
            state["state"][name] = {k: self._gather(layer, name, v) for k, v in sorted(self.state[name].items())}
        return state

    def load_solver_state(self, saved):
        """Restore a whole-net solver state (from either mode): this rank keeps its slices of the FC state."""
        rest = {name: slots for name, slots in saved.get("state", {}).items() if name not in self._layer_of}
        for name, slots in saved.get("state", {}).items():
            if name in self.state:
                layer = self._layer_of[name]
                for key, whole in slots.items():
                    if key in self.state[name]:
                        piece = numpy.ascontiguousarray(layer.slice_of(name, numpy.asarray(whole)))
                        self.state[name][key][...] = backend.to_device(piece)
        self.dp.load_solver_state({"iter": saved["iter"], "state": rest})

    # -- what happened -----------------------------------------------------------------------------------
    def fc_memory(self):
        """Bytes of FC weights, gradients and solver state: (on this rank, of the whole layers)."""
        slots = 2 + len(self.solver.rule.state_names)
        mine = whole = 0
        for layer in self.sharded_layers:
            for p in layer.params:
                item = p.data.dtype.itemsize
                whole += slots * p.size * item
                mine += p.data.nbytes + p.data.nbytes + sum(v.nbytes for v in self.state.get(p.name, {}).values())
        return mine, whole

    def stats(self):
        """DataParallel's totals plus the sharded layers' formula bytes and the FC memory per rank."""
        out = self.dp.stats()
        mine, whole = self.fc_memory()
        steps = max(out["steps"], 1)
        out.update({"mode": "model-data", "sharded_layers": [layer.name for layer in self.sharded_layers],
                    "fc_bytes_per_rank": mine, "fc_bytes_whole": whole,
                    "fc_comm_bytes_per_step": self._expected / steps,
                    "conv_gradient_bytes": self.dp.gradient_bytes})
        return out

    def metrics(self):
        out = self.dp.metrics()
        if out:
            out["comm_bound_bytes_per_step"] += self._expected / max(self.dp.steps, 1)
        return out

    def __repr__(self):
        names = [layer.name for layer in self.sharded_layers]
        return f"ModelDataParallel({self.size} ranks, sharded {names}, {self.dp})"


__all__ = ["ModelDataParallel", "shard_net"]
