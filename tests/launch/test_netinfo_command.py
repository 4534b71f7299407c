"""``minwa netinfo``: the per-layer table, and the FC bytes per rank in model-data mode."""
import os

import pytest

from minwa.errors import ConfigError
from minwa.launch import netinfo_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_model_data_memory_is_one_nth(capsys):
    assert netinfo_command.main([os.path.join(ROOT, "configs", "deep_image.yaml"), "--model-data", "8"]) == 0
    out = capsys.readouterr().out
    assert "total: 212,761,384 parameters" in out
    assert "model-data on 8 ranks: 3 sharded FC layers" in out
    assert "(0.125 of the whole)" in out  # 6144, 6144 and 1000 outputs split evenly over 8 ranks


def test_model_data_memory_uneven_and_refused():
    cifar = os.path.join(ROOT, "configs", "cifar10_full.yaml")
    assert "(0.300 of the whole)" in _line(cifar, 4)  # 10 outputs on 4 ranks: rank 0 holds 3
    with pytest.raises(ConfigError, match="10 outputs cannot be split over 16 ranks"):
        _line(cifar, 16)


def _line(path, n):
    from minwa.config import load_config
    from minwa.net import Net

    net = Net(load_config(path, validate=False).model, init=False)
    return netinfo_command.model_data_memory(net, n)
