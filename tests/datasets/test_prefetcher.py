"""Prefetcher: bounded look-ahead, errors delivered in order, a clean stop."""
import threading
import time

import pytest

from minwa.datasets import Prefetcher


def test_results_arrive_in_order_and_look_ahead_is_bounded():
    produced = []

    def produce(item):
        produced.append(item)
        return item * item

    worker = Prefetcher(range(100), produce, depth=2)
    assert next(worker) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(produced) <= 4  # one consumed, two queued, one waiting to be queued
    assert [next(worker) for _ in range(5)] == [1, 4, 9, 16, 25]
    worker.close()
    assert not worker.alive


def test_an_exception_is_raised_after_the_good_items():
    def produce(item):
        if item == 3:
            raise KeyError("item 3 is missing")
        return item

    worker = Prefetcher(range(10), produce, depth=4)
    assert [next(worker) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="item 3 is missing"):
        next(worker)
    assert not worker.alive


def test_finite_items_end_the_iteration_and_close_unblocks_a_full_queue():
    assert list(Prefetcher(range(5), lambda i: -i, depth=1)) == [0, -1, -2, -3, -4]
    worker = Prefetcher(iter(int, 1), lambda i: i, depth=1)  # endless; the queue fills at once
    time.sleep(0.1)
    worker.close()
    assert not worker.alive
    assert not [t for t in threading.enumerate() if t.name == "minwa-prefetch" and t.is_alive()]
