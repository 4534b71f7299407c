"""The declared defaults are the ones the layers apply: giving each default explicitly changes nothing."""
import numpy
import pytest

import minwa.layers  # noqa: F401 - registers every layer type
from minwa.layers import layer_class
from minwa.schema.caffe_layers import LAYER_PARAMS

#: type -> (the options it needs, bottom shapes)
MINIMAL = {
    "Accuracy": ({}, [(4, 5), (4,)]),
    "BatchNorm": ({}, [(2, 3, 4, 4)]),
    "Concat": ({}, [(2, 3), (2, 4)]),
    "Convolution": ({"convolution_param": {"num_output": 2, "kernel_size": 3}}, [(1, 2, 5, 5)]),
    "Dropout": ({}, [(2, 3)]),
    "Eltwise": ({}, [(2, 3), (2, 3)]),
    "Flatten": ({}, [(2, 3, 4)]),
    "InnerProduct": ({"inner_product_param": {"num_output": 2}}, [(2, 3)]),
    "Input": ({"input_param": {"shape": [{"dim": [2, 3]}]}}, []),
    "LRN": ({}, [(1, 6, 3, 3)]),
    "Pooling": ({"pooling_param": {"kernel_size": 2}}, [(1, 2, 5, 5)]),
    "ReLU": ({}, [(2, 3)]),
    "Scale": ({}, [(2, 3, 4)]),
    "Softmax": ({}, [(2, 3)]),
    "SoftmaxWithLoss": ({}, [(4, 5), (4,)]),
    "Split": ({}, [(2, 3)]),
    "Sink": ({"sink_param": {"port": 5600}}, [(2, 3)]),
    "Source": ({"source_param": {"port": 5600, "shape": [2, 3]}}, []),
}


def _built(kind, options, shapes):
    spec = {"name": "x", "type": kind, "bottom": [f"b{i}" for i in range(len(shapes))], "top": ["t"], **options}
    layer = layer_class(kind)(spec, phase="TRAIN")
    layer.dtype = numpy.dtype("float64")
    tops = layer.setup(shapes)
    seen = {k: repr(v) for k, v in vars(layer).items() if k not in ("spec", "param_specs", "params")}
    return seen, tops, [(p.name, p.shape, p.filler, p.lr_mult, p.decay_mult) for p in layer.params]


def test_every_declared_type_has_a_minimal_case():
    assert sorted(MINIMAL) == sorted(LAYER_PARAMS)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_explicit_defaults_build_the_same_layer(kind):
    options, shapes = MINIMAL[kind]
    full = {block: dict(options.get(block, {})) for block in LAYER_PARAMS[kind]}
    for block, message in LAYER_PARAMS[kind].items():
        for key, field in message.fields.items():
            if field.default is not None and field.kind != "message" and key not in full[block]:
                full[block][key] = field.default
    assert _built(kind, options, shapes) == _built(kind, {**options, **full}, shapes)
