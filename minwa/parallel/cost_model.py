"""CostModel: predicted step time of data parallel and model-data parallel training on N devices.

Paleo-style (Qi et al., ICLR 2017): a layer takes FLOPs / rate on the device (backward
``backward_factor`` = 2 times its forward: dW and dX), a message takes latency +
bytes / bandwidth. What overlaps is what minwa's engines overlap:

- **data**: every layer with weights sends 2(N-1)/N of its gradient (butterfly) once its
  backward is done; with ``overlap`` (lazy update) the transfers run on the link in
  that order during the rest of backward and the next forward, which waits only for
  the layer it is about to run. Without overlap the step waits for all of them.
- **model-data**: the same for the non-FC layers; the sharded FC layers' gathers sit on
  the critical path (forward needs the gathered input at once), with the exact bytes of
  ``ShardedInnerProduct`` (allgather of the input, reduce-scatter of its gradient, and
  the all-to-alls of the last layer); each rank computes its O/N outputs for the whole
  global batch B = N b, the same FLOPs as one device at b.

The link: ``bandwidth`` in bytes/s per node, ``gpus_per_node`` devices sharing it; a
rank's messages to peers on its own node are free. ``cores`` (a CPU machine) divides the
device rate when more ranks than cores run. ``host_s_per_byte`` is the time the rank's own
processor spends per byte it sends (packing buckets, the MPI copies, the reduction's adds,
polling for progress): on a CPU machine those run on the cores that compute, so they
never overlap compute, and they are charged on the compute timeline when a transfer is
issued (0 for devices whose transfers run beside them, e.g. GPUs with RDMA). Layers
without FLOPs (ReLU, pooling) cost nothing here; a ``rate`` fitted from a measured step
(``minwa plan --profile``) folds them in.
"""
from ..comm.partition import part_bounds
from ..errors import ConfigError
from .shard_plan import ShardPlan


class Machine:
    """Device rate (FLOP/s), link bandwidth (bytes/s) and latency (s) of the devices being planned for."""

    def __init__(self, rate, bandwidth, latency=0.0, gpus_per_node=1, cores=None, host_s_per_byte=0.0):
        if rate <= 0 or bandwidth <= 0 or latency < 0 or host_s_per_byte < 0:
            raise ConfigError(f"plan: rate and bandwidth must be > 0, latency and host cost >= 0, got {rate}, "
                              f"{bandwidth}, {latency}, {host_s_per_byte}")
        self.rate, self.bandwidth, self.latency = float(rate), float(bandwidth), float(latency)
        self.gpus_per_node, self.cores = int(gpus_per_node), cores
        self.host_s_per_byte = float(host_s_per_byte)

    def _share(self, n):
        return 1.0 if self.cores is None else min(1.0, self.cores / n)

    def compute(self, flops, n):
        return flops / (self.rate * self._share(n))

    def host(self, nbytes, n):
        """Seconds of the rank's processor to send ``nbytes`` (not overlapped with its compute)."""
        return self.host_s_per_byte * nbytes / self._share(n)

    def transfer(self, nbytes, n, messages):
        """Seconds for a rank to send ``nbytes`` spread evenly over its n-1 peers, in ``messages`` messages."""
        if n <= 1 or nbytes <= 0:
            return 0.0
        local = min(self.gpus_per_node, n)
        node_bytes = local * nbytes * (n - local) / (n - 1)  # what this node's ranks send off the node
        return messages * self.latency + node_bytes / self.bandwidth


class _Layer:
    def __init__(self, index, layer, item):
        self.index, self.name, self.type = index, layer.name, layer.type
        self.flops = float(layer.flops(layer.bottom_shapes, layer.top_shapes))
        self.param_bytes = sum(p.size for p in layer.params if p.lr_mult != 0) * item
        self.batch = int(layer.bottom_shapes[0][0]) if layer.bottom_shapes else 1
        self.inputs = getattr(layer, "k", 0)
        self.outputs = getattr(layer, "num_output", 0)


class CostModel:
    """Per-layer costs of a shape-only net built at the per-device batch ``b`` (its Input layer's batch)."""

    def __init__(self, net, machine, itemsize=4, overlap=True, backward_factor=2.0):
        self.net, self.machine, self.item = net, machine, int(itemsize)
        self.overlap, self.backward_factor = bool(overlap), float(backward_factor)
        self.layers = [_Layer(i, layer, self.item) for i, layer in enumerate(net.layers)]
        self.batch = int(net.blob_shapes[net.input_names[0]][0]) if net.input_names else 1

    # -- the two modes -------------------------------------------------------------------------
    def data(self, n):
        """Predicted step of data parallelism on ``n`` devices at b per device."""
        items = []
        for layer in self.layers:
            grad = 2.0 * (n - 1) / n * layer.param_bytes if n > 1 else 0.0
            items.append(self._item(layer, n, layer.flops, grad))
        return self._simulate(items, "data", n)

    def model_data(self, n):
        """Predicted step of model-data parallelism on ``n`` devices (None when a layer cannot be split n ways)."""
        if n < 2:
            return None
        try:
            plan = ShardPlan(self.net.layers, n)
        except ConfigError:
            return None
        big_b = n * self.batch
        items = []
        for layer in self.layers:
            entry = plan.entries.get(layer.index)
            if entry is None:
                grad = 2.0 * (n - 1) / n * layer.param_bytes
                items.append(self._item(layer, n, layer.flops, grad))
                continue
            lo, hi = entry.bounds[0]
            flops = layer.flops * (big_b / layer.batch) * ((hi - lo) / layer.outputs)
            fwd, bwd = self._fc_bytes(layer, entry, plan, n, big_b)
            item = self._item(layer, n, flops, 0.0)
            messages = n - 1 if entry.output == "feature" else 2 * (n - 1)
            item["crit_fwd"] = self.machine.transfer(fwd, n, messages) + self.machine.host(fwd, n)
            item["crit_bwd"] = self.machine.transfer(bwd, n, messages) + self.machine.host(bwd, n)
            item["sent"] = fwd + bwd
            items.append(item)
        return self._simulate(items, "model-data", n)

    def _fc_bytes(self, layer, entry, plan, n, big_b):
        """Rank 0's bytes (forward, backward) from ShardedInnerProduct's formula at even row counts."""
        b = self.batch
        whole = big_b * layer.inputs
        if entry.input == "batch":
            mine = b * layer.inputs
        else:
            lo, hi = plan.entries[entry.upstream].bounds[0]
            mine = big_b * (hi - lo)
        fwd, bwd = (n - 1) * mine, whole - mine
        if entry.output == "batch":
            lo, hi = entry.bounds[0]
            fwd += (big_b - b) * (hi - lo)
            bwd += b * (layer.outputs - (hi - lo))
        return fwd * self.item, bwd * self.item

    def _item(self, layer, n, flops, grad_bytes):
        messages = 2 * (n - 1)
        return {"name": layer.name, "fwd": self.machine.compute(flops, n),
                "bwd": self.machine.compute(self.backward_factor * flops, n), "crit_fwd": 0.0, "crit_bwd": 0.0,
                "transfer": self.machine.transfer(grad_bytes, n, messages) if grad_bytes else 0.0,
                "host": self.machine.host(grad_bytes, n), "sent": grad_bytes}

    def _simulate(self, items, mode, n):
        """One backward then the next forward; lazy transfers share one link in the order they become ready."""
        t = link = 0.0
        done = [0.0] * len(items)
        for i in range(len(items) - 1, -1, -1):
            t += items[i]["bwd"] + items[i]["crit_bwd"] + items[i]["host"]
            if items[i]["transfer"]:
                link = max(link, t) + items[i]["transfer"]
                done[i] = link
        backward = t
        if not self.overlap:  # exchange after backward, then update (parallel.lazy: false)
            t += sum(item["transfer"] for item in items)
        for i, item in enumerate(items):
            if self.overlap:
                t = max(t, done[i])
            t += item["fwd"] + item["crit_fwd"]
        compute = sum(item["fwd"] + item["bwd"] for item in items)
        host = sum(item["host"] for item in items)
        critical = sum(item["crit_fwd"] + item["crit_bwd"] for item in items)
        return {"mode": mode, "n": n, "step_s": t, "compute_s": compute, "critical_comm_s": critical, "host_s": host,
                "exposed_comm_s": t - compute, "overlapped_comm_s": sum(i["transfer"] for i in items),
                "backward_s": backward, "bytes_per_rank": sum(item["sent"] for item in items),
                "images_per_s": n * self.batch / t if t > 0 else float("inf")}

    def bytes_crossover(self, limit=4096):
        """The smallest N at which model-data parallelism sends at least as many bytes per rank as data
        parallelism, or None up to ``limit`` and the largest N every FC layer can be split into.

        Data parallelism sends 2(N-1)/N of the weights whatever N; model-data parallelism sends
        its FC layers' inputs for the global batch N b, which grows with N: this is where its
        advantage in bytes ends, whatever the link and the overlap. Found by doubling N, then
        bisecting (the difference grows with N).
        """
        def sends_more(n):
            row = self.model_data(n)
            return None if row is None else row["bytes_per_rank"] >= self.data(n)["bytes_per_rank"]

        def first(lo, hi, test):  # the smallest N in (lo, hi] where test holds; it holds at hi
            while hi - lo > 1:
                middle = (lo + hi) // 2
                lo, hi = (lo, middle) if test(middle) else (middle, hi)
            return hi

        below = 1
        while below < limit:
            n = min(2 * below, limit)
            more = sends_more(n)
            if more is None:  # n is past the largest split: look at the largest one below it
                largest = first(below, n, lambda k: self.model_data(k) is None) - 1
                if largest == below or not sends_more(largest):
                    return None
                return first(below, largest, sends_more)
            if more:
                return first(below, n, sends_more)
            below = n
        return None

    # -- the table ----------------------------------------------------------------------------------
    def compare(self, ns):
        """Rows {n, data, model_data, winner, speedup} for every n in ``ns``."""
        rows = []
        for n in ns:
            data, model = self.data(n), self.model_data(n)
            if model is None or data["step_s"] <= model["step_s"]:
                winner = "data"
            else:
                winner = "model-data"
            ratio = data["step_s"] / model["step_s"] if model is not None else None
            rows.append({"n": n, "data": data, "model_data": model, "winner": winner, "data_over_model_data": ratio})
        return rows


def even_rows(batch, n):
    """Samples per rank when a global batch of ``batch`` is split over ``n`` ranks."""
    return [hi - lo for lo, hi in part_bounds(batch, n)]


__all__ = ["CostModel", "Machine", "even_rows"]
