"""Gradient-reduction strategies on 2, 3 and 4 ranks: exact means, byte counts, compression error bounds.

Rank r contributes ``r + i`` at element i (compressed cases: a random vector seeded by r),
so the mean is known. Buffer lengths include empty buckets, lengths below the number of
ranks and lengths not divisible by it. The worker part runs under mpiexec.
"""
import json
import os
import sys

import numpy
import pytest

from minwa.comm import STRATEGIES, create_strategy, part_bounds
from minwa.errors import ConfigError

pytestmark = pytest.mark.mpi
LENGTHS = [0, 1, 2, 3, 7, 1001]


def butterfly_bytes(n_elements, size, rank, bytes_for):
    """What rank ``rank`` sends in a butterfly: every other owner's part once, its own part N-1 times."""
    bounds = part_bounds(n_elements, size)
    scatter = sum(bytes_for(b - a) for k, (a, b) in enumerate(bounds) if k != rank)
    own = bounds[rank][1] - bounds[rank][0]
    return scatter + (size - 1) * bytes_for(own)


def test_factory_names_and_errors():
    assert set(STRATEGIES) == {"allreduce", "butterfly", "butterfly_fp16", "butterfly_int8"}
    with pytest.raises(ConfigError, match="expected one of allreduce, butterfly"):
        create_strategy("ring", comm=None)
    with pytest.raises(ConfigError, match="error_feedback"):
        create_strategy("butterfly", comm=None, error_feedback=True)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_exact_strategies_average_and_count_bytes(mpirun, read_ranks, tmp_path, n):
    mpirun(n, __file__, ["exact", tmp_path])
    for rank, result in enumerate(read_ranks(tmp_path, n)):
        for name in ("allreduce", "butterfly"):
            for length in LENGTHS:
                case = result[f"{name} {length}"]
                expected = [(n - 1) / 2 + i for i in range(length)]
                assert case["values"] == pytest.approx(expected, rel=1e-6), (name, length)
                assert case["identical_on_all_ranks"]
                if name == "butterfly":
                    exact = butterfly_bytes(length, n, rank, lambda m: 4 * m)
                    assert case["bytes"] == exact == case["predicted"]
                    # 2(N-1)/N of the buffer, up to the rounding of uneven parts
                    bound = 2 * (n - 1) / n * 4 * length
                    assert abs(case["bytes"] - bound) <= 4 * (n - 1)
        halves = result["halves"]
        assert halves["own_part_mean_ok"] and halves["allgather_ok"]
        assert halves["bytes"] == butterfly_bytes(1001, n, rank, lambda m: 4 * m)
        assert result["keys in any order"] == [[(n - 1) / 2] * 10, [(n - 1) / 2 + 1] * 20]


@pytest.mark.parametrize("n", [2, 4])
def test_compressed_strategies_stay_within_their_error_bounds(mpirun, read_ranks, tmp_path, n):
    mpirun(n, __file__, ["compressed", tmp_path])
    for rank, result in enumerate(read_ranks(tmp_path, n)):
        for length in LENGTHS:
            fp16 = result[f"butterfly_fp16 {length}"]
            assert fp16["identical_on_all_ranks"]
            assert fp16["bytes"] == butterfly_bytes(length, n, rank, lambda m: 2 * m)
            # two roundings to float16 of values below 4: at most 2 * 2^-11 * 4 each
            assert fp16["max_error"] <= 2 * 4 * 2.0 ** -11
            int8 = result[f"butterfly_int8 {length}"]
            assert int8["identical_on_all_ranks"]
            assert int8["bytes"] == butterfly_bytes(length, n, rank, lambda m: m + 4 * -(-m // 64))
            # owner's inputs are each off by <= absmax/254 of their block, and the published mean once more
            assert int8["max_error"] <= int8["bound"] * (1 + 1e-5)
            if length >= 7:
                assert int8["max_error"] > 0  # it really quantised
        feedback = result["error feedback"]
        # without feedback the same rounding error piles up every step; with it, it stays bounded
        assert feedback["with"] < 0.05 * feedback["without"]
        assert feedback["with"] <= 4 * feedback["one_step_bound"]


# ---------------------------------------------------------------------------------------------
# the part below runs under mpiexec
def _save(directory, rank, payload):
    with open(os.path.join(directory, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(payload, f)


def _identical(comm, values):
    gathered = comm.allgather(numpy.ascontiguousarray(values), verify=False)
    return bool(all(numpy.array_equal(g, gathered[0]) for g in gathered))


def _exact(directory):
    from minwa.comm import get_world

    comm = get_world()
    rank, n = comm.rank, comm.size
    out = {}
    for name in ("allreduce", "butterfly"):
        strategy = create_strategy(name, comm)
        for key, length in enumerate(LENGTHS):
            buf = numpy.arange(length, dtype=numpy.float32) + rank
            before = comm.bytes_sent
            strategy.allreduce_async(buf, key=key if length % 2 else None).wait()
            out[f"{name} {length}"] = {"values": buf.tolist(), "bytes": comm.bytes_sent - before,
                                       "predicted": strategy.wire_bytes(length, buf.dtype),
                                       "identical_on_all_ranks": _identical(comm, buf)}
    strategy = create_strategy("butterfly", comm)
    buf = numpy.arange(1001, dtype=numpy.float32) + rank
    before = comm.bytes_sent
    strategy.reduce_scatter_async(buf, key=3).wait()
    a, b = strategy.own_part(1001)
    own_ok = numpy.allclose(buf[a:b], numpy.arange(a, b) + (n - 1) / 2)
    weights = numpy.full(1001, -1.0, dtype=numpy.float32)
    weights[a:b] = rank
    strategy.allgather_async(weights, key=3).wait()
    expected = numpy.concatenate([numpy.full(q - p, k) for k, (p, q) in enumerate(strategy.parts(1001))])
    out["halves"] = {"own_part_mean_ok": bool(own_ok), "allgather_ok": bool(numpy.array_equal(weights, expected)),
                     "bytes": comm.bytes_sent - before}
    # two keyed transfers started in opposite orders on even and odd ranks still pair up correctly
    first = numpy.full(10, float(rank), dtype=numpy.float32)
    second = numpy.full(20, rank + 1.0, dtype=numpy.float32)
    order = [(0, first), (1, second)] if rank % 2 == 0 else [(1, second), (0, first)]
    handles = [strategy.allreduce_async(buf, key=key) for key, buf in order]
    for handle in reversed(handles):
        handle.wait()
    out["keys in any order"] = [first.tolist(), second.tolist()]
    _save(directory, rank, out)


def _contributions(length, n):
    rng = numpy.random.default_rng(1234)
    return (rng.uniform(-4, 4, size=(n, length)) * rng.uniform(0, 1, size=(1, length))).astype(numpy.float32)


def _compressed(directory):
    from minwa.comm import get_world

    comm = get_world()
    rank, n = comm.rank, comm.size
    out = {}
    for name in ("butterfly_fp16", "butterfly_int8"):
        strategy = create_strategy(name, comm, int8_block=64)
        for key, length in enumerate(LENGTHS):
            contributions = _contributions(length, n)
            buf = contributions[rank].copy()
            before = comm.bytes_sent
            strategy.allreduce(buf, key=key)
            mean = contributions.astype(numpy.float64).mean(axis=0)
            bound = 0.0
            for a, b in strategy.parts(length):
                for start in range(a, b, 64):  # the owner's blocks start at its part's start
                    block = slice(start, min(start + 64, b))
                    inputs = numpy.abs(contributions[:, block]).max() / 254
                    bound = max(bound, inputs + numpy.abs(mean[block]).max() / 254 * (1 + 1e-6))
            out[f"{name} {length}"] = {
                "bytes": comm.bytes_sent - before, "identical_on_all_ranks": _identical(comm, buf),
                "max_error": float(numpy.abs(buf - mean).max()) if length else 0.0, "bound": bound}
    steps, length = 200, 300
    contributions = _contributions(length, n)
    true = contributions.astype(numpy.float64).mean(axis=0)
    drift = {}
    for feedback in (True, False):
        strategy = create_strategy("butterfly_int8", comm, error_feedback=feedback, int8_block=64)
        total = numpy.zeros(length)
        for _ in range(steps):
            buf = contributions[rank].copy()
            strategy.allreduce(buf, key=0)
            total += buf
        drift["with" if feedback else "without"] = float(numpy.abs(total - steps * true).max())
    drift["one_step_bound"] = float(2 * numpy.abs(contributions).max() / 254)
    out["error feedback"] = drift
    _save(directory, rank, out)


if __name__ == "__main__":
    {"exact": _exact, "compressed": _compressed}[sys.argv[1]](sys.argv[2])
