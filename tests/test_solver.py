"""Solver: Caffe's update arithmetic and learning-rate policies, checked by hand."""
import numpy
import pytest

from minwa.errors import ConfigError
from minwa.layers.param import Param
from minwa.solver import Solver, learning_rate, normalize_solver_config


def _param(name, values, grad, lr_mult=1.0, decay_mult=1.0):
    p = Param(name, numpy.shape(values), None, lr_mult=lr_mult, decay_mult=decay_mult)
    p.data = numpy.array(values, dtype=numpy.float64)
    p.grad = numpy.array(grad, dtype=numpy.float64)
    return p


def test_sgd_two_steps_match_caffe_by_hand():
    w = _param("w", [1.0, -2.0], [0.5, 0.25], lr_mult=1.0, decay_mult=1.0)
    b = _param("b", [0.1], [1.0], lr_mult=2.0, decay_mult=0.0)
    solver = Solver([w, b], {"base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.01})
    solver.step()
    # Caffe: g' = g + wd*decay_mult*w; h = m*h + lr*lr_mult*g'; w -= h
    h_w = 0.1 * (numpy.array([0.5, 0.25]) + 0.01 * numpy.array([1.0, -2.0]))
    h_b = 0.1 * 2.0 * numpy.array([1.0])
    numpy.testing.assert_allclose(w.data, [1.0, -2.0] - h_w)
    numpy.testing.assert_allclose(b.data, [0.1] - h_b)
    w_before = w.data.copy()
    solver.step()  # same gradients again: the history carries momentum
    h_w2 = 0.9 * h_w + 0.1 * (numpy.array([0.5, 0.25]) + 0.01 * w_before)
    numpy.testing.assert_allclose(w.data, w_before - h_w2)
    assert solver.iter == 2


def test_lr_mult_zero_freezes_a_param():
    p = _param("frozen", [1.0], [5.0], lr_mult=0.0)
    Solver([p], {"base_lr": 1.0}).step()
    assert p.data[0] == 1.0


def test_clip_gradients_leaves_lr_mult_zero_blobs_out_of_the_norm():
    """Caffe computes no diff for lr_mult 0 blobs, so they add nothing to the clipping norm."""
    w = _param("w", [0.0, 0.0], [3.0, 4.0])
    frozen = _param("frozen", [0.0], [100.0], lr_mult=0.0)
    solver = Solver([w, frozen], {"base_lr": 1.0, "clip_gradients": 1.0})
    assert solver.clip_scale() == pytest.approx(1.0 / 5.0)  # the norm is 5, not sqrt(25 + 100**2)
    solver.step()
    numpy.testing.assert_allclose(w.data, [-0.6, -0.8])
    assert frozen.data[0] == 0.0


def test_nesterov_matches_caffe_formula():
    p = _param("w", [1.0], [2.0])
    solver = Solver([p], {"type": "Nesterov", "base_lr": 0.1, "momentum": 0.5})
    solver.step()
    # h_old = 0, h = 0.2; update = (1+m)h - m h_old = 0.3
    numpy.testing.assert_allclose(p.data, [0.7])
    solver.step()
    # h_old = 0.2, h = 0.5*0.2 + 0.2 = 0.3; update = 1.5*0.3 - 0.5*0.2 = 0.35
    numpy.testing.assert_allclose(p.data, [0.35])


def test_adam_first_step_is_lr_times_sign():
    p = _param("w", [1.0, 1.0], [3.0, -0.5])
    Solver([p], {"type": "Adam", "base_lr": 0.01, "momentum": 0.9, "momentum2": 0.999, "delta": 1e-8}).step()
    numpy.testing.assert_allclose(p.data, [1.0 - 0.01, 1.0 + 0.01], rtol=1e-6)


@pytest.mark.parametrize("cfg,it,expected", [
    ({"lr_policy": "fixed"}, 500, 0.01),
    ({"lr_policy": "step", "stepsize": 100, "gamma": 0.5}, 250, 0.01 * 0.25),
    ({"lr_policy": "multistep", "stepvalue": [10, 20], "gamma": 0.1}, 15, 0.001),
    ({"lr_policy": "inv", "gamma": 0.0001, "power": 0.75}, 1000, 0.01 * 1.1 ** -0.75),
    ({"lr_policy": "poly", "power": 2.0, "max_iter": 100}, 50, 0.01 * 0.25),
    ({"lr_policy": "exp", "gamma": 0.5}, 3, 0.01 / 8),
])
def test_learning_rate_policies(cfg, it, expected):
    assert learning_rate(normalize_solver_config({"base_lr": 0.01, **cfg}), it) == pytest.approx(expected)


@pytest.mark.parametrize("cfg,field", [
    ({"base_lr": -1}, "base_lr"),
    ({"momentum": 1.5}, "momentum"),
    ({"lr_policy": "cosine"}, "lr_policy"),
    ({"lr_policy": "step"}, "stepsize"),
    ({"type": "RMSProp2"}, "type"),
    ({"max_iter": "many"}, "max_iter"),
    ({"base_rl": 0.1}, "base_rl"),
])
def test_bad_solver_values_name_the_field(cfg, field):
    with pytest.raises(ConfigError, match=field):
        normalize_solver_config(cfg)


def test_state_dict_round_trip():
    p = _param("w", [1.0, 2.0], [0.1, 0.2])
    solver = Solver([p], {"base_lr": 0.1, "momentum": 0.9})
    solver.step()
    saved = solver.state_dict()
    q = _param("w", p.data.copy(), [0.1, 0.2])
    other = Solver([q], {"base_lr": 0.1, "momentum": 0.9})
    other.load_state_dict(saved)
    solver.step()
    other.step()
    numpy.testing.assert_array_equal(p.data, q.data)
    assert other.iter == 2
