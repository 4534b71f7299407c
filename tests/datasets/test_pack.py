"""minwa pack and Hdf5Source: round trips, layouts, atomic writes, several readers at once."""
import os
import subprocess
import sys
import textwrap

import numpy
import pytest

from minwa.datasets import Hdf5Source, build_source
from minwa.datasets.pack import data_config, main
from minwa.errors import DataError


def _all(source):
    images, labels = source.get_many(numpy.arange(len(source)))
    return list(images), labels


def test_cifar10_binary_round_trip_through_a_pack(tmp_path, writers):
    writers.cifar10_binary(str(tmp_path / "c10"))
    out = tmp_path / "c10.h5"
    assert main([f"cifar10:{tmp_path / 'c10'}", str(out), "--quiet"]) == 0
    for split in ("train", "test"):
        original = build_source({"source": "cifar10", "path": str(tmp_path / "c10")}, split)
        packed = build_source({"source": "hdf5", "path": str(out)}, split)
        assert packed.layout == "fixed" and packed.classes == original.classes
        a, la = _all(original)
        b, lb = _all(packed)
        assert numpy.array_equal(numpy.stack(a), numpy.stack(b)) and numpy.array_equal(la, lb)
        assert numpy.array_equal(packed.get(3)[0], a[3])
    # the CIFAR source also opens a pack given as its path
    assert len(build_source({"source": "cifar10", "path": str(out)}, "train")) == 12


def test_mixed_sizes_are_stored_variable_and_scale_resizes(tmp_path, writers):
    root = tmp_path / "imgs"
    writers.image_folder(str(root / "train" ), classes=("a", "b"), per_class=2, size=(8, 8))
    writers.image_folder(str(root / "train"), classes=("c",), per_class=2, size=(6, 9), seed=5)
    out = tmp_path / "mixed.h5"
    assert main([f"folder:{root}", str(out), "--quiet"]) == 0  # no test split: skipped with a note
    packed = Hdf5Source(str(out), "train")
    original = build_source({"source": "folder", "path": str(root)}, "train")
    assert packed.layout == "variable"
    a, _ = _all(original)
    b, _ = _all(packed)
    assert all(numpy.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(DataError, match="no split 'test'"):
        Hdf5Source(str(out), "test")
    scaled = tmp_path / "scaled.h5"
    assert main([str(root), str(scaled), "--scale", "4", "--quiet"]) == 0  # bare path: kind guessed
    shapes = {image.shape for image in _all(Hdf5Source(str(scaled), "train"))[0]}
    assert shapes == {(4, 4, 3), (4, 6, 3)}
    fixed = tmp_path / "fixed.h5"
    assert main([f"folder:{root}", str(fixed), "--size", "5x7", "--quiet"]) == 0
    assert Hdf5Source(str(fixed), "train").shape == (5, 7, 3)


def test_shapes_and_yaml_specs(tmp_path):
    assert data_config("shapes:train_count=20,test_count=10,image_size=16")["train_count"] == 20
    job = tmp_path / "job.yaml"
    job.write_text("data:\n  source: shapes\n  train_count: 12\n  test_count: 4\n  image_size: 16\n")
    out = tmp_path / "shapes.h5"
    assert main([str(job), str(out), "--split", "test", "--quiet"]) == 0
    packed = Hdf5Source(str(out), "test")
    assert len(packed) == 4 and numpy.array_equal(packed.get(2)[0], build_source(
        {"source": "shapes", "test_count": 4, "image_size": 16}, "test").get(2)[0])


def test_failed_pack_leaves_no_file_and_keeps_the_old_one(tmp_path, writers, capsys):
    written = writers.image_folder(str(tmp_path / "d" / "train"), per_class=2)
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous pack")
    with open(sorted(written)[1], "wb") as handle:
        handle.write(b"garbage")
    assert main([f"folder:{tmp_path / 'd'}", str(out), "--quiet"]) == 1
    assert "cannot decode image" in capsys.readouterr().err
    assert out.read_bytes() == b"previous pack"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".out.h5.tmp")] == []
    # --on-error skip drops the bad image instead
    assert main([f"folder:{tmp_path / 'd'}", str(out), "--on-error", "skip", "--quiet"]) == 0
    assert len(Hdf5Source(str(out), "train")) == 5


def test_not_a_pack_is_a_clear_error(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = numpy.zeros(3)
    with pytest.raises(DataError, match="not a minwa pack"):
        Hdf5Source(str(tmp_path / "other.h5"), "train")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot open as HDF5"):
        Hdf5Source(str(tmp_path / "junk.h5"), "train")


_READER = textwrap.dedent("""
    import sys, time, numpy
    from minwa.datasets import Hdf5Source
    source = Hdf5Source(sys.argv[1], "train")
    total = 0
    for rep in range(20):
        images, labels = source.get_many(numpy.arange(len(source))[::-1])
        total += int(images.astype(numpy.int64).sum()) + int(labels.sum())
    print(total)
""")


def test_two_processes_read_one_pack_at_once(tmp_path):
    out = tmp_path / "shapes.h5"
    assert main(["shapes:train_count=300,test_count=10,image_size=16", str(out), "--quiet"]) == 0
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="TRUE")  # the reader must not depend on the caller's setting
    readers = [subprocess.Popen([sys.executable, "-c", _READER, str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [reader.communicate(timeout=120) for reader in readers]
    assert all(reader.returncode == 0 for reader in readers), [err for _, err in results]
    source = Hdf5Source(str(out), "train")
    images, labels = source.get_many(numpy.arange(300))
    expected = 20 * (int(images.astype(numpy.int64).sum()) + int(labels.sum()))
    assert [int(outp) for outp, _ in results] == [expected, expected]


def test_a_forked_child_opens_its_own_handle(tmp_path):
    out = tmp_path / "s.h5"
    assert main(["shapes:train_count=20,test_count=10,image_size=8", str(out), "--quiet"]) == 0
    source = Hdf5Source(str(out), "train")
    first = source.get(3)[0]  # the parent has an open handle now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: reads through a handle of its own
        try:
            os.write(write, source.get(3)[0].tobytes())
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.waitpid(pid, 0)
    assert data == first.tobytes()


def test_a_split_that_exists_but_cannot_be_read_fails_the_pack(tmp_path, writers, jobs):
    """`minwa pack` exits 1 (no pack written) when test_batch is a hostile pickle; an absent split is skipped."""
    import pickle

    folder = tmp_path / "c10"
    writers.cifar_python(str(folder))

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump(Hostile(), f)
    out = tmp_path / "c10.h5"
    code, text, _ = jobs.run_job(jobs.minwa("pack", f"cifar10:{folder}", out), timeout=120)
    assert code == 1, text
    assert "test_batch" in text and "pwned" not in text and not out.exists(), text
    os.remove(folder / "test_batch")
    code, text, _ = jobs.run_job(jobs.minwa("pack", f"cifar10:{folder}", out), timeout=120)
    assert code == 0 and "no test split" in text, text
    assert len(Hdf5Source(str(out), "train")) == 10
