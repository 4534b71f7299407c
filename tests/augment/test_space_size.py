"""Deep Image Table 1 counts, and that each operation's draws cover exactly its counted space."""
import itertools

import numpy
import pytest

from minwa.augment import PAPER, AugmentConfig, space_size
from minwa.errors import ConfigError

TABLE_1 = {"color_cast": 68920, "vignette": 1960, "lens_distortion": 260, "rotation": 20, "flip": 2, "crop": 82944}


def test_default_counts_are_table_1():
    assert space_size() == TABLE_1
    for name, count in TABLE_1.items():
        assert space_size(name) == count


def test_counts_follow_the_config():
    block = dict(PAPER, crop=28, scales=[32], color_cast={"max_shift": 10}, rotation={"max_degrees": 3},
                 lens_distortion={"types": ["barrel"], "levels": 7}, vignette={"radius_levels": 2,
                                                                             "strength_levels": 3})
    sizes = space_size(config=block)
    assert sizes == {"color_cast": 21 ** 3 - 1, "vignette": 6, "lens_distortion": 7, "rotation": 6, "flip": 2,
                     "crop": 16}
    assert space_size("crop", config=block, source=40) == 144
    assert space_size("rotation", config={"crop": 28}) == 1  # off -> only the unchanged image


def test_unknown_operation_is_refused():
    with pytest.raises(ConfigError, match="unknown operation 'blur'"):
        space_size("blur")


def _grid(points):
    """Uniforms at the centres of ``points`` equal bins."""
    return (numpy.arange(points) + 0.5) / points


def test_color_cast_draws_cover_68920_changes():
    op = AugmentConfig(PAPER).ops["color_cast"]
    seen = set()
    shifts = _grid(41)
    for s0, s1, s2 in itertools.product(shifts, shifts, shifts):
        drawn = op.draw([0.0, 0.0, 0.0, 0.0, s0, s1, s2])  # applied, every channel chosen
        if drawn is not None:
            seen.add(drawn)
    assert len(seen) == 68920
    assert min(min(s) for s in seen) == -20 and max(max(s) for s in seen) == 20
    # an unchosen channel is never shifted, and a never-applied cast is None
    assert op.draw([0.0, 0.9, 0.0, 0.9, 0.99, 0.99, 0.99]) == (0, 20, 0)
    assert op.draw([0.7, 0.0, 0.0, 0.0, 0.99, 0.99, 0.99]) is None


def test_vignette_lens_rotation_draws_cover_their_counts():
    ops = AugmentConfig(PAPER).ops
    vig = {ops["vignette"].values(ops["vignette"].draw([0.0, a, b])) for a in _grid(49) for b in _grid(40)}
    assert len(vig) == 1960
    lens = {ops["lens_distortion"].coefficients(ops["lens_distortion"].draw([0.0, a, b]))
            for a in _grid(4) for b in _grid(65)}
    assert len(lens) == 260 and (0.0, 0.0, 1.0, 1.0) not in lens
    angles = {ops["rotation"].draw([0.0, a]) for a in _grid(20)}
    assert angles == set(range(-10, 0)) | set(range(1, 11))


def test_crop_draws_cover_82944_offsets():
    crop = AugmentConfig(dict(PAPER, scales=[512])).crop
    offsets = {crop.draw([0.0, a, b], 512, 512)[1:] for a in _grid(288) for b in _grid(288)}
    assert len(offsets) == 82944
    assert min(min(o) for o in offsets) == 0 and max(max(o) for o in offsets) == 512 - 224 - 1
