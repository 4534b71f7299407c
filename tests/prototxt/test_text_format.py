"""The protobuf text-format reader: messages, scalars, strings, repeated fields, syntax errors."""
import pytest

from minwa.errors import ConfigError
from minwa.prototxt import parse_prototxt, read_prototxt


def test_messages_scalars_and_comments():
    parsed = parse_prototxt('''
        # a comment
        name: "net"   # trailing comment
        force_backward: true
        layer {
          name: 'a' type: "Convolution"
          convolution_param: { num_output: 32 bias_term: false engine: CAFFE }
        }
        layer < name: "b" type: "ReLU" relu_param { negative_slope: -1.5e-2 } >
        values: 0x1F ratio: 2.5f big: -3 neg_inf: -inf
    ''')
    assert parsed["name"] == "net" and parsed["force_backward"] is True
    first, second = parsed["layer"]
    assert first["convolution_param"] == {"num_output": 32, "bias_term": False, "engine": "CAFFE"}
    assert second["relu_param"]["negative_slope"] == pytest.approx(-0.015)
    assert parsed["values"] == 31 and parsed["ratio"] == 2.5 and parsed["big"] == -3
    assert parsed["neg_inf"] == float("-inf")


def test_strings_escapes_and_concatenation():
    parsed = parse_prototxt(r'''a: "x\"y\n\101" b: 'it''s' c: "one " "two"''')
    assert parsed["a"] == 'x"y\nA'
    assert parsed["b"] == "it" + "s"  # adjacent strings concatenate
    assert parsed["c"] == "one two"


def test_repeated_fields_follow_caffes_schema():
    parsed = parse_prototxt('''
        layer { name: "in" type: "Input" top: "data"
                input_param { shape { dim: 1 dim: 3 } } }
        layer { name: "r" type: "Reshape" bottom: "data" top: "r"
                reshape_param { shape { dim: [1, 3] } } }
    ''')
    input_layer, reshape = parsed["layer"]
    assert input_layer["top"] == ["data"]  # repeated even when given once
    assert input_layer["input_param"]["shape"] == [{"dim": [1, 3]}]  # InputParameter.shape is repeated
    assert reshape["reshape_param"]["shape"] == {"dim": [1, 3]}  # ReshapeParameter.shape is not
    assert reshape["name"] == "r"  # singular fields stay scalars


def test_a_singular_field_given_twice_becomes_a_list():
    assert parse_prototxt("foo: 1 foo: 2")["foo"] == [1, 2]


@pytest.mark.parametrize("text, where", [
    ("layer { name: 'a' ", "1:"),
    ("a: }", "1:4"),
    ("layer {\n  name 'a'\n}", "2:"),
    ("a: 1 $", "1:6"),
    ("a: [1, 2", "1:"),
    ("[ext.name]: 3", "1:1"),
])
def test_syntax_errors_name_line_and_column(text, where):
    with pytest.raises(ConfigError) as info:
        parse_prototxt(text, filename="bad.prototxt")
    assert f"bad.prototxt:{where}" in str(info.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_prototxt(str(tmp_path / "missing.prototxt"))
