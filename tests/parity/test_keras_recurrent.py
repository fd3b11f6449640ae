"""The recurrent layers against keras.layers.SimpleRNN, GRU, LSTM and Bidirectional with the
same weights mapped: sequences and final states (``return_state``) to 1e-5, on full
sequences and on post-padded ones with a Keras mask (our true lengths).

The weight mapping (Keras kernels are k x G*n, ours one n x k matrix per gate):

* SimpleRNN: kernel -> "InputWeights" (transposed), recurrent_kernel -> "StateWeights".
* LSTM (Keras gate order i, f, c, o): i -> "InputGate", f -> "ForgetGate", c -> "MemoryGate",
  o -> "OutputGate".
* GRU (Keras gate order z, r, h): z -> "InputGate", r -> "ResetGate", h -> "MemoryGate".
  Wolfram's GatedRecurrentLayer applies the reset gate after the state product,
  ``r * (Wms.s)``: Keras's ``reset_after=True``, whose bias is (2, 3n) = input and recurrent
  biases. The z and r recurrent biases add to the input biases; the candidate's recurrent
  bias sits inside ``r * (...)`` and has no counterpart, so it is zero in the matching
  configuration. Keras's ``reset_after=False`` (``Wms.(r * s)``, the classic formulation) is a
  different function, checked to differ.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

import netgraph as ng

B, T, K, N = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 4])


def _data(rng):
    x = rng.standard_normal((B, T, K)).astype(np.float32)
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    return x, mask


def _weights(layer):
    """A Keras layer's weights as NumPy arrays (``get_weights`` raises a NumPy 2
    DeprecationWarning, an error in this suite)."""
    return [np.array(w.value) for w in layer.weights]


def _randomise(layer, rng, scale=0.6):
    layer.set_weights([(scale * rng.standard_normal(w.shape)).astype(np.float32)
                       for w in _weights(layer)])


def _gates(kernel, recurrent, bias, names):
    """Keras (k x G*n, n x G*n, G*n) -> our arrays, one gate per name (None: skipped)."""
    n = recurrent.shape[0]
    arrays = {}
    for g, name in enumerate(names):
        cols = slice(g * n, (g + 1) * n)
        arrays.update({f"{name}InputWeights": kernel[:, cols].T, f"{name}StateWeights": recurrent[:, cols].T,
                       f"{name}Biases": bias[cols]})
    return arrays


def ours_from(keras_layer):
    """The netgraph layer holding a built Keras recurrent layer's weights."""
    config = keras_layer.get_config()
    weights = _weights(keras_layer)
    n = config["units"]
    if isinstance(keras_layer, keras.layers.SimpleRNN):
        kernel, recurrent, bias = weights
        return ng.BasicRecurrentLayer(n, return_state=True, InputWeights=kernel.T,
                                      StateWeights=recurrent.T, Biases=bias)
    if isinstance(keras_layer, keras.layers.LSTM):
        arrays = _gates(*weights, ("InputGate", "ForgetGate", "MemoryGate", "OutputGate"))
        return ng.LongShortTermMemoryLayer(n, return_state=True, **arrays)
    kernel, recurrent, bias = weights
    assert config["reset_after"] and np.all(bias[1, 2 * n:] == 0)
    folded = np.concatenate([bias[0, :2 * n] + bias[1, :2 * n], bias[0, 2 * n:]])
    arrays = _gates(kernel, recurrent, folded, ("InputGate", "ResetGate", "MemoryGate"))
    return ng.GatedRecurrentLayer(n, return_state=True, **arrays)


def _keras_gru(rng, x, keras_call, reset_after=True):
    layer = keras.layers.GRU(N, return_sequences=True, return_state=True, reset_after=reset_after)
    keras_call(layer.build, x.shape)
    _randomise(layer, rng)
    if reset_after:  # the candidate's recurrent bias has no Wolfram counterpart
        kernel, recurrent, bias = _weights(layer)
        bias[1, 2 * N:] = 0
        layer.set_weights([kernel, recurrent, bias])
    return layer


def _keras_layer(kind, rng, x, keras_call):
    if kind == "GRU":
        return _keras_gru(rng, x, keras_call)
    layer = getattr(keras.layers, kind)(N, return_sequences=True, return_state=True)
    keras_call(layer.build, x.shape)
    _randomise(layer, rng)
    return layer


@pytest.mark.parametrize("kind", ["SimpleRNN", "GRU", "LSTM"])
def test_recurrent_layers_match_keras(kind, rng, keras_call, record_error):
    x, mask = _data(rng)
    theirs = _keras_layer(kind, rng, x, keras_call)
    ours = ours_from(theirs).evolve(port_specs={"Input": ("Varying", K)})
    full = keras_call(theirs, x)
    got = ours(x)
    assert record_error(kind, got["Output"], full[0]) < 1e-5
    assert record_error(f"{kind} (return_state)", got["FinalState"], full[1]) < 1e-5
    if kind == "LSTM":
        assert record_error("LSTM (return_state, cell)", got["FinalCellState"], full[2]) < 1e-5
    # post-padded sequences with a Keras mask = a list of sequences of their true lengths
    masked = keras_call(theirs, x, mask=mask)
    listed = ours([x[b, :n] for b, n in enumerate(LENGTHS)])
    for b, n in enumerate(LENGTHS):
        assert record_error(f"{kind} (masked)", listed[b]["Output"], masked[0][b, :n]) < 1e-5
        assert record_error(f"{kind} (masked, return_state)", listed[b]["FinalState"], masked[1][b]) < 1e-5
        if kind == "LSTM":
            assert record_error("LSTM (masked, cell)", listed[b]["FinalCellState"], masked[2][b]) < 1e-5


def test_gru_is_keras_reset_after_not_the_classic_formulation(rng, keras_call):
    """The classic GRU (reset before the product) computes something else from the same
    weights: documented, not matched."""
    x, _ = _data(rng)
    after = _keras_gru(rng, x, keras_call)
    classic = _keras_gru(rng, x, keras_call, reset_after=False)
    kernel, recurrent, bias = _weights(after)
    classic.set_weights([kernel, recurrent, bias[0]])
    ours = ours_from(after).evolve(port_specs={"Input": (T, K)})
    assert np.max(np.abs(ours(x)["Output"] - keras_call(classic, x)[0])) > 1e-3


def test_bidirectional_lstm_matches_keras(rng, keras_call, record_error):
    x, mask = _data(rng)
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(N, return_sequences=True, return_state=True))
    keras_call(theirs.build, x.shape)
    _randomise(theirs, rng)
    ours = ng.NetBidirectionalOperator((ours_from(theirs.forward_layer), ours_from(theirs.backward_layer)),
                                       Input=("Varying", K))
    assert ours.output_names == ("Output", "ForwardFinalState", "ForwardFinalCellState",
                                 "BackwardFinalState", "BackwardFinalCellState")
    full = keras_call(theirs, x)
    got = ours(x)
    assert record_error("Bidirectional(LSTM)", got["Output"], full[0]) < 1e-5
    for port, value in zip(ours.output_names[1:], full[1:]):
        assert record_error("Bidirectional(LSTM) (return_state)", got[port], value) < 1e-5
    masked = keras_call(theirs, x, mask=mask)
    listed = ours([x[b, :n] for b, n in enumerate(LENGTHS)])
    for b, n in enumerate(LENGTHS):
        assert record_error("Bidirectional(LSTM) (masked)", listed[b]["Output"], masked[0][b, :n]) < 1e-5
        for port, value in zip(ours.output_names[1:], masked[1:]):
            assert record_error("Bidirectional(LSTM) (masked, return_state)", listed[b][port], value[b]) < 1e-5
