"""Caffe's V1 net format (``layers { type: CONVOLUTION blobs_lr: 1 }``) upgraded to today's schema."""
from ..errors import ConfigError

# V1 (``layers { type: CONVOLUTION }``) type names whose modern name is not the plain CamelCase of the enum.
_V1_SPECIAL = {"RELU": "ReLU", "LRN": "LRN", "SOFTMAX_LOSS": "SoftmaxWithLoss", "HDF5_DATA": "HDF5Data",
               "HDF5_OUTPUT": "HDF5Output", "BNLL": "BNLL", "MVN": "MVN", "TANH": "TanH", "ABSVAL": "AbsVal",
               "ARGMAX": "ArgMax", "IM2COL": "Im2col", "PRELU": "PReLU"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def _v1_type(value, where):
    if not isinstance(value, str):
        raise ConfigError(f"{where}: type {value!r} is not a layer type name")
    if value != value.upper():
        return value
    if value in _V1_SPECIAL:
        return _V1_SPECIAL[value]
    return "".join(part.capitalize() for part in value.split("_"))


def upgrade_v1(layer, where):
    """A V1 ``layers {}`` entry in the modern schema (type names, blobs_lr/weight_decay -> param)."""
    layer = dict(layer)
    layer["type"] = _v1_type(layer.get("type"), where)
    lrs, decays = as_list(layer.pop("blobs_lr", [])), as_list(layer.pop("weight_decay", []))
    names = layer.pop("param", [])
    layer.pop("blob_share_mode", None)
    count = max(len(lrs), len(decays), len(names))
    if count:
        params = []
        for i in range(count):
            entry = {}
            if i < len(names):
                entry["name"] = names[i]
            if i < len(lrs):
                entry["lr_mult"] = lrs[i]
            if i < len(decays):
                entry["decay_mult"] = decays[i]
            params.append(entry)
        layer["param"] = params
    return layer
