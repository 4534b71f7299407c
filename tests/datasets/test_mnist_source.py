"""MNIST IDX files (magic 2051/2049, big-endian sizes), gzipped and raw."""
import numpy
import pytest

from minwa.datasets import MnistSource, build_source
from minwa.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, writers, gz):
    expected = writers.mnist(str(tmp_path), gz=gz)
    for split in ("train", "test"):
        source = build_source({"source": "mnist", "path": str(tmp_path)}, split)
        images, labels = source.get_many(numpy.arange(len(source)))
        assert images.shape == expected[split][0].shape + (1,) and images.dtype == numpy.uint8
        assert numpy.array_equal(images[..., 0], expected[split][0])
        assert numpy.array_equal(labels, expected[split][1])
    image, label = source.get(1)
    assert image.shape == (28, 28, 1) and label == expected["test"][1][1]


def test_wrong_magic_truncation_and_count_mismatch(tmp_path, writers):
    writers.mnist(str(tmp_path), gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        MnistSource(str(labels), str(labels))
    data = images.read_bytes()
    images.write_bytes(data[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: header says \(9, 28, 28\).*truncated"):
        build_source({"source": "mnist", "path": str(tmp_path)}, "train")
    images.write_bytes(data)
    writers.idx(str(labels), numpy.zeros(8, dtype=numpy.uint8), 2049)
    with pytest.raises(DataError, match="9 images but .* holds 8 labels"):
        build_source({"source": "mnist", "path": str(tmp_path)}, "train")
    writers.idx(str(labels), numpy.full(9, 11, dtype=numpy.uint8), 2049)
    with pytest.raises(DataError, match="label 11 out of range"):
        build_source({"source": "mnist", "path": str(tmp_path)}, "train")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="no MNIST test images file"):
        build_source({"source": "mnist", "path": str(tmp_path)}, "test")
