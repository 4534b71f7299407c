"""RestrictedUnpickler: CIFAR's python batches load; a hostile pickle raises and runs nothing."""
import os
import pickle

import numpy
import pytest

from minwa.datasets import RestrictedUnpickler
from minwa.errors import DataError


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_containers_and_numpy_arrays_load(protocol):
    value = {b"data": numpy.arange(12, dtype=numpy.uint8).reshape(3, 4), b"labels": [1, 2, 3], "name": "x",
             b"f": 1.5, b"t": (1, None, True)}
    loaded = RestrictedUnpickler.load_bytes(pickle.dumps(value, protocol=protocol), "memory")
    assert numpy.array_equal(loaded[b"data"], value[b"data"]) and loaded[b"labels"] == [1, 2, 3]
    assert loaded["name"] == "x" and loaded[b"t"] == (1, None, True)


def test_a_pickle_that_calls_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsCode(str(marker))}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1.*refusing to load global (posix|nt|os)\.system"):
        RestrictedUnpickler.load_path(str(path))
    assert not marker.exists()


def test_builtins_eval_is_refused_and_truncation_is_a_data_error():
    with pytest.raises(DataError, match="refusing to load global builtins.eval"):
        RestrictedUnpickler.load_bytes(pickle.dumps(_Evaluates()), "evil.pkl")
    good = pickle.dumps({b"labels": list(range(100))})
    with pytest.raises(DataError, match="truncated.pkl"):
        RestrictedUnpickler.load_bytes(good[: len(good) // 2], "truncated.pkl")


def test_codecs_encode_is_only_a_string_encoder():
    crafted = pickle.dumps({b"k": b"bytes"}, protocol=2)  # python 3 writes bytes via _codecs.encode at protocol 2
    assert b"_codecs" in crafted
    assert RestrictedUnpickler.load_bytes(crafted, "p2") == {b"k": b"bytes"}
