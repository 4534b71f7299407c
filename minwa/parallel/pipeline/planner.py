"""plan_cuts: rank every valid cut of a net by predicted per-batch latency and pipelined throughput.

Beyond the papers (which chose cuts by hand) and in the spirit of Neurosurgeon: each
side's time is its layers' FLOPs over that side's rate (or, with ``profile``, the
per-layer seconds measured here), the link's time is the bytes of the cut blobs at the
wire dtype plus the returned scores over the bandwidth, plus the latency. A batch takes
client + link + cloud; a pipeline of batches runs at 1 / the slowest of the three.
Single blobs are tried, and pairs when the net branches; "client-only" runs everything
on the client; cutting at the input blob is "cloud-only" (raw images sent).
"""
import itertools
import time

import numpy

from minwa.errors import ConfigError
from minwa.net import Net

from .frame import HEADER_BYTES
from .splitter import LABEL_LAYERS, split_model

ITEM_BYTES = {"float32": 4, "float16": 2, "uint8": 1}


def parse_rate(text, what="bandwidth"):
    """'10mbit', '1gbit', '2.5e9' or '100M' -> a number per second."""
    value = str(text).strip().lower()
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0), ("g", 1e9), ("m", 1e6),
                        ("k", 1e3), ("t", 1e12)):
        if value.endswith(unit):
            value, factor = value[:-len(unit)], scale
            break
    else:
        factor = 1.0
    try:
        rate = float(value) * factor
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected a number such as 1e9, 100M or 10mbit") from None
    if rate <= 0:
        raise ConfigError(f"{what} {text!r}: must be positive")
    return rate


def _branchy(net):
    readers = {}
    for layer in net.layers:
        if layer.type in LABEL_LAYERS:
            continue
        if len(layer.bottoms) > 1:
            return True
        for b in layer.bottoms:
            readers[b] = readers.get(b, 0) + 1
    return any(count > 1 for count in readers.values())


def candidate_splits(model):
    """Every valid Split: single cut blobs, and pairs for a branchy net."""
    net = Net(model, phase="TEST", init=False)
    blobs = list(dict.fromkeys(t for layer in net.layers for t in layer.tops))
    groups = [[b] for b in blobs]
    if _branchy(net):
        groups += [list(pair) for pair in itertools.combinations(blobs, 2)]
    splits = []
    for cuts in groups:
        try:
            splits.append(split_model(model, cuts, port=0))
        except ConfigError:
            continue
    return net, splits


def profile_layers(net, repeats=3):
    """Median forward seconds of each layer of ``net`` here, on random inputs."""
    net.init_params()
    rng = numpy.random.default_rng(0)
    feed = {}
    for name in net.input_names:
        shape = net.blob_shapes[name]
        feed[name] = (rng.integers(0, 2, size=shape) if len(shape) == 1 else
                      rng.standard_normal(shape).astype(net.dtype))
    marks = []
    net.before_forward.append(lambda index, layer: marks.append(time.perf_counter()))
    runs = []
    try:
        for _ in range(repeats + 1):
            marks.clear()
            net.forward(feed)
            marks.append(time.perf_counter())
            runs.append(numpy.diff(marks))
    finally:
        net.before_forward.pop()
    return {layer.name: float(s) for layer, s in zip(net.layers, numpy.median(runs[1:], axis=0))}


def _side_seconds(layers, rate, measured):
    if measured is not None:
        return sum(measured.get(layer.name, 0.0) for layer in layers)
    return sum(layer.flops(layer.bottom_shapes, layer.top_shapes) for layer in layers) / rate


def plan_cuts(model, client_flops=None, cloud_flops=None, bandwidth=1e9, latency=0.0, dtype="uint8", profile=False,
              measured=None):
    """Rows (dicts) for every cut plus client-only, sorted by predicted per-batch latency.

    ``measured`` ({layer name: seconds}, from profile_layers) replaces the FLOP rates.
    """
    if dtype not in ITEM_BYTES:
        raise ConfigError(f"pipeline plan: dtype {dtype!r}: expected one of {', '.join(ITEM_BYTES)}")
    if not profile and measured is None and (client_flops is None or cloud_flops is None):
        raise ConfigError("pipeline plan: give --client-flops and --cloud-flops (FLOP/s), or --profile")
    net, splits = candidate_splits(model)
    if profile and measured is None:
        measured = profile_layers(Net(model, phase="TEST", init=False))
    layers = [layer for layer in net.layers if layer.type not in LABEL_LAYERS]
    rows = [{"cut": "client-only", "blobs": [], "bytes": 0,
             "client_s": _side_seconds(layers, client_flops, measured), "link_s": 0.0, "cloud_s": 0.0}]
    inputs = set(net.input_names)
    for split in splits:
        sent = sum(int(numpy.prod(s)) * ITEM_BYTES[dtype] + HEADER_BYTES for s in split.shapes)
        scores = Net(split.cloud, phase="TEST", init=False)
        out = scores.blob_shapes[scores.output_names[0]]
        back = int(numpy.prod(out)) * 4 + 2 * HEADER_BYTES  # RESULT (+ ACK)
        name = "+".join(split.blobs)
        if set(split.blobs) <= inputs:
            name += " (cloud-only)"
        rows.append({"cut": name, "blobs": split.blobs, "bytes": sum(int(numpy.prod(s)) * ITEM_BYTES[dtype]
                                                                     for s in split.shapes),
                     "client_s": _side_seconds(split.client_layers, client_flops, measured),
                     "link_s": (sent + back) * 8.0 / bandwidth + latency,
                     "cloud_s": _side_seconds(split.cloud_layers, cloud_flops, measured)})
    for row in rows:
        row["latency_s"] = row["client_s"] + row["link_s"] + row["cloud_s"]
        row["throughput"] = 1.0 / max(row["client_s"], row["link_s"], row["cloud_s"], 1e-12)
    rows.sort(key=lambda r: r["latency_s"])
    return rows
