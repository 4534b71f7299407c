"""Accuracy: fraction of positions whose label is among the top_k scores (Caffe's Accuracy).

As in Caffe, a position counts as correct when fewer than ``top_k`` classes score
strictly higher than the labelled one (ties favour the label); a position with a NaN
score is wrong (a diverged net scores 0, not 1).  It has no backward.
"""
from ..backend import xp_of
from ._util import canonical_axis, count, number, shape_error
from .layer import Layer
from .registry import register
from .softmax_with_loss import label_view


@register
class Accuracy(Layer):
    type = "Accuracy"
    n_bottoms = 2

    def setup(self, bottom_shapes):
        scores, labels = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.axis = canonical_axis(self, self.option("axis", 1), len(scores))
        self.top_k = number(self, "top_k", 1, int, minimum=1)
        if self.top_k > scores[self.axis]:
            raise self.error(f"top_k {self.top_k} exceeds the {scores[self.axis]} classes", "top_k")
        ignore = self.option("ignore_label")
        self.ignore_label = None if ignore is None else number(self, "ignore_label", None, int)
        if count(labels) != count(scores, 0, self.axis) * count(scores, self.axis + 1):
            raise shape_error(self, f"label shape {labels} does not match scores {scores}")
        return [()]

    def forward(self, bottoms):
        x, labels = bottoms
        xp = xp_of(x)
        classes = x.shape[self.axis]
        outer, inner = count(x.shape, 0, self.axis), count(x.shape, self.axis + 1)
        lab = label_view(self, x.shape, labels, self.axis)
        valid = (lab >= 0) & (lab < classes)
        if self.ignore_label is not None:
            valid &= lab != self.ignore_label
        x3 = x.reshape(outer, classes, inner)
        true_score = xp.take_along_axis(x3, xp.where(valid, lab, 0)[:, None, :], axis=1)
        better = (x3 > true_score).sum(axis=1)
        finite = ~xp.isnan(x3).any(axis=1)  # NaN scores compare false with everything: never 'correct'
        correct = (better < self.top_k) & valid & finite
        n_valid = int(valid.sum())
        value = float(correct.sum()) / n_valid if n_valid else 0.0
        return [xp.asarray(value, dtype=x.dtype)]
