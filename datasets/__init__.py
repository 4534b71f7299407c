"""Data sources and the per-rank loader, installed as minwa.datasets.

    from minwa.datasets import build_source, make_loader, Loader
    loader = make_loader({"source": "shapes", "batch_size": 64, "mean": "channel"}, "train", rank=0, size=1)
    for x, y in loader.batches(start_step=0): ...   # float32 NCHW and int64 labels on the device

Names are imported on first use, so ``import minwa.datasets`` stays cheap (h5py
and Pillow load only when a source needs them).
"""
import importlib

_EXPORTS = {
    "Source": "source", "ShapesSource": "shapes_source", "CifarSource": "cifar_source", "open_cifar": "cifar_source",
    "MnistSource": "mnist_source", "FolderSource": "folder_source", "TarFolderSource": "tar_folder_source",
    "Hdf5Source": "hdf5_source", "RestrictedUnpickler": "restricted_unpickler", "build_source": "source_factory",
    "SOURCES": "source_factory", "Loader": "loader", "make_loader": "loader_factory", "DATA_KEYS": "loader_factory",
    "MeanImage": "mean_image", "Prefetcher": "prefetcher", "SampleReader": "sample_reader",
    "SubsetSource": "subset_source",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minwa.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
