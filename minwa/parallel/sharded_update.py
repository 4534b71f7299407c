"""Sharded data parallelism: rank k holds solver state for, and updates, only part k of each gradient bucket.

A bucket's gradients are reduce-scattered, rank k applies the solver's pure update
rule to its flat slice (momentum kept for that part only) and the ranks allgather
the new weights. For checkpoints the parts of the solver state are gathered into
whole parameters, and a whole state is cut back into this rank's parts.
"""
import numpy

from .. import backend


def init_shard(bucket, strategy, solver, dtype, xp):
    """Give ``bucket`` its flat weights, this rank's part, that part's lr/decay multipliers and solver state."""
    bucket.weights = xp.zeros(bucket.size, dtype=dtype)
    bucket.part = strategy.own_part(bucket.size)
    a, b = bucket.part
    lr_mult = numpy.empty(bucket.size, dtype=dtype)
    decay_mult = numpy.empty(bucket.size, dtype=dtype)
    for p, (s, e) in zip(bucket.params, bucket.spans):
        lr_mult[s:e], decay_mult[s:e] = p.lr_mult, p.decay_mult
    bucket.lr_mult = backend.to_device(lr_mult[a:b])
    bucket.decay_mult = backend.to_device(decay_mult[a:b])
    bucket.state = solver.rule.init_state(bucket.weights[a:b])


def sharded_stages(bucket, strategy, solver):
    """Handle stages: reduce-scatter the gradients, update this rank's part, allgather the weights."""
    scatter = strategy.reduce_scatter_async(bucket.grad, key=bucket.index)
    yield [scatter]
    scatter.wait()
    a, b = bucket.part
    if b > a:
        solver.rule.apply(bucket.weights[a:b], bucket.grad[a:b], bucket.state, bucket.lr,
                          bucket.lr_mult, bucket.decay_mult, bucket.it)
    gather = strategy.allgather_async(bucket.weights, key=bucket.index)
    yield [gather]
    gather.wait()


def gather_whole_state(buckets, comm):
    """Every rank's parts of the solver state as whole parameters: {param name: {slot: array}} (collective)."""
    state = {}
    for bucket in buckets:
        mine = {k: backend.to_host(v) for k, v in bucket.state.items()}
        parts = comm.allgather(mine)
        for key in sorted(mine):
            flat = numpy.concatenate([part[key] for part in parts])
            for p, (s, e) in zip(bucket.params, bucket.spans):
                state.setdefault(p.name, {})[key] = numpy.array(flat[s:e].reshape(p.shape))
    return state


def load_part_states(buckets, solver):
    """Take this rank's parts of any whole-parameter state the solver holds, then drop it."""
    for bucket in buckets:
        a, b = bucket.part
        for key, part in bucket.state.items():
            for p, (s, e) in zip(bucket.params, bucket.spans):
                whole = solver.state.get(p.name, {}).get(key)
                lo, hi = max(s, a), min(e, b)
                if whole is not None and hi > lo:
                    part[lo - a:hi - a] = backend.to_device(whole).reshape(-1)[lo - s:hi - s]
    solver.state = {}
