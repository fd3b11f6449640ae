"""BatchNormalizationLayer against keras.layers.BatchNormalization (same weights): outputs in
evaluation and training mode, and the moving statistics after one training step."""
from __future__ import annotations

import jax
import keras
import numpy as np

import netgraph as ng
from netgraph.layers.lowering import BATCH_AXIS


def test_batch_normalization_matches_keras(rng, keras_call, record_error):
    c, momentum, eps = 4, 0.8, 1e-3
    weights = [rng.uniform(0.5, 2, c), rng.standard_normal(c), rng.standard_normal(c),
               rng.uniform(0.5, 2, c)]
    weights = [w.astype(np.float32) for w in weights]
    x = (2 * rng.standard_normal((5, 3, c)) + 0.5).astype(np.float32)
    theirs = keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=eps)
    keras_call(theirs.build, x.shape)
    theirs.set_weights(weights)
    ours = ng.BatchNormalizationLayer(
        momentum=momentum, epsilon=eps, interleaving=True, Input=(3, c),
        **dict(zip(("Scaling", "Biases", "MovingMean", "MovingVariance"), weights)))

    assert record_error("BatchNormalization (evaluation)", ours(x),
                        keras_call(theirs, x, training=False)) < 1e-5

    expected_train = keras_call(theirs, x, training=True)  # also updates Keras's moving stats
    apply, params = ng.lower(ours, batch_axis=BATCH_AXIS), ng.params_of(ours)
    outputs, state = jax.vmap(lambda xi: apply(params, {"Input": xi}, train=True, return_state=True),
                              axis_name=BATCH_AXIS)(x)
    assert record_error("BatchNormalization (training)", outputs["Output"], expected_train) < 1e-5
    moving_mean, moving_var = (np.asarray(v.value) for v in (theirs.moving_mean, theirs.moving_variance))
    assert record_error("BatchNormalization (moving statistics)",
                        np.stack([state["MovingMean"][0], state["MovingVariance"][0]]),
                        np.stack([moving_mean, moving_var])) < 1e-5
