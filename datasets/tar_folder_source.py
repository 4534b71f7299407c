"""TarFolderSource: an image folder (``<split>/<class>/*.jpg``) read straight from a .tar or .tar.gz.

A compressed tarball cannot be read at random positions, so the split's encoded
images are read into memory once (CIFAR-10 as JPEG is about 20 MB) and decoded on
demand.  Meant for data sets of that size; extract or ``minwa pack`` large ones.
The split folder may sit under one top-level folder (``cifar10/train/...``).
"""
import tarfile

import numpy

from minwa.errors import DataError

from .image_decoder import ImageDecoder, is_image_name
from .source import Source


class TarFolderSource(Source):
    """Images of ``<split>/<class>/`` inside the tarball ``path`` (``split=None``: ``<class>/`` at the top)."""

    def __init__(self, path, split, resize=None):
        self.path = str(path)
        entries = self._read(split)
        classes = sorted({cls for cls, _, _ in entries})
        if not classes:
            where = f"{split}/<class>/*.jpg" if split else "<class>/*.jpg"
            raise DataError(f"{self.path}: the tarball holds no images under {where}")
        entries.sort(key=lambda e: (e[0], e[1]))
        label_of = {name: label for label, name in enumerate(classes)}
        self.classes = tuple(classes)
        self.members = [member for _, member, _ in entries]
        self.blobs = [blob for _, _, blob in entries]
        self._labels = numpy.asarray([label_of[cls] for cls, _, _ in entries], dtype=numpy.int64)
        self.decoder = ImageDecoder(resize)
        self.name = f"tar({self.path}, {split or '.'}" + (f", resize={resize})" if resize else ")")

    def _read(self, split):
        entries = []
        try:
            with tarfile.open(self.path) as archive:
                for member in archive:
                    if not member.isfile() or not is_image_name(member.name):
                        continue
                    parts = member.name.strip("/").split("/")
                    if split is None:
                        if len(parts) < 2:
                            continue
                        cls = parts[-2]
                    else:
                        if len(parts) < 3 or parts[-3] != split:
                            continue
                        cls = parts[-2]
                    entries.append((cls, member.name, archive.extractfile(member).read()))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{self.path}: cannot read the tarball: {exc}") from exc
        return entries

    def __len__(self):
        return len(self.members)

    def labels(self):
        return self._labels

    def where(self, index):
        return f"{self.path}:{self.members[index]}"

    def get(self, index):
        index = self.check_index(index)
        return self.decoder.decode(self.blobs[index], self.where(index)), int(self._labels[index])
