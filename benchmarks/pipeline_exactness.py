"""Split inference against unsplit on a real test set: top-1 agreement and the largest logit error per dtype.

    python benchmarks/pipeline_exactness.py --weights runs/cifar10_full/checkpoints/step_00000500.h5 \
        --set model.layers.conv1.convolution_param.num_output=4 --cut pool1

The job (default configs/cifar10_full.yaml, its test set read from --data: default the CIFAR-10 tarball in
../shared/data; a pack from `minwa pack` reads faster) is cut at --cut (repeatable:
several cut links); the cloud half is served on 127.0.0.1 in this process's threads, the client half runs
through a real TCP connection (authenticated, the binary framing), once per wire dtype. Without --weights the
net keeps its seeded initial weights (agreement is still meaningful, accuracy is not).
"""
import argparse
import os
import sys

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
TARBALL = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpeg.tar.gz")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "cifar10_full.yaml"))
    parser.add_argument("--weights")
    parser.add_argument("--cut", action="append", default=[])
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--data", default=TARBALL, help="CIFAR-10 in any layout the cifar10 source reads (default: "
                        "the shared tarball)")
    parser.add_argument("--batches", type=int, help="only the first N test batches (default: the whole test set)")
    args = parser.parse_args(argv)
    import minwa
    from minwa.datasets import make_loader
    from minwa.net import Net
    from minwa.parallel.pipeline import runner
    from minwa.parallel.pipeline.pipeline_server import PipelineServer
    from minwa.parallel.pipeline.splitter import split_model

    overrides = [f"data.path={os.path.abspath(args.data)}", *args.set]  # a --set data.path=... still wins
    job = minwa.load_config(args.config, overrides=overrides)
    cuts = args.cut or ["pool1"]
    split = split_model(job.model, cuts, port=0)
    full = runner.load_half(job.model, args.weights)
    client, cloud = runner.load_half(split.client, args.weights), runner.load_half(split.cloud, args.weights)
    if not args.weights:
        for net in (client, cloud):
            for p in net.params:
                p.data[...] = full.param(p.name).data
    loader = make_loader(job.data, "test", seed=job.seed)
    steps = loader.steps_per_epoch if args.batches is None else min(args.batches, loader.steps_per_epoch)
    batches = [(x.copy(), y.copy()) for x, y in loader.batches(0, steps)]
    scores_blob = Net(split.cloud, phase="TEST", init=False).output_names[0]
    reference = []
    for x, y in batches:
        full.forward({name: (x if i == 0 else y) for i, name in enumerate(full.input_names)})
        reference.append(full.blobs[scores_blob].copy())
    labels = numpy.concatenate([y for _, y in batches])
    ref = numpy.concatenate(reference)
    print(f"{job.name}: {len(labels)} test images, cut at {', '.join(cuts)} "
          f"({', '.join('x'.join(map(str, s)) for s in split.shapes)}); weights {args.weights or 'initial (seeded)'}")
    print(f"unsplit accuracy {numpy.mean(ref.argmax(1) == labels):.4f}")
    secret = b"exactness-benchmark-secret"
    with PipelineServer(cloud, secret, log=lambda t: None) as server:
        for dtype in ("float32", "float16", "uint8"):
            stats = runner.run(client, batches, secret, host="127.0.0.1", port=server.address[1], dtype=dtype,
                               depth=2, timeout=120)
            got = numpy.concatenate([stats["scores"][s] for s in range(len(batches))])
            error = float(numpy.abs(got - ref).max())
            print(f"{dtype:<8} accuracy {numpy.mean(got.argmax(1) == labels):.4f}, top-1 agreement with unsplit "
                  f"{numpy.mean(got.argmax(1) == ref.argmax(1)):.4f}, max |logit error| {error:.3g} "
                  f"(logits span {float(ref.max() - ref.min()):.3g}), {stats['payload_bytes_per_batch']:,.0f} B "
                  f"per batch{', exact' if error == 0 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
