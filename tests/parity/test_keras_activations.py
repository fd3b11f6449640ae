"""ElementwiseLayer's named functions against ``keras.activations`` where Keras has the same
function: outputs to 1e-5. Keras's ``hard_sigmoid`` is a different function from Wolfram's
"HardSigmoid" (netgraph follows Wolfram); the test pins down the difference."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import netgraph as ng

SAME = {
    "ReLU": keras.activations.relu,
    "ELU": keras.activations.elu,
    "SELU": keras.activations.selu,
    "GELU": lambda x: keras.activations.gelu(x, approximate=False),
    "Swish": keras.activations.silu,
    "SoftPlus": keras.activations.softplus,
    "SoftSign": keras.activations.softsign,
    "Tanh": keras.activations.tanh,
    "Sigmoid": keras.activations.sigmoid,
    "HardSwish": keras.activations.hard_silu,
    "HardTanh": keras.activations.hard_tanh,
    "Mish": keras.activations.mish,
    "Exp": keras.activations.exponential,
}


def _x(rng):
    points = np.array([-7.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 7.0], np.float32)
    return np.concatenate([points, (3 * rng.standard_normal(23)).astype(np.float32)])


def test_named_functions_match_keras(rng, keras_call, record_error):
    x = _x(rng)
    graph = ng.NetGraph({n: ng.ElementwiseLayer(n) for n in SAME},
                        [(n, ng.NetPort(n)) for n in SAME], Input=x.size)
    ours = graph(x)
    for name, theirs in SAME.items():
        assert record_error(f"activation {name}", ours[name], keras_call(theirs, x)) < 1e-5, name


def test_hard_sigmoid_is_wolframs_not_keras(rng, keras_call):
    """Wolfram: Clip[(x+1)/2, {0, 1}]; Keras 3: relu6(x + 3) / 6. They agree only at 0."""
    x = _x(rng)
    ours = ng.ElementwiseLayer("HardSigmoid", Input=x.size)(x)
    theirs = keras_call(keras.activations.hard_sigmoid, x)
    np.testing.assert_allclose(ours, np.clip((x + 1) / 2, 0, 1), atol=1e-7)
    np.testing.assert_allclose(theirs, np.clip(x + 3, 0, 6) / 6, atol=1e-6)
    assert np.max(np.abs(ours - theirs)) > 0.1
    assert ours[4] == pytest.approx(theirs[4]) == pytest.approx(0.5)


def test_keras_hard_sigmoid_as_a_callable(rng, keras_call):
    """Keras's hard_sigmoid is available as a callable (such a layer cannot be saved)."""
    import jax

    x = _x(rng)
    ours = ng.ElementwiseLayer(jax.nn.hard_sigmoid, Input=x.size)(x)
    np.testing.assert_allclose(ours, keras_call(keras.activations.hard_sigmoid, x), atol=1e-6)
