"""Multi-scale training: `scales:` makes one job per scale, each with its own run directory and input size."""
import pytest

import minwa
from minwa.errors import ConfigError
from minwa.multi_scale import at_scale, scaled_jobs

CONFIG = "configs/default.yaml"


def test_one_job_per_scale_with_its_run_directory_and_input():
    job = minwa.load_config(CONFIG, overrides={"scales": [24, 32]})
    jobs = scaled_jobs(job)
    assert [j.name for j in jobs] == ["default-s24", "default-s32"]
    assert [j.run_dir for j in jobs] == ["runs/default-s24", "runs/default-s32"]
    net = minwa.Net(jobs[1].model, phase="TRAIN", init=False)
    assert net.blob_shapes["data"] == (64, 3, 32, 32)
    assert jobs[1].data["augment"] == {"crop": 32, "scales": [32]}


def test_a_single_scale_by_set_and_no_scales_is_the_job_itself():
    job = minwa.load_config(CONFIG, overrides=["scales=48", "train.run_dir=out/x"])
    (scaled,) = scaled_jobs(job)
    assert scaled.run_dir == "out/x-s48"
    plain = minwa.load_config(CONFIG)
    assert scaled_jobs(plain) == [plain]


def test_an_augment_block_keeps_its_crop_and_a_mean_image_becomes_per_channel(capsys):
    job = minwa.load_config(CONFIG, overrides={"data.augment": {"crop": 24, "scales": [24], "flip": True},
                                               "data.mean": "image"})
    raw = at_scale(job.raw, 40, notes := [])
    assert raw["data"]["augment"] == {"crop": 24, "scales": [40], "test_scale": 40, "flip": True}
    assert raw["data"]["mean"] == "channel" and "mean image" in notes[0]
    net = minwa.Net(minwa.load_config(raw).model, init=False)
    assert net.blob_shapes["data"][2:] == (24, 24)


def test_a_scaled_job_trains_and_loads_its_images_at_the_scale(tmp_path):
    job = minwa.load_config(CONFIG, overrides={"scales": [30], "train.run_dir": str(tmp_path / "r"),
                                               "data.train_count": 128, "data.test_count": 50,
                                               "solver.max_iter": 2, "solver.test_interval": 0,
                                               "train.progress": False})
    (scaled,) = scaled_jobs(job)
    summary = minwa.train(scaled)
    assert summary["run_dir"] == str(tmp_path / "r-s30")
    assert (tmp_path / "r-s30" / "checkpoints").is_dir()


@pytest.mark.parametrize("value,match", [([], "empty"), ([0], "positive"), ([32, 32], "twice"), (["a"], "positive")])
def test_bad_scales_name_the_key(value, match):
    with pytest.raises(ConfigError, match=f"scales:.*{match}"):
        scaled_jobs(minwa.load_config(CONFIG, overrides={"scales": value}))


def test_a_scale_below_the_crop_is_an_error():
    job = minwa.load_config(CONFIG, overrides={"data.augment": {"crop": 24, "scales": [24]}, "scales": [20]})
    with pytest.raises(ConfigError, match="scales: 20 is smaller than augment.crop 24"):
        scaled_jobs(job)
