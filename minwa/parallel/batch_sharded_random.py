"""BatchShardedRandom: layer randomness (dropout masks) that does not depend on the number of ranks."""
import numpy


class BatchShardedRandom:
    """A layer's generator that draws for the global batch and hands out this rank's rows.

    Dropout draws a mask of the input's shape; here the draw is for N times the local
    batch (same seed on every rank) and rank k keeps rows k*b..(k+1)*b, so N ranks
    with B/N samples see exactly the mask one rank with B samples would.
    """

    def __init__(self, generator, rank, size):
        self.generator, self.rank, self.size = generator, rank, size

    def random(self, size=None, dtype=numpy.float64, **kwargs):
        if size is None or self.size == 1:
            return self.generator.random(size, dtype=dtype, **kwargs)
        shape = (size,) if isinstance(size, int) else tuple(size)
        local = shape[0]
        draws = self.generator.random((local * self.size,) + shape[1:], dtype=dtype, **kwargs)
        return draws[self.rank * local:(self.rank + 1) * local]

    def __getattr__(self, name):
        return getattr(self.generator, name)
