"""The start-up agreement on the net: ranks that built different nets fail together with a clear error.

The ranks are workers of this file under ``mpiexec -n 2`` (with a timeout); rank 1
builds a different net (or setting) than rank 0 and each rank writes the error it saw.
"""
import json
import os
import sys

import pytest

from minwa.net import Net
from minwa.solver import Solver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_parallel_cases import BATCH, SOLVERS, model, run_worker  # noqa: E402

pytestmark = pytest.mark.mpi


def test_ranks_that_built_different_nets_fail_together_with_a_clear_error(tmp_path, mpirun):
    mpirun(2, __file__, ["mismatch", tmp_path], timeout=90)
    for rank in range(2):
        with open(tmp_path / f"mismatch.rank{rank}.json", encoding="utf-8") as f:
            errors = json.load(f)
        assert errors["same"] == "no error"
        assert "rank 1 disagrees with rank 0" in errors["shape"]
        assert "'conv2.weight': shape (6, 4, 3, 3) vs (5, 4, 3, 3)" in errors["shape"]
        assert "layer #5 is 'conv2' (Convolution) on rank 0 but 'conv2b' (Convolution) here" in errors["layer"]
        assert "parallel.strategy is 'butterfly' on rank 0 but 'allreduce' here" in errors["setting"]


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec (or as one process)
def _worker_mismatch(comm, directory):
    from minwa.errors import CommError
    from minwa.parallel.data import DataParallel

    local = BATCH // comm.size
    odd = comm.rank == 1
    cases = {"same": (model(local), {}), "shape": (model(local, conv2_outputs=5 if odd else 6), {}),
             "layer": (model(local, conv2_name="conv2b" if odd else "conv2"), {}),
             "setting": (model(local), {"strategy": "allreduce" if odd else "butterfly"})}
    errors = {}
    for case, (net_model, options) in cases.items():
        net = Net(net_model, dtype="float64", seed=3)
        try:
            DataParallel(net, Solver(net, SOLVERS["sgd"]), comm, **options).close()
            errors[case] = "no error"
        except CommError as exc:
            errors[case] = str(exc)
    with open(os.path.join(directory, f"mismatch.rank{comm.rank}.json"), "w", encoding="utf-8") as f:
        json.dump(errors, f)


if __name__ == "__main__":
    run_worker({"mismatch": _worker_mismatch}, sys.argv[1:])
