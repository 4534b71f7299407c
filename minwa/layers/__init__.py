"""minwa's layers, registered under Caffe's type names; importing this registers them all."""
from . import (  # noqa: F401 - imported for their @register side effect
    accuracy,
    batch_norm,
    concat,
    convolution,
    dropout,
    eltwise,
    flatten,
    inner_product,
    input,
    lrn,
    pooling,
    relu,
    scale,
    sink,
    softmax,
    softmax_with_loss,
    source,
    split,
)
from .layer import Layer
from .param import Param
from .registry import known_types, layer_class, register

__all__ = ["Layer", "Param", "known_types", "layer_class", "register"]
