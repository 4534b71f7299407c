"""GradientAccumulator (Caffe's iter_size): k batches of B/k give the step one batch of B gives."""
import numpy
import pytest

from minwa.net import Net
from minwa.parallel.gradient_accumulator import GradientAccumulator
from minwa.parallel.single import SingleProcess
from minwa.solver import Solver

BATCH, STEPS = 8, 3
SOLVER = {"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}


def model(batch):
    return {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 2, 6, 6]}, {"dim": [batch]}]}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "convolution_param": {"num_output": 3, "kernel_size": 3, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "relu", "type": "ReLU", "bottom": "conv", "top": "conv"},
        {"name": "ip", "type": "InnerProduct", "bottom": "conv", "top": "ip",
         "inner_product_param": {"num_output": 4, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}


def data():
    rng = numpy.random.default_rng(5)
    return rng.normal(size=(STEPS, BATCH, 2, 6, 6)), rng.integers(0, 4, size=(STEPS, BATCH))


def run(iter_size, solver=SOLVER):
    net = Net(model(BATCH // iter_size), dtype="float64", seed=1)
    sgd = Solver(net, dict(solver, iter_size=iter_size))
    engine = SingleProcess(net, sgd)
    accumulate = GradientAccumulator(net, engine, iter_size)
    xs, ys = data()
    losses = []
    for step in range(STEPS):
        parts = iter(range(iter_size))
        size = BATCH // iter_size

        def feed(step=step, parts=parts, size=size):
            i = next(parts)
            return {"data": xs[step, i * size:(i + 1) * size], "label": ys[step, i * size:(i + 1) * size]}

        outputs = accumulate.forward(feed)
        losses.append(float(outputs["loss"]))
        assert net.loss == pytest.approx(losses[-1])
        engine.backward_and_update()
    return {p.name: p.data.copy() for p in net.params}, losses


@pytest.mark.parametrize("iter_size", [2, 4])
def test_iter_size_batches_give_the_full_batch_step(iter_size):
    want, want_losses = run(1)
    got, losses = run(iter_size)
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-13, err_msg=name)
    numpy.testing.assert_allclose(losses, want_losses, rtol=1e-10)  # the mean of the batches' losses


def test_clipping_with_iter_size_clips_the_summed_gradient_as_caffe():
    """Caffe clips the sum of the k batches' diffs, then divides by k."""
    solver = dict(SOLVER, clip_gradients=0.05)
    got, _ = run(2, solver)
    # by hand: the full-batch gradient g is the mean; Caffe compares |2g| (the sum) with the limit
    net = Net(model(BATCH), dtype="float64", seed=1)
    sgd = Solver(net, SOLVER)
    xs, ys = data()
    for step in range(STEPS):
        net.forward({"data": xs[step], "label": ys[step]})
        net.backward()
        norm = numpy.sqrt(sum(float((p.grad ** 2).sum()) for p in net.params))
        if 2 * norm > 0.05:
            for p in net.params:
                p.grad = p.grad * (0.05 / (2 * norm))
        sgd.step()
    for p in net.params:
        numpy.testing.assert_allclose(got[p.name], p.data, rtol=1e-10, atol=1e-13, err_msg=p.name)
