"""DataParallel: every rank trains the same net on 1/N of each mini-batch (Deep Image §3.1).

Gradients are packed into flat buckets in reverse layer order (``gradient_bucket``)
and averaged over ranks by a strategy (``butterfly`` by default: reduce-scatter
then allgather). With ``lazy=True`` (Deep Image's lazy update) a bucket's transfer starts during
backward as soon as all its layers are done, its parameters are updated as soon
as the transfer is seen complete, and the next forward waits only for the bucket
of the layer it is about to run. Every step still uses the full current-step
gradient, so the weights equal synchronous training (``lazy=False``).

With ``sharded=True`` rank k updates only its part k of each bucket (the solver's
pure update rule on flat slices, momentum kept for that part only) and the ranks
allgather new weights instead of averaged gradients (``sharded_update``).

The options and their checks are in ``data_options``.

The engine interface is the trainer's: ``forward(feed)``, ``backward_and_update()``,
``skip_update()``, ``finish()``, ``solver_state()``, ``load_solver_state(state)``;
``step(feed)`` does forward, backward and the update in one call.
"""
import time

from .. import backend
from ..comm import create_strategy, get_world
from ..comm.handle import Handle, progress_all
from ..failure.watchdog import waiting_in
from ..layers import _threads
from .batch_norm_sync import sync_batch_norm
from .batch_sharded_random import BatchShardedRandom
from .data_options import DEFAULT_BUCKET_BYTES, check_options, clips_gradients
from .gradient_bucket import make_buckets
from .net_signature import first_difference, net_signature
from .sharded_update import gather_whole_state, init_shard, load_part_states, sharded_stages


class DataParallel:
    """Synchronous data-parallel SGD over MPI with butterfly averaging and lazy updates."""

    def __init__(self, net, solver, comm=None, strategy="butterfly", bucket_bytes=DEFAULT_BUCKET_BYTES, lazy=True,
                 sharded=False, timeline=None, error_feedback=False, int8_block=256, progress_thread=None, **unknown):
        bucket_bytes = check_options(solver, bucket_bytes, lazy, sharded, error_feedback, int8_block,
                                     progress_thread, unknown)
        self.clipping = clips_gradients(solver)
        self.net, self.solver = net, solver
        self.bucket_bytes = bucket_bytes
        self.lazy, self.sharded = lazy, sharded
        self.comm = comm if comm is not None else get_world()
        self.rank, self.size = self.comm.rank, self.comm.size
        # every rank reaches this collective before anything a mismatch could make hang or differ
        settings = {"strategy": str(strategy), "bucket_bytes": bucket_bytes, "lazy": lazy, "sharded": sharded,
                    "error_feedback": error_feedback, "int8_block": int8_block, "size": self.size,
                    "timeline": timeline is not None}
        self.comm.agree(net_signature(net, settings), "the network", describe=first_difference)
        self.timeline = timeline
        if timeline is not None:
            timeline.bind(self.comm, barrier=False)  # the agreement above just synchronised the ranks
        self.strategy = create_strategy(strategy, self.comm, error_feedback=error_feedback, int8_block=int8_block)
        self.xp = backend.xp_of(net.params[0].data) if net.params else backend.get_xp()
        self.buckets = make_buckets(net, bucket_bytes, self.xp)
        self.strategy.prepare([b.index for b in self.buckets])
        self._bucket_of = {i: b for b in self.buckets for i in b.layers}
        self._broadcast_params()
        self._shard_layer_randomness()
        self._batch_norm_comm = sync_batch_norm(net, self.comm)  # BatchNorm statistics of the global batch
        if self.sharded:
            for bucket in self.buckets:
                init_shard(bucket, self.strategy, solver, net.dtype, self.xp)
            load_part_states(self.buckets, solver)
        self._progress = None
        # sync mode waits for its transfers right after starting them: a helper would only contend for them
        self._polling = lazy and self.size > 1
        if self._polling:  # every pass the main thread runs drives the transfers between its chunks
            _threads.add_poll(progress_all)
        if progress_thread is None:  # a GPU's passes return at once and the host then blocks where none poll
            progress_thread = self.xp.__name__ != "numpy"
        if progress_thread and self._polling and _threads_allowed():
            from ..comm.progress_thread import ProgressThread

            self._progress = ProgressThread()
        self.steps = 0
        self._bytes_at_start = self.comm.bytes_sent
        self._window = None
        self.wait_seconds = self.comm_seconds = self.forward_seconds = self.backward_seconds = 0.0
        self._mark = None
        self._hooks = (self._before_forward, self._after_backward)
        net.before_forward.append(self._before_forward)
        net.after_backward.append(self._after_backward)

    # -- set-up ------------------------------------------------------------------------------
    def _broadcast_params(self):
        """Every rank starts from rank 0's weights (all parameters, frozen ones too)."""
        if self.size == 1:
            return
        handles = [self.comm.ibcast(p.data, root=0) for p in self.net.params]
        for handle in handles:
            handle.wait()

    def _shard_layer_randomness(self):
        """Layers that draw per-sample random numbers (Dropout) draw for the global batch."""
        for layer in self.net.layers:
            generator = getattr(layer, "rng", None)
            if generator is not None and not isinstance(generator, BatchShardedRandom):
                layer.rng = BatchShardedRandom(generator, self.rank, self.size)

    # -- hooks -----------------------------------------------------------------------------------
    def _before_forward(self, index, layer):
        now = time.perf_counter()
        self._close_span(now, "forward")
        self._poll()
        bucket = self._bucket_of.get(index)
        if bucket is not None and bucket.handle is not None:
            self._complete(bucket, waiting_for=layer.name)
        self._mark = (layer.name, time.perf_counter())

    def _after_backward(self, index, layer):
        self._mark = (layer.name, self._mark[1]) if self._mark else (layer.name, time.perf_counter())
        self._close_span(time.perf_counter(), "backward")
        bucket = self._bucket_of.get(index)
        if bucket is not None:
            bucket.ready.add(index)
            if self.lazy and bucket.ready == bucket.layers and not bucket.launched:
                self._start(bucket)
        if self.lazy and not self.clipping:
            self._poll()
        self._mark = (None, time.perf_counter())

    def _close_span(self, now, phase):
        if self._mark is None:
            return
        name, start = self._mark
        if phase == "forward":
            self.forward_seconds += now - start
        else:
            self.backward_seconds += now - start
        if self.timeline is not None and name is not None:
            self.timeline.complete(f"{phase} {name}", start, now, cat=phase)
        self._mark = None

    # -- transfers ---------------------------------------------------------------------------------
    def _start(self, bucket):
        """Pack the bucket's gradients and start averaging them (sharded: and updating part k)."""
        for i, (p, view) in enumerate(bucket.views(bucket.grad)):
            bucket.has_grad[i] = p.grad is not None
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad.reshape(p.shape)
        bucket.launched = True
        bucket.lr, bucket.it = self.solver.learning_rate(self.solver.iter), self.solver.iter
        bucket.started = time.perf_counter()
        if self.sharded:
            for p, view in bucket.views(bucket.weights):
                view[...] = p.data
            bucket.handle = Handle(sharded_stages(bucket, self.strategy, self.solver),
                                   name=f"sharded update of bucket {bucket.index}")
        else:
            bucket.handle = self.strategy.allreduce_async(bucket.grad, key=bucket.index)
        if self._progress is not None:
            self._progress.add(bucket.handle)
        if self.timeline is not None:
            self.timeline.instant(f"bucket {bucket.index} ready", cat="comm",
                                  args={"params": bucket.names(), "bytes": bucket.nbytes})

    def _poll(self):
        """Apply the update of every bucket whose transfer has finished meanwhile."""
        for bucket in self.buckets:
            if bucket.handle is not None and bucket.handle.test():
                self._complete(bucket)

    def _complete(self, bucket, waiting_for=None):
        """Wait for the bucket's transfer (timing the wait) and apply its update."""
        handle = bucket.handle
        if not handle.done:
            start = time.perf_counter()
            with waiting_in(f"bucket {bucket.index} ({handle.name}; params {bucket.names()})"):
                handle.wait()
            stop = time.perf_counter()
            self.wait_seconds += stop - start
            if self.timeline is not None:
                label = f"wait bucket {bucket.index}" + (f" for {waiting_for}" if waiting_for else "")
                self.timeline.complete(label, start, stop, cat="wait", lane="wait")
        else:
            handle.wait()  # raises a failed transfer as CommError
        self.comm_seconds += handle.finished_at - bucket.started
        if self.timeline is not None:
            self.timeline.complete(f"bucket {bucket.index}", bucket.started, handle.finished_at, cat="comm",
                                   lane=f"comm bucket {bucket.index}", args={"params": bucket.names()})
        bucket.handle = None
        if not self.sharded:
            for p, view in bucket.views(bucket.grad):
                p.grad = view  # the rank-averaged gradient, as Solver.update would see it
        if self.clipping:
            return  # applied together once every bucket is in (the clip needs the global norm)
        start = time.perf_counter()
        self._apply(bucket)
        if self.timeline is not None:
            self.timeline.complete(f"update bucket {bucket.index}", start, time.perf_counter(), cat="update")

    def _apply(self, bucket, scale=1.0):
        if self.sharded:
            for p, view in bucket.views(bucket.weights):
                p.data[...] = view
            return
        rule = self.solver.rule
        for (p, view), has_grad in zip(bucket.views(bucket.grad), bucket.has_grad):
            if not has_grad:
                continue
            grad = view if scale == 1.0 else view * scale
            rule.apply(p.data, grad, self.solver.state_for(p), bucket.lr, p.lr_mult, p.decay_mult, bucket.it)

    # -- the engine interface ------------------------------------------------------------------------
    def forward(self, feed):
        """Forward on this rank's slice of the batch; waits per layer for last step's updates."""
        if self.timeline is not None:
            self.timeline.begin(f"step {self.solver.iter}", cat="step")
        self._mark = None
        outputs = self.net.forward(feed)
        self._close_span(time.perf_counter(), "forward")
        return outputs

    def backward_and_update(self):
        """Backward with transfers started by the hooks, then (unless lazy) wait and update."""
        self.finish()  # normally a no-op: forward already waited for every bucket
        for bucket in self.buckets:
            bucket.launched = False
            bucket.ready = set()
        self._mark = (None, time.perf_counter())
        self.net.backward()
        self._mark = None
        for bucket in self.buckets:  # buckets whose layers ran no backward this step still go out
            if not bucket.launched:
                self._start(bucket)
        if not self.lazy or self.clipping:
            self._wait_all()
        self.solver.iter += 1
        self.steps += 1
        if self.timeline is not None:
            self.timeline.end(f"step {self.solver.iter - 1}", cat="step")

    def step(self, feed):
        """forward + backward_and_update; returns the net's outputs."""
        outputs = self.forward(feed)
        self.backward_and_update()
        return outputs

    def skip_update(self):
        """Count the step without changing the weights (every rank must skip it together)."""
        self.finish()
        self.solver.iter += 1
        if self.timeline is not None:
            self.timeline.end(f"step {self.solver.iter - 1}", cat="step")

    def _wait_all(self):
        pending = [b for b in self.buckets if b.handle is not None]
        for bucket in pending:
            self._complete(bucket)
        if self.clipping and pending:
            scale = self.solver.clip_scale()
            for bucket in pending:
                self._apply(bucket, scale)

    def finish(self):
        """Wait for every transfer in flight and apply its update: the weights are then current."""
        if any(b.handle is not None for b in self.buckets):
            self._wait_all()

    def close(self):
        """finish(), detach the hooks, stop polling between chunks and stop the progress thread."""
        self.finish()
        if self._polling:
            _threads.remove_poll(progress_all)
            self._polling = False
        before, after = self._hooks
        if before in self.net.before_forward:
            self.net.before_forward.remove(before)
        if after in self.net.after_backward:
            self.net.after_backward.remove(after)
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    # -- solver state (checkpoints) -------------------------------------------------------------------
    def solver_state(self):
        """The solver's state as ``Solver.state_dict()`` gives it, whole, on every rank (collective).

        Sharded, each rank holds its parts only; they are gathered here so a checkpoint
        written by rank 0 can be resumed with any number of ranks and either mode.
        """
        self.finish()
        residuals = self._gather_residuals()
        if not self.sharded:
            return dict(self.solver.state_dict(), **residuals)
        return {"iter": self.solver.iter, "state": gather_whole_state(self.buckets, self.comm), **residuals}

    def _gather_residuals(self):
        """Error feedback: every rank's residuals, {"residuals": {"rank0": {...}, ...}} ({} without them)."""
        if not hasattr(self.strategy, "residual_state") or not self.strategy.error_feedback:
            return {}
        parts = self.comm.allgather(self.strategy.residual_state())
        return {"residuals": {f"rank{r}": part for r, part in enumerate(parts)}}

    def load_solver_state(self, saved):
        """Restore ``solver_state()``'s output (every rank passes the same dict)."""
        self.finish()
        saved = dict(saved)
        residuals = saved.pop("residuals", None)
        if residuals and hasattr(self.strategy, "load_residual_state") and self.strategy.error_feedback:
            if len(residuals) == self.size:  # per rank: only meaningful with the same ranks and buckets
                self.strategy.load_residual_state(residuals.get(f"rank{self.rank}", {}))
        self.solver.load_state_dict(saved)
        if self.sharded:
            load_part_states(self.buckets, self.solver)

    # -- what happened ---------------------------------------------------------------------------------
    @property
    def gradient_bytes(self):
        return sum(b.nbytes for b in self.buckets)

    def bytes_bound(self):
        """2(N-1)/N of the gradient bytes: what the butterfly sends per rank and step at full precision."""
        return 2.0 * (self.size - 1) / self.size * self.gradient_bytes

    def stats(self):
        """Totals since construction: steps, bytes sent, seconds waiting / in flight / computing."""
        steps = max(self.steps, 1)
        sent = self.comm.bytes_sent - self._bytes_at_start
        return {"steps": self.steps, "buckets": len(self.buckets), "gradient_bytes": self.gradient_bytes,
                "bytes_sent": sent, "bytes_per_step": sent / steps, "bytes_bound": self.bytes_bound(),
                "wait_seconds": self.wait_seconds, "comm_seconds": self.comm_seconds,
                "forward_seconds": self.forward_seconds, "backward_seconds": self.backward_seconds}

    def metrics(self):
        """Per-step averages since the last call, for the metrics log (bytes each rank sent, seconds blocked)."""
        now = self.stats()
        last, self._window = self._window, now
        if last is None:
            last = {key: 0 for key in now}
        steps = now["steps"] - last["steps"]
        if steps <= 0:
            return {}
        return {"comm_bytes_per_step": (now["bytes_sent"] - last["bytes_sent"]) / steps,
                "comm_bound_bytes_per_step": now["bytes_bound"],
                "comm_blocked_s_per_step": (now["wait_seconds"] - last["wait_seconds"]) / steps,
                "comm_in_flight_s_per_step": (now["comm_seconds"] - last["comm_seconds"]) / steps}

    def __repr__(self):
        mode = "sharded" if self.sharded else "replicated"
        return (f"DataParallel({self.strategy.name}, {self.size} ranks, {len(self.buckets)} buckets, "
                f"lazy={self.lazy}, {mode})")


def _threads_allowed():
    """A progress thread may call MPI only when MPI was initialised with MPI_THREAD_MULTIPLE."""
    from mpi4py import MPI

    return MPI.Query_thread() == MPI.THREAD_MULTIPLE


__all__ = ["DataParallel"]
