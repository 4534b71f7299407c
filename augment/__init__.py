"""Image augmentation (Deep Image §4.1), installed as minwa.augment.

``build_transform(aug_cfg, seed, train)`` is the loader hook; ``space_size()`` gives the
parameter-space sizes of Table 1; each operation is also a plain function on a uint8
HWC numpy array (``color_cast``, ``vignette``, ``lens_distortion``, ``rotate``, ``flip``,
``crop``, ``rescale``); ``BatchAugmenter`` runs the same augmentation on a batch already
on the device through the backend's array module (cupy or numpy).
"""
from .augment_config import PAPER, AugmentConfig
from .batch_augmenter import BatchAugmenter
from .color_cast import ColorCast, color_cast
from .crop import Crop, crop, rescale
from .flip import Flip, flip
from .lens_distortion import LensDistortion, lens_distortion
from .pipeline import Pipeline
from .rotation import Rotation, rotate
from .sample_params import SampleParams
from .space_size import space_size
from .transform import Transform, build_transform
from .vignette import Vignette, vignette, vignette_mask
from .warp_map import WarpMap

__all__ = ["PAPER", "AugmentConfig", "BatchAugmenter", "ColorCast", "Crop", "Flip", "LensDistortion", "Pipeline",
           "Rotation", "SampleParams", "Transform", "Vignette", "WarpMap", "build_transform", "color_cast", "crop",
           "flip", "lens_distortion", "rescale", "rotate", "space_size", "vignette", "vignette_mask"]
