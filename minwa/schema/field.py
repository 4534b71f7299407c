"""Field and Message: a declared config schema (types, defaults, ranges) that checks a mapping.

A ``Message`` is a table of ``Field``s, like a protobuf message in caffe.proto. ``check``
refuses unknown keys (naming the closest known one: "did you mean 'stride'?"), refuses
values of the wrong type (``num_output: true``), checks ranges and choices, and returns
a copy with values in their declared type (``2.0`` for an int becomes ``2``, an enum in
its declared spelling). Defaults are filled only when asked (``fill=True``), since
several Caffe fields mean "not given" when absent (``kernel_h``).
"""
import difflib
import math
import operator

from ..errors import ConfigError

KINDS = ("int", "float", "bool", "str", "enum", "message", "any")


class Field:
    """One key: ``kind`` (int | float | bool | str | enum | message | any), default and range.

    ``repeated`` fields take one value or a list (Caffe's ``repeated``); ``choices``
    lists an enum's values; ``message`` is the nested Message of a message field;
    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones.
    """

    def __init__(self, kind, default=None, *, repeated=False, choices=None, message=None, minimum=None,
                 maximum=None, above=None, below=None, doc=""):
        if kind not in KINDS:
            raise ValueError(f"field kind {kind!r}: expected one of {', '.join(KINDS)}")
        if kind == "enum" and not choices:
            raise ValueError("an enum field needs its choices")
        if kind == "message" and message is None:
            raise ValueError("a message field needs its Message")
        self.kind, self.default, self.repeated = kind, default, repeated
        self.choices = tuple(choices or ())
        self.message = message
        self.minimum, self.maximum, self.above, self.below = minimum, maximum, above, below
        self.doc = doc

    def check(self, value, where):
        """``value`` in this field's type, or ConfigError naming ``where``."""
        if value is None:
            return None  # YAML's empty value: the same as not given
        if self.repeated and isinstance(value, (list, tuple)):
            return [self._one(v, child(where, f"[{i}]")) for i, v in enumerate(value)]
        if isinstance(value, (list, tuple)) and self.kind != "any":
            raise ConfigError(f"{where}: expected one value, got a list {list(value)!r}")
        return self._one(value, where)

    def _one(self, value, where):
        kind = self.kind
        if kind == "any":
            return value
        if kind == "message":
            return self.message.check(value, where)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        if kind == "str":
            if isinstance(value, str):
                return value
            raise ConfigError(f"{where}: expected text, got {value!r}")
        if kind == "enum":
            return self._enum(value, where)
        number = _whole(value) if kind == "int" else _real(value)
        if number is None:
            wanted = "a whole number" if kind == "int" else "a number"
            raise ConfigError(f"{where}: expected {wanted}, got {value!r}")
        self._range(number, where)
        return number

    def _enum(self, value, where):
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.choices):
            return self.choices[value]  # a prototxt may give an enum by its number
        if isinstance(value, str):
            for choice in self.choices:
                if choice.lower() == value.strip().lower():
                    return choice
        raise ConfigError(f"{where}: expected one of {', '.join(self.choices)}, got {value!r}"
                          + _suggestion(str(value), self.choices))

    def _range(self, number, where):
        checks = ((self.minimum, operator.ge, ">="), (self.maximum, operator.le, "<="),
                  (self.above, operator.gt, ">"), (self.below, operator.lt, "<"))
        for bound, ok, words in checks:
            if bound is not None and not ok(number, bound):
                raise ConfigError(f"{where}: must be {words} {bound}, got {number}")


class Message:
    """A named table of Fields; ``check(mapping, where)`` validates one config block."""

    def __init__(self, name, fields, doc=""):
        self.name = name
        self.fields = dict(fields)
        self.doc = doc

    def extend(self, **fields):
        """A copy with more (or replaced) fields: how a block grows without editing its table."""
        return Message(self.name, {**self.fields, **fields}, self.doc)

    def defaults(self):
        """{key: default} of every field that has one."""
        return {k: f.default for k, f in self.fields.items() if f.default is not None}

    def check(self, block, where, fill=False):
        """``block`` validated: a new dict; unknown keys and bad values raise ConfigError."""
        if not isinstance(block, dict):
            raise ConfigError(f"{where}: expected a mapping ({self.name}), got {type(block).__name__} {block!r}")
        out = dict(self.defaults()) if fill else {}
        for key, value in block.items():
            field = self.fields.get(key)
            if field is None:
                raise unknown_key(where, key, self.fields)
            checked = field.check(value, child(where, key))
            if checked is not None or not fill:
                out[key] = checked
        return out


def unknown_key(where, key, known, hint=""):
    """The ConfigError for an unknown ``key`` at ``where``, naming the closest known key."""
    suggestion = _suggestion(str(key), known)
    if not suggestion:
        suggestion = f" (known: {', '.join(sorted(known))})" if known else " (this block takes no keys)"
    return ConfigError(f"{child(where, key)}: unknown key{hint}{suggestion}")


def child(where, key):
    """The place of ``key`` inside ``where``: ``solver.base_lr``, or ``..., field 'convolution_param.stride'``."""
    key = str(key)
    joined = key if key.startswith("[") else f".{key}"
    if where.endswith("'") and ", field '" in where:
        return where[:-1] + joined + "'"
    return where + joined


def closest(key, known):
    """The known name nearest to ``key`` (a misspelling), or None."""
    lowered = {str(k).lower(): k for k in known}
    if str(key).lower() in lowered:
        return lowered[str(key).lower()]
    match = difflib.get_close_matches(str(key).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def _suggestion(key, known):
    near = closest(key, known)
    return f"; did you mean {near!r}?" if near is not None else ""


def _whole(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _real(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
        try:
            number = float(value)
        except ValueError:
            return None
        return number if not math.isnan(number) else None
    return None
