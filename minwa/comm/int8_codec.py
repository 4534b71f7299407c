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
        scales = wire[:4 * nb].view(xp.float32)
        values = wire[4 * nb:].view(xp.int8)
        full = n // self.block * self.block
        if full:  # whole blocks as a (blocks, block) view: no padded copy
            self._quantise(flat[:full].reshape(-1, self.block), scales[:full // self.block], values[:full], xp)
        if full < n:
            self._quantise(flat[full:].reshape(1, -1), scales[nb - 1:], values[full:], xp)
        return wire

    @staticmethod
    def _quantise(blocks, scales, values, xp):
        absmax = xp.abs(blocks).max(axis=1).astype(xp.float32)
        scales[...] = absmax / 127.0
        safe = xp.where(absmax > 0, absmax / 127.0, 1.0).astype(xp.float32)
        scaled = blocks / safe[:, None]
        xp.rint(scaled, out=scaled)
        xp.clip(scaled, -127, 127, out=scaled)
        values[...] = scaled.reshape(-1)

    def decode(self, wire, out):
        xp = backend.xp_of(wire)
        flat = out.reshape(-1)
        n, nb = flat.size, self.blocks(flat.size)
        if n == 0:
            return out
        scales = wire[:4 * nb].view(xp.float32)
        values = wire[4 * nb:4 * nb + n].view(xp.int8)
        full = n // self.block * self.block
        if full:
            body = flat[:full].reshape(-1, self.block)
            body[...] = values[:full].reshape(-1, self.block)
            body *= scales[:full // self.block, None]
        if full < n:
            flat[full:] = values[full:]
            flat[full:] *= scales[nb - 1]
        return out

    def __repr__(self):
        return f"Int8Codec(block={self.block})"
