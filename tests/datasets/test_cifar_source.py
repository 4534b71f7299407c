"""CIFAR-10/100 in the official binary and python layouts, from folders and tarballs."""
import os
import tarfile

import numpy
import pytest

from minwa.datasets import build_source
from minwa.errors import ConfigError, DataError


def _all(source):
    return source.get_many(numpy.arange(len(source)))


def test_cifar10_binary_batches_round_trip(tmp_path, writers):
    expected = writers.cifar10_binary(str(tmp_path))
    for split in ("train", "test"):
        source = build_source({"source": "cifar10", "path": str(tmp_path)}, split)
        images, labels = _all(source)
        assert images.dtype == numpy.uint8 and images.shape[1:] == (32, 32, 3)
        assert numpy.array_equal(images, expected[split][0]) and numpy.array_equal(labels, expected[split][1])
    assert source.classes == tuple(f"c10_{i}" for i in range(10))
    image, label = source.get(2)
    assert numpy.array_equal(image, expected["test"][0][2]) and label == expected["test"][1][2]
    # records of both train files are numbered in batch order, and errors name the file and record
    train = build_source({"source": "cifar10", "path": str(tmp_path)}, "train")
    assert train.where(8).endswith("data_batch_2.bin record 1")


def test_cifar10_binary_in_the_official_subfolder_and_tarball(tmp_path, writers):
    folder = tmp_path / "cifar-10-batches-bin"
    expected = writers.cifar10_binary(str(folder), seed=3)
    nested = build_source({"source": "cifar10", "path": str(tmp_path)}, "train")
    assert numpy.array_equal(_all(nested)[0], expected["train"][0])
    tarball = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-bin")
    from_tar = build_source({"source": "cifar10", "path": str(tarball)}, "test")
    images, labels = _all(from_tar)
    assert numpy.array_equal(images, expected["test"][0]) and numpy.array_equal(labels, expected["test"][1])
    assert from_tar.classes[0] == "c10_0"


def test_cifar100_binary_fine_by_default_coarse_on_request(tmp_path, writers):
    expected = writers.cifar100_binary(str(tmp_path))
    fine = build_source({"source": "cifar100", "path": str(tmp_path)}, "train")
    coarse = build_source({"source": "cifar100", "path": str(tmp_path), "label": "coarse"}, "train")
    images, labels = _all(fine)
    assert numpy.array_equal(images, expected["train"][0]) and numpy.array_equal(labels, expected["train"][1])
    assert numpy.array_equal(_all(coarse)[1], expected["train"][2])
    assert len(fine.classes) == 100 and fine.classes[7] == "fine_7"
    assert len(coarse.classes) == 20 and coarse.classes[3] == "coarse_3"
    with pytest.raises(ConfigError, match="data.label"):
        build_source({"source": "cifar100", "path": str(tmp_path), "label": "medium"}, "train")


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_python_batches(tmp_path, writers, protocol):
    expected = writers.cifar_python(str(tmp_path), protocol=protocol)
    for split in ("train", "test"):
        source = build_source({"source": "cifar10", "path": str(tmp_path)}, split)
        images, labels = _all(source)
        assert numpy.array_equal(images, expected[split][0]) and numpy.array_equal(labels, expected[split][1])
    assert source.classes[9] == "py9"


def test_cifar100_python_batches(tmp_path, writers):
    expected = writers.cifar_python(str(tmp_path), cifar100=True)
    source = build_source({"source": "cifar100", "path": str(tmp_path)}, "train")
    images, labels = _all(source)
    assert numpy.array_equal(images, expected["train"][0]) and numpy.array_equal(labels, expected["train"][1])
    assert source.classes[42] == "f42"


def test_format_can_be_forced(tmp_path, writers):
    writers.cifar10_binary(str(tmp_path))
    with pytest.raises(DataError, match="no CIFAR-10 python batches"):
        build_source({"source": "cifar10", "path": str(tmp_path), "format": "python"}, "train")
    with pytest.raises(ConfigError, match="data.format"):
        build_source({"source": "cifar10", "path": str(tmp_path), "format": "zip"}, "train")


def test_truncated_binary_batch_names_the_file(tmp_path, writers):
    writers.cifar10_binary(str(tmp_path))
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"data_batch_2\.bin.*not a whole number of 3073-byte"):
        build_source({"source": "cifar10", "path": str(tmp_path)}, "train")


def test_label_out_of_range_and_mismatched_counts_fail_before_training(tmp_path, writers):
    writers.cifar10_binary(str(tmp_path))
    path = tmp_path / "test_batch.bin"
    data = bytearray(path.read_bytes())
    data[3073 * 2] = 12  # third record's label byte
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"test_batch\.bin record 2: label 12 out of range \[0, 10\)"):
        build_source({"source": "cifar10", "path": str(tmp_path)}, "test")
    py = tmp_path / "py"
    writers.cifar_python(str(py))
    import pickle

    batch = pickle.loads((py / "test_batch").read_bytes(), encoding="bytes")
    batch[b"labels"] = batch[b"labels"][:-1]
    (py / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: 4 labels for 5 images"):
        build_source({"source": "cifar10", "path": str(py)}, "test")


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_source({"source": "cifar10", "path": str(tmp_path / "nowhere")}, "train")
    with pytest.raises(DataError, match="found no CIFAR-10 train data"):
        build_source({"source": "cifar10", "path": str(tmp_path)}, "train")
    with pytest.raises(ConfigError, match="data.path: missing"):
        build_source({"source": "cifar10"}, "train")
    os.makedirs(tmp_path / "x")
    with pytest.raises(ConfigError, match="data.source"):
        build_source({"source": "imagenet", "path": str(tmp_path)}, "train")
