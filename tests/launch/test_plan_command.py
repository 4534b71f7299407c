"""``minwa plan``: the table, the winner per N, --json, --profile and clear errors."""
import json
import os

import pytest

from minwa.errors import ConfigError
from minwa.launch import plan_command
from minwa.launch.cli import main as minwa_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEEP = os.path.join(ROOT, "configs", "deep_image.yaml")
PAPER = ["--gpus", "64", "--flops", "4.29e12", "--bandwidth", "56e9", "--latency", "2e-6", "--batch-per-gpu", "64"]


def test_table_and_json_for_the_paper_setting(capsys):
    assert minwa_main(["plan", DEEP, *PAPER]) == 0
    text = capsys.readouterr().out
    assert "64 images per device, 4.29e+12 FLOP/s" in text
    assert len([line for line in text.splitlines() if line.strip()[:1].isdigit()]) == 64
    assert "(about constant)" in text and "(growing with N); model-data sends more from N = " in text
    assert "time at N = 64: data parallel's " in text and "on the critical path" in text
    assert plan_command.main([DEEP, *PAPER, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {row["n"]: row for row in out["rows"]}
    assert sorted(rows) == list(range(1, 65)) and rows[1]["model_data"] is None
    assert f"model-data sends more from N = {out['bytes_crossover_n']}" in text
    for n in (8, 32, 64):
        assert rows[n]["winner"] in ("data", "model-data")
        assert rows[n]["data"]["compute_s"] == pytest.approx(3 * 64 * 31.09e9 / 4.29e12, rel=1e-3)
    plan_command.main([DEEP, *PAPER, "--json", "--no-overlap"])
    rows = {row["n"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[8]["winner"] == "model-data"


def test_host_cost_slows_only_the_ranks_that_send(capsys):
    args = [DEEP, "--gpus", "4", "--flops", "4.29e12", "--bandwidth", "56e9", "--batch-per-gpu", "64", "--json"]
    plan_command.main(args)
    bare = {row["n"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    plan_command.main(args + ["--host-ns-per-byte", "2"])
    hosted = {row["n"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert hosted[1]["data"]["step_s"] == bare[1]["data"]["step_s"]  # one device sends nothing
    for n in (2, 4):
        sent = bare[n]["data"]["bytes_per_rank"]
        assert hosted[n]["data"]["host_s"] == pytest.approx(2e-9 * sent)
        assert hosted[n]["data"]["step_s"] == pytest.approx(bare[n]["data"]["step_s"] + 2e-9 * sent)


def test_profile_fits_the_rate_here(capsys):
    config = os.path.join(ROOT, "configs", "default.yaml")
    assert plan_command.main([config, "--gpus", "2", "--batch-per-gpu", "4", "--profile", "--profile-steps", "1",
                              "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rate_flops"] > 1e6 and out["rate_from"].startswith("--profile")
    assert out["rows"][0]["data"]["step_s"] > 0


def test_errors():
    with pytest.raises(ConfigError, match="give --flops"):
        plan_command.main([DEEP, "--gpus", "4"])
    with pytest.raises(ConfigError, match="--gpus"):
        plan_command.main([DEEP, "--gpus", "0", "--flops", "1e12"])


def test_the_papers_crossover_appears_once_data_parallel_transfers_outlast_the_compute(capsys):
    """Minwa's four K40m share one 56 Gbit/s adapter: about 11 Gbit/s of payload each. Then data parallelism's
    constant transfers no longer hide under the compute, model-data's exposed exchanges grow with N, and the
    two cross as in Deep Image's Fig. 3; at 56 Gbit/s per device lazy overlap hides them and data wins at every N."""
    shared = [*PAPER[:5], "11e9", *PAPER[6:]]
    plan_command.main([DEEP, *shared, "--json"])
    rows = {row["n"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[8]["winner"] == "model-data" and rows[32]["winner"] == rows[64]["winner"] == "data"
    assert rows[64]["data"]["exposed_comm_s"] > 0.1
    assert rows[64]["model_data"]["critical_comm_s"] > rows[8]["model_data"]["critical_comm_s"] * 7
    plan_command.main([DEEP, *PAPER, "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["winner"] for row in rows} == {"data"}
