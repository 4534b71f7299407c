"""Net signatures: ranks compare their nets before training and name the first difference."""


def net_signature(net, settings):
    """What every rank's net must agree on: dtype, layers, parameter shapes and multipliers, settings."""
    layers = [(layer.name, layer.type) for layer in net.layers]
    params = [(p.name, tuple(p.shape), p.lr_mult, p.decay_mult) for p in net.params]
    return {"dtype": str(net.dtype), "layers": layers, "params": params, "settings": settings}


def first_difference(ref, other):
    """Words for the first way ``other``'s net signature differs from rank 0's ``ref``."""
    for key in ("settings", "dtype"):
        if ref[key] != other[key]:
            if key == "dtype":
                return f"net dtype is {ref[key]} on rank 0 but {other[key]} here"
            for name in ref[key]:
                if ref[key][name] != other[key].get(name):
                    return f"parallel.{name} is {ref[key][name]!r} on rank 0 but {other[key].get(name)!r} here"
    for what, unit in (("layers", "layer"), ("params", "parameter")):
        for i, (a, b) in enumerate(zip(ref[what], other[what])):
            if a != b:
                if what == "layers":
                    return f"layer #{i} is {a[0]!r} ({a[1]}) on rank 0 but {b[0]!r} ({b[1]}) here"
                fields = ("name", "shape", "lr_mult", "decay_mult")
                diffs = [f"{f} {x!r} vs {y!r}" for f, x, y in zip(fields, a, b) if x != y]
                return f"parameter #{i} {a[0]!r}: {', '.join(diffs)} (rank 0 vs here)"
        if len(ref[what]) != len(other[what]):
            return f"rank 0 has {len(ref[what])} {unit}s, this rank {len(other[what])}"
    return "the nets differ"
