"""The layer schema: Caffe's LayerParameter and every ``<type>_param`` minwa runs (from caffe.proto).

``LAYER_PARAMS`` maps each layer type to the option blocks it reads; each block is a
Message whose fields carry Caffe's types and defaults. Only fields minwa honours are
declared: anything else (Caffe's ``axis`` on a convolution, a filler's ``sparse``) is
an unknown key, not a silently ignored one. ``engine`` is accepted where Caffe has it
(minwa has one engine per layer, so the choice changes nothing).

To add a layer type: declare its block here (a Message) and add
``"TypeName": {"type_name_param": BLOCK}`` to ``LAYER_PARAMS`` (or call
``declare_layer``); a type with several blocks (a loss layer) lists them all.
"""
from ..errors import ConfigError
from .field import Field, Message, closest

ENGINE = Field("enum", "DEFAULT", choices=("DEFAULT", "CAFFE", "CUDNN"), doc="accepted; minwa has one engine")

FILLER = Message("FillerParameter", {
    "type": Field("enum", "constant", choices=("constant", "gaussian", "xavier", "msra", "uniform")),
    "value": Field("float", 0.0), "min": Field("float", 0.0), "max": Field("float", 1.0),
    "mean": Field("float", 0.0), "std": Field("float", 1.0, minimum=0.0),
    "variance_norm": Field("enum", "FAN_IN", choices=("FAN_IN", "FAN_OUT", "AVERAGE")),
})
BLOB_SHAPE = Message("BlobShape", {"dim": Field("int", repeated=True, minimum=1)})
#: Caffe's ParamSpec less ``name``/``share_mode``: minwa does not share blobs between layers
PARAM_SPEC = Message("ParamSpec", {"lr_mult": Field("float", 1.0), "decay_mult": Field("float", 1.0)})
#: Caffe's NetStateRule as minwa applies it: by phase only (stages and levels are refused)
STATE_RULE = Message("NetStateRule", {"phase": Field("enum", choices=("TRAIN", "TEST"))})


def _spatial(name, default, minimum, repeated=True):
    """Caffe's ``name`` (repeated in ConvolutionParameter, single in PoolingParameter) and its ``_h``/``_w`` pair."""
    base = name.removesuffix("_size")
    return {name: Field("int", default, repeated=repeated, minimum=minimum),
            f"{base}_h": Field("int", minimum=minimum), f"{base}_w": Field("int", minimum=minimum)}


CONVOLUTION = Message("ConvolutionParameter", {
    "num_output": Field("int", minimum=1), "bias_term": Field("bool", True),
    **_spatial("kernel_size", None, 1), **_spatial("stride", 1, 1), **_spatial("pad", 0, 0),
    "dilation": Field("int", 1, repeated=True, minimum=1),
    "group": Field("int", 1, minimum=1),
    "weight_filler": Field("message", message=FILLER), "bias_filler": Field("message", message=FILLER),
    "engine": ENGINE,
})
POOLING = Message("PoolingParameter", {
    "pool": Field("enum", "MAX", choices=("MAX", "AVE", "STOCHASTIC")),
    **_spatial("kernel_size", None, 1, False), **_spatial("stride", 1, 1, False), **_spatial("pad", 0, 0, False),
    "global_pooling": Field("bool", False), "engine": ENGINE,
})
INNER_PRODUCT = Message("InnerProductParameter", {
    "num_output": Field("int", minimum=1), "bias_term": Field("bool", True),
    "weight_filler": Field("message", message=FILLER), "bias_filler": Field("message", message=FILLER),
    "axis": Field("int", 1), "transpose": Field("bool", False),
})
LRN = Message("LRNParameter", {
    "local_size": Field("int", 5, minimum=1), "alpha": Field("float", 1.0), "beta": Field("float", 0.75),
    "norm_region": Field("enum", "ACROSS_CHANNELS", choices=("ACROSS_CHANNELS", "WITHIN_CHANNEL")),
    "k": Field("float", 1.0), "engine": ENGINE,
})
ACCURACY = Message("AccuracyParameter", {
    "top_k": Field("int", 1, minimum=1), "axis": Field("int", 1), "ignore_label": Field("int"),
})
BATCH_NORM = Message("BatchNormParameter", {
    "use_global_stats": Field("bool", doc="default: false in TRAIN, true in TEST"),
    "moving_average_fraction": Field("float", 0.999, minimum=0.0), "eps": Field("float", 1e-5, above=0.0),
})
CONCAT = Message("ConcatParameter", {"axis": Field("int", 1), "concat_dim": Field("int", minimum=0)})
DROPOUT = Message("DropoutParameter", {"dropout_ratio": Field("float", 0.5, minimum=0.0, below=1.0)})
ELTWISE = Message("EltwiseParameter", {
    "operation": Field("enum", "SUM", choices=("PROD", "SUM", "MAX")), "coeff": Field("float", repeated=True),
    "stable_prod_grad": Field("bool", True, doc="accepted; minwa computes the product gradient exactly"),
})
FLATTEN = Message("FlattenParameter", {"axis": Field("int", 1), "end_axis": Field("int", -1)})
INPUT = Message("InputParameter", {"shape": Field("message", repeated=True, message=BLOB_SHAPE)})
RELU = Message("ReLUParameter", {"negative_slope": Field("float", 0.0), "engine": ENGINE})
SCALE = Message("ScaleParameter", {
    "axis": Field("int", 1), "num_axes": Field("int", 1, minimum=-1), "filler": Field("message", message=FILLER),
    "bias_term": Field("bool", False), "bias_filler": Field("message", message=FILLER),
})
SOFTMAX = Message("SoftmaxParameter", {"axis": Field("int", 1), "engine": ENGINE})
LOSS = Message("LossParameter", {
    "ignore_label": Field("int"),
    "normalization": Field("enum", "VALID", choices=("FULL", "VALID", "BATCH_SIZE", "NONE")),
    "normalize": Field("bool", doc="legacy: true is VALID, false is BATCH_SIZE"),
})
#: the pipeline split's pair (Ichinose et al.): ``pair`` defaults to the port; Source's shape may come from
#: the papers' own ``reshape_param { shape { dim: [...] } }``
#: (ranges are checked by the layers themselves, which name the port's role)
SINK = Message("SinkParameter", {"host_name": Field("str", "127.0.0.1"), "port": Field("int"), "pair": Field("int")})
SOURCE = Message("SourceParameter", {"port": Field("int"), "pair": Field("int"), "shape": Field("int", repeated=True)})
RESHAPE = Message("ReshapeParameter", {"shape": Field("message", message=BLOB_SHAPE)})

#: layer type -> {option block key: Message}
LAYER_PARAMS = {
    "Accuracy": {"accuracy_param": ACCURACY},
    "BatchNorm": {"batch_norm_param": BATCH_NORM},
    "Concat": {"concat_param": CONCAT},
    "Convolution": {"convolution_param": CONVOLUTION},
    "Dropout": {"dropout_param": DROPOUT},
    "Eltwise": {"eltwise_param": ELTWISE},
    "Flatten": {"flatten_param": FLATTEN},
    "InnerProduct": {"inner_product_param": INNER_PRODUCT},
    "Input": {"input_param": INPUT},
    "LRN": {"lrn_param": LRN},
    "Pooling": {"pooling_param": POOLING},
    "ReLU": {"relu_param": RELU},
    "Scale": {"scale_param": SCALE},
    "Softmax": {"softmax_param": SOFTMAX},
    "SoftmaxWithLoss": {"softmax_param": SOFTMAX, "loss_param": LOSS},
    "Split": {},
    "Sink": {"sink_param": SINK},
    "Source": {"source_param": SOURCE, "reshape_param": RESHAPE},
}

#: fields every layer may carry (Caffe's LayerParameter, less the option blocks; minwa decides itself which
#: bottoms need gradients, so ``propagate_down`` is not among them)
LAYER_COMMON = Message("LayerParameter", {
    "name": Field("str"), "type": Field("str"),
    "bottom": Field("str", repeated=True), "top": Field("str", repeated=True),
    "loss_weight": Field("float", repeated=True),
    "param": Field("message", repeated=True, message=PARAM_SPEC),
    "include": Field("message", repeated=True, message=STATE_RULE),
    "exclude": Field("message", repeated=True, message=STATE_RULE),
    "shard": Field("bool", doc="model-data parallel: false keeps an InnerProduct replicated"),
})


def declare_layer(type_name, blocks):
    """Declare (or replace) the option blocks of ``type_name``: ``{"foo_param": Message(...)}``."""
    LAYER_PARAMS[type_name] = dict(blocks)


def param_key(type_name):
    """The main option block of a type (InnerProduct -> inner_product_param), declared or derived."""
    blocks = LAYER_PARAMS.get(type_name)
    if blocks:
        return next(iter(blocks))
    out = []
    for i, ch in enumerate(type_name):
        if ch.isupper() and i and not type_name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out) + "_param"


def check_layer(spec, where, known_types=None):
    """A layer mapping validated against its type's blocks: a new dict, or ConfigError naming the key.

    A block of another type (``pooling_param`` on a Convolution) and an option given
    outside its block (``weight_filler`` beside ``convolution_param``) get their own words.
    """
    kind = spec.get("type")
    blocks = LAYER_PARAMS.get(kind)
    if blocks is None:
        declared = sorted(LAYER_PARAMS if known_types is None else set(LAYER_PARAMS) & set(known_types))
        raise ConfigError(f"{where}: layer type {kind!r} has no declared schema (minwa/schema/caffe_layers.py); "
                          f"declared types: {', '.join(declared)}")
    fields = {**LAYER_COMMON.fields, **{key: Field("message", message=m) for key, m in blocks.items()}}
    out = {}
    for key, value in spec.items():
        field = fields.get(key)
        if field is None:
            raise _misplaced(where, key, kind, blocks, fields)
        out[key] = field.check(value, f"{where}, field {key!r}")
    return out


def _misplaced(where, key, kind, blocks, fields):
    for block, message in blocks.items():
        if key in message.fields:
            return ConfigError(f"{where}, field {key!r}: belongs inside {block} ({block}: {{{key}: ...}})")
    other = [t for t, b in LAYER_PARAMS.items() if key in b]
    if other and key not in fields:
        expected = ", ".join(blocks) or "no option block"
        return ConfigError(f"{where}, field {key!r}: not used by {kind} layers (they take {expected}; "
                           f"{key} is read by {', '.join(sorted(other))} layers)")
    near = closest(key, fields)
    if near is None:
        inside = {f"{block}.{k}": k for block, m in blocks.items() for k in m.fields}
        near = next((q for q, k in inside.items() if k == closest(key, inside.values())), None)
    if near is None and closest(key, PARAM_SPEC.fields):
        near = f"param: [{{{closest(key, PARAM_SPEC.fields)}: ...}}]"
    tail = f"did you mean {near!r}?" if near else f"known: {', '.join(sorted(fields))}"
    return ConfigError(f"{where}, field {key!r}: unknown key; {tail}")
