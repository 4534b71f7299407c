"""Watchdog._judge: what it says about a peer depends on how lately that peer was heard from."""
from minwa.failure.watchdog import Watchdog


def _watchdog(heard_ago, what="the stop-request check (allgather)", now=100.0):
    """Rank 0 of 2, waiting 3.1 s at step 5; rank 1 last heard ``heard_ago`` s ago, waiting in ``what``."""
    dog = Watchdog.__new__(Watchdog)
    dog.rank, dog.size, dog.poll, dog.timeout, dog.busy_timeout = 0, 2, 0.3, 3.0, 60.0
    dog._step, dog._what = 5, "the stop-request check (allgather)"
    dog._seen = {1: {"step": 5, "what": what, "waited": 3.0, "heard": now - heard_ago, "pid": 4321,
                     "host": "vm", "state": None,
                     "busy": None, "busy_for": None}}
    dog.said = []
    dog._fire = lambda message, **_: dog.said.append(message)
    return dog


def test_a_peer_heard_just_now_and_waiting_means_communication_is_stuck():
    dog = _watchdog(heard_ago=0.2)
    dog._judge(100.0, 3.1)
    assert len(dog.said) == 1 and "every rank is waiting" in dog.said[0]


def test_a_peer_that_went_quiet_lately_is_not_judged_until_it_is_silent():
    """Stopped inside the collective after its last beat: not 'every rank waiting', but 'not responding'."""
    dog = _watchdog(heard_ago=1.5)
    dog._judge(100.0, 3.1)
    assert dog.said == []
    dog._seen[1]["heard"] = 100.0 - 3.5  # two seconds later, still nothing from it
    dog._judge(100.0, 5.1)
    assert len(dog.said) == 1
    assert "rank 1 (pid 4321 on vm) is not responding" in dog.said[0]
    assert "every rank is waiting" not in dog.said[0]


def _busy(dog, seconds, what="writing checkpoint step 5"):
    """Rank 1 is heard from, not waiting, busy in ``what`` for ``seconds``."""
    dog._seen[1].update(what=None, busy=what, busy_for=seconds)
    return dog


def test_a_live_busy_peer_is_waited_for_up_to_the_longer_bound():
    dog = _busy(_watchdog(heard_ago=0.2), 30.0)
    dog._judge(100.0, 30.0)
    assert dog.said == []
    dog._seen[1]["busy"] = None  # the same peer outside any declared operation: named after timeout
    dog._judge(100.0, 30.0)
    assert len(dog.said) == 1 and "rank 1 (pid 4321 on vm) is at step 5, not waiting in any collective" in dog.said[0]


def test_a_busy_peer_past_the_longer_bound_is_named_with_its_operation_and_both_bounds():
    dog = _busy(_watchdog(heard_ago=0.2), 61.0)
    dog._judge(100.0, 61.0)
    assert len(dog.said) == 1
    assert "(train.timeout_s=3, and train.checkpoint_timeout_s=60 for a rank busy" in dog.said[0]
    assert "rank 1 (pid 4321 on vm) is still writing checkpoint step 5 after 61 s, past " \
           "train.checkpoint_timeout_s=60" in dog.said[0]


def test_a_busy_peer_that_goes_silent_is_named_after_the_ordinary_bound():
    dog = _busy(_watchdog(heard_ago=3.5), 2.0)
    dog._judge(100.0, 3.1)
    assert len(dog.said) == 1
    assert "rank 1 (pid 4321 on vm) is not responding (last heard 4 s ago at step 5 while writing checkpoint " \
           "step 5)" in dog.said[0]
