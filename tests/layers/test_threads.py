"""Outputs and gradients are bit-identical for MINWA_THREADS = 1, 2 and 3, layer by layer and for a whole net."""
import copy
import os

import numpy as np
import pytest

import minwa
from minwa.layers import _gemm, _layout, convolution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREADS = ("1", "2", "3")

SPECS = [
    {"type": "Convolution", "convolution_param": {"num_output": 6, "kernel_size": 5, "pad": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "group": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 5, "kernel_size": 3, "stride": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 3, "kernel_size": 1}},
    {"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
    {"type": "Pooling", "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
    {"type": "LRN", "lrn_param": {"local_size": 3, "alpha": 0.1, "norm_region": "WITHIN_CHANNEL"}},
    {"type": "LRN", "lrn_param": {"local_size": 5, "alpha": 0.1}},
    {"type": "InnerProduct", "inner_product_param": {"num_output": 70}},
    {"type": "InnerProduct", "inner_product_param": {"num_output": 5}},
    {"type": "ReLU"},
]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of one image and GEMM blocks of a few rows, so every pass really splits."""
    monkeypatch.setattr(_layout, "CACHE_CHUNK", 1)
    monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(convolution, "BLAS_THREADED_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(_gemm, "MIN_SPLIT", 1)
    monkeypatch.setattr(_gemm, "MIN_BLOCK", 2)


def run_layer(make_layer, spec, x, dy, dtype):
    layer, _ = make_layer(spec, [x.shape], dtype=dtype, seed=3)
    y = layer.forward([x])[0]
    dx = layer.backward([dy], [True])[0]
    return [np.array(y), np.array(dx)] + [np.array(p.grad) for p in layer.params]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["type"] + "-" + str(list(s.values())[1:]))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_layer_is_bit_identical_for_any_thread_count(make_layer, rng, monkeypatch, small_chunks, kernel_path, spec,
                                                     dtype, channels_last):
    x = rng.standard_normal((7, 4, 9, 8)).astype(dtype)
    if channels_last:  # the layout a convolution hands on
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    tops = make_layer(spec, [x.shape], allocate=False)[1]
    dy = rng.standard_normal(tops[0]).astype(dtype)
    results = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        results[threads] = run_layer(make_layer, spec, x, dy, dtype)
    for threads in THREADS[1:]:
        for a, b in zip(results["1"], results[threads]):
            assert a.dtype == b.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(b, a, err_msg=f"MINWA_THREADS={threads}")


def _net_step(model, x, y):
    net = minwa.Net(model, phase="TRAIN", dtype="float32", seed=5)
    data, label = net.input_names
    net.forward({data: x, label: y})
    net.backward()
    return [np.array(net.loss)] + [np.array(p.grad) for p in net.params]


@pytest.mark.parametrize("default_chunks", [True, False])
def test_cifar10_full_step_is_bit_identical_for_any_thread_count(monkeypatch, rng, default_chunks):
    job = minwa.load_config(os.path.join(ROOT, "configs", "cifar10_full.yaml"))
    model = copy.deepcopy(job.model)
    batch = 5
    model["layers"][0]["input_param"]["shape"] = [{"dim": [batch, 3, 32, 32]}, {"dim": [batch]}]
    if not default_chunks:
        monkeypatch.setattr(_layout, "CACHE_CHUNK", 1)
        monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)
        monkeypatch.setattr(_gemm, "MIN_SPLIT", 1)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=batch)
    results = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        results[threads] = _net_step(model, x, y)
    for threads in THREADS[1:]:
        for a, b in zip(results["1"], results[threads]):
            np.testing.assert_array_equal(b, a, err_msg=f"MINWA_THREADS={threads}")


@pytest.mark.parametrize("param", [{"kernel_size": 3, "pad": 1}, {"kernel_size": 3, "pad": 1, "stride": 2},
                                   {"kernel_size": 1}])
def test_convolution_column_blocks(make_layer, rng, monkeypatch, param):
    """A batch that is one chunk splits its GEMMs by output channel: same values, any thread count."""
    spec = {"type": "Convolution", "convolution_param": dict(num_output=7, **param)}
    x = rng.standard_normal((3, 5, 4, 4))
    tops = make_layer(spec, [x.shape], allocate=False)[1]
    dy = rng.standard_normal(tops[0])
    monkeypatch.setenv("MINWA_THREADS", "1")
    whole = run_layer(make_layer, spec, x, dy, "float64")
    monkeypatch.setattr(convolution, "COLUMN_BLOCK", 2)  # 7 channels -> blocks 2, 2, 2, 1
    blocked = {}
    for threads in THREADS:
        monkeypatch.setenv("MINWA_THREADS", threads)
        blocked[threads] = run_layer(make_layer, spec, x, dy, "float64")
    for a, b in zip(whole, blocked["1"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    for threads in THREADS[1:]:
        for a, b in zip(blocked["1"], blocked[threads]):
            np.testing.assert_array_equal(b, a)


def test_the_thread_that_starts_a_pass_polls_between_its_chunks(monkeypatch):
    """Lazy update's transfers move on during long passes; only the registering thread calls MPI."""
    import threading
    import time

    from minwa.layers import _threads

    monkeypatch.setenv("MINWA_THREADS", "2")
    monkeypatch.setattr(_threads, "POLL_S", 0.0)
    me, callers = threading.get_ident(), []

    def poll():
        callers.append(threading.get_ident())

    def chunk(n0, n1):
        time.sleep(0.002)  # long enough that both threads take chunks

    _threads.add_poll(poll)
    try:
        _threads.run_chunks(np, chunk, [(i, i + 1) for i in range(6)])
        assert callers and set(callers) == {me}
        # a pass started by another thread does not call this thread's polls
        callers.clear()
        other = threading.Thread(target=_threads.run_chunks, args=(np, lambda n0, n1: None, [(0, 1), (1, 2)]))
        other.start()
        other.join()
        assert callers == []
    finally:
        _threads.remove_poll(poll)
    _threads.run_chunks(np, lambda n0, n1: None, [(0, 1), (1, 2)])
    assert callers == []


def test_polls_are_spaced_by_poll_s(monkeypatch):
    import time

    from minwa.layers import _threads

    monkeypatch.setenv("MINWA_THREADS", "1")
    monkeypatch.setattr(_threads, "POLL_S", 60.0)
    monkeypatch.setattr(_threads, "_last_poll", [time.perf_counter() - 120.0])
    calls = []
    _threads.add_poll(lambda: calls.append(1))
    try:
        _threads.run_chunks(np, lambda n0, n1: None, [(i, i + 1) for i in range(5)])
    finally:
        _threads._polls.clear()
    assert calls == [1]  # the first round only: the next is a minute away


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_lanes_take_their_chunks_in_order_whichever_thread_runs_them(monkeypatch, threads):
    """Chunk i is lane i % lanes's, and each lane sees its chunks one at a time in order (its sum is fixed)."""
    import threading
    import time

    from minwa.layers import _threads

    monkeypatch.setenv("MINWA_THREADS", threads)
    chunks = [(i, i + 1) for i in range(11)]
    seen, running, overlaps = {}, set(), []
    lock = threading.Lock()

    def work(lane, n0, n1):
        with lock:
            if lane in running:
                overlaps.append(lane)
            running.add(lane)
        time.sleep(0.001 * ((n0 * 7) % 3))  # uneven chunks, so threads drift apart
        with lock:
            running.discard(lane)
            seen.setdefault(lane, []).append(n0)

    _threads.run_lanes(np, work, chunks, lanes=4)
    assert overlaps == []
    assert seen == {lane: list(range(lane, 11, 4)) for lane in range(4)}
