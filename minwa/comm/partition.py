"""How a flat buffer of n elements is cut into one contiguous part per rank.

Part k has n // parts elements, plus one for the first n % parts parts, so sizes
that do not divide evenly and empty buffers (every part empty) both work, and
every rank computes the same cut without talking to the others.
"""


def part_bounds(n, parts):
    """[(start, stop), ...] of the ``parts`` contiguous pieces of ``range(n)``."""
    n, parts = int(n), int(parts)
    if parts < 1:
        raise ValueError(f"part_bounds: need at least one part, got {parts}")
    if n < 0:
        raise ValueError(f"part_bounds: negative length {n}")
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for k in range(parts):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def part_sizes(n, parts):
    return [stop - start for start, stop in part_bounds(n, parts)]
