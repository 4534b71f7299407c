"""Net: a DAG of layers built from a Caffe-schema model definition.

Blobs are passed functionally (a dict from blob name to array), so in-place layers
(top == bottom, as Caffe writes ReLU and Dropout) simply rebind the name. Backward
walks the layers in reverse, summing gradients of blobs with several consumers.
Two hook lists let the parallel modes drive communication without layers knowing:
``before_forward`` (wait for a layer's weights) and ``after_backward`` (its
gradients are ready).
"""
import numpy

from . import backend
from .errors import ConfigError, ShapeError
from .layers import Layer, layer_class
from .layers.fillers import fill
from .relu_fusion import fuse_in_place_relus
from .schema.caffe_layers import check_layer

PHASES = ("TRAIN", "TEST")
#: layer types whose tops are fed from outside (Source: by the pipeline server)
FED_TYPES = ("Input", "Source")


def _layer_specs(model):
    if isinstance(model, dict):
        specs = model.get("layers", model.get("layer"))
        if specs is None:
            raise ConfigError("model: expected a 'layers' list")
    else:
        specs = model
    if not isinstance(specs, (list, tuple)) or not specs:
        raise ConfigError("model.layers must be a non-empty list of layer definitions")
    return specs


def _included(spec, phase):
    """Caffe's include/exclude rules by phase."""
    def phases(rules):
        if rules is None:
            return None
        rules = rules if isinstance(rules, list) else [rules]
        return {str(r.get("phase", "")).upper() for r in rules if isinstance(r, dict)}

    include, exclude = phases(spec.get("include")), phases(spec.get("exclude"))
    if include is not None and phase not in include:
        return False
    return not (exclude is not None and phase in exclude)


def _as_list(value, where):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: expected a blob name or a list of names, got {value!r}")


class Net:
    """Layers in topological order with their parameters and blob shapes."""

    def __init__(self, model, phase="TRAIN", dtype="float32", seed=0, init=True):
        phase = str(phase).upper()
        if phase not in PHASES:
            raise ConfigError(f"phase {phase!r}: expected TRAIN or TEST")
        self.phase = phase
        self.dtype = numpy.dtype(dtype)
        self.name = model.get("name", "net") if isinstance(model, dict) else "net"
        self.seed = int(seed)
        self.before_forward = []
        self.after_backward = []
        self.layers = self._build_layers(model)
        self.blob_shapes = {}
        self.input_names = []
        self._setup_shapes()
        self.fused_relus = fuse_in_place_relus(self.layers)
        self.params = [p for layer in self.layers for p in layer.params]
        self._check_unique_param_names()
        self._plan_backward()
        self.blobs = {}
        self.loss = None
        if init:
            self.init_params()

    # -- construction -------------------------------------------------------------
    def _build_layers(self, model):
        layers, names = [], set()
        for index, spec in enumerate(_layer_specs(model)):
            if not isinstance(spec, dict):
                raise ConfigError(f"model.layers[{index}]: expected a mapping, got {type(spec).__name__}")
            if "type" not in spec:
                raise ConfigError(f"model.layers[{index}] ({spec.get('name', '?')}): missing 'type'")
            if not _included(spec, self.phase):
                continue
            spec = dict(spec)
            spec.setdefault("name", f"{spec['type'].lower()}{index}")
            where = f"layer {spec['name']!r}"
            if spec["name"] in names:
                raise ConfigError(f"{where}: duplicate layer name")
            names.add(spec["name"])
            spec["bottom"] = _as_list(spec.get("bottom"), f"{where}, field 'bottom'")
            spec["top"] = _as_list(spec.get("top"), f"{where}, field 'top'")
            try:
                cls = layer_class(spec["type"])
            except KeyError as exc:
                raise ConfigError(f"{where}: {exc.args[0]}") from None
            spec = check_layer(spec, f"{where} ({spec['type']})")  # unknown keys, types, ranges
            layer = cls(spec, phase=self.phase)
            layer.dtype = self.dtype
            layer.index = len(layers)
            layers.append(layer)
        if not layers:
            raise ConfigError(f"model has no layers in phase {self.phase}")
        return layers

    def _setup_shapes(self):
        shapes = self.blob_shapes
        for layer in self.layers:
            for blob in layer.bottoms:
                if blob not in shapes:
                    known = ", ".join(sorted(shapes)) or "none yet"
                    raise ConfigError(f"layer {layer.name!r} ({layer.type}), field 'bottom': blob {blob!r} "
                                      f"is not produced by any earlier layer (known blobs: {known})")
            _check_arity(layer)
            bottom_shapes = [shapes[b] for b in layer.bottoms]
            try:
                tops = layer.setup(bottom_shapes)
            except (ConfigError, ShapeError):
                raise
            except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as exc:
                raise ShapeError(f"layer {layer.name!r} ({layer.type}): cannot set up with bottom shapes "
                                 f"{bottom_shapes}: {exc}") from exc
            if len(tops) != len(layer.tops):
                raise ConfigError(f"layer {layer.name!r} ({layer.type}): produces {len(tops)} top(s) "
                                  f"but {len(layer.tops)} named")
            for blob, shape in zip(layer.tops, tops):
                if any(int(d) <= 0 for d in shape):
                    raise ShapeError(f"layer {layer.name!r} ({layer.type}): output {blob!r} would have "
                                     f"shape {tuple(shape)} from bottom shapes {bottom_shapes}")
                shapes[blob] = tuple(int(d) for d in shape)
            layer.bottom_shapes = bottom_shapes
            layer.top_shapes = [shapes[t] for t in layer.tops]
            if layer.type in FED_TYPES:
                self.input_names += layer.tops
        self.output_names = _outputs(self.layers, self.input_names)

    def _check_unique_param_names(self):
        seen = set()
        for p in self.params:
            if p.name in seen:
                raise ConfigError(f"parameter name {p.name!r} used twice")
            seen.add(p.name)

    def _plan_backward(self):
        """Which layers need backward and which bottoms need gradients."""
        needs_grad = set()
        for layer in self.layers:
            learnable = any(p.lr_mult != 0 for p in layer.params)
            from_below = any(b in needs_grad for b in layer.bottoms)
            layer.propagate_down = [b in needs_grad for b in layer.bottoms]
            layer.needs_backward = (learnable or from_below) and _has_backward(layer)
            if layer.needs_backward:
                needs_grad.update(layer.tops)
            else:
                needs_grad.difference_update(layer.tops)

    def init_params(self, seed=None):
        """Allocate and fill every parameter on the backend device, deterministically by seed."""
        rng = numpy.random.default_rng(self.seed if seed is None else seed)
        for layer in self.layers:
            for param in layer.params:
                host = fill(param.filler, param.shape, self.dtype, rng)
                param.data = backend.to_device(host)
                param.grad = None
            if hasattr(layer, "rng"):
                layer.rng = numpy.random.default_rng([self.seed, layer.index])

    # -- running --------------------------------------------------------------------
    def forward(self, feed=None, **named):
        """Run every layer; returns the net's output blobs (losses, accuracies, scores)."""
        feed = dict(feed or {}, **named)
        blobs = {}
        for name in self.input_names:
            if name not in feed:
                raise ConfigError(f"forward: input blob {name!r} was not given (inputs: {self.input_names})")
        for name, value in feed.items():
            if name not in self.input_names:
                raise ConfigError(f"forward: {name!r} is not an input blob of the net (inputs: {self.input_names})")
            expected = self.blob_shapes[name]
            if tuple(value.shape[1:]) != tuple(expected[1:]):
                raise ShapeError(f"forward: input {name!r} has shape {tuple(value.shape)}, the net expects "
                                 f"(N, {', '.join(str(d) for d in expected[1:])})".replace(", )", ")"))
            blobs[name] = _as_dtype(value, self.dtype)
        loss = 0.0
        for index, layer in enumerate(self.layers):
            for hook in self.before_forward:
                hook(index, layer)
            if layer.type in FED_TYPES:
                continue
            bottoms = [blobs[b] for b in layer.bottoms]
            tops = layer.forward(bottoms)
            for name, value, weight in zip(layer.tops, tops, layer.loss_weights):
                blobs[name] = value
                if weight:
                    loss += weight * float(value)
        self.blobs = blobs
        self.loss = loss
        return {name: blobs[name] for name in self.output_names}

    def backward(self):
        """Fill ``Param.grad`` of every parameter from the last forward's losses."""
        if not self.blobs:
            raise RuntimeError("backward() called before forward()")
        grads = {}
        for layer in self.layers:
            for name, weight in zip(layer.tops, layer.loss_weights):
                if weight:
                    xp = backend.xp_of(self.blobs[name])
                    grads[name] = xp.full(self.blobs[name].shape, weight, dtype=self.blobs[name].dtype)
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            if not layer.needs_backward:
                continue
            top_grads = [grads.pop(t, None) for t in layer.tops]
            if all(g is None for g in top_grads) and not layer.params:
                continue
            bottom_grads = layer.backward(top_grads, list(layer.propagate_down))
            for name, grad, wanted in zip(layer.bottoms, bottom_grads or [], layer.propagate_down):
                if not wanted or grad is None:
                    continue
                grads[name] = grad if name not in grads else grads[name] + grad
            for hook in self.after_backward:
                hook(index, layer)

    # -- inspection -------------------------------------------------------------------
    def param_count(self):
        return sum(p.size for p in self.params)

    def flops(self):
        """Forward FLOPs of one pass at the configured input shapes."""
        return sum(layer.flops(layer.bottom_shapes, layer.top_shapes) for layer in self.layers)

    def layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}")

    def param(self, name):
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"no parameter named {name!r}")

    def __repr__(self):
        return f"Net({self.name!r}, phase={self.phase}, {len(self.layers)} layers, {self.param_count()} params)"


def _check_arity(layer):
    def ok(count, rule):
        if isinstance(rule, int):
            return count == rule
        low, high = rule
        return count >= low and (high is None or count <= high)

    for what, count, rule in (("bottom", len(layer.bottoms), layer.n_bottoms), ("top", len(layer.tops), layer.n_tops)):
        if not ok(count, rule):
            want = rule if isinstance(rule, int) else f"{rule[0]} to {rule[1] if rule[1] is not None else 'any'}"
            raise ConfigError(f"layer {layer.name!r} ({layer.type}), field {what!r}: takes {want} blob(s), "
                              f"got {count}")


def _as_dtype(value, dtype):
    """A fed array in the net's dtype (float data), so every layer computes in it; integer labels stay."""
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind == "f" and value.dtype != dtype:
        return value.astype(dtype)
    return value


def _has_backward(layer):
    return type(layer).backward is not Layer.backward


def _outputs(layers, input_names):
    """Blobs whose final value (after their last writer) no later layer reads."""
    last_writer = {}
    for index, layer in enumerate(layers):
        for blob in layer.tops:
            last_writer[blob] = index
    outputs = []
    for blob, index in last_writer.items():
        if blob in input_names:
            continue
        if not any(blob in later.bottoms for later in layers[index + 1:]):
            outputs.append(blob)
    return outputs
