"""Param: one learnable blob of a layer (Caffe's blobs_[i] plus its ParamSpec)."""


class Param:
    """Learnable values with their gradient and Caffe's per-parameter multipliers.

    ``data`` and ``grad`` live on the backend device; ``shape`` and ``filler`` are
    known before allocation so a net's shapes and sizes can be computed without
    touching memory (``minwa netinfo``).
    """

    def __init__(self, name, shape, filler, lr_mult=1.0, decay_mult=1.0):
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.filler = filler
        self.lr_mult = float(lr_mult)
        self.decay_mult = float(decay_mult)
        self.data = None
        self.grad = None

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self):
        return f"Param({self.name!r}, shape={self.shape}, lr_mult={self.lr_mult}, decay_mult={self.decay_mult})"
