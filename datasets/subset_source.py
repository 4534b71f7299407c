"""SubsetSource: a fixed subset of another source (``data.train_limit`` / ``data.test_limit``).

For quick runs and smoke tests on a big data set: ``limit`` evenly spaced samples,
so a folder source sorted by class keeps every class.  Errors still name the
underlying file.
"""
import numpy

from minwa.errors import ConfigError

from .source import Source


class SubsetSource(Source):
    """The samples ``indices`` of ``source``, renumbered 0..len-1."""

    def __init__(self, source, indices):
        self.source = source
        self.indices = numpy.asarray(indices, dtype=numpy.int64)
        self.classes = source.classes
        self.name = f"{source.name}[{len(self.indices)} of {len(source)}]"

    @classmethod
    def evenly(cls, source, limit):
        """At most ``limit`` samples spread evenly over ``source`` (the source itself when it is small enough)."""
        limit = int(limit)
        if limit <= 0:
            raise ConfigError(f"data limit: must be > 0, got {limit}")
        if limit >= len(source):
            return source
        return cls(source, numpy.unique(numpy.linspace(0, len(source) - 1, limit).round().astype(numpy.int64)))

    def __len__(self):
        return len(self.indices)

    def labels(self):
        return self.source.labels()[self.indices]

    def where(self, index):
        return self.source.where(int(self.indices[index]))

    def get(self, index):
        return self.source.get(int(self.indices[self.check_index(index)]))

    def get_many(self, indices):
        return self.source.get_many(self.indices[numpy.asarray(indices, dtype=numpy.int64)])
