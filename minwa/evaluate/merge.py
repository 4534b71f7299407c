"""Merge rules: how the class posteriors of several views (or models) become one prediction.

Every view gives ``Scores``: ``probs`` (N, K), the softmax posteriors (for a dense view the
average of the softmax map, as in Deep Image §5), and ``logits`` (N, K), the raw class
scores (averaged over the map). A rule maps a list of Scores to one Scores, so it applies
the same way to a model's views and then to the models of an ensemble:

- ``mean``: arithmetic mean of the posteriors (Deep Image's fusion);
- ``gmean``: geometric mean of the posteriors, renormalised;
- ``max``: the largest posterior of each class over the inputs (a ranking, not normalised);
- ``logits``: the mean of the logits, then softmax.
"""
from collections import namedtuple

import numpy

from ..errors import ConfigError

Scores = namedtuple("Scores", ["probs", "logits"])
_TINY = 1e-30


def softmax(logits, axis=-1):
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = numpy.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _mean(items):
    probs = numpy.mean([s.probs for s in items], axis=0)
    return Scores(probs, numpy.log(numpy.maximum(probs, _TINY)))


def _gmean(items):
    logs = numpy.mean([numpy.log(numpy.maximum(s.probs, _TINY)) for s in items], axis=0)
    probs = softmax(logs)
    return Scores(probs, numpy.log(numpy.maximum(probs, _TINY)))


def _max(items):
    probs = numpy.max([s.probs for s in items], axis=0)
    return Scores(probs, numpy.log(numpy.maximum(probs, _TINY)))


def _logits(items):
    logits = numpy.mean([s.logits for s in items], axis=0)
    return Scores(softmax(logits), logits)


MERGE_RULES = {"mean": _mean, "gmean": _gmean, "max": _max, "logits": _logits}


def check_rule(rule, where="--merge"):
    if rule not in MERGE_RULES:
        raise ConfigError(f"{where} {rule!r}: unknown merge rule; expected one of {', '.join(MERGE_RULES)}")
    return rule


def merge(items, rule="mean"):
    """One Scores from a non-empty list of Scores by ``rule`` (mean | gmean | max | logits)."""
    check_rule(rule)
    items = list(items)
    if not items:
        raise ValueError("merge: nothing to merge")
    return MERGE_RULES[rule](items)


def from_map(score_map):
    """Scores of a (N, K, H, W) map of logits: the mean softmax and the mean logits over positions."""
    score_map = numpy.asarray(score_map, dtype=numpy.float64)
    if score_map.ndim == 2:
        score_map = score_map[:, :, None, None]
    probs = softmax(score_map, axis=1).mean(axis=(2, 3))
    return Scores(probs, score_map.mean(axis=(2, 3)))


def top_k_correct(probs, labels, k):
    """How many rows of ``probs`` hold their label among the ``k`` largest scores.

    Ties are broken by class index, as argmax does: an equal score of a lower class ranks first.
    """
    probs = numpy.asarray(probs)
    labels = numpy.asarray(labels, dtype=numpy.int64)
    if len(labels) == 0:
        return 0
    k = min(int(k), probs.shape[1])
    target = probs[numpy.arange(len(labels)), labels][:, None]
    lower_class = numpy.arange(probs.shape[1])[None, :] < labels[:, None]
    higher = (probs > target).sum(axis=1) + ((probs == target) & lower_class).sum(axis=1)
    return int((higher < k).sum())
