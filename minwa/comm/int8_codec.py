"""Int8Codec: 8-bit gradients with one scale per block (Dettmers' 8-bit approximation, block-wise).

The part is cut into blocks of ``block`` elements; each block stores its absolute
maximum as a float32 scale and every element as round(127 * x / absmax) in int8.
Wire layout: all scales first (4 bytes each), then the int8 values, so encoding n
elements costs n + 4 * ceil(n / block) bytes -- about a quarter of float32. The
error of one element is at most absmax / 254 of its block.
"""

from .. import backend
from .codec import Codec


class Int8Codec(Codec):
    """Linear int8 quantisation with a per-block absolute-maximum scale."""

    name = "int8"
    lossy = True

    def __init__(self, block=256):
        block = int(block)
        if block < 1:
            raise ValueError(f"Int8Codec: block must be >= 1, got {block}")
        self.block = block

    def blocks(self, n):
        return -(-int(n) // self.block)

    def wire_nbytes(self, n, dtype=None):
        return int(n) + 4 * self.blocks(n)

    def encode(self, x):
        xp = backend.xp_of(x)
        flat = x.reshape(-1)
        n, nb = flat.size, self.blocks(flat.size)
        wire = xp.empty(self.wire_nbytes(n), dtype=xp.uint8)
        if n == 0:
            return wire
        padded = xp.zeros(nb * self.block, dtype=xp.float32)
        padded[:n] = flat
        padded = padded.reshape(nb, self.block)
        absmax = xp.abs(padded).max(axis=1)
        scale = absmax / 127.0
        safe = xp.where(scale > 0, scale, 1.0).astype(xp.float32)
        q = xp.rint(padded / safe[:, None])
        xp.clip(q, -127, 127, out=q)
        wire[:4 * nb] = scale.astype(xp.float32).view(xp.uint8)
        wire[4 * nb:] = q.reshape(-1)[:n].astype(xp.int8).view(xp.uint8)
        return wire

    def decode(self, wire, out):
        xp = backend.xp_of(wire)
        flat = out.reshape(-1)
        n, nb = flat.size, self.blocks(flat.size)
        if n == 0:
            return out
        scale = wire[:4 * nb].view(xp.float32)
        q = wire[4 * nb:4 * nb + n].view(xp.int8)
        full, tail = divmod(n, self.block)
        if full:
            body = q[:full * self.block].reshape(full, self.block).astype(xp.float32) * scale[:full, None]
            flat[:full * self.block] = body.reshape(-1)
        if tail:
            flat[full * self.block:] = q[full * self.block:].astype(xp.float32) * scale[full]
        return out

    def __repr__(self):
        return f"Int8Codec(block={self.block})"
