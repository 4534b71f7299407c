"""HDF5 checkpoints: every parameter, the solver state, counters, RNG states and the config, for exact resume.

A checkpoint is written to a temporary file beside its final name, flushed to disk
(fsync) and renamed over the final name, then the directory entry is synced too; so
a process killed while writing leaves either the previous checkpoint or the new
one at that name, never a torn file. Parameters are stored by name under
``/params`` (with HDF5 Fletcher-32 checksums, so silent corruption is caught on
read), the solver's ``state_dict()`` under ``/solver``, the caller's state dict
(step, epoch, config text, anything JSON-like or array-valued) under ``/state``,
and the RNG states as one JSON attribute ``rng``.
"""
import contextlib
import io
import json
import os
import socket
from urllib.parse import quote

import numpy

from . import __version__, backend
from .checkpoint_directory import (  # noqa: F401 - the directory side of checkpoints, re-exported
    checkpoint_path,
    keep_last,
    latest_checkpoint,
    list_checkpoints,
    remove_stale_temps,
)
from .errors import DataError

FORMAT = "minwa-checkpoint"
FORMAT_VERSION = 1
#: Strings longer than this go to a dataset instead of an attribute (HDF5 attributes are meant to be small).
_LONG_STRING = 4096


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is in install_requires
        raise DataError(f"checkpoints need h5py ({exc}); pip install h5py") from None
    return h5py


# --------------------------------------------------------------------------------------
# JSON with arrays and tuples (numpy Generator / RandomState states hold both)

def _to_json(value):
    if isinstance(value, numpy.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"checkpoint state: mapping key {bad[0]!r} is not a string")
        return {k: _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint state: cannot store a {type(value).__name__} ({value!r:.60})")


def _from_json(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return numpy.array(value["__ndarray__"], dtype=numpy.dtype(value["dtype"])).reshape(value["shape"])
        if "__tuple__" in value:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _dumps(value):
    return json.dumps(_to_json(value), allow_nan=True)


def _loads(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _from_json(json.loads(text))


# --------------------------------------------------------------------------------------
# nested dicts of arrays and scalars <-> HDF5 groups

def _is_array(value):
    return isinstance(value, numpy.ndarray) or backend.is_gpu_array(value)


def _write_array(group, name, array):
    host = numpy.ascontiguousarray(backend.to_host(array))
    checksum = host.ndim > 0 and host.size > 0
    return group.create_dataset(name, data=host, fletcher32=checksum)


def _write_tree(group, tree, where):
    """Dicts -> groups, arrays -> datasets, everything else -> JSON attributes; key order is kept."""
    if not isinstance(tree, dict):
        raise TypeError(f"checkpoint {where}: expected a mapping, got {type(tree).__name__}")
    keys = []
    for key, value in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"checkpoint {where}: key {key!r} is not a string")
        keys.append(key)
        name = quote(key, safe="")
        if isinstance(value, dict):
            _write_tree(group.create_group(name, track_order=True), value, f"{where}.{key}")
        elif _is_array(value):
            _write_array(group, name, value)
        elif isinstance(value, numpy.generic):
            group.create_dataset(name, data=value).attrs["__scalar__"] = True
        elif isinstance(value, str) and len(value) > _LONG_STRING:
            group.create_dataset(name, data=value, dtype=_h5py().string_dtype()).attrs["__str__"] = True
        else:
            try:
                group.attrs[name] = _dumps(value)
            except TypeError as exc:
                raise TypeError(f"checkpoint {where}.{key}: {exc}") from None
    group.attrs["__keys__"] = json.dumps(keys)


def _read_tree(group, where):
    keys = json.loads(group.attrs["__keys__"])
    out = {}
    for key in keys:
        name = quote(key, safe="")
        try:
            if name in group:
                item = group[name]
                if hasattr(item, "keys"):
                    out[key] = _read_tree(item, f"{where}.{key}")
                elif item.attrs.get("__str__", False):
                    out[key] = item.asstr()[()]
                elif item.attrs.get("__scalar__", False):
                    out[key] = item[()]
                else:
                    out[key] = item[()]
            else:
                out[key] = _loads(group.attrs[name])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{where}.{key} cannot be read ({exc})") from None
    return out


# --------------------------------------------------------------------------------------
# files

def _named_params(net):
    """(name, Param-or-array) pairs from a Net, a list of Params, or a {name: array} mapping."""
    if isinstance(net, dict):
        return list(net.items())
    return [(p.name, p) for p in getattr(net, "params", net)]


def _data_of(holder):
    """The array of a Param (its ``data``) or the array itself."""
    return holder if _is_array(holder) else holder.data


def _temp_name(path):
    directory, base = os.path.split(os.path.abspath(path))
    host = socket.gethostname().split(".")[0] or "host"
    return os.path.join(directory, f".{base}.tmp.{host}.{os.getpid()}")


def _fsync_path(path, directory=False):
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # some platforms cannot open directories; the rename is still atomic
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _commit(tmp, path):
    """fsync ``tmp``, rename it over ``path`` and sync the directory entry."""
    _fsync_path(tmp)
    os.replace(tmp, path)
    _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)


@contextlib.contextmanager
def _atomic(path):
    """Yield a temp name beside ``path``; on success commit it over ``path``, on any error remove it."""
    tmp = _temp_name(path)
    try:
        yield tmp
        _commit(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_bytes(path, data):
    """Write ``data`` atomically to ``path``; a full disk or another I/O error is a DataError, the old file kept."""
    try:
        with _atomic(path) as tmp, open(tmp, "wb") as out:
            out.write(data)
            out.flush()
    except OSError as exc:
        raise DataError(f"checkpoint {path}: cannot write its {len(data)} bytes: {exc.strerror or exc}; "
                        "nothing was replaced (the previous checkpoints are kept)") from None


def save_checkpoint(path, net, solver=None, state=None):
    """Write a checkpoint atomically; returns ``path``.

    ``net``: a Net (its ``params``), a list of Params, or ``{name: array}`` (e.g.
    parameters gathered from shards). ``solver``: a Solver (its ``state_dict()`` is
    stored) or an already-made state dict, or None. ``state``: a dict of
    ``iteration``/``step``, ``epoch``, ``config`` (text), ``rng`` ({name:
    Generator.bit_generator.state}) and any other JSON-like values or arrays.
    """
    h5py = _h5py()
    solver_state = solver.state_dict() if hasattr(solver, "state_dict") else solver
    state = dict(state or {})
    rng = state.pop("rng", None)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temps(directory)
    buffer = io.BytesIO()  # built in memory: h5py must never meet a full disk (it crashes on ENOSPC)
    with h5py.File(buffer, "w", track_order=True) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["minwa_version"] = __version__
        for key in ("iteration", "step", "epoch"):
            if isinstance(state.get(key), (int, numpy.integer)):
                f.attrs[key] = int(state[key])
        f.attrs["rng"] = _dumps(rng if rng is not None else {})
        params = f.create_group("params", track_order=True)
        names = []
        for name, param in _named_params(net):
            data = _data_of(param)  # one at a time: a single host copy of a GPU parameter at once
            if data is None:
                raise DataError(f"checkpoint {path}: parameter {name!r} has no data (net built with init=False?)")
            _write_array(params, quote(name, safe=""), data)
            names.append(name)
        params.attrs["__names__"] = json.dumps(names)
        if solver_state is not None:
            _write_tree(f.create_group("solver", track_order=True), solver_state, "solver")
        _write_tree(f.create_group("state", track_order=True), state, "state")
    _write_bytes(path, buffer.getbuffer())
    return path


def _open(path):
    h5py = _h5py()
    if not os.path.exists(path):
        raise DataError(f"checkpoint {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"checkpoint {path} cannot be opened: it is truncated, corrupt or not HDF5 ({exc})") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise DataError(f"{path} is not a minwa checkpoint (no format={FORMAT!r} attribute)")
    version = int(f.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        f.close()
        raise DataError(f"checkpoint {path} has format version {version}; this minwa reads up to "
                        f"{FORMAT_VERSION} (written by minwa {f.attrs.get('minwa_version')})")
    return f


def _read_params(f, path):
    group = f["params"]
    try:
        names = json.loads(group.attrs["__names__"])
    except KeyError:
        raise DataError(f"checkpoint {path}: the parameter list is missing (incomplete file)") from None
    out = {}
    for name in names:
        try:
            out[name] = group[quote(name, safe="")][()]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"checkpoint {path}: parameter {name!r} cannot be read: {exc}") from None
    return out


def _assign(net, saved, path, strict):
    """Check every name and shape first, then copy; a mismatch leaves the net untouched."""
    params = _named_params(net)
    wanted = {name for name, _ in params}
    missing = [name for name, _ in params if name not in saved]
    if missing:
        raise DataError(f"checkpoint {path} has no parameter {missing[0]!r} that the net needs "
                        f"({len(missing)} missing; it holds {', '.join(list(saved)[:8])}"
                        f"{', ...' if len(saved) > 8 else ''})")
    extra = [name for name in saved if name not in wanted]
    if extra and strict:
        raise DataError(f"checkpoint {path} holds parameter {extra[0]!r} that the net does not have "
                        f"({len(extra)} extra); pass strict=False to load the matching ones")
    for name, param in params:
        shape = tuple(param.shape) if _is_array(param) or _data_of(param) is None else tuple(_data_of(param).shape)
        if tuple(saved[name].shape) != shape:
            raise DataError(f"checkpoint {path}: parameter {name!r} has shape {tuple(saved[name].shape)} "
                            f"in the file but {shape} in the net")
    for name, param in params:
        host = saved[name]
        current = _data_of(param)
        if current is None:
            param.data = backend.to_device(host)
        else:
            xp = backend.xp_of(current)
            current[...] = xp.asarray(host.astype(current.dtype, copy=False))


def load_checkpoint(path, net=None, solver=None, strict=True):
    """Restore ``net``'s parameters (and ``solver``'s state) from ``path``; returns the state dict.

    The returned dict holds what ``save_checkpoint`` was given as ``state`` (step,
    epoch, config, rng, ...), plus ``solver`` (the stored solver state dict or None),
    ``minwa_version``, ``path``, and ``params`` ({name: array}) when no net is given.
    Raises DataError naming the file and parameter on a corrupt, truncated or
    mismatched checkpoint; the net is changed only when everything matched.
    """
    with _open(path) as f:
        saved = _read_params(f, path)
        try:
            solver_state = _read_tree(f["solver"], "solver") if "solver" in f else None
            info = _read_tree(f["state"], "state") if "state" in f else {}
            info["rng"] = _loads(f.attrs.get("rng", "{}"))
        except DataError as exc:
            raise DataError(f"checkpoint {path}: {exc}") from None
        info["minwa_version"] = str(f.attrs.get("minwa_version", "?"))
    if net is not None:
        _assign(net, saved, path, strict)
    else:
        info["params"] = saved
    if solver is not None:
        if solver_state is None:
            raise DataError(f"checkpoint {path} holds no solver state (saved without a solver)")
        try:
            solver.load_state_dict(solver_state)
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(f"checkpoint {path}: the solver state does not fit this solver: {exc}") from None
    info["solver"] = solver_state
    info["path"] = path
    return info


# --------------------------------------------------------------------------------------
# directories of checkpoints

def is_valid(path):
    """True when ``path`` opens as a complete minwa checkpoint."""
    try:
        with _open(path) as f:
            return "__names__" in f["params"].attrs
    except (DataError, OSError, KeyError):
        return False


def export_npz(path_h5, out_npz):
    """Write a checkpoint's parameters to a numpy .npz ({param name: array}); returns ``out_npz``."""
    with _open(path_h5) as f:
        saved = _read_params(f, path_h5)
    out_npz = str(out_npz)
    if not out_npz.endswith(".npz"):
        out_npz += ".npz"
    directory = os.path.dirname(os.path.abspath(out_npz))
    os.makedirs(directory, exist_ok=True)
    with _atomic(out_npz) as tmp, open(tmp, "wb") as f:
        numpy.savez(f, **saved)
    return out_npz


def describe(path):
    """A short text summary of a checkpoint (for users and error messages)."""
    info = load_checkpoint(path)
    step = info.get("step", info.get("iteration", "?"))
    sizes = sum(a.size for a in info["params"].values())
    return (f"{path}: step {step}, {len(info['params'])} parameters ({sizes} values), "
            f"solver state {'yes' if info['solver'] is not None else 'no'}, minwa {info['minwa_version']}")
