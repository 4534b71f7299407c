"""EnsembleEvaluator through ``minwa eval``: the table's numbers, and N ranks equal to one process."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy
import pytest

import minwa
from minwa.datasets import build_source
from minwa.evaluate.ensemble_evaluator import EnsembleEvaluator, format_table
from minwa.evaluate.merge import merge, top_k_correct
from minwa.evaluate.model_scorer import ModelScorer
from minwa.launch import eval_command


def eval_args(pair, out, extra=()):
    (ca, wa), (cb, wb) = pair
    return [ca, "--weights", wa, "--scales", "16", "20", "--model", cb, "--weights", wb, "--scales", "20", "24",
            "--flip", "--crops", "dense", "--no-progress", "--json", str(out), "--chunk", "7", *extra]


def test_numbers_are_the_merged_views(tiny_pair, tmp_path, capsys):
    result = eval_command.run(eval_args(tiny_pair, tmp_path / "r.json", ["--merge", "gmean"]))
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(result))
    table = capsys.readouterr().out
    assert "ensemble" in table and "s24-dense-flip" in table and "alone (s16-center)" in table
    (ca, wa), (cb, wb) = tiny_pair
    a = ModelScorer(ca, wa, scales=[16, 20], crops="dense", flip=True)
    b = ModelScorer(cb, wb, scales=[20, 24], crops="dense", flip=True)
    images, labels = build_source(minwa.load_config(ca).data, "test").get_many(numpy.arange(50))
    sa, sb = a.score(list(images)), b.score(list(images))
    fa, fb = merge([sa[v] for v in a.views], "gmean"), merge([sb[v] for v in b.views], "gmean")
    ensemble = merge([fa, fb], "gmean")
    assert result["images"] == 50 and result["merge"] == "gmean"
    assert result["ensemble"]["top1_correct"] == top_k_correct(ensemble.probs, labels, 1)
    assert result["ensemble"]["top5_correct"] == top_k_correct(ensemble.probs, labels, 5)
    assert result["models"][1]["fused"]["top1_correct"] == top_k_correct(fb.probs, labels, 1)
    view = result["models"][0]["views"][3]
    assert view["view"] == "s20-dense-flip"
    assert view["top1_correct"] == top_k_correct(sa[a.views[3]].probs, labels, 1)
    assert result["models"][0]["alone"]["top1_correct"] == top_k_correct(sa[a.base_view].probs, labels, 1)
    alone = result["models"][0]["alone"]
    assert abs(alone["top1_error"] - (1 - alone["top1_correct"] / 50)) < 1e-12


def test_one_model_has_no_ensemble_row(tiny):
    config, weights = tiny
    result = EnsembleEvaluator([ModelScorer(config, weights)], progress=False).run(
        build_source(minwa.load_config(config).data, "test"))
    assert result["ensemble"] is None and len(result["models"]) == 1
    assert "ensemble" not in format_table(result)


def test_shares_cover_every_image_once():
    class Fake:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

    for size in (1, 2, 3, 4, 7):
        covered = []
        for rank in range(size):
            lo, hi = EnsembleEvaluator([], comm=Fake(rank, size)).share(50)
            covered += range(lo, hi)
        assert covered == list(range(50))


def _strip(result):
    return {k: v for k, v in result.items() if k not in ("seconds", "images_per_s", "ranks")} | {
        "models": [{k: v for k, v in m.items() if k != "images_per_s_rank0"} for m in result["models"]]}


@pytest.mark.parametrize("ranks", [2, 3])
def test_n_ranks_equal_one_process(tiny_pair, tmp_path, ranks):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec is not installed")
    one = eval_command.run(eval_args(tiny_pair, tmp_path / "one.json"))
    out = tmp_path / "many.json"
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "minwa.launch.cli", "eval", *eval_args(tiny_pair, out)]
    env = dict(os.environ, MINWA_DEVICE="cpu", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"mpiexec -n {ranks} minwa eval did not finish in 180 s (hang?)\n{stdout}\n{stderr}")
    assert process.returncode == 0, stderr
    many = json.loads(out.read_text())
    assert many["ranks"] == ranks and one["ranks"] == 1
    assert _strip(many) == _strip(json.loads(json.dumps(one)))
    assert stdout.count("ensemble") == 1  # only rank 0 prints the table


def test_progress_line_on_rank_0(tiny, capsys):
    config, weights = tiny
    source = build_source(minwa.load_config(config).data, "test")
    EnsembleEvaluator([ModelScorer(config, weights)], chunk=10, progress=True, progress_every=1).run(source)
    lines = [line for line in capsys.readouterr().err.splitlines() if "images |" in line]
    assert lines[0].startswith("[####") and "10/50 images" in lines[0]
    assert "50/50 images" in lines[-1] and "img/s" in lines[-1]
