"""Image folders in the ImageNet layout: classes, ordering, resizing, bad folders and bad files."""
import numpy
import pytest

from minwa.datasets import FolderSource, build_source
from minwa.errors import DataError


def test_classes_sorted_files_sorted_pixels_exact(tmp_path, writers):
    written = writers.image_folder(str(tmp_path / "train"), classes=("zebra", "ant", "moth"), per_class=2)
    source = build_source({"source": "folder", "path": str(tmp_path)}, "train")
    assert source.classes == ("ant", "moth", "zebra") and len(source) == 6
    assert source.labels().tolist() == [0, 0, 1, 1, 2, 2]
    for index in range(len(source)):
        image, label = source.get(index)
        assert numpy.array_equal(image, written[source.where(index)])
        assert source.where(index).split("/")[-2] == source.classes[label]


def test_resize_scales_the_shorter_side(tmp_path, writers):
    writers.image_folder(str(tmp_path / "train"), size=(12, 20), per_class=1)
    source = build_source({"source": "folder", "path": str(tmp_path), "resize": 6}, "train")
    assert source.get(0)[0].shape == (6, 10, 3)


def test_test_split_falls_back_to_val_and_explicit_paths_work(tmp_path, writers):
    writers.image_folder(str(tmp_path / "val"), per_class=1)
    assert len(build_source({"source": "folder", "path": str(tmp_path)}, "test")) == 3
    assert len(build_source({"source": "folder", "test_path": str(tmp_path / "val")}, "test")) == 3
    with pytest.raises(DataError, match="no train folder"):
        build_source({"source": "folder", "path": str(tmp_path)}, "train")


def test_grey_and_rgba_images_become_rgb(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.fromarray(numpy.full((5, 4), 77, dtype=numpy.uint8)).save(tmp_path / "a" / "g.png")
    Image.fromarray(numpy.full((5, 4, 4), 9, dtype=numpy.uint8)).save(tmp_path / "a" / "h.png")
    source = FolderSource(str(tmp_path))
    assert source.get(0)[0].shape == (5, 4, 3) and (source.get(0)[0] == 77).all()
    assert source.get(1)[0].shape == (5, 4, 3)


def test_empty_class_folder_and_no_classes_fail_early(tmp_path, writers):
    writers.image_folder(str(tmp_path), per_class=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"empty: class folder holds no images"):
        FolderSource(str(tmp_path))
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        FolderSource(str(tmp_path / "bare"))


def test_corrupt_and_truncated_images_name_the_file(tmp_path, writers):
    written = writers.image_folder(str(tmp_path), per_class=2, size=(40, 40), fmt="jpg")
    paths = sorted(written)
    with open(paths[0], "wb") as handle:
        handle.write(b"this is not an image")
    with open(paths[1], "rb") as handle:
        data = handle.read()
    with open(paths[1], "wb") as handle:
        handle.write(data[: len(data) // 2])
    source = FolderSource(str(tmp_path))
    with pytest.raises(DataError, match=f"{paths[0]}: cannot decode image"):
        source.get(0)
    with pytest.raises(DataError, match=f"{paths[1]}: cannot decode image"):
        source.get(1)
    assert source.get(2)[0].shape == (40, 40, 3)
