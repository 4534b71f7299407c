"""GradientBucket: the unit DataParallel exchanges, one flat buffer for a run of whole layers.

``make_buckets`` packs a net's trained layers into buckets, last layer first (the
order backward finishes them), so a bucket can go out as soon as its layers are done.
"""
import numpy


class GradientBucket:
    """A flat buffer holding the gradients (and, sharded, the weights) of a run of consecutive layers."""

    def __init__(self, index, layers, params, dtype, xp):
        self.index = index
        self.layers = set(layers)
        self.params = params
        self.spans = []
        start = 0
        for p in params:
            self.spans.append((start, start + p.size))
            start += p.size
        self.size = start
        self.grad = xp.zeros(self.size, dtype=dtype)
        self.nbytes = self.grad.nbytes
        self.handle = None
        self.launched = False  # started this step
        self.ready = set()
        self.lr = self.it = None
        self.started = None
        self.has_grad = [True] * len(params)
        # sharded mode only
        self.weights = None
        self.part = (0, 0)
        self.lr_mult = self.decay_mult = None
        self.state = None

    def views(self, flat):
        for p, (a, b) in zip(self.params, self.spans):
            yield p, flat[a:b].reshape(p.shape)

    def names(self):
        return ", ".join(p.name for p in self.params)


def make_buckets(net, bucket_bytes, xp):
    """Whole layers, last layer first, into buckets of about ``bucket_bytes``."""
    buckets, layers, params, nbytes = [], [], [], 0
    itemsize = numpy.dtype(net.dtype).itemsize

    def close():
        if params:
            buckets.append(GradientBucket(len(buckets), layers, list(params), net.dtype, xp))

    for index in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[index]
        if getattr(layer, "sharded", False):
            continue  # model-data mode: split FC layers need no gradient exchange
        trained = [p for p in layer.params if p.lr_mult != 0] if getattr(layer, "needs_backward", True) else []
        if not trained:
            continue
        size = sum(p.size for p in trained) * itemsize
        if params and nbytes + size > bucket_bytes:
            close()
            layers, params, nbytes = [], [], 0
        layers.append(index)
        params += trained
        nbytes += size
    close()
    return buckets
