"""Evaluation: run a TEST net over batches and average its scalar outputs over all samples and ranks."""
import numpy

from .. import backend


def share_params(source_net, target_net):
    """Point ``target_net``'s parameters at ``source_net``'s arrays (Caffe shares TRAIN/TEST weights by name)."""
    by_name = {p.name: p for p in source_net.params}
    for param in target_net.params:
        if param.name not in by_name:
            raise KeyError(f"TEST net parameter {param.name!r} has no TRAIN counterpart")
        param.data = by_name[param.name].data


def evaluate(net, batches, steps, allreduce_sum=None, input_names=("data", "label")):
    """Mean of each scalar output over ``steps`` batches, weighted by batch size and summed across ranks.

    ``allreduce_sum`` sums a float64 vector over ranks (None on one process); every rank calls it
    exactly once, even one whose share of the test set is empty.
    """
    names = sorted(n for n in net.output_names if net.blob_shapes[n] == ())
    totals = numpy.zeros(len(names) + 1)
    for _ in range(steps):
        x, y = next(batches)
        batch = int(x.shape[0])
        if batch == 0:  # a rank's share of a short last test batch can be empty
            if getattr(net, "collective_forward", False):  # model-data: FC shards must still meet the other ranks
                xp = backend.xp_of(x)
                net.forward(dict(zip(input_names, (xp.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype),
                                                   xp.zeros((1,) + tuple(y.shape[1:]), dtype=y.dtype)))))
            continue
        outputs = net.forward(dict(zip(input_names, (x, y))))
        totals[:-1] += batch * numpy.array([float(backend.to_host(outputs[k])) for k in names])
        totals[-1] += batch
    if allreduce_sum is not None:
        totals = allreduce_sum(totals)
    return {k: totals[i] / max(totals[-1], 1.0) for i, k in enumerate(names)}
