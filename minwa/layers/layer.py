"""Layer: the contract every layer keeps (Caffe's Layer).

``setup(bottom_shapes) -> top_shapes`` validates shapes and declares parameters;
``forward(bottoms) -> tops``; ``backward(top_grads, propagate_down) -> bottom_grads``.
Forward must work from the actual input shapes (the batch size may change between
calls); what backward needs is kept on ``self`` by forward.
"""
from ..errors import ConfigError
from .param import Param


class Layer:
    type = None  # Caffe type name, set by each subclass
    #: number of bottoms accepted: an int, or (min, max) with max None for "any"
    n_bottoms = 1
    n_tops = 1
    #: loss layers seed backward with their loss_weight
    is_loss = False

    def __init__(self, spec, phase="TRAIN"):
        self.spec = spec
        self.name = spec.get("name") or self.type
        self.bottoms = list(spec.get("bottom", []))
        self.tops = list(spec.get("top", []))
        self.phase = phase
        self.params = []
        self.dtype = None  # set by the Net before setup
        self.param_specs = spec.get("param", []) or []
        weights = spec.get("loss_weight")
        if weights is None:
            weights = [1.0] * len(self.tops) if self.is_loss else [0.0] * len(self.tops)
        elif not isinstance(weights, (list, tuple)):
            weights = [weights]
        self.loss_weights = [float(w) for w in weights]

    # -- helpers for subclasses -------------------------------------------------
    def option(self, key, default=None):
        """``<type>_param.key`` from the spec (Caffe's e.g. convolution_param)."""
        return self.options.get(key, default)

    @property
    def options(self):
        key = _param_key(self.type)
        value = self.spec.get(key) or {}
        if not isinstance(value, dict):
            raise self.error(f"{key} must be a mapping, got {type(value).__name__}")
        return value

    def error(self, message, field=None):
        where = f"layer {self.name!r} ({self.type})"
        if field:
            where += f", field {field!r}"
        return ConfigError(f"{where}: {message}")

    def add_param(self, suffix, shape, filler, default_lr_mult=1.0, default_decay_mult=1.0):
        """Declare parameter number len(self.params); Caffe's ``param {}`` entries set multipliers."""
        index = len(self.params)
        ps = self.param_specs[index] if index < len(self.param_specs) else {}
        param = Param(f"{self.name}.{suffix}", shape, filler,
                      lr_mult=ps.get("lr_mult", default_lr_mult),
                      decay_mult=ps.get("decay_mult", default_decay_mult))
        self.params.append(param)
        return param

    # -- the contract -----------------------------------------------------------
    def setup(self, bottom_shapes):
        raise NotImplementedError

    def forward(self, bottoms):
        raise NotImplementedError

    def backward(self, top_grads, propagate_down):
        raise NotImplementedError

    def flops(self, bottom_shapes, top_shapes):
        """Multiply-adds x2 of one forward pass (0 for cheap element-wise layers)."""
        return 0

    def __repr__(self):
        return f"{self.type}({self.name!r})"


def _param_key(type_name):
    """Caffe's field name for a type's options: InnerProduct -> inner_product_param (see minwa.schema)."""
    from ..schema.caffe_layers import param_key  # noqa: PLC0415 - the schema imports no layer code

    return param_key(type_name)
