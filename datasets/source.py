"""Source: the interface every data set in minwa offers to the loader.

A source is an indexable collection of labelled images: ``len(source)``,
``source.classes`` (class names, index = label), ``source.get(i)`` returning a
uint8 HWC image and an int label, and ``source.get_many(indices)`` for a whole
batch (overridden where a vectorised read is cheap).  ``source.where(i)`` names
the place sample ``i`` comes from, so errors can point at a file.
"""
import numpy

from minwa.errors import DataError


class Source:
    """Base class: subclasses set ``classes`` and ``name`` and implement ``__len__`` and ``get``."""

    classes = ()
    name = "source"

    def __len__(self):
        raise NotImplementedError

    def get(self, index):
        """(uint8 HWC image, int label) of sample ``index``."""
        raise NotImplementedError

    def get_many(self, indices):
        """Images (an NHWC array, or a list when sizes differ) and an int64 label array for ``indices``."""
        images, labels = [], []
        for index in numpy.asarray(indices, dtype=numpy.int64).ravel():
            image, label = self.get(int(index))
            images.append(image)
            labels.append(label)
        return images, numpy.asarray(labels, dtype=numpy.int64)

    def labels(self):
        """All labels as an int64 array (used to validate a source before training)."""
        return numpy.asarray([self.get(i)[1] for i in range(len(self))], dtype=numpy.int64)

    def where(self, index):
        """Human-readable place of sample ``index`` (a file, a record), for error messages."""
        return f"{self.name}[{index}]"

    @property
    def num_classes(self):
        return len(self.classes)

    def check_index(self, index):
        """Normalise ``index`` to a python int in range, or raise IndexError naming the source."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} samples")
        return index

    def validate(self):
        """Raise DataError before training if the source is empty or a label is out of range."""
        if len(self) == 0:
            raise DataError(f"{self.name}: holds no samples")
        if not self.classes:
            raise DataError(f"{self.name}: has no class names")
        labels = self.labels()
        if labels.shape != (len(self),):
            raise DataError(f"{self.name}: {labels.shape[0]} labels for {len(self)} images")
        bad = numpy.flatnonzero((labels < 0) | (labels >= len(self.classes)))
        if bad.size:
            first = int(bad[0])
            raise DataError(f"{self.where(first)}: label {int(labels[first])} out of range "
                            f"[0, {len(self.classes)}) ({bad.size} such labels in {self.name})")
        return self

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {len(self)} samples, {len(self.classes)} classes)"


def to_hwc_uint8(image, where):
    """Check that ``image`` is a uint8 HWC (or HW) array and return it as HWC."""
    image = numpy.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.dtype != numpy.uint8:
        raise DataError(f"{where}: expected a uint8 HxWxC image, got {image.dtype} with shape {image.shape}")
    return image
