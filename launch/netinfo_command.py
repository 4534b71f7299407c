"""``minwa netinfo CONFIG``: per-layer output shapes, parameter counts and FLOPs, with totals."""
import argparse

from minwa.config import load_config
from minwa.net import Net


def _human(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def describe(net):
    """Rows (layer, type, output shapes, params, flops) and totals for a shape-only net."""
    rows = []
    for layer in net.layers:
        shapes = " ".join("x".join(str(d) for d in s) if s else "scalar" for s in layer.top_shapes)
        params = sum(p.size for p in layer.params)
        rows.append((layer.name, layer.type, shapes, params, layer.flops(layer.bottom_shapes, layer.top_shapes)))
    return rows


def main(argv):
    parser = argparse.ArgumentParser(prog="minwa netinfo", description=__doc__)
    parser.add_argument("config", help="YAML job or Caffe .prototxt net")
    parser.add_argument("--phase", default="TRAIN", choices=["TRAIN", "TEST"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--model-data", type=int, default=None, metavar="N",
                        help="also show the FC bytes one rank holds in model-data mode on N ranks")
    args = parser.parse_args(argv)
    job = load_config(args.config, overrides=args.set, validate=False)
    net = Net(job.model, phase=args.phase, init=False)
    rows = describe(net)
    widths = [max(len(str(r[i])) for r in rows + [("layer", "type", "output", "", "")]) for i in range(3)]
    print(f"{'layer':<{widths[0]}}  {'type':<{widths[1]}}  {'output':<{widths[2]}}  {'params':>10}  {'FLOPs':>10}")
    for name, kind, shapes, params, flops in rows:
        print(f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {shapes:<{widths[2]}}  {params:>10,}  {_human(flops):>10}")
    total_params = sum(r[3] for r in rows)
    total_flops = sum(r[4] for r in rows)
    batch = net.blob_shapes[net.input_names[0]][0] if net.input_names else 1
    print(f"total: {total_params:,} parameters ({total_params * 4 / 2**20:.1f} MiB as float32), "
          f"{_human(total_flops)} FLOPs per forward pass of batch {batch} "
          f"({_human(total_flops / max(batch, 1))} per image)")
    if args.model_data:
        print(model_data_memory(net, args.model_data))
    return 0


def model_data_memory(net, n, slots=3):
    """One line: FC bytes (weights, gradients, momentum: ``slots`` copies, float32) per rank on n ranks."""
    from minwa.parallel.shard_plan import ShardPlan, check_shard_options

    check_shard_options(net.layers)
    plan = ShardPlan(net.layers, n)
    whole = mine = 0
    for index, entry in plan.entries.items():
        layer = net.layers[index]
        lo, hi = entry.bounds[0]  # rank 0 holds the largest shard
        size = sum(p.size for p in layer.params)
        whole += size
        mine += size * (hi - lo) // layer.num_output
    return (f"model-data on {n} ranks: {len(plan.entries)} sharded FC layers, {whole * 4 * slots / 2**20:.1f} MiB of "
            f"FC weights+gradients+momentum in all, at most {mine * 4 * slots / 2**20:.1f} MiB per rank "
            f"({mine / max(whole, 1):.3f} of the whole)")
