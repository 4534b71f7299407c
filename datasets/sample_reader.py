"""SampleReader: reads batches from a source under the ``on_error`` policy for bad samples.

``on_error: fail`` lets the source's DataError (which names the file) end the
run.  ``on_error: skip`` replaces a sample that cannot be read by the next
readable index (i+1, i+2, ... wrapping around), so batches keep their shape and
every rank and every rerun makes the same replacement; each bad file is warned
about once and counted in ``skipped`` (every time it is replaced).
"""
import logging

import numpy

from minwa.errors import ConfigError, DataError

ON_ERROR = ("fail", "skip")
_log = logging.getLogger("minwa.datasets")
_MAX_TRIES = 1000


class SampleReader:
    """Batch reads from ``source`` that either fail on a bad sample or replace it deterministically."""

    def __init__(self, source, on_error="fail"):
        if on_error not in ON_ERROR:
            raise ConfigError(f"data.on_error {on_error!r}: expected one of {', '.join(ON_ERROR)}")
        self.source = source
        self.on_error = on_error
        self.skipped = 0
        self.bad = set()  # indices known to be unreadable
        self.replacement = {}  # bad index -> the readable index used in its place

    def read(self, indices):
        """(images, labels) for ``indices``: an NHWC array or a list of HWC arrays, and int64 labels."""
        indices = numpy.asarray(indices, dtype=numpy.int64).ravel()
        if self.on_error == "fail":
            return self.source.get_many(indices)
        if self.replacement:
            known = numpy.isin(indices, list(self.replacement))
            if known.any():
                self.skipped += int(known.sum())
                indices = numpy.array([self.replacement.get(int(i), int(i)) for i in indices], dtype=numpy.int64)
        try:
            return self.source.get_many(indices)
        except DataError:
            pass
        images, labels = [], []
        for index in indices:
            image, label = self.get(int(index))
            images.append(image)
            labels.append(label)
        return images, numpy.asarray(labels, dtype=numpy.int64)

    def get(self, index):
        """One sample, replaced by the next readable one if it is bad and the policy is skip."""
        try:
            return self.source.get(index)
        except DataError as exc:
            if self.on_error == "fail":
                raise
            first_error = exc
        size = len(self.source)
        for step in range(1, min(size, _MAX_TRIES)):
            candidate = (index + step) % size
            if candidate in self.bad:
                continue
            try:
                sample = self.source.get(candidate)
            except DataError as exc:
                self._mark_bad(candidate, exc)
                continue
            self._mark_bad(index, first_error)
            self.replacement[index] = candidate
            self.skipped += 1
            return sample
        raise DataError(f"{self.source.name}: no readable sample found after {self.source.where(index)} "
                        f"(on_error: skip); first error: {first_error}") from first_error

    def _mark_bad(self, index, exc):
        if index not in self.bad:
            self.bad.add(index)
            message = str(exc)
            where = self.source.where(index)
            _log.warning("minwa: skipping unreadable sample (on_error: skip): %s",
                         message if where in message else f"{where}: {message}")
