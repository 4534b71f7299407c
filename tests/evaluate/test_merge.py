"""Merge rules on known inputs, score maps and top-k counting."""
import numpy
import pytest

from minwa.errors import ConfigError
from minwa.evaluate.merge import Scores, from_map, merge, softmax, top_k_correct


def scores(probs):
    probs = numpy.asarray(probs, dtype=float)
    return Scores(probs, numpy.log(probs))


def test_mean_averages_the_posteriors():
    a, b = scores([[0.5, 0.5, 0.0 + 1e-12]]), scores([[0.9, 0.05, 0.05]])
    numpy.testing.assert_allclose(merge([a, b], "mean").probs, [[0.7, 0.275, 0.025]], atol=1e-12)


def test_gmean_is_the_renormalised_geometric_mean():
    a, b = scores([[0.8, 0.2]]), scores([[0.2, 0.8]])
    numpy.testing.assert_allclose(merge([a, b], "gmean").probs, [[0.5, 0.5]], atol=1e-12)
    c, d = scores([[0.5, 0.25, 0.25]]), scores([[0.125, 0.5, 0.375]])
    g = numpy.sqrt(numpy.array([0.5 * 0.125, 0.25 * 0.5, 0.25 * 0.375]))
    numpy.testing.assert_allclose(merge([c, d], "gmean").probs[0], g / g.sum(), atol=1e-12)


def test_logits_rule_averages_logits_then_softmax():
    a = Scores(softmax(numpy.array([[2.0, 0.0]])), numpy.array([[2.0, 0.0]]))
    b = Scores(softmax(numpy.array([[0.0, 4.0]])), numpy.array([[0.0, 4.0]]))
    fused = merge([a, b], "logits")
    numpy.testing.assert_allclose(fused.logits, [[1.0, 2.0]])
    numpy.testing.assert_allclose(fused.probs, softmax(numpy.array([[1.0, 2.0]])))
    # mean of the posteriors prefers class 0 here, mean of logits prefers class 1
    a, b = Scores(numpy.array([[0.99, 0.01]]), numpy.array([[10.0, 5.4]])), \
        Scores(numpy.array([[0.4, 0.6]]), numpy.array([[0.0, 5.0]]))
    assert merge([a, b], "mean").probs.argmax() == 0
    assert merge([a, b], "logits").probs.argmax() == 1


def test_max_takes_the_largest_posterior_per_class():
    fused = merge([scores([[0.6, 0.3, 0.1]]), scores([[0.2, 0.7, 0.1]])], "max")
    numpy.testing.assert_allclose(fused.probs, [[0.6, 0.7, 0.1]])


def test_unknown_rule_names_the_option():
    with pytest.raises(ConfigError, match="--merge 'median'.*mean, gmean, max, logits"):
        merge([scores([[1.0]])], "median")


def test_from_map_averages_the_softmax_map():
    logits = numpy.zeros((1, 2, 1, 2))
    logits[0, :, 0, 0] = [0.0, 0.0]
    logits[0, :, 0, 1] = [numpy.log(3.0), 0.0]  # softmax 0.75, 0.25
    s = from_map(logits)
    numpy.testing.assert_allclose(s.probs, [[0.625, 0.375]])
    numpy.testing.assert_allclose(s.logits, [[numpy.log(3.0) / 2, 0.0]])


def test_top_k_correct_and_ties():
    probs = numpy.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]])
    labels = numpy.array([1, 2, 1])
    assert top_k_correct(probs, labels, 1) == 1
    assert top_k_correct(probs, labels, 2) == 2
    assert top_k_correct(probs, labels, 5) == 3
    uniform = numpy.full((2, 4), 0.25)
    assert top_k_correct(uniform, numpy.array([0, 3]), 1) == 1  # a tie goes to the lower class, as argmax
