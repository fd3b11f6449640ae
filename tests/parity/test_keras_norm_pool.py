"""NormalizationLayer against keras.layers.LayerNormalization (same Scaling/Biases as gamma/beta),
and PoolingLayer against MaxPooling1D/2D and AveragePooling1D/2D ("valid" and "same"; Keras's
"same" average excludes the padding, as netgraph's Mean does). Outputs to 1e-5."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import netgraph as ng


@pytest.mark.parametrize("axis, levels, center, scale", [
    (-1, -1, True, True), ((1, 2), (0, 1), True, True), (-1, -1, False, True), (1, 0, True, False),
])
def test_layer_normalization_matches_keras(rng, keras_call, record_error, axis, levels, center, scale):
    x = (2 * rng.standard_normal((3, 4, 5)) + 1).astype(np.float32)
    theirs = keras.layers.LayerNormalization(axis=axis, epsilon=1e-5, center=center, scale=scale)
    keras_call(theirs.build, x.shape)
    weights = [rng.uniform(0.5, 2, w.shape).astype(np.float32) for w in theirs.weights]
    theirs.set_weights(weights)
    names = [n for n, on in (("Scaling", scale), ("Biases", center)) if on]
    arrays = dict(zip(names, weights))  # Keras's order: gamma, then beta
    ours = ng.NormalizationLayer(levels, epsilon=1e-5, Input=(4, 5), **arrays,
                                 **{n: None for n in ("Scaling", "Biases") if n not in names})
    assert record_error("LayerNormalization", ours(x), keras_call(theirs, x)) < 1e-5


POOLS_1D = [(keras.layers.MaxPooling1D, "Max"), (keras.layers.AveragePooling1D, "Mean")]
POOLS_2D = [(keras.layers.MaxPooling2D, "Max"), (keras.layers.AveragePooling2D, "Mean")]


@pytest.mark.parametrize("keras_layer, function", POOLS_1D)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool_size, strides", [(2, None), (3, 2), (3, 1)])
def test_pooling_1d_matches_keras(rng, keras_call, record_error, keras_layer, function, padding,
                                  pool_size, strides):
    x = rng.standard_normal((3, 8, 2)).astype(np.float32)
    theirs = keras_layer(pool_size=pool_size, strides=strides, padding=padding)
    ours = ng.PoolingLayer(pool_size, strides or pool_size, padding=padding.capitalize(),
                           function=function, interleaving=True, Input=(8, 2))
    assert record_error(f"{keras_layer.__name__}", ours(x), keras_call(theirs, x)) < 1e-5


@pytest.mark.parametrize("keras_layer, function", POOLS_2D)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool_size, strides", [(2, None), ((2, 3), (2, 1))])
def test_pooling_2d_matches_keras(rng, keras_call, record_error, keras_layer, function, padding,
                                  pool_size, strides):
    x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    theirs = keras_layer(pool_size=pool_size, strides=strides, padding=padding)
    ours = ng.PoolingLayer(pool_size, strides or pool_size, padding=padding.capitalize(),
                           function=function, interleaving=True, Input=(5, 7, 3))
    assert record_error(f"{keras_layer.__name__}", ours(x), keras_call(theirs, x)) < 1e-5
