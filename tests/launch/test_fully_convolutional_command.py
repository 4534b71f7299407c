"""``minwa convert --fully-convolutional``: the written config and weights score like the original."""
import numpy
import pytest
import yaml

import minwa
from minwa.checkpoint import save_checkpoint
from minwa.datasets import build_source
from minwa.errors import DataError
from minwa.evaluate.model_scorer import ModelScorer
from minwa.launch.cli import main

CONFIG = "configs/default.yaml"


@pytest.fixture
def weights(tmp_path):
    path = str(tmp_path / "w.h5")
    save_checkpoint(path, minwa.Net(minwa.load_config(CONFIG).model, seed=4))
    return path


def test_converted_files_score_like_the_original(tmp_path, weights, capsys):
    out = tmp_path / "conv" / "default_fc"
    assert main(["convert", "--fully-convolutional", CONFIG, "--weights", weights, "-o", str(out)]) == 0
    assert "ip1 -> 3x3 conv" in capsys.readouterr().err
    converted = yaml.safe_load(out.with_suffix(".yaml").read_text())
    types = [layer["type"] for layer in converted["model"]["layers"]]
    assert "InnerProduct" not in types and "SoftmaxWithLoss" not in types
    job = minwa.load_config(CONFIG)
    images, _ = build_source(dict(job.data, test_count=6), "test").get_many(numpy.arange(6))
    mean = (numpy.zeros((3, 1, 1)), 1.0)
    original = ModelScorer(CONFIG, weights, scales=[24, 32], crops="dense", mean=mean)
    again = ModelScorer(str(out.with_suffix(".yaml")), str(out.with_suffix(".h5")), scales=[24, 32], crops="dense",
                        mean=mean)
    a, b = original.score(list(images)), again.score(list(images))
    for view in original.views:
        numpy.testing.assert_allclose(a[view].probs, b[view].probs, rtol=0, atol=1e-6)


def test_weights_of_another_net_are_named(tmp_path, capsys):
    other = str(tmp_path / "other.h5")
    save_checkpoint(other, {"conv1.weight": numpy.zeros((2, 3, 5, 5), numpy.float32)})
    assert main(["convert", "--fully-convolutional", CONFIG, "--weights", other, "-o", str(tmp_path / "x")]) == 1
    assert f"--weights {other} does not fit the model of {CONFIG}" in capsys.readouterr().err
    with pytest.raises(DataError):
        from minwa.launch.fully_convolutional_command import convert

        convert(CONFIG, other, str(tmp_path / "x"))
