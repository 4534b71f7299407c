"""Communication: the MPI communicator, async handles, gradient-reduction strategies and codecs.

mpi4py is imported only when a communicator is created (``get_world()``), so
importing this package needs no MPI library.
"""
from .communicator import Communicator
from .factory import STRATEGIES, create_strategy
from .handle import Handle
from .partition import part_bounds, part_sizes

_world = {}


def get_world():
    """The Communicator over MPI_COMM_WORLD, created on first use (works without mpiexec as one rank)."""
    if "comm" not in _world:
        _world["comm"] = Communicator.world()
    return _world["comm"]


__all__ = ["STRATEGIES", "Communicator", "Handle", "create_strategy", "get_world", "part_bounds", "part_sizes"]
