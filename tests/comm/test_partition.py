"""part_bounds: contiguous, covering, balanced parts for any length, including empty and uneven ones."""
import itertools

import pytest

from minwa.comm import part_bounds, part_sizes


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 1001])
@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_parts_are_contiguous_cover_everything_and_differ_by_at_most_one(n, parts):
    bounds = part_bounds(n, parts)
    assert len(bounds) == parts
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in itertools.pairwise(bounds):
        assert stop == start
    sizes = part_sizes(n, parts)
    assert sum(sizes) == n
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger parts come first


def test_known_cut():
    assert part_bounds(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert part_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="at least one part"):
        part_bounds(5, 0)
    with pytest.raises(ValueError, match="negative"):
        part_bounds(-1, 2)
