"""The rank of this process among the processes of its host, as the MPI launcher tells it.

``Communicator.world()`` takes the local rank from here (the trainer picks this
process's GPU by it); when no launcher variable is set the communicator falls
back to a shared-memory split.
"""
import os

#: environment variables launchers use for the rank among the processes of one host
LOCAL_RANK_VARIABLES = (
    "MPI_LOCALRANKID",             # MPICH's hydra
    "OMPI_COMM_WORLD_LOCAL_RANK",  # Open MPI
    "MV2_COMM_WORLD_LOCAL_RANK",   # MVAPICH2
    "PMI_LOCAL_RANK",              # PMI-2 launchers (Cray PALS, some MPICH builds)
    "SLURM_LOCALID",               # srun
)


def env_local_rank(environ=None):
    """(local rank, variable name) from the launcher's environment, or (None, None)."""
    environ = os.environ if environ is None else environ
    for name in LOCAL_RANK_VARIABLES:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value), name
    return None, None
