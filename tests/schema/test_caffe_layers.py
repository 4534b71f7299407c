"""The layer schema: every layer type has one; misspelt, misplaced and mistyped options fail before compute."""
import os

import pytest

from minwa.config import load_config
from minwa.errors import ConfigError
from minwa.launch.cli import main as minwa_main
from minwa.layers import known_types
from minwa.schema.caffe_layers import LAYER_PARAMS, check_layer, declare_layer, param_key
from minwa.schema.field import Field, Message

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
QUICK = os.path.join(REPO, "configs", "cifar10_quick.yaml")


def test_every_registered_layer_type_is_declared():
    assert sorted(set(known_types()) - set(LAYER_PARAMS)) == []
    assert param_key("InnerProduct") == "inner_product_param" and param_key("SoftmaxWithLoss") == "softmax_param"


@pytest.mark.parametrize(("override", "message"), [
    ("model.layers.conv1.convolution_param.strid=2", r"field 'convolution_param\.strid': unknown key; did you mean "
                                                     r"'stride'\?"),
    ("model.layers.conv1.convolution_param.padd=2", r"'convolution_param\.padd': unknown key; did you mean 'pad'\?"),
    ("model.layers.conv1.weight_filer={type: xavier}", r"field 'weight_filer': unknown key; did you mean "
                                                       r"'convolution_param\.weight_filler'\?"),
    ("model.layers.conv1.convolution_param.weight_filler={type: gaussian, sdt: 1}",
     r"'convolution_param\.weight_filler\.sdt': unknown key; did you mean 'std'\?"),
    ("model.layers.conv1.lr_mul=1", r"field 'lr_mul': unknown key; did you mean 'param: \[\{lr_mult: \.\.\.\}\]'\?"),
    ("model.layers.conv1.param=[{lr_mul: 1}]", r"field 'param\[0\]\.lr_mul': unknown key; did you mean 'lr_mult'\?"),
    ("model.layers.conv1.convolution_param.num_output=true", r"'convolution_param\.num_output': expected a whole "
                                                             r"number, got True"),
    ("model.layers.conv1.convolution_param.group=0", r"'convolution_param\.group': must be >= 1, got 0"),
    ("model.layers.conv1.convolution_param.weight_filler={type: gausian}", r"did you mean 'gaussian'\?"),
    ("model.layers.conv1.pooling_param={pool: MAX}", r"field 'pooling_param': not used by Convolution layers"),
    ("model.layers.conv1.convolution_param.pool=MAX", r"field 'convolution_param\.pool': unknown key"),
    ("model.layers.pool1.pooling_param.pool=MAXX", r"'pooling_param\.pool': expected one of MAX, AVE, STOCHASTIC"),
    ("model.layers.conv1.include={phase: TRAIN, stage: x}", r"field 'include\.stage': unknown key"),
    ("model.layers.conv1.propagate_down=[false]", r"field 'propagate_down': unknown key"),
])
def test_layer_mistakes_are_config_errors_naming_layer_and_key(override, message):
    with pytest.raises(ConfigError, match=r"layer 'conv1|layer 'pool1") as info:
        load_config(QUICK, overrides=[override])
    assert info.match(message)


def test_minwa_train_refuses_a_misspelt_key_before_any_step(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = minwa_main(["train", QUICK, "--set", "model.layers.conv1.convolution_param.strid=2",
                       "--set", f"train.run_dir={run_dir}"])
    assert code != 0
    err = capsys.readouterr().err
    assert "minwa train: error:" in err and "did you mean 'stride'?" in err
    assert not (run_dir / "checkpoints").exists()


def test_values_reach_the_layer_in_their_declared_type():
    job = load_config(QUICK, overrides=["model.layers.conv1.convolution_param.num_output=16.0"])
    from minwa.net import Net

    net = Net(job.model, init=False)
    assert net.layer("conv1").num_output == 16 and net.param("conv1.weight").shape[0] == 16


def test_a_new_layer_type_is_declared_in_one_call():
    spec = {"name": "s", "type": "Probe", "probe_param": {"port": 5000}}
    declare_layer("Probe", {"probe_param": Message("ProbeParameter", {"port": Field("int", minimum=1)})})
    try:
        assert check_layer(spec, "layer 's' (Probe)") == spec
        with pytest.raises(ConfigError, match=r"'probe_param\.prot': unknown key; did you mean 'port'\?"):
            check_layer({**spec, "probe_param": {"prot": 1}}, "layer 's' (Probe)")
    finally:
        del LAYER_PARAMS["Probe"]
    with pytest.raises(ConfigError, match="has no declared schema"):
        check_layer(spec, "layer 's' (Probe)")
