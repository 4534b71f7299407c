"""GradientBucket: the unit DataParallel exchanges, one flat buffer for a run of whole layers."""


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
