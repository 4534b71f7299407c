"""Image folders read straight from a tarball, including the shared CIFAR-10 JPEG tarball."""
import os
import tarfile

import numpy
import pytest

from minwa.datasets import TarFolderSource, build_source
from minwa.errors import DataError


def test_tarball_of_an_image_folder_matches_the_folder(tmp_path, writers):
    writers.image_folder(str(tmp_path / "set" / "train"), per_class=2)
    writers.image_folder(str(tmp_path / "set" / "test"), per_class=1, seed=9)
    tarball = tmp_path / "set.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "set", arcname="top")
    for split in ("train", "test"):
        folder = build_source({"source": "folder", "path": str(tmp_path / "set")}, split)
        packed = build_source({"source": "folder", "path": str(tarball)}, split)
        assert packed.classes == folder.classes and len(packed) == len(folder)
        a, la = folder.get_many(numpy.arange(len(folder)))
        b, lb = packed.get_many(numpy.arange(len(packed)))
        assert all(numpy.array_equal(x, y) for x, y in zip(a, b)) and numpy.array_equal(la, lb)
    assert packed.where(0).endswith(":top/test/cat/0000.png")


def test_tarball_without_the_split_is_an_error(tmp_path, writers):
    writers.image_folder(str(tmp_path / "train"), per_class=1)
    tarball = tmp_path / "only_train.tar"
    with tarfile.open(tarball, "w") as archive:
        archive.add(tmp_path / "train", arcname="train")
    with pytest.raises(DataError, match="holds no images under test/<class>"):
        TarFolderSource(str(tarball), "test")


def _extract_some(tarball, folder, per_class):
    """Extract the first ``per_class`` test images of each class (not the whole tarball)."""
    taken = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or parts[0] != "test" or taken.get(parts[1], 0) >= per_class:
                continue
            taken[parts[1]] = taken.get(parts[1], 0) + 1
            os.makedirs(os.path.join(folder, "test", parts[1]), exist_ok=True)
            with open(os.path.join(folder, member.name), "wb") as out:
                out.write(archive.extractfile(member).read())
            if len(taken) == 10 and all(v >= per_class for v in taken.values()):
                break
    return taken


def test_shared_cifar10_jpeg_folder(tmp_path, shared_tarball):
    taken = _extract_some(shared_tarball, str(tmp_path), per_class=3)
    assert len(taken) == 10
    source = build_source({"source": "cifar10", "path": str(tmp_path)}, "test")
    assert len(source) == 30 and source.classes[0] == "airplane" and source.classes[-1] == "truck"
    images, labels = source.get_many(numpy.arange(30))
    assert all(image.shape == (32, 32, 3) and image.dtype == numpy.uint8 for image in images)
    assert numpy.bincount(labels).tolist() == [3] * 10
    # real photographs, not blank files: plenty of distinct values in every image
    assert min(len(numpy.unique(image)) for image in images) > 20
