"""FullyConvolutional: a trained net with its InnerProduct layers turned into convolutions.

The first InnerProduct fed by a spatial blob (N, C, H, W) becomes a Convolution with an
H x W kernel (its weight (O, C*H*W) reshaped to (O, C, H, W)); InnerProducts after it
become 1x1 convolutions. At the training size the converted net computes the same
numbers (the class scores come out as an (N, K, 1, 1) map); on a larger input it slides
the original net over the picture and yields a map of class scores, the dense
evaluation of Deep Image §5 (and VGG). A Flatten in front of a converted layer becomes
an identity (Split). Layers that read the label (loss, accuracy) and the label input are
dropped: the converted net maps images to scores, its output blob is ``scores``.
"""
import copy

import numpy

from ..errors import ConfigError, ShapeError

_LABEL_READERS = ("SoftmaxWithLoss", "Accuracy", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss",
                  "MultinomialLogisticLoss", "InfogainLoss")


def _input_layer(net):
    inputs = [layer for layer in net.layers if layer.type == "Input"]
    if len(inputs) != 1:
        raise ConfigError(f"fully convolutional conversion: expected one Input layer, found {len(inputs)}")
    return inputs[0]


class FullyConvolutional:
    """The converted model of ``model`` (a Caffe-schema dict) and how to move weights into it.

    ``model``: the trained net's ``model:`` block. The TEST phase is converted.
    Attributes: ``model`` (the converted model dict, input ``data`` of the training size),
    ``data_blob``, ``scores`` (the score blob name), ``input_shape`` (C, H, W at training),
    ``converted`` ({layer name: (kernel_h, kernel_w)}).
    """

    def __init__(self, model, dtype="float64"):
        from ..net import Net  # noqa: PLC0415 - net imports every layer

        self.source_model = model
        net = Net(model, phase="TEST", dtype=dtype, init=False)
        self.dtype = dtype
        inp = _input_layer(net)
        self.data_blob = inp.tops[0]
        self.input_name = inp.name
        shape = net.blob_shapes[self.data_blob]
        if len(shape) != 4:
            raise ConfigError(f"fully convolutional conversion: input {self.data_blob!r} has shape {shape}; "
                              "expected images (N, C, H, W)")
        self.input_shape = tuple(shape[1:])
        self.label_blobs = set(inp.tops[1:])
        self.scores = self._score_blob(net)
        self.converted = {}
        self.model = self._convert(net)
        self._check(net)

    # -- conversion -------------------------------------------------------------------
    def _score_blob(self, net):
        for layer in net.layers:
            if layer.type in _LABEL_READERS or any(b in self.label_blobs for b in layer.bottoms):
                return layer.bottoms[0]
        outputs = [b for b in net.output_names if b not in self.label_blobs]
        if len(outputs) != 1:
            raise ConfigError(f"fully convolutional conversion: cannot tell the class scores among the outputs "
                              f"{outputs}; add a loss layer reading them")
        blob = outputs[0]
        for layer in net.layers:  # a deploy net ending in Softmax: take the logits below it
            if layer.type == "Softmax" and blob in layer.tops:
                return layer.bottoms[0]
        return blob

    def _convert(self, net):
        specs = {spec.get("name") or f"{spec['type'].lower()}{i}": spec  # the Net's names for unnamed layers
                 for i, spec in enumerate(_layers_of(self.source_model))}
        spatial = {self.data_blob}  # blobs that keep (N, C, H, W) in the converted net
        flattened = {}  # Flatten top -> the spatial blob it flattened
        layers = []
        shape = (1,) + self.input_shape
        layers.append({"name": self.input_name, "type": "Input", "top": self.data_blob,
                       "input_param": {"shape": [{"dim": list(shape)}]}})
        needed = self._needed(net)
        for layer in net.layers:
            if layer.type == "Input" or layer.name not in needed:
                continue
            spec = copy.deepcopy(specs[layer.name])
            spec["name"] = layer.name
            spec.pop("include", None)
            spec.pop("exclude", None)
            spec["bottom"] = [flattened.get(b, b) for b in layer.bottoms]
            bottom = spec["bottom"][0] if spec["bottom"] else None
            if layer.type == "Flatten" and bottom in spatial and layer.axis == 1:
                flattened[layer.tops[0]] = bottom  # the flattened blob is read as the map itself
                continue
            if layer.type == "InnerProduct":
                if bottom not in spatial:
                    raise ConfigError(f"layer {layer.name!r} (InnerProduct): its input {bottom!r} is not an image "
                                      "map, so it cannot become a convolution")
                if layer.axis != 1:
                    raise ConfigError(f"layer {layer.name!r} (InnerProduct): axis {layer.axis}; only axis 1 converts")
                kernel = tuple(net.blob_shapes[bottom][2:]) if len(net.blob_shapes[bottom]) == 4 else (1, 1)
                spec = self._as_convolution(spec, layer, bottom, kernel)
                self.converted[layer.name] = kernel
            if bottom in spatial:
                spatial.update(layer.tops)
            layers.append(spec)
        return {"name": _name_of(self.source_model) + "_fc", "layers": layers}

    def _needed(self, net):
        """Layers the scores depend on (loss, accuracy and other label readers are left out)."""
        wanted, keep = {self.scores}, set()
        for layer in reversed(net.layers):
            if any(t in wanted for t in layer.tops) and layer.type != "Input":
                keep.add(layer.name)
                wanted.update(layer.bottoms)
        return keep

    @staticmethod
    def _as_convolution(spec, layer, bottom, kernel):
        ip = dict(spec.get("inner_product_param") or {})
        conv = {"num_output": layer.num_output, "kernel_h": kernel[0], "kernel_w": kernel[1], "stride": 1,
                "pad": 0, "bias_term": layer.bias_term}
        for key in ("weight_filler", "bias_filler"):
            if key in ip:
                conv[key] = ip[key]
        out = {k: v for k, v in spec.items() if k != "inner_product_param"}
        out.update({"type": "Convolution", "bottom": [bottom], "convolution_param": conv})
        return out

    def _check(self, net):
        from ..net import Net  # noqa: PLC0415

        converted = Net(self.model, phase="TEST", dtype=self.dtype, init=False)
        got = converted.blob_shapes[self.scores]
        want = net.blob_shapes[self.scores]
        if len(got) != 4 or got[2:] != (1, 1) or got[1] != want[1]:
            raise ShapeError(f"fully convolutional conversion: the scores {self.scores!r} come out as {got} at the "
                             f"training size, expected (N, {want[1]}, 1, 1)")

    # -- weights ----------------------------------------------------------------------
    def convert_params(self, params):
        """{name: array} of the trained net -> {name: array} of the converted one (reshaped weights)."""
        out = {}
        from ..net import Net  # noqa: PLC0415

        shapes = {p.name: tuple(p.shape) for p in Net(self.model, phase="TEST", init=False).params}
        for name, want in shapes.items():
            if name not in params:
                raise ConfigError(f"fully convolutional conversion: no weights for parameter {name!r}")
            value = numpy.asarray(params[name])
            layer = name.rsplit(".", 1)[0]
            if layer in self.converted and name.endswith(".weight") and value.shape != want:
                if value.ndim == 2 and value.shape[0] != want[0]:  # InnerProduct transpose: true
                    value = value.T
                value = numpy.ascontiguousarray(value).reshape(want)
            if value.shape != want:
                raise ShapeError(f"fully convolutional conversion: parameter {name!r} has shape {value.shape}, "
                                 f"the converted net needs {want}")
            out[name] = value
        return out

    def at_size(self, height, width, batch=1):
        """The converted model dict with an input of (batch, C, height, width)."""
        model = copy.deepcopy(self.model)
        model["layers"][0]["input_param"]["shape"] = [{"dim": [int(batch), self.input_shape[0],
                                                               int(height), int(width)]}]
        return model

    def min_size(self):
        """The smallest square input the converted net accepts (its receptive field at the score map)."""
        from ..net import Net  # noqa: PLC0415

        size = min(self.input_shape[1:])
        while size > 1:
            try:
                Net(self.at_size(size - 1, size - 1), phase="TEST", init=False)
            except (ConfigError, ShapeError):
                break
            size -= 1
        return size


def fully_convolutional(model, params, dtype="float64"):
    """(converted model dict, converted {name: array}) of a trained ``model`` and its ``params``."""
    fc = FullyConvolutional(model, dtype=dtype)
    return fc.model, fc.convert_params(params)


def _layers_of(model):
    return model.get("layers", model.get("layer")) if isinstance(model, dict) else model


def _name_of(model):
    return str(model.get("name", "net")) if isinstance(model, dict) else "net"
