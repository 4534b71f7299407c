"""The layer registry, keyed by Caffe type names (Caffe's REGISTER_LAYER_CLASS)."""

_LAYERS = {}


def register(cls):
    """Class decorator: make ``cls`` buildable by its ``type`` name."""
    name = cls.type
    if not name:
        raise TypeError(f"{cls.__name__} has no 'type' name to register under")
    if name in _LAYERS:
        raise ValueError(f"layer type {name!r} is registered twice ({_LAYERS[name].__name__} and {cls.__name__})")
    _LAYERS[name] = cls
    return cls


def known_types():
    return sorted(_LAYERS)


def layer_class(type_name):
    """The class registered as ``type_name``; an unknown name lists the known ones."""
    try:
        return _LAYERS[type_name]
    except KeyError:
        raise KeyError(f"unknown layer type {type_name!r}; known types: {', '.join(known_types())}") from None
