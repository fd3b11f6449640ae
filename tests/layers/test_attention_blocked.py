"""Blocked attention (``key_block_size``) against the materialised path, and the masking of
non-finite values at hidden positions.

Every case builds one AttentionLayer, evaluates it materialised (``key_block_size=None``) and
in blocks of 4 (small sequences of 7-13 positions, so several blocks, partial last blocks and
skipped blocks all occur), and compares outputs and the gradients of a random projection of
the outputs with respect to the params and every real input (1e-5 relative). Scorers: "Dot",
"Bilinear", a transform-then-Dot graph (the matmul fast path), an additive graph and an MLP
graph (the generic path, lowered by the walker on blocks of pairs). Options: KeyMask,
QueryMask, AttentionMask, "Causal", ("Causal", n), LengthSqrt, DimensionSqrt, multi-head,
padded varying keys, a batch of examples of different lengths, dropout, AttentionWeights,
16-bit inputs with rows that see no key.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from netgraph.layers import attention as attention_module
from netgraph.layers.attention_blocked import Visibility, block_sizes, cudnn_applies, fused_dot_attention

P = ng.NetPort
A = ng.AttentionLayer


def additive_net(hidden=6):
    return ng.NetGraph(
        [ng.LinearLayer(hidden, Biases=None), ng.LinearLayer(hidden, Biases=None),
         ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)), ng.LinearLayer((), Biases=None)],
        [(P("Input"), 0, 2), (P("Query"), 1, 2, 3)],
    )


def mlp_net(hidden=6):
    return ng.NetGraph([ng.CatenateLayer(), ng.LinearLayer(hidden), ng.ElementwiseLayer("Tanh"),
                        ng.LinearLayer(())], [([P("Input"), P("Query")], 0, 1, 2, 3)])


def linear_key_net(size):
    return ng.NetGraph({"lin": ng.LinearLayer(size), "dot": ng.DotLayer()},
                       [(P("Input"), "lin"), ([P("Query"), "lin"], "dot")])


SCORERS = {  # name: (make, key size, query size)
    "Dot": (lambda: "Dot", 3, 3),
    "Bilinear": (lambda: "Bilinear", 3, 4),
    "transform": (lambda: linear_key_net(4), 3, 4),
    "additive": (additive_net, 3, 4),
    "mlp": (mlp_net, 3, 4),
}


def shapes_for(scorer, n_keys, n_queries, heads):
    _, k, q = SCORERS[scorer]
    h = (heads,) if heads else ()
    return dict(Key=(n_keys, *h, k), Value=(n_keys, *h, 2), Query=(n_queries, *h, q))


def make_data(rng, shapes, options):
    x = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    x["Key"] *= 2.0
    n_keys, n_queries = shapes["Key"][0], shapes["Query"][0]
    if options.get("key_mask"):
        x["KeyMask"] = (rng.random(n_keys) > 0.3).astype(np.int32)
    if options.get("query_mask"):
        x["QueryMask"] = (rng.random(n_queries) > 0.3).astype(np.int32)
    if options.get("attention_mask"):
        x["AttentionMask"] = rng.random((n_queries, n_keys)) > 0.4
        x["AttentionMask"][1] = False  # a row that sees no key
    return x


def pair(scorer, shapes, options, block=4):
    """(materialised, blocked) initialised nets with the same arrays."""
    make = SCORERS[scorer][0]
    base = ng.NetInitialize(A(make(), key_block_size=None, **options).evolve(port_specs=shapes), seed=1)
    return base, ng.NetReplacePart(base, {"key_block_size": block})


def outputs_and_grads(net, x, lengths=None, rng_key=None, train=False):
    """Outputs, and gradients of a random projection of them with respect to the params
    and every real input: one compiled function."""
    apply = ng.lower(net)
    real = {k: jnp.asarray(v) for k, v in x.items() if np.issubdtype(np.asarray(v).dtype, np.floating)}
    fixed = {k: v for k, v in x.items() if k not in real}
    params = ng.params_of(net)
    shapes = jax.eval_shape(lambda p, r: apply(p, {**r, **fixed}, lengths=lengths, rng=rng_key, train=train),
                            params, real)
    probes = {k: jnp.asarray(np.random.default_rng(9).standard_normal(v.shape), jnp.float32)
              for k, v in shapes.items()}

    def loss(params, real):
        got = apply(params, {**real, **fixed}, lengths=lengths, rng=rng_key, train=train)
        return sum(jnp.sum(got[k] * probes[k]) for k in got), got

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, real)
    return out, grads


def assert_same(a, b, rtol=1e-5, atol=1e-6):
    """Equal to ``rtol``, and to ``atol`` times the largest entry of ``b`` (a gradient that
    is zero in exact arithmetic is round-off on both paths)."""
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in la] == [p for p, _ in lb]
    scale = max(max(float(np.max(np.abs(np.asarray(y)))) for _, y in lb), 1e-3)
    for (path, x), (_, y) in zip(la, lb):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol * scale, err_msg=jax.tree_util.keystr(path))


CASES = {
    # name: (scorer, keys, queries, heads, options)
    "dot-plain": ("Dot", 9, 7, 0, {}),
    "dot-causal-heads": ("Dot", 10, 10, 2, dict(mask="Causal", score_rescaling="DimensionSqrt")),
    "bilinear-masks-lengthsqrt": ("Bilinear", 9, 7, 0, dict(key_mask=True, query_mask=True,
                                                           attention_mask=True, score_rescaling="LengthSqrt")),
    "transform-window-heads": ("transform", 11, 11, 2, dict(mask=("Causal", 3), key_mask=True,
                                                            score_rescaling="LengthSqrt")),
    "additive-causal-lengthsqrt": ("additive", 10, 10, 0, dict(mask="Causal", score_rescaling="LengthSqrt")),
    "additive-heads-masks": ("additive", 9, 6, 2, dict(key_mask=True, attention_mask=True,
                                                       score_rescaling="DimensionSqrt")),
    "mlp-window-masks": ("mlp", 13, 13, 0, dict(mask=("Causal", 5), key_mask=True, query_mask=True)),
    "mlp-weights": ("mlp", 9, 7, 0, dict(key_mask=True, attention_weights=True, score_rescaling="LengthSqrt")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_blocked_equals_materialised(rng, case):
    scorer, n_keys, n_queries, heads, options = CASES[case]
    shapes = shapes_for(scorer, n_keys, n_queries, heads)
    x = make_data(rng, shapes, options)
    base, blocked = pair(scorer, shapes, {**options, "multi_head": heads > 0})
    want, want_grads = outputs_and_grads(base, x)
    got, got_grads = outputs_and_grads(blocked, x)
    assert_same(got, want)
    assert_same(got_grads, want_grads)


def test_blocked_lowering_scans_blocks_of_pairs(rng):
    # the generic scorer's tanh runs on (4 queries x 4 keys x hidden) blocks inside loops
    shapes = shapes_for("additive", 12, 8, 0)
    _, blocked = pair("additive", shapes, {})
    x = make_data(rng, shapes, {})
    text = str(jax.make_jaxpr(ng.lower(blocked))(ng.params_of(blocked), x))
    assert "scan" in text and "tanh" in text
    assert "f32[4,4,6]" in text and "f32[8,12,6]" not in text


@pytest.mark.parametrize("scorer", ["Dot", "additive"])
def test_padded_keys_never_count_blocked(rng, scorer):
    _, k, q = SCORERS[scorer]
    options = dict(score_rescaling="LengthSqrt", mask="Causal")
    make = SCORERS[scorer][0]
    net = ng.NetInitialize(A(make(), key_block_size=4, **options).evolve(
        port_specs=dict(Key=("Varying", k), Value=("Varying", 2), Query=("Varying", q))), seed=0)
    symbol = net.inference.port((), "Key").dims[0].symbol
    x = make_data(rng, dict(Key=(6, k), Value=(6, 2), Query=(6, q)), {})
    padded = {n: np.concatenate([a, np.full((5, a.shape[1]), 1e4, np.float32)]) for n, a in x.items()}
    padded["Value"][6:] = np.inf  # junk, even inf, never reaches a real row
    exact = ng.lower(net)(ng.params_of(net), x)["Output"]
    got = ng.lower(net)(ng.params_of(net), padded, lengths={symbol: jnp.asarray(6, jnp.int32)})["Output"]
    np.testing.assert_allclose(np.asarray(got)[:6], np.asarray(exact), rtol=1e-5, atol=1e-6)
    # a batch of examples of different lengths (padded, bounded by the batch's longest)
    examples = {n: [a[:m] for m in (6, 3)] for n, a in x.items()}
    batch = net(examples)
    materialised = ng.NetReplacePart(net, {"key_block_size": None})(examples)
    for b, m in zip(batch, materialised):
        np.testing.assert_allclose(b, m, rtol=1e-5, atol=1e-6)


def check_dropped(out, weights, rate=0.5):
    kept = np.isclose(out, weights / (1 - rate), atol=1e-6)
    dropped = out == 0
    assert np.all(kept | dropped)
    assert dropped.sum() > 0 and (kept & (weights > 0)).sum() > 0


@pytest.mark.parametrize("scorer", ["Dot", "additive"])
def test_dropout_inside_blocks(rng, scorer):
    _, k, q = SCORERS[scorer]
    shapes = dict(Key=(10, k), Value=(10, 10), Query=(6, q))
    base, blocked = pair(scorer, shapes, dict(dropout=0.5, seed=3))
    x = make_data(rng, shapes, {})
    x["Value"] = np.eye(10, dtype=np.float32)  # the output row is the used weight row
    weights = ng.lower(ng.NetReplacePart(base, {"attention_weights": True}))(ng.params_of(base), x)
    apply = ng.lower(blocked)
    a = np.asarray(apply(ng.params_of(blocked), x, train=True)["Output"])
    b = np.asarray(apply(ng.params_of(blocked), x, train=True)["Output"])
    np.testing.assert_array_equal(a, b)  # reproducible from the seed
    check_dropped(a, np.asarray(weights["AttentionWeights"]))
    other = np.asarray(ng.lower(ng.NetReplacePart(blocked, {"seed": 4}))(ng.params_of(blocked), x, train=True)["Output"])
    assert not np.array_equal(a, other)
    if scorer == "additive":  # gradients flow through the dropped blocks too
        _, grads = outputs_and_grads(blocked, x, train=True)
        assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16], ids=["f32", "f16", "bf16"])
def test_blocked_rows_without_keys_are_zero(rng, dtype):
    shapes = shapes_for("Bilinear", 9, 7, 0)
    options = dict(key_mask=True, query_mask=True, attention_mask=True, score_rescaling="LengthSqrt")
    base, blocked = pair("Bilinear", shapes, options)
    x = make_data(rng, shapes, options)
    x["Key"] *= 4
    x["QueryMask"][0] = 0
    cast = lambda t: jax.tree_util.tree_map(  # noqa: E731
        lambda a: jnp.asarray(a).astype(dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else a, t)
    got = ng.lower(blocked)(cast(ng.params_of(blocked)), cast(x))["Output"]
    want = ng.lower(base)(cast(ng.params_of(base)), cast(x))["Output"]
    assert got.dtype == dtype
    got, want = np.asarray(got.astype(jnp.float32)), np.asarray(want.astype(jnp.float32))
    empty = (np.asarray(x["QueryMask"]) == 0) | ~(x["AttentionMask"] & (x["KeyMask"] != 0)).any(-1)
    assert empty[0] and empty[1]
    assert np.all(np.isfinite(got)) and np.all(got[empty] == 0)
    tol = {jnp.float32: 1e-5, jnp.float16: 2e-2, jnp.bfloat16: 1e-1}[dtype]
    np.testing.assert_allclose(got, want, atol=tol * 10)


# -------------------------------------------------- non-finite values at hidden positions
PATHS = {  # name: (scorer, key_block_size, fast_path)
    "fast": ("Dot", None, True),
    "generic": ("Bilinear", None, False),
    "blocked-fast": ("Dot", 4, True),
    "blocked-generic": ("additive", 4, True),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("hide", ["KeyMask", "AttentionMask", "Causal"])
def test_non_finite_values_at_hidden_positions_stay_hidden(rng, path, hide):
    scorer, block, fast = PATHS[path]
    heads = 2
    options = {"KeyMask": dict(key_mask=True), "AttentionMask": dict(attention_mask=True),
               "Causal": dict(mask="Causal")}[hide]
    shapes = shapes_for(scorer, 8, 8, heads)
    make = SCORERS[scorer][0]
    net = ng.NetInitialize(A(make(), key_block_size=block, fast_path=fast, multi_head=heads > 0, **options)
                           .evolve(port_specs=shapes), seed=0)
    x = make_data(rng, shapes, {})
    if hide == "KeyMask":
        x["KeyMask"] = np.array([1, 1, 0, 1, 1, 1, 1, 0], np.int32)
        hidden, rows = [2, 7], slice(None)
    elif hide == "AttentionMask":
        x["AttentionMask"] = np.ones((8, 8), bool)
        x["AttentionMask"][:5, 6] = False
        hidden, rows = [6], slice(0, 5)
    else:
        hidden, rows = [6], slice(0, 6)  # rows 0..5 do not see key 6
    clean = ng.lower(net)(ng.params_of(net), x)["Output"]
    x["Value"][hidden[0]] = np.nan
    x["Value"][hidden[-1]] = np.inf
    dirty = np.asarray(ng.lower(net)(ng.params_of(net), x)["Output"])
    np.testing.assert_allclose(dirty[rows], np.asarray(clean)[rows], rtol=1e-6, atol=1e-6)
    if hide != "KeyMask":  # rows that do see the non-finite value are not finite
        assert not np.all(np.isfinite(dirty))


# ---------------------------------------------------------------------- the option
def test_automatic_blocks_above_the_threshold(rng, monkeypatch):
    shapes = shapes_for("mlp", 12, 12, 0)
    net = ng.NetInitialize(A(mlp_net(), mask="Causal").evolve(port_specs=shapes), seed=0)
    assert net.options.key_block_size is ng.Automatic
    x = make_data(rng, shapes, {})
    small = ng.lower(net)(ng.params_of(net), x)["Output"]
    assert "scan" not in str(jax.make_jaxpr(ng.lower(net))(ng.params_of(net), x))
    monkeypatch.setattr(attention_module, "AUTOMATIC_PAIR_BYTES", 1024)
    text = str(jax.make_jaxpr(ng.lower(net))(ng.params_of(net), x))
    assert "scan" in text and "cond" in text  # blocked, with causal block skipping
    np.testing.assert_allclose(ng.lower(net)(ng.params_of(net), x)["Output"], small, rtol=1e-5, atol=1e-6)


def test_automatic_blocks_the_fast_path_above_the_score_size(rng, monkeypatch):
    """Past AUTOMATIC_SCORE_BYTES per head the dot path runs blocked (faster there), equal to
    the materialised and the generic path; with AttentionWeights it stays materialised."""
    shapes = shapes_for("Dot", 12, 12, 2)
    x = make_data(rng, shapes, {})
    net = ng.NetInitialize(A("Dot", multi_head=True).evolve(port_specs=shapes), seed=0)
    jaxpr = lambda n: str(jax.make_jaxpr(ng.lower(n))(ng.params_of(n), x))  # noqa: E731
    assert "scan" not in jaxpr(net)
    monkeypatch.setattr(attention_module, "AUTOMATIC_SCORE_BYTES", 64)
    assert "scan" in jaxpr(net)
    assert "scan" not in jaxpr(ng.NetReplacePart(net, {"fast_path": False}))  # generic: pair size
    assert "scan" not in jaxpr(ng.NetReplacePart(net, {"attention_weights": True}))
    blocked = outputs_and_grads(net, x)
    assert_same(blocked, outputs_and_grads(ng.NetReplacePart(net, {"key_block_size": None}), x))
    assert_same(blocked, outputs_and_grads(ng.NetReplacePart(net, {"fast_path": False}), x))


def test_block_sizes():
    big, A = 64 * 2**20, ng.Automatic
    # materialise at or below the thresholds, block above them
    assert block_sizes(A, 1, 512, 512, 8, 4, True, False, big, 2**20, big) is None
    assert block_sizes(A, 1, 4096, 4096, 8, 4, True, False, big, 4 * 2**20, big) == (4096, 32)
    assert block_sizes(A, 200, 4096, 4096, 0, 4, False, False, big, 4 * 2**20, 2**18) == (64, 64)
    assert block_sizes(None, 1, 10**6, 10**6, 8, 4, True, False, big, 2**20, 2**18) is None
    assert block_sizes(8, 1, 100, 100, 0, 4, True, False, big, 2**20, 2**18) == (100, 8)
    assert block_sizes(8, 1, 100, 100, 0, 4, True, True, big, 2**20, 2**18) == (8, 8)  # causal: query blocks
    # the fast path also blocks when one head's scores exceed score_bytes (generic scorers do not)
    assert block_sizes(A, 1, 256, 256, 8, 4, True, False, big, big, 2**18) is None
    assert block_sizes(A, 1, 512, 512, 8, 4, True, False, big, big, 2**18) == (512, 128)
    assert block_sizes(A, 1, 512, 512, 8, 4, True, True, big, big, 2**18) == (128, 128)
    assert block_sizes(A, 1, 1, 10**5, 0, 4, True, False, big, big, 2**18) == (1, 1024)
    assert block_sizes(A, 2, 512, 512, 0, 4, False, False, big, big, 2**18) is None


def test_visibility_counts_and_skipping():
    keys = jnp.array([1, 1, 0, 1, 1, 1, 0, 1], bool)
    vis = Visibility(keys=keys, causal=("Causal", 3))
    dense = np.asarray(vis.dense(8, 8))
    np.testing.assert_array_equal(np.asarray(vis.seen(8, 8)), dense.sum(-1))
    assert bool(vis.needed(0, 4, 4, 4)) is False  # entirely above the diagonal
    assert bool(vis.needed(4, 4, 0, 4)) is True
    assert bool(Visibility(causal=("Causal", 2)).needed(8, 4, 0, 4)) is False  # outside the window
    assert bool(Visibility(key_bound=5).needed(0, 4, 8, 4)) is False  # beyond the true length


@pytest.mark.parametrize("value", [0, -3, 2.5, "big", True])
def test_error_bad_key_block_size(value):
    with pytest.raises(ng.SpecificationError, match="key_block_size"):
        A("Dot", key_block_size=value)


@pytest.mark.parametrize("value", [None, 16, ng.Automatic])
def test_key_block_size_saves_and_loads(tmp_path, value):
    net = ng.NetInitialize(A("Dot", key_block_size=value, Key=(5, 3), Value=(5, 2), Query=(4, 3)), seed=0)
    ng.save(net, tmp_path / "att.netgraph")
    back = ng.load(tmp_path / "att.netgraph")
    assert back.options.key_block_size == value


# ------------------------------------------------------------------ the cuDNN kernel
def test_cudnn_kernel_only_behind_a_device_check():
    ports = ("Key", "Value", "Query", "Output")
    assert not cudnn_applies(jnp.float16, (64, 64, 64), 0.0, "Causal", None, ports) or \
        jax.default_backend() == "gpu"
    if jax.default_backend() != "gpu":  # CI: the layer takes its own path on CPU
        assert not cudnn_applies(jnp.bfloat16, (64, 64, 64), 0.0, None, "DimensionSqrt", ports)


@pytest.mark.parametrize("mask", [None, "Causal", ("Causal", 3)])
def test_fused_call_matches_the_layer(rng, mask):
    # the arguments given to jax.nn.dot_product_attention (cuDNN on a GPU) mean what the
    # layer means: checked with its "xla" implementation, which runs anywhere
    shapes = dict(Key=(8, 2, 8), Value=(8, 2, 8), Query=(8, 2, 8))
    net = ng.NetInitialize(A("Dot", multi_head=True, mask=mask, score_rescaling="DimensionSqrt",
                             Key=("Varying", 2, 8), Value=("Varying", 2, 8), Query=("Varying", 2, 8)), seed=0)
    symbol = net.inference.port((), "Key").dims[0].symbol
    x = make_data(rng, shapes, {})
    for length in (8, 5, 0):
        want = np.asarray(ng.lower(net)(ng.params_of(net), x, lengths={symbol: jnp.asarray(length)})["Output"])
        got = np.asarray(fused_dot_attention(jnp.asarray(x["Key"]), jnp.asarray(x["Value"]), jnp.asarray(x["Query"]),
                                             mask, 1 / np.sqrt(8), jnp.asarray(length), "xla"))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights", [False, True])
def test_blocked_with_no_keys_or_no_queries(weights):
    net = ng.NetInitialize(A("Dot", key_block_size=4, mask="Causal", attention_weights=weights,
                             Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 3)), seed=0)
    empty = {"Key": np.zeros((0, 3), np.float32), "Value": np.zeros((0, 2), np.float32),
             "Query": np.zeros((0, 3), np.float32)}
    assert ng.lower(net)(ng.params_of(net), empty)["Output"].shape == (0, 2)
    keyless = ng.NetInitialize(A("Dot", key_block_size=4, attention_weights=weights,
                                 Key=("Varying", 3), Value=("Varying", 2), Query=(2, 3)), seed=0)
    out = ng.lower(keyless)(ng.params_of(keyless), {**empty, "Query": np.ones((2, 3), np.float32)})
    assert np.all(np.asarray(out["Output"]) == 0) and out["Output"].shape == (2, 2)


@pytest.mark.parametrize("masked", [False, True])
def test_softmax_sum_derivatives(rng, masked):
    """The materialised path's normalise-after-the-sum with its own derivative rule equals
    ``masked_softmax(s) @ v`` in value, jvp, gradient and second derivatives (finite for a
    row that sees no key); zero rows in 16-bit floats."""
    from netgraph.layers.attention import _softmax_sum
    from netgraph.layers.lowering import masked_softmax

    s, v, probe = (jnp.asarray(rng.standard_normal(shape), jnp.float32) for shape in ((5, 7), (7, 3), (5, 3)))
    visible = None
    if masked:
        visible = jnp.asarray(rng.random((5, 7)) > 0.4).at[1].set(False)
    got = lambda s, v: _softmax_sum(s, v, visible)  # noqa: E731
    want = lambda s, v: masked_softmax(s, -1, visible) @ v  # noqa: E731
    np.testing.assert_allclose(got(s, v), want(s, v), rtol=1e-6, atol=1e-7)
    tangents = (0.3 * s, 0.2 * v)
    np.testing.assert_allclose(jax.jvp(got, (s, v), tangents)[1], jax.jvp(want, (s, v), tangents)[1],
                               rtol=1e-5, atol=1e-6)
    for order in (jax.grad, jax.hessian):
        a, b = (order(lambda s, f=f: jnp.sum(f(s, v) * probe))(s) for f in (got, want))
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    if masked:
        for dtype in (jnp.float16, jnp.bfloat16):
            out = _softmax_sum(s.astype(dtype), v.astype(dtype), visible)
            assert np.all(np.asarray(out[1], np.float32) == 0) and np.all(np.isfinite(np.asarray(out, np.float32)))
