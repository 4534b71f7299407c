"""FolderSource: images in the ImageNet layout ``root/<class>/*.jpg|png``, decoded with Pillow.

Classes are the sub-folder names in sorted order (label = position), files are
sorted within a class, so every rank and every run numbers the samples the same
way.  The folder is scanned once; images are decoded on demand.  A missing root,
a root without class folders or a class folder without images is a DataError
before training starts; an undecodable file is a DataError naming it.
"""
import os

import numpy

from minwa.errors import DataError

from .image_decoder import ImageDecoder, is_image_name
from .source import Source


class FolderSource(Source):
    """``root/<class>/<image>`` files, optionally resized so the shorter side is ``resize`` pixels."""

    def __init__(self, root, resize=None):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise DataError(f"{root}: image folder does not exist")
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        if not classes:
            raise DataError(f"{root}: no class folders (expected {root}/<class>/*.jpg)")
        files, labels = [], []
        for label, name in enumerate(classes):
            folder = os.path.join(root, name)
            found = sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_name(e.name))
            if not found:
                raise DataError(f"{folder}: class folder holds no images (.jpg, .png, ...)")
            files += [os.path.join(folder, f) for f in found]
            labels += [label] * len(found)
        self.root = root
        self.classes = tuple(classes)
        self.files = files
        self._labels = numpy.asarray(labels, dtype=numpy.int64)
        self.decoder = ImageDecoder(resize)
        self.name = f"folder({root}" + (f", resize={resize})" if resize else ")")

    def __len__(self):
        return len(self.files)

    def labels(self):
        return self._labels

    def where(self, index):
        return self.files[index]

    def get(self, index):
        index = self.check_index(index)
        return self.decoder.decode(None, self.files[index]), int(self._labels[index])
