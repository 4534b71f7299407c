"""Evaluation: run a TEST net over batches and average its scalar outputs over all samples and ranks."""
import numpy

from . import backend


def share_params(source_net, target_net):
    """Point ``target_net``'s parameters at ``source_net``'s arrays (Caffe shares TRAIN/TEST weights by name)."""
    by_name = {p.name: p for p in source_net.params}
    for param in target_net.params:
        if param.name not in by_name:
            raise KeyError(f"TEST net parameter {param.name!r} has no TRAIN counterpart")
        param.data = by_name[param.name].data


def evaluate(net, batches, steps, allreduce_sum=None, input_names=("data", "label")):
    """Mean of each scalar output over ``steps`` batches, weighted by batch size and summed across ranks.

    ``allreduce_sum`` sums a float64 vector over ranks (None on one process).
    """
    names, totals, count = None, None, 0.0
    for _ in range(steps):
        x, y = next(batches)
        outputs = net.forward(dict(zip(input_names, (x, y))))
        scalars = {k: v for k, v in outputs.items() if getattr(v, "ndim", 1) == 0}
        if names is None:
            names = sorted(scalars)
            totals = numpy.zeros(len(names))
        batch = int(x.shape[0])
        totals += batch * numpy.array([float(backend.to_host(scalars[k])) for k in names])
        count += batch
    if names is None:
        return {}
    vector = numpy.concatenate([totals, [count]])
    if allreduce_sum is not None:
        vector = allreduce_sum(vector)
    return {k: vector[i] / max(vector[-1], 1.0) for i, k in enumerate(names)}
