"""Caffe's own reference nets and solvers: parse, convert, build with Caffe's shapes."""
import os

import pytest
import yaml

from minwa.prototxt import net_from_prototxt, solver_from_prototxt

CAFFE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "caffe")
REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def _known():
    import minwa.layers

    return set(minwa.layers.known_types())


def _need_types(model):
    missing = sorted({layer["type"] for layer in model["layers"]} - _known())
    if missing:
        pytest.skip(f"layer types not registered yet: {missing}")


def _caffe_files():
    if not os.path.isdir(CAFFE_DIR):
        return []
    return sorted(os.path.join(CAFFE_DIR, name) for name in os.listdir(CAFFE_DIR) if name.endswith(".prototxt"))


def _caffe(name):
    path = os.path.join(CAFFE_DIR, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not here (../shared is only beside the project checkout)")
    return path


@pytest.mark.parametrize("path", _caffe_files() or [pytest.param(None, marks=pytest.mark.skip("no ../shared"))])
def test_every_reference_file_parses_and_converts(path):
    if "solver" in os.path.basename(path):
        solver = solver_from_prototxt(path)
        assert solver["base_lr"] > 0 and solver["max_iter"] > 0 and isinstance(solver["test_iter"], int)
        return
    model, _ = net_from_prototxt(path, check_types=False)
    assert len(model["layers"]) >= 10
    assert all(set(layer) >= {"name", "type"} for layer in model["layers"])
    if not {layer["type"] for layer in model["layers"]} - _known():
        net_from_prototxt(path)  # with the type check


@pytest.mark.parametrize("name, phase, blob, shape", [
    ("cifar10__cifar10_full_train_test.prototxt", "TRAIN", "pool3", (100, 64, 4, 4)),
    ("cifar10__cifar10_full_train_test.prototxt", "TEST", "pool1", (100, 32, 16, 16)),
    ("cifar10__cifar10_quick_train_test.prototxt", "TRAIN", "pool3", (100, 64, 4, 4)),
    ("cifar10__cifar10_quick_train_test.prototxt", "TEST", "ip2", (100, 10)),
    ("mnist__lenet_train_test.prototxt", "TRAIN", "pool2", (64, 50, 4, 4)),
    ("mnist__lenet_train_test.prototxt", "TEST", "ip2", (100, 10)),
    ("bvlc_alexnet__train_val.prototxt", "TRAIN", "pool5", (256, 256, 6, 6)),
    ("bvlc_alexnet__train_val.prototxt", "TEST", "fc8", (50, 1000)),
    ("bvlc_alexnet__deploy.prototxt", "TEST", "pool5", (10, 256, 6, 6)),
])
def test_reference_nets_build_with_caffes_shapes(name, phase, blob, shape):
    from minwa.net import Net

    model, _ = net_from_prototxt(_caffe(name), check_types=False)
    _need_types(model)
    net = Net(model, phase=phase, init=False)
    assert net.blob_shapes[blob] == shape


def test_reference_solver_values():
    solver = solver_from_prototxt(_caffe("cifar10__cifar10_full_solver.prototxt"))
    assert (solver["base_lr"], solver["momentum"], solver["weight_decay"]) == (0.001, 0.9, 0.004)
    assert (solver["lr_policy"], solver["max_iter"], solver["test_iter"]) == ("fixed", 60000, 100)


def test_cifar10_full_matches_the_shipped_yaml_config():
    """The converted Caffe file and configs/cifar10_full.yaml define the same layers and parameters."""
    from minwa.net import Net

    config = os.path.join(REPO, "configs", "cifar10_full.yaml")
    if not os.path.exists(config):
        pytest.skip("configs/cifar10_full.yaml is not there")
    model, _ = net_from_prototxt(_caffe("cifar10__cifar10_full_train_test.prototxt"), check_types=False)
    _need_types(model)
    with open(config, encoding="utf-8") as f:
        shipped = yaml.safe_load(f)["model"]
    for phase in ("TRAIN", "TEST"):
        ours, theirs = Net(model, phase=phase, init=False), Net(shipped, phase=phase, init=False)
        assert [(layer.name, layer.type) for layer in ours.layers] == [(layer.name, layer.type)
                                                                        for layer in theirs.layers]
        assert [(p.name, p.shape, p.lr_mult, p.decay_mult, p.filler) for p in ours.params] == \
               [(p.name, p.shape, p.lr_mult, p.decay_mult, p.filler) for p in theirs.params]
