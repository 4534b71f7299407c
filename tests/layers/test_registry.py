"""The layer registry: Caffe type names, duplicates rejected, unknown names list the known ones."""
import pytest

from minwa import layers
from minwa.layers import Layer, known_types, layer_class, register

REQUIRED = ["Accuracy", "BatchNorm", "Concat", "Convolution", "Dropout", "Eltwise", "Flatten", "InnerProduct",
            "Input", "LRN", "Pooling", "ReLU", "Scale", "Softmax", "SoftmaxWithLoss", "Split"]


def test_every_caffe_type_is_registered():
    missing = [t for t in REQUIRED if t not in known_types()]
    assert not missing, f"not registered: {missing}"
    for name in REQUIRED:
        cls = layer_class(name)
        assert issubclass(cls, Layer) and cls.type == name


def test_package_reexports_the_registry_api():
    for name in ("Layer", "Param", "register", "layer_class", "known_types"):
        assert name in layers.__all__ and hasattr(layers, name)


def test_duplicate_registration_is_rejected():
    before = known_types()

    class AnotherReLU(Layer):
        type = "ReLU"

    with pytest.raises(ValueError, match="registered twice"):
        register(AnotherReLU)
    assert layer_class("ReLU") is not AnotherReLU
    assert known_types() == before


def test_unknown_type_lists_known_types():
    with pytest.raises(KeyError) as info:
        layer_class("Convolutoin")
    message = str(info.value)
    assert "Convolutoin" in message
    for name in ("Convolution", "Pooling", "SoftmaxWithLoss"):
        assert name in message


def test_class_without_type_cannot_register():
    class Nameless(Layer):
        pass

    with pytest.raises(TypeError):
        register(Nameless)
