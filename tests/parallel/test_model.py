"""ModelDataParallel: N ranks with FC layers split by neurons give the weights of one process at batch B.

Nets: cifar10_full (ip1 with 10 outputs: uneven on 4 ranks) and a small net with three FC
layers, ReLU and Dropout between them. The reference is single-process training in this
process; the runs are workers of this file under ``mpiexec -n 2`` / ``-n 4`` (with a
timeout) that save the whole (gathered) weights and their byte counts per rank.
"""
import json
import os
import sys

import numpy
import pytest

from minwa.comm import part_bounds
from minwa.config import load_config
from minwa.net import Net
from minwa.solver import Solver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_parallel_cases import load  # noqa: E402 - beside this file, for the workers under mpiexec too

pytestmark = pytest.mark.mpi

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH, STEPS = 8, 3
SOLVER = {"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "lr_policy": "step", "stepsize": 2, "gamma": 0.5}
#: run name -> (net, parallel options)
RUNS = {
    "cifar_lazy": ("cifar", {"bucket_bytes": None}),
    "cifar_sync": ("cifar", {"lazy": False, "bucket_bytes": None}),
    "fc3_lazy": ("fc3", {"bucket_bytes": None}),
    "fc3_lazy_buckets": ("fc3", {"bucket_bytes": 0}),
    "fc3_sharded_update": ("fc3", {"sharded": True, "bucket_bytes": 0}),
    "fc3_int8": ("fc3", {"strategy": "butterfly_int8", "int8_block": 64, "bucket_bytes": 0}),
    "cifar_int8": ("cifar", {"strategy": "butterfly_int8", "int8_block": 64, "bucket_bytes": None}),
}




def butterfly_bytes(n_elements, size, rank, itemsize):
    lo, hi = part_bounds(n_elements, size)[rank]
    return itemsize * ((n_elements - (hi - lo)) + (size - 1) * (hi - lo))


def cifar_model(batch):
    model = load_config(os.path.join(ROOT, "configs", "cifar10_full.yaml"), validate=False).model
    layers = [dict(layer) for layer in model["layers"]]
    layers[0] = {**layers[0], "input_param": {"shape": [{"dim": [batch, 3, 32, 32]}, {"dim": [batch]}]}}
    return {"name": "cifar", "layers": layers}


def fc3_model(batch):
    def ip(name, bottom, outputs):
        return {"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
                "param": [{"lr_mult": 1}, {"lr_mult": 2, "decay_mult": 0}],
                "inner_product_param": {"num_output": outputs, "weight_filler": {"type": "xavier"},
                                        "bias_filler": {"type": "constant", "value": 0.1}}}

    return {"name": "fc3", "layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 3, 8, 8]}, {"dim": [batch]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1,
                               "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        ip("ip1", "pool1", 16),
        {"name": "relu_ip1", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
        {"name": "drop1", "type": "Dropout", "bottom": "ip1", "top": "ip1", "dropout_param": {"dropout_ratio": 0.5}},
        ip("ip2", "ip1", 14),
        {"name": "relu_ip2", "type": "ReLU", "bottom": "ip2", "top": "ip2"},
        {"name": "drop2", "type": "Dropout", "bottom": "ip2", "top": "ip2", "dropout_param": {"dropout_ratio": 0.3}},
        ip("ip3", "ip2", 5),
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip3", "label"], "top": "loss"},
    ]}


MODELS = {"cifar": cifar_model, "fc3": fc3_model}
SHAPES = {"cifar": (3, 32, 32), "fc3": (3, 8, 8)}


def batches(kind, steps=STEPS, batch=BATCH):
    rngs = [numpy.random.default_rng([11, k]) for k in range(steps)]
    classes = 10 if kind == "cifar" else 5
    return (numpy.stack([r.normal(size=(batch,) + SHAPES[kind]) for r in rngs]),
            numpy.stack([r.integers(0, classes, size=batch) for r in rngs]))


def reference(kind, steps=STEPS):
    net = Net(MODELS[kind](BATCH), dtype="float64", seed=5)
    solver = Solver(net, SOLVER)
    xs, ys = batches(kind, steps)
    for k in range(steps):
        net.forward({"data": xs[k], "label": ys[k]})
        net.backward()
        solver.step()
    return {p.name: p.data for p in net.params}, solver


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4])
def test_n_ranks_equal_one_process(tmp_path, n, mpirun):
    mpirun(n, __file__, ["train", tmp_path, ",".join(RUNS)], timeout=300)
    for name, (kind, _) in RUNS.items():
        want, _ = reference(kind)
        ranks, info = load(tmp_path, name, n)
        for rank, got in enumerate(ranks):
            assert sorted(got) == sorted(want)
            for key in got:  # every rank gathers the same whole weights
                numpy.testing.assert_array_equal(got[key], ranks[0][key], err_msg=f"{name} rank {rank} {key}")
        got = ranks[0]
        if "int8" in name:
            start = {p.name: p.data for p in Net(MODELS[kind](BATCH), dtype="float64", seed=5).params}
            moved = max(numpy.abs(want[k] - start[k]).max() for k in want)
            error = max(numpy.abs(got[k] - want[k]).max() for k in want)
            assert 0 < error <= 0.05 * moved, name  # the tolerance the data-parallel int8 test uses
            fc = [k for k in want if k.startswith("ip")]
            assert max(numpy.abs(got[k] - want[k]).max() for k in fc) < 0.05 * moved
            continue
        for key in want:
            numpy.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=f"{name} {key}")


def _formula(kind, n, rank, batch=BATCH):
    """The ShardedInnerProduct docstring's bytes per step for this rank, written out by hand."""
    b = batch // n
    if kind == "cifar":
        n_in, n_out = 64 * 4 * 4, 10
        o = part_bounds(n_out, n)[rank]
        o_k = o[1] - o[0]
        return 8 * ((n - 1) * b * n_in + (batch * n_in - b * n_in) + (batch - b) * o_k + b * (n_out - o_k))
    dims = [4 * 4 * 4, 16, 14, 5]
    total = 0
    for layer, (n_in, n_out) in enumerate(zip(dims, dims[1:])):
        lo, hi = part_bounds(n_out, n)[rank]
        if layer == 0:
            mine = b * n_in
        else:
            plo, phi = part_bounds(n_in, n)[rank]
            mine = batch * (phi - plo)
        total += (n - 1) * mine + batch * n_in - mine
        if layer == 2:
            total += (batch - b) * (hi - lo) + b * (n_out - (hi - lo))
    return 8 * total


@pytest.mark.parametrize("n", [2, 4])
def test_bytes_sent_equal_the_formula_and_fc_memory_is_one_nth(tmp_path, n, mpirun):
    mpirun(n, __file__, ["train", tmp_path, "cifar_lazy,fc3_lazy"], timeout=300)
    for name in ("cifar_lazy", "fc3_lazy"):
        kind = RUNS[name][0]
        _, info = load(tmp_path, name, n)
        for rank in range(n):
            fc = _formula(kind, n, rank)
            conv = butterfly_bytes(info["conv_gradient_elements"], n, rank, 8)
            assert info["bytes_sent"][rank] == STEPS * (fc + conv), (name, rank)
            assert info["fc_comm_bytes_per_step"][rank] == fc
        whole = info["fc_bytes_whole"][0]
        per_rank = info["fc_bytes_per_rank"]
        assert sum(per_rank) == whole  # the shards add up to the whole layers, nothing is held twice
        outputs = {"cifar": [10], "fc3": [16, 14, 5]}[kind]
        slack = 3 * 8 * sum(1 + i for i in [64 * 4 * 4 if kind == "cifar" else 64, 16, 14][:len(outputs)])
        assert max(per_rank) - min(per_rank) <= slack  # at most one neuron's row more per layer
        assert all(abs(m - whole / n) <= slack for m in per_rank)


class _FakeComm:
    """Enough of a communicator for the checks that run before any communication."""

    def __init__(self, size):
        self.rank, self.size = 0, size

    def dup(self):
        return self


def _error(model, solver=SOLVER, size=2):
    from minwa.errors import ConfigError
    from minwa.parallel.model import ModelDataParallel

    net = Net(model, dtype="float64", seed=5)
    with pytest.raises(ConfigError) as info:
        ModelDataParallel(net, Solver(net, solver), _FakeComm(size))
    return str(info.value)


def test_config_errors_name_the_place_before_any_communication():
    conv = fc3_model(4)
    conv["layers"][1] = {**conv["layers"][1], "shard": True}
    assert "layer 'conv1' (Convolution), field 'shard': only InnerProduct layers can be sharded" in _error(conv)
    assert "layer 'ip3' (InnerProduct): 5 outputs cannot be split over 8 ranks" in _error(fc3_model(4), size=8)
    value = fc3_model(4)
    value["layers"][4] = {**value["layers"][4], "shard": "yes"}
    from minwa.errors import ConfigError

    with pytest.raises(ConfigError, match="layer 'ip1' \\(InnerProduct\\), field 'shard': expected true or false"):
        Net(value, dtype="float64", seed=5)  # the layer schema refuses it while the net is built
    assert "solver.clip_gradients" in _error(fc3_model(4), {**SOLVER, "clip_gradients": 1.0})


def test_plan_layouts_and_shard_false():
    from minwa.parallel.shard_plan import ShardPlan

    net = Net(fc3_model(4), init=False)
    plan = ShardPlan(net.layers, 4)
    names = {net.layers[i].name: (e.input, e.output) for i, e in plan.entries.items()}
    assert names == {"ip1": ("batch", "feature"), "ip2": ("feature", "feature"), "ip3": ("feature", "batch")}
    assert sorted(net.layers[i].name for i in plan.feature_dropouts) == ["drop1", "drop2"]
    assert [hi - lo for lo, hi in plan.entries[10].bounds] == [2, 1, 1, 1]  # 5 outputs on 4 ranks
    partial = fc3_model(4)
    partial["layers"][7] = {**partial["layers"][7], "shard": False}
    net = Net(partial, init=False)
    plan = ShardPlan(net.layers, 2)
    names = {net.layers[i].name: (e.input, e.output) for i, e in plan.entries.items()}
    assert names == {"ip1": ("batch", "batch"), "ip3": ("batch", "batch")}
    assert plan.feature_dropouts == {}


def test_model_data_on_one_rank_is_refused_before_compute():
    from minwa.errors import ConfigError
    from minwa.parallel.model import ModelDataParallel
    from minwa.trainer import build_engine

    net = Net(fc3_model(BATCH), dtype="float64", seed=5)

    class Job:
        parallel = {"mode": "model-data"}

    with pytest.raises(ConfigError, match="parallel.mode 'model-data' needs more than one rank"):
        build_engine(net, Solver(net, SOLVER), None, Job())

    class One:
        rank, size = 0, 1

    with pytest.raises(ConfigError, match="needs more than one rank"):
        ModelDataParallel(net, Solver(net, SOLVER), One())


# ------------------------------------------------------------------------------------------ workers
def _worker_train(comm, directory, names):
    from minwa.parallel.model import ModelDataParallel

    for name in names:
        kind, options = RUNS[name]
        n, rank = comm.size, comm.rank
        b = BATCH // n
        net = Net(MODELS[kind](b), dtype="float64", seed=5)
        solver = Solver(net, SOLVER)
        engine = ModelDataParallel(net, solver, comm, **options)
        xs, ys = batches(kind)
        for k in range(STEPS):
            engine.step({"data": xs[k][rank * b:(rank + 1) * b], "label": ys[k][rank * b:(rank + 1) * b]})
        engine.finish()
        stats = engine.stats()
        whole = engine.whole_params()
        engine.close()
        numpy.savez(os.path.join(directory, f"{name}.rank{rank}.npz"), **whole)
        info = {key: comm.allgather(stats[key]) for key in
                ("bytes_sent", "fc_bytes_per_rank", "fc_bytes_whole", "fc_comm_bytes_per_step")}
        info["conv_gradient_elements"] = stats["conv_gradient_bytes"] // 8
        if rank == 0:
            with open(os.path.join(directory, f"{name}.json"), "w", encoding="utf-8") as f:
                json.dump(info, f)


def main(argv):
    from minwa.comm import get_world

    comm = get_world()
    command, directory = argv[0], argv[1]
    if command == "train":
        _worker_train(comm, directory, argv[2].split(","))


if __name__ == "__main__":
    main(sys.argv[1:])
