"""The fused SGD update equals the whole-array expressions bit for bit, for any chunking and thread count."""
import numpy as np
import pytest

from minwa import sgd_kernel


def reference(data, grad, history, momentum, rate, decay):
    g = grad + decay * data if decay else grad
    history *= momentum
    history += rate * g
    data -= history


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("decay", [0.0, 0.004])
@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("compiled", ["0", "1"])
def test_fused_update_is_bit_identical(monkeypatch, dtype, decay, threads, compiled):
    if compiled == "1":
        pytest.importorskip("numba")
    monkeypatch.setenv("MINWA_NUMBA", compiled)
    monkeypatch.setenv("MINWA_THREADS", threads)
    monkeypatch.setattr(sgd_kernel, "CHUNK", 1000)  # many chunks, one of them short
    rng = np.random.default_rng(0)
    shape = (3, 41, 37)
    w, g, h = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    w2, h2 = w.copy(), h.copy()
    reference(w, g, h, 0.9, 0.01, decay)
    sgd_kernel.sgd_update(w2, g, h2, 0.9, 0.01, decay)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_array_equal(w2, w)


def test_only_large_contiguous_same_dtype_arrays_are_fused():
    big = np.zeros(sgd_kernel.MIN_SIZE, dtype=np.float32)
    assert sgd_kernel.fusable(big, big.copy(), big.copy(), 1.0, 0.1)
    assert not sgd_kernel.fusable(big[:10], big[:10], big[:10], 1.0, 0.1)  # small
    assert not sgd_kernel.fusable(big, big.astype(np.float64), big, 1.0, 0.1)  # mixed dtypes
    assert not sgd_kernel.fusable(big, big, big, np.ones(big.size), 0.1)  # per-element lr_mult
    two = np.zeros((2, sgd_kernel.MIN_SIZE), dtype=np.float32)
    assert not sgd_kernel.fusable(two[:, ::2], two[:, ::2], two[:, ::2], 1.0, 0.1)  # strided view
