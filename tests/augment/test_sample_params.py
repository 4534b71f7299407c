import numpy
import pytest

from minwa.augment.sample_params import NUM_UNIFORMS, SLOTS, sample_uniforms


def test_uniforms_are_a_function_of_seed_epoch_and_index():
    a = sample_uniforms(3, 1, 42)
    assert a.shape == (NUM_UNIFORMS,) and ((0 <= a) & (a < 1)).all()
    assert (sample_uniforms(3, 1, 42) == a).all()
    for other in ((4, 1, 42), (3, 2, 42), (3, 1, 43)):
        assert not numpy.isclose(sample_uniforms(*other), a).any()


def test_uniforms_look_uniform_and_independent():
    draws = numpy.stack([sample_uniforms(0, 0, i) for i in range(3000)])
    assert abs(draws.mean() - 0.5) < 0.01
    assert numpy.abs(numpy.corrcoef(draws.T) - numpy.eye(NUM_UNIFORMS)).max() < 0.08
    assert len(numpy.unique(draws)) == draws.size


def test_slots_cover_the_vector_once():
    taken = sorted(i for lo, hi in SLOTS.values() for i in range(lo, hi))
    assert taken == list(range(NUM_UNIFORMS))


def test_negative_epoch_or_index_is_refused():
    with pytest.raises(ValueError):
        sample_uniforms(0, -1, 0)
