"""Threads minwa starts use the device the rank was bound to (CUDA's current device is per thread)."""
import threading
import types

from minwa import backend
from minwa.comm.progress_thread import ProgressThread
from minwa.datasets.prefetcher import Prefetcher


def _fake_gpu(monkeypatch):
    """A stand-in for cupy that records which thread made which device current."""
    used = []

    class Device:
        def __init__(self, number):
            self.number = number

        def use(self):
            used.append((threading.current_thread().name, self.number))

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=Device))
    monkeypatch.setitem(backend._state, "xp", fake)
    monkeypatch.setitem(backend._state, "device", 3)
    return used


def test_the_progress_thread_and_the_prefetcher_use_the_bound_device(monkeypatch):
    used = _fake_gpu(monkeypatch)
    progress = ProgressThread(name="minwa-progress-test")
    prefetcher = Prefetcher([1, 2], lambda item: item, depth=1, name="minwa-prefetch-test")
    assert list(prefetcher) == [1, 2]
    progress.close()
    assert ("minwa-progress-test", 3) in used and ("minwa-prefetch-test", 3) in used, used
