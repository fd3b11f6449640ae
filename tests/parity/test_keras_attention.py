"""Parity of ``ng.keras.Attention`` / ``AdditiveAttention`` (via ``from_keras``) with Keras 3.

Every case converts a built Keras layer with non-trivial weights and compares outputs and
attention scores to 1e-5 on every query row that sees at least one key.

Rows that see no key (all their keys hidden by the value mask and/or the causal mask, or the
query itself masked) differ ON PURPOSE: netgraph gives all-zero weights and a zero output.
Keras subtracts 1e9 from masked scores, so such a row gets (quantised, roughly uniform)
softmax weights over ALL keys, and its output is their weighted sum of values (NaN in
float16). Those rows are only checked on our side. A query-masked row is Keras's: a zero
output, and the weights it would have without the query mask.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import keras
import netgraph as ng

# Keras's ``Variable.numpy()`` (used by ``from_keras`` to read weights) raises a NumPy 2
# DeprecationWarning ("__array__ implementation doesn't accept a copy keyword"), which the
# suite's filterwarnings="error" turns into an error. It is ignored here so that the parity
# numbers are checked; ``test_from_keras_emits_no_warnings`` pins the problem itself.
KERAS_ARRAY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
pytestmark = pytest.mark.filterwarnings(KERAS_ARRAY_WARNING)

B, TQ, TV, D, DV = 3, 4, 5, 3, 2

# value masks: example 0 hides keys 3 and 1; example 1 hides key 0 (so a causal row 0 sees
# nothing); example 2 hides every key (no row sees anything)
VALUE_MASK = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
QUERY_MASK = np.array([[1, 0, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1]], bool)


def make_data(seed=0, use_key=True):
    """Query B x TQ x D, Key B x TV x D, Value B x TV x DV (x D without a key: then the
    value is the key)."""
    rng = np.random.default_rng(seed)
    return {
        "Query": 1.5 * rng.standard_normal((B, TQ, D)).astype(np.float32),
        "Value": rng.standard_normal((B, TV, DV if use_key else D)).astype(np.float32),
        "Key": 1.5 * rng.standard_normal((B, TV, D)).astype(np.float32),
    }


def visible_rows(options):
    """Boolean (B, TQ): which query rows see at least one key under ``options``."""
    seen = np.ones((B, TQ, TV), bool)
    if options.get("value_mask"):
        seen &= VALUE_MASK[:, None, :]
    if options.get("use_causal_mask"):
        seen &= np.tril(np.ones((TQ, TV), bool))[None]
    return seen.any(-1)  # the query mask zeroes outputs only (as Keras): rows keep weights


def run_both(layer, keras_call, x, options):
    """(ours, keras) dicts with "Output" and, if requested, "AttentionWeights"."""
    use_key = options.get("use_key", False)
    ras = options.get("return_attention_scores", False)
    inputs = [x["Query"], x["Value"]] + ([x["Key"]] if use_key else [])
    masks = None
    if options.get("query_mask") or options.get("value_mask"):
        masks = [QUERY_MASK if options.get("query_mask") else None,
                 VALUE_MASK if options.get("value_mask") else None]
    theirs = keras_call(layer, inputs, mask=masks, return_attention_scores=ras,
                        use_causal_mask=options.get("use_causal_mask", False))
    theirs = dict(zip(("Output", "AttentionWeights"), theirs)) if ras else {"Output": theirs}

    net = ng.keras.from_keras(layer, use_key=use_key, **{k: v for k, v in options.items() if k != "use_key"})
    expected_ports = {"Query", "Value"} | ({"Key"} if use_key else set())
    expected_ports |= {p for p, flag in (("QueryMask", "query_mask"), ("ValueMask", "value_mask")) if options.get(flag)}
    assert set(net.input_names) == expected_ports
    assert set(net.output_names) == {"Output"} | ({"AttentionWeights"} if ras else set())
    feed = {"Query": x["Query"], "Value": x["Value"]}
    if use_key:
        feed["Key"] = x["Key"]
    if options.get("query_mask"):
        feed["QueryMask"] = QUERY_MASK
    if options.get("value_mask"):
        feed["ValueMask"] = VALUE_MASK
    ours = net(feed)
    ours = ours if isinstance(ours, dict) else {"Output": ours}
    return ours, theirs


def compare(family, ours, theirs, options, record_error):
    rows = visible_rows(options)
    assert rows.any()
    for port in theirs:
        assert ours[port].shape == theirs[port].shape, port
        error = record_error(family, ours[port], theirs[port], rows)
        assert error <= 1e-5, f"{port}: max error {error:.2e} on rows with visible keys"
        # rows without a visible key: zero weights and zero output on our side
        assert np.all(ours[port][~rows] == 0), port
        assert np.all(np.isfinite(ours[port]))
    if "AttentionWeights" in ours:
        np.testing.assert_allclose(ours["AttentionWeights"][rows].sum(-1), 1.0, atol=1e-5)
    if options.get("query_mask"):
        assert np.all(ours["Output"][~QUERY_MASK] == 0)


SCENARIOS = {
    "plain": dict(),
    "key": dict(use_key=True),
    "causal": dict(use_causal_mask=True),
    "query_mask": dict(query_mask=True),
    "value_mask": dict(value_mask=True, use_key=True),
    "masks+causal+key": dict(use_key=True, use_causal_mask=True, query_mask=True, value_mask=True),
}


# ------------------------------------------------------------------------- Attention
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("use_scale", [False, True], ids=["noscale", "scale"])
@pytest.mark.parametrize("score_mode", ["dot", "concat"])
def test_attention(keras_call, record_error, score_mode, use_scale, scenario):
    options = dict(SCENARIOS[scenario], return_attention_scores=scenario != "plain")
    layer = keras.layers.Attention(use_scale=use_scale, score_mode=score_mode)
    x = make_data(seed=len(scenario), use_key=options.get("use_key", False))
    keras_call(layer, [x["Query"], x["Value"], x["Key"]])  # build
    weights = {"scale": np.float32(0.6), "concat_score_weight": np.float32(-1.7)}
    layer.set_weights([weights[w.path.split("/")[-1]] for w in layer.weights])
    assert len(layer.weights) == int(use_scale) + int(score_mode == "concat")
    ours, theirs = run_both(layer, keras_call, x, options)
    compare(f"Attention[{score_mode}]", ours, theirs, options, record_error)


def test_attention_scale_paths_and_default_weights(keras_call, record_error):
    # the learned scalars sit where the builder documents them
    layer = keras.layers.Attention(use_scale=True, score_mode="concat")
    x = make_data(use_key=False)
    keras_call(layer, [x["Query"], x["Value"]])
    layer.set_weights([np.float32(0.25), np.float32(3.0)])
    net = ng.keras.from_keras(layer, use_key=False)
    assert float(ng.NetExtract(net, ("attention", "ScoringNet", "scale", "Scaling"))) == 0.25
    assert float(ng.NetExtract(net, ("attention", "ScoringNet", "concat_score_weight", "Scaling"))) == 3.0
    # a freshly built Keras layer (scale 1, weight 1) matches the builder's own defaults
    fresh = keras.layers.Attention(use_scale=True, score_mode="concat")
    out = keras_call(fresh, [x["Query"], x["Value"]])
    built = ng.NetInitialize(ng.keras.Attention(use_scale=True, score_mode="concat", use_key=False).evolve(
        port_specs={"Query": ("Varying", D), "Value": ("Varying", D)}), seed=0)
    error = record_error("Attention[concat]", built({"Query": x["Query"], "Value": x["Value"]}), out)
    assert error <= 1e-5


def test_attention_dropout_option_and_evaluation_mode(keras_call, record_error):
    layer = keras.layers.Attention(dropout=0.4)
    x = make_data()
    out = keras_call(layer, [x["Query"], x["Value"], x["Key"]], training=False)
    net = ng.keras.from_keras(layer)
    assert ng.NetExtract(net, ("attention", "dropout")) == pytest.approx(0.4)
    ours = net({"Query": x["Query"], "Value": x["Value"], "Key": x["Key"]})
    assert record_error("Attention[dot]", ours, out) <= 1e-5
    # training mode drops weights (Keras's random stream cannot be matched)
    dropped = net({"Query": x["Query"], "Value": x["Value"], "Key": x["Key"]}, train=True, seed=0)
    assert dropped.shape == ours.shape and not np.allclose(dropped, ours)


# ----------------------------------------------------------------- AdditiveAttention
@pytest.mark.parametrize("scenario", ["plain", "key", "masks+causal+key", "value_mask"])
@pytest.mark.parametrize("use_scale", [False, True], ids=["noscale", "scale"])
def test_additive_attention(keras_call, record_error, use_scale, scenario):
    options = dict(SCENARIOS[scenario], return_attention_scores=scenario != "plain")
    layer = keras.layers.AdditiveAttention(use_scale=use_scale)
    x = make_data(seed=7 + len(scenario), use_key=options.get("use_key", False))
    keras_call(layer, [x["Query"], x["Value"], x["Key"]])  # build
    if use_scale:
        layer.set_weights([np.array([1.3, -0.7, 2.1], np.float32)])
    assert len(layer.weights) == int(use_scale)
    ours, theirs = run_both(layer, keras_call, x, options)
    compare("AdditiveAttention", ours, theirs, options, record_error)
    if use_scale:
        net = ng.keras.from_keras(layer)
        np.testing.assert_array_equal(ng.NetExtract(net, ("attention", "ScoringNet", "scale", "Scaling")),
                                      np.array([1.3, -0.7, 2.1], np.float32))


def test_additive_attention_with_keras_initialised_scale(keras_call, record_error):
    # the scale vector straight from Keras's glorot initialisation
    layer = keras.layers.AdditiveAttention()
    x = make_data(seed=3, use_key=False)
    out, scores = keras_call(layer, [x["Query"], x["Value"]], return_attention_scores=True)
    assert np.ptp(layer.weights[0].numpy()) > 0
    ours = ng.keras.from_keras(layer, use_key=False, return_attention_scores=True)(
        {"Query": x["Query"], "Value": x["Value"]})
    assert record_error("AdditiveAttention", ours["Output"], out) <= 1e-5
    assert record_error("AdditiveAttention", ours["AttentionWeights"], scores) <= 1e-5


# ---------------------------------------------------------------------------- errors
def test_from_keras_errors(keras_call):
    with pytest.raises(ng.SpecificationError, match="not built"):
        ng.keras.from_keras(keras.layers.Attention())
    dense = keras.layers.Dense(2)
    keras_call(dense, np.zeros((1, 3), np.float32))
    with pytest.raises(ng.SpecificationError, match="Dense"):
        ng.keras.from_keras(dense)
    with pytest.raises(ng.SpecificationError, match="score_mode"):
        ng.keras.Attention(score_mode="general")


def test_from_keras_emits_no_warnings(keras_call):
    layer = keras.layers.AdditiveAttention()
    x = make_data(use_key=False)
    keras_call(layer, [x["Query"], x["Value"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ng.keras.from_keras(layer, use_key=False)
