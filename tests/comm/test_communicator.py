"""Communicator: analytic collectives on 2, 3 and 4 ranks, async handles, split, local rank, errors.

Each rank contributes its rank number, so every result is known in closed form:
the sum is size(size-1)/2 and the mean (size-1)/2. The worker part of this file
runs under mpiexec (started by the tests with a timeout) and writes what it saw
to rank<k>.json.
"""
import json
import os
import subprocess
import sys

import numpy
import pytest

pytestmark = pytest.mark.mpi


def test_one_process_world_works_without_mpiexec(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI_LOCAL", "OMPI_", "SLURM_"))}
    subprocess.run([sys.executable, __file__, "single", str(tmp_path)], check=True, timeout=60, env=env)
    result = json.loads((tmp_path / "rank0.json").read_text())
    assert result == {"rank": 0, "size": 1, "local_rank": 0, "local_source": "MPI_COMM_TYPE_SHARED",
                      "allreduce": [0.0, 1.0, 2.0], "allgather": [[5.0]], "bcast": {"a": 1},
                      "reduce_scatter": [0.0, 1.0, 2.0, 3.0], "bytes_sent": 0, "strategies": [0.0, 1.0, 2.0]}


@pytest.mark.parametrize("n", [2, 3, 4])
def test_analytic_collectives(mpirun, read_ranks, tmp_path, n):
    mpirun(n, __file__, ["collectives", tmp_path])
    results = read_ranks(tmp_path, n)
    total = n * (n - 1) / 2
    for rank, r in enumerate(results):
        assert r["rank"] == rank and r["size"] == n
        assert r["local_rank"] == rank and r["local_source"] == "MPI_LOCALRANKID"  # one host: local == global
        assert r["allreduce_sum"] == [total] * 3
        assert r["allreduce_mean"] == pytest.approx([(n - 1) / 2] * 3)
        assert r["allreduce_max"] == [n - 1] * 3
        assert r["scalar_sum"] == total
        assert r["allgather"] == [[k, k] for k in range(n)]
        assert r["allgather_objects"] == [f"rank {k}" for k in range(n)]
        assert r["bcast_array"] == [n - 1, 2 * (n - 1)]  # from the last rank
        assert r["bcast_object"] == {"root": n - 1}
        # reduce_scatter of 7 elements (rank + i): rank k gets its part of (total + n*i)
        start = sum(7 // n + (1 if j < 7 % n else 0) for j in range(rank))
        size = 7 // n + (1 if rank < 7 % n else 0)
        assert r["reduce_scatter"] == [total + n * i for i in range(start, start + size)]
        assert r["ring"] == (rank - 1) % n
        assert r["iallreduce"] == [total] * 4 and r["ibcast"] == [7.0, 7.0]
        assert r["iallgather"] == list(range(n))
        assert r["allgather_parts"] == [float(k) for k in range(n) for _ in range(2)]
        evens = (n + 1) // 2 if rank % 2 == 0 else n // 2
        assert r["split_size"] == evens
        assert r["split_sum"] == sum(k for k in range(n) if k % 2 == rank % 2)
        assert r["dup_rank"] == rank
        assert r["gather"] == ([k * 10 for k in range(n)] if rank == 0 else None)
        # only the point-to-point ring message counts as sent bytes: one float64
        assert r["p2p_bytes"] == 8


def test_mismatched_shapes_raise_on_every_rank_instead_of_hanging(mpirun, read_ranks, tmp_path):
    mpirun(2, __file__, ["mismatch", tmp_path], timeout=60)
    for r in read_ranks(tmp_path, 2):
        for op in ("allreduce", "bcast", "allgather", "reduce_scatter"):
            assert r[op].startswith("CommError: "), r[op]
            assert "rank 1 disagrees with rank 0" in r[op] and "(3,)" in r[op] and "(4,)" in r[op]


def test_an_error_on_one_rank_aborts_the_job(mpirun, tmp_path):
    result = mpirun(2, __file__, ["abort", tmp_path], timeout=60, expect_ok=False)
    assert result.returncode != 0
    assert "rank 1 of 2: RuntimeError: rank 1 failed on purpose" in result.stderr
    assert not (tmp_path / "after0").exists()  # rank 0 never got past the collective


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec
def _save(directory, rank, payload):
    with open(os.path.join(directory, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(payload, f)


def _single(directory):
    from minwa.comm import STRATEGIES, create_strategy, get_world

    comm = get_world()
    out = {"rank": comm.rank, "size": comm.size, "local_rank": comm.local_rank, "local_source": comm.local_rank_source,
           "allreduce": comm.allreduce(numpy.arange(3.0)).tolist(),
           "allgather": comm.allgather(numpy.array([5.0])).tolist(), "bcast": comm.bcast({"a": 1}),
           "reduce_scatter": comm.reduce_scatter(numpy.arange(4.0)).tolist()}
    results = []
    for name in STRATEGIES:
        buf = numpy.arange(3, dtype=numpy.float32)
        results.append(create_strategy(name, comm).allreduce(buf, key=0).tolist())
    assert all(r == results[0] for r in results)
    out["strategies"] = results[0]
    out["bytes_sent"] = comm.bytes_sent
    _save(directory, 0, out)


def _collectives(directory):
    from minwa.comm import get_world

    comm = get_world()
    rank, n = comm.rank, comm.size
    mine = numpy.full(3, float(rank))
    out = {"rank": rank, "size": n, "local_rank": comm.local_rank, "local_source": comm.local_rank_source}
    out["allreduce_sum"] = comm.allreduce(mine).tolist()
    out["allreduce_mean"] = (comm.allreduce(mine) / n).tolist()
    out["allreduce_max"] = comm.allreduce(mine, op="max").tolist()
    out["scalar_sum"] = comm.allreduce(rank)
    out["allgather"] = comm.allgather(numpy.array([rank, rank])).tolist()
    out["allgather_objects"] = comm.allgather(f"rank {rank}")
    out["bcast_array"] = comm.bcast(numpy.array([rank, 2 * rank]), root=n - 1).tolist()
    out["bcast_object"] = comm.bcast({"root": rank}, root=n - 1)
    out["reduce_scatter"] = comm.reduce_scatter(numpy.arange(7.0) + rank).tolist()
    sent_before = comm.bytes_sent
    incoming = numpy.empty(1)
    receive = comm.irecv(incoming, source=(rank - 1) % n, tag=5)
    comm.isend(numpy.array([float(rank)]), dest=(rank + 1) % n, tag=5).wait()
    out["ring"] = int(receive.wait()[0])
    out["p2p_bytes"] = comm.bytes_sent - sent_before
    handle = comm.iallreduce(numpy.full(4, float(rank)))
    while not handle.test():
        pass
    out["iallreduce"] = handle.wait().tolist()
    out["ibcast"] = comm.ibcast(numpy.full(2, 7.0 if rank == 0 else 0.0), root=0).wait().tolist()
    out["iallgather"] = comm.iallgather(numpy.array(rank)).wait().tolist()
    flat = numpy.full(2 * n, -1.0)
    flat[2 * rank:2 * rank + 2] = rank
    out["allgather_parts"] = comm.iallgather_parts(flat).wait().tolist()
    comm.ibarrier().wait()
    sub = comm.split(rank % 2)
    out["split_size"] = sub.size
    out["split_sum"] = sub.allreduce(rank)
    out["dup_rank"] = comm.dup().rank
    out["gather"] = comm.gather(rank * 10, root=0)
    comm.barrier()
    _save(directory, rank, out)


def _mismatch(directory):
    from minwa.comm import get_world
    from minwa.errors import CommError

    comm = get_world()
    array = numpy.zeros(3 if comm.rank == 0 else 4)
    out = {}
    for op in ("allreduce", "bcast", "allgather", "reduce_scatter"):
        try:
            getattr(comm, op)(array)
            out[op] = "no error"
        except CommError as exc:
            out[op] = f"CommError: {exc}"
    _save(directory, comm.rank, out)


def _abort(directory):
    from minwa.comm import get_world

    comm = get_world()
    with comm.abort_on_error():
        if comm.rank == 1:
            raise RuntimeError("rank 1 failed on purpose")
        comm.barrier()  # rank 0 would wait here forever without the abort
        open(os.path.join(directory, "after0"), "w").close()


if __name__ == "__main__":
    {"single": _single, "collectives": _collectives, "mismatch": _mismatch, "abort": _abort}[sys.argv[1]](sys.argv[2])
