"""Handle: generator-driven transfers, chaining, results and errors (no MPI requests needed here)."""
import pytest

from minwa.comm import Handle
from minwa.errors import CommError


def test_stages_run_in_order_and_return_a_result():
    log = []

    def stages():
        log.append("post first")
        yield []
        log.append("after first")
        yield []
        log.append("after second")
        return 42

    handle = Handle(stages(), name="demo")
    # nothing was pending, so the whole generator ran at once
    assert handle.done and handle.test()
    assert handle.wait() == 42
    assert log == ["post first", "after first", "after second"]
    assert handle.seconds is not None and handle.seconds >= 0


def test_completed_handle():
    handle = Handle.completed("value")
    assert handle.done and handle.wait() == "value"


def test_chained_handles_complete_with_the_outer_one():
    inner = Handle.completed(5)

    def outer():
        yield [inner]
        return inner.wait() * 2

    assert Handle(outer()).wait() == 10


def test_a_failing_stage_is_raised_by_wait_as_comm_error_naming_the_transfer():
    def stages():
        yield []
        raise ValueError("part sizes disagree")

    handle = Handle(stages(), name="butterfly bucket 3")
    assert handle.test()  # failing completes the handle; test() itself never raises
    with pytest.raises(CommError, match="butterfly bucket 3: ValueError: part sizes disagree"):
        handle.wait()


def test_comm_errors_pass_through_unchanged():
    def stages():
        raise CommError("rank 1 differs")
        yield  # pragma: no cover

    with pytest.raises(CommError, match="^rank 1 differs$"):
        Handle(stages()).wait()
