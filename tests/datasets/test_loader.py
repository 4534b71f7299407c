"""Loader: sharding over N ranks, exact resume, remainder rules, prefetch errors, mean and scale."""
import logging
import threading

import numpy
import pytest

from minwa.datasets import Loader, ShapesSource
from minwa.errors import ConfigError, DataError, ShapeError


def _decode(x):
    """Sample indices back from an IndexSource batch (channel 0 = index % 256, channel 1 = index // 256)."""
    x = numpy.asarray(x)
    return (x[:, 0, 0, 0] + 256 * x[:, 1, 0, 0]).astype(numpy.int64)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_shards_are_disjoint_cover_each_batch_and_match_one_rank(index_source, size):
    source = index_source(count=50)
    single = Loader(source, 8, seed=11, prefetch=0)
    ranks = [Loader(source, 8, rank=r, size=size, seed=11, prefetch=0) for r in range(size)]
    assert single.steps_per_epoch == 6 and all(r.steps_per_epoch == 6 for r in ranks)
    seen = []
    for step in range(12):  # two epochs
        parts = [r.indices(step) for r in ranks]
        assert all(len(p) == 8 // size for p in parts)
        assert numpy.array_equal(numpy.concatenate(parts), single.indices(step))
        xs = [r.host_batch(step)[0] for r in ranks]
        assert numpy.array_equal(_decode(numpy.concatenate(xs)), single.indices(step))
        if step < 6:
            seen.extend(numpy.concatenate(parts).tolist())
    assert len(seen) == len(set(seen)) == 48  # disjoint within the epoch; only the partial batch is dropped


def test_same_seed_same_order_other_seed_or_epoch_differs(index_source):
    source = index_source(count=64)
    a, b, c = (Loader(source, 16, seed=s, prefetch=0) for s in (3, 3, 4))
    assert numpy.array_equal(a.permutation(0), b.permutation(0))
    assert not numpy.array_equal(a.permutation(0), c.permutation(0))
    assert not numpy.array_equal(a.permutation(0), a.permutation(1))
    assert sorted(a.permutation(5).tolist()) == list(range(64))
    plain = Loader(source, 16, shuffle=False, prefetch=0)
    assert plain.indices(5).tolist() == list(range(16, 32))


def test_batch_size_rules(index_source):
    with pytest.raises(ConfigError, match="not divisible by the 4 ranks"):
        Loader(index_source(), 10, rank=0, size=4)
    with pytest.raises(ConfigError, match="larger than the 40 samples"):
        Loader(index_source(), 64)
    with pytest.raises(ConfigError, match="rank 2 is not in a job of 2"):
        Loader(index_source(), 8, rank=2, size=2)


def test_evaluation_sees_every_sample_exactly_once_over_ranks(index_source):
    source = index_source(count=10)
    ranks = [Loader(source, 4, rank=r, size=4, drop_last=False, prefetch=0) for r in range(4)]
    assert ranks[0].steps_per_epoch == 3
    seen, shapes = [], []
    for loader in ranks:
        for x, y in loader.epoch(0):
            seen.extend(_decode(x).tolist())
            shapes.append(x.shape[0])
            assert x.shape[1:] == (3, 6, 5) and len(y) == x.shape[0]
    assert sorted(seen) == list(range(10))
    assert sorted(shapes) == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # last batch of 2 over 4 ranks


@pytest.mark.parametrize("prefetch", [0, 2])
def test_resume_at_any_step_equals_skipping_without_reading_skipped_data(index_source, prefetch):
    reference = Loader(index_source(count=30), 8, seed=2, prefetch=prefetch)
    full = []
    for step, (x, y) in enumerate(reference.batches()):
        full.append((x.copy(), y.copy()))
        if step == 9:
            break
    for start in (0, 3, 7):
        source = index_source(count=30)
        resumed = Loader(source, 8, seed=2, prefetch=prefetch)
        stream = resumed.batches(start_step=start)
        for k in range(3):
            x, y = next(stream)
            assert numpy.array_equal(x, full[start + k][0]) and numpy.array_equal(y, full[start + k][1])
        stream.close()
        touched = set(source.reads)
        skipped = set(numpy.concatenate([resumed.indices(s) for s in range(start)]).tolist()) if start else set()
        later = set(numpy.concatenate([resumed.indices(s) for s in range(start, start + 6)]).tolist())
        assert touched <= later and not (touched & (skipped - later))


def test_producer_errors_reach_the_consumer_and_the_thread_stops(index_source):
    source = index_source(count=40, fail_at=None)
    loader = Loader(source, 8, shuffle=False, prefetch=2)
    source.fail_at = 20  # first read in step 2
    stream = loader.batches()
    next(stream)
    next(stream)
    with pytest.raises(RuntimeError, match="source exploded at 20") as info:
        next(stream)
    assert any("get" in str(entry.name) for entry in info.traceback)  # the original traceback is kept
    assert not [t for t in threading.enumerate() if t.name.startswith("minwa-loader") and t.is_alive()]


def test_closing_an_endless_stream_stops_its_thread(index_source):
    loader = Loader(index_source(count=40), 8, prefetch=3)
    stream = loader.batches()
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("minwa-loader") and t.is_alive()]


def test_yields_float32_nchw_and_int64_labels(index_source):
    loader = Loader(index_source(count=40), 8, prefetch=1)
    x, y = next(loader.batches())
    assert x.dtype == numpy.float32 and x.shape == (8, 3, 6, 5) and loader.input_shape == (3, 6, 5)
    assert y.dtype == numpy.int64 and numpy.array_equal(y, _decode(x) % 4)
    assert loader.num_classes == 4 and len(loader) == 5


def test_mean_image_channel_and_scale():
    source = ShapesSource(count=24, image_size=12, seed=1)
    images = source.get_many(numpy.arange(24))[0].astype(numpy.float64)
    image_mean = images.mean(axis=0).transpose(2, 0, 1)
    channel_mean = images.mean(axis=(0, 1, 2)).reshape(3, 1, 1)
    for kind, mean in (("image", image_mean), ("channel", channel_mean)):
        loader = Loader(source, 8, mean=kind, scale=0.5, shuffle=False, prefetch=0)
        assert numpy.allclose(loader.mean.values, mean, atol=1e-3)
        x, _ = loader.host_batch(1)
        expected = (images[8:16].transpose(0, 3, 1, 2) - mean) * 0.5
        assert numpy.allclose(x, expected, atol=1e-3)
    fixed = Loader(source, 8, mean=[10, 20, 30], shuffle=False, prefetch=0)
    assert numpy.allclose(fixed.host_batch(0)[0][:, 2], images[:8, :, :, 2] - 30)


def test_mean_on_a_fixed_subset_and_its_cache(tmp_path):
    from minwa.datasets import mean_image

    source = ShapesSource(count=50, image_size=8, seed=4)
    subset = Loader(source, 10, mean="channel", mean_samples=10, prefetch=0)
    picked = numpy.unique(numpy.linspace(0, 49, 10).round().astype(int))
    expected = source.get_many(picked)[0].reshape(-1, 3).mean(axis=0)
    assert numpy.allclose(subset.mean.values.ravel(), expected, atol=1e-3)
    cache = tmp_path / "mean.npz"
    mean_image._memo.clear()
    first = Loader(source, 10, mean="image", mean_cache=str(cache), prefetch=0).mean.values
    assert cache.exists()
    mean_image._memo.clear()
    stale = ShapesSource(count=50, image_size=8, seed=4, cache_mb=0)
    stale.get_many = None  # a cache hit must not read the source at all
    stale_loader = Loader(stale, 10, mean="image", mean_cache=str(cache), prefetch=0)
    assert numpy.array_equal(stale_loader.mean.values, first)


def test_transform_hook_gets_images_indices_and_epoch(index_source):
    calls = []

    def crop_and_invert(images, indices, epoch):
        calls.append((list(indices), epoch))
        return numpy.stack([255 - image[:4, :4] for image in images])

    loader = Loader(index_source(count=16), 8, seed=1, transform=crop_and_invert, prefetch=0)
    assert loader.input_shape == (3, 4, 4)
    x, _ = loader.host_batch(3)
    assert calls[-1] == (loader.indices(3).tolist(), 1)
    assert numpy.array_equal(255 - x[:, 0, 0, 0], loader.indices(3) % 256)
    bad = Loader(index_source(count=16), 8, transform=lambda images, i, e: numpy.zeros((2, 4, 4, 3)), prefetch=0)
    with pytest.raises(ShapeError, match="transform returned float64"):
        bad.host_batch(0)


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("channels", [1, 3])
def test_a_transform_writing_into_one_buffer_leaves_every_prefetched_batch_intact(index_source, monkeypatch,
                                                                                  channels, device):
    from minwa import backend

    # host batches as a GPU run makes them (uint8, converted on the device later), without the device
    monkeypatch.setattr(backend, "device_kind", lambda: device)
    buffers = set()

    def crop_into(images, indices, epoch, out=None):
        shape = (len(images), 4, 4, channels)
        if out is None or out.shape != shape:
            out = numpy.empty(shape, numpy.uint8)
        buffers.add(out.__array_interface__["data"][0])
        for i, image in enumerate(images):
            out[i] = image[:4, :4, :channels]
        return out

    loader = Loader(index_source(count=64), 8, seed=1, transform=crop_into, prefetch=0)
    batches = [loader.host_batch(step)[0] for step in range(8)]  # as the prefetch queue holds them
    assert len(buffers) == 1  # the same buffer every time: a transform reusing it is given it back
    for step, x in enumerate(batches):
        assert numpy.array_equal(x[:, 0, 0, 0], loader.indices(step) % 256)


def test_images_of_different_sizes_need_a_crop(writers, tmp_path):
    from minwa.datasets import FolderSource

    writers.image_folder(str(tmp_path / "a"), classes=("x",), per_class=2, size=(9, 9))
    writers.image_folder(str(tmp_path / "b"), classes=("y",), per_class=2, size=(7, 11), seed=1)
    import shutil

    shutil.move(str(tmp_path / "b" / "y"), str(tmp_path / "a" / "y"))
    source = FolderSource(str(tmp_path / "a"))
    with pytest.raises(DataError, match="images of different sizes"):
        Loader(source, 4, shuffle=False, prefetch=0).host_batch(0)
    cropped = Loader(source, 4, shuffle=False, crop=7, prefetch=0)
    assert cropped.host_batch(0)[0].shape == (4, 3, 7, 7)


def test_corrupt_sample_fails_with_its_path(index_source):
    loader = Loader(index_source(count=40, bad={5}), 8, shuffle=False, prefetch=2, on_error="fail")
    stream = loader.batches()
    with pytest.raises(DataError, match=r"/data/img005\.jpg: cannot decode image"):
        next(stream)


def test_corrupt_sample_skipped_replaced_counted_and_warned_once(index_source, caplog):
    source = index_source(count=40, bad={5, 6, 39})
    loader = Loader(source, 8, shuffle=False, prefetch=0, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="minwa.datasets"):
        for epoch in range(2):
            for x, y in loader.epoch(epoch):
                assert x.shape == (8, 3, 6, 5)
                assert numpy.array_equal(y, _decode(x) % 4)  # image and label stay together
    assert loader.skipped == 3 * 2  # three bad samples, two epochs
    assert _decode(loader.host_batch(0)[0]).tolist() == [0, 1, 2, 3, 4, 7, 7, 7]  # next readable sample
    assert _decode(loader.host_batch(4)[0])[-1] == 0  # 39 wraps around to 0
    warned = [r.getMessage() for r in caplog.records if "skipping unreadable sample" in r.getMessage()]
    assert sorted(m.split("skip): ")[1].split(":")[0] for m in warned) == [
        "/data/img005.jpg", "/data/img006.jpg", "/data/img039.jpg"]


def test_bad_on_error_value(index_source):
    with pytest.raises(ConfigError, match="data.on_error 'ignore'"):
        Loader(index_source(), 8, on_error="ignore")
