"""Strategy: how ranks combine a flat gradient bucket (the base of the named strategies).

Three operations on a 1-D buffer ``buf`` (float, same length on every rank), each
started asynchronously and returning a Handle:

- ``allreduce_async(buf, key)``: ``buf`` becomes the mean over ranks, in place;
- ``reduce_scatter_async(buf, key)``: only this rank's part (``part_bounds``) becomes
  the mean -- the first half of a butterfly, used by the sharded update;
- ``allgather_async(buf, key)``: every rank's part is filled from its owner at full
  precision -- the second half, used to share updated weights.

``key`` (a small int, e.g. the bucket number) names the buffer: its messages get
their own MPI tags, so operations on different keys may start in any order on
different ranks, and per-key buffers and residuals are kept between steps. At most
one operation per key may be in flight. Operations without a key must be started
in the same order on every rank (their tags come from a call counter).
"""
import threading

from ..errors import CommError
from .handle import Handle
from .partition import part_bounds

_KEYS = 1 << 13      # keyed tags: 2 * key (+1 for the allgather half), key < _KEYS
_UNKEYED = 1 << 12   # unkeyed tags cycle through 2 * (_KEYS + i); all stay below 32767 (MPI's least TAG_UB)


class Strategy:
    """Base class: the bookkeeping shared by the strategies chosen in ``factory.create_strategy``."""

    name = None
    #: False when MPI's own collective algorithm decides what goes on the wire (bytes are then what MPI was given)
    counts_exact_bytes = True

    def __init__(self, comm):
        self.comm = comm.dup() if comm.size > 1 else comm
        self.rank, self.size = comm.rank, comm.size
        self.bytes_sent = 0
        self._calls = 0
        self._busy = set()
        self._lock = threading.Lock()

    def prepare(self, keys):
        """Set up per-key resources for the buckets ``keys`` (collective: same keys, same order, every rank)."""
        return

    def parts(self, n):
        return part_bounds(n, self.size)

    def own_part(self, n):
        return self.parts(n)[self.rank]

    def _tag(self, key):
        if key is None:
            with self._lock:
                slot = self._calls % _UNKEYED
                self._calls += 1
            return 2 * (_KEYS + slot)
        if not isinstance(key, int) or not 0 <= key < _KEYS:
            raise ValueError(f"{self.name}: key must be an int in [0, {_KEYS}), got {key!r}")
        return 2 * key

    def _count(self, nbytes):
        with self._lock:
            self.bytes_sent += int(nbytes)

    def _start(self, stages, key, name):
        if key is not None:
            with self._lock:
                if key in self._busy:
                    raise CommError(f"{self.name}: bucket {key!r} already has a transfer in flight")
                self._busy.add(key)

        def tracked():
            try:
                return (yield from stages)
            finally:
                with self._lock:
                    self._busy.discard(key)

        return Handle(tracked(), name=f"{self.name} {name} (bucket {key})")

    def allreduce_async(self, buf, key=None):
        self._check(buf)
        return self._start(self._allreduce(buf, key, self._tag(key)), key, "allreduce")

    def reduce_scatter_async(self, buf, key=None):
        self._check(buf)
        return self._start(self._reduce_scatter(buf, key, self._tag(key)), key, "reduce-scatter")

    def allgather_async(self, buf, key=None):
        self._check(buf)
        return self._start(self._allgather(buf, key, self._tag(key) + 1, compress=False), key, "allgather")

    def allreduce(self, buf, key=None):
        return self.allreduce_async(buf, key).wait()

    def wire_bytes(self, n, dtype):
        """Bytes this rank sends for ``allreduce_async`` of an ``n``-element buffer."""
        raise NotImplementedError

    def _check(self, buf):
        if buf.ndim != 1 or not buf.flags.c_contiguous:
            raise ValueError(f"{self.name}: expected a contiguous 1-D buffer, got shape {buf.shape}")

    # generators the subclasses implement
    def _allreduce(self, buf, key, tag):
        yield from self._reduce_scatter(buf, key, tag)
        yield from self._allgather(buf, key, tag + 1, compress=True)
        return buf

    def _reduce_scatter(self, buf, key, tag):
        raise NotImplementedError

    def _allgather(self, buf, key, tag, compress):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size})"
