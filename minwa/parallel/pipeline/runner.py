"""What ``minwa pipeline serve`` and ``minwa pipeline run`` do, callable from Python too.

``serve`` builds the cloud net, loads its weights from a full checkpoint (the
parameters it has) and runs a PipelineServer until SIGTERM/SIGINT. ``run`` builds the
client net from the same checkpoint, reads the test split of the job's data source,
runs the client half of every batch, sends the cut blobs and scores the class scores
that come back: accuracy, images/s, bytes per batch and per-stage times.
"""
import collections
import signal
import statistics
import sys
import threading
import time

import numpy

from minwa import backend
from minwa.checkpoint import load_checkpoint
from minwa.errors import ConfigError
from minwa.net import Net

from .pipeline_client import PipelineClient
from .pipeline_server import PipelineServer


def load_half(model, weights, seed=0):
    """A TEST-phase net of one half with the parameters it has taken from checkpoint ``weights``."""
    net = Net(model, phase="TEST", seed=seed)
    if weights:
        load_checkpoint(weights, net, strict=False)
    return net


def parse_address(text, default_host="127.0.0.1"):
    """'HOST:PORT' or 'PORT' -> (host, port)."""
    host, _, port = str(text).rpartition(":")
    try:
        port = int(port)
    except ValueError:
        raise ConfigError(f"address {text!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"address {text!r}: port out of range")
    return (host or default_host).strip("[]"), port


def serve(net, secret, host, port, tls=None, depth=4, idle_timeout=60.0, max_clients=64, ready=None, log=None):
    """Serve until SIGTERM or SIGINT (main thread) or the server's stop() (``ready(server)`` gets it)."""
    server = PipelineServer(net, secret, host=host, port=port, tls=tls, depth=depth, idle_timeout=idle_timeout,
                            max_clients=max_clients, log=log)
    stopping = threading.Event()

    def _stop(signum, _frame):
        server.log(f"signal {signal.Signals(signum).name}: stopping")
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _stop)
    server.start()
    pairs = ", ".join(f"pair {k} -> {v.tops[0]} {v.shape}" for k, v in server.sources.items())
    server.log(f"listening on {server.address[0]}:{server.address[1]} ({'TLS' if tls else 'plain TCP'}, "
               f"authenticated; Sources: {pairs})")
    if ready is not None:
        ready(server)
    while not stopping.is_set() and not server.wait(0.2):
        pass
    server.stop()
    server.log(f"stopped after {server.batches} batches ({server.rejected} connections rejected)")
    return {"batches": server.batches, "rejected": server.rejected}


def sinks_of(net):
    sinks = [layer for layer in net.layers if layer.type == "Sink"]
    if not sinks:
        raise ConfigError("pipeline run: the client net has no Sink layer (give the client.yaml of "
                          "'minwa pipeline split')")
    pairs = [s.pair for s in sinks]
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"pipeline run: Sink layers share a pair key ({pairs}); each pair needs its own")
    return sinks


def run(net, batches, secret, host=None, port=None, dtype="float32", depth=2, tls_ca=None, timeout=30.0,
        reconnect_s=30.0, log=None):
    """Run the client half on ``batches`` ((x, y) pairs); returns a stats dict (see module doc)."""
    sinks = sinks_of(net)
    host = host or sinks[0].host
    port = sinks[0].port if port is None else port
    data_name = net.input_names[0]
    scores_of, labels, records, client_s = {}, {}, [], []
    client = PipelineClient(host, port, secret, dtype=dtype, depth=depth, tls_ca=tls_ca, timeout=timeout,
                            reconnect_s=reconnect_s, log=log)
    pending = collections.deque()
    start = time.perf_counter()
    try:
        for x, y in batches:
            t0 = time.perf_counter()
            feed = {data_name: x}
            for extra in net.input_names[1:]:
                feed[extra] = y
            net.forward(feed)
            features = [(s.pair, backend.to_host(s.value)) for s in sinks]
            client_s.append(time.perf_counter() - t0)
            seq = client.submit(features)
            labels[seq] = backend.to_host(y)
            pending.append(seq)
            while len(pending) > depth:
                _collect(client, pending.popleft(), scores_of, records)
        while pending:
            _collect(client, pending.popleft(), scores_of, records)
    finally:
        client.close()
    seconds = time.perf_counter() - start
    return _stats(scores_of, labels, records, client_s, seconds, client)


def _collect(client, seq, scores_of, records):
    scores, record = client.result(seq)
    scores_of[seq] = scores
    records.append(record)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _link_busy(records):
    """Per batch, the time the link was busy with it: from when it could start (sent, and the batch before it
    arrived) to its ACK. Send-to-ACK alone would also count the wait behind earlier batches in flight."""
    busy, previous_ack = [], None
    for r in sorted(records, key=lambda r: r["t_submit"]):
        if "t_ack" not in r or "t_send" not in r:
            previous_ack = None
            continue
        start = r["t_send"] if previous_ack is None else max(r["t_send"], previous_ack)
        busy.append(r["t_ack"] - start)
        previous_ack = r["t_ack"]
    return busy


def _steady_interval(records, skip):
    """Seconds per batch once the pipeline is full: between the results after the first ``skip``."""
    arrivals = sorted(r["t_result"] for r in records)
    skip = min(skip, max(len(arrivals) - 2, 0))
    if len(arrivals) - skip < 2:
        return float("nan")
    return (arrivals[-1] - arrivals[skip]) / (len(arrivals) - 1 - skip)


def _stats(scores_of, labels, records, client_s, seconds, client):
    images = sum(len(labels[s]) for s in scores_of)
    correct = sum(int((numpy.argmax(scores_of[s].reshape(len(labels[s]), -1), axis=1) == labels[s]).sum())
                  for s in scores_of)
    stages = {
        "client_s": _median(client_s),
        "encode_s": _median(r["encode_s"] for r in records),
        "transfer_s": _median(_link_busy(records)),
        "send_to_ack_s": _median(r["t_ack"] - r["t_send"] for r in records if "t_ack" in r and "t_send" in r),
        "cloud_s": _median(r.get("cloud_s") for r in records),
        "round_trip_s": _median(r["t_result"] - r["t_submit"] for r in records),
        "interval_s": _steady_interval(records, client.depth),
    }
    batches = len(records)
    return {"batches": batches, "images": images, "accuracy": correct / images if images else float("nan"),
            "seconds": seconds, "images_per_s": images / seconds if seconds else float("nan"),
            "seconds_per_batch": seconds / batches if batches else float("nan"),
            "payload_bytes_per_batch": _median(r["payload_bytes"] for r in records),
            "wire_bytes_per_batch": _median(r["wire_bytes"] for r in records),
            "reconnects": client.reconnects, "scores": scores_of, **stages}


def report(stats, dtype, depth, out=sys.stdout):
    """The human-readable lines of ``minwa pipeline run``."""
    slowest = max(stats["client_s"] + stats["encode_s"], stats["transfer_s"], stats["cloud_s"])
    print(f"batches {stats['batches']}, images {stats['images']}, accuracy {stats['accuracy']:.4f}", file=out)
    total = stats["client_s"] + stats["encode_s"] + stats["transfer_s"] + stats["cloud_s"]
    print(f"images/s {stats['images_per_s']:.1f}; {stats['seconds_per_batch'] * 1e3:.1f} ms per batch overall, "
          f"{stats['interval_s'] * 1e3:.1f} ms between results in steady state (pipeline depth {depth}; slowest stage "
          f"{slowest * 1e3:.1f} ms, sum of stages {total * 1e3:.1f} ms)", file=out)
    print(f"bytes per batch: {stats['payload_bytes_per_batch']:,.0f} payload ({dtype}), "
          f"{stats['wire_bytes_per_batch']:,.0f} with frame headers", file=out)
    print(f"per-stage medians: client forward {stats['client_s'] * 1e3:.1f} ms, encode {stats['encode_s'] * 1e3:.1f} "
          f"ms, link busy (to ACK) {stats['transfer_s'] * 1e3:.1f} ms, cloud forward {stats['cloud_s'] * 1e3:.1f} "
          f"ms, round trip {stats['round_trip_s'] * 1e3:.1f} ms", file=out)
