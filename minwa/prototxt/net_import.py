"""A Caffe NetParameter (a net .prototxt) mapped onto minwa's model dict (Caffe's schema as YAML)."""
from ..errors import ConfigError
from ..schema.caffe_files import net_file
from ..schema.caffe_layers import LAYER_PARAMS, check_layer
from ..schema.field import closest
from .data_layers import DATA_LAYER_TYPES, data_to_input, legacy_inputs
from .text_format import read_prototxt
from .v1_upgrade import as_list, upgrade_v1

#: The pipeline papers' cross-process layers (a later part of minwa runs them); their options are kept as given.
PIPELINE_LAYER_TYPES = {"Sink": ("sink_param",), "Source": ("source_param", "reshape_param")}
#: Layer fields Caffe itself ignores at run time or that only mean something to Caffe's C++ code.
_IGNORED_LAYER_FIELDS = {"phase"}

def _known_layer_types():
    from .. import layers  # noqa: PLC0415 - registers the layer classes

    return set(layers.known_types())


def _phase_rules(layer, where):
    """Caffe's include/exclude by phase as one ``include`` list; stage and level rules are refused."""
    rules = {}
    for key in ("include", "exclude"):
        for rule in as_list(layer.get(key, [])):
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


def _check_fields(spec, where, known_types):
    """The layer against minwa's declared schema (minwa.schema), after the prototxt-only refusals."""
    kind = spec["type"]
    if kind in PIPELINE_LAYER_TYPES:
        return  # options kept as given until the pipeline layers are declared
    if known_types is not None and kind not in known_types:
        raise ConfigError(f"{where}: layer type {kind!r} is not supported by minwa; supported types: "
                          f"{', '.join(sorted(known_types | set(PIPELINE_LAYER_TYPES)))}")
    if "blobs" in spec:
        raise ConfigError(f"{where}, field 'blobs': weights stored inside a prototxt are not supported; "
                          "load weights from a checkpoint or .npz instead")
    if kind in LAYER_PARAMS:
        check_layer(spec, where)


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
    raw_layers = as_list(net.get("layers" if v1 else "layer", []))
    known = _known_layer_types() if check_types else None
    layers = legacy_inputs(net, input_shape)
    hint = {}
    for index, raw in enumerate(raw_layers):
        if not isinstance(raw, dict):
            raise ConfigError(f"net: layer #{index} is not a message")
        if "layer" in raw and "type" not in raw:
            raise ConfigError(f"net: layer #{index} uses Caffe's V0 format (layers {{ layer {{...}} }}); "
                              "upgrade it with Caffe's upgrade_net_proto_text first")
        layer = upgrade_v1(raw, _describe(raw, index)) if v1 else dict(raw)
        where = _describe(layer, index)
        if "type" not in layer:
            raise ConfigError(f"{where}: missing 'type'")
        if not isinstance(layer["type"], str):
            raise ConfigError(f"{where}: type {layer['type']!r} is not a layer type name")
        include = _phase_rules(layer, where)
        for key in ("include", "exclude", *_IGNORED_LAYER_FIELDS):
            layer.pop(key, None)
        if layer["type"] in DATA_LAYER_TYPES:
            spec, data_hint, data_notes = data_to_input(layer, input_shape, where)
            notes.extend(data_notes)
            for phase in ([r["phase"] for r in include] if include else ["TRAIN", "TEST"]):
                hint.setdefault(phase.lower(), data_hint)
        else:
            spec = {key: value for key, value in layer.items() if key != "transform_param"}
            if "transform_param" in layer:
                notes.append(f"{where}: transform_param is only read on data layers; dropped")
            for key in ("bottom", "top"):
                if key in spec:
                    spec[key] = as_list(spec[key])
            for key in ("param",):
                if key in spec:
                    spec[key] = [p if isinstance(p, dict) else {"name": p} for p in as_list(spec[key])]
            _check_fields(spec, where, known)
            _simplify_convolution(spec)
        if include:
            spec["include"] = include
        layers.append(spec)
    if not layers:
        raise ConfigError("net: no layers (expected 'layer { ... }' entries)")
    unknown = sorted(set(net) - set(net_file().fields))
    if unknown:
        near = closest(unknown[0], net_file().fields)
        hint = f"; did you mean {near!r}?" if near else ""
        raise ConfigError(f"net: field(s) {', '.join(unknown)} are not NetParameter fields{hint}")
    model = {"name": str(net.get("name", "net")), "layers": layers}
    return model, hint


def net_from_prototxt(path, input_shape=None, check_types=True, notes=None):
    """(model dict, data hint) of a Caffe net .prototxt file; see ``net_to_model``."""
    parsed = read_prototxt(path)
    try:
        return net_to_model(parsed, input_shape=input_shape, check_types=check_types, notes=notes)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
