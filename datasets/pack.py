"""pack: ``minwa pack SOURCE OUT.h5 [--scale S]`` converts any source into one HDF5 pack.

SOURCE is ``KIND:PATH`` (KIND one of cifar10, cifar100, mnist, folder, hdf5),
``shapes``, a bare path (the kind is guessed), or a YAML job file whose ``data:``
block describes the source.  Each split (train and test by default) becomes one
group of the pack (layout in hdf5_source).  ``--scale S`` resizes the shorter side
to S pixels, ``--size S`` or ``--size HxW`` to a fixed size.  Images of one shape
are stored as one chunked uint8 array; mixed shapes switch to variable-length
storage.  The pack is written to a temporary file beside OUT and renamed only
when complete, so a reader never sees half a pack.
"""
import argparse
import json
import os
import re
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor

import numpy

from minwa.errors import ConfigError, DataError, MinwaError, MissingSplit

from .hdf5_source import PACK_VERSION
from .sample_reader import ON_ERROR
from .source_factory import SOURCES, build_source

_CHUNK = 256


def _guess_kind(path):
    """The source kind of a bare path, from the file names found there."""
    if os.path.isfile(path):
        if path.endswith((".h5", ".hdf5")):
            return "hdf5"
        try:
            with tarfile.open(path) as archive:
                names = {os.path.basename(m.name) for m in archive.getmembers()}
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"{path}: neither an HDF5 pack nor a readable tarball: {exc}") from exc
    elif os.path.isdir(path):
        names = set(os.listdir(path))
        for sub in ("cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary", "cifar-100-python"):
            if os.path.isdir(os.path.join(path, sub)):
                names |= set(os.listdir(os.path.join(path, sub)))
    else:
        raise DataError(f"{path} does not exist")
    if {"data_batch_1", "data_batch_1.bin", "test_batch", "test_batch.bin"} & names:
        return "cifar10"
    if {"train.bin", "fine_label_names.txt"} & names or "meta" in names and "train" in names and os.path.isfile(
            os.path.join(path, "train")):
        return "cifar100"
    if any(n.startswith(("train-images", "t10k-images")) for n in names):
        return "mnist"
    return "folder"


def data_config(spec, label=None):
    """A ``data:`` block (source, path, ...) for the SOURCE argument of ``minwa pack``."""
    if spec.endswith((".yaml", ".yml")) and os.path.isfile(spec):
        import yaml

        with open(spec) as handle:
            job = yaml.safe_load(handle) or {}
        data = dict(job.get("data", job))
        if "source" not in data:
            raise ConfigError(f"{spec}: no data.source to pack")
    elif spec == "shapes" or spec.startswith("shapes:"):
        data = {"source": "shapes"}
        for item in filter(None, spec[len("shapes:"):].split(",")):
            key, _, value = item.partition("=")
            data[key.strip()] = int(value)
    else:
        match = re.match(r"^([a-z0-9]+):(.+)$", spec)
        if match and match.group(1) in SOURCES:
            data = {"source": match.group(1), "path": match.group(2)}
        else:
            data = {"source": _guess_kind(spec), "path": spec}
    if label:
        data["label"] = label
    return data


def _fit(image, scale, size):
    """``image`` resized to ``size`` (h, w), or with its shorter side at ``scale``; unchanged if neither."""
    if not scale and not size:
        return image
    from PIL import Image

    h, w = image.shape[:2]
    if size:
        target = size
    else:
        ratio = scale / min(h, w)
        target = (max(1, round(h * ratio)), max(1, round(w * ratio)))
    if target == (h, w):
        return image
    grey = image.shape[2] == 1
    picture = Image.fromarray(image[:, :, 0] if grey else image)
    out = numpy.asarray(picture.resize((target[1], target[0]), Image.BILINEAR), dtype=numpy.uint8)
    return out[:, :, None] if grey else out


class _SplitWriter:
    """Appends images to one split group: a fixed (N, H, W, C) array until a shape differs, then variable."""

    def __init__(self, group):
        self.group = group
        self.count = 0
        self.shape = None
        self.variable = False

    def append(self, images):
        import h5py

        if images and self.shape is not None and not self.variable and all(i.shape == self.shape for i in images):
            block = self.group["images"]
            block.resize((self.count + len(images),) + self.shape)
            block[self.count:self.count + len(images)] = numpy.stack(images)
            self.count += len(images)
            return
        for image in images:
            if self.shape is None:
                self.shape = image.shape
                self.group.create_dataset("images", shape=(0,) + image.shape, maxshape=(None,) + image.shape,
                                          dtype=numpy.uint8, chunks=(1,) + image.shape)
            if not self.variable and image.shape != self.shape:
                self._go_variable(h5py)
            if self.variable:
                data, shapes = self.group["data"], self.group["shapes"]
                data.resize((self.count + 1,))
                shapes.resize((self.count + 1, 3))
                data[self.count] = image.ravel()
                shapes[self.count] = image.shape
            else:
                images_ds = self.group["images"]
                images_ds.resize((self.count + 1,) + self.shape)
                images_ds[self.count] = image
            self.count += 1

    def _go_variable(self, h5py):
        old = self.group["images"]
        data = self.group.create_dataset("data", shape=(self.count,), maxshape=(None,), chunks=(64,),
                                         dtype=h5py.vlen_dtype(numpy.uint8))
        shapes = self.group.create_dataset("shapes", shape=(self.count, 3), maxshape=(None, 3), dtype=numpy.int32)
        for k in range(self.count):
            data[k] = old[k].ravel()
            shapes[k] = self.shape
        del self.group["images"]
        self.variable = True


def _read_chunk(source, indices, on_error, scale, size):
    """Images and labels of ``indices`` (resized), dropping unreadable ones under on_error=skip."""
    images, labels, dropped = [], [], []
    for index in indices:
        try:
            image, label = source.get(int(index))
        except DataError as exc:
            if on_error == "fail":
                raise
            dropped.append(str(exc))
            continue
        images.append(_fit(image, scale, size))
        labels.append(label)
    return images, labels, dropped


def write_pack(out, sources, scale=None, size=None, on_error="fail", workers=2, log=None):
    """Write ``sources`` ({split: Source}) to the pack ``out`` atomically; returns {split: images written}."""
    import h5py

    log = log or (lambda message: None)
    out = os.path.abspath(out)
    folder = os.path.dirname(out)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{os.path.basename(out)}.tmp-{os.getpid()}")
    written = {}
    try:
        with h5py.File(temp, "w") as handle, ThreadPoolExecutor(max(1, int(workers))) as pool:
            handle.attrs["minwa_pack"] = PACK_VERSION
            for split, source in sources.items():
                group = handle.create_group(split)
                group.attrs["classes"] = json.dumps(list(source.classes))
                group.attrs["source"] = source.name
                writer, labels, dropped = _SplitWriter(group), [], 0
                chunks = [numpy.arange(s, min(s + _CHUNK, len(source))) for s in range(0, len(source), _CHUNK)]
                results = pool.map(lambda c, s=source: _read_chunk(s, c, on_error, scale, size), chunks)
                for number, (images, chunk_labels, bad) in enumerate(results):
                    writer.append(images)
                    labels += chunk_labels
                    for message in bad:
                        log(f"skipped: {message}")
                    dropped += len(bad)
                    if number % 20 == 19:
                        log(f"{split}: {writer.count}/{len(source)} images")
                if writer.count == 0:
                    raise DataError(f"{source.name}: no readable images to pack")
                group.create_dataset("labels", data=numpy.asarray(labels, dtype=numpy.int64))
                written[split] = writer.count
                layout = "variable" if writer.variable else "x".join(str(d) for d in writer.shape)
                log(f"{split}: {writer.count} images ({layout}), {dropped} skipped, from {source.name}")
        os.replace(temp, out)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return written


def _size(text):
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected S or HxW, got {text!r}")
    h = int(match.group(1))
    return (h, int(match.group(2) or h))


def main(argv=None):
    """``minwa pack``: returns 0 on success, 1 on a data or config error (message on stderr)."""
    parser = argparse.ArgumentParser(prog="minwa pack", description="Convert a data set into one HDF5 pack "
                                     "(one group per split) for fast random access by every rank.")
    parser.add_argument("source", help="KIND:PATH (cifar10, cifar100, mnist, folder, hdf5), shapes[:key=value,...], "
                        "a bare path, or a job .yaml whose data: block names the source")
    parser.add_argument("out", help="the .h5 file to write (atomically)")
    parser.add_argument("--scale", type=int, default=None, help="resize the shorter side to S pixels")
    parser.add_argument("--size", type=_size, default=None, help="resize every image to S x S or H x W")
    parser.add_argument("--split", default="train,test", help="splits to pack (default: train,test; "
                        "missing ones are skipped unless named explicitly)")
    parser.add_argument("--on-error", choices=ON_ERROR, default="fail", help="unreadable images: fail or skip them")
    parser.add_argument("--label", choices=("fine", "coarse"), default=None, help="CIFAR-100 labels (default fine)")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    log = (lambda message: None) if args.quiet else (lambda message: print(f"minwa pack: {message}", file=sys.stderr))
    try:
        if args.scale is not None and args.scale <= 0:
            raise ConfigError("--scale: must be > 0")
        data = data_config(args.source, args.label)
        splits = [s.strip() for s in args.split.split(",") if s.strip()]
        explicit = args.split != "train,test"
        sources = {}
        for split in splits:
            try:
                sources[split] = build_source(data, split)
            except MissingSplit as exc:  # absent: skipped; there but unreadable: an error, never a partial pack
                if explicit:
                    raise
                log(f"no {split} split ({exc}); skipped")
        if not sources:
            raise DataError(f"{args.source}: found no split to pack")
        written = write_pack(args.out, sources, scale=args.scale, size=args.size, on_error=args.on_error,
                             workers=args.workers, log=log)
    except MinwaError as exc:
        print(f"minwa pack: error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{split} {count}" for split, count in written.items())
    print(f"wrote {args.out}: {summary} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
