"""SoftmaxWithLoss: softmax then multinomial logistic loss (Caffe's SoftmaxWithLoss).

Bottoms are scores (N, C, ...) and integer labels with one label per position
outside the class axis.  ``loss_param.ignore_label`` skips positions, and
``loss_param.normalization`` divides the summed loss as Caffe does: VALID (the
default: non-ignored positions), FULL (all positions), BATCH_SIZE (N) or NONE.
The top is a 0-d loss; an optional second top is the probabilities.
"""
import math

from ..backend import xp_of
from ..errors import DataError
from ._util import canonical_axis, count, shape_error
from .layer import Layer
from .registry import register

_LOG_FLT_MIN = math.log(1.1754943508222875e-38)  # Caffe clamps probabilities at FLT_MIN
NORMALIZATIONS = ("FULL", "VALID", "BATCH_SIZE", "NONE")


def loss_normalization(layer):
    """Caffe's loss_param: normalization wins over the legacy boolean normalize."""
    loss_param = layer.spec.get("loss_param") or {}
    if not isinstance(loss_param, dict):
        raise layer.error("loss_param must be a mapping", "loss_param")
    if "normalization" in loss_param:
        value = loss_param["normalization"]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(NORMALIZATIONS):
            value = NORMALIZATIONS[value]
        value = str(value).upper()
        if value not in NORMALIZATIONS:
            raise layer.error(f"expected one of {', '.join(NORMALIZATIONS)}, got {loss_param['normalization']!r}",
                              "loss_param.normalization")
        mode = value
    elif "normalize" in loss_param:
        mode = "VALID" if loss_param["normalize"] else "BATCH_SIZE"
    else:
        mode = "VALID"
    ignore = loss_param.get("ignore_label")
    if ignore is not None:
        try:
            ignore = int(ignore)
        except (TypeError, ValueError):
            raise layer.error(f"expected an integer, got {ignore!r}", "loss_param.ignore_label") from None
    return mode, ignore


def label_view(layer, scores_shape, labels, axis):
    """Labels as int (outer, inner) after checking they fit the scores."""
    outer, inner = count(scores_shape, 0, axis), count(scores_shape, axis + 1)
    if labels.size != outer * inner:
        raise shape_error(layer, f"label blob has {labels.size} values but the scores {tuple(scores_shape)} "
                                 f"need {outer * inner} (one per position outside axis {axis})")
    return labels.reshape(outer, inner).astype("int64", copy=False)


@register
class SoftmaxWithLoss(Layer):
    type = "SoftmaxWithLoss"
    n_bottoms = 2
    n_tops = (1, 2)
    is_loss = True

    def __init__(self, spec, phase="TRAIN"):
        super().__init__(spec, phase)
        if len(self.loss_weights) > 1 and spec.get("loss_weight") is None:
            self.loss_weights[1:] = [0.0] * (len(self.loss_weights) - 1)  # the prob top is not a loss

    def setup(self, bottom_shapes):
        scores, labels = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.axis = canonical_axis(self, self.option("axis", 1), len(scores))
        self.normalization, self.ignore_label = loss_normalization(self)
        if count(labels) != count(scores, 0, self.axis) * count(scores, self.axis + 1):
            raise shape_error(self, f"label shape {labels} does not match scores {scores}: expected "
                                    f"{count(scores, 0, self.axis) * count(scores, self.axis + 1)} labels")
        return [()] + ([scores] if len(self.tops) > 1 else [])

    def forward(self, bottoms):
        x, labels = bottoms
        xp = xp_of(x)
        axis = self.axis
        classes = x.shape[axis]
        outer, inner = count(x.shape, 0, axis), count(x.shape, axis + 1)
        lab = label_view(self, x.shape, labels, axis)
        valid = None
        if self.ignore_label is not None:
            valid = lab != self.ignore_label
            lab = xp.where(valid, lab, 0)
        if bool(((lab < 0) | (lab >= classes)).any()):
            bad = lab[(lab < 0) | (lab >= classes)].ravel()[:5].tolist()
            raise DataError(f"layer {self.name!r} (SoftmaxWithLoss): labels must be in [0, {classes}), got {bad}")
        x3 = x.reshape(outer, classes, inner)
        shifted = x3 - x3.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        prob = e / total
        logp = xp.take_along_axis(shifted, lab[:, None, :], axis=1)[:, 0, :] - xp.log(total[:, 0, :])
        logp = xp.maximum(logp, _LOG_FLT_MIN)
        if valid is not None:
            logp = logp * valid
        n_valid = int(valid.sum()) if valid is not None else outer * inner
        self._norm = self._normalizer(outer, inner, n_valid)
        loss = -logp.sum() / x.dtype.type(self._norm)
        self._prob, self._lab, self._valid, self._in_shape = prob, lab, valid, x.shape
        tops = [xp.asarray(loss, dtype=x.dtype)]
        if len(self.tops) > 1:
            tops.append(prob.reshape(x.shape))
        return tops

    def _normalizer(self, outer, inner, n_valid):
        mode = self.normalization
        value = {"FULL": outer * inner, "VALID": n_valid, "BATCH_SIZE": outer, "NONE": 1}[mode]
        return max(1.0, float(value))

    def backward(self, top_grads, propagate_down):
        if not propagate_down[0]:
            return [None, None]
        prob, lab = self._prob, self._lab
        xp = xp_of(prob)
        weight = top_grads[0] if top_grads[0] is not None else self.loss_weights[0]
        classes = prob.shape[1]
        onehot = xp.arange(classes).reshape(1, classes, 1) == lab[:, None, :]
        grad = prob - onehot
        if self._valid is not None:
            grad *= self._valid[:, None, :]
        grad *= weight / prob.dtype.type(self._norm)
        return [grad.reshape(self._in_shape), None]
