"""env_local_rank: the rank among the processes of one host, from the variables MPI launchers set."""
import pytest

from minwa.comm.local_rank import LOCAL_RANK_VARIABLES, env_local_rank

pytestmark = pytest.mark.mpi


def test_local_rank_comes_from_the_launcher_environment():
    assert env_local_rank({}) == (None, None)
    assert env_local_rank({"MPI_LOCALRANKID": "3"}) == (3, "MPI_LOCALRANKID")
    assert env_local_rank({"OMPI_COMM_WORLD_LOCAL_RANK": "1"}) == (1, "OMPI_COMM_WORLD_LOCAL_RANK")
    assert env_local_rank({"SLURM_LOCALID": "2"}) == (2, "SLURM_LOCALID")
    # the launcher's own variable wins over SLURM's (mpiexec inside an allocation)
    assert env_local_rank({"SLURM_LOCALID": "5", "MPI_LOCALRANKID": "0"}) == (0, "MPI_LOCALRANKID")
    assert env_local_rank({"MPI_LOCALRANKID": "x"}) == (None, None)
    assert LOCAL_RANK_VARIABLES[-1] == "SLURM_LOCALID"
