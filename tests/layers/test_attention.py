"""AttentionLayer against an independent NumPy reference (Wolfram semantics).

The reference (:func:`attend`) scores every (query vector, key vector) pair with a plain
Python scoring function, rescales, masks, takes ONE softmax jointly over all key positions
per query (and head), and sums the values. A query row that sees no key gets all-zero weights
and a zero output. Scoring functions read the net's own arrays through ``Arrays``.

Covered: the built-in "Dot" and "Bilinear" scorers, the scoring graphs from Wolfram's parity
tests (additive, catenated additive, scaled key), multi-dimensional keys and queries, a single
query vector, causal and windowed-causal masks, "LengthSqrt" / "DimensionSqrt", multi-head,
the AttentionWeights port, KeyMask / QueryMask / AttentionMask ports, training-mode dropout,
the matmul fast path against the per-pair generic path (numbers and jaxprs), rows without
visible keys in float32 / float16 / bfloat16, padded varying keys, NetExtract /
NetReplacePart of the scoring net, and construction errors.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import Arrays, check_layer

P = ng.NetPort
A = ng.AttentionLayer


# ------------------------------------------------------------------------ reference
def attend(key, value, query, score, *, heads=False, mask=None, rescaling=None,
           key_mask=None, query_mask=None, attention_mask=None):
    """One example of attention in float64.

    key d.. [x h] x k, value d.. [x h] x v, query q.. [x h] x q; ``score(k_vec, q_vec)`` is
    a number. Returns ``(output q.. [x h] x v, weights q.. [x h] x d..)``.
    """
    key, value, query = (np.asarray(a, np.float64) for a in (key, value, query))
    h = 1 if heads else 0
    kpos, qpos = key.shape[: key.ndim - 1 - h], query.shape[: query.ndim - 1 - h]
    n_keys, n_queries = math.prod(kpos), math.prod(qpos)
    n_heads = key.shape[-2] if heads else 1
    K = key.reshape(n_keys, n_heads, key.shape[-1])
    V = value.reshape(n_keys, n_heads, value.shape[-1])
    Q = query.reshape(n_queries, n_heads, query.shape[-1])

    visible = np.ones((n_queries, n_keys), bool)
    if key_mask is not None:
        visible &= np.asarray(key_mask).reshape(1, n_keys) != 0
    if query_mask is not None:
        visible &= np.asarray(query_mask).reshape(n_queries, 1) != 0
    if attention_mask is not None:
        visible &= np.asarray(attention_mask).reshape(n_queries, n_keys) != 0
    if mask is not None:
        window = mask[1] if isinstance(mask, tuple) else None
        for i in range(n_queries):
            for j in range(n_keys):
                if j > i or (window is not None and j <= i - window):
                    visible[i, j] = False

    weights = np.zeros((n_heads, n_queries, n_keys))
    for hh in range(n_heads):
        for i in range(n_queries):
            seen = visible[i]
            if not seen.any():
                continue  # no visible key: zero weights, zero output
            s = np.array([score(K[j, hh], Q[i, hh]) for j in range(n_keys)], np.float64)
            if rescaling == "DimensionSqrt":
                s = s / np.sqrt(K.shape[-1])
            elif rescaling == "LengthSqrt":
                s = s / np.sqrt(seen.sum())
            e = np.exp(s[seen] - s[seen].max())
            weights[hh, i, seen] = e / e.sum()
    out = np.einsum("hmp,phv->mhv", weights, V)
    head_axis = (n_heads,) if heads else ()
    out = out.reshape(qpos + head_axis + (V.shape[-1],))
    w = np.moveaxis(weights, 0, 1).reshape(qpos + head_axis + kpos)
    return out, w


# Scoring functions: ``score_of(arrays) -> score(k, q)``, arrays of the AttentionLayer.
def dot_score(arrays):
    return lambda k, q: k @ q


def bilinear_score(arrays):
    W = arrays["ScoringNet", "Weights"]  # q x k
    return lambda k, q: q @ (W @ k)


def additive_score(arrays):
    W0, W1 = arrays["ScoringNet", "0", "Weights"], arrays["ScoringNet", "1", "Weights"]
    w3 = arrays["ScoringNet", "3", "Weights"].reshape(-1)
    return lambda k, q: w3 @ np.tanh(W0 @ k + W1 @ q)


def catenated_score(arrays):
    W1 = arrays["ScoringNet", "1", "Weights"]
    w3 = arrays["ScoringNet", "3", "Weights"].reshape(-1)
    return lambda k, q: w3 @ np.tanh(W1 @ np.concatenate([k, q]))


def scaled_key_score(arrays):
    c = arrays["ScoringNet", "scale", "Scaling"]
    return lambda k, q: (c * k) @ q


def linear_key_score(arrays):
    W, b = arrays["ScoringNet", "lin", "Weights"], arrays["ScoringNet", "lin", "Biases"]
    return lambda k, q: q @ (W @ k + b)


def reference(score_of, **options):
    """A ``check_layer`` reference for an AttentionLayer with ``options`` (masks come from
    the inputs)."""

    def ref(inputs, arrays):
        out, w = attend(
            inputs["Key"], inputs["Value"], inputs["Query"], score_of(arrays),
            key_mask=inputs.get("KeyMask"), query_mask=inputs.get("QueryMask"),
            attention_mask=inputs.get("AttentionMask"), **options,
        )
        result = {"Output": out}
        if "AttentionWeights" in arrays.net.output_names:
            result["AttentionWeights"] = w
        return result

    return ref


# Scoring nets from Wolfram's parity tests (section 1.3 of the reference).
def additive_net():
    return ng.NetGraph(
        [ng.LinearLayer(10, Biases=None), ng.LinearLayer(10, Biases=None),
         ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)), ng.LinearLayer((), Biases=None)],
        [(P("Input"), 0, 2), (P("Query"), 1, 2, 3)], Input=5, Query=3,
    )


def catenated_net():
    return ng.NetGraph(
        [ng.CatenateLayer(), ng.LinearLayer(10, Biases=None), ng.ElementwiseLayer("Tanh"),
         ng.LinearLayer((), Biases=None)],
        [([P("Input"), P("Query")], 0, 1, 2, 3)],
    )


def scaled_key_net():
    return ng.NetGraph(
        {"scale": ng.ConstantTimesLayer(Scaling=np.array([2.0, -1.0, 1.5], np.float32)),
         "dot": ng.DotLayer()},
        [(P("Input"), "scale"), ([P("Query"), "scale"], "dot")],
    )


def linear_key_net(size):
    """Transform-then-Dot with the key side second: s = Dot(Query, lin(Input))."""
    return ng.NetGraph({"lin": ng.LinearLayer(size), "dot": ng.DotLayer()},
                       [(P("Input"), "lin"), ([P("Query"), "lin"], "dot")])


def key_first_net(size):
    """Transform-then-Dot with the key side first: s = Dot(tanh(lin(Input)), Query)."""
    return ng.NetGraph(
        {"lin": ng.LinearLayer(size), "tanh": ng.ElementwiseLayer("Tanh"), "dot": ng.DotLayer()},
        [(P("Input"), "lin", "tanh"), (["tanh", P("Query")], "dot")],
    )


def data(rng, **shapes):
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def initialised(layer, **ports):
    return ng.NetInitialize(layer.evolve(port_specs=ports), seed=0)


def run(net, inputs, **kwargs):
    """``ng.lower(net)`` on one example; returns a dict of NumPy arrays."""
    out = ng.lower(net)(ng.params_of(net), inputs, **kwargs)
    return {k: np.asarray(v) for k, v in out.items()}


# -------------------------------------------------------------- scorers, check_layer
def test_dot(rng):
    x = data(rng, Key=(5, 4), Value=(5, 3), Query=(2, 4))
    check_layer(A("Dot"), x, reference(dot_score), varying=True)


def test_bilinear(rng):
    x = data(rng, Key=(5, 4), Value=(5, 3), Query=(3, 6))
    check = check_layer(A(), x, reference(bilinear_score), varying=True)
    # Bilinear is the default; W is q x k, at ("ScoringNet", "Weights")
    assert isinstance(ng.NetExtract(check.net, "ScoringNet"), ng.BilinearScoringLayer)
    assert ng.NetExtract(check.net, ("ScoringNet", "Weights")).shape == (6, 4)


def test_additive_scoring_graph(rng):
    x = data(rng, Key=(4, 5), Value=(4, 2), Query=(3, 3))
    check_layer(A(additive_net()), x, reference(additive_score), varying=True)


def test_catenated_additive_scoring_graph(rng):
    x = data(rng, Key=(4, 2), Value=(4, 3), Query=(3, 5))
    check = check_layer(A(catenated_net()), x, reference(catenated_score))
    assert ng.NetExtract(check.net, ("ScoringNet", "1", "Weights")).shape == (10, 7)


def test_scaled_key_scoring_graph(rng):
    x = data(rng, Key=(5, 3), Value=(5, 2), Query=(4, 3))
    check_layer(A(scaled_key_net()), x, reference(scaled_key_score), varying={"Key", "Value"})


def test_multi_dimensional_keys_and_queries(rng):
    # Q {2,3,4}, K {5,6,4}, V {5,6,3} -> {2,3,3}: one softmax over all 30 key positions
    layer = A("Dot", attention_weights=True)
    x = data(rng, Key=(5, 6, 4), Value=(5, 6, 3), Query=(2, 3, 4))
    check = check_layer(layer, x, reference(dot_score), varying={"Key", "Value"})
    assert check.net.output_ports == {"Output": (2, 3, 3), "AttentionWeights": (2, 3, 5, 6)}
    w = check.outputs["AttentionWeights"]
    np.testing.assert_allclose(w.sum(axis=(-2, -1)), np.ones((2, 3)), atol=1e-5)
    # not a softmax per key axis: the rows over the last axis alone do not sum to one
    assert not np.allclose(w.sum(axis=-1), 1.0, atol=1e-3)


def test_multi_dimensional_varying_shapes_infer():
    # Wolfram's case: the query and key lengths are independent
    net = A("Bilinear", Key=("Varying", 6, 2), Value=("Varying", 6, 3), Query=("Varying", 3, 4))
    assert net.output_ports == {"Output": ("Varying", 3, 3)}
    ports = {n: net.inference.port((), n).dims[0].symbol for n in ("Key", "Value", "Query", "Output")}
    assert ports["Output"] == ports["Query"] != ports["Key"] == ports["Value"]
    assert ng.NetExtract(ng.NetInitialize(net, seed=0), ("ScoringNet", "Weights")).shape == (4, 2)


def test_single_query_vector(rng):
    x = data(rng, Key=(5, 4), Value=(5, 3), Query=(4,))
    check = check_layer(A("Dot", attention_weights=True), x, reference(dot_score),
                        varying={"Key", "Value"})
    assert check.net.output_ports == {"Output": (3,), "AttentionWeights": (5,)}


def test_single_query_vector_multi_dimensional_keys(rng):
    x = data(rng, Key=(3, 2, 4), Value=(3, 2, 2), Query=(5,))
    net = initialised(A("Bilinear", attention_weights=True), Key=(3, 2, 4), Value=(3, 2, 2), Query=(5,))
    out, w = attend(x["Key"], x["Value"], x["Query"], bilinear_score(Arrays(net)))
    got = net(x)
    assert got["Output"].shape == (2,) and got["AttentionWeights"].shape == (3, 2)
    np.testing.assert_allclose(got["Output"], out, atol=1e-5)
    np.testing.assert_allclose(got["AttentionWeights"], w, atol=1e-6)


# ----------------------------------------------------------------- masks, rescaling
@pytest.mark.parametrize("mask", ["Causal", ("Causal", 1), ("Causal", 2)])
def test_causal_masks(rng, mask):
    x = data(rng, Key=(5, 3), Value=(5, 2), Query=(5, 3))
    check = check_layer(A("Dot", mask=mask, attention_weights=True), x,
                        reference(dot_score, mask=mask), varying=mask == "Causal")
    w = check.outputs["AttentionWeights"]
    n = mask[1] if isinstance(mask, tuple) else 5
    for i in range(5):
        for j in range(5):
            if not (i - n < j <= i):
                assert w[i, j] == 0.0, (i, j)
    if n == 1:  # a window of one: each query sees only its own key
        np.testing.assert_allclose(check.outputs["Output"], x["Value"], atol=1e-6)


def test_causal_mask_ties_the_query_length_to_the_key_length():
    # Wolfram: the query must be a sequence as long as the keys and values
    with pytest.raises(ng.ShapeMismatchError) as info:
        A("Dot", mask="Causal", Value=(6, 4), Query=(5, 3))
    assert "Value of query shape ({5}) is inconsistent with value of input shape ({6})" in str(info.value)
    with pytest.raises(ng.ShapeMismatchError, match="inconsistent"):
        A("Dot", mask=("Causal", 2), Key=(6, 3), Value=(6, 2), Query=(4, 3))
    # forwards and backwards through varying lengths: one symbol, the fixed size wins
    net = A("Bilinear", mask="Causal", Key=("Varying", 4), Query=(5, 3))
    assert net.port_types()["Key"].dims[0].size == 5
    net = A("Bilinear", mask="Causal", Key=(5, 4), Query=("Varying", 3))
    assert net.output_ports["Output"][0] == 5 and net.port_types()["Query"].dims[0].size == 5
    net = A("Dot", mask="Causal", Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 3))
    symbols = {net.inference.port((), n).dims[0].symbol for n in ("Key", "Value", "Query", "Output")}
    assert len(symbols) == 1
    # "TopLeftCausal" (Keras, PyTorch, jax.nn.dot_product_attention) does not tie them
    assert A("Dot", mask="TopLeftCausal", Value=(6, 4), Query=(5, 4)).output_ports == {"Output": (5, 4)}
    # without a causal mask the lengths stay independent
    free = A("Dot", Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 3))
    assert free.inference.port((), "Key").dims[0].symbol != free.inference.port((), "Query").dims[0].symbol


@pytest.mark.parametrize("mask", ["TopLeftCausal", ("TopLeftCausal", 2)])
def test_top_left_causal_mask_with_more_keys_than_queries(rng, mask):
    # query i still sees keys 0..i (and i - n < j with a window)
    x = data(rng, Key=(6, 3), Value=(6, 2), Query=(4, 3))
    net = initialised(A("Dot", mask=mask, attention_weights=True), Key=(6, 3), Value=(6, 2),
                      Query=(4, 3))
    got = net(x)
    wolfram = "Causal" if mask == "TopLeftCausal" else ("Causal", 2)
    out, w = attend(x["Key"], x["Value"], x["Query"], lambda k, q: k @ q, mask=wolfram)
    np.testing.assert_allclose(got["Output"], out, atol=1e-5)
    np.testing.assert_allclose(got["AttentionWeights"], w, atol=1e-6)
    assert np.all(np.triu(got["AttentionWeights"], 1) == 0) and np.all(got["AttentionWeights"][:2, 0] > 0)


@pytest.mark.parametrize("rescaling", ["LengthSqrt", "DimensionSqrt"])
def test_score_rescaling(rng, rescaling):
    x = data(rng, Key=(5, 4), Value=(5, 3), Query=(3, 4))
    x["Key"] *= 3  # scores large enough that the rescaling matters
    check = check_layer(A("Dot", score_rescaling=rescaling), x,
                        reference(dot_score, rescaling=rescaling), varying=rescaling == "LengthSqrt")
    plain, _ = attend(x["Key"], x["Value"], x["Query"], lambda k, q: k @ q)
    assert not np.allclose(check.outputs["Output"], plain, atol=1e-3)


def test_length_sqrt_uses_the_true_length_of_varying_keys(rng):
    # divide by sqrt(true length), not sqrt(padded length)
    x = data(rng, Key=(4, 3), Value=(4, 2), Query=(2, 3))
    x["Key"] *= 3
    net = initialised(A("Dot", score_rescaling="LengthSqrt", attention_weights=True),
                      Key=("Varying", 3), Value=("Varying", 2), Query=(2, 3))
    symbol = net.inference.port((), "Key").dims[0].symbol
    padded = {**x, "Key": np.concatenate([x["Key"], np.full((3, 3), 5.0, np.float32)]),
              "Value": np.concatenate([x["Value"], np.full((3, 2), 5.0, np.float32)])}
    got = run(net, padded, lengths={symbol: jnp.asarray(4, jnp.int32)})
    out, w = attend(x["Key"], x["Value"], x["Query"], lambda k, q: k @ q, rescaling="LengthSqrt")
    np.testing.assert_allclose(got["Output"], out, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got["AttentionWeights"][:, :4], w, atol=1e-5, rtol=1e-5)
    assert np.all(got["AttentionWeights"][:, 4:] == 0)


@pytest.mark.parametrize("mask", ["Causal", ("Causal", 2)])
def test_length_sqrt_under_causal_mask(rng, mask):
    # 0-based query i sees i + 1 keys (at most n in a window of n)
    x = data(rng, Key=(5, 3), Value=(5, 2), Query=(5, 3))
    x["Key"] *= 3
    check = check_layer(A("Dot", mask=mask, score_rescaling="LengthSqrt"), x,
                        reference(dot_score, mask=mask, rescaling="LengthSqrt"), varying=True)
    # explicitly: the first query sees one key, so its output is the first value
    np.testing.assert_allclose(check.outputs["Output"][0], x["Value"][0], atol=1e-6)
    n = mask[1] if isinstance(mask, tuple) else 5
    i = 3
    s = np.array([x["Key"][j].astype(np.float64) @ x["Query"][i] for j in range(5)])
    seen = [j for j in range(5) if i - n < j <= i]
    e = np.exp(s[seen] / np.sqrt(len(seen)) - (s[seen] / np.sqrt(len(seen))).max())
    np.testing.assert_allclose(check.outputs["Output"][i], (e / e.sum()) @ x["Value"][seen],
                               atol=1e-5)


def test_dimension_sqrt_with_multi_dimensional_keys(rng):
    x = data(rng, Key=(3, 2, 4), Value=(3, 2, 2), Query=(2, 4))
    check_layer(A("Dot", score_rescaling="DimensionSqrt"), x,
                reference(dot_score, rescaling="DimensionSqrt"))


@pytest.mark.parametrize("scoring, score_of, q", [("Dot", dot_score, 4), ("Bilinear", bilinear_score, 3)])
def test_multi_head(rng, scoring, score_of, q):
    # heads on the penultimate axis; one softmax per head
    x = data(rng, Key=(5, 2, 4), Value=(5, 2, 3), Query=(3, 2, q))
    check = check_layer(A(scoring, multi_head=True, attention_weights=True), x,
                        reference(score_of, heads=True), varying=True)
    assert check.net.output_ports == {"Output": (3, 2, 3), "AttentionWeights": (3, 2, 5)}
    np.testing.assert_allclose(check.outputs["AttentionWeights"].sum(-1), np.ones((3, 2)), atol=1e-5)


def test_multi_head_multi_dimensional_with_rescaling_and_causal(rng):
    x = data(rng, Key=(4, 3, 2), Value=(4, 3, 5), Query=(4, 3, 2))
    check_layer(A("Dot", multi_head=True, mask="Causal", score_rescaling="DimensionSqrt",
                  attention_weights=True),
                x, reference(dot_score, heads=True, mask="Causal", rescaling="DimensionSqrt"),
                varying=True)
    shapes = dict(Key=(2, 3, 2, 4), Value=(2, 3, 2, 1), Query=(3, 2, 2, 4))
    y = data(rng, **shapes)
    net = initialised(A("Dot", multi_head=True, attention_weights=True), **shapes)
    # q.. x h x d..
    assert net.output_ports == {"Output": (3, 2, 2, 1), "AttentionWeights": (3, 2, 2, 2, 3)}
    out, w = attend(y["Key"], y["Value"], y["Query"], lambda k, q: k @ q, heads=True)
    got = net(y)
    np.testing.assert_allclose(got["Output"], out, atol=1e-5)
    np.testing.assert_allclose(got["AttentionWeights"], w, atol=1e-6)


def test_mask_ports(rng):
    x = data(rng, Key=(5, 4), Value=(5, 3), Query=(4, 4))
    x["KeyMask"] = np.array([True, False, True, True, False])
    x["QueryMask"] = np.array([True, True, False, True])
    x["AttentionMask"] = rng.integers(0, 2, (4, 5)).astype(bool)
    x["AttentionMask"][:, 0] = True
    layer = A("Dot", key_mask=True, query_mask=True, attention_mask=True, attention_weights=True)
    assert layer.input_names == ("Key", "Value", "Query", "KeyMask", "QueryMask", "AttentionMask")
    check = check_layer(layer, x, reference(dot_score),
                        varying={"Query", "QueryMask", "AttentionMask"})
    w = check.outputs["AttentionWeights"]
    assert np.all(w[:, [1, 4]] == 0) and np.all(w[2] == 0)
    assert np.all(check.outputs["Output"][2] == 0)
    assert np.all(w[~x["AttentionMask"]] == 0)


@pytest.mark.parametrize("which", ["key_mask", "query_mask", "attention_mask"])
def test_each_mask_port_alone(rng, which):
    port = {"key_mask": "KeyMask", "query_mask": "QueryMask", "attention_mask": "AttentionMask"}[which]
    x = data(rng, Key=(3, 2, 4), Value=(3, 2, 3), Query=(2, 2, 4))  # multi-dimensional positions
    shape = {"KeyMask": (3, 2), "QueryMask": (2, 2), "AttentionMask": (2, 2, 3, 2)}[port]
    x[port] = rng.integers(0, 2, shape).astype(np.int32)
    x[port].reshape(-1)[0] = 1
    check_layer(A("Bilinear", **{which: True}, attention_weights=True), x, reference(bilinear_score))


def test_mask_ports_accept_bool_data(rng):
    x = data(rng, Key=(4, 3), Value=(4, 2), Query=(2, 3))
    net = initialised(A("Dot", key_mask=True), Key=(4, 3), Value=(4, 2), Query=(2, 3))
    as_bool = net({**x, "KeyMask": np.array([True, False, True, False])})
    as_int = net({**x, "KeyMask": np.array([1, 0, 1, 0], np.int32)})
    np.testing.assert_array_equal(as_bool, as_int)
    out, _ = attend(x["Key"], x["Value"], x["Query"], lambda k, q: k @ q, key_mask=[1, 0, 1, 0])
    np.testing.assert_allclose(as_bool, out, atol=1e-5)


def test_key_mask_with_multi_head_and_causal(rng):
    x = data(rng, Key=(5, 2, 3), Value=(5, 2, 2), Query=(5, 2, 3))
    x["KeyMask"] = np.array([0, 1, 1, 0, 1], np.int32)
    check = check_layer(
        A("Dot", multi_head=True, mask=("Causal", 3), key_mask=True, attention_weights=True,
          score_rescaling="LengthSqrt"),
        x, reference(dot_score, heads=True, mask=("Causal", 3), rescaling="LengthSqrt"),
        varying=True,
    )
    # query 0 sees only key 0, which is masked: zero weights and output in both heads
    assert np.all(check.outputs["AttentionWeights"][0] == 0)
    assert np.all(check.outputs["Output"][0] == 0)


# --------------------------------------------------------------------------- dropout
def dropout_net(seed=None, attention_weights=True):
    return initialised(A("Dot", dropout=0.5, seed=seed, attention_weights=attention_weights),
                       Key=(8, 3), Value=(8, 8), Query=(4, 3))


def dropout_data(rng):
    x = data(rng, Key=(8, 3), Query=(4, 3))
    x["Value"] = np.eye(8, dtype=np.float32)  # the output row is the used weight row
    return x


def check_dropped(out, weights, rate=0.5):
    """Every used weight is either dropped (0) or kept and divided by 1 - rate."""
    kept = np.isclose(out, weights / (1 - rate), atol=1e-6)
    dropped = out == 0
    assert np.all(kept | dropped)
    assert dropped.sum() > 0 and (kept & (weights > 0)).sum() > 0


def test_dropout_reproducible_with_call_seed(rng):
    net, x = dropout_net(), dropout_data(rng)
    plain = net(x)
    a, b = net(x, train=True, seed=7), net(x, train=True, seed=7)
    c = net(x, train=True, seed=8)
    np.testing.assert_array_equal(a["Output"], b["Output"])
    assert not np.array_equal(a["Output"], c["Output"])
    # AttentionWeights are taken before dropout; evaluation mode has no dropout
    np.testing.assert_allclose(a["AttentionWeights"], plain["AttentionWeights"], atol=1e-6)
    np.testing.assert_allclose(plain["Output"], plain["AttentionWeights"], atol=1e-6)
    check_dropped(a["Output"], plain["AttentionWeights"])
    # a batch gets a different mask per example
    batch = {k: np.stack([v, v]) for k, v in x.items()}
    both = net(batch, train=True, seed=7)["Output"]
    assert not np.array_equal(both[0], both[1])


def test_dropout_reproducible_with_layer_seed_alone_lowered(rng):
    net, x = dropout_net(seed=3), dropout_data(rng)
    apply, params = ng.lower(net), ng.params_of(net)
    a = apply(params, x, train=True)["Output"]
    b = apply(params, x, train=True)["Output"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = run(dropout_net(seed=4), x, train=True)["Output"]
    assert not np.array_equal(np.asarray(a), other)
    check_dropped(np.asarray(a), run(net, x)["AttentionWeights"])
    # without a layer seed, training needs an rng
    with pytest.raises(ng.NetGraphError, match="rng"):
        run(dropout_net(), x, train=True)


def test_dropout_reproducible_with_layer_seed_alone_evaluated(rng):
    # ``net(x, train=True)`` with only the layer option seed= must repeat itself
    net, x = dropout_net(seed=3), dropout_data(rng)
    a, b = net(x, train=True), net(x, train=True)
    np.testing.assert_array_equal(a["Output"], b["Output"])
    check_dropped(a["Output"], net(x)["AttentionWeights"])


# ------------------------------------------------------------ fast path vs generic
def name_stacks(net, inputs):
    """(primitive, name stack, output shapes) of every equation of ``ng.lower(net)``'s jaxpr,
    nested jaxprs included."""
    closed = jax.make_jaxpr(ng.lower(net))(ng.params_of(net), inputs)
    found = []

    def walk(jaxpr, outer=""):
        for eqn in jaxpr.eqns:
            stack = outer + str(eqn.source_info.name_stack)
            found.append((str(eqn.primitive), stack, [tuple(v.aval.shape) for v in eqn.outvars]))
            for param in eqn.params.values():
                for sub in param if isinstance(param, (list, tuple)) else [param]:
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        walk(inner, stack)

    walk(closed.jaxpr)
    return found


def vmap_depth(stack: str) -> int:
    return stack.count("vmap(")


FAST_CASES = {
    # name: (scoring net, key size, query size, score_of)
    "Dot": (lambda: "Dot", 4, 4, dot_score),
    "Bilinear": (lambda: "Bilinear", 4, 6, bilinear_score),
    "linear-then-dot": (lambda: linear_key_net(6), 4, 6, linear_key_score),
    "scaled-key": (scaled_key_net, 3, 3, scaled_key_score),
    "key-first-tanh": (lambda: key_first_net(6), 4, 6, None),
}


@pytest.mark.parametrize("multi_head", [False, True])
@pytest.mark.parametrize("case", list(FAST_CASES))
def test_fast_path_equals_generic_path(rng, case, multi_head):
    make, k, q, score_of = FAST_CASES[case]
    heads = (2,) if multi_head else ()
    shapes = dict(Key=(6, *heads, k), Value=(6, *heads, 3), Query=(6, *heads, q))
    x = data(rng, **shapes)
    x["KeyMask"] = np.array([1, 1, 0, 1, 1, 1], np.int32)
    fast = initialised(A(make(), multi_head=multi_head, mask=("Causal", 4), key_mask=True,
                         score_rescaling="LengthSqrt", attention_weights=True), **shapes)
    generic = ng.NetReplacePart(fast, {"fast_path": False})
    assert fast.options.fast_path and not generic.options.fast_path
    a, b = run(fast, x), run(generic, x)
    for port in ("Output", "AttentionWeights"):
        np.testing.assert_allclose(a[port], b[port], atol=2e-6, rtol=2e-6, err_msg=port)
    np.testing.assert_allclose(fast(x)["Output"], generic(x)["Output"], atol=2e-6, rtol=2e-6)
    if score_of is not None:
        out, w = attend(x["Key"], x["Value"], x["Query"], score_of(Arrays(fast)),
                        heads=multi_head, mask=("Causal", 4), key_mask=x["KeyMask"],
                        rescaling="LengthSqrt")
        np.testing.assert_allclose(a["Output"], out, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(a["AttentionWeights"], w, atol=1e-5, rtol=1e-5)

    # the generic path evaluates the scoring net per ([head,] query, key): ops under two
    # nested vmaps (three with heads); the fast path transforms the keys ([heads x] keys)
    # and multiplies
    per_pair = 3 if multi_head else 2
    fast_ops, generic_ops = name_stacks(fast, x), name_stacks(generic, x)
    assert max(vmap_depth(s) for _, s, _ in generic_ops) >= per_pair
    assert max(vmap_depth(s) for _, s, _ in fast_ops) <= per_pair - 1, [
        e for e in fast_ops if vmap_depth(e[1]) > per_pair - 1]
    if not isinstance(make(), str):
        # the scoring graph's DotLayer ("dot") runs per pair in the generic path only
        assert any("dot" in s.split("vmap(")[-1] and vmap_depth(s) >= per_pair for _, s, _ in generic_ops)
        assert not any(s.endswith("dot" + ")" * vmap_depth(s)) and vmap_depth(s) for _, s, _ in fast_ops)


def test_generic_path_scores_every_pair(rng):
    # the additive scorer has no matmul form: its tanh runs on (queries, keys, 10)
    shapes = dict(Key=(6, 5), Value=(6, 2), Query=(4, 3))
    net = initialised(A(additive_net()), **shapes)
    x = data(rng, **shapes)
    ops = name_stacks(net, x)
    tanh = [shape for prim, stack, shapes_ in ops if prim == "tanh" for shape in shapes_]
    assert tanh and all(math.prod(s) == 4 * 6 * 10 for s in tanh), tanh
    # the default and the forced generic path agree (both generic here)
    generic = ng.NetReplacePart(net, {"fast_path": False})
    np.testing.assert_allclose(run(net, x)["Output"], run(generic, x)["Output"], atol=1e-6)


def test_fast_path_not_taken_when_the_key_side_uses_the_query(rng):
    # s = Dot(Query, Input + Query) has no form q . f(k); the default must still be right
    scorer = ng.NetGraph({"plus": ng.ThreadingLayer("Plus"), "dot": ng.DotLayer()},
                         [([P("Input"), P("Query")], "plus"), ([P("Query"), "plus"], "dot")])
    shapes = dict(Key=(5, 3), Value=(5, 2), Query=(4, 3))
    net = initialised(A(scorer), **shapes)
    x = data(rng, **shapes)
    out, _ = attend(x["Key"], x["Value"], x["Query"], lambda k, q: q @ (k + q))
    np.testing.assert_allclose(run(net, x)["Output"], out, atol=1e-5)
    np.testing.assert_allclose(run(ng.NetReplacePart(net, {"fast_path": False}), x)["Output"],
                               out, atol=1e-5)


# ------------------------------------------------- rows that see no key, low precision
def cast(tree, dtype):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a).astype(dtype), tree)


@pytest.mark.parametrize("rescaling", [None, "LengthSqrt", "DimensionSqrt"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16], ids=["f32", "f16", "bf16"])
def test_row_without_visible_keys_is_zero(rng, dtype, rescaling):
    shapes = dict(Key=(5, 4), Value=(5, 3), Query=(5, 6))
    net = initialised(A("Bilinear", key_mask=True, query_mask=True, attention_mask=True,
                        attention_weights=True, score_rescaling=rescaling), **shapes)
    x = data(rng, **shapes)
    x["Key"] *= 4  # large scores: a naive -inf / -1e9 masking goes wrong in half precision
    masks = {
        "KeyMask": np.array([1, 1, 0, 1, 1], bool),
        "QueryMask": np.array([1, 0, 1, 1, 1], bool),
        "AttentionMask": np.ones((5, 5), bool),
    }
    masks["AttentionMask"][2] = False  # row 2: attention mask hides every key
    masks["AttentionMask"][3] = [0, 0, 1, 0, 0]  # row 3: only key 2, which KeyMask hides
    empty = [1, 2, 3]  # row 1: QueryMask
    params = cast(ng.params_of(net), dtype)
    inputs = {**cast(x, dtype), **{k: jnp.asarray(v) for k, v in masks.items()}}
    got = ng.lower(net)(params, inputs)
    out, w = np.asarray(got["Output"].astype(jnp.float32)), np.asarray(got["AttentionWeights"].astype(jnp.float32))
    assert got["Output"].dtype == dtype and got["AttentionWeights"].dtype == dtype
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    assert np.all(out[empty] == 0) and np.all(w[empty] == 0)
    # visible rows: close to the float64 reference (of the cast data)
    W = np.asarray(params["ScoringNet"]["Weights"].astype(jnp.float32), np.float64)
    ref_out, ref_w = attend(*(np.asarray(inputs[n].astype(jnp.float32)) for n in ("Key", "Value", "Query")),
                            lambda k, q: q @ (W @ k), rescaling=rescaling, **{
                                "key_mask": masks["KeyMask"], "query_mask": masks["QueryMask"],
                                "attention_mask": masks["AttentionMask"]})
    tol = {jnp.float32: 1e-5, jnp.float16: 2e-2, jnp.bfloat16: 1e-1}[dtype]
    np.testing.assert_allclose(w, ref_w, atol=tol)
    np.testing.assert_allclose(out, ref_out, atol=tol * 10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16], ids=["f32", "f16", "bf16"])
def test_all_keys_masked_and_zero_length_keys(rng, dtype):
    shapes = dict(Key=("Varying", 3), Value=("Varying", 2), Query=(2, 3))
    net = initialised(A("Dot", key_mask=True, attention_weights=True, score_rescaling="LengthSqrt"),
                      **shapes)
    x = cast(data(rng, Key=(4, 3), Value=(4, 2), Query=(2, 3)), dtype)
    apply, params = ng.lower(net), cast(ng.params_of(net), dtype)
    none = apply(params, {**x, "KeyMask": jnp.zeros(4, bool)})
    symbol = net.inference.port((), "Key").dims[0].symbol
    zero_length = apply(params, {**x, "KeyMask": jnp.ones(4, bool)},
                        lengths={symbol: jnp.asarray(0, jnp.int32)})
    for got in (none, zero_length):
        for port, value in got.items():
            assert value.dtype == dtype
            assert np.all(np.asarray(value.astype(jnp.float32)) == 0), port


def test_gradients_are_finite_with_empty_rows(rng):
    shapes = dict(Key=(4, 3), Value=(4, 2), Query=(3, 3))
    net = initialised(A("Bilinear", key_mask=True, query_mask=True, score_rescaling="LengthSqrt"),
                      **shapes)
    x = data(rng, **shapes)
    x["KeyMask"], x["QueryMask"] = jnp.array([1, 0, 1, 1]), jnp.array([1, 0, 1])
    apply = ng.lower(net)

    def loss(params, inputs):
        return jnp.sum(apply(params, inputs)["Output"] ** 2)

    real = {k: jnp.asarray(x[k]) for k in ("Key", "Value", "Query")}

    def loss_real(params, real):
        return loss(params, {**real, "KeyMask": x["KeyMask"], "QueryMask": x["QueryMask"]})

    grads = jax.grad(loss_real, argnums=(0, 1))(ng.params_of(net), real)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # the masked key and the masked query get no gradient
    assert np.all(np.asarray(grads[1]["Key"])[1] == 0)
    assert np.all(np.asarray(grads[1]["Query"])[1] == 0)


# ---------------------------------------------------------------- varying key lengths
@pytest.mark.parametrize("scoring", ["Dot", "additive"])
def test_padded_keys_never_get_weight(rng, scoring):
    if scoring == "Dot":
        layer, k, q = A("Dot", attention_weights=True), 4, 4
    else:
        layer, k, q = A(additive_net(), attention_weights=True), 5, 3
    net = initialised(layer, Key=("Varying", 2, k), Value=("Varying", 2, 3), Query=(3, q))
    symbol = net.inference.port((), "Key").dims[0].symbol
    assert net.inference.port((), "Value").dims[0].symbol == symbol
    x = data(rng, Key=(3, 2, k), Value=(3, 2, 3), Query=(3, q))
    junk = {"Key": np.full((2, 2, k), 50.0, np.float32), "Value": np.full((2, 2, 3), 1e4, np.float32)}
    padded = {**x, **{n: np.concatenate([x[n], junk[n]]) for n in junk}}
    got = run(net, padded, lengths={symbol: jnp.asarray(3, jnp.int32)})
    exact = run(net, x)
    assert got["AttentionWeights"].shape == (3, 5, 2)
    assert np.all(got["AttentionWeights"][:, 3:] == 0)
    np.testing.assert_allclose(got["AttentionWeights"][:, :3], exact["AttentionWeights"], atol=1e-6)
    np.testing.assert_allclose(got["Output"], exact["Output"], atol=1e-5)
    # and through net(...) on a batch of examples of different lengths, each alone
    if scoring == "Dot":
        out, w = attend(x["Key"], x["Value"], x["Query"], lambda a, b: a @ b)
        np.testing.assert_allclose(exact["Output"], out, atol=1e-5)
        np.testing.assert_allclose(exact["AttentionWeights"], w, atol=1e-6)


def test_padded_keys_with_causal_mask_and_varying_queries(rng):
    net = initialised(A("Dot", mask="Causal", attention_weights=True, score_rescaling="LengthSqrt"),
                      Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 3))
    symbol = net.inference.port((), "Key").dims[0].symbol
    assert net.inference.port((), "Query").dims[0].symbol == symbol  # causal: one length
    x = data(rng, Key=(4, 3), Value=(4, 2), Query=(4, 3))
    padded = {n: np.concatenate([a, np.full((2, a.shape[1]), 9.0, np.float32)]) for n, a in x.items()}
    got = run(net, padded, lengths={symbol: jnp.asarray(4, jnp.int32)})
    out, w = attend(x["Key"], x["Value"], x["Query"], lambda a, b: a @ b, mask="Causal",
                    rescaling="LengthSqrt")
    np.testing.assert_allclose(got["Output"][:4], out, atol=1e-5)
    np.testing.assert_allclose(got["AttentionWeights"][:4, :4], w, atol=1e-6)
    assert np.all(got["AttentionWeights"][:4, 4:] == 0)


# ------------------------------------------------------- NetExtract / NetReplacePart
def test_extract_and_replace_the_scoring_net(rng):
    shapes = dict(Key=(5, 3), Value=(5, 2), Query=(5, 3))
    att = initialised(A("Bilinear", mask="Causal"), **shapes)
    x = data(rng, **shapes)
    assert isinstance(ng.NetExtract(att, "ScoringNet"), ng.BilinearScoringLayer)
    custom = initialised(A(scaled_key_net()), **shapes)
    scorer = ng.NetExtract(custom, "ScoringNet")
    assert isinstance(scorer, ng.NetGraph)
    np.testing.assert_array_equal(ng.NetExtract(scorer, ("scale", "Scaling")), [2.0, -1.0, 1.5])

    swapped = ng.NetReplacePart(att, {"ScoringNet": scorer})
    assert isinstance(swapped, ng.AttentionLayer)
    assert isinstance(ng.NetExtract(swapped, "ScoringNet"), ng.NetGraph)
    assert swapped.options.mask == "Causal"  # options are kept
    out, _ = attend(x["Key"], x["Value"], x["Query"], lambda k, q: (np.array([2, -1, 1.5]) * k) @ q,
                    mask="Causal")
    np.testing.assert_allclose(swapped(x), out, atol=1e-5)
    dotted = ng.NetReplacePart(att, {"ScoringNet": ng.DotScoringLayer()})
    out, _ = attend(x["Key"], x["Value"], x["Query"], lambda k, q: k @ q, mask="Causal")
    np.testing.assert_allclose(dotted(x), out, atol=1e-5)
    # the original is unchanged
    assert isinstance(ng.NetExtract(att, "ScoringNet"), ng.BilinearScoringLayer)


def test_replacing_the_scoring_net_with_an_invalid_net_fails():
    att = A("Dot", Key=(5, 3), Value=(5, 2), Query=(4, 3))
    only_input = ng.NetGraph({"lin": ng.LinearLayer(())}, [(P("Input"), "lin")], Input=3)
    with pytest.raises(ng.NetGraphError, match="Query"):
        ng.NetReplacePart(att, {"ScoringNet": only_input})


# ---------------------------------------------------------------------------- errors
def error_of(make):
    with pytest.raises(ng.NetGraphError) as info:
        make()
    return str(info.value)


def test_error_scoring_net_with_vector_output_from_linear():
    scorer = ng.NetGraph([ng.CatenateLayer(), ng.LinearLayer(5)], [([P("Input"), P("Query")], 0, 1)])
    message = error_of(lambda: A(scorer))
    assert "scoring net" in message and "scalar" in message and "rank-1" in message


def test_error_scoring_net_with_vector_output_from_threading():
    # the output's rank comes from a rule of the scoring net (Plus of two vectors); the
    # error must still say that a scoring net has to produce a number
    scorer = ng.NetGraph([ng.ThreadingLayer("Plus")], [([P("Input"), P("Query")], 0)], Input=3, Query=3)
    message = error_of(lambda: A(scorer))
    assert "scoring net" in message
    assert "scalar" in message or "number" in message, message


def test_error_scoring_net_without_query_port():
    scorer = ng.NetGraph({"lin": ng.LinearLayer(())}, [(P("Input"), "lin")], Input=3)
    with pytest.raises(ng.SpecificationError) as info:
        A(scorer)
    message = str(info.value)
    assert '"Query"' in message and "scoring net" in message and "['Input']" in message


def test_error_not_a_scoring_net():
    message = error_of(lambda: A(None))
    assert "None is not a layer, a net, or a valid specification for one" in message
    message = error_of(lambda: A("Gnark"))
    assert "'Gnark' is not a layer" in message


@pytest.mark.parametrize("mask", ["gnark", "causal", ("Window", 2)])
def test_error_bad_mask(mask):
    message = error_of(lambda: A("Dot", mask=mask))
    assert "mask" in message and '"Causal"' in message and repr(mask) in message


def test_error_causal_window_must_be_positive():
    message = error_of(lambda: A("Dot", mask=("Causal", 0)))
    assert "mask" in message and ("positive" in message or "greater than 0" in message), message


@pytest.mark.parametrize("port", ["Value", "Key"])
def test_error_rank_one_keys_or_values(port):
    with pytest.raises(ng.ShapeMismatchError) as info:
        A("Dot", **{port: (5,)})
    message = str(info.value)
    assert "rank 1" in message and "rank >= 2" in message
    assert f'port "{port}"' in message, message  # names the port that was declared
    assert 'of port "' not in message, message  # no 'port "X" of port "X"' stutter


def test_error_multi_head_needs_a_heads_axis():
    with pytest.raises(ng.ShapeMismatchError, match="rank >= 3"):
        A("Dot", multi_head=True, Key=(3, 4))


def test_error_unknown_option_input():
    message = error_of(lambda: A("Dot", Input=("Varying", 2)))
    assert '"Input" is not a known parameter for AttentionLayer' in message
    assert "'mask'" in message and "'Key'" in message and "'Query'" in message


def test_error_causal_needs_one_dimensional_positions():
    message = error_of(lambda: A("Dot", mask="Causal", Key=(2, 3, 4), Value=(2, 3, 4), Query=(3, 4)))
    assert "causal mask" in message and "1-D" in message


def test_error_only_the_first_key_dimension_varies():
    with pytest.raises(ng.NetGraphError, match="first"):
        A("Dot", Key=(3, "Varying", 4))


def test_error_inconsistent_dot_sizes():
    # Wolfram: "Dot", K {3,4}, V {3,3}, Q {4,3}: key and query sizes differ
    with pytest.raises(ng.ShapeMismatchError) as info:
        A("Dot", Key=(3, 4), Value=(3, 3), Query=(4, 3))
    message = str(info.value)
    assert "4" in message and "3" in message and '"Query"' in message


def test_error_bilinear_uninitialisable_without_key_size():
    net = A("Bilinear", Value=(3, 3), Query=(4, 3))
    with pytest.raises(ng.NetGraphError, match="Weights"):
        ng.NetInitialize(net)
