"""DropoutLayer: the identity in evaluation, inverted dropout in training mode."""
from __future__ import annotations

import jax
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9])
def test_identity_in_evaluation(p, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.DropoutLayer(p), {"Input": x}, lambda i, a: i["Input"],
                        varying=p == 0.5)
    np.testing.assert_array_equal(check.outputs["Output"], x)


def test_default_probability():
    assert ng.DropoutLayer().options.probability == 0.5


@pytest.fixture(scope="module")
def big():
    """One compiled net on a large input, shared by the training-mode tests."""
    x = (np.random.default_rng(5).uniform(1.0, 2.0, (200, 100))).astype(np.float32)
    return ng.DropoutLayer(0.3, Input=x.shape), x


def test_training_is_reproducible_with_a_seed(big):
    net, x = big
    a = net(x, train=True, seed=1)
    b = net(x, train=True, seed=1)
    np.testing.assert_array_equal(a, b)


def test_training_differs_with_another_seed(big):
    net, x = big
    a = net(x, train=True, seed=1)
    c = net(x, train=True, seed=2)
    assert not np.array_equal(a, c)


def test_training_zero_fraction_and_scaling(big):
    net, x = big
    p = 0.3
    y = net(x, train=True, seed=1)
    dropped = y == 0
    # x is in [1, 2]: a zero is a dropped element, never a kept one
    fraction = dropped.mean()
    n = x.size
    assert abs(fraction - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3, fraction
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)


def test_training_mean_is_preserved(big):
    net, x = big
    y = net(x, train=True, seed=3)
    assert abs(y.mean() - x.mean()) < 0.02 * x.mean()


def test_training_batch_examples_get_different_masks():
    x = np.ones((2, 50, 40), np.float32)  # a batch of two equal examples
    y = ng.DropoutLayer(0.5, Input=(50, 40))(x, train=True, seed=0)
    assert not np.array_equal(y[0] == 0, y[1] == 0)


def test_probability_zero_in_training_is_identity(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(ng.DropoutLayer(0.0, Input=(3, 4))(x, train=True, seed=1), x)


def test_training_varying_input(rng):
    net = ng.DropoutLayer(0.5, Input=("Varying", 3))
    x = rng.uniform(1.0, 2.0, (6, 3)).astype(np.float32)
    y = net(x, train=True, seed=4)
    assert y.shape == x.shape
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2.0 * x[kept], rtol=1e-6)


def test_lowered_training_uses_rng(rng):
    net = ng.DropoutLayer(0.5, Input=(20,))
    apply = ng.lower(net)
    x = {"Input": np.ones(20, np.float32)}
    a = apply(ng.params_of(net), x, rng=jax.random.key(0), train=True)["Output"]
    b = apply(ng.params_of(net), x, rng=jax.random.key(0), train=True)["Output"]
    e = apply(ng.params_of(net), x)["Output"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(e), x["Input"])
    assert set(np.unique(np.asarray(a))) <= {0.0, 2.0}


def test_lowered_training_without_rng_is_an_error():
    net = ng.DropoutLayer(0.5, Input=(4,))
    with pytest.raises(ng.InputDataError, match="rng"):
        ng.lower(net)(ng.params_of(net), {"Input": np.ones(4, np.float32)}, train=True)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_invalid_probability(p):
    with pytest.raises(ng.SpecificationError, match="probability"):
        ng.DropoutLayer(p)


def test_integer_input_is_an_element_error():
    with pytest.raises(ng.ElementTypeError):
        ng.DropoutLayer(Input=(3, "Integer")).output_ports
