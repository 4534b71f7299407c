"""LRUCache: a thread-safe least-recently-used cache bounded by bytes.

The augmentation pipeline caches coordinate maps and vignette masks that depend only
on discrete parameters; with the Table 1 parameter spaces most keys repeat, so a few
hundred megabytes of maps save recomputing them for every image.
"""
import threading
from collections import OrderedDict


def _nbytes(value):
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return int(getattr(value, "nbytes", 64))


class LRUCache:
    """Maps hashable keys to values (arrays or tuples of arrays) within ``max_bytes``."""

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self._items = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._items)

    @property
    def nbytes(self):
        return self._bytes

    def get(self, key, build):
        """The cached value of ``key``, or ``build()`` stored under it (evicting the oldest)."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return value
            self.misses += 1
        value = build()  # outside the lock: another thread may build the same key, which is harmless
        size = _nbytes(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= _nbytes(old)
        return value

    def clear(self):
        with self._lock:
            self._items.clear()
            self._bytes = 0
