"""Evaluation: plain test metrics for the trainer, and multi-scale / flip / ensemble evaluation.

``evaluate`` and ``share_params`` (scalar_metrics) are what ``minwa train`` tests with.
The rest is ``minwa eval``: ``fully_convolutional`` turns a trained net's InnerProduct
layers into convolutions, ``views`` makes the test views of an image (scales, flips,
crops), ``merge`` fuses class posteriors, ``model_scorer`` runs one model over views in
memory-bounded chunks and ``ensemble_evaluator`` scores models, views and the ensemble,
sharded over MPI ranks. Names load on first use.
"""
import importlib

_EXPORTS = {
    "evaluate": "scalar_metrics", "share_params": "scalar_metrics",
    "fully_convolutional": "fully_convolutional", "FullyConvolutional": "fully_convolutional",
    "View": "views", "parse_views": "views", "Scores": "merge", "merge": "merge", "MERGE_RULES": "merge",
    "ModelScorer": "model_scorer", "EnsembleEvaluator": "ensemble_evaluator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minwa.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
