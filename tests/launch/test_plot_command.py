"""``minwa plot``: metrics.jsonl -> loss / accuracy / lr curves in a PNG (matplotlib optional)."""
import json
import sys

import pytest

from minwa.errors import DataError
from minwa.launch import plot_command


def write_run(run_dir, torn=False):
    run_dir.mkdir(exist_ok=True)
    records = []
    for step in range(10, 110, 10):
        records.append({"phase": "train", "step": step, "epoch": step / 50, "time": step * 0.1,
                        "loss": 2.3 / (1 + step / 50), "lr": 0.01 * 0.5 ** (step // 50), "images_per_s": 900 + step})
        if step % 50 == 0:
            records.append({"phase": "test", "step": step, "epoch": step / 50, "accuracy": 0.3 + step / 500,
                            "loss": 2.0 / (1 + step / 50)})
    lines = [json.dumps(r) for r in records]
    text = "\n".join(lines) + "\n" + ('{"phase": "train", "st' if torn else "")
    (run_dir / "metrics.jsonl").write_text(text)
    return records


def test_series_per_panel(tmp_path):
    records = write_run(tmp_path / "run")
    series = plot_command.collect_series(records, "step")
    assert sorted(series) == ["accuracy", "images_per_s", "loss", "lr"]
    assert sorted(series["loss"]) == ["test loss", "train loss"]
    xs, ys = series["accuracy"]["test accuracy"]
    assert xs == [50, 100] and ys == pytest.approx([0.4, 0.5])
    assert series["lr"]["lr"][1][-1] == pytest.approx(0.0025)
    by_epoch = plot_command.collect_series(records, "epoch")
    assert by_epoch["loss"]["train loss"][0][0] == pytest.approx(0.2)
    flat = plot_command.collect_series([{"step": 1, "test_accuracy": 0.9, "loss": 1.0}], "step")
    assert flat["accuracy"] == {"test accuracy": ([1], [0.9])}


def test_a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path):
    write_run(tmp_path / "run", torn=True)
    assert len(plot_command.read_records(str(tmp_path / "run"))) == 12
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not a JSON object"):
        plot_command.read_records(str(bad))
    with pytest.raises(DataError, match="does not exist"):
        plot_command.read_records(str(tmp_path / "nowhere"))


def test_without_matplotlib_it_says_so_and_exits_2(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes 'import matplotlib' fail
    assert plot_command.main([str(tmp_path / "run")]) == 2
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert not (tmp_path / "run" / "curves.png").exists()


def test_draws_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from PIL import Image

    write_run(tmp_path / "run", torn=True)
    assert plot_command.main([str(tmp_path / "run")]) == 0
    png = tmp_path / "run" / "curves.png"
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 600 and height > 400
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 20  # curves, text and axes, not a blank canvas
    assert "loss (12 points), accuracy (2 points)" in capsys.readouterr().err
    out = tmp_path / "by_time.png"
    assert plot_command.main([str(tmp_path / "run" / "metrics.jsonl"), "--x", "time", "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
