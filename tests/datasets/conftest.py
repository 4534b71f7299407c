"""Writers of small data sets in the exact official file layouts, shared by the datasets tests."""
import gzip
import os
import pickle
import struct

import numpy
import pytest

SHARED_TARBALL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-jpeg.tar.gz")


def cifar_images(count, seed):
    """Random HWC uint8 images and their flat CHW records (what the official files store)."""
    images = numpy.random.default_rng(seed).integers(0, 256, size=(count, 32, 32, 3), dtype=numpy.uint8)
    return images, images.transpose(0, 3, 1, 2).reshape(count, 3072)


def write_cifar10_binary(folder, counts=(7, 5), test_count=4, classes=10, seed=0):
    """data_batch_N.bin / test_batch.bin (1 label byte + 3072 CHW bytes per record) and batches.meta.txt."""
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    out = {"train": ([], []), "test": ([], [])}
    files = [(f"data_batch_{n + 1}.bin", c, "train") for n, c in enumerate(counts)] + [
        ("test_batch.bin", test_count, "test")]
    for number, (name, count, split) in enumerate(files):
        images, flat = cifar_images(count, seed * 100 + number)
        labels = rng.integers(0, classes, size=count).astype(numpy.uint8)
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(numpy.concatenate([labels[:, None], flat], axis=1).tobytes())
        out[split][0].append(images)
        out[split][1].append(labels)
    with open(os.path.join(folder, "batches.meta.txt"), "w") as handle:
        handle.write("\n".join(f"c10_{i}" for i in range(10)) + "\n\n")
    return {split: (numpy.concatenate(i), numpy.concatenate(labels).astype(numpy.int64))
            for split, (i, labels) in out.items()}


def write_cifar100_binary(folder, train_count=6, test_count=3, seed=1):
    """train.bin / test.bin: coarse label byte, fine label byte, 3072 CHW bytes; label name files."""
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    out = {}
    for split, count in (("train", train_count), ("test", test_count)):
        images, flat = cifar_images(count, seed + len(out))
        coarse = rng.integers(0, 20, size=count).astype(numpy.uint8)
        fine = rng.integers(0, 100, size=count).astype(numpy.uint8)
        with open(os.path.join(folder, f"{split}.bin"), "wb") as handle:
            handle.write(numpy.concatenate([coarse[:, None], fine[:, None], flat], axis=1).tobytes())
        out[split] = (images, fine.astype(numpy.int64), coarse.astype(numpy.int64))
    with open(os.path.join(folder, "fine_label_names.txt"), "w") as handle:
        handle.write("\n".join(f"fine_{i}" for i in range(100)) + "\n")
    with open(os.path.join(folder, "coarse_label_names.txt"), "w") as handle:
        handle.write("\n".join(f"coarse_{i}" for i in range(20)) + "\n")
    return out


def write_cifar_python(folder, cifar100=False, counts=(6, 4), test_count=5, seed=2, protocol=2):
    """Python batches as dicts with b'data' (uint8 N x 3072 ndarray) and b'labels' / b'fine_labels' lists."""
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    out = {"train": ([], []), "test": ([], [])}
    if cifar100:
        files = [("train", sum(counts), "train"), ("test", test_count, "test")]
    else:
        files = [(f"data_batch_{n + 1}", c, "train") for n, c in enumerate(counts)] + [
            ("test_batch", test_count, "test")]
    for number, (name, count, split) in enumerate(files):
        images, flat = cifar_images(count, seed * 100 + number)
        if cifar100:
            fine = rng.integers(0, 100, size=count)
            batch = {b"data": flat, b"fine_labels": [int(v) for v in fine],
                     b"coarse_labels": [int(v) // 5 for v in fine], b"filenames": [b"x.png"] * count,
                     b"batch_label": name.encode()}
            labels = fine
        else:
            labels = rng.integers(0, 10, size=count)
            batch = {b"data": flat, b"labels": [int(v) for v in labels], b"filenames": [b"x.png"] * count,
                     b"batch_label": name.encode()}
        with open(os.path.join(folder, name), "wb") as handle:
            pickle.dump(batch, handle, protocol=protocol)
        out[split][0].append(images)
        out[split][1].append(numpy.asarray(labels, dtype=numpy.int64))
    meta = {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]} if cifar100 else {
        b"label_names": [f"py{i}".encode() for i in range(10)], b"num_vis": 3072}
    with open(os.path.join(folder, "meta" if cifar100 else "batches.meta"), "wb") as handle:
        pickle.dump(meta, handle, protocol=protocol)
    return {split: (numpy.concatenate(i), numpy.concatenate(labels)) for split, (i, labels) in out.items()}


def write_idx(path, array, magic):
    """An IDX file: big-endian magic, big-endian dimension sizes, then the uint8 payload (gzip if .gz)."""
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def write_mnist(folder, gz, train_count=9, test_count=4, seed=3):
    os.makedirs(folder, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    out = {}
    for split, stem, count in (("train", "train", train_count), ("test", "t10k", test_count)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=count).astype(numpy.uint8)
        write_idx(os.path.join(folder, f"{stem}-images-idx3-ubyte{suffix}"), images, 2051)
        write_idx(os.path.join(folder, f"{stem}-labels-idx1-ubyte{suffix}"), labels, 2049)
        out[split] = (images, labels.astype(numpy.int64))
    return out


def write_image_folder(root, classes=("cat", "dog", "fish"), per_class=3, size=(12, 10), fmt="png", seed=4):
    """root/<class>/NNNN.<fmt> images (PNG is lossless, so pixels can be compared exactly)."""
    from PIL import Image

    rng = numpy.random.default_rng(seed)
    written = {}
    for name in classes:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(per_class):
            image = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=numpy.uint8)
            path = os.path.join(root, name, f"{k:04d}.{fmt}")
            Image.fromarray(image).save(path)
            written[path] = image
    return written


@pytest.fixture
def writers():
    """The layout writers above, as one object for the tests."""
    class Writers:
        cifar10_binary = staticmethod(write_cifar10_binary)
        cifar100_binary = staticmethod(write_cifar100_binary)
        cifar_python = staticmethod(write_cifar_python)
        idx = staticmethod(write_idx)
        mnist = staticmethod(write_mnist)
        image_folder = staticmethod(write_image_folder)
    return Writers


@pytest.fixture
def shared_tarball():
    path = os.path.abspath(SHARED_TARBALL)
    if not os.path.isfile(path):
        pytest.skip("../shared/data/cifar10-jpeg.tar.gz is not present on this machine")
    return path


class IndexSource:
    """A tiny in-memory source whose pixels encode the sample index; ``bad`` indices raise DataError.

    ``reads`` records every index read, so tests can see what the loader touched.
    """

    def __new__(cls, *args, **kwargs):
        from minwa.datasets import Source

        class _IndexSource(Source):
            def __init__(self, count=40, classes=4, size=(6, 5), bad=(), fail_at=None):
                self.count, self.size, self.bad, self.fail_at = count, size, set(bad), fail_at
                self.classes = tuple(f"k{i}" for i in range(classes))
                self.name = "index-source"
                self.reads = []

            def __len__(self):
                return self.count

            def where(self, index):
                return f"/data/img{index:03d}.jpg"

            def labels(self):
                return numpy.arange(self.count) % len(self.classes)

            def get(self, index):
                from minwa.errors import DataError

                index = self.check_index(index)
                self.reads.append(index)
                if index in self.bad:
                    raise DataError(f"{self.where(index)}: cannot decode image (test)")
                if self.fail_at is not None and index == self.fail_at:
                    raise RuntimeError(f"source exploded at {index}")
                image = numpy.empty(self.size + (3,), dtype=numpy.uint8)
                image[..., 0], image[..., 1], image[..., 2] = index % 256, index // 256, 7
                return image, index % len(self.classes)

        return _IndexSource(*args, **kwargs)


@pytest.fixture
def index_source():
    return IndexSource
