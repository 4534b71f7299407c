"""``minwa eval`` argument groups: one --model ... --weights ... per model, --scales per model or for all."""
import pytest

from minwa.errors import ConfigError
from minwa.launch.eval_command import parse_args


def test_models_and_their_weights():
    args, models = parse_args(["a.yaml", "--weights", "a.h5", "--model", "b.yaml", "--weights", "b.h5",
                               "--flip", "--merge", "gmean", "--crops", "dense"])
    assert [(m[0], m[1]) for m in models] == [("a.yaml", "a.h5"), ("b.yaml", "b.h5")]
    assert args.flip and args.merge == "gmean" and args.crops == "dense"


def test_one_scales_list_applies_to_every_model():
    _, models = parse_args(["a.yaml", "--weights", "a.h5", "--model", "b.yaml", "--weights", "b.h5",
                            "--scales", "32", "40"])
    assert [m[2] for m in models] == [[32, 40], [32, 40]]


def test_several_scales_lists_apply_to_their_models():
    _, models = parse_args(["a.yaml", "--weights", "a.h5", "--scales", "32", "--model", "b.yaml", "--weights",
                            "b.h5", "--scales", "48", "56", "--model", "c.yaml", "--weights", "c.h5", "--label", "C"])
    assert [m[2] for m in models] == [[32], [48, 56], [32]]
    assert models[2][3] == "C"


def test_a_model_without_weights_is_named():
    with pytest.raises(ConfigError, match="model b.yaml: missing --weights"):
        parse_args(["a.yaml", "--weights", "a.h5", "--model", "b.yaml"])


def test_unknown_merge_rule_is_an_error_naming_the_option(capsys):
    from minwa.launch.cli import main

    assert main(["eval", "a.yaml", "--weights", "a.h5", "--merge", "vote"]) == 1
    assert "--merge 'vote': unknown merge rule" in capsys.readouterr().err
