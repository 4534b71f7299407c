"""`minwa train` as a user runs it (one process): run directories, --solver with --set, NaN policies, labels."""
import json
import os

import yaml

PROTOTXT_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 16 dim: 3 dim: 16 dim: 16 } shape { dim: 16 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""
SOLVER = 'base_lr: 0.05\nmomentum: 0.9\nmax_iter: 4\nlr_policy: "fixed"\ndisplay: 0\nsnapshot: 0\n'


def _config(run_dir):
    with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def _strict_records(run_dir):
    def no_bare_constants(name):
        raise AssertionError(f"metrics.jsonl holds a bare {name}, which is not JSON")

    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line, parse_constant=no_bare_constants) for line in f]


def test_a_fresh_run_refuses_a_run_directory_that_holds_a_run(jobs, tiny_job, tmp_path):
    run = tmp_path / "run"
    job = tiny_job(**{"solver.snapshot": 10})
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--max-iter", 30))
    assert code == 0, out
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--max-iter", 5))
    assert code == 1, out
    assert f"run directory '{run}' already holds a run (config.yaml, metrics.jsonl, checkpoints); continue it " \
           "with --resume, start over with --overwrite" in out, out
    assert sorted(os.listdir(run / "checkpoints"))[-1] == "step_00000030.h5"  # nothing was touched
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--max-iter", 5, "--overwrite",
                                           "--set", "solver.base_lr=0.01"))
    assert code == 0, out
    assert sorted(os.listdir(run / "checkpoints")) == ["step_00000005.h5"]  # keep_last kept the new run's step
    assert max(r["step"] for r in _strict_records(run)) == 5  # no zig-zag: the old run's metrics are gone
    assert _config(run)["solver"]["base_lr"] == 0.01  # config.yaml is the job as run, overrides included


def test_resume_drops_metrics_logged_after_the_checkpoint(jobs, tiny_job, tmp_path):
    run = tmp_path / "run"
    job = tiny_job(**{"solver.snapshot": 10, "solver.display": 5})
    assert jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--max-iter", 25))[0] == 0
    os.remove(run / "checkpoints" / "step_00000025.h5")  # as if the run had died after step 20's checkpoint
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--resume", "--max-iter", 30))
    assert code == 0, out
    steps = [r["step"] for r in _strict_records(run) if r["phase"] == "train"]
    assert steps == [5, 10, 15, 20, 25, 30], steps


def test_solver_file_with_set_overrides_and_set_inside_a_prototxt_net(jobs, tmp_path):
    (tmp_path / "net.prototxt").write_text(PROTOTXT_NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    job = jobs.write_job(tmp_path / "job.yaml", **{"model": "net.prototxt", "solver": {"max_iter": 1}})
    run = tmp_path / "run"
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--set", "solver.base_lr=0.5", "--solver",
                                           tmp_path / "solver.prototxt", "--run-dir", run, "--set",
                                           "model.layers.conv1.convolution_param.num_output=4"))
    assert code == 0, out
    config = _config(run)
    assert config["solver"]["base_lr"] == 0.5 and config["solver"]["momentum"] == 0.9
    conv1 = next(layer for layer in config["model"]["layers"] if layer["name"] == "conv1")
    assert conv1["convolution_param"]["num_output"] == 4


def test_skipping_nan_losses_stops_a_diverged_run(jobs, tiny_job, tmp_path):
    run = tmp_path / "run"
    job = tiny_job(**{"solver.base_lr": 1e12, "solver.momentum": 0.0, "solver.display": 1, "train.on_nan": "skip",
                      "train.max_consecutive_nan_skips": 3})
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", run, "--max-iter", 30))
    assert code == 1, out
    assert "the loss was not finite for 3 steps in a row (train.max_consecutive_nan_skips=3)" in out, out
    assert "accuracy 1.0" not in out
    records = _strict_records(run)
    assert any(r.get("loss", 0) is None for r in records), records  # NaN is written as null


def test_labels_beyond_the_nets_outputs_are_refused_before_training(jobs, tmp_path):
    job = jobs.write_job(tmp_path / "job.yaml")
    code, out, _ = jobs.run_job(jobs.minwa("train", job, "--run-dir", tmp_path / "run", "--set",
                                           "model.layers.ip1.inner_product_param.num_output=8"))
    assert code == 1, out
    assert "data: the train labels go up to 9 (10 classes" in out and "layer 'loss' (SoftmaxWithLoss) scores 8 " \
           "outputs from 'ip1'; set the num_output of the layer producing 'ip1' to 10" in out, out
    assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")  # not a single step ran
