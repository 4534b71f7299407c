"""AugmentConfig: the validated ``augment:`` block of a job.

Keys (everything but ``crop`` is optional)::

    augment:
      crop: 224               # side of the square crops fed to the net
      scales: [256, 512]      # shorter side resized to one of these per image; also a single
                              # number or a range {min: 256, max: 512, step: 1}; default [crop]
      test_scale: 256         # evaluation: shorter side resized to this, then centre crop
                              # (default: the smallest scale)
      cache_mb: 128           # per process: cached coordinate maps, vignette falloffs and lens factors
      flip: {p: 0.5}
      rotation: {p: 0.5, max_degrees: 10}
      lens_distortion: {p: 0.5, types: [barrel, pincushion, stretch_h, stretch_v],
                        levels: 65, max_radial: 0.3, max_stretch: 0.2}   # max_radial <= 0.5
      color_cast: {p: 0.5, channel_p: 0.5, max_shift: 20}
      vignette: {p: 0.5, radius: [0.2, 0.68], radius_levels: 49,
                 strength: [0.0125, 0.5], strength_levels: 40}

An operation is off unless it is listed; ``true`` turns it on with the defaults above
(which give Deep Image's Table 1 spaces), a mapping turns it on with some values
changed, and ``false`` or ``{enabled: false}`` turns it off. ``p`` is the probability
the operation is applied to an image, independently per operation; colour cast also
chooses each channel with ``channel_p``. Unknown keys and bad values raise ConfigError
naming the key (e.g. ``augment.rotation.max_degrees``).
"""
from minwa.errors import ConfigError

from ._checks import flag, mapping, number
from .color_cast import ColorCast
from .crop import Crop
from .flip import Flip
from .lens_distortion import LensDistortion
from .rotation import Rotation
from .vignette import Vignette

#: operation classes in the order they are applied after the crop
OPERATIONS = (Flip, Rotation, LensDistortion, ColorCast, Vignette)
TOP_KEYS = ("crop", "scales", "test_scale", "cache_mb") + tuple(op.name for op in OPERATIONS)

#: Deep Image settings: every operation on, Table 1 parameter spaces.
PAPER = {"crop": 224, "scales": [256, 512], "flip": True, "rotation": True, "lens_distortion": True,
         "color_cast": True, "vignette": True}


class AugmentConfig:
    """Parsed augment block: ``crop`` (Crop), ``ops`` (name -> operation or None), ``cache_mb``."""

    def __init__(self, block, where="augment"):
        if isinstance(block, AugmentConfig):
            block = block.raw
        block = mapping(block, where, TOP_KEYS)
        self.raw = dict(block)
        self.crop = Crop.from_config(block, where)
        self.cache_mb = number(block.get("cache_mb", 128), f"{where}.cache_mb", 0.0)
        self.ops = {}
        for op in OPERATIONS:
            self.ops[op.name] = _operation(op, block.get(op.name), f"{where}.{op.name}")

    def op(self, name):
        """The enabled operation ``name`` or None."""
        return self.ops.get(name)

    def enabled(self):
        return [name for name, op in self.ops.items() if op is not None]


def _operation(cls, value, where):
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected true, false or a mapping, got {value!r}")
    if not flag(value.get("enabled", True), f"{where}.enabled"):
        mapping(value, where, cls.KEYS)  # still refuse misspelt keys
        return None
    return cls.from_config(value, where)
