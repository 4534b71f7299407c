"""AllreduceStrategy: the plain baseline -- MPI's own nonblocking collectives.

``allreduce_async`` is one MPI_Iallreduce then a division by N; the sharded halves
use MPI_Ireduce_scatter and MPI_Iallgatherv. MPI picks the algorithm, so the bytes
on the wire are not visible here: ``bytes_sent`` records what was handed to MPI.

MPI matches collectives by the order they are called in, not by tags, so after
``prepare(keys)`` every bucket gets its own communicator: buckets may then be
started (and their second halves posted by a progress thread) in any order.
Keys that were not prepared share one communicator and must keep one order.
"""
import numpy

from .partition import part_bounds
from .strategy import Strategy


class AllreduceStrategy(Strategy):
    name = "allreduce"
    counts_exact_bytes = False

    def __init__(self, comm):
        super().__init__(comm)
        self._comms = {}

    def prepare(self, keys):
        if self.size == 1:
            return
        for key in keys:
            if key not in self._comms:
                self._comms[key] = self.comm.dup()

    def _comm(self, key):
        return self._comms.get(key, self.comm)

    def _allreduce(self, buf, key, tag):
        if self.size == 1:
            return buf
        self._count(buf.nbytes)
        handle = self._comm(key).iallreduce(buf, out=buf)
        yield [handle]
        handle.wait()
        buf /= self.size
        return buf

    def _reduce_scatter(self, buf, key, tag):
        if self.size == 1:
            return buf
        self._count(buf.nbytes)
        start, stop = part_bounds(buf.size, self.size)[self.rank]
        handle = self._comm(key).ireduce_scatter(buf)
        yield [handle]
        own = handle.wait()
        own /= self.size
        buf[start:stop] = own
        return buf

    def _allgather(self, buf, key, tag, compress):
        if self.size == 1:
            return buf
        start, stop = part_bounds(buf.size, self.size)[self.rank]
        self._count((stop - start) * buf.itemsize)
        handle = self._comm(key).iallgather_parts(buf)
        yield [handle]
        handle.wait()
        return buf

    def wire_bytes(self, n, dtype):
        """A ring allreduce's volume, 2(N-1)/N of the buffer: the least any allreduce sends (an estimate)."""
        itemsize = numpy.dtype(dtype).itemsize
        return 0 if self.size == 1 else int(2 * (self.size - 1) * n * itemsize / self.size)
