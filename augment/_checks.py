"""Validation helpers for the ``augment:`` block; every error names the offending key."""
import numbers

from minwa.errors import ConfigError


def mapping(block, where, known):
    """``block`` as a dict, refusing keys outside ``known``."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: expected a mapping, got {block!r}")
    unknown = sorted(str(k) for k in set(block) - set(known))
    if unknown:
        from minwa.schema.field import closest

        near = closest(unknown[0], known)
        hint = f"did you mean {near!r}? " if near else ""
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; {hint}known: {', '.join(sorted(known))}")
    return dict(block)


def probability(value, where):
    value = number(value, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: a probability must be in [0, 1], got {value}")
    return value


def number(value, where, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if low is not None and value < low or high is not None and value > high:
        raise ConfigError(f"{where}: {value} is outside [{low}, {high}]")
    return value


def whole(value, where, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) != int(value):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: must be <= {maximum}, got {value}")
    return value


def flag(value, where):
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def interval(value, where, low, high):
    """A [lo, hi] pair of numbers inside [low, high] with lo <= hi."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{where}: expected [low, high], got {value!r}")
    lo = number(value[0], f"{where}[0]", low, high)
    hi = number(value[1], f"{where}[1]", low, high)
    if lo > hi:
        raise ConfigError(f"{where}: low {lo} is above high {hi}")
    return lo, hi


def level_value(lo, hi, levels, level):
    """Value of ``level`` (0-based) on an evenly spaced grid of ``levels`` points from lo to hi."""
    if levels == 1:
        return lo
    return lo + (hi - lo) * level / (levels - 1)


def pick(u, count):
    """An integer in [0, count) from a uniform ``u`` in [0, 1)."""
    return min(int(u * count), count - 1)
