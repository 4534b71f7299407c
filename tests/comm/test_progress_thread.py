"""ProgressThread: transfers complete while the main thread makes no MPI call at all."""
import json
import os
import sys
import time

import numpy
import pytest

pytestmark = pytest.mark.mpi


def test_progress_thread_completes_transfers_on_its_own(mpirun, read_ranks, tmp_path):
    mpirun(2, __file__, ["drive", tmp_path], timeout=90)
    receiver, sender = read_ranks(tmp_path, 2)
    # Handle.done is a plain attribute: only a test() call sets it, and the main thread made none
    assert receiver["done_without_main_thread"] is True
    assert receiver["received"] == list(range(100000))[:5] and receiver["tail"] == 99999
    assert receiver["chained"] == 3.0
    assert sender["sent"] is True


def test_close_stops_the_thread():
    from minwa.comm.progress_thread import ProgressThread

    thread = ProgressThread()
    assert thread.pending == 0
    thread.close()
    assert not thread._thread.is_alive()


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec
def _drive(directory):
    from minwa.comm import Handle, get_world
    from minwa.comm.progress_thread import ProgressThread

    comm = get_world()
    out = {}
    if comm.rank == 0:
        progress = ProgressThread()
        big = numpy.empty(100000, dtype=numpy.float64)  # large enough for MPI's rendezvous protocol
        small = numpy.empty(1)
        first = comm.irecv(big, source=1, tag=1)

        def chained():
            yield [first]
            second = comm.irecv(small, source=1, tag=2)  # posted by whichever thread advances us
            yield [second]
            return float(small[0])

        handle = progress.add(Handle(chained(), name="chained receive"))
        deadline = time.monotonic() + 30.0
        while not handle.done and time.monotonic() < deadline:
            time.sleep(0.01)  # no MPI call here
        out["done_without_main_thread"] = handle.done
        out["received"] = big[:5].astype(int).tolist()
        out["tail"] = int(big[-1])
        out["chained"] = handle.wait()
        progress.close()
    else:
        time.sleep(0.2)
        comm.send(numpy.arange(100000, dtype=numpy.float64), dest=0, tag=1)
        comm.send(numpy.array([3.0]), dest=0, tag=2)
        out["sent"] = True
    comm.barrier()
    with open(os.path.join(directory, f"rank{comm.rank}.json"), "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    {"drive": _drive}[sys.argv[1]](sys.argv[2])
