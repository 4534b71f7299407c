"""train(job): what ``minwa train`` runs, on one rank or on every rank of an MPI job.

The loop is the same for every mode: take this rank's slice of the global batch,
``engine.forward``, check the loss, ``engine.backward_and_update``; the engine
(single process or data parallel) decides how gradients meet. Rank 0 shows
progress, writes metrics.jsonl and checkpoints into the run directory.
"""
import os
import time

import numpy

from . import backend
from .errors import ConfigError
from .evaluate import evaluate, share_params
from .failure import NanPolicy, NonFiniteLoss, install_abort_on_error, install_stop_handler
from .failure.job_guard import backstop, guard_job
from .failure.watchdog import busy_in, waiting_in
from .label_check import check_labels
from .metrics import MetricsLog
from .net import Net
from .parallel.gradient_accumulator import GradientAccumulator
from .progress import Progress
from .run_directory import RunDirectory
from .solver import Solver

__all__ = ["train", "NonFiniteLoss"]


def _mpi_launched():
    """True when this process was started by mpiexec/srun with more than one rank."""
    for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS", "PMIX_SIZE"):
        value = os.environ.get(key)
        if value and value.isdigit() and int(value) > 1:
            return True
    return False


def world_communicator():
    """The MPI world when launched with several ranks, else None (one process, no MPI needed)."""
    if not _mpi_launched():
        return None
    from .comm import get_world  # noqa: PLC0415 - imports mpi4py

    return get_world()


def _input_names(net):
    if len(net.input_names) != 2:
        raise ConfigError(f"model: the training net needs one Input layer with two tops (data, label); "
                          f"found inputs {net.input_names}")
    return tuple(net.input_names)


def _check_input_shape(net, loader, name):
    expected = net.blob_shapes[name][1:]
    actual = tuple(loader.input_shape)
    if tuple(expected) != actual:
        raise ConfigError(f"model: input {name!r} is declared as {tuple(expected)} (C, H, W) but the data "
                          f"source gives {actual}; change the Input layer's shape or the data block")


def build_engine(net, solver, comm, job, timeline=None):
    """SingleProcess on one rank; otherwise the data-parallel engine configured by ``parallel:``."""
    mode = job.parallel.get("mode", "data")
    if comm is None or comm.size == 1:
        if mode not in ("data", "single"):
            raise ConfigError(f"parallel.mode {mode!r} needs more than one rank")
        from .parallel.single import SingleProcess  # noqa: PLC0415

        return SingleProcess(net, solver)
    options = {k: v for k, v in job.parallel.items() if k != "mode"}
    if mode == "model-data":
        from .parallel.model import ModelDataParallel  # noqa: PLC0415

        return ModelDataParallel(net, solver, comm, timeline=timeline, **options)
    if mode != "data":
        raise ConfigError(f"parallel.mode {mode!r}: expected 'data' or 'model-data'")
    from .parallel.data import DataParallel  # noqa: PLC0415

    return DataParallel(net, solver, comm, timeline=timeline, **options)


def train(job, comm=None, resume=None, progress=None, max_iter=None, stop_flag=None, overwrite=False):
    """Train ``job`` (a minwa.config.Job); returns a summary dict (final test metrics, steps, timing).

    ``overwrite``: start over in a run directory that holds a run (see RunDirectory).
    """
    from .datasets import make_loader  # noqa: PLC0415 - datasets imports h5py/Pillow

    if comm is None:
        comm = world_communicator()
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    if comm is not None:
        backend.bind_device(comm.local_rank)
        if comm.size > 1:
            install_abort_on_error(comm)  # a failing rank aborts the job instead of hanging the others
    run = RunDirectory(job.run_dir)
    if rank == 0:
        run.prepare(resume, overwrite)  # a fresh run never mixes with an old one
    watchdog = guard_job(comm, job.train["timeout_s"], job.train["checkpoint_timeout_s"])  # None on one rank
    if stop_flag is None:
        stop_flag = install_stop_handler(comm)  # SIGINT/SIGTERM: checkpoint at the next step, exit cleanly
    is_root = rank == 0
    solver_cfg = job.solver
    total_steps = int(max_iter if max_iter is not None else solver_cfg["max_iter"])
    seed = int(solver_cfg.get("random_seed") or job.seed)

    train_loader = make_loader(job.data, "train", rank=rank, size=size, seed=seed)
    test_loader = make_loader(job.data, "test", rank=rank, size=size, seed=seed)
    net = Net(job.model, phase="TRAIN", dtype=job.train["dtype"], seed=seed)
    test_net = Net(job.model, phase="TEST", dtype=job.train["dtype"], seed=seed, init=False)
    names = _input_names(net)
    _check_input_shape(net, train_loader, names[0])
    _check_input_shape(test_net, test_loader, _input_names(test_net)[0])
    check_labels(net, train_loader, names[1], "train")
    check_labels(test_net, test_loader, _input_names(test_net)[1], "test")
    solver = Solver(net, solver_cfg)
    timeline = None
    if job.train.get("timeline"):
        from .timeline import Timeline  # noqa: PLC0415

        timeline = Timeline(job.train["timeline"], rank=rank)
    engine = build_engine(net, solver, comm, job, timeline=timeline)
    accumulate = GradientAccumulator(net, engine, solver_cfg["iter_size"])  # Caffe's iter_size

    run_dir = job.run_dir
    checkpoints = _Checkpoints(run_dir, job, net, solver, engine, enabled=is_root, comm=comm)
    start_step = 0
    if resume:
        start_step = checkpoints.restore(resume)
    if hasattr(engine, "shard_test_net"):
        engine.shard_test_net(test_net)  # model-data: the TEST net holds the same FC shards
    share_params(net, test_net)

    log = MetricsLog(run_dir, enabled=is_root)
    if is_root:
        run.write_config(job.resolved_text())
        run.trim_metrics(start_step)
    bar = progress if progress is not None else Progress(
        total_steps, start_step, enabled=is_root and job.train["progress"], every=solver_cfg["display"] or 100)
    allreduce_sum = (lambda v: comm.allreduce(v)) if comm is not None and size > 1 else None
    test_every = solver_cfg["test_interval"]
    test_steps = solver_cfg["test_iter"] or test_loader.steps_per_epoch
    global_batch = (job.data.get("batch_size", 0) or train_loader.batch_size * size) * accumulate.iter_size

    def run_test(step):
        engine.finish()
        result = evaluate(test_net, test_loader.batches(0), test_steps, allreduce_sum, _input_names(test_net))
        log.write("test", step, epoch=step * accumulate.iter_size / train_loader.steps_per_epoch, **result)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.items())
        bar.message(f"step {step}: test {shown}")
        return result

    summary = {"steps": total_steps, "start_step": start_step, "run_dir": run_dir, "rank": rank}
    batches = train_loader.batches(start_step * accumulate.iter_size)
    nan_policy = NanPolicy(job.train["on_nan"], job.train["max_consecutive_nan_skips"])
    window_start, window_steps, skipped = time.perf_counter(), 0, 0
    started = time.perf_counter()
    step = start_step
    try:
        if test_every and start_step == 0 and solver_cfg["test_initialization"]:
            run_test(0)
        while step < total_steps:
            if stop_flag is not None and stop_flag():
                bar.message(f"stopping at step {step}: writing a checkpoint")
                engine.finish()
                checkpoints.save(step)
                summary["interrupted"] = True
                break
            number = step + 1  # the step as the log, the progress bar and the checkpoints number it
            if watchdog is not None:
                watchdog.at_step(number)
            outputs = accumulate.forward(lambda: dict(zip(names, next(batches))))
            loss = net.loss
            if not nan_policy.check(loss, number, comm):
                skipped += 1
                bar.message(f"step {number}: loss is {loss}; step skipped")
                engine.skip_update()
            else:
                engine.backward_and_update()
            step += 1
            window_steps += 1
            now = time.perf_counter()
            images_per_s = window_steps * global_batch / max(now - window_start, 1e-9)
            lr = solver.learning_rate(step - 1)
            bar.update(step, loss, lr, images_per_s)
            display = solver_cfg["display"]
            if display and step % display == 0:
                extra = _mean_over_ranks({k: float(backend.to_host(v)) for k, v in outputs.items()
                                          if getattr(v, "ndim", 1) == 0}, allreduce_sum, size)
                if hasattr(engine, "metrics"):
                    extra.update(engine.metrics())
                log.write("train", step, epoch=step * accumulate.iter_size / train_loader.steps_per_epoch, lr=lr,
                          images_per_s=images_per_s, **extra)
                window_start, window_steps = now, 0
            if test_every and step % test_every == 0 and step < total_steps:
                run_test(step)
            if solver_cfg["snapshot"] and step % solver_cfg["snapshot"] == 0 and step < total_steps:
                engine.finish()
                checkpoints.save(step)
        else:
            engine.finish()
            summary["test"] = run_test(step)
            checkpoints.save(step)
    finally:
        bar.close()
        if watchdog is not None:
            watchdog.stop()
        if hasattr(stop_flag, "restore"):
            stop_flag.restore()
        if timeline is not None:
            timeline.close()
    summary["seconds"] = time.perf_counter() - started
    summary["skipped_steps"] = skipped
    summary["final_step"] = step
    return summary


def _mean_over_ranks(values, allreduce_sum, size):
    """Average the scalars each rank computed on its slice of the batch (a no-op on one rank)."""
    if allreduce_sum is None or not values:
        return values
    names = sorted(values)
    totals = allreduce_sum(numpy.array([values[k] for k in names], dtype=numpy.float64))
    return {k: float(totals[i]) / size for i, k in enumerate(names)}


class _Checkpoints:
    """Saves and restores the run's checkpoints (rank 0 writes; every rank reads)."""

    def __init__(self, run_dir, job, net, solver, engine, enabled, comm):
        self.dir = os.path.join(run_dir, "checkpoints")
        self.job, self.net, self.solver, self.engine = job, net, solver, engine
        self.enabled, self.comm = enabled, comm
        self.keep = int(job.train.get("keep_checkpoints") or 0)
        # the barrier after a write waits as long as the watchdog lets it (train.checkpoint_timeout_s), then a bit
        self.barrier_s = backstop(max(job.train["timeout_s"], job.train["checkpoint_timeout_s"]))

    def save(self, step):
        from . import checkpoint  # noqa: PLC0415 - h5py

        state = self.engine.solver_state()
        params = self.engine.whole_params() if hasattr(self.engine, "whole_params") else self.net  # collective
        if self.enabled:
            with busy_in(f"writing checkpoint step {step}"):  # the others wait up to train.checkpoint_timeout_s
                os.makedirs(self.dir, exist_ok=True)
                path = os.path.join(self.dir, f"step_{step:08d}.h5")
                checkpoint.save_checkpoint(path, params, state, {"step": step, "config": self.job.resolved_text(),
                                                                    "rng": _rng_states(self.net)})
                if self.keep:
                    checkpoint.keep_last(self.dir, self.keep)
        if self.comm is not None and self.comm.size > 1:
            with waiting_in(f"the barrier after rank 0 writes checkpoint step {step}"):
                self.comm.ibarrier().wait(timeout=self.barrier_s)

    def restore(self, where):
        from . import checkpoint  # noqa: PLC0415

        path = checkpoint.latest_checkpoint(self.dir) if where == "latest" else where
        if path is None:
            raise ConfigError(f"--resume latest: no checkpoint in {self.dir}")
        whole = self.engine.whole_params(gather=False) if hasattr(self.engine, "whole_params") else None
        info = checkpoint.load_checkpoint(path, self.net if whole is None else whole)
        if whole is not None:
            self.engine.load_whole_params(whole)  # model-data: keep this rank's slices of the FC layers
        if info.get("solver") is not None:
            self.engine.load_solver_state(info["solver"])
        for layer in self.net.layers:
            saved = (info.get("rng") or {}).get(layer.name)
            if saved is not None and getattr(layer, "rng", None) is not None:
                layer.rng.bit_generator.state = saved
        return int(info["step"])


def _rng_states(net):
    """The random generators' states of layers that draw (Dropout), by layer name."""
    return {layer.name: layer.rng.bit_generator.state for layer in net.layers
            if getattr(layer, "rng", None) is not None and hasattr(layer.rng, "bit_generator")}
