"""Keras 3 parity for the fidelity items of issue 13: query-masked rows keep their weights
(6), N-D inputs to single-head attention (7), MultiHeadAttention's ``use_gate``,
``sliding_window``, ``key_mask`` and per-head / batch-shared attention masks (8), 0/1 float
masks (10). Outputs and weights agree with Keras to 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

import keras
import netgraph as ng

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

B, T, S = 2, 4, 5


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def perturb(layer, rng):
    """Non-trivial weights: Keras's initial ones plus noise (biases non-zero too)."""
    layer.set_weights([np.asarray(w.value) + 0.3 * randn(rng, *w.shape) for w in layer.weights])


def close(record_error, family, ours, theirs):
    error = record_error(family, ours, theirs)
    assert error <= 1e-5, f"{family}: max error {error:.2e}"


# ------------------------------------------------------- 6. query mask keeps weights
@pytest.mark.parametrize("cls", [keras.layers.Attention, keras.layers.AdditiveAttention])
def test_6_query_masked_rows_keep_their_weights(keras_call, record_error, cls):
    rng = np.random.default_rng(6)
    q, v = randn(rng, B, T, 3), randn(rng, B, S, 3)
    query_mask = np.array([[1, 0, 1, 0], [0, 1, 1, 1]], bool)
    layer = cls(use_scale=True)
    keras_call(layer, [q, v])
    perturb(layer, rng)
    out, weights = keras_call(layer, [q, v], mask=[query_mask, None], return_attention_scores=True)
    net = ng.keras.from_keras(layer, use_key=False, query_mask=True, return_attention_scores=True)
    ours = net({"Query": q, "Value": v, "QueryMask": query_mask})
    close(record_error, "fidelity: query mask", ours["Output"], out)
    close(record_error, "fidelity: query mask", ours["AttentionWeights"], weights)
    assert np.all(ours["Output"][~query_mask] == 0)
    assert np.all(ours["AttentionWeights"][~query_mask].sum(-1) > 0.99)  # kept, not zeroed


# ------------------------------------------------------------- 7. N-D single-head
@pytest.mark.parametrize("cls, kwargs", [(keras.layers.Attention, dict(score_mode="concat")),
                                         (keras.layers.AdditiveAttention, {})])
def test_7_nd_inputs_attend_over_the_last_sequence_axis(keras_call, record_error, cls, kwargs):
    rng = np.random.default_rng(7)
    q, v, k = randn(rng, B, 3, T, 4), randn(rng, B, 3, S, 2), randn(rng, B, 3, S, 4)
    layer = cls(**kwargs)
    keras_call(layer, [q, v, k])
    perturb(layer, rng)
    out, weights = keras_call(layer, [q, v, k], return_attention_scores=True)
    net = ng.keras.from_keras(layer, return_attention_scores=True)
    assert net.input_ports["Query"][:2] == ("Varying", ng.Automatic)  # T1 mapped, T attended
    ours = net({"Query": q, "Value": v, "Key": k})
    close(record_error, "fidelity: N-D attention", ours["Output"], out)
    close(record_error, "fidelity: N-D attention", ours["AttentionWeights"], weights)


# --------------------------------------------------------------------- 8. MHA options
MHA_CASES = {
    "use_gate": (dict(use_gate=True, value_dim=2), {}, {}),
    "sliding_window": (dict(sliding_window=2), {}, {}),
    "sliding_window+causal": (dict(sliding_window=2), dict(use_causal_mask=True), dict(use_causal_mask=True)),
}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_8_mha_gate_and_sliding_window(keras_call, record_error, case):
    kwargs, call, options = MHA_CASES[case]
    rng = np.random.default_rng(8)
    q, v = randn(rng, B, T + 1, 4), randn(rng, B, S + 1, 3)
    layer = keras.layers.MultiHeadAttention(2, 3, **kwargs)
    keras_call(layer, q, v, return_attention_scores=True)
    perturb(layer, rng)
    out, weights = keras_call(layer, q, v, return_attention_scores=True, **call)
    ours = ng.keras.from_keras(layer, use_key=False, return_attention_scores=True, **options)(
        {"Query": q, "Value": v})
    close(record_error, "fidelity: MHA options", ours["Output"], out)
    close(record_error, "fidelity: MHA options", ours["AttentionWeights"], weights)


def test_8_mha_key_mask_and_per_head_and_shared_masks(keras_call, record_error):
    rng = np.random.default_rng(9)
    q, v, k = randn(rng, B, T, 4), randn(rng, B, S, 3), randn(rng, B, S, 5)
    layer = keras.layers.MultiHeadAttention(2, 3)
    keras_call(layer, q, v, k, return_attention_scores=True)
    perturb(layer, rng)
    value_mask, key_mask = rng.integers(0, 2, (2, B, S)).astype(bool)
    value_mask[:, 0] = key_mask[:, 0] = True
    theirs = keras_call(layer, q, v, k, value_mask=value_mask, key_mask=key_mask, return_attention_scores=True)
    ours = ng.keras.from_keras(layer, value_mask=True, key_mask=True, return_attention_scores=True)(
        {"Query": q, "Value": v, "Key": k, "ValueMask": value_mask, "KeyMask": key_mask})
    close(record_error, "fidelity: MHA masks", ours["Output"], theirs[0])
    close(record_error, "fidelity: MHA masks", ours["AttentionWeights"], theirs[1])

    per_head = rng.integers(0, 2, (B, 2, T, S)).astype(bool)
    per_head[..., 0] = True
    theirs = keras_call(layer, q, v, k, attention_mask=per_head, return_attention_scores=True)
    net = ng.keras.from_keras(layer, attention_mask="heads", return_attention_scores=True)
    assert net.input_ports["AttentionMask"][:1] == (2,)
    ours = net({"Query": q, "Value": v, "Key": k, "AttentionMask": per_head})
    close(record_error, "fidelity: MHA masks", ours["Output"], theirs[0])
    close(record_error, "fidelity: MHA masks", ours["AttentionWeights"], theirs[1])

    shared = rng.integers(0, 2, (T, S))  # one (T, S) mask for the batch, as 0/1 floats (10)
    shared[:, 0] = 1
    theirs = keras_call(layer, q, v, k, attention_mask=shared.astype(bool), return_attention_scores=True)
    ours = ng.keras.from_keras(layer, attention_mask=True, return_attention_scores=True)(
        {"Query": q, "Value": v, "Key": k, "AttentionMask": shared.astype(np.float32)})
    close(record_error, "fidelity: MHA masks", ours["Output"], theirs[0])
    close(record_error, "fidelity: MHA masks", ours["AttentionWeights"], theirs[1])


def test_8_mha_attention_mask_with_unattended_axes(keras_call, record_error):
    """attention_axes=(1,) on (B, T1, T2, dim): T2 acts as a batch axis; the attention mask is
    laid out as Keras's (T2, T1, S1) per example."""
    rng = np.random.default_rng(10)
    q, v = randn(rng, B, 3, 2, 5), randn(rng, B, 4, 2, 3)
    layer = keras.layers.MultiHeadAttention(2, 3, attention_axes=(1,))
    keras_call(layer, q, v, return_attention_scores=True)
    perturb(layer, rng)
    mask = rng.integers(0, 2, (B, 2, 3, 4)).astype(bool)
    mask[..., 0] = True
    out, weights = keras_call(layer, q, v, attention_mask=mask, return_attention_scores=True)
    ours = ng.keras.from_keras(layer, use_key=False, attention_mask=True, return_attention_scores=True)(
        {"Query": q, "Value": v, "AttentionMask": mask})
    close(record_error, "fidelity: MHA masks", ours["Output"], out)
    close(record_error, "fidelity: MHA masks", ours["AttentionWeights"], weights)
