"""Handle: generator-driven transfers, chaining, results and errors, and how a short wait polls."""
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


def test_a_short_wait_polls_by_yielding_the_core_not_by_a_timed_sleep(monkeypatch):
    """``time.sleep(0)`` sleeps 50-70 us on Linux, longer than a stage over shared memory takes."""
    import time
    from types import SimpleNamespace

    import numpy as np
    from mpi4py import MPI

    from minwa.comm import handle as handle_module

    sent, received = np.arange(4.0), np.zeros(4)
    request = MPI.COMM_SELF.Irecv(received, source=0, tag=7)
    yields = []

    def counted_yield():
        yields.append(1)
        if len(yields) == 3:  # the peer's data arrives while the waiter polls
            MPI.COMM_SELF.Send(sent, dest=0, tag=7)

    def no_sleep(seconds):
        pytest.fail(f"wait() slept {seconds} s within its spin window")

    monkeypatch.setattr(handle_module, "_yield", counted_yield)
    monkeypatch.setattr(handle_module, "SPIN_S", 60.0)
    monkeypatch.setattr(handle_module, "time", SimpleNamespace(perf_counter=time.perf_counter, sleep=no_sleep))

    def stages():
        yield [request]
        return received.copy()

    assert Handle(stages(), name="from self").wait().tolist() == sent.tolist()
    assert len(yields) == 3


def test_a_layer_pass_drives_a_transfer_in_flight(monkeypatch):
    """Lazy update polls between compute chunks: the transfer finishes with nobody calling test() or wait()."""
    import numpy as np
    from mpi4py import MPI

    from minwa.comm.handle import progress_all
    from minwa.layers import _threads

    monkeypatch.setenv("MINWA_THREADS", "1")  # every chunk on this thread, which registered the poll
    monkeypatch.setattr(_threads, "POLL_S", 0.0)
    sent, received = np.arange(4.0), np.zeros(4)
    request = MPI.COMM_SELF.Irecv(received, source=0, tag=9)

    def stages():
        yield [request]
        return received.copy()

    handle = Handle(stages(), name="in flight")
    send = MPI.COMM_SELF.Isend(sent, dest=0, tag=9)
    assert not handle.done  # a handle moves on only when driven
    _threads.add_poll(progress_all)
    try:
        _threads.run_chunks(np, lambda n0, n1: None, [(0, 1), (1, 2), (2, 3)])
    finally:
        _threads.remove_poll(progress_all)
    send.Wait()
    assert handle.done and handle.result.tolist() == sent.tolist()
