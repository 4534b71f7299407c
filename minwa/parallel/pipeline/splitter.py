"""split_model: cut a net at one or more blobs into a client part (ending in Sinks) and a cloud part.

Cutting at blob B means at B's final value (after in-place layers such as ReLU that
rewrite it). The client part is every layer the cut blobs depend on; the cloud part is
the rest, starting with one Source per cut. Layers of the cloud side that read the
labels (losses, Accuracy) are dropped: labels stay on the client, which scores the
class scores the cloud sends back. A cut that leaves the cloud reading anything but
the cut blobs, a cut blob the cloud does not read, or an unknown blob is a ConfigError.
"""
import copy

from minwa.errors import ConfigError
from minwa.net import FED_TYPES, Net

#: layer types that consume labels; on the cloud side they are left out
LABEL_LAYERS = ("Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "HingeLoss")


class Split:
    """The two halves: ``client`` and ``cloud`` models, the cut ``blobs`` with their shapes, pair keys."""

    def __init__(self, client, cloud, blobs, shapes, pairs, client_layers, cloud_layers):
        self.client, self.cloud = client, cloud
        self.blobs, self.shapes, self.pairs = blobs, shapes, pairs
        self.client_layers, self.cloud_layers = client_layers, cloud_layers


def _graph(net):
    """Per layer, the (blob, producing layer index) of each bottom; and each blob's final producer."""
    producer, reads = {}, []
    for index, layer in enumerate(net.layers):
        reads.append([(b, producer[b]) for b in layer.bottoms])
        for t in layer.tops:
            producer[t] = index
    return reads, producer


def split_model(model, cuts, host="127.0.0.1", port=5600, phase="TEST"):
    """Split ``model`` (a model dict with ``layers``) at the blob names ``cuts``; returns a Split.

    Pair k carries cut k: its Sink has ``host_name``/``port``/``pair: k`` and its Source
    ``port``/``pair: k``/``shape``. All pairs share one connection and are told apart
    by the pair key in every frame.
    """
    cuts = list(dict.fromkeys(cuts))
    if not cuts:
        raise ConfigError("pipeline split: give at least one blob to cut at (--at BLOB)")
    net = Net(model, phase=phase, init=False)
    if any(layer.type in ("Sink", "Source") for layer in net.layers):
        raise ConfigError("pipeline split: the net already has Sink/Source layers (it is already split)")
    reads, producer = _graph(net)
    for blob in cuts:
        if blob not in producer:
            raise ConfigError(f"pipeline split: unknown blob {blob!r}; blobs of the net: {', '.join(producer)}")
    cut_points = {(b, producer[b]) for b in cuts}
    client = set()
    stack = [producer[b] for b in cuts]
    while stack:
        index = stack.pop()
        if index not in client:
            client.add(index)
            stack.extend(p for _, p in reads[index])
    fed = {i for i, layer in enumerate(net.layers) if layer.type in FED_TYPES}
    cloud, dropped = [], []
    for index, layer in enumerate(net.layers):
        if index in client:
            continue
        if layer.type in LABEL_LAYERS and any(p in fed and (b, p) not in cut_points for b, p in reads[index]):
            dropped.append(index)
            continue
        cloud.append(index)
    for index in cloud:
        for blob, p in reads[index]:
            if p in client and (blob, p) not in cut_points:
                raise ConfigError(
                    f"pipeline split at {', '.join(cuts)}: the cut does not separate the net in two: layer "
                    f"{net.layers[index].name!r} (cloud side) reads blob {blob!r}, which the client side computes "
                    f"(layer {net.layers[p].name!r}); cut there too (--at {blob}) or elsewhere")
    if not cloud:
        raise ConfigError(f"pipeline split at {', '.join(cuts)}: nothing is left for the cloud side "
                          "(that is client-only inference)")
    for blob in cuts:
        if not any((blob, producer[blob]) in reads[i] for i in cloud):
            raise ConfigError(f"pipeline split: blob {blob!r} is not read by the cloud side (only by the client's "
                              "own layers); drop it from --at")
    shapes = [net.blob_shapes[b] for b in cuts]
    pairs = list(range(len(cuts)))
    specs = [_clean(layer.spec) for layer in net.layers]
    client_specs = [specs[i] for i in sorted(client)]
    client_specs += [{"name": f"sink_{b}", "type": "Sink", "bottom": [b],
                      "sink_param": {"host_name": str(host), "port": int(port), "pair": k}}
                     for k, b in enumerate(cuts)]
    cloud_specs = [{"name": f"source_{b}", "type": "Source", "top": [b],
                    "source_param": {"port": int(port), "pair": k, "shape": list(s)}}
                   for k, (b, s) in enumerate(zip(cuts, shapes))]
    cloud_specs += [specs[i] for i in cloud]
    name = model.get("name", "net") if isinstance(model, dict) else "net"
    client_model = {"name": f"{name}_client", "layers": client_specs}
    cloud_model = {"name": f"{name}_cloud", "layers": cloud_specs}
    cloud_net = Net(cloud_model, phase=phase, init=False)
    if len(cloud_net.output_names) != 1:
        raise ConfigError(f"pipeline split at {', '.join(cuts)}: the cloud side would have outputs "
                          f"{cloud_net.output_names}; it must end in one blob of class scores")
    Net(client_model, phase=phase, init=False)
    return Split(client_model, cloud_model, cuts, shapes, pairs,
                 [net.layers[i] for i in sorted(client)], [net.layers[i] for i in cloud])


def _clean(spec):
    """A layer spec as written to a split file: phase rules are resolved already."""
    spec = copy.deepcopy(spec)
    spec.pop("include", None)
    spec.pop("exclude", None)
    for key in ("bottom", "top"):
        if not spec.get(key):
            spec.pop(key, None)
    return spec
