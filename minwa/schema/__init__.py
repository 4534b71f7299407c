"""minwa's declared config schema: every key a job may hold, with its type, default and range.

One place says what each block accepts, so that an unknown key anywhere is an error naming
it and the closest known key ("did you mean 'stride'?"), and a value of the wrong type
(``num_output: true``) is refused, before any compute:

- ``caffe_layers``: each layer type's option blocks (``convolution_param`` ...), the fields
  every layer carries, fillers and ``param`` entries; checked by ``Net`` for every layer.
- ``solver_block``: the ``solver:`` block (Caffe's SolverParameter fields minwa reads).
- ``job_blocks``: ``train:``, ``parallel:``, ``data:`` (and ``augment:`` through
  ``minwa.augment``); checked by ``minwa.config.load_config``.
- ``caffe_files``: the rest of caffe.proto a .prototxt may hold (nets, V1 layers, data
  layers, solver files); the prototxt reader takes its repeated-field table from here.

Declarative tables (``Field``/``Message``) rather than pydantic or jsonschema: no new
dependency, messages in minwa's own words (place, key, closest key), and the same
declarations double as the protobuf schema the prototxt reader needs.

How to declare something new:

- a layer type: a ``Message`` of its option block in ``caffe_layers`` plus a line in
  ``LAYER_PARAMS`` (``"Sink": {"sink_param": SINK}``), or ``declare_layer("Sink", {...})``
  from the layer's own module; a registered type without a declaration is refused.
- a field of an existing block: a ``Field`` in its table, e.g. in ``INNER_PRODUCT``:
  ``"shard": Field("bool", False)``; ``Field(kind, default, repeated=, choices=,
  minimum=, maximum=, above=, below=)`` with kind int | float | bool | str | enum |
  message | any.
- a ``train:`` / ``data:`` / ``parallel:`` key: add it where the module that reads it lists
  its keys (``config.TRAIN_DEFAULTS``, ``datasets.DATA_KEYS``, ``parallel.data_options.OPTIONS``)
  and its type to ``TRAIN_FIELDS`` / ``DATA_FIELDS`` / ``PARALLEL_FIELDS``
  (``"timeout_s": Field("float", 300.0, above=0.0)``); tests/schema fails until both are there.
- a ``solver:`` key: a ``Field`` in ``solver_block.SOLVER``.
"""
from .caffe_layers import LAYER_PARAMS, check_layer, declare_layer, param_key
from .field import Field, Message

__all__ = ["LAYER_PARAMS", "Field", "Message", "check_layer", "declare_layer", "param_key"]
