import numpy

from minwa.augment.lru_cache import LRUCache


def test_evicts_least_recently_used_within_the_byte_budget():
    cache = LRUCache(max_bytes=3 * 800)
    built = []

    def maker(key):
        def build():
            built.append(key)
            return numpy.zeros(100)  # 800 bytes
        return build

    for key in "abc":
        cache.get(key, maker(key))
    cache.get("a", maker("a"))  # a is now the most recent
    cache.get("d", maker("d"))  # evicts b
    assert built == ["a", "b", "c", "d"]
    cache.get("a", maker("a"))
    cache.get("c", maker("c"))
    assert built == ["a", "b", "c", "d"]
    cache.get("b", maker("b"))
    assert built[-1] == "b" and len(cache) == 3 and cache.nbytes == 2400
    assert cache.hits == 3 and cache.misses == 5


def test_values_larger_than_the_budget_are_not_kept():
    cache = LRUCache(max_bytes=10)
    value = cache.get("big", lambda: numpy.zeros(100))
    assert value.shape == (100,) and len(cache) == 0
