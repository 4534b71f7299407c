"""sync_batch_norm: BatchNorm layers of a data-parallel net compute the global batch's statistics.

Without it each rank normalises by its own B/N samples and folds them into its own
running blobs (lr_mult 0, so no gradient bucket carries them): the ranks drift apart,
only rank 0's statistics are saved and evaluation mixes N models. With it, each
BatchNorm sums its per-channel sums over the ranks (two small allreduces in forward,
one in backward) on a communicator of its own, so these blocking calls never
interleave with the gradient buckets' transfers in flight on the engine's.
"""


def sync_batch_norm(net, comm):
    """Point every TRAIN BatchNorm of ``net`` at a sum over ``comm``'s ranks; returns the sub-communicator."""
    layers = [layer for layer in net.layers if layer.type == "BatchNorm"]
    if not layers or comm.size == 1:
        return None
    sub = comm.dup()

    def cross_rank_sum(array):
        return sub.allreduce(array, verify=False)

    for layer in layers:
        layer.cross_rank_sum = cross_rank_sum
    return sub
