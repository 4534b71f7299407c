"""Timeline: Chrome trace events per rank, merged into one JSON file that chrome://tracing / Perfetto load."""
import json
import time

from minwa.timeline import Timeline


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_events_of_one_rank(tmp_path):
    path = tmp_path / "trace.json"
    timeline = Timeline(path)
    timeline.begin("step 0", cat="step")
    start = time.perf_counter()
    with timeline.span("forward conv1", cat="forward"):
        pass
    timeline.complete("bucket 0", start, start + 0.002, cat="comm", lane="comm bucket 0", args={"bytes": 64})
    timeline.instant("bucket 0 ready", cat="comm")
    timeline.counter("bytes", {"sent": 64})
    timeline.end("step 0", cat="step")
    assert timeline.close() == str(path)
    assert timeline.close() == str(path)  # closing twice is harmless
    trace = _load(path)
    events = trace["traceEvents"]
    names = {(e["ph"], e["name"]) for e in events}
    assert {("B", "step 0"), ("E", "step 0"), ("X", "forward conv1"), ("X", "bucket 0"), ("i", "bucket 0 ready"),
            ("C", "bytes")} <= names
    lanes = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
    assert lanes == {"compute": 0, "comm bucket 0": 1}
    transfer = next(e for e in events if e["name"] == "bucket 0")
    assert transfer["tid"] == 1 and abs(transfer["dur"] - 2000.0) < 1e-3 and transfer["args"] == {"bytes": 64}
    begin = next(e for e in events if e["ph"] == "B")
    end = next(e for e in events if e["ph"] == "E")
    assert 0 <= begin["ts"] <= end["ts"]
    assert all(e["pid"] == 0 for e in events)
    assert any(e["name"] == "process_name" and e["args"]["name"] == "rank 0" for e in events)


def test_rank_parts_are_merged_by_rank_zero(tmp_path):
    path = tmp_path / "run" / "trace.json"
    for rank in (2, 1):
        worker = Timeline(path, rank=rank, size=3)
        worker.instant(f"hello from {rank}")
        assert worker.close() == f"{path}.rank{rank}"
    root = Timeline(path, rank=0, size=3)
    root.instant("hello from 0")
    root.close()
    trace = _load(path)
    assert {e["pid"] for e in trace["traceEvents"]} == {0, 1, 2}
    assert trace["otherData"] == {"ranks": 3, "missing_ranks": []}
    assert sorted(p.name for p in path.parent.iterdir()) == ["trace.json"]  # parts cleaned up


def test_a_missing_rank_does_not_block_the_merge_forever(tmp_path, capsys):
    path = tmp_path / "trace.json"
    root = Timeline(path, rank=0, size=2, merge_timeout=0.2)
    root.instant("alone")
    root.close()
    trace = _load(path)
    assert trace["otherData"]["missing_ranks"] == [1]
    assert {e["pid"] for e in trace["traceEvents"]} == {0}
    assert "no events from rank(s) [1]" in capsys.readouterr().err
