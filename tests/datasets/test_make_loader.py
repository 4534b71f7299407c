"""make_loader: the data: block of a job turned into train and test loaders."""
import numpy
import pytest

from minwa.datasets import DATA_KEYS, make_loader
from minwa.errors import ConfigError

SHAPES = {"source": "shapes", "image_size": 16, "train_count": 40, "test_count": 13, "batch_size": 8,
          "test_batch_size": 4, "mean": "image", "scale": 0.25, "prefetch": 0}


def test_train_and_test_loaders_from_one_block():
    train = make_loader(SHAPES, "train", rank=1, size=2, seed=5)
    test = make_loader(SHAPES, "test", rank=1, size=2, seed=5)
    assert (train.batch_size, train.local_batch_size, train.steps_per_epoch) == (8, 4, 5)
    assert train.shuffle and train.drop_last and not test.shuffle and not test.drop_last
    assert (test.batch_size, test.steps_per_epoch) == (4, 4)  # 13 samples: the last batch holds one
    assert train.input_shape == (3, 16, 16) and train.num_classes == 10
    # the test set is normalised with the mean of the training set
    assert numpy.array_equal(test.mean.values, train.mean.values)
    x, _ = test.host_batch(0)
    raw, _ = test.source.get_many(test.indices(0))
    assert numpy.allclose(x, (raw.transpose(0, 3, 1, 2) - train.mean.values) * 0.25, atol=1e-4)


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key.*batchsize"):
        make_loader(dict(SHAPES, batchsize=3), "train")
    with pytest.raises(ConfigError, match="data.batch_size: missing"):
        make_loader({"source": "shapes"}, "train")
    with pytest.raises(ConfigError, match="data.prefetch: expected a whole number"):
        make_loader(dict(SHAPES, prefetch="lots"), "train")
    with pytest.raises(ConfigError, match="data.scale: expected a number"):
        make_loader(dict(SHAPES, scale="big"), "train")
    with pytest.raises(ConfigError, match="data.mean 'median'"):
        make_loader(dict(SHAPES, mean="median"), "train")
    with pytest.raises(ConfigError, match="split 'val'"):
        make_loader(SHAPES, "val")
    assert "on_error" in DATA_KEYS and "augment" in DATA_KEYS


def test_augment_block_goes_through_minwa_augment():
    augment = pytest.importorskip("minwa.augment")
    if not hasattr(augment, "build_transform"):
        pytest.skip("minwa.augment.build_transform is not there yet")
    cfg = dict(SHAPES, image_size=20, augment={"crop": 16, "flip": True})
    train = make_loader(cfg, "train", seed=2)
    assert train.input_shape == (3, 16, 16) and train.transform is not None


def test_limits_keep_evenly_spaced_samples_of_every_class(tmp_path, writers):
    writers.image_folder(str(tmp_path / "train"), classes=("a", "b", "c"), per_class=4)
    data = {"source": "folder", "path": str(tmp_path), "batch_size": 3, "train_limit": 6, "prefetch": 0}
    loader = make_loader(data, "train")
    assert len(loader.source) == 6 and sorted(set(loader.source.labels().tolist())) == [0, 1, 2]
    assert loader.source.where(5).endswith("c/0003.png")
    with pytest.raises(ConfigError, match="train_limit"):
        make_loader(dict(data, train_limit="all"), "train")


def test_a_fixed_mean_from_a_npy_file(tmp_path):
    values = numpy.arange(3, dtype=numpy.float32) * 10
    numpy.save(tmp_path / "mean.npy", values)
    loader = make_loader(dict(SHAPES, mean=str(tmp_path / "mean.npy"), scale=1.0), "train")
    x, _ = loader.host_batch(0)
    raw, _ = loader.source.get_many(loader.indices(0))
    assert numpy.allclose(x[:, 2], raw[..., 2] - 20.0)


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_a_truncated_jpeg_in_a_folder_under_both_policies(tmp_path, writers, mode):
    written = writers.image_folder(str(tmp_path / "train"), per_class=4, size=(16, 16), fmt="jpg")
    broken = sorted(written)[5]
    with open(broken, "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:
        handle.write(data[: len(data) // 3])
    data_cfg = {"source": "folder", "path": str(tmp_path), "batch_size": 4, "on_error": mode, "prefetch": 2}
    loader = make_loader(data_cfg, "train", seed=1)
    stream = loader.epoch(0)
    if mode == "fail":
        from minwa.errors import DataError

        with pytest.raises(DataError, match=f"{broken}: cannot decode image"):
            list(stream)
        return
    batches = list(stream)
    assert len(batches) == 3 and all(x.shape == (4, 3, 16, 16) for x, _ in batches)
    assert loader.skipped == 1
