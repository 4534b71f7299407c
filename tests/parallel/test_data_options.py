"""DataParallel's options: a bad one is a ConfigError before any communication."""
import os
import sys

import pytest

from minwa.net import Net
from minwa.solver import Solver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_parallel_cases import BATCH, SOLVERS, model  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize(("options", "solver", "message"), [
    ({"bucket": 5}, "sgd", r"parallel: unknown option\(s\) bucket; known: strategy, bucket_bytes"),
    ({"lazy": "yes"}, "sgd", "parallel.lazy: expected true or false, got 'yes'"),
    ({"progress_thread": "yes"}, "sgd", "parallel.progress_thread: expected true, false or nothing"),
    ({"bucket_bytes": -1}, "sgd", "parallel.bucket_bytes: expected a number of bytes >= 0"),
    ({"int8_block": 0}, "sgd", "parallel.int8_block: expected a whole number >= 1"),
    ({"sharded": True}, "clip", "parallel.sharded: solver.clip_gradients needs the norm of the whole gradient"),
])
def test_bad_options_are_config_errors_before_any_communication(options, solver, message):
    from minwa.errors import ConfigError
    from minwa.parallel.data import DataParallel

    net = Net(model(BATCH), dtype="float64", seed=3)
    with pytest.raises(ConfigError, match=message):
        DataParallel(net, Solver(net, SOLVERS[solver]), None, **options)
