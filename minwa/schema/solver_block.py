"""The ``solver:`` block: the SolverParameter fields minwa reads, with Caffe's types and defaults.

``random_seed`` defaults to 0 (Caffe: -1, "pick one"), so runs repeat unless told
otherwise. Caffe fields that only steer Caffe's own process (``solver_mode``,
``device_id``) are accepted and have no effect: minwa picks its backend itself.
"""
from .field import Field, Message

SOLVER_TYPES = ("SGD", "Nesterov", "Adam")
LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")

SOLVER = Message("SolverParameter", {
    "type": Field("enum", "SGD", choices=SOLVER_TYPES),
    "solver_type": Field("enum", choices=("SGD", "NESTEROV", "ADAM"), doc="legacy spelling of type"),
    "base_lr": Field("float", 0.01, above=0.0),
    "momentum": Field("float", 0.0, minimum=0.0, below=1.0),
    "momentum2": Field("float", 0.999, minimum=0.0, below=1.0),
    "delta": Field("float", 1e-8, above=0.0),
    "weight_decay": Field("float", 0.0, minimum=0.0),
    "regularization_type": Field("enum", "L2", choices=("L1", "L2")),
    "lr_policy": Field("enum", "fixed", choices=LR_POLICIES),
    "gamma": Field("float", 0.1), "power": Field("float", 1.0),
    "stepsize": Field("int", 0, minimum=0),
    "stepvalue": Field("int", (), repeated=True, minimum=0),
    "max_iter": Field("int", 1000, minimum=0),
    "iter_size": Field("int", 1, minimum=1, doc="accumulate gradients over this many batches per update"),
    "test_interval": Field("int", 0, minimum=0),
    "test_iter": Field("int", 0, repeated=True, minimum=0),
    "test_initialization": Field("bool", True),
    "display": Field("int", 100, minimum=0),
    "average_loss": Field("int", 1, minimum=0),
    "snapshot": Field("int", 0, minimum=0),
    "snapshot_prefix": Field("str", ""),
    "snapshot_format": Field("enum", "HDF5", choices=("HDF5", "BINARYPROTO")),
    "random_seed": Field("int", 0, minimum=0),
    "clip_gradients": Field("float", -1.0),
    "net": Field("str"),
    "test_compute_loss": Field("bool", False),
    "solver_mode": Field("enum", choices=("CPU", "GPU"), doc="accepted; minwa picks its backend"),
    "device_id": Field("int", minimum=0, doc="accepted; minwa binds devices by local rank"),
})
