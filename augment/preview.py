"""``minwa augment preview IMAGE --out grid.png``: pictures of what the augmentation does.

Without ``--random`` the grid shows the original and each operation alone at a strong
setting on the evaluation crop, like Figure 5 of Deep Image; ``--random N`` shows N
complete random training pipelines (sample indices 0..N-1 at ``--epoch``), each labelled
with what was drawn. ``--config`` takes a YAML job (its ``augment:`` or ``data.augment``
block) or a bare augment block; the default is Deep Image's settings (every operation on).
"""
import argparse
import math
import sys

import numpy
import yaml
from PIL import Image, ImageDraw, ImageFont

from minwa.errors import ConfigError, DataError, MinwaError

from .augment_config import PAPER
from .pipeline import Pipeline, as_hwc
from .sample_params import SampleParams

LABEL_LINE = 12


def load_image(path):
    """The RGB pixels of the picture at ``path`` as uint8 HWC."""
    try:
        with Image.open(path) as pil:
            return numpy.asarray(pil.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataError(f"augment preview: cannot read image {path!r}: {exc}") from None


def load_block(path):
    """The augment block of a YAML file (a job's ``augment``/``data.augment``, or the block itself)."""
    if path is None:
        return dict(PAPER)
    try:
        with open(path) as handle:
            raw = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"augment preview: cannot read config {path!r}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    if isinstance(raw.get("augment"), dict):
        return raw["augment"]
    if isinstance(raw.get("data"), dict) and isinstance(raw["data"].get("augment"), dict):
        return raw["data"]["augment"]
    if "crop" in raw:
        return raw
    raise ConfigError(f"{path}: no augment block (looked for augment:, data.augment: and a bare block with crop:)")


def operation_tiles(pipeline, image):
    """(label, picture) pairs: the original and each operation alone, strong, on the evaluation crop."""
    height, width = image.shape[:2]
    base = pipeline.centre(height, width)
    fields = {"scale": base.scale, "top": base.top, "left": base.left}
    ops = pipeline.ops
    tiles = [("original", image), (f"centre crop {pipeline.size} @ {base.scale}", pipeline.apply(image, base))]
    variants = [("flip", {"flip": True})]
    rotation = ops["rotation"]
    top_angle = rotation.max_degrees if rotation else 10
    variants += [(f"rotation {a:+d} deg", {"degrees": a}) for a in (top_angle, -top_angle)]
    lens = ops["lens_distortion"]
    for kind in (lens.types if lens else ()):
        variants.append((f"{kind} {lens.amount(kind, lens.levels):.2f}", {"lens": (kind, lens.levels)}))
    cast = ops["color_cast"]
    if cast:
        m = cast.max_shift
        variants += [(f"color cast R{m:+d} B{-m:+d}", {"cast": (m, 0, -m)}),
                     (f"color cast G{m:+d}", {"cast": (0, m, 0)})]
    vig = ops["vignette"]
    if vig:
        strongest = (0, vig.strength_levels - 1)
        middle = (vig.radius_levels // 2, vig.strength_levels // 2)
        variants += [(vig.describe(strongest), {"vignette": strongest}), (vig.describe(middle), {"vignette": middle})]
    for label, change in variants:
        params = SampleParams(**fields, **change)
        if ("lens" in change and not lens) or ("degrees" in change and not rotation):
            continue  # an operation the config leaves off is not shown
        tiles.append((label, pipeline.apply(image, params)))
    return tiles


def random_tiles(pipeline, image, count, seed, epoch):
    """(label, picture) pairs of ``count`` random training pipelines (sample indices 0..count-1)."""
    height, width = image.shape[:2]
    tiles = []
    for index in range(count):
        params = pipeline.sample(seed, epoch, index, height, width)
        tiles.append((f"#{index}: " + pipeline.describe(params), pipeline.apply(image, params)))
    return tiles


def _fit(picture, tile):
    """``picture`` scaled to fit a tile x tile square (letterboxed on grey)."""
    pil = Image.fromarray(picture if picture.shape[2] == 3 else picture[:, :, 0])
    scale = tile / max(pil.size)
    pil = pil.convert("RGB").resize((max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))),
                                    Image.BILINEAR)
    canvas = Image.new("RGB", (tile, tile), (96, 96, 96))
    canvas.paste(pil, ((tile - pil.size[0]) // 2, (tile - pil.size[1]) // 2))
    return canvas


def _wrap(draw, font, text, width):
    lines, line = [], ""
    for word in text.replace(", ", ",\u00a0").split("\u00a0"):
        trial = line + (" " if line else "") + word
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line]


def render_grid(tiles, tile=224, columns=None):
    """One labelled picture of ``tiles`` ((label, uint8 HWC) pairs) in a grid."""
    columns = columns or min(len(tiles), max(1, math.ceil(math.sqrt(len(tiles)))))
    font = ImageFont.load_default()
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [_wrap(scratch, font, label, tile - 4) for label, _ in tiles]
    label_height = LABEL_LINE * max(len(lines) for lines in wrapped) + 4
    rows = math.ceil(len(tiles) / columns)
    pad = 4
    grid = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + label_height + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for k, ((_, picture), lines) in enumerate(zip(tiles, wrapped)):
        x = pad + (k % columns) * (tile + pad)
        y = pad + (k // columns) * (tile + label_height + pad)
        grid.paste(_fit(picture, tile), (x, y))
        for i, line in enumerate(lines):
            draw.text((x + 2, y + tile + 2 + i * LABEL_LINE), line, fill=(0, 0, 0), font=font)
    return grid


def parser():
    p = argparse.ArgumentParser(prog="minwa augment preview", description=__doc__.split("\n\n")[0])
    p.add_argument("image", help="a picture (any format Pillow reads)")
    p.add_argument("--out", required=True, help="where to write the grid (PNG)")
    p.add_argument("--random", type=int, default=0, metavar="N", help="show N random full pipelines instead")
    p.add_argument("--config", help="YAML job or augment block (default: Deep Image settings)")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed (default 0)")
    p.add_argument("--epoch", type=int, default=0, help="epoch whose draws are shown (default 0)")
    p.add_argument("--tile", type=int, default=224, help="side of each picture in the grid (default 224)")
    p.add_argument("--columns", type=int, default=None, help="pictures per row (default: about square)")
    return p


def main(argv=None):
    """Entry point of ``minwa augment preview ...`` (also ``python -m minwa.augment.preview ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "preview":
        argv = argv[1:]
    args = parser().parse_args(argv)
    if args.random < 0 or args.tile < 16 or args.seed < 0:
        raise ConfigError("augment preview: --random must be >= 0, --tile >= 16 and --seed >= 0")
    pipeline = Pipeline(load_block(args.config))
    image = as_hwc(load_image(args.image), args.image)
    if args.random:
        tiles = random_tiles(pipeline, image, args.random, args.seed, args.epoch)
    else:
        tiles = operation_tiles(pipeline, image)
    grid = render_grid(tiles, args.tile, args.columns)
    try:
        grid.save(args.out)
    except (OSError, ValueError) as exc:
        raise DataError(f"augment preview: cannot write {args.out!r}: {exc}") from None
    print(f"wrote {args.out} ({len(tiles)} pictures, {grid.size[0]}x{grid.size[1]})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MinwaError as error:
        print(f"minwa augment preview: error: {error}", file=sys.stderr)
        sys.exit(1)
