"""ButterflyStrategy: Deep Image's butterfly synchronisation, from nonblocking point-to-point messages.

The bucket is cut into N contiguous parts; rank k owns part k. Reduce-scatter:
every rank sends part j to rank j and receives part k from everyone, then sums
the N contributions in rank order and divides by N. Allgather: rank k sends its
averaged part to everyone and receives the others' parts. Rank k therefore sends
(n - n_k) + (N - 1) * n_k elements, which is 2(N-1)/N of the bucket when the
parts are equal -- independent of N, as in the paper.
"""
from .. import backend
from .codec import Codec
from .strategy import Strategy

_RAW = Codec()


class ButterflyStrategy(Strategy):
    """Reduce-scatter + allgather with Isend/Irecv; the codec sets the wire format (raw by default)."""

    name = "butterfly"

    def __init__(self, comm, codec=None):
        super().__init__(comm)
        self.codec = codec or _RAW
        self._buffers = {}

    def _codec(self, compress):
        return self.codec if compress else _RAW

    # -- hooks the compressed variant overrides ----------------------------------------------
    def _outgoing(self, buf, key, peer, start, stop):
        """Wire bytes of part [start, stop) of ``buf``, sent to its owner ``peer`` in the reduce-scatter."""
        return self.codec.encode(buf[start:stop])

    def _publish(self, buf, key, start, stop, compress):
        """Wire bytes of this rank's averaged part for the allgather (the owner keeps what others decode)."""
        codec = self._codec(compress)
        wire = codec.encode(buf[start:stop])
        if codec.lossy:
            codec.decode(wire, buf[start:stop])
        return wire

    # -- the two halves -----------------------------------------------------------------------
    def _scratch(self, key, slot, nbytes, like):
        """A reusable uint8 buffer per (bucket, purpose, peer); a fresh one when there is no key."""
        xp = backend.xp_of(like)
        if key is None:
            return xp.empty(nbytes, dtype=xp.uint8)
        buffer = self._buffers.get((key, slot))
        if buffer is None or buffer.size != nbytes or backend.xp_of(buffer) is not xp:
            buffer = xp.empty(nbytes, dtype=xp.uint8)
            self._buffers[(key, slot)] = buffer
        return buffer

    def _exchange(self, sends, recvs, tag):
        """Post the receives, then the sends; returns the (request, finish) pairs."""
        posted = [self.comm.start_recv(wire, peer, tag) for peer, wire in recvs]
        for peer, wire in sends:
            posted.append(self.comm.start_send(wire, peer, tag))
            self._count(wire.nbytes)
        return posted

    def _reduce_scatter(self, buf, key, tag):
        if self.size == 1:
            return buf
        bounds = self.parts(buf.size)
        start, stop = bounds[self.rank]
        nbytes = self.codec.wire_nbytes(stop - start, buf.dtype)
        peers = [r for r in range(self.size) if r != self.rank]
        recvs = [(r, self._scratch(key, ("rs", r), nbytes, buf)) for r in peers]
        sends = [(r, self._outgoing(buf, key, r, *bounds[r])) for r in peers]
        posted = self._exchange(sends, recvs, tag)
        yield [request for request, _ in posted]
        for _, finish in posted:
            finish()
        incoming = dict(recvs)
        xp = backend.xp_of(buf)
        total = xp.empty(stop - start, dtype=buf.dtype)
        part = xp.empty_like(total)
        for r in range(self.size):  # always rank order, so every owner sums the same way
            if r == self.rank:
                contribution = buf[start:stop]
            else:
                contribution = self.codec.decode(incoming[r], part)
            if r == 0:
                total[...] = contribution
            else:
                total += contribution
        total /= self.size
        buf[start:stop] = total
        return buf

    def _allgather(self, buf, key, tag, compress):
        if self.size == 1:
            return buf
        codec = self._codec(compress)
        bounds = self.parts(buf.size)
        start, stop = bounds[self.rank]
        own = self._publish(buf, key, start, stop, compress)
        peers = [r for r in range(self.size) if r != self.rank]
        if codec.lossy:
            recvs = [(r, self._scratch(key, ("ag", r), codec.wire_nbytes(b - a, buf.dtype), buf))
                     for r, (a, b) in enumerate(bounds) if r != self.rank]
        else:  # raw bytes land directly in place
            recvs = [(r, codec.encode(buf[a:b])) for r, (a, b) in enumerate(bounds) if r != self.rank]
        posted = self._exchange([(r, own) for r in peers], recvs, tag)
        yield [request for request, _ in posted]
        for _, finish in posted:
            finish()
        if codec.lossy:
            for r, wire in recvs:
                a, b = bounds[r]
                codec.decode(wire, buf[a:b])
        return buf

    def wire_bytes(self, n, dtype):
        if self.size == 1:
            return 0
        bounds = self.parts(n)
        start, stop = bounds[self.rank]
        scatter = sum(self.codec.wire_nbytes(b - a, dtype) for r, (a, b) in enumerate(bounds) if r != self.rank)
        return scatter + (self.size - 1) * self.codec.wire_nbytes(stop - start, dtype)
