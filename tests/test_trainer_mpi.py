"""minwa train under mpiexec: the same job on 2 ranks matches 1 rank, and a run resumes on a different N."""
import os

import numpy
import pytest

from minwa.checkpoint import latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.mpi

@pytest.fixture
def _run(jobs):
    def run(args, ranks, timeout=240):
        code, out, _ = jobs.run_job(jobs.minwa("train", *args, n=ranks), timeout=timeout)
        assert code == 0, out[-3000:]
        return out

    return run


def _final_params(run_dir):
    return load_checkpoint(latest_checkpoint(os.path.join(run_dir, "checkpoints")))


def test_two_ranks_match_one_and_resume_on_another_size(tmp_path, _run, tiny_job):
    job = tiny_job()  # tests/conftest.py: TINY_JOB
    single, resumed = str(tmp_path / "single"), str(tmp_path / "resumed")
    _run([str(job), "--run-dir", single], ranks=1)
    _run([str(job), "--run-dir", resumed, "--max-iter", "20"], ranks=2)
    _run([str(job), "--run-dir", resumed, "--resume"], ranks=1)
    a, b = _final_params(single), _final_params(resumed)
    assert a["step"] == b["step"] == 40
    for name, value in a["params"].items():
        numpy.testing.assert_allclose(b["params"][name], value, rtol=1e-4, atol=1e-6)


def test_resume_with_error_feedback_is_bit_identical(tmp_path, jobs):
    """The int8 residuals of every rank are in the checkpoint: 10 + 10 steps equal 20 straight, exactly."""
    job = jobs.write_job(tmp_path / "job.yaml", **{"parallel": {"strategy": "butterfly_int8", "error_feedback": True},
                                                   "solver.max_iter": 20, "solver.snapshot": 10})
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for args in (["--run-dir", straight], ["--run-dir", resumed, "--max-iter", 10], ["--run-dir", resumed, "--resume"]):
        code, out, _ = jobs.run_job(jobs.minwa("train", job, *args, n=2), timeout=240)
        assert code == 0, out
    a, b = _final_params(str(straight)), _final_params(str(resumed))
    assert a["step"] == b["step"] == 20
    residuals = a["solver"]["residuals"]
    assert sorted(residuals) == ["rank0", "rank1"] and any(numpy.abs(v).max() > 0 for v in residuals["rank0"].values())
    for name, value in a["params"].items():
        numpy.testing.assert_array_equal(b["params"][name], value)
