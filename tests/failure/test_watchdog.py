"""Watchdog._judge: what it says about a peer depends on how lately that peer was heard from."""
from minwa.failure.watchdog import Watchdog


def _watchdog(heard_ago, what="the stop-request check (allgather)", now=100.0):
    """Rank 0 of 2, waiting 3.1 s at step 5; rank 1 last heard ``heard_ago`` s ago, waiting in ``what``."""
    dog = Watchdog.__new__(Watchdog)
    dog.rank, dog.size, dog.poll, dog.timeout = 0, 2, 0.3, 3.0
    dog._step, dog._what = 5, "the stop-request check (allgather)"
    dog._seen = {1: {"step": 5, "what": what, "waited": 3.0, "heard": now - heard_ago, "pid": 4321,
                     "host": "vm", "state": None}}
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
