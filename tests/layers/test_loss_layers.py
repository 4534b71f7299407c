"""SoftmaxWithLoss and Accuracy against direct computations, with Caffe's normalisation and ignore rules."""
import numpy as np
import pytest

from minwa.errors import DataError, ShapeError


def reference_loss(x, labels, ignore=None, mode="VALID"):
    """Caffe's SoftmaxWithLoss written out position by position."""
    n, c = x.shape[:2]
    x3 = x.reshape(n, c, -1)
    lab = labels.reshape(n, -1).astype(int)
    total, valid = 0.0, 0
    for i in range(n):
        for j in range(x3.shape[2]):
            if ignore is not None and lab[i, j] == ignore:
                continue
            scores = x3[i, :, j]
            p = np.exp(scores - scores.max())
            p /= p.sum()
            total -= np.log(max(p[lab[i, j]], 1.1754943508222875e-38))
            valid += 1
    norm = {"FULL": x3.shape[0] * x3.shape[2], "VALID": valid, "BATCH_SIZE": n, "NONE": 1}[mode]
    return total / max(1.0, norm)


def loss_spec(**loss_param):
    return {"type": "SoftmaxWithLoss", "bottom": ["scores", "label"], "top": ["loss"], "loss_param": loss_param}


def test_loss_matches_reference_and_gradient(make_layer, gradcheck, rng):
    x = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5).astype(np.float64)  # Caffe feeds labels as floats
    layer, tops = make_layer(loss_spec(), [x.shape, labels.shape])
    assert tops == [()] and layer.is_loss and layer.loss_weights == [1.0]
    loss = layer.forward([x, labels])[0]
    assert loss.shape == () and loss.dtype == np.float64
    assert float(loss) == pytest.approx(reference_loss(x, labels), rel=1e-12)
    gradcheck(layer, [x, labels], wrt=[0])


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
def test_loss_normalization_and_ignore_label_spatial(make_layer, gradcheck, rng, mode):
    x = rng.standard_normal((2, 3, 2, 3))
    labels = rng.integers(0, 3, (2, 2, 3))
    labels[0, 0, 0] = labels[1, 1, 2] = 255
    layer, _ = make_layer(loss_spec(normalization=mode, ignore_label=255), [x.shape, labels.shape])
    loss = float(layer.forward([x, labels])[0])
    assert loss == pytest.approx(reference_loss(x, labels, 255, mode), rel=1e-12)
    grads = gradcheck(layer, [x, labels], wrt=[0])
    assert np.all(grads[0][0, :, 0, 0] == 0) and np.all(grads[0][1, :, 1, 2] == 0)


def test_legacy_normalize_flag(make_layer, rng):
    x = rng.standard_normal((4, 3, 2))
    labels = rng.integers(0, 3, (4, 2))
    layer, _ = make_layer(loss_spec(normalize=False), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == pytest.approx(reference_loss(x, labels, mode="BATCH_SIZE"))


def test_loss_weight_scales_the_gradient(make_layer, rng):
    x = rng.standard_normal((3, 4))
    labels = np.array([0, 3, 1])
    layer, _ = make_layer(loss_spec(), [x.shape, labels.shape])
    layer.forward([x, labels])
    g1 = layer.backward([np.array(1.0)], [True, False])[0]
    g2 = layer.backward([np.array(2.5)], [True, False])[0]
    np.testing.assert_allclose(g2, 2.5 * g1)
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    p[np.arange(3), labels] -= 1
    np.testing.assert_allclose(g1, p / 3, rtol=1e-12)


def test_loss_probability_top_and_float32(make_layer, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    spec = dict(loss_spec(), top=["loss", "prob"])
    layer, tops = make_layer(spec, [x.shape, (3,)], dtype="float32")
    assert tops == [(), (3, 4)] and layer.loss_weights == [1.0, 0.0]
    loss, prob = layer.forward([x, np.array([1, 2, 3])])
    assert loss.dtype == np.float32 and prob.dtype == np.float32
    np.testing.assert_allclose(prob.sum(1), 1, rtol=1e-6)


def test_loss_rejects_bad_labels(make_layer):
    layer, _ = make_layer(dict(loss_spec(), name="loss"), [(2, 3), (2,)])
    with pytest.raises(DataError, match="'loss'.*labels must be in"):
        layer.forward([np.zeros((2, 3)), np.array([0, 3])])
    with pytest.raises(ShapeError, match="label"):
        make_layer(loss_spec(), [(2, 3), (3,)])


# -- Accuracy ------------------------------------------------------------------------
def acc_spec(**param):
    return {"type": "Accuracy", "bottom": ["scores", "label"], "top": ["accuracy"], "accuracy_param": param}


def test_accuracy_top1_topk_and_ties(make_layer):
    x = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    labels = np.array([1, 2, 0, 1])
    layer, tops = make_layer(acc_spec(), [x.shape, labels.shape])
    assert tops == [()]
    # rows: right, wrong (rank 3), wrong (rank 2), tie at the top counts as right (as in Caffe)
    assert float(layer.forward([x, labels])[0]) == pytest.approx(0.5)
    layer, _ = make_layer(acc_spec(top_k=2), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == pytest.approx(0.75)


def test_accuracy_counts_nan_scores_as_wrong(make_layer):
    x = np.array([[0.1, 0.7, 0.2], [np.nan, np.nan, np.nan], [0.2, np.nan, 0.6], [0.4, 0.1, 0.2]])
    labels = np.array([1, 2, 0, 0])
    layer, _ = make_layer(acc_spec(), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == pytest.approx(0.5)  # rows 0 and 3; NaN rows never count
    layer, _ = make_layer(acc_spec(top_k=3), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == pytest.approx(0.5)


def test_accuracy_ignore_label_and_no_backward(make_layer, rng):
    x = rng.standard_normal((6, 5))
    labels = x.argmax(1).copy()
    labels[1] = (labels[1] + 1) % 5
    labels[2] = labels[3] = -1
    layer, _ = make_layer(acc_spec(ignore_label=-1), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == pytest.approx(3 / 4)
    from minwa.layers import Layer

    assert type(layer).backward is Layer.backward  # the Net treats it as having no gradient


def test_accuracy_spatial_and_errors(make_layer, rng):
    x = rng.standard_normal((2, 4, 3, 3))
    labels = x.argmax(1)
    layer, _ = make_layer(acc_spec(), [x.shape, labels.shape])
    assert float(layer.forward([x, labels])[0]) == 1.0
    with pytest.raises(Exception, match="top_k"):
        make_layer(acc_spec(top_k=5), [x.shape, labels.shape])
