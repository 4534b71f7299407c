import os

import numpy
import pytest
from PIL import Image

from minwa.augment import preview
from minwa.errors import ConfigError, DataError

PHOTO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "photos", "cat.jpg")


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "in.png"
    rng = numpy.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=numpy.uint8)).save(path)
    return str(path)


def test_operation_grid(tmp_path, picture, capsys):
    out = tmp_path / "grid.png"
    assert preview.main(["preview", picture, "--out", str(out), "--tile", "64", "--columns", "5"]) == 0
    grid = Image.open(out)
    # original, centre crop, flip, 2 rotations, 4 lens types, 2 casts, 2 vignettes = 13 tiles -> 3 rows of 5
    assert grid.size[0] == 5 * (64 + 4) + 4
    assert "13 pictures" in capsys.readouterr().out


def test_random_grid_with_config(tmp_path, picture):
    config = tmp_path / "job.yaml"
    config.write_text("data:\n  augment:\n    crop: 48\n    scales: [64, 80]\n    rotation: true\n")
    out = tmp_path / "random.png"
    assert preview.main([picture, "--random", "6", "--config", str(config), "--out", str(out), "--tile", "48"]) == 0
    tiles = preview.random_tiles(preview.Pipeline(preview.load_block(str(config))),
                                 numpy.asarray(Image.open(picture)), 6, 0, 0)
    assert len(tiles) == 6 and all(t[1].shape == (48, 48, 3) for t in tiles)
    assert Image.open(out).size[0] == 3 * (48 + 4) + 4


def test_errors(tmp_path, picture):
    with pytest.raises(DataError, match="cannot read image"):
        preview.main([str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "x.png")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("augment:\n  crop: 48\n  rotaton: true\n")
    with pytest.raises(ConfigError, match="augment.rotaton"):
        preview.main([picture, "--config", str(bad), "--out", str(tmp_path / "x.png")])


@pytest.mark.skipif(not os.path.exists(PHOTO), reason="../shared photos are not here")
def test_real_photo_through_the_cli(tmp_path):
    cli = pytest.importorskip("minwa.launch.cli")
    out = tmp_path / "cat.png"
    assert cli.main(["augment", "preview", PHOTO, "--random", "4", "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * (224 + 4) + 4, Image.open(out).size[1])
