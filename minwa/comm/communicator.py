"""Communicator: minwa's face of an MPI communicator (named after MPI, as ChainerMN's communicators).

It wraps an mpi4py communicator and offers the operations the parallel modes need:
``rank``, ``size``, ``local_rank``, ``bcast``, ``allgather``, ``gather``,
``reduce_scatter``, ``allreduce``, ``barrier``, ``abort``, ``split`` and ``dup``; the
``i``-prefixed variants start the operation and return a :class:`Handle` with
``wait()``/``test()``. Arrays (numpy, or cupy on a GPU) travel as raw buffers;
other Python values are pickled. A cupy array is given to MPI directly when the
MPI library is CUDA-aware and staged through pinned host buffers otherwise.

Every byte this process sends point-to-point is counted (``bytes_sent``), so the
data-parallel code can show exactly what one training step put on the wire.
"""
import contextlib
import pickle
import traceback

import numpy

from .. import backend
from ..errors import CommError
from ..failure.watchdog import waiting_in
from .cuda_aware import query_cuda_aware
from .handle import Handle
from .local_rank import env_local_rank
from .partition import part_bounds
from .pinned_staging import PinnedStaging
from .traffic_counters import TrafficCounters

_OPS = ("sum", "max", "min", "prod")


def _is_array(value):
    return hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__")


def _bytes_of(array):
    """The raw bytes of a C-contiguous array (a view; works for numpy and cupy)."""
    return array.reshape(-1).view(numpy.uint8)


class Communicator:
    """An MPI communicator with minwa's conventions (see the module docstring)."""

    def __init__(self, mpi_comm, local_rank=None, counters=None, staging=None, cuda_aware=None):
        self.mpi = mpi_comm
        self.rank = mpi_comm.Get_rank()
        self.size = mpi_comm.Get_size()
        self.counters = counters if counters is not None else TrafficCounters()
        self._staging = staging if staging is not None else PinnedStaging()
        self._cuda_aware = cuda_aware
        self.local_rank_source = "given"
        if local_rank is None:
            local_rank, self.local_rank_source = self._shared_memory_rank()
        self.local_rank = int(local_rank)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def world(cls):
        """COMM_WORLD; the local rank comes from the launcher's environment when it tells."""
        from mpi4py import MPI

        local, source = env_local_rank()
        comm = cls(MPI.COMM_WORLD, local_rank=local)
        if local is not None:
            comm.local_rank_source = source
        return comm

    def _shared_memory_rank(self):
        from mpi4py import MPI

        node = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        try:
            return node.Get_rank(), "MPI_COMM_TYPE_SHARED"
        finally:
            node.Free()

    def split(self, color, key=None):
        """Sub-communicator of the ranks that pass the same ``color`` (collective)."""
        sub = self.mpi.Split(int(color), self.rank if key is None else int(key))
        return Communicator(sub, counters=self.counters, staging=self._staging, cuda_aware=self._cuda_aware)

    def dup(self):
        """Same ranks, separate message space (so one module's traffic never matches another's)."""
        return Communicator(self.mpi.Dup(), local_rank=self.local_rank, counters=self.counters,
                            staging=self._staging, cuda_aware=self._cuda_aware)

    @property
    def mpi_comm(self):
        """The underlying mpi4py communicator (also ``self.mpi``)."""
        return self.mpi

    @property
    def cuda_aware(self):
        """True when MPI reads and writes GPU memory itself (no staging through the host)."""
        if self._cuda_aware is None:
            self._cuda_aware = query_cuda_aware()
        return self._cuda_aware

    @property
    def bytes_sent(self):
        """Bytes this process has sent point-to-point through minwa's communicators."""
        return self.counters["bytes_sent"]

    # -- buffers ------------------------------------------------------------------------
    def _buffer(self, array, incoming, where):
        """(what MPI gets, finish callback) for ``array``; stages device arrays when needed."""
        if not _is_array(array):
            raise TypeError(f"{where}: expected an array, got {type(array).__name__}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{where}: the array must be C-contiguous")
        if not backend.is_gpu_array(array):
            return array, _nothing
        if self.cuda_aware:
            backend.xp_of(array).cuda.get_current_stream().synchronize()
            return array, _nothing
        return self._staging.stage(array, incoming)

    def _count_send(self, nbytes):
        self.counters.add(bytes_sent=int(nbytes), messages=1)

    def _count_collective(self, nbytes):
        self.counters.add(collective_bytes=int(nbytes), collectives=1)

    # -- point to point ------------------------------------------------------------------
    def start_send(self, array, dest, tag=0):
        """Post a nonblocking send of ``array``'s bytes; returns (MPI request, finish callback).

        The building block of the strategies' generators: they yield the requests and
        call ``finish()`` once they are complete. The send is counted in ``bytes_sent``.
        """
        buf, finish = self._buffer(array, False, f"send to rank {dest}")
        self._count_send(array.nbytes)
        return self.mpi.Isend(_bytes_of(buf), dest=int(dest), tag=int(tag)), finish

    def start_recv(self, array, source, tag=0):
        """Post a nonblocking receive into ``array``; returns (MPI request, finish callback)."""
        buf, finish = self._buffer(array, True, f"receive from rank {source}")
        return self.mpi.Irecv(_bytes_of(buf), source=int(source), tag=int(tag)), finish

    def isend(self, array, dest, tag=0):
        """Start sending ``array`` to rank ``dest``; leave the array untouched until the handle is done."""
        request, finish = self.start_send(array, dest, tag)

        def stages():
            yield [request]
            finish()
            return array

        return Handle(stages(), name=f"send to rank {dest}")

    def irecv(self, array, source, tag=0):
        """Start receiving into ``array`` (its byte size must match what ``source`` sends)."""
        request, finish = self.start_recv(array, source, tag)

        def stages():
            yield [request]
            finish()
            return array

        return Handle(stages(), name=f"receive from rank {source}")

    def send(self, array, dest, tag=0):
        self.isend(array, dest, tag).wait()

    def recv(self, array, source, tag=0):
        return self.irecv(array, source, tag).wait()

    # -- collectives on arrays -----------------------------------------------------------
    def ibcast(self, array, root=0):
        """Start broadcasting root's ``array`` into every rank's ``array`` (same shape and dtype)."""
        buf, finish = self._buffer(array, self.rank != root, "bcast")
        if self.rank == root:
            self._count_collective(array.nbytes)

        def stages():
            yield [self.mpi.Ibcast(_bytes_of(buf), root=root)]
            finish()
            return array

        return Handle(stages(), name="bcast")

    def iallgather(self, array):
        """Start gathering every rank's ``array`` into a new array of shape (size, *array.shape)."""
        xp = backend.xp_of(array)
        out = xp.empty((self.size,) + tuple(array.shape), dtype=array.dtype)
        send, finish_send = self._buffer(array, False, "allgather")
        recv, finish_recv = self._buffer(out, True, "allgather")
        self._count_collective(array.nbytes)

        def stages():
            yield [self.mpi.Iallgather(_bytes_of(send), _bytes_of(recv))]
            finish_send()
            finish_recv()
            return out

        return Handle(stages(), name="allgather")

    def ireduce_scatter(self, array, op="sum"):
        """Start reducing ``array`` over ranks; the result is this rank's part (``part_bounds``) of it, flat."""
        mpi_op = self._op(op)
        flat = array.reshape(-1)
        bounds = part_bounds(flat.size, self.size)
        start, stop = bounds[self.rank]
        out = backend.xp_of(array).empty(stop - start, dtype=array.dtype)
        send, finish_send = self._buffer(flat, False, "reduce_scatter")
        recv, finish_recv = self._buffer(out, True, "reduce_scatter")
        counts = [b - a for a, b in bounds]
        self._count_collective(array.nbytes)

        def stages():
            yield [self.mpi.Ireduce_scatter(send, recv, counts, op=mpi_op)]
            finish_send()
            finish_recv()
            return out

        return Handle(stages(), name="reduce_scatter")

    def iallgather_parts(self, flat):
        """Start filling every rank's part (``part_bounds``) of the 1-D ``flat`` from its owner, in place."""
        from mpi4py import MPI

        itemsize = numpy.dtype(flat.dtype).itemsize
        bounds = part_bounds(flat.size, self.size)
        counts = [(b - a) * itemsize for a, b in bounds]
        displacements = [a * itemsize for a, _ in bounds]
        buf, finish = self._buffer(flat, True, "allgather_parts")
        self._count_collective(counts[self.rank])

        def stages():
            yield [self.mpi.Iallgatherv(MPI.IN_PLACE, [_bytes_of(buf), counts, displacements, MPI.BYTE])]
            finish()
            return flat

        return Handle(stages(), name="allgather_parts")

    def iallreduce(self, array, op="sum", out=None):
        """Start reducing ``array`` over ranks into ``out`` (a new array, or ``array`` itself for in place)."""
        from mpi4py import MPI

        mpi_op = self._op(op)
        in_place = out is array
        if out is None:
            out = backend.xp_of(array).empty_like(array)
        recv, finish_recv = self._buffer(out, True, "allreduce")
        if in_place:
            send, finish_send = MPI.IN_PLACE, _nothing
        else:
            send, finish_send = self._buffer(array, False, "allreduce")
        self._count_collective(array.nbytes)

        def stages():
            yield [self.mpi.Iallreduce(send, recv, op=mpi_op)]
            finish_send()
            finish_recv()
            return out

        return Handle(stages(), name="allreduce")

    def ibarrier(self):
        def stages():
            yield [self.mpi.Ibarrier()]

        return Handle(stages(), name="barrier")

    def _op(self, op):
        from mpi4py import MPI

        if op not in _OPS:
            raise ValueError(f"reduction op {op!r}: expected one of {', '.join(_OPS)}")
        return {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}[op]

    # -- blocking collectives (arrays or any picklable value) ----------------------------
    def bcast(self, value, root=0, verify=True):
        """Root's value on every rank. Arrays are filled in place (layouts are checked first)."""
        if _is_array(value):
            if verify:
                self._same_layout(value, "bcast")
            return self.ibcast(value, root).wait()
        self._count_collective(len(pickle.dumps(value)) if self.rank == root else 0)
        with waiting_in(f"bcast from rank {root}"):
            return self.mpi.bcast(value, root=root)

    def allgather(self, value, verify=True):
        """Arrays: shape (size, *shape); other values: a list with one entry per rank."""
        if _is_array(value):
            if verify:
                self._same_layout(value, "allgather")
            return self.iallgather(value).wait()
        self._count_collective(len(pickle.dumps(value)))
        with waiting_in("allgather"):
            return self.mpi.allgather(value)

    def gather(self, value, root=0):
        """A list of every rank's (picklable) value on ``root``; None elsewhere."""
        self._count_collective(len(pickle.dumps(value)))
        with waiting_in(f"gather to rank {root}"):
            return self.mpi.gather(value, root=root)

    def reduce_scatter(self, array, op="sum", verify=True):
        if verify:
            self._same_layout(array, "reduce_scatter")
        return self.ireduce_scatter(array, op).wait()

    def allreduce(self, value, op="sum", verify=True):
        """Reduction over ranks: a new array for arrays, a number for numbers."""
        if _is_array(value):
            if verify:
                self._same_layout(value, "allreduce")
            return self.iallreduce(value, op).wait()
        self._count_collective(len(pickle.dumps(value)))
        with waiting_in("allreduce"):
            return self.mpi.allreduce(value, op=self._op(op))

    def barrier(self):
        """Wait for every rank (bounded like every Handle: see ``Handle.timeout``)."""
        self.ibarrier().wait()

    # -- agreement and failure -------------------------------------------------------------
    def agree(self, value, what, describe=None):
        """Check that every rank holds the same ``value``; raise CommError on every rank otherwise.

        All ranks gather all values, so all see the same mismatch and raise together
        (none is left blocked). ``describe(reference, other)`` may explain the first
        difference in words.
        """
        with waiting_in(f"the check that every rank has the same {what}"):
            values = self.mpi.allgather(value)
        self._count_collective(len(pickle.dumps(value)))
        reference = values[0]
        for rank, other in enumerate(values):
            if other != reference:
                detail = describe(reference, other) if describe else f"rank 0 has {reference!r}, rank {rank} " \
                                                                     f"has {other!r}"
                raise CommError(f"{what} differs between ranks: rank {rank} disagrees with rank 0: {detail}")
        return values

    def _same_layout(self, array, what):
        self.agree((tuple(int(d) for d in array.shape), numpy.dtype(array.dtype).str), f"{what}: array shape/dtype")

    def abort(self, message="", code=1):
        """Stop every rank of the job (MPI_Abort) after printing ``message`` with this rank's number.

        Goes through ``minwa.failure.report_and_abort``: the message is drained from
        stderr and sent to minwa-launch before the abort, so it is not lost.
        """
        from ..failure.abort import report_and_abort  # noqa: PLC0415

        text = f"rank {self.rank} of {self.size}: {message}\nminwa: " if message else ""
        report_and_abort(self.mpi, f"{text}rank {self.rank} aborts the job (exit code {code})", code)

    @contextlib.contextmanager
    def abort_on_error(self, code=1):
        """Inside this block an exception on one rank aborts all ranks instead of leaving them blocked."""
        try:
            yield self
        except BaseException as exc:
            if self.size == 1 or isinstance(exc, SystemExit) and not exc.code:
                raise
            traceback.print_exc()
            self.abort(f"{type(exc).__name__}: {exc}", code)

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


def _nothing():
    return None

