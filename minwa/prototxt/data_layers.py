"""Caffe's data layers (Data, ImageData, HDF5Data, MemoryData, DummyData) turned into Input layers.

minwa reads data itself, so a data layer becomes an ``Input`` layer with the same tops,
shaped from its batch_size and crop_size; what it said about the data (source, mean,
mirror, ...) is returned as a hint for whoever builds the data pipeline.
"""
from ..errors import ConfigError
from .v1_upgrade import as_list

#: Caffe's data-reading layers; minwa reads data itself, so they become Input layers.
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "DummyData")
#: Known data sets, recognised in a data layer's source path, for the image shape the prototxt does not hold.
_KNOWN_DATASET_SHAPES = (("cifar", (3, 32, 32)), ("mnist", (1, 28, 28)), ("ilsvrc", (3, 256, 256)),
                         ("imagenet", (3, 256, 256)))


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


def data_to_input(layer, input_shape, where):
    """A Caffe data layer -> (an Input layer with the same tops, the data hint, notes)."""
    kind = layer["type"]
    own, transform = _data_fields(layer)
    tops = as_list(layer.get("top", []))
    if not tops:
        raise ConfigError(f"{where}: a data layer needs at least one top")
    notes = []
    if kind == "DummyData":
        shapes = [{"dim": list(s.get("dim", []))} for s in as_list(own.get("shape", []))]
        if not shapes:
            counts = [as_list(own.get(k, [])) for k in ("num", "channels", "height", "width")]
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


def legacy_inputs(net, input_shape):
    """Old-style ``input:`` / ``input_dim:`` / ``input_shape {}`` declarations -> Input layers."""
    names = as_list(net.get("input", []))
    if not names:
        return []
    shapes = [list(s.get("dim", [])) for s in as_list(net.get("input_shape", []))]
    dims = [int(d) for d in as_list(net.get("input_dim", []))]
    if not shapes and dims:
        if len(dims) != 4 * len(names):
            raise ConfigError(f"net: {len(dims)} input_dim values for {len(names)} input(s); Caffe needs 4 per input")
        shapes = [dims[4 * i:4 * i + 4] for i in range(len(names))]
    if len(shapes) != len(names):
        raise ConfigError(f"net: {len(names)} input(s) {names} but {len(shapes)} shape(s) "
                          "(input_shape {dim: ...} or 4 input_dim values each)")
    return [{"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": shape}]}}
            for name, shape in zip(names, shapes)]
