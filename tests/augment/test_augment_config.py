import pytest

from minwa.augment import PAPER, AugmentConfig, build_transform
from minwa.errors import ConfigError


def test_paper_block_turns_every_operation_on():
    cfg = AugmentConfig(PAPER)
    assert cfg.enabled() == ["flip", "rotation", "lens_distortion", "color_cast", "vignette"]
    assert cfg.crop.size == 224 and cfg.crop.scales == (256, 512) and cfg.crop.test_scale == 256


def test_operations_are_off_unless_listed():
    cfg = AugmentConfig({"crop": 28, "scales": 32, "flip": {"p": 0.25}, "rotation": False,
                         "vignette": {"enabled": False, "p": 0.3}})
    assert cfg.enabled() == ["flip"]
    assert cfg.ops["flip"].p == 0.25
    assert cfg.crop.scales == (32,) and cfg.crop.test_scale == 32


@pytest.mark.parametrize("block, key", [
    ({"crop": 224, "scale": [256]}, "augment.scale"),
    ({"crop": 224, "rotation": {"max_degress": 5}}, "augment.rotation.max_degress"),
    ({"crop": 224, "rotation": {"max_degrees": 0}}, "augment.rotation.max_degrees"),
    ({"crop": 224, "rotation": {"max_degrees": 2.5}}, "augment.rotation.max_degrees"),
    ({"crop": 224, "flip": {"p": 1.5}}, "augment.flip.p"),
    ({"crop": 224, "flip": {"p": "often"}}, "augment.flip.p"),
    ({"crop": 224, "flip": "yes"}, "augment.flip"),
    ({"crop": 224, "flip": {"enabled": "yes"}}, "augment.flip.enabled"),
    ({"crop": 224, "vignette": {"enabled": False, "radious": 1}}, "augment.vignette.radious"),
    ({"crop": 224, "color_cast": {"max_shift": -3}}, "augment.color_cast.max_shift"),
    ({"crop": 224, "vignette": {"radius": [0.5, 0.2]}}, "augment.vignette.radius"),
    ({"crop": 224, "vignette": {"radius": [0.2, 1.0]}}, "augment.vignette.radius[1]"),
    ({"crop": 224, "vignette": {"strength": 0.5}}, "augment.vignette.strength"),
    ({"crop": 224, "lens_distortion": {"types": ["barrel", "fisheye"]}}, "augment.lens_distortion.types"),
    ({"crop": 224, "lens_distortion": {"types": []}}, "augment.lens_distortion.types"),
    ({"crop": 224, "lens_distortion": {"max_radial": 2}}, "augment.lens_distortion.max_radial"),
    ({"crop": 224, "scales": [256, 200]}, "augment.scales"),
    ({"crop": 224, "scales": {"min": 256}}, "augment.scales"),
    ({"crop": 224, "scales": {"min": 256, "max": 300, "by": 2}}, "augment.scales.by"),
    ({"crop": 224, "test_scale": 100}, "augment.test_scale"),
    ({"crop": 0}, "augment.crop"),
    ({"scales": [256]}, "augment.crop"),
    ({"crop": 224, "cache_mb": -1}, "augment.cache_mb"),
])
def test_bad_blocks_name_the_key(block, key):
    with pytest.raises(ConfigError) as info:
        build_transform(block, seed=0, train=True)
    assert str(info.value).startswith(key), str(info.value)


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="augment: expected a mapping"):
        AugmentConfig([224])
