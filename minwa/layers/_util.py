"""Small helpers shared by the layer files: option parsing and gradient plumbing."""


def count(shape, start=0, end=None):
    """Product of ``shape[start:end]`` (Caffe's Blob::count)."""
    n = 1
    for d in tuple(shape)[start:end]:
        n *= int(d)
    return n


def canonical_axis(layer, axis, ndim, field="axis"):
    """A non-negative axis index, or a clear error naming the layer and field."""
    try:
        axis = int(axis)
    except (TypeError, ValueError):
        raise layer.error(f"expected an integer axis, got {axis!r}", field) from None
    if not -ndim <= axis < ndim:
        raise layer.error(f"axis {axis} is out of range for a {ndim}-d blob", field)
    return axis % ndim


def number(layer, key, default, kind=float, minimum=None, above=None):
    """``<type>_param.key`` converted to ``kind`` and range-checked."""
    value = layer.option(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise layer.error(f"expected a number, got {value!r}", key) from None
    if kind is int and isinstance(layer.option(key, default), float) and layer.option(key) != int(value):
        raise layer.error(f"expected an integer, got {layer.option(key)!r}", key)
    if minimum is not None and value < minimum:
        raise layer.error(f"must be >= {minimum}, got {value}", key)
    if above is not None and value <= above:
        raise layer.error(f"must be > {above}, got {value}", key)
    return value


def boolean(layer, key, default):
    value = layer.option(key, default)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise layer.error(f"expected true or false, got {value!r}", key)
    return bool(value)


def choice(layer, key, default, allowed):
    """An enum field (Caffe writes them in capitals, e.g. pool: MAX)."""
    value = layer.option(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(allowed):
        return allowed[value]  # prototxt enums may arrive as their numbers
    text = str(value).upper()
    if text not in allowed:
        raise layer.error(f"expected one of {', '.join(allowed)}, got {value!r}", key)
    return text


def filler_spec(layer, key, default):
    """A filler mapping (``weight_filler`` etc.), with Caffe's default when absent."""
    value = layer.option(key)
    if value is None:
        return dict(default)
    if not isinstance(value, dict):
        raise layer.error(f"expected a filler mapping like {{type: gaussian, std: 0.01}}, got {value!r}", key)
    return dict(value)


def zeros_like_top(xp, grad, shape, dtype):
    """``grad`` or zeros when the Net passed None for an unused top."""
    return xp.zeros(shape, dtype=dtype) if grad is None else grad


def shape_error(layer, message):
    from ..errors import ShapeError

    return ShapeError(f"layer {layer.name!r} ({layer.type}): {message}")


def spatial_pair(layer, name, default, minimum=0):
    """Caffe's ``name`` / ``name_h`` + ``name_w`` pair for 2-d layers (e.g. kernel_size, kernel_h, kernel_w).

    ``name`` may be one number or a list of one or two; the _h/_w forms win when given.
    """
    base = name.removesuffix("_size")
    value = layer.option(name)
    h_key, w_key = f"{base}_h", f"{base}_w"
    h, w = layer.option(h_key), layer.option(w_key)
    if (h is None) != (w is None):
        raise layer.error(f"give both {h_key} and {w_key}, or {name}", h_key if h is None else w_key)
    if h is not None:
        if value is not None:
            raise layer.error(f"give either {name} or {h_key}/{w_key}, not both", name)
        pair = (h, w)
    elif value is None:
        if default is None:
            raise layer.error(f"missing {name} (or {h_key} and {w_key})", name)
        pair = (default, default)
    else:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(items) == 1:
            items = items * 2
        if len(items) != 2:
            raise layer.error(f"expected one or two values for a 2-d layer, got {value!r}", name)
        pair = tuple(items)
    out = []
    for v in pair:
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise layer.error(f"expected an integer, got {v!r}", name) from None
        if iv != v or iv < minimum:
            raise layer.error(f"expected an integer >= {minimum}, got {v!r}", name)
        out.append(iv)
    return tuple(out)


def four_d(layer, shape):
    if len(shape) != 4:
        raise shape_error(layer, f"expects a 4-d (N, C, H, W) input, got shape {tuple(shape)}")
    return tuple(int(d) for d in shape)
