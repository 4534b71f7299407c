"""What the DataParallel tests share: the test net, solvers, the one-process reference and the worker runs.

Not a test file: the DataParallel test files import it (their folder is put on
sys.path), both in pytest and in their workers under mpiexec. The net has
convolution, LRN, max and average pooling, dropout and fully connected layers.
"""
import json
import os

import numpy

from minwa.net import Net
from minwa.solver import Solver

BATCH, STEPS = 8, 3
SOLVERS = {
    "sgd": {"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "lr_policy": "step", "stepsize": 2, "gamma": 0.5},
    "nesterov": {"type": "Nesterov", "base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    "adam": {"type": "Adam", "base_lr": 0.01, "momentum": 0.9, "momentum2": 0.999, "weight_decay": 0.001},
    "clip": {"base_lr": 0.05, "momentum": 0.9, "clip_gradients": 0.5},
}


def model(batch, conv2_outputs=6, conv2_name="conv2"):
    """The test net at ``batch`` images; conv2 may be given another width or name (the start-up agreement test)."""
    def conv(name, bottom, outputs):
        return {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
                "convolution_param": {"num_output": outputs, "kernel_size": 3, "pad": 1,
                                      "weight_filler": {"type": "gaussian", "std": 0.3},
                                      "bias_filler": {"type": "constant", "value": 0.1}}}

    return {"name": "dp_test", "layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 3, 8, 8]}, {"dim": [batch]}]}},
        conv("conv1", "data", 4),
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "norm1", "type": "LRN", "bottom": "pool1", "top": "norm1",
         "lrn_param": {"local_size": 3, "alpha": 0.1, "beta": 0.75}},
        {**conv(conv2_name, "norm1", conv2_outputs), "param": [{"lr_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]},
        {"name": "relu2", "type": "ReLU", "bottom": conv2_name, "top": conv2_name},
        {"name": "pool2", "type": "Pooling", "bottom": conv2_name, "top": "pool2",
         "pooling_param": {"pool": "AVE", "kernel_size": 2, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool2", "top": "ip1",
         "inner_product_param": {"num_output": 16, "weight_filler": {"type": "xavier"}}},
        {"name": "drop1", "type": "Dropout", "bottom": "ip1", "top": "ip1", "dropout_param": {"dropout_ratio": 0.5}},
        {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "ip2",
         "inner_product_param": {"num_output": 5, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss"},
    ]}


def batches(steps=STEPS, batch=BATCH):
    """Global batches; step k's data does not depend on how many steps are asked for."""
    rngs = [numpy.random.default_rng([7, k]) for k in range(steps)]
    return (numpy.stack([r.normal(size=(batch, 3, 8, 8)) for r in rngs]),
            numpy.stack([r.integers(0, 5, size=batch) for r in rngs]))


def reference(solver="sgd", dtype="float64", steps=STEPS, skip=()):
    """One process, whole batch: what every data-parallel run must reproduce."""
    net = Net(model(BATCH), dtype=dtype, seed=3)
    sgd = Solver(net, SOLVERS[solver])
    xs, ys = batches(steps)
    for k in range(steps):
        net.forward({"data": xs[k].astype(dtype), "label": ys[k]})
        if k in skip:
            sgd.iter += 1
            continue
        net.backward()
        sgd.step()
    return {p.name: p.data for p in net.params}, sgd


def load(directory, name, n):
    """(every rank's saved weights, rank 0's summary) of the run ``name`` (``save_run``)."""
    ranks = []
    for rank in range(n):
        with numpy.load(os.path.join(directory, f"{name}.rank{rank}.npz")) as f:
            ranks.append({k: f[k] for k in f.files})
    with open(os.path.join(directory, f"{name}.json"), encoding="utf-8") as f:
        info = json.load(f)
    return ranks, info


def assert_same_weights(got, want, rtol, atol):
    """The same parameters, each within rtol/atol of the reference."""
    assert sorted(got) == sorted(want)
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


def train_data_parallel(comm, name, options, solver, dtype, net_model=None, steps=STEPS, start=0, init=None,
                        state=None, rng_state=None):
    """This rank's part of ``steps`` steps of DataParallel training; returns (net, engine, what went on the wire)."""
    from minwa.parallel.data import DataParallel

    options = dict(options)
    skip = options.pop("skip", ())
    rank, n = comm.rank, comm.size
    local = BATCH // n
    net = Net(net_model or model(local), dtype=dtype, seed=3)
    if init is not None:
        for p in net.params:
            p.data[...] = init[p.name]
    if rng_state is not None:  # continue the dropout mask stream where the first run stopped
        net.layer("drop1").rng.bit_generator.state = rng_state
    sgd = Solver(net, SOLVERS[solver])
    engine = DataParallel(net, sgd, comm, **options)
    if state is not None:
        engine.load_solver_state(state)
    xs, ys = batches(start + steps)
    bytes_before, collectives_before = comm.bytes_sent, comm.counters["collectives"]
    pending = False
    for k in range(start, start + steps):
        rows = slice(rank * local, (rank + 1) * local)
        feed = {"data": xs[k, rows].astype(dtype), "label": ys[k, rows]}
        if k in skip:
            engine.forward(feed)
            engine.skip_update()
            continue
        engine.step(feed)
        pending = pending or any(b.handle is not None for b in engine.buckets)
    engine.finish()
    info = {"bytes_sent": comm.bytes_sent - bytes_before,
            "collectives": comm.counters["collectives"] - collectives_before,
            "bucket_sizes": [b.size for b in engine.buckets], "pending": pending, "metrics": engine.metrics(),
            "progress_thread": engine._progress is not None, "polls_between_chunks": engine._polling}
    return net, engine, info


def save_run(directory, name, comm, net, info):
    """Each rank's weights as <name>.rank<k>.npz; rank 0 writes every rank's traffic as <name>.json."""
    numpy.savez(os.path.join(directory, f"{name}.rank{comm.rank}.npz"),
                **{p.name: numpy.asarray(p.data) for p in net.params})
    gathered = comm.gather(info, root=0)
    if comm.rank == 0:
        summary = {"bucket_sizes": info["bucket_sizes"], "bytes_sent": [g["bytes_sent"] for g in gathered],
                   "collectives_during_steps": [g["collectives"] for g in gathered],
                   "pending_after_step": [g["pending"] for g in gathered], "metrics": info["metrics"],
                   "progress_thread": [g["progress_thread"] for g in gathered],
                   "polls_between_chunks": [g["polls_between_chunks"] for g in gathered]}
        with open(os.path.join(directory, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f)


def run_worker(workers, argv):
    """The worker part of a test file, under mpiexec (or as one process): an error on one rank aborts them all."""
    from minwa.comm import get_world

    comm = get_world()
    with comm.abort_on_error():
        workers[argv[0]](comm, *argv[1:])
