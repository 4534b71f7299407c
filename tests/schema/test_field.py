"""Field and Message: types, ranges, enums, repeated values, unknown keys with the closest known one."""
import pytest

from minwa.errors import ConfigError
from minwa.schema.field import Field, Message, child, closest

BLOCK = Message("Block", {
    "count": Field("int", 1, minimum=1), "rate": Field("float", 0.5, above=0.0, below=1.0),
    "flag": Field("bool", False), "mode": Field("enum", "MAX", choices=("MAX", "AVE")),
    "sizes": Field("int", repeated=True, minimum=0), "label": Field("str"),
    "inner": Field("message", message=Message("Inner", {"std": Field("float", 1.0, minimum=0.0)})),
})


def test_values_come_back_in_their_declared_types():
    got = BLOCK.check({"count": 2.0, "rate": "1e-1", "flag": 1, "mode": "ave", "sizes": [1, 2.0], "inner": {}},
                      "b")
    assert got == {"count": 2, "rate": 0.1, "flag": True, "mode": "AVE", "sizes": [1, 2], "inner": {}}
    assert isinstance(got["count"], int) and BLOCK.check({"mode": 0}, "b") == {"mode": "MAX"}
    assert BLOCK.check({"sizes": 3}, "b") == {"sizes": 3}  # a repeated field given once stays one value


def test_defaults_are_filled_only_when_asked():
    assert BLOCK.check({}, "b") == {}
    assert BLOCK.check({"count": 4}, "b", fill=True) == {"count": 4, "rate": 0.5, "flag": False, "mode": "MAX"}


@pytest.mark.parametrize(("block", "message"), [
    ({"count": True}, r"b\.count: expected a whole number, got True"),
    ({"count": 1.5}, r"b\.count: expected a whole number, got 1\.5"),
    ({"count": 0}, r"b\.count: must be >= 1, got 0"),
    ({"rate": 1.0}, r"b\.rate: must be < 1\.0, got 1\.0"),
    ({"rate": "fast"}, r"b\.rate: expected a number, got 'fast'"),
    ({"flag": "yes"}, r"b\.flag: expected true or false, got 'yes'"),
    ({"mode": "MAXX"}, r"b\.mode: expected one of MAX, AVE, got 'MAXX'; did you mean 'MAX'\?"),
    ({"sizes": [1, -1]}, r"b\.sizes\[1\]: must be >= 0"),
    ({"count": [1, 2]}, r"b\.count: expected one value, got a list"),
    ({"label": 3}, r"b\.label: expected text, got 3"),
    ({"inner": {"sdt": 1}}, r"b\.inner\.sdt: unknown key; did you mean 'std'\?"),
    ({"inner": 3}, r"b\.inner: expected a mapping \(Inner\)"),
    ({"cuont": 3}, r"b\.cuont: unknown key; did you mean 'count'\?"),
    ({"zzz": 3}, r"b\.zzz: unknown key \(known: count, flag, inner, label, mode, rate, sizes\)"),
])
def test_bad_values_and_keys_are_named(block, message):
    with pytest.raises(ConfigError, match=message):
        BLOCK.check(block, "b")


def test_places_nest_inside_a_quoted_field():
    assert child("solver", "base_lr") == "solver.base_lr"
    assert child("layer 'c' (Convolution), field 'convolution_param'", "stride") == \
        "layer 'c' (Convolution), field 'convolution_param.stride'"
    assert closest("STRIDE", ["stride", "pad"]) == "stride" and closest("xyz", ["stride"]) is None


def test_a_declaration_is_checked_when_it_is_made():
    with pytest.raises(ValueError, match="choices"):
        Field("enum")
    with pytest.raises(ValueError, match="kind"):
        Field("complex")
    assert BLOCK.extend(extra=Field("bool")).check({"extra": True}, "b") == {"extra": True}
