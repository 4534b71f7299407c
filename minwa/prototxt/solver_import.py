"""A Caffe SolverParameter (a solver .prototxt) mapped onto minwa's ``solver:`` block."""
from ..errors import ConfigError
from ..schema.field import closest
from ..schema.solver_block import SOLVER
from .text_format import read_prototxt
from .v1_upgrade import as_list

#: Caffe's old ``solver_type`` enum -> the ``type`` string.
_SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
                 "ADADELTA": "AdaDelta", "ADAM": "Adam"}
#: SolverParameter fields that only steer Caffe's own process (device, file formats, debug output).
_SOLVER_IGNORED = ("solver_mode", "device_id", "snapshot_format", "snapshot_diff", "snapshot_after_train",
                   "debug_info", "layer_wise_reduce", "test_compute_loss")
#: SolverParameter fields carried over unchanged: minwa's declared solver block.
_SOLVER_KEPT = tuple(k for k in SOLVER.fields if k not in _SOLVER_IGNORED and k != "solver_type")


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
            near = closest(key, (*SOLVER.fields, *_SOLVER_IGNORED))
            hint = f"; did you mean {near!r}?" if near else ""
            raise ConfigError(f"solver, field {key!r}: not a SolverParameter field minwa knows{hint}")
    if "type" in out:
        out["type"] = _SOLVER_TYPES.get(str(out["type"]).upper(), out["type"])
    if "test_iter" in out:
        iters = as_list(out["test_iter"])
        if len(iters) != 1:
            raise ConfigError(f"solver, field 'test_iter': {len(iters)} values given; minwa runs one test net")
        out["test_iter"] = iters[0]
    if "stepvalue" in out:
        out["stepvalue"] = as_list(out["stepvalue"])
    return out


def solver_from_prototxt(path, notes=None):
    """The solver block of a Caffe solver .prototxt file; see ``solver_to_dict``."""
    parsed = read_prototxt(path)
    try:
        return solver_to_dict(parsed, notes=notes)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
