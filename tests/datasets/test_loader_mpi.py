"""The loader under a real mpiexec: ranks read disjoint slices of one pack that equal one rank's batches."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from minwa.datasets.pack import main as pack

pytestmark = pytest.mark.mpi

_JOB = textwrap.dedent("""
    import sys, numpy
    from mpi4py import MPI
    from minwa.datasets import make_loader
    comm = MPI.COMM_WORLD
    data = {"source": "hdf5", "path": sys.argv[1], "batch_size": 8, "test_batch_size": 8, "mean": "channel",
            "prefetch": 2}
    loader = make_loader(data, "train", rank=comm.rank, size=comm.size, seed=7)
    single = make_loader(data, "train", rank=0, size=1, seed=7)
    stream = loader.batches(start_step=3)
    for step in range(3, 3 + 2 * loader.steps_per_epoch):
        x, y = next(stream)
        xs, ys = comm.allgather(x), comm.allgather(y)
        sx, sy = single.host_batch(step)
        assert numpy.array_equal(numpy.concatenate(xs), sx), step
        assert numpy.array_equal(numpy.concatenate(ys), sy), step
    stream.close()
    test = make_loader(data, "test", rank=comm.rank, size=comm.size, seed=7)
    seen = [int(v) for b in range(test.steps_per_epoch) for v in test.indices(b)]
    everything = sorted(sum(comm.allgather(seen), []))
    assert everything == list(range(len(test.source))), everything
    if comm.rank == 0:
        print("OK", comm.size)
""")


@pytest.mark.parametrize("ranks", [2, 4])
def test_ranks_read_one_pack_and_match_a_single_rank(tmp_path, ranks):
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.skip("mpiexec not found")
    out = tmp_path / "shapes.h5"
    assert pack(["shapes:train_count=40,test_count=11,image_size=8", str(out), "--quiet"]) == 0
    script = tmp_path / "job.py"
    script.write_text(_JOB)
    env = dict(os.environ, MINWA_DEVICE="cpu", OMP_NUM_THREADS="1")
    done = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, str(script), str(out)], capture_output=True,
                          text=True, timeout=180, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"OK {ranks}" in done.stdout
