"""Parity of ``ng.keras.MultiHeadAttention`` (via ``from_keras``) with Keras 3's layer.

Outputs and attention scores must agree to 1e-5 on every query position that sees at least
one key. Positions that see no key: netgraph gives all-zero weights, so the attention
context is zero and the output is the output projection's bias. Keras's explicit path (taken
with ``return_attention_scores=True`` or dropout) also zeroes fully masked weight rows, but its
fused ``dot_product_attention`` path (plain call, 3-D inputs) gives uniform weights there;
those positions are only checked on our side.

Keras 3.15's plain call crashes on 3-D inputs when ``value_dim != key_dim`` (its fused path
assumes equal head sizes), so such cases use the explicit path
(``return_attention_scores=True``) as the reference.
"""
from __future__ import annotations

import numpy as np
import pytest

import keras
import netgraph as ng

# see test_keras_attention.py: Keras's Variable.numpy() warns under NumPy 2
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

B, T, S = 2, 4, 5


def randn(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def perturb_weights(layer, rng):
    """Non-trivial weights: Keras's glorot kernels plus random (non-zero) biases."""
    values = []
    for w in layer.weights:
        current = np.asarray(w.value)
        if w.path.endswith("bias"):
            values.append(randn(rng, *current.shape, scale=0.5))
        else:
            values.append(current + randn(rng, *current.shape, scale=0.2))
    layer.set_weights(values)


def output_bias(layer):
    for w in layer.weights:
        if w.path.endswith("attention_output/bias"):
            return np.asarray(w.value)
    return 0.0


def check(family, record_error, ours, theirs, rows, bias):
    """Compare on query positions ``rows`` (boolean, leading axes B x T..) and check ours on
    the others: zero weights, output = bias (zero context)."""
    out, weights = (ours, None) if not isinstance(ours, dict) else (ours["Output"], ours.get("AttentionWeights"))
    keras_out, keras_weights = theirs if isinstance(theirs, tuple) else (theirs, None)
    assert out.shape == keras_out.shape
    error = record_error(family, out, keras_out, rows)
    assert error <= 1e-5, f"Output: max error {error:.2e}"
    assert np.all(np.isfinite(out))
    if rows is not None and not rows.all():
        np.testing.assert_allclose(out[~rows], np.broadcast_to(bias, out[~rows].shape), atol=1e-6)
    if keras_weights is not None:
        assert weights is not None and weights.shape == keras_weights.shape
        if rows is None:
            error = record_error(family, weights, keras_weights)
        else:
            # weights are B x N x T.. x S..: heads after the query positions, to select rows
            weights = np.moveaxis(weights, 1, rows.ndim)
            keras_weights = np.moveaxis(keras_weights, 1, rows.ndim)
            error = record_error(family, weights, keras_weights, rows)
        assert error <= 1e-5, f"AttentionWeights: max error {error:.2e}"
        if rows is not None and not rows.all():
            assert np.all(weights[~rows] == 0)


# ------------------------------------------------------------------------ 3-D inputs
CASES = {
    # name: (layer kwargs, call options, use a separate key)
    "1 head": (dict(num_heads=1, key_dim=3), {}, False),
    "2 heads, value_dim != key_dim, key": (dict(num_heads=2, key_dim=4, value_dim=3), {}, True),
    "3 heads, no bias, output int": (dict(num_heads=3, key_dim=2, value_dim=5, use_bias=False, output_shape=4), {}, True),
    "2 heads, output tuple, scores": (dict(num_heads=2, key_dim=3, output_shape=(2, 3)), dict(return_attention_scores=True), False),
    "3 heads, scores, key": (dict(num_heads=3, key_dim=2), dict(return_attention_scores=True), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mha(keras_call, record_error, case):
    kwargs, options, use_key = CASES[case]
    rng = np.random.default_rng(len(case))
    q, v, k = randn(rng, B, T, 6), randn(rng, B, S, 7), randn(rng, B, S, 5)
    layer = keras.layers.MultiHeadAttention(**kwargs)
    key = [k] if use_key else []
    keras_call(layer, q, v, *key, return_attention_scores=True)  # build (explicit path)
    perturb_weights(layer, rng)
    explicit = kwargs.get("value_dim", kwargs["key_dim"]) != kwargs["key_dim"]
    scores = options.get("return_attention_scores", False)
    theirs = keras_call(layer, q, v, *key, return_attention_scores=scores or explicit)
    if explicit and not scores:
        theirs = theirs[0]
    net = ng.keras.from_keras(layer, use_key=use_key, **options)
    feed = {"Query": q, "Value": v, **({"Key": k} if use_key else {})}
    ours = net(feed)
    check("MultiHeadAttention", record_error, ours, theirs, None, 0.0)
    out_shape = kwargs.get("output_shape", 6)
    out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
    out = ours["Output"] if isinstance(ours, dict) else ours
    assert out.shape == (B, T) + out_shape


def test_mha_value_dim_differs_on_fused_path(keras_call):
    """Documents the Keras bug the builder works around: the plain 3-D call fails when
    value_dim != key_dim. If a later Keras fixes it, this test only checks our side."""
    rng = np.random.default_rng(0)
    q, v = randn(rng, B, T, 6), randn(rng, B, S, 6)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3)
    out, _ = keras_call(layer, q, v, return_attention_scores=True)
    net = ng.keras.from_keras(layer, use_key=False)
    ours = net({"Query": q, "Value": v})
    np.testing.assert_allclose(ours, out, atol=1e-5)
    try:
        plain = keras_call(layer, q, v)
    except Exception:  # Keras 3.15: "cannot reshape array ..." in the fused path
        plain = None
    if plain is not None:
        np.testing.assert_allclose(ours, plain, atol=1e-5)


def mask_case(rng):
    value_mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)  # example 1: no key at all
    query_mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], bool)
    attention_mask = rng.integers(0, 2, (B, T, S)).astype(bool)
    attention_mask[0, 2] = False  # a row without keys
    attention_mask[:, :, 0] |= np.array([[True, True, False, True], [True] * 4])
    return value_mask, query_mask, attention_mask


@pytest.mark.parametrize("masks", [
    "attention_mask", "value_mask", "query_mask", "causal", "causal+value_mask",
    "all",
])
@pytest.mark.parametrize("scores", [True, False], ids=["scores", "output"])
def test_mha_masks(keras_call, record_error, masks, scores):
    rng = np.random.default_rng(3)
    q, v, k = randn(rng, B, T, 6), randn(rng, B, S, 4), randn(rng, B, S, 5)
    value_mask, query_mask, attention_mask = mask_case(rng)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    keras_call(layer, q, v, k, return_attention_scores=True)
    perturb_weights(layer, rng)

    use = set(masks.split("+")) if masks != "all" else {"attention_mask", "value_mask", "query_mask", "causal"}
    seen = np.ones((B, T, S), bool)
    keras_kwargs: dict = {}
    options: dict = {}
    feed = {"Query": q, "Value": v, "Key": k}
    keras_attention_mask = np.ones((B, T, S), bool)
    if "attention_mask" in use:
        seen &= attention_mask
        keras_attention_mask &= attention_mask
        options["attention_mask"], feed["AttentionMask"] = True, attention_mask
    if "query_mask" in use:
        # Keras ignores an explicit query_mask= (it reads the tensor's Keras mask only):
        # give it as an attention mask instead
        seen &= query_mask[:, :, None]
        keras_attention_mask &= query_mask[:, :, None]
        options["query_mask"], feed["QueryMask"] = True, query_mask
    if "value_mask" in use:
        seen &= value_mask[:, None, :]
        keras_kwargs["value_mask"] = value_mask
        options["value_mask"], feed["ValueMask"] = True, value_mask
    if "causal" in use:
        seen &= np.tril(np.ones((T, S), bool))[None]
        keras_kwargs["use_causal_mask"] = True
        options["use_causal_mask"] = True
    if use & {"attention_mask", "query_mask"}:
        keras_kwargs["attention_mask"] = keras_attention_mask
    theirs = keras_call(layer, q, v, k, return_attention_scores=scores, **keras_kwargs)
    net = ng.keras.from_keras(layer, return_attention_scores=scores, **options)
    ours = net(feed)
    rows = seen.any(-1)
    assert rows.any() and (masks in ("causal",) or not rows.all())
    check("MultiHeadAttention", record_error, ours, theirs, rows, output_bias(layer))


def test_mha_causal_with_fewer_queries_than_keys(keras_call, record_error):
    rng = np.random.default_rng(5)
    q, v = randn(rng, B, 3, 4), randn(rng, B, 6, 4)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=3)
    keras_call(layer, q, v, use_causal_mask=True, return_attention_scores=True)  # build
    perturb_weights(layer, rng)
    theirs = keras_call(layer, q, v, use_causal_mask=True, return_attention_scores=True)
    ours = ng.keras.from_keras(layer, use_key=False, use_causal_mask=True, return_attention_scores=True)(
        {"Query": q, "Value": v})
    check("MultiHeadAttention", record_error, ours, theirs, np.ones((B, 3), bool), 0.0)
    assert np.all(np.triu(ours["AttentionWeights"], 1) == 0)


# ------------------------------------------------------------------------ 4-D inputs
AXES_CASES = {
    # attention_axes: (query positions, value positions)
    "(1, 2)": ((1, 2), (2, 3), (3, 2)),
    "None": (None, (2, 3), (2, 2)),
    "(2,)": ((2,), (2, 3), (2, 4)),
    "(1,)": ((1,), (2, 3), (4, 3)),
    "-2": (-2, (2, 3), (2, 4)),
}


@pytest.mark.parametrize("case", list(AXES_CASES))
def test_mha_attention_axes(keras_call, record_error, case):
    axes, tq, sv = AXES_CASES[case]
    rng = np.random.default_rng(11)
    q, v, k = randn(rng, B, *tq, 5), randn(rng, B, *sv, 3), randn(rng, B, *sv, 4)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2, attention_axes=axes,
                                            output_shape=(2, 2))
    keras_call(layer, q, v, k, return_attention_scores=True)
    perturb_weights(layer, rng)
    theirs = keras_call(layer, q, v, k, return_attention_scores=True)
    net = ng.keras.from_keras(layer, return_attention_scores=True)
    ours = net({"Query": q, "Value": v, "Key": k})
    assert ours["Output"].shape == (B, *tq, 2, 2)
    check("MultiHeadAttention[4-D]", record_error, ours, theirs, None, 0.0)


def mask_4d_case(keras_call):
    rng = np.random.default_rng(12)
    q, v = randn(rng, B, 2, 3, 4), randn(rng, B, 3, 2, 4)
    mask = rng.integers(0, 2, (B, 2, 3, 3, 2)).astype(bool)
    mask[..., 0, 0] = True
    mask[0, 1, 2] = False  # one query position sees nothing
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=(1, 2))
    keras_call(layer, q, v, return_attention_scores=True)
    perturb_weights(layer, rng)
    theirs = keras_call(layer, q, v, attention_mask=mask, return_attention_scores=True)
    net = ng.keras.from_keras(layer, use_key=False, attention_mask=True, return_attention_scores=True)
    rows = mask.reshape(B, 2, 3, -1).any(-1)
    assert not rows.all()
    return layer, net, {"Query": q, "Value": v, "AttentionMask": mask}, theirs, rows


def test_mha_4d_attention_mask(keras_call, record_error):
    # the net as converted: only the first position axis is declared, the rest is fitted
    # to the data when it is called
    layer, net, feed, theirs, rows = mask_4d_case(keras_call)
    ours = net(feed)
    check("MultiHeadAttention[4-D]", record_error, ours, theirs, rows, output_bias(layer))


def test_mha_4d_attention_mask_declared_shapes(keras_call, record_error):
    # the same with the second position axis of query and value declared up front
    layer, net, feed, theirs, rows = mask_4d_case(keras_call)
    net = net.evolve(port_specs={"Query": ("Varying", 3, 4), "Value": ("Varying", 2, 4)})
    assert net.input_ports["AttentionMask"][:4] == ("Varying", 3, "Varying", 2)
    ours = net(feed)
    check("MultiHeadAttention[4-D]", record_error, ours, theirs, rows, output_bias(layer))


# -------------------------------------------------------------- standalone builder
def test_builder_standalone(keras_call, record_error):
    net = ng.keras.MultiHeadAttention(2, 4, query_dim=8, use_key=False)
    assert net.input_ports == {"Query": ("Varying", 8), "Value": ("Varying", ng.Automatic)}
    assert net.output_ports == {"Output": ("Varying", 8)}
    # the value size is not known yet: initialising says which array is ambiguous
    with pytest.raises(ng.NetGraphError, match="Weights"):
        ng.NetInitialize(net)
    net = ng.NetInitialize(net.evolve(port_specs={"Value": ("Varying", 6)}), seed=0)
    shapes = {
        ("query", "Net", "Weights"): (8, 8), ("query", "Net", "Biases"): (2, 4),
        ("key", "Net", "Weights"): (8, 6), ("key", "Net", "Biases"): (2, 4),
        ("value", "Net", "Weights"): (8, 6), ("value", "Net", "Biases"): (2, 4),
        ("output", "Net", "Weights"): (8, 8), ("output", "Net", "Biases"): (8,),
    }
    for path, shape in shapes.items():
        assert ng.NetExtract(net, path).shape == shape, path
    core = ng.NetExtract(net, ("attention", "attention"))
    assert isinstance(core, ng.AttentionLayer) and core.options.multi_head
    assert core.options.score_rescaling == "DimensionSqrt"
    assert isinstance(ng.NetExtract(net, ("attention", "attention", "ScoringNet")), ng.DotScoringLayer)

    rng = np.random.default_rng(0)
    q, v = randn(rng, B, 3, 8), randn(rng, B, 5, 6)
    ours = net({"Query": q, "Value": v})
    assert ours.shape == (B, 3, 8)
    # the same weights in a Keras layer (the reverse of from_keras) give the same numbers
    layer = keras.layers.MultiHeadAttention(2, 4)
    keras_call(layer, q, v, return_attention_scores=True)
    kernel = lambda name, *shape: ng.NetExtract(net, (name, "Net", "Weights")).T.reshape(*shape)
    bias = lambda name: ng.NetExtract(net, (name, "Net", "Biases"))
    layer.set_weights([
        kernel("query", 8, 2, 4), bias("query"), kernel("key", 6, 2, 4), bias("key"),
        kernel("value", 6, 2, 4), bias("value"), kernel("output", 2, 4, 8), bias("output"),
    ])
    theirs = keras_call(layer, q, v)
    assert record_error("MultiHeadAttention", ours, theirs) <= 1e-5


def test_builder_options_and_errors():
    net = ng.keras.MultiHeadAttention(3, 2, value_dim=5, use_bias=False, output_shape=(4, 2),
                                      query_dim=6, positions=2, attention_axes=(2,),
                                      return_attention_scores=True)
    assert net.output_ports["Output"] == ("Varying", ng.Automatic, 4, 2)
    with pytest.raises(ng.SpecificationError, match="num_heads"):
        ng.keras.MultiHeadAttention(0, 2)
    with pytest.raises(ng.SpecificationError, match="attention_axes"):
        ng.keras.MultiHeadAttention(2, 2, attention_axes=(3,))
    with pytest.raises(ng.SpecificationError, match="use_causal_mask"):
        ng.keras.MultiHeadAttention(2, 2, positions=2, use_causal_mask=True)
    with pytest.raises(ng.SpecificationError, match="kernel_initializer"):
        ng.keras.MultiHeadAttention(2, 2, kernel_initializer="stft")
