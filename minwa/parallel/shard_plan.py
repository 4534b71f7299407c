"""ShardPlan: which InnerProduct layers model-data mode splits, and the layout of every blob between them.

A blob is in *batch* layout (this rank's samples, all features: what data parallelism
uses everywhere) or in *feature* layout (all samples of the global batch, this rank's
slice of a sharded layer's outputs). ReLU and Dropout keep a blob's layout; a sharded
layer's output stays feature-split only when everything that reads it (through
ReLU/Dropout) is another sharded layer, otherwise the layer hands it back in batch
layout. The plan is checked before anything is computed: ``shard: true`` on a
non-FC layer, more ranks than a layer has outputs, or a bad ``shard`` value each
raise a ConfigError naming the layer.
"""
from ..comm.partition import part_bounds
from ..errors import ConfigError

#: layers that act value by value and keep a blob's layout (no parameters, one bottom)
ELEMENTWISE = ("ReLU", "Dropout")


class ShardEntry:
    """One sharded layer: its index, input/output layouts, output bounds and upstream entry index."""

    def __init__(self, index, input, output, bounds, upstream):
        self.index, self.input, self.output, self.bounds, self.upstream = index, input, output, bounds, upstream


class ShardPlan:
    """The sharded layers of a net for ``size`` ranks, and the feature-split Dropout layers."""

    def __init__(self, layers, size):
        self.size = int(size)
        self.entries = {}
        self.feature_dropouts = {}  # layer index -> (start, stop, whole width) of the mask it draws
        chosen = [i for i, layer in enumerate(layers) if _wants_shard(layer)]
        for i in chosen:
            layer = layers[i]
            if int(getattr(layer, "axis", 1)) != 1:
                raise ConfigError(f"layer {layer.name!r} (InnerProduct): model-data mode shards only layers with "
                                  f"axis 1 (got axis {layer.axis}); set shard: false on it")
            if layer.num_output < self.size:
                raise ConfigError(f"layer {layer.name!r} (InnerProduct): {layer.num_output} outputs cannot be split "
                                  f"over {self.size} ranks (each needs at least one); use at most "
                                  f"{layer.num_output} ranks or set shard: false on it")
        chosen = set(chosen)
        layout = {}  # blob -> index of the sharded layer whose feature-split output it holds
        for i, layer in enumerate(layers):
            sources = [layout.get(b) for b in layer.bottoms]
            if i in chosen:
                upstream = sources[0]
                output = "feature" if _feeds_only(layers, i, chosen) else "batch"
                bounds = part_bounds(layer.num_output, self.size)
                self.entries[i] = ShardEntry(i, "batch" if upstream is None else "feature", output, bounds, upstream)
                _set(layout, layer.tops, i if output == "feature" else None)
            elif layer.type in ELEMENTWISE and sources and sources[0] is not None:
                if layer.type == "Dropout":
                    bounds = self.entries[sources[0]].bounds
                    self.feature_dropouts[i] = bounds[-1][1], bounds
                _set(layout, layer.tops, sources[0])
            else:
                if any(s is not None for s in sources):  # _feeds_only rules this out; kept as a guard
                    raise ConfigError(f"layer {layer.name!r} ({layer.type}) cannot read a feature-split blob")
                _set(layout, layer.tops, None)

    @property
    def indices(self):
        return sorted(self.entries)

    def __repr__(self):
        parts = [f"{i}:{e.input}->{e.output}" for i, e in sorted(self.entries.items())]
        return f"ShardPlan({self.size} ranks, {', '.join(parts)})"


def check_shard_options(layers):
    """``shard`` must be true/false and is only meaningful on InnerProduct layers."""
    for layer in layers:
        if "shard" not in layer.spec:
            continue
        value = layer.spec["shard"]
        if not isinstance(value, bool):
            raise ConfigError(f"layer {layer.name!r} ({layer.type}), field 'shard': expected true or false, "
                              f"got {value!r}")
        if value and layer.type != "InnerProduct":
            raise ConfigError(f"layer {layer.name!r} ({layer.type}), field 'shard': only InnerProduct layers can "
                              f"be sharded in model-data mode")


def _wants_shard(layer):
    return layer.type == "InnerProduct" and layer.spec.get("shard", True) is not False


def _set(layout, tops, value):
    for top in tops:
        if value is None:
            layout.pop(top, None)
        else:
            layout[top] = value


def _feeds_only(layers, index, chosen):
    """True when every reader of layer ``index``'s output (through ReLU/Dropout) is a sharded layer."""
    derived = set(layers[index].tops)
    found = False
    for j in range(index + 1, len(layers)):
        layer = layers[j]
        reads = any(b in derived for b in layer.bottoms)
        if not reads:
            derived.difference_update(layer.tops)
            continue
        if j in chosen:
            if len(layer.bottoms) != 1:
                return False
            found = True
            derived.difference_update(layer.tops)
        elif layer.type in ELEMENTWISE and len(layer.bottoms) == 1:
            derived.update(layer.tops)
        else:
            return False
    return found
