"""The rest of caffe.proto that a Caffe file may hold: nets, V1 layers, data layers, solver files.

minwa does not run these messages (its data pipeline replaces Caffe's data layers,
stages are refused), but the prototxt reader must know which of their fields are
``repeated`` to build the same lists Caffe would; ``repeated_fields()`` derives that
table from these declarations and from the layer schema, so it cannot drift from them.
"""
from .caffe_layers import BLOB_SHAPE, FILLER, LAYER_COMMON, LAYER_PARAMS, STATE_RULE
from .field import Field, Message
from .solver_block import SOLVER

TRANSFORM = Message("TransformationParameter", {
    "scale": Field("float", 1.0), "mirror": Field("bool", False), "crop_size": Field("int", 0, minimum=0),
    "mean_file": Field("str"), "mean_value": Field("float", repeated=True),
    "force_color": Field("bool", False), "force_gray": Field("bool", False),
})
_LEGACY_TRANSFORM = {k: TRANSFORM.fields[k] for k in ("scale", "mirror", "crop_size", "mean_file")}
DATA_LAYER_PARAMS = {
    "data_param": Message("DataParameter", {
        "source": Field("str"), "batch_size": Field("int", minimum=1),
        "backend": Field("enum", choices=("LEVELDB", "LMDB")),
        "rand_skip": Field("int"), "prefetch": Field("int"), **_LEGACY_TRANSFORM}),
    "image_data_param": Message("ImageDataParameter", {
        "source": Field("str"), "batch_size": Field("int", minimum=1), "shuffle": Field("bool"),
        "new_height": Field("int"), "new_width": Field("int"), "is_color": Field("bool", True),
        "root_folder": Field("str"), "rand_skip": Field("int"), **_LEGACY_TRANSFORM}),
    "hdf5_data_param": Message("HDF5DataParameter", {
        "source": Field("str"), "batch_size": Field("int", minimum=1), "shuffle": Field("bool")}),
    "memory_data_param": Message("MemoryDataParameter", {
        "batch_size": Field("int", minimum=1), "channels": Field("int"), "height": Field("int"),
        "width": Field("int")}),
    "dummy_data_param": Message("DummyDataParameter", {
        "data_filler": Field("message", repeated=True, message=FILLER),
        "shape": Field("message", repeated=True, message=BLOB_SHAPE),
        **{k: Field("int", repeated=True) for k in ("num", "channels", "height", "width")}}),
}
#: option blocks of Caffe layers minwa does not run; declared for their repeated fields only
_FOREIGN_PARAMS = {
    "slice_param": Message("SliceParameter", {"slice_point": Field("int", repeated=True)}),
    "crop_param": Message("CropParameter", {"offset": Field("int", repeated=True)}),
}
BLOB = Message("BlobProto", {
    "shape": Field("message", message=BLOB_SHAPE),
    **{k: Field("float", repeated=True) for k in ("data", "diff", "double_data", "double_diff")},
})
NET_STATE = Message("NetState", {"phase": STATE_RULE.fields["phase"], "level": Field("int"),
                                 "stage": Field("str", repeated=True)})
FULL_STATE_RULE = STATE_RULE.extend(min_level=Field("int"), max_level=Field("int"),
                                    stage=Field("str", repeated=True), not_stage=Field("str", repeated=True))


def _layer_file():
    blocks = {key: Field("message", message=m) for b in LAYER_PARAMS.values() for key, m in b.items()}
    blocks.update({key: Field("message", message=m) for key, m in {**DATA_LAYER_PARAMS, **_FOREIGN_PARAMS}.items()})
    rule = Field("message", repeated=True, message=FULL_STATE_RULE)
    return LAYER_COMMON.extend(**blocks, phase=STATE_RULE.fields["phase"], include=rule, exclude=rule,
                               propagate_down=Field("bool", repeated=True),
                               blobs=Field("message", repeated=True, message=BLOB),
                               transform_param=Field("message", message=TRANSFORM))


def net_file():
    """NetParameter (with the V1 ``layers`` entries) as a Caffe net file holds it."""
    layer = _layer_file()
    v1 = layer.extend(blobs_lr=Field("float", repeated=True), weight_decay=Field("float", repeated=True),
                      blob_share_mode=Field("str", repeated=True), param=Field("str", repeated=True))
    return Message("NetParameter", {
        "name": Field("str"), "layer": Field("message", repeated=True, message=layer),
        "layers": Field("message", repeated=True, message=v1), "input": Field("str", repeated=True),
        "input_shape": Field("message", repeated=True, message=BLOB_SHAPE), "input_dim": Field("int", repeated=True),
        "force_backward": Field("bool", False), "state": Field("message", message=NET_STATE),
        "debug_info": Field("bool", False),
    })


def solver_file():
    """SolverParameter as a Caffe solver file holds it (minwa's solver block plus Caffe-only fields)."""
    net = Field("message", message=net_file())
    return SOLVER.extend(
        train_net=Field("str"), test_net=Field("str", repeated=True), net_param=net, train_net_param=net,
        test_net_param=Field("message", repeated=True, message=net.message),
        train_state=Field("message", message=NET_STATE), test_state=Field("message", repeated=True, message=NET_STATE),
        weights=Field("str", repeated=True), snapshot_diff=Field("bool"), snapshot_after_train=Field("bool"),
        debug_info=Field("bool"), layer_wise_reduce=Field("bool"))


def repeated_fields():
    """{name of the field holding a message ("" for the file): names of its repeated fields}."""
    table = {}

    def walk(name, message, seen):
        table.setdefault(name, set()).update(k for k, f in message.fields.items() if f.repeated)
        for key, field in message.fields.items():
            if field.kind == "message" and (key, field.message.name) not in seen:
                walk(key, field.message, seen | {(key, field.message.name)})

    walk("", net_file(), frozenset())
    walk("", solver_file(), frozenset())
    return table
