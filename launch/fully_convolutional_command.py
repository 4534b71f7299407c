"""``minwa convert --fully-convolutional CONFIG --weights W.h5 -o OUT``: FC layers of a trained net as convolutions.

Writes ``OUT.yaml`` (the job with the converted model: the first InnerProduct after an
image map is a Convolution with that map's kernel, later ones 1x1 convolutions; loss and
accuracy layers dropped) and ``OUT.h5`` (the weights, reshaped). At the training size the
converted net gives the same class scores as an (N, K, 1, 1) map; on larger images, a
map of class scores (the dense evaluation of ``minwa eval --crops dense``).
"""
import argparse
import os
import sys

import yaml

from minwa.errors import DataError


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="minwa convert --fully-convolutional", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fully-convolutional", action="store_true", required=True)
    parser.add_argument("config", help="the trained job's config (YAML, or a Caffe .prototxt net)")
    parser.add_argument("--weights", required=True, help="its checkpoint (.h5)")
    parser.add_argument("-o", "--output", required=True, help="OUT: writes OUT.yaml and OUT.h5")
    return parser.parse_args(argv)


def convert(config, weights, output):
    """Write the converted config and weights; returns (yaml path, h5 path, FullyConvolutional)."""
    from minwa.checkpoint import load_checkpoint, save_checkpoint  # noqa: PLC0415
    from minwa.config import load_config  # noqa: PLC0415
    from minwa.evaluate.fully_convolutional import FullyConvolutional  # noqa: PLC0415
    from minwa.net import Net  # noqa: PLC0415

    job = load_config(config)
    net = Net(job.model, phase="TEST", init=False)
    try:
        info = load_checkpoint(weights)
        load_checkpoint(weights, net)
    except DataError as exc:
        raise DataError(f"--weights {weights} does not fit the model of {config}: {exc}") from None
    fc = FullyConvolutional(job.model)
    params = fc.convert_params(info["params"])
    stem = output[:-5] if output.endswith(".yaml") else output[:-4] if output.endswith((".yml", ".h5")) else output
    yaml_path, h5_path = stem + ".yaml", stem + ".h5"
    raw = {k: v for k, v in job.raw.items() if k not in ("_data_hint", "scales")}
    raw["name"] = f"{job.name}-fc"
    raw["model"] = fc.model
    folder = os.path.dirname(os.path.abspath(yaml_path))
    os.makedirs(folder, exist_ok=True)
    header = (f"# fully convolutional form of {config} (weights {weights}), written by minwa convert\n"
              f"# converted: {', '.join(f'{k} -> {h}x{w} convolution' for k, (h, w) in fc.converted.items())}\n")
    with open(yaml_path, "w", encoding="utf-8") as f:
        f.write(header + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=110))
    save_checkpoint(h5_path, params, state={"config": header, "source_weights": os.path.abspath(weights)})
    return yaml_path, h5_path, fc


def main(argv):
    args = parse_args(argv)
    yaml_path, h5_path, fc = convert(args.config, args.weights, args.output)
    shown = ", ".join(f"{k} -> {h}x{w} conv" for k, (h, w) in fc.converted.items()) or "nothing to convert"
    print(f"minwa convert: {shown}; wrote {yaml_path} and {h5_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
