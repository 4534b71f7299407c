"""ShardedInnerProduct against the plain layer, with N ranks simulated by threads over an in-memory communicator.

Two sharded layers in a chain (batch -> feature -> batch layout), uneven rows per rank
(3, 2, 2) and uneven output splits: outputs, input gradients and weight gradients equal the
plain InnerProduct's on the whole batch, and the bytes sent equal ``bytes_per_step``.
"""
import queue
import threading

import numpy as np
import pytest

from minwa.comm.partition import part_bounds
from minwa.layers import layer_class
from minwa.layers.sharded_inner_product import ShardedInnerProduct


class _Hub:
    def __init__(self, n):
        self.n, self.barrier, self.slots = n, threading.Barrier(n, timeout=20), [None] * n
        self.boxes, self.lock, self.sent = {}, threading.Lock(), [0] * n

    def box(self, key):
        with self.lock:
            return self.boxes.setdefault(key, queue.Queue())


class _Done:
    def __init__(self, action=None):
        self.action = action

    def wait(self):
        if self.action is not None:
            self.action()


class _ThreadComm:
    """rank/size/allgather/isend/irecv, as much of the Communicator as the layer uses."""

    def __init__(self, hub, rank):
        self.hub, self.rank, self.size = hub, rank, hub.n

    def allgather(self, value):
        self.hub.barrier.wait()
        self.hub.slots[self.rank] = value
        self.hub.barrier.wait()
        out = list(self.hub.slots)
        self.hub.barrier.wait()
        return out

    def isend(self, array, dest, tag=0):
        self.hub.sent[self.rank] += array.nbytes
        self.hub.box((self.rank, dest, tag)).put(np.array(array))
        return _Done()

    def irecv(self, array, source, tag=0):
        def fill():
            array[...] = self.hub.box((source, self.rank, tag)).get(timeout=20)
        return _Done(fill)


def _plain(name, inputs, outputs, seed):
    spec = {"name": name, "type": "InnerProduct", "bottom": ["x"], "top": [name],
            "inner_product_param": {"num_output": outputs}}
    layer = layer_class("InnerProduct")(spec)
    layer.dtype = np.dtype("float64")
    layer.setup([(7, inputs)])
    rng = np.random.default_rng(seed)
    layer.weight.data = rng.standard_normal(layer.weight.shape)
    layer.bias.data = rng.standard_normal(layer.bias.shape)
    layer.propagate_down = [True]
    layer.bottom_shapes = [(7, inputs)]
    return layer


@pytest.mark.parametrize("n", [1, 3])
def test_chain_matches_the_plain_layers(n):
    rows = [hi - lo for lo, hi in part_bounds(7, n)]  # 3, 2, 2 on three ranks
    offsets = np.cumsum([0] + rows)
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((7, 6)), rng.standard_normal((7, 4))
    a, b = _plain("a", 6, 5, 1), _plain("b", 5, 4, 2)
    ya = a.forward([x])[0]
    yb = b.forward([ya])[0]
    da = b.backward([dy], [True])[0]
    dx = a.backward([da], [True])[0]
    hub, results = _Hub(n), [None] * n

    def rank_main(k):
        comm = _ThreadComm(hub, k)
        la = ShardedInnerProduct(_plain("a", 6, 5, 1), comm, part_bounds(5, n), "batch", "feature")
        lb = ShardedInnerProduct(_plain("b", 5, 4, 2), comm, part_bounds(4, n), "feature", "batch", upstream=la)
        la.shard_params()
        lb.shard_params()
        mine = slice(offsets[k], offsets[k + 1])
        out = lb.forward(la.forward([x[mine]]))[0]
        grad = la.backward(lb.backward([dy[mine]], [True]), [True])[0]
        expected = la.bytes_per_step(rows) + lb.bytes_per_step(rows)
        results[k] = (out, grad, la, lb, expected)

    threads = [threading.Thread(target=rank_main, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results), "a simulated rank failed"
    for k, (out, grad, la, lb, expected) in enumerate(results):
        mine = slice(offsets[k], offsets[k + 1])
        np.testing.assert_allclose(out, yb[mine], rtol=1e-12)
        np.testing.assert_allclose(grad, dx[mine], rtol=1e-12)
        for sharded, plain in ((la, a), (lb, b)):
            lo, hi = sharded.part
            # weight gradients come from the whole batch, scaled by 1/N like the data-parallel average
            np.testing.assert_allclose(sharded.weight.grad * n, plain.weight.grad[lo:hi], rtol=1e-12)
            np.testing.assert_allclose(sharded.bias.grad * n, plain.bias.grad[lo:hi], rtol=1e-12)
        assert hub.sent[k] == expected, k
    if n == 3:
        assert [r[2].part for r in results] == [(0, 2), (2, 4), (4, 5)]  # 5 outputs: shards differ by one neuron


def test_bad_layout_is_refused():
    comm = _ThreadComm(_Hub(1), 0)
    with pytest.raises(ValueError, match="needs its upstream"):
        ShardedInnerProduct(_plain("a", 6, 5, 1), comm, part_bounds(5, 1), "feature", "batch")
