"""CompressedButterflyStrategy: the butterfly with a lossy wire format (fp16, or int8 with per-block scales).

Quantised values cannot be summed as they are, so the owner of part k decodes every
contribution, sums in float32 (in rank order), divides by N and encodes the mean
again for the allgather; the owner keeps the decoded mean too, so all ranks end with
identical values. With ``error_feedback`` each rank remembers what quantisation
took away -- from the parts it sends and, as owner, from the mean it publishes --
and adds it back before encoding the same bucket next step, so no gradient is lost
for good, only delayed.
"""
from .. import backend
from .butterfly_strategy import ButterflyStrategy


class CompressedButterflyStrategy(ButterflyStrategy):
    """Butterfly with a lossy codec and optional error feedback (residuals kept per bucket key)."""

    name = "butterfly_compressed"

    def __init__(self, comm, codec, error_feedback=False):
        if not codec.lossy:
            raise ValueError("CompressedButterflyStrategy needs a lossy codec (fp16 or int8)")
        super().__init__(comm, codec)
        self.error_feedback = bool(error_feedback)
        self._residuals = {}

    def _residual(self, key, slot, n, like):
        if not self.error_feedback or key is None:
            return None
        residual = self._residuals.get((key, slot))
        if residual is None or residual.size != n:
            residual = backend.xp_of(like).zeros(n, dtype=like.dtype)
            self._residuals[(key, slot)] = residual
        return residual

    def _encode_with_feedback(self, values, residual):
        """Encode ``values`` (+ carried residual); the residual becomes what the encoding lost."""
        if residual is None:
            return self.codec.encode(values)
        corrected = values + residual
        wire = self.codec.encode(corrected)
        residual[...] = corrected - self.codec.decode(wire, backend.xp_of(values).empty_like(values))
        return wire

    def _outgoing(self, buf, key, peer, start, stop):
        return self._encode_with_feedback(buf[start:stop], self._residual(key, ("rs", peer), stop - start, buf))

    def _publish(self, buf, key, start, stop, compress):
        if not compress:
            return super()._publish(buf, key, start, stop, compress)
        wire = self._encode_with_feedback(buf[start:stop], self._residual(key, "ag", stop - start, buf))
        self.codec.decode(wire, buf[start:stop])
        return wire

    def reset_residuals(self):
        self._residuals.clear()

    @staticmethod
    def _name(key, slot):
        return f"{key}.ag" if slot == "ag" else f"{key}.rs.{slot[1]}"

    def residual_state(self):
        """This rank's residuals as {"BUCKET.ag" | "BUCKET.rs.PEER": host array} (for checkpoints)."""
        return {self._name(key, slot): backend.to_host(value).copy()
                for (key, slot), value in sorted(self._residuals.items(), key=lambda item: repr(item[0]))}

    def load_residual_state(self, saved):
        """Restore ``residual_state()``'s output of this same rank (same buckets and number of ranks)."""
        self._residuals.clear()
        for name, value in saved.items():
            parts = name.split(".")
            slot = "ag" if parts[1] == "ag" else ("rs", int(parts[2]))
            self._residuals[(int(parts[0]), slot)] = backend.to_device(value.reshape(-1))
