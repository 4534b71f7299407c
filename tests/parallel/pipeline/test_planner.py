"""plan_cuts: the predicted times follow the FLOPs and bytes, and the best cut moves with the bandwidth."""
import pytest

from minwa.errors import ConfigError
from minwa.net import Net
from minwa.parallel.pipeline.planner import candidate_splits, parse_rate, plan_cuts


def _row(rows, cut):
    return next(r for r in rows if r["cut"] == cut)


def test_times_are_flops_over_rate_and_bytes_over_bandwidth(pipe):
    model = pipe.chain_model()
    rows = plan_cuts(model, client_flops=1e6, cloud_flops=1e8, bandwidth=1e6, latency=0.01, dtype="uint8")
    net = Net(model, phase="TEST", init=False)
    flops = {layer.name: layer.flops(layer.bottom_shapes, layer.top_shapes) for layer in net.layers}
    row = _row(rows, "pool1")
    assert row["bytes"] == 4 * 4 * 4 * 4
    assert row["client_s"] == pytest.approx((flops["conv1"] + flops["pool1"]) / 1e6)
    assert row["cloud_s"] == pytest.approx((flops["conv2"] + flops["ip"]) / 1e8)
    back = 4 * 5 * 4 + 2 * 84
    assert row["link_s"] == pytest.approx((256 + 84 + back) * 8 / 1e6 + 0.01)
    assert row["latency_s"] == pytest.approx(row["client_s"] + row["link_s"] + row["cloud_s"])
    assert row["throughput"] == pytest.approx(1 / max(row["client_s"], row["link_s"], row["cloud_s"]))
    assert rows == sorted(rows, key=lambda r: r["latency_s"])


def test_the_best_cut_moves_with_the_link(pipe):
    model = pipe.chain_model()
    slow_client = plan_cuts(model, client_flops=1e3, cloud_flops=1e12, bandwidth=1e10, dtype="uint8")
    assert slow_client[0]["cut"] == "data (cloud-only)"
    slow_link = plan_cuts(model, client_flops=1e9, cloud_flops=1e12, bandwidth=1e2, dtype="uint8")
    assert slow_link[0]["cut"] == "client-only"


def test_pairs_are_tried_for_a_branchy_net(pipe):
    _, splits = candidate_splits(pipe.branchy_model())
    cuts = {tuple(s.blobs) for s in splits}
    assert ("a", "b") in cuts and ("conv1",) in cuts and ("a",) not in cuts


def test_profile_measures_layers_here(pipe):
    rows = plan_cuts(pipe.chain_model(), bandwidth=1e9, profile=True)
    assert all(r["client_s"] >= 0 and r["cloud_s"] >= 0 for r in rows)
    assert _row(rows, "client-only")["client_s"] > 0


def test_bad_inputs_are_named(pipe):
    with pytest.raises(ConfigError, match="--client-flops"):
        plan_cuts(pipe.chain_model(), bandwidth=1e9)
    with pytest.raises(ConfigError, match="bandwidth 'fast'"):
        parse_rate("fast")
    assert parse_rate("10mbit") == 1e7 and parse_rate("1gbit") == 1e9 and parse_rate("2.5e9") == 2.5e9
