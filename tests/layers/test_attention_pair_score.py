"""The generic attention path's split Linear (``netgraph.compiler._graph_pair_score``): a
LinearLayer reading a CatenateLayer of key-side and query-side vectors is applied to each side
on its own, so the catenated (query, key) pair vector is never built. Equal to the plain
lowering (``fast_path=False``) in outputs and gradients, materialised and blocked."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng

P = ng.NetPort


def mlp(hidden=5, biases=True):
    extra = {} if biases else {"Biases": None}
    return ng.NetGraph([ng.CatenateLayer(), ng.LinearLayer(hidden, **extra), ng.ElementwiseLayer("Tanh"),
                        ng.LinearLayer(())], [([P("Input"), P("Query")], 0, 1, 2, 3)])


def three_parts():
    """Catenate[Linear(key), query, key] -> Linear(()) : a scalar Linear on three parts."""
    return ng.NetGraph({"k": ng.LinearLayer(4), "cat": ng.CatenateLayer(), "score": ng.LinearLayer(())},
                       [(P("Input"), "k"), (["k", P("Query"), P("Input")], "cat"), ("cat", "score")])


def shared_catenation():
    """The catenation is read twice (by the Linear and by a Total): it is not split."""
    return ng.NetGraph({"cat": ng.CatenateLayer(), "lin": ng.LinearLayer(()), "sum": ng.SummationLayer(),
                        "plus": ng.ThreadingLayer("Plus")},
                       [([P("Input"), P("Query")], "cat"), ("cat", "lin"), ("cat", "sum"),
                        (["lin", "sum"], "plus")])


def outputs_and_grads(net, x, lengths=None):
    apply, params = ng.lower(net), ng.params_of(net)
    real = {k: jnp.asarray(v) for k, v in x.items() if v.dtype == np.float32}
    fixed = {k: v for k, v in x.items() if k not in real}

    def loss(params, real):
        out = apply(params, {**real, **fixed}, lengths=lengths)["Output"]
        return jnp.sum(out * jnp.cos(jnp.arange(out.size, dtype=jnp.float32).reshape(out.shape))), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, real)
    return out, grads


def assert_same(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    scale = max(float(np.max(np.abs(np.asarray(y)))) for _, y in lb)
    for (path, x), (_, y) in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=jax.tree_util.keystr(path))


CASES = {  # name: (scoring net, heads, options, key_block_size)
    "mlp": (mlp, 0, {}, None),
    "mlp-blocked": (mlp, 0, {}, 4),
    "mlp-no-biases-causal-blocked": (lambda: mlp(biases=False), 0,
                                     dict(mask="Causal", score_rescaling="LengthSqrt"), 4),
    "three-parts-heads": (three_parts, 2, dict(key_mask=True, multi_head=True), None),
    "shared-catenation": (shared_catenation, 0, {}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_split_linear_equals_plain_lowering(case):
    make, heads, options, block = CASES[case]
    h = (heads,) if heads else ()
    shapes = dict(Key=(8, *h, 3), Value=(8, *h, 2), Query=(8, *h, 4))
    plain = ng.NetInitialize(ng.AttentionLayer(make(), key_block_size=block, fast_path=False, **options)
                             .evolve(port_specs=shapes), seed=2)
    split = ng.NetReplacePart(plain, {"fast_path": True})
    rng = np.random.default_rng(0)
    x = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    if options.get("key_mask"):
        x["KeyMask"] = (rng.random(8) > 0.3).astype(np.int32)
    assert_same(outputs_and_grads(split, x), outputs_and_grads(plain, x))


def test_split_linear_with_padded_keys():
    shapes = dict(Key=("Varying", 3), Value=("Varying", 2), Query=(5, 4))
    plain = ng.NetInitialize(ng.AttentionLayer(mlp(), fast_path=False).evolve(port_specs=shapes), seed=3)
    split = ng.NetReplacePart(plain, {"fast_path": True})
    rng = np.random.default_rng(1)
    x = {"Key": rng.standard_normal((7, 3)), "Value": rng.standard_normal((7, 2)),
         "Query": rng.standard_normal((5, 4))}
    x = {k: v.astype(np.float32) for k, v in x.items()}
    lengths = {"Key": 4, "Value": 4}
    assert_same(outputs_and_grads(split, x, lengths), outputs_and_grads(plain, x, lengths))
    exact = {k: (v[:4] if k != "Query" else v) for k, v in x.items()}
    np.testing.assert_allclose(outputs_and_grads(split, x, lengths)[0], outputs_and_grads(plain, exact)[0],
                               rtol=1e-5, atol=1e-6)


def primitives(net, shapes):
    """The primitives of the lowered (materialised: one level, no loops) function."""
    apply, params = ng.lower(net), ng.params_of(net)
    inputs = {n: jax.ShapeDtypeStruct(s, jnp.float32) for n, s in shapes.items()}
    return {e.primitive.name for e in jax.make_jaxpr(apply)(params, inputs).jaxpr.eqns}


def test_the_pair_vector_is_never_catenated():
    shapes = dict(Key=(6, 3), Value=(6, 2), Query=(5, 4))
    plain = ng.NetInitialize(ng.AttentionLayer(mlp(), key_block_size=None, fast_path=False)
                             .evolve(port_specs=shapes), seed=0)
    split = ng.NetReplacePart(plain, {"fast_path": True})
    assert "concatenate" in primitives(plain, shapes)
    assert "concatenate" not in primitives(split, shapes)
