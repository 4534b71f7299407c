"""create_strategy: the gradient-reduction strategies by name (one place to add another)."""
from ..errors import ConfigError

#: name -> what it does (shown in errors and ``minwa`` help)
STRATEGIES = {
    "allreduce": "plain MPI_Iallreduce baseline",
    "butterfly": "reduce-scatter + allgather over Isend/Irecv, float on the wire (Deep Image)",
    "butterfly_fp16": "butterfly with float16 on the wire",
    "butterfly_int8": "butterfly with int8 + per-block scale on the wire (Dettmers-style 8-bit)",
}


def create_strategy(name, comm, error_feedback=False, int8_block=256):
    """The Strategy called ``name`` over ``comm``; ``error_feedback``/``int8_block`` apply to the compressed ones."""
    from .allreduce_strategy import AllreduceStrategy
    from .butterfly_strategy import ButterflyStrategy
    from .compressed_butterfly_strategy import CompressedButterflyStrategy
    from .fp16_codec import Fp16Codec
    from .int8_codec import Int8Codec

    key = str(name).lower()
    if key not in STRATEGIES:
        raise ConfigError(f"parallel.strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    if error_feedback and not key.startswith("butterfly_"):
        raise ConfigError(f"parallel.error_feedback: only the compressed strategies (butterfly_fp16, "
                          f"butterfly_int8) quantise, not {key!r}")
    if key == "allreduce":
        strategy = AllreduceStrategy(comm)
    elif key == "butterfly":
        strategy = ButterflyStrategy(comm)
    elif key == "butterfly_fp16":
        strategy = CompressedButterflyStrategy(comm, Fp16Codec(), error_feedback=error_feedback)
    else:
        strategy = CompressedButterflyStrategy(comm, Int8Codec(int8_block), error_feedback=error_feedback)
    strategy.name = key
    return strategy
