"""Sharded DataParallel's solver state: gathered whole on every rank, it resumes sharded or replicated.

The ranks are workers of this file under ``mpiexec -n 2`` / ``-n 4`` (with a
timeout): STEPS sharded steps, the state saved, then STEPS more in either mode,
against 2 * STEPS steps of one process.
"""
import json
import os
import sys

import numpy
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_parallel_cases import STEPS, assert_same_weights, load, reference, run_worker, save_run, train_data_parallel  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("n", [2, 4])
def test_solver_state_is_whole_and_resumes_in_any_mode(tmp_path, n, mpirun):
    mpirun(n, __file__, ["resume", tmp_path], timeout=300)
    _, solver = reference("sgd", steps=STEPS)
    want_state = solver.state_dict()
    with open(tmp_path / "state.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["iter"] == want_state["iter"] == STEPS
    for name, slots in want_state["state"].items():
        numpy.testing.assert_allclose(saved["state"][name]["history"], slots["history"], rtol=1e-9, atol=1e-13)
    want, _ = reference("sgd", steps=2 * STEPS)
    for name in ("resume_sharded_as_sharded", "resume_sharded_as_lazy"):
        ranks, _ = load(tmp_path, name, n)
        for got in ranks:
            assert_same_weights(got, want, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec (or as one process)
def _worker_resume(comm, directory):
    options = {"sharded": True, "bucket_bytes": 0}
    net, engine, _ = train_data_parallel(comm, "first", options, "sgd", "float64")
    state = engine.solver_state()
    weights = {p.name: numpy.array(p.data) for p in net.params}
    rng_state = net.layer("drop1").rng.bit_generator.state
    engine.close()
    if comm.rank == 0:
        with open(os.path.join(directory, "state.json"), "w", encoding="utf-8") as f:
            json.dump({"iter": state["iter"], "state": {k: {s: v.tolist() for s, v in slots.items()}
                                                        for k, slots in state["state"].items()}}, f)
    for name, opts in (("resume_sharded_as_sharded", options), ("resume_sharded_as_lazy", {"bucket_bytes": 0})):
        net, engine, info = train_data_parallel(comm, name, opts, "sgd", "float64", start=STEPS, init=weights,
                                                state=state, rng_state=rng_state)
        engine.close()
        save_run(directory, name, comm, net, info)


if __name__ == "__main__":
    run_worker({"resume": _worker_resume}, sys.argv[1:])
