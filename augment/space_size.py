"""space_size: how many different changes each operation can make (Deep Image Table 1).

With the default settings the counts are the paper's:

==================  =======  ===============================================================
operation           changes  how the count arises
==================  =======  ===============================================================
color_cast           68,920  shift triple (sR, sG, sB), each in [-20, 20] (an unchosen channel
                             is a shift of 0): 41^3 = 68,921 triples minus the all-zero one
vignette              1,960  49 start radii (area of the effect) x 40 brightness reductions
lens_distortion         260  4 types (barrel, pincushion, stretch_h, stretch_v) x 65 degrees
rotation                 20  whole degrees -10..-1 and 1..10
flip                      2  mirrored or not
crop                 82,944  (512 - 224)^2 offsets of a 224 x 224 crop in a 512 x 512 image
==================  =======  ===============================================================

Note the table mixes conventions: colour cast, vignette, lens distortion and rotation
count only the settings that change the image, flip counts both states, and crop counts
offsets 0..S-C-1 on each axis (the last position, S - C, is not drawn).
"""
from minwa.errors import ConfigError

from .augment_config import OPERATIONS, PAPER, AugmentConfig

NAMES = ("color_cast", "vignette", "lens_distortion", "rotation", "flip", "crop")


def space_size(name=None, config=None, source=None):
    """The number of possible changes of operation ``name``, or a dict of all six when ``name`` is None.

    ``config`` is an augment block (default: Deep Image's settings, Table 1); ``source`` is
    the side of the square source for the crop count (default: the largest scale, 512).
    An operation the config leaves off counts 1 (the unchanged image).
    """
    if name is not None and name not in NAMES:
        raise ConfigError(f"space_size: unknown operation {name!r}; known: {', '.join(NAMES)}")
    parsed = AugmentConfig(PAPER if config is None else config)
    counts = {}
    for op in OPERATIONS:
        enabled = parsed.ops[op.name]
        counts[op.name] = enabled.space_size() if enabled is not None else 1
    counts["crop"] = parsed.crop.space_size(source)
    if name is not None:
        return counts[name]
    return {key: counts[key] for key in NAMES}
