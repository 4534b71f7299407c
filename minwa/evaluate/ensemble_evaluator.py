"""EnsembleEvaluator: top-1/top-5 error of each model, view, model's fused views and the ensemble.

Rank k of N scores the contiguous share ``[k*n//N, (k+1)*n//N)`` of the n test images
(every image exactly once), a chunk of images at a time; only counts of correct
predictions are kept, so memory does not grow with the test set. The counts are summed
over ranks at the end: integers, so N ranks give exactly the numbers of one process.
A model's views are fused by the merge rule; the ensemble fuses the models' fused
scores by the same rule (each model counts once, whatever its number of views).
"""
import time

import numpy

from .merge import check_rule, merge, top_k_correct


class _Progress:
    """Rank 0's line: images done (all ranks, estimated from this rank's share), images/s, ETA."""

    def __init__(self, total, enabled, stream=None):
        import sys  # noqa: PLC0415

        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.interactive = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done):
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(20 * done / max(self.total, 1))
        minutes, secs = divmod(int(eta), 60)
        line = f"[{bar:<20}] {done}/{self.total} images | {rate:8.1f} img/s | eta {minutes:02d}:{secs:02d}"
        self.stream.write(("\r" + line) if self.interactive else line + "\n")
        self.stream.flush()

    def close(self):
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


class EnsembleEvaluator:
    """Runs ``scorers`` (ModelScorer) over a source; ``rule`` fuses views and models."""

    def __init__(self, scorers, rule="mean", comm=None, chunk=100, progress=True, progress_every=10):
        self.scorers = list(scorers)
        self.rule = check_rule(rule)
        self.comm = comm if comm is not None and comm.size > 1 else None
        self.rank, self.size = (comm.rank, comm.size) if self.comm is not None else (0, 1)
        self.chunk = max(1, int(chunk))
        self.progress = progress and self.rank == 0
        self.progress_every = max(1, int(progress_every))
        self.rows = self._rows()

    def _rows(self):
        rows = []
        for m, scorer in enumerate(self.scorers):
            rows += [(m, "alone")] + [(m, view.name) for view in scorer.views] + [(m, "fused")]
        if len(self.scorers) > 1:
            rows.append((None, "ensemble"))
        return rows

    def share(self, count):
        """This rank's [start, stop) of ``count`` images."""
        return self.rank * count // self.size, (self.rank + 1) * count // self.size

    def run(self, source):
        """The result dict (see ``minwa eval --json``) over every image of ``source``."""
        count = len(source)
        if self.comm is not None:
            self.comm.agree((count, self.rows, self.rule), "the evaluation plan (images, models, views, merge rule)")
        start, stop = self.share(count)
        index = {row: i for i, row in enumerate(self.rows)}
        correct = numpy.zeros((len(self.rows), 2), dtype=numpy.float64)
        seconds = numpy.zeros(len(self.scorers))
        bar = _Progress(count, self.progress)
        started = time.perf_counter()
        for n, lo in enumerate(range(start, stop, self.chunk)):
            indices = numpy.arange(lo, min(stop, lo + self.chunk))
            images, labels = source.get_many(indices)
            images = list(images)
            fused = []
            for m, scorer in enumerate(self.scorers):
                t0 = time.perf_counter()
                scores = scorer.score(images)
                seconds[m] += time.perf_counter() - t0
                model_fused = merge([scores[v] for v in scorer.views], self.rule)
                fused.append(model_fused)
                named = {"alone": scores[scorer.base_view], "fused": model_fused}
                named.update({v.name: scores[v] for v in scorer.views})
                for name, value in named.items():
                    correct[index[(m, name)]] += _counts(value.probs, labels)
            if len(fused) > 1:
                correct[index[(None, "ensemble")]] += _counts(merge(fused, self.rule).probs, labels)
            if (n + 1) % self.progress_every == 0:
                bar.update(min(count, (min(stop, lo + self.chunk) - start) * self.size))
        local_seconds = time.perf_counter() - started
        bar.update(count)
        bar.close()
        if self.comm is not None:
            correct = self.comm.allreduce(correct)
        wall = local_seconds if self.comm is None else float(self.comm.allreduce(local_seconds, op="max"))
        return self._result(correct, count, wall, seconds, stop - start)

    def _result(self, correct, count, wall, seconds, local_count):
        def entry(i, view=None):
            top1, top5 = correct[i]
            out = {"top1_error": 1.0 - top1 / max(count, 1), "top5_error": 1.0 - top5 / max(count, 1),
                   "top1_correct": int(top1), "top5_correct": int(top5)}
            if view is not None:
                out["view"] = view
            return out

        index = {row: i for i, row in enumerate(self.rows)}
        models = []
        for m, scorer in enumerate(self.scorers):
            models.append({
                "label": scorer.label, "config": scorer.config_path, "weights": scorer.weights,
                "input_size": scorer.crop_size, "alone": entry(index[(m, "alone")], scorer.base_view.name),
                "views": [entry(index[(m, v.name)], v.name) for v in scorer.views],
                "fused": entry(index[(m, "fused")], f"{len(scorer.views)} views, {self.rule}"),
                "images_per_s_rank0": local_count / seconds[m] if seconds[m] > 0 else None})
        ensemble = entry(index[(None, "ensemble")], f"{len(self.scorers)} models, {self.rule}") \
            if len(self.scorers) > 1 else None
        return {"images": count, "ranks": self.size, "merge": self.rule, "seconds": wall,
                "images_per_s": count / wall if wall > 0 else None, "models": models, "ensemble": ensemble}


def _counts(probs, labels):
    return numpy.array([top_k_correct(probs, labels, 1), top_k_correct(probs, labels, 5)], dtype=numpy.float64)


def format_table(result):
    """The result as a text table: one line per model alone, view, fused model and the ensemble."""
    lines = [f"{'model':<16} {'view':<28} {'top-1 err':>9} {'top-5 err':>9}"]

    def line(label, entry):
        top1, top5 = 100 * entry["top1_error"], 100 * entry["top5_error"]
        lines.append(f"{label:<16} {entry['view']:<28} {top1:8.2f}% {top5:8.2f}%")

    for model in result["models"]:
        line(model["label"], dict(model["alone"], view=f"alone ({model['alone']['view']})"))
        for view in model["views"]:
            line(model["label"], view)
        line(model["label"], dict(model["fused"], view=f"fused ({model['fused']['view']})"))
    if result.get("ensemble"):
        line("ensemble", result["ensemble"])
    rate = result.get("images_per_s")
    lines.append(f"{result['images']} images on {result['ranks']} rank(s) in {result['seconds']:.1f} s"
                 + (f" ({rate:.1f} images/s)" if rate else ""))
    return "\n".join(lines)
