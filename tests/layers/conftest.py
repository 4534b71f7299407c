"""Shared helpers for the layer tests: build one layer alone, and a float64 central-difference gradient check.

Tests run with --import-mode=importlib, so the helpers are handed out as fixtures.
"""
import numpy as np
import pytest

import minwa.layers  # noqa: F401 - registers every layer type
from minwa.layers import layer_class


def build_layer(spec, bottom_shapes, phase="TRAIN", dtype="float64", seed=0, param_scale=0.5, allocate=True):
    """A layer set up for ``bottom_shapes``; parameters drawn N(0, param_scale) (None keeps the fillers)."""
    spec = dict(spec)
    spec.setdefault("name", spec["type"].lower())
    spec.setdefault("bottom", [f"b{i}" for i in range(len(bottom_shapes))])
    spec.setdefault("top", ["t0"])
    layer = layer_class(spec["type"])(spec, phase=phase)
    layer.dtype = np.dtype(dtype)
    top_shapes = layer.setup([tuple(s) for s in bottom_shapes])
    rng = np.random.default_rng(seed)
    from minwa.layers.fillers import fill

    for p in layer.params if allocate else ():
        if param_scale is None or p.lr_mult == 0:
            p.data = fill(p.filler, p.shape, dtype, rng)
        else:
            p.data = (rng.standard_normal(p.shape) * param_scale).astype(dtype)
    return layer, top_shapes


def check_gradients(layer, bottoms, wrt=None, check_params=True, eps=1e-6, rtol=1e-6, atol=1e-8,
                    reset=None, seed=1):
    """Compare backward() with central differences of sum(top * R) for random R.

    ``wrt`` lists the bottom indices to check (default: all floating ones); ``reset``
    runs before every forward (e.g. to replay a dropout mask).
    """
    rng = np.random.default_rng(seed)
    bottoms = [np.array(b, dtype=np.float64) if np.issubdtype(np.asarray(b).dtype, np.floating) else b
               for b in bottoms]
    if wrt is None:
        wrt = [i for i, b in enumerate(bottoms) if np.issubdtype(b.dtype, np.floating)]

    def forward():
        if reset is not None:
            reset()
        return layer.forward(list(bottoms))

    tops = forward()
    weights = [rng.standard_normal(np.shape(t)) for t in tops]

    def objective():
        return sum(float(np.sum(np.asarray(t) * w)) for t, w in zip(forward(), weights))

    def numeric(array):
        grad = np.zeros(array.shape)
        flat, gflat = array.reshape(-1), grad.reshape(-1)
        for k in range(flat.size):
            keep = flat[k]
            flat[k] = keep + eps
            up = objective()
            flat[k] = keep - eps
            down = objective()
            flat[k] = keep
            gflat[k] = (up - down) / (2 * eps)
        return grad

    forward()
    propagate = [i in wrt for i in range(len(bottoms))]
    analytic = layer.backward([w.astype(np.float64) for w in weights], propagate)
    param_grads = [np.array(p.grad) for p in layer.params]
    assert len(analytic) == len(bottoms), "backward must return one entry per bottom"
    checked = 0
    for i in wrt:
        expected = numeric(bottoms[i])
        assert analytic[i] is not None, f"no gradient for bottom {i}"
        assert analytic[i].shape == bottoms[i].shape
        np.testing.assert_allclose(analytic[i], expected, rtol=rtol, atol=atol, err_msg=f"bottom {i}")
        checked += 1
    if check_params:
        for p, got in zip(layer.params, param_grads):
            if p.lr_mult == 0:
                continue
            expected = numeric(p.data)
            assert got.shape == p.data.shape and got.dtype == p.data.dtype
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"param {p.name}")
            checked += 1
    assert checked, "the gradient check compared nothing"
    return analytic


def spaced(rng, shape, gap=0.01):
    """Values that are pairwise at least ``gap`` apart (no max-pool / max ties near a kink)."""
    count = int(np.prod(shape))
    return (rng.permutation(count) * gap - count * gap / 2).reshape(shape) + gap / 4


def away_from_zero(rng, shape, margin=1e-3):
    """Normal values resampled so none lies within ``margin`` of 0 (the ReLU kink)."""
    x = rng.standard_normal(shape)
    x[np.abs(x) < margin] = margin * 10
    return x


@pytest.fixture
def make_layer():
    return build_layer


@pytest.fixture
def gradcheck():
    return check_gradients


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def helpers():
    class H:
        pass

    h = H()
    h.spaced, h.away_from_zero = spaced, away_from_zero
    return h


@pytest.fixture(params=["numpy", "numba"])
def kernel_path(request, monkeypatch):
    """Run a test on the numpy passes and on the compiled kernels of _jit.py (skipped without numba)."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("MINWA_NUMBA", "1" if request.param == "numba" else "0")
    return request.param
