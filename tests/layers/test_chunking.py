"""Batch chunking and host threads never change results: tiny chunks on several threads equal one pass."""
import numpy as np
import pytest

from minwa.layers import _layout, convolution

SPECS = [
    {"type": "Pooling", "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
    {"type": "Pooling", "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
    {"type": "LRN", "lrn_param": {"local_size": 3, "alpha": 0.1, "norm_region": "WITHIN_CHANNEL"}},
    {"type": "LRN", "lrn_param": {"local_size": 5, "alpha": 0.1}},
    {"type": "Convolution", "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "group": 2}},
    {"type": "Convolution", "convolution_param": {"num_output": 3, "kernel_size": 3, "stride": 2}},
]


def run(make_layer, spec, x, dy):
    layer, _ = make_layer(spec, [x.shape], seed=3)
    y = layer.forward([x])[0]
    dx = layer.backward([dy], [True])[0]
    return [np.array(y), np.array(dx)] + [np.array(p.grad) for p in layer.params]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["type"] + "-" + str(list(s.values())[1]))
@pytest.mark.parametrize("channels_last", [False, True])
def test_tiny_chunks_on_threads_match_one_pass(make_layer, helpers, rng, monkeypatch, spec, channels_last):
    x = helpers.spaced(rng, (7, 4, 9, 8))
    if channels_last:  # the layout a convolution hands on
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    tops = make_layer(spec, [x.shape], allocate=False)[1]
    dy = rng.standard_normal(tops[0])
    monkeypatch.setenv("MINWA_THREADS", "1")
    reference = run(make_layer, spec, x, dy)
    monkeypatch.setenv("MINWA_THREADS", "3")
    monkeypatch.setattr(_layout, "CACHE_CHUNK", 1)  # one image per chunk
    monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(convolution, "BLAS_THREADED_CHUNK_ELEMENTS", 1)
    chunked = run(make_layer, spec, x, dy)
    for a, b in zip(reference, chunked):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


def test_worker_errors_reach_the_caller(monkeypatch):
    from minwa.layers._threads import run_chunks

    monkeypatch.setenv("MINWA_THREADS", "2")

    def fail(n0, n1):
        if n0 == 2:
            raise ValueError("chunk 2 failed")

    with pytest.raises(ValueError, match="chunk 2"):
        run_chunks(np, fail, [(0, 1), (1, 2), (2, 3), (3, 4)])


def test_blas_threads_are_restored(monkeypatch):
    from minwa.layers import _threads

    blas = _threads.blas_controller()
    if blas is None:
        pytest.skip("threadpoolctl finds no BLAS it can control here; chunks run in order")

    def threads():
        return [lib["num_threads"] for lib in blas.info()]

    before = threads()
    seen = []
    monkeypatch.setenv("MINWA_THREADS", "2")
    _threads.run_chunks(np, lambda n0, n1: seen.append(threads()), [(0, 1), (1, 2), (2, 3)])
    assert all(set(s) == {1} for s in seen) and len(seen) == 3  # one BLAS thread per worker while chunks run
    assert threads() == before


def test_chunks_are_even_and_there_are_enough_to_share():
    """100 images in chunks of at most 64 are two of 50, not 64 + 36; a small pass still splits in MIN_CHUNKS."""
    assert _layout.even_chunks(100, 64) == [(0, 50), (50, 100)]
    assert _layout.even_chunks(7, 3) == [(0, 2), (2, 4), (4, 7)]
    for n, size in [(1, 1), (5, 2), (100, 3), (100, 100), (33, 8)]:
        chunks = _layout.even_chunks(n, size)
        lengths = [b - a for a, b in chunks]
        assert chunks[0][0] == 0 and chunks[-1][1] == n and all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        assert max(lengths) <= size and max(lengths) - min(lengths) <= 1
    assert len(_layout.batch_chunks(np, 100, 10)) == _layout.MIN_CHUNKS  # 100 small images: 4 of 25, not 1
    assert len(_layout.batch_chunks(np, 3, 10)) == 3
