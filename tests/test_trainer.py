"""train(job): learning happens, runs resume bit-identically, non-finite losses stop or skip, metrics are logged."""
import json
import os

import numpy
import pytest

import minwa
from minwa.checkpoint import latest_checkpoint, load_checkpoint
from minwa.trainer import NonFiniteLoss


def tiny_job(run_dir, **overrides):
    raw = {
        "name": "tiny",
        "model": {"layers": [
            {"name": "data", "type": "Input", "top": ["data", "label"],
             "input_param": {"shape": [{"dim": [16, 3, 16, 16]}, {"dim": [16]}]}},
            {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
             "convolution_param": {"num_output": 8, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "msra"}}},
            {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
             "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
            {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
            {"name": "drop1", "type": "Dropout", "bottom": "pool1", "top": "pool1",
             "dropout_param": {"dropout_ratio": 0.2}},
            {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1",
             "inner_product_param": {"num_output": 10, "weight_filler": {"type": "xavier"}}},
            {"name": "accuracy", "type": "Accuracy", "bottom": ["ip1", "label"], "top": "accuracy",
             "include": {"phase": "TEST"}},
            {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip1", "label"], "top": "loss"},
        ]},
        "solver": {"base_lr": 0.02, "momentum": 0.9, "weight_decay": 0.0005, "max_iter": 150, "test_interval": 0,
                   "display": 10, "random_seed": 3},
        "data": {"source": "shapes", "image_size": 16, "train_count": 480, "test_count": 160, "batch_size": 16,
                 "test_batch_size": 40, "mean": "channel", "scale": 0.0125, "prefetch": 1},
        "train": {"run_dir": str(run_dir), "progress": False},
    }
    return minwa.load_config(raw, overrides=overrides)


def test_training_learns_and_logs_metrics(tmp_path):
    summary = minwa.train(tiny_job(tmp_path / "run"))
    assert summary["final_step"] == 150
    assert summary["test"]["accuracy"] > 0.25  # ten classes: chance is 0.1
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    train_records = [r for r in records if r["phase"] == "train"]
    assert [r["step"] for r in train_records] == list(range(10, 151, 10))
    assert {"loss", "lr", "images_per_s", "epoch"} <= set(train_records[0])
    assert records[-1]["phase"] == "test" and records[-1]["step"] == 150
    assert os.path.exists(tmp_path / "run" / "config.yaml")


def test_resume_is_bit_identical(tmp_path):
    straight = tiny_job(tmp_path / "straight", **{"solver.snapshot": 30, "solver.max_iter": 60})
    minwa.train(straight)
    first = tiny_job(tmp_path / "resumed", **{"solver.snapshot": 30, "solver.max_iter": 60})
    minwa.train(first, max_iter=30)
    resumed = tiny_job(tmp_path / "resumed", **{"solver.snapshot": 30, "solver.max_iter": 60})
    summary = minwa.train(resumed, resume="latest")
    assert summary["start_step"] == 30
    a = load_checkpoint(latest_checkpoint(str(tmp_path / "straight" / "checkpoints")))
    b = load_checkpoint(latest_checkpoint(str(tmp_path / "resumed" / "checkpoints")))
    assert a["step"] == b["step"] == 60
    for name in a["params"]:
        numpy.testing.assert_array_equal(a["params"][name], b["params"][name])


#: these nets are made to diverge: their GEMMs overflow on the way to the NaN loss the tests are about
DIVERGING = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                       "ignore:invalid value encountered:RuntimeWarning")


@DIVERGING
def test_nan_loss_stops_with_a_clear_message(tmp_path):
    job = tiny_job(tmp_path / "nan", **{"solver.base_lr": 1e12, "solver.momentum": 0.0, "solver.display": 1})
    with pytest.raises(NonFiniteLoss, match=r"step \d+: the loss is not finite") as stopped:
        minwa.train(job)
    # the message numbers the step as the log does: the one after the last step logged
    logged = [json.loads(line)["step"] for line in open(tmp_path / "nan" / "metrics.jsonl")]
    assert str(stopped.value).startswith(f"step {logged[-1] + 1 if logged else 1}:"), (stopped.value, logged)


@DIVERGING
def test_skipping_nan_losses_gives_up_on_a_diverged_net(tmp_path):
    job = tiny_job(tmp_path / "skip", **{"solver.base_lr": 1e12, "solver.momentum": 0.0, "train.on_nan": "skip",
                                        "train.max_consecutive_nan_skips": 3, "solver.max_iter": 60})
    with pytest.raises(NonFiniteLoss, match=r"not finite for 3 steps in a row \(train.max_consecutive_nan_skips=3\)"):
        minwa.train(job)


def test_input_shape_mismatch_is_reported(tmp_path):
    job = tiny_job(tmp_path / "bad", **{"data.image_size": 20})
    with pytest.raises(minwa.ConfigError, match=r"input 'data'.*\(3, 16, 16\).*\(3, 20, 20\)"):
        minwa.train(job)


def _no_dropout(job_overrides, run_dir):
    job = tiny_job(run_dir, **job_overrides)
    job.model["layers"] = [layer for layer in job.model["layers"] if layer["type"] != "Dropout"]
    return job


def test_iter_size_accumulates_gradients_like_one_bigger_batch(tmp_path):
    """Caffe's iter_size: 2 batches of 8 per step train the weights one batch of 16 does."""
    common = {"solver.max_iter": 6, "solver.display": 3, "train.dtype": "float64", "data.shuffle": False}
    minwa.train(_no_dropout(common, tmp_path / "big"))
    minwa.train(_no_dropout({**common, "solver.iter_size": 2, "data.batch_size": 8}, tmp_path / "acc"))
    want = load_checkpoint(latest_checkpoint(tmp_path / "big" / "checkpoints"))
    got = load_checkpoint(latest_checkpoint(tmp_path / "acc" / "checkpoints"))
    assert got["step"] == want["step"] == 6
    for name, value in want["params"].items():
        numpy.testing.assert_allclose(got["params"][name], value, rtol=1e-9, atol=1e-12, err_msg=name)
    records = [json.loads(line) for line in open(tmp_path / "acc" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["phase"] == "train"] == [3, 6]


def test_resume_with_iter_size_continues_at_the_right_batch(tmp_path):
    """A step consumes iter_size batches, so a resumed run starts iter_size x step batches in."""
    common = {"solver.snapshot": 5, "solver.max_iter": 10, "solver.iter_size": 2, "data.batch_size": 8}
    minwa.train(tiny_job(tmp_path / "straight", **common))
    minwa.train(tiny_job(tmp_path / "resumed", **common), max_iter=5)
    minwa.train(tiny_job(tmp_path / "resumed", **common), resume="latest")
    a = load_checkpoint(latest_checkpoint(str(tmp_path / "straight" / "checkpoints")))
    b = load_checkpoint(latest_checkpoint(str(tmp_path / "resumed" / "checkpoints")))
    assert a["step"] == b["step"] == 10
    for name in a["params"]:
        numpy.testing.assert_array_equal(a["params"][name], b["params"][name])
