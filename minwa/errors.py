"""Errors minwa raises on purpose; each message names the place it concerns."""


class MinwaError(Exception):
    """Base of minwa's own errors: a clear message, not a deep traceback."""


class ConfigError(MinwaError, ValueError):
    """A job, net or solver definition is wrong (names the layer and field)."""


class ShapeError(ConfigError):
    """Blob shapes do not fit together."""


class DataError(MinwaError):
    """A data source is missing, corrupt or inconsistent (names the path)."""


class MissingSplit(DataError):
    """A data source has no such split (its files are absent), as opposed to a split that is there but broken."""


class CommError(MinwaError):
    """Ranks disagree or a transfer failed (names the rank)."""
