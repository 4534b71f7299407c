"""Caffe .prototxt import: a protobuf text-format reader and the conversion to minwa's dicts.

Caffe describes nets (NetParameter) and solvers (SolverParameter) in protobuf's text
format. minwa reads that format itself (no protobuf dependency): ``parse_prototxt``
turns the text into nested dicts, with a field as a list wherever Caffe's schema
declares it ``repeated`` (layer, bottom, top, param, dim, ...), or wherever it
appears more than once. ``net_to_model`` then maps a NetParameter onto minwa's model
dict (Caffe's schema as YAML), replacing Caffe's data layers by ``Input`` layers and
returning what they said about the data as a separate hint; ``solver_to_dict`` maps
a SolverParameter onto the solver block.
"""
import os
import re

from .errors import ConfigError

# --------------------------------------------------------------------------------------
# Which fields Caffe's schema (caffe.proto) declares repeated, by the field that holds
# the message they belong to ("" is the file's top level: a NetParameter or a
# SolverParameter). Fields not listed are singular unless they occur several times.
_NET_LAYER_REPEATED = {"bottom", "top", "loss_weight", "param", "blobs", "propagate_down", "include", "exclude"}
_REPEATED = {
    "": {"layer", "layers", "input", "input_shape", "input_dim", "test_iter", "test_net", "test_net_param",
         "test_state", "stepvalue", "weights"},
    "layer": _NET_LAYER_REPEATED,
    "layers": _NET_LAYER_REPEATED | {"blobs_lr", "weight_decay", "blob_share_mode"},
    "include": {"stage", "not_stage"},
    "exclude": {"stage", "not_stage"},
    "state": {"stage"},
    "test_state": {"stage"},
    "train_state": {"stage"},
    "shape": {"dim"},
    "input_shape": {"dim"},
    "blobs": {"data", "diff", "double_data", "double_diff"},
    "input_param": {"shape"},
    "convolution_param": {"kernel_size", "stride", "pad", "dilation"},
    "transform_param": {"mean_value"},
    "dummy_data_param": {"data_filler", "shape", "num", "channels", "height", "width"},
    "slice_param": {"slice_point"},
    "eltwise_param": {"coeff"},
    "crop_param": {"offset"},
}

#: Caffe's data-reading layers; minwa reads data itself, so they become Input layers.
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "DummyData")
#: The pipeline papers' cross-process layers (a later part of minwa runs them); their options are kept as given.
PIPELINE_LAYER_TYPES = {"Sink": ("sink_param",), "Source": ("source_param", "reshape_param")}
#: Layer fields every layer may carry.
_COMMON_LAYER_FIELDS = {"name", "type", "bottom", "top", "param", "include", "exclude", "loss_weight",
                        "propagate_down"}
#: Layer fields Caffe itself ignores at run time or that only mean something to Caffe's C++ code.
_IGNORED_LAYER_FIELDS = {"phase"}

# V1 (``layers { type: CONVOLUTION }``) type names whose modern name is not the plain CamelCase of the enum.
_V1_SPECIAL = {"RELU": "ReLU", "LRN": "LRN", "SOFTMAX_LOSS": "SoftmaxWithLoss", "HDF5_DATA": "HDF5Data",
               "HDF5_OUTPUT": "HDF5Output", "BNLL": "BNLL", "MVN": "MVN", "TANH": "TanH", "ABSVAL": "AbsVal",
               "ARGMAX": "ArgMax", "IM2COL": "Im2col", "PRELU": "PReLU"}

#: Caffe's old ``solver_type`` enum -> the ``type`` string.
_SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
                 "ADADELTA": "AdaDelta", "ADAM": "Adam"}
#: SolverParameter fields carried over unchanged.
_SOLVER_KEPT = ("base_lr", "momentum", "momentum2", "delta", "rms_decay", "weight_decay", "regularization_type",
                "lr_policy", "gamma", "power", "stepsize", "stepvalue", "max_iter", "test_interval", "test_iter",
                "test_initialization", "display", "average_loss", "snapshot", "snapshot_prefix", "random_seed",
                "iter_size", "clip_gradients", "net", "type")
#: SolverParameter fields that only steer Caffe's own process (device, file formats, debug output).
_SOLVER_IGNORED = ("solver_mode", "device_id", "snapshot_format", "snapshot_diff", "snapshot_after_train",
                   "debug_info", "layer_wise_reduce", "test_compute_loss")

#: Known data sets, recognised in a data layer's source path, for the image shape the prototxt does not hold.
_KNOWN_DATASET_SHAPES = (("cifar", (3, 32, 32)), ("mnist", (1, 28, 28)), ("ilsvrc", (3, 256, 256)),
                         ("imagenet", (3, 256, 256)))


# --------------------------------------------------------------------------------------
# text format reader

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![A-Za-z0-9_]))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>\[\]:,;])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "?": "?"}


class _Token:
    __slots__ = ("col", "kind", "line", "text")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col


def _tokenize(text, filename):
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ConfigError(f"{filename}:{line}:{pos - line_start + 1}: unexpected character {text[pos]!r}")
        kind = match.lastgroup
        if kind != "space":
            tokens.append(_Token(kind, match.group(), line, pos - line_start + 1))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rfind("\n") + 1
        pos = match.end()
    tokens.append(_Token("end", "", line, pos - line_start + 1))
    return tokens


def _unquote(token, filename):
    body, out, i = token.text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1:]).group()
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if digits is None:
                raise ConfigError(f"{filename}:{token.line}:{token.col}: bad \\x escape in string")
            out.append(chr(int(digits.group(), 16)))
            i += 2 + len(digits.group())
        else:
            raise ConfigError(f"{filename}:{token.line}:{token.col}: unknown escape '\\{nxt}' in string")
    return "".join(out)


def _number(text):
    body = text[:-1] if text[-1] in "fF" and not text.lower().startswith(("0x", "-0x", "+0x")) else text
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", body):
        return int(body, 16)
    if re.fullmatch(r"[-+]?\d+", body) and body == text:
        return int(body)
    return float(body)


def _identifier_value(text):
    lowered = text.lower()
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if lowered in ("inf", "infinity", "-inf", "-infinity", "nan", "-nan"):
        return float(lowered)
    return text  # an enum value such as MAX or TRAIN


class _Parser:
    def __init__(self, text, filename):
        self.filename = filename
        self.tokens = _tokenize(text, filename)
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos]

    def take(self):
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, token, message):
        return ConfigError(f"{self.filename}:{token.line}:{token.col}: {message}")

    def message(self, context, closing):
        out = {}
        while True:
            token = self.peek()
            if token.kind == "end":
                if closing is not None:
                    raise self.fail(token, f"missing {closing!r} to close {context or 'message'!r}")
                return out
            if closing is not None and token.text == closing and token.kind == "punct":
                self.take()
                return out
            self.field(out, context)
            if self.peek().text in (",", ";") and self.peek().kind == "punct":
                self.take()

    def field(self, out, context):
        token = self.take()
        if token.kind == "punct" and token.text == "[":
            raise self.fail(token, "protobuf extensions ([name]) are not supported in Caffe files")
        if token.kind != "ident" or token.text.startswith("-"):
            shown = repr(token.text) if token.kind != "end" else "the end of the file"
            raise self.fail(token, f"expected a field name, found {shown}")
        name = token.text
        colon = False
        if self.peek().text == ":" and self.peek().kind == "punct":
            self.take()
            colon = True
        nxt = self.peek()
        if nxt.kind == "punct" and nxt.text in "{<":
            self.take()
            values = [self.message(name, "}" if nxt.text == "{" else ">")]
        elif nxt.kind == "punct" and nxt.text == "[" and colon:
            self.take()
            values = self.list_values(name)
        elif colon:
            values = [self.scalar()]
        else:
            raise self.fail(nxt, f"expected ':' or '{{' after field {name!r}")
        self.store(out, context, name, values, token)

    def list_values(self, name):
        values = []
        if self.peek().text == "]" and self.peek().kind == "punct":
            self.take()
            return values
        while True:
            nxt = self.peek()
            if nxt.kind == "punct" and nxt.text in "{<":
                self.take()
                values.append(self.message(name, "}" if nxt.text == "{" else ">"))
            else:
                values.append(self.scalar())
            token = self.take()
            if token.text == "]" and token.kind == "punct":
                return values
            if token.text != "," or token.kind != "punct":
                raise self.fail(token, f"expected ',' or ']' in the list of {name!r}")

    def scalar(self):
        token = self.take()
        if token.kind == "string":
            parts = [_unquote(token, self.filename)]
            while self.peek().kind == "string":  # adjacent strings concatenate
                parts.append(_unquote(self.take(), self.filename))
            return "".join(parts)
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "ident":
            return _identifier_value(token.text)
        shown = repr(token.text) if token.kind != "end" else "the end of the file"
        raise self.fail(token, f"expected a value, found {shown}")

    def store(self, out, context, name, values, token):
        """Repeated fields (by Caffe's schema, or given more than once) become lists."""
        repeated = name == "dim" or name in _REPEATED.get(context, ())
        if name in out:
            existing = out[name]
            out[name] = (existing if isinstance(existing, list) else [existing]) + values
        elif repeated or len(values) != 1:
            out[name] = list(values)
        else:
            out[name] = values[0]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def parse_prototxt(text, filename="<prototxt>"):
    """Protobuf text format -> nested dicts; raises ConfigError naming file:line:column."""
    return _Parser(text, filename).message("", None)


def read_prototxt(path):
    """``parse_prototxt`` of a file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    return parse_prototxt(text, filename=path)


# --------------------------------------------------------------------------------------
# NetParameter -> model dict


def _known_layer_types():
    from . import layers

    return set(layers.known_types())


def _param_key(type_name):
    from .layers.layer import _param_key as key

    return key(type_name)


def _v1_type(value, where):
    if not isinstance(value, str):
        raise ConfigError(f"{where}: type {value!r} is not a layer type name")
    if value != value.upper():
        return value
    if value in _V1_SPECIAL:
        return _V1_SPECIAL[value]
    return "".join(part.capitalize() for part in value.split("_"))


def _upgrade_v1(layer, where):
    """A V1 ``layers {}`` entry in the modern schema (type names, blobs_lr/weight_decay -> param)."""
    layer = dict(layer)
    layer["type"] = _v1_type(layer.get("type"), where)
    lrs, decays = _as_list(layer.pop("blobs_lr", [])), _as_list(layer.pop("weight_decay", []))
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


def _phase_rules(layer, where):
    """Caffe's include/exclude by phase as one ``include`` list; stage and level rules are refused."""
    rules = {}
    for key in ("include", "exclude"):
        for rule in _as_list(layer.get(key, [])):
            if not isinstance(rule, dict):
                raise ConfigError(f"{where}, field {key!r}: expected a rule like {{phase: TRAIN}}, got {rule!r}")
            extra = sorted(set(rule) - {"phase"})
            if extra:
                raise ConfigError(f"{where}, field {key!r}: rule field(s) {', '.join(extra)} are not supported "
                                  "(minwa selects layers by phase only)")
            if "phase" in rule:
                phase = str(rule["phase"]).upper()
                if phase not in ("TRAIN", "TEST"):
                    raise ConfigError(f"{where}, field {key!r}: phase {rule['phase']!r}: expected TRAIN or TEST")
                rules.setdefault(key, set()).add(phase)
    phases = rules.get("include", {"TRAIN", "TEST"}) - rules.get("exclude", set())
    if not phases:
        raise ConfigError(f"{where}: include/exclude rules leave the layer in no phase")
    if phases == {"TRAIN", "TEST"}:
        return None
    return [{"phase": p} for p in sorted(phases, reverse=True)]


def _describe(layer, index):
    return f"layer {layer.get('name', f'#{index}')!r} ({layer.get('type', '?')})"


def _data_fields(layer):
    """transform + data options of a Caffe data layer, flattened (V1 kept them in the data param)."""
    kind = layer["type"]
    own = layer.get(_data_param_key(kind)) or {}
    transform = dict(layer.get("transform_param") or {})
    for key in ("scale", "mirror", "crop_size", "mean_file", "mean_value"):
        if key not in transform and key in own:
            transform[key] = own[key]
    return own, transform


def _data_param_key(kind):
    return {"Data": "data_param", "ImageData": "image_data_param", "HDF5Data": "hdf5_data_param",
            "MemoryData": "memory_data_param", "DummyData": "dummy_data_param"}[kind]


def _guess_shape(source):
    lowered = str(source or "").lower()
    for word, shape in _KNOWN_DATASET_SHAPES:
        if word in lowered:
            return shape, word
    return None, None


def _image_shape(layer, own, transform, input_shape, where):
    """(C, H, W) of a data layer's images: from the layer, the caller, or a known data set; notes say which."""
    notes = []
    channels = height = width = None
    kind = layer["type"]
    if kind == "MemoryData":
        channels, height, width = own.get("channels"), own.get("height"), own.get("width")
    elif kind == "ImageData":
        channels = 3 if own.get("is_color", True) else 1
        if own.get("new_height") and own.get("new_width"):
            height, width = own["new_height"], own["new_width"]
    if transform.get("force_gray"):
        channels = 1
    elif transform.get("force_color"):
        channels = 3
    if input_shape is not None:
        given = tuple(int(d) for d in input_shape)
        if len(given) != 3:
            raise ConfigError(f"input_shape {tuple(input_shape)}: expected (C, H, W)")
        channels, height, width = given
    elif None in (channels, height, width) and not transform.get("crop_size"):
        guess, word = _guess_shape(own.get("source"))
        if guess is not None:
            channels = channels or guess[0]
            height, width = height or guess[1], width or guess[2]
            notes.append(f"{where}: image shape {channels}x{height}x{width} guessed from the source name "
                         f"({word!r} in {own.get('source')!r}); give input_shape (--input-shape C,H,W) if it differs")
    elif channels is None:
        guess, word = _guess_shape(own.get("source"))
        if guess is not None:
            channels = guess[0]
            notes.append(f"{where}: {channels} channel(s) guessed from the source name ({word!r}); "
                         "give input_shape (--input-shape C,H,W) if it differs")
    crop = transform.get("crop_size")
    if crop:
        height = width = int(crop)
    if None in (channels, height, width):
        raise ConfigError(f"{where}: the image shape is not in the prototxt (Caffe reads it from the data "
                          f"source {own.get('source')!r}); give it as input_shape=(C, H, W) or --input-shape C,H,W")
    return (int(channels), int(height), int(width)), notes


def _data_to_input(layer, input_shape, where):
    """A Caffe data layer -> (an Input layer with the same tops, the data hint, notes)."""
    kind = layer["type"]
    own, transform = _data_fields(layer)
    tops = _as_list(layer.get("top", []))
    if not tops:
        raise ConfigError(f"{where}: a data layer needs at least one top")
    notes = []
    if kind == "DummyData":
        shapes = [{"dim": list(s.get("dim", []))} for s in _as_list(own.get("shape", []))]
        if not shapes:
            counts = [_as_list(own.get(k, [])) for k in ("num", "channels", "height", "width")]
            shapes = [{"dim": [int(c[i]) for c in counts]} for i in range(min(len(c) for c in counts))]
        if not shapes:
            raise ConfigError(f"{where}: dummy_data_param gives no shape")
        hint = {"type": kind}
    else:
        batch = own.get("batch_size")
        if not batch:
            raise ConfigError(f"{where}, field {_data_param_key(kind)!r}: missing batch_size")
        image, notes = _image_shape(layer, own, transform, input_shape, where)
        shapes = [{"dim": [int(batch), *image]}] + [{"dim": [int(batch)]} for _ in tops[1:]]
        hint = {"type": kind, "batch_size": int(batch), "input_shape": list(image)}
        for key in ("source", "backend", "root_folder", "shuffle", "new_height", "new_width"):
            if key in own:
                hint[key] = own[key]
        for key in ("mean_file", "mean_value", "crop_size", "mirror", "scale", "force_color", "force_gray"):
            if key in transform:
                hint[key] = transform[key]
    spec = {"name": layer.get("name", tops[0]), "type": "Input", "top": tops,
            "input_param": {"shape": shapes}}
    return spec, hint, notes


def _legacy_inputs(net, input_shape):
    """Old-style ``input:`` / ``input_dim:`` / ``input_shape {}`` declarations -> Input layers."""
    names = _as_list(net.get("input", []))
    if not names:
        return []
    shapes = [list(s.get("dim", [])) for s in _as_list(net.get("input_shape", []))]
    dims = [int(d) for d in _as_list(net.get("input_dim", []))]
    if not shapes and dims:
        if len(dims) != 4 * len(names):
            raise ConfigError(f"net: {len(dims)} input_dim values for {len(names)} input(s); Caffe needs 4 per input")
        shapes = [dims[4 * i:4 * i + 4] for i in range(len(names))]
    if len(shapes) != len(names):
        raise ConfigError(f"net: {len(names)} input(s) {names} but {len(shapes)} shape(s) "
                          "(input_shape {dim: ...} or 4 input_dim values each)")
    return [{"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": shape}]}}
            for name, shape in zip(names, shapes)]


def _check_fields(spec, where, known_types):
    kind = spec["type"]
    if known_types is not None and kind not in known_types and kind not in PIPELINE_LAYER_TYPES:
        raise ConfigError(f"{where}: layer type {kind!r} is not supported by minwa; supported types: "
                          f"{', '.join(sorted(known_types | set(PIPELINE_LAYER_TYPES)))}")
    allowed = set(_COMMON_LAYER_FIELDS) | {_param_key(kind)} | set(PIPELINE_LAYER_TYPES.get(kind, ()))
    if kind.endswith("Loss"):
        allowed.add("loss_param")
    for key in spec:
        if key in allowed:
            continue
        if key == "blobs":
            raise ConfigError(f"{where}, field 'blobs': weights stored inside a prototxt are not supported; "
                              "load weights from a checkpoint or .npz instead")
        if key.endswith("_param"):
            raise ConfigError(f"{where}, field {key!r}: not used by {kind} layers (expected {_param_key(kind)!r})")
        raise ConfigError(f"{where}, field {key!r}: not supported by minwa")


def _simplify_convolution(spec):
    """Caffe's repeated kernel_size/stride/pad/dilation given once -> a plain number, as YAML configs write it."""
    options = spec.get("convolution_param")
    if not isinstance(options, dict):
        return
    for key in ("kernel_size", "stride", "pad", "dilation"):
        value = options.get(key)
        if isinstance(value, list) and len(value) == 1:
            options[key] = value[0]


def net_to_model(net, input_shape=None, check_types=True, notes=None):
    """A parsed NetParameter -> (model dict, data hint).

    ``model`` is ``{"name", "layers": [...]}`` in Caffe's schema; Caffe's data layers
    (Data, ImageData, HDF5Data, MemoryData, DummyData) become ``Input`` layers with
    the same tops, shaped from batch_size and crop_size (``input_shape=(C, H, W)``
    fills what the prototxt does not say). The data hint is ``{"train": {...},
    "test": {...}}`` (batch_size, source, mean_file, crop_size, mirror, scale, ...)
    for whoever builds the data pipeline. ``notes`` (a list) collects guesses made.
    """
    if not isinstance(net, dict):
        raise ConfigError(f"net: expected a parsed NetParameter (a mapping), got {type(net).__name__}")
    notes = notes if notes is not None else []
    if "layer" in net and "layers" in net:
        raise ConfigError("net: mixes 'layer' and the old 'layers' entries; Caffe accepts one kind per file")
    v1 = "layers" in net
    raw_layers = _as_list(net.get("layers" if v1 else "layer", []))
    known = _known_layer_types() if check_types else None
    layers = _legacy_inputs(net, input_shape)
    hint = {}
    for index, raw in enumerate(raw_layers):
        if not isinstance(raw, dict):
            raise ConfigError(f"net: layer #{index} is not a message")
        if "layer" in raw and "type" not in raw:
            raise ConfigError(f"net: layer #{index} uses Caffe's V0 format (layers {{ layer {{...}} }}); "
                              "upgrade it with Caffe's upgrade_net_proto_text first")
        layer = _upgrade_v1(raw, _describe(raw, index)) if v1 else dict(raw)
        where = _describe(layer, index)
        if "type" not in layer:
            raise ConfigError(f"{where}: missing 'type'")
        if not isinstance(layer["type"], str):
            raise ConfigError(f"{where}: type {layer['type']!r} is not a layer type name")
        include = _phase_rules(layer, where)
        for key in ("include", "exclude", *_IGNORED_LAYER_FIELDS):
            layer.pop(key, None)
        if layer["type"] in DATA_LAYER_TYPES:
            spec, data_hint, data_notes = _data_to_input(layer, input_shape, where)
            notes.extend(data_notes)
            for phase in ([r["phase"] for r in include] if include else ["TRAIN", "TEST"]):
                hint.setdefault(phase.lower(), data_hint)
        else:
            spec = {key: value for key, value in layer.items() if key != "transform_param"}
            if "transform_param" in layer:
                notes.append(f"{where}: transform_param is only read on data layers; dropped")
            for key in ("bottom", "top"):
                if key in spec:
                    spec[key] = _as_list(spec[key])
            for key in ("param",):
                if key in spec:
                    spec[key] = [p if isinstance(p, dict) else {"name": p} for p in _as_list(spec[key])]
            _check_fields(spec, where, known)
            _simplify_convolution(spec)
        if include:
            spec["include"] = include
        layers.append(spec)
    if not layers:
        raise ConfigError("net: no layers (expected 'layer { ... }' entries)")
    unknown = sorted(set(net) - {"name", "layer", "layers", "input", "input_shape", "input_dim",
                                 "force_backward", "state", "debug_info"})
    if unknown:
        raise ConfigError(f"net: field(s) {', '.join(unknown)} are not supported in a NetParameter")
    model = {"name": str(net.get("name", "net")), "layers": layers}
    return model, hint


def solver_to_dict(solver, notes=None):
    """A parsed SolverParameter -> minwa's solver block (Caffe's field names and meaning)."""
    if not isinstance(solver, dict):
        raise ConfigError(f"solver: expected a parsed SolverParameter (a mapping), got {type(solver).__name__}")
    notes = notes if notes is not None else []
    out = {}
    for key, value in solver.items():
        if key in _SOLVER_KEPT:
            out[key] = value
        elif key == "solver_type":
            kind = _SOLVER_TYPES.get(str(value).upper())
            if kind is None:
                raise ConfigError(f"solver, field 'solver_type': unknown value {value!r}; "
                                  f"expected one of {', '.join(_SOLVER_TYPES)}")
            if "type" in solver and str(solver["type"]).lower() != kind.lower():
                raise ConfigError(f"solver: 'type: {solver['type']}' and 'solver_type: {value}' disagree")
            out.setdefault("type", kind)
        elif key in _SOLVER_IGNORED:
            notes.append(f"solver: {key} is Caffe-specific; ignored")
        elif key == "train_net":
            out["net"] = value
        elif key in ("net_param", "train_net_param", "test_net", "test_net_param", "train_state", "test_state",
                     "weights"):
            raise ConfigError(f"solver, field {key!r}: not supported by minwa (give the net as a separate "
                              "prototxt with its TRAIN and TEST layers)")
        else:
            raise ConfigError(f"solver, field {key!r}: not a SolverParameter field minwa knows")
    if "type" in out:
        out["type"] = _SOLVER_TYPES.get(str(out["type"]).upper(), out["type"])
    if "test_iter" in out:
        iters = _as_list(out["test_iter"])
        if len(iters) != 1:
            raise ConfigError(f"solver, field 'test_iter': {len(iters)} values given; minwa runs one test net")
        out["test_iter"] = iters[0]
    if "stepvalue" in out:
        out["stepvalue"] = _as_list(out["stepvalue"])
    return out


def net_from_prototxt(path, input_shape=None, check_types=True, notes=None):
    """(model dict, data hint) of a Caffe net .prototxt file; see ``net_to_model``."""
    parsed = read_prototxt(path)
    try:
        return net_to_model(parsed, input_shape=input_shape, check_types=check_types, notes=notes)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def solver_from_prototxt(path, notes=None):
    """The solver block of a Caffe solver .prototxt file; see ``solver_to_dict``."""
    parsed = read_prototxt(path)
    try:
        return solver_to_dict(parsed, notes=notes)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def is_prototxt(path):
    """True for names minwa reads as Caffe text format."""
    return os.path.splitext(str(path))[1].lower() in (".prototxt", ".pbtxt")
