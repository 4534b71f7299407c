"""CostModel: bytes equal the engines' formulas, compute is FLOPs / rate, overlap hides what the window allows."""
import os
import sys

import pytest

from minwa.config import load_config
from minwa.launch.plan_command import _net_at
from minwa.net import Net
from minwa.parallel.cost_model import CostModel, Machine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_model import BATCH, _formula, fc3_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def deep_image(batch=64):
    return _net_at(load_config(os.path.join(ROOT, "configs", "deep_image.yaml"), validate=False), batch)


def fc3(batch):
    return Net(fc3_model(batch), init=False)


def test_data_parallel_bytes_are_the_butterfly_bound_and_compute_is_flops_over_rate():
    net = fc3(4)
    model = CostModel(net, Machine(1e9, 1e30), itemsize=8)
    params = sum(p.size for p in net.params) * 8
    for n in (2, 4, 8):
        row = model.data(n)
        assert row["bytes_per_rank"] == pytest.approx(2 * (n - 1) / n * params)
        assert row["step_s"] == pytest.approx(3 * net.flops() / 1e9)  # an infinitely fast link hides nothing
    assert model.data(1)["bytes_per_rank"] == 0


def test_host_cost_of_sending_is_added_to_the_compute_and_grows_when_ranks_share_cores():
    net = fc3(4)
    h = 1e-9
    bare = CostModel(net, Machine(1e9, 1e30, cores=2), itemsize=8)
    hosted = CostModel(net, Machine(1e9, 1e30, cores=2, host_s_per_byte=h), itemsize=8)
    for n, shared in ((2, 1.0), (4, 2.0)):  # 4 ranks on 2 cores: each rank's sends take twice its time
        data, extra = bare.data(n), hosted.data(n)
        assert extra["host_s"] == pytest.approx(h * data["bytes_per_rank"] * shared)
        assert extra["step_s"] == pytest.approx(data["step_s"] + extra["host_s"])  # never hidden behind compute
        sharded, sharded_hosted = bare.model_data(n), hosted.model_data(n)
        assert sharded_hosted["step_s"] == pytest.approx(sharded["step_s"] + h * sharded["bytes_per_rank"] * shared)


@pytest.mark.parametrize("n", [2, 4])
def test_model_data_bytes_equal_the_sharded_layer_formula(n):
    net = fc3(BATCH // n)
    row = CostModel(net, Machine(1e9, 1e9), itemsize=8).model_data(n)
    conv = sum(p.size for p in net.params if p.name.startswith("conv")) * 8
    assert row["bytes_per_rank"] == pytest.approx(_formula("fc3", n, 0) + 2 * (n - 1) / n * conv)


def test_model_data_is_refused_where_a_layer_has_fewer_outputs_than_ranks():
    model = CostModel(fc3(2), Machine(1e9, 1e9))
    assert model.model_data(5) is not None and model.model_data(6) is None  # ip3 has 5 outputs
    assert model.compare([6])[0]["winner"] == "data"


def test_lazy_overlap_hides_transfers_up_to_the_compute_after_them():
    net = deep_image()
    slow = Machine(4.29e12, 56e9 / 8 / 20, 2e-6)  # a link 20x slower than FDR: more than the window
    lazy, sync = CostModel(net, slow), CostModel(net, slow, overlap=False)
    a, b = lazy.data(8), sync.data(8)
    assert b["exposed_comm_s"] == pytest.approx(b["overlapped_comm_s"])  # nothing hidden without overlap
    assert 0 < a["exposed_comm_s"] < b["exposed_comm_s"]
    assert a["exposed_comm_s"] >= b["overlapped_comm_s"] - (a["compute_s"] - 0)  # at most the compute hides it
    fast = CostModel(net, Machine(4.29e12, 56e9 / 8, 2e-6))
    assert fast.data(64)["exposed_comm_s"] == pytest.approx(0, abs=1e-3)  # 0.24 s under ~0.9 s of backward


def test_what_grows_with_n():
    """Data parallel sends 2(N-1)/N of the weights whatever N; model-data's FC exchange grows with B = N b."""
    model = CostModel(deep_image(), Machine(4.29e12, 56e9 / 8, 2e-6), overlap=False)
    data = [model.data(n)["bytes_per_rank"] for n in (8, 16, 32, 64)]
    assert data[-1] / data[0] < 1.15
    fc = [model.model_data(n)["critical_comm_s"] for n in (8, 16, 32, 64)]
    assert all(b / a > 1.7 for a, b in zip(fc, fc[1:]))
    # without overlap the bytes decide: model-data first, data parallel past N* ~ weights / (b * sum of FC inputs)
    rows = {r["n"]: r["winner"] for r in model.compare([2, 8, 32, 128])}
    assert rows == {2: "model-data", 8: "model-data", 32: "model-data", 128: "data"}


def test_bytes_crossover_is_the_first_n_where_model_data_sends_more():
    model = CostModel(deep_image(), Machine(4.29e12, 56e9 / 8, 2e-6))
    n = model.bytes_crossover()

    def sends_more(k):
        return model.model_data(k)["bytes_per_rank"] >= model.data(k)["bytes_per_rank"]

    assert 40 < n < 150 and sends_more(n) and not sends_more(n - 1)  # ~ weights / (b * sum of FC inputs)
    assert model.bytes_crossover(limit=32) is None
    found = set()
    for batch in range(2, 10):  # ip3 has 5 outputs: no split past N = 5, which doubling steps over (4 -> 8)
        small = CostModel(fc3(batch), Machine(1e9, 1e9))
        expected = next((k for k in range(2, 6) if small.model_data(k)["bytes_per_rank"]
                         >= small.data(k)["bytes_per_rank"]), None)
        assert small.bytes_crossover() == expected, batch
        found.add(expected)
    assert {None, 2, 3, 5} <= found  # never, at the first N, by bisection, and at the largest split
