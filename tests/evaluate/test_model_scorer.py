"""ModelScorer: the centre view is the trainer's test, chunking changes nothing, clear errors."""
import numpy
import pytest

import minwa
from minwa.checkpoint import load_checkpoint
from minwa.datasets import build_source, make_loader
from minwa.errors import ConfigError, DataError
from minwa.evaluate.merge import softmax
from minwa.evaluate.model_scorer import ModelScorer

from .conftest import write_tiny


def test_centre_view_equals_the_trainers_test_net(tiny):
    config, weights = tiny
    job = minwa.load_config(config)
    net = minwa.Net(job.model, phase="TEST", init=False)
    load_checkpoint(weights, net)
    loader = make_loader(dict(job.data, prefetch=0), "test")
    x, y = loader.host_batch(0)
    net.forward({"data": x, "label": y})
    want = softmax(net.blobs["ip1"].astype(numpy.float64))
    scorer = ModelScorer(job, weights)
    images, _ = build_source(job.data, "test").get_many(numpy.arange(len(y)))
    got = scorer.score(list(images))[scorer.base_view]
    assert scorer.views == [scorer.base_view] and scorer.base_view.name == "s16-center"
    numpy.testing.assert_allclose(got.probs, want, rtol=0, atol=1e-5)


def test_chunks_bounded_by_memory_give_the_same_scores(tiny):
    config, weights = tiny
    images, _ = build_source(minwa.load_config(config).data, "test").get_many(numpy.arange(12))
    big = ModelScorer(config, weights, scales=[16, 24], crops="dense", flip=True)
    small = ModelScorer(config, weights, scales=[16, 24], crops="dense", flip=True, memory_mb=0.01)
    a, b = big.score(list(images)), small.score(list(images))
    assert small._nets[(24, 24)][1] < 12 < big._nets[(24, 24)][1]  # the small budget really splits the batch
    for view in big.run_views:
        numpy.testing.assert_allclose(a[view].probs, b[view].probs, rtol=0, atol=1e-6)


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    config, _ = write_tiny(tmp_path, name="ten")
    _, other = write_tiny(tmp_path, name="five", num_output=5)
    with pytest.raises(DataError, match=f"--weights {other} does not fit the model of {config}.*ip1"):
        ModelScorer(config, other)


def test_scales_below_the_receptive_field_or_crop(tiny):
    config, weights = tiny
    with pytest.raises(ConfigError, match="--scales 14: smaller than the receptive field.*at least 15 px"):
        ModelScorer(config, weights, scales=[14, 16], crops="dense")
    with pytest.raises(ConfigError, match="--scales 15: .*16x16 crops"):
        ModelScorer(config, weights, scales=[15], crops="center")


def test_float64_scores_agree_with_float32(tiny):
    config, weights = tiny
    images, _ = build_source(minwa.load_config(config).data, "test").get_many(numpy.arange(5))
    single = ModelScorer(config, weights, scales=[20], crops="dense")
    double = ModelScorer(config, weights, scales=[20], crops="dense", dtype="float64")
    view = single.views[0]
    assert double.params["ip1.weight"].dtype == numpy.float64
    numpy.testing.assert_allclose(single.score(list(images))[view].probs, double.score(list(images))[view].probs,
                                  atol=1e-5)
