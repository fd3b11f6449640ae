"""Shared arrays: ``ng.NetArray("emb")`` given as an array to several layers makes them one
array (tied embeddings). Shapes are tied by inference, it is initialised once, params hold it
once under "SharedArrays", gradients from every user add up, edits and saving keep it shared.
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng

EMB = ng.NetArray("emb")
N, SIZE = 10, 4


# ============================================================================ nets
def tied_pair(declared_first: bool = True) -> ng.NetGraph:
    """Two EmbeddingLayers sharing "emb": one declares the sizes, the other is Automatic."""
    sized = ng.EmbeddingLayer(SIZE, N, Weights=ng.NetArray("emb"))
    automatic = ng.EmbeddingLayer(Weights=ng.NetArray("emb"))
    enc, dec = (sized, automatic) if declared_first else (automatic, sized)
    return ng.NetGraph({"enc": enc, "dec": dec},
                       [(ng.NetPort("x"), "enc"), (ng.NetPort("y"), "dec")],
                       x="Varying", y="Varying")


def untied_pair(w_enc: np.ndarray, w_dec: np.ndarray) -> ng.NetGraph:
    """The same net without sharing: two separate arrays."""
    return ng.NetGraph({"enc": ng.EmbeddingLayer(SIZE, N, Weights=w_enc),
                        "dec": ng.EmbeddingLayer(SIZE, N, Weights=w_dec)},
                       [(ng.NetPort("x"), "enc"), (ng.NetPort("y"), "dec")],
                       x="Varying", y="Varying")


def tied_language_model() -> ng.NetGraph:
    """Embedding and output projection tied (Weights of both are n x size), the projection
    nested two levels deep and fully Automatic: its sizes come through the share."""
    head = ng.NetChain({"proj": ng.NetMapOperator(ng.LinearLayer(Weights=ng.NetArray("emb"), Biases=None)),
                        "act": ng.SoftmaxLayer()})
    return ng.NetGraph(
        {"embed": ng.EmbeddingLayer(SIZE, N, Weights=ng.NetArray("emb")),
         "mix": ng.NetMapOperator(ng.LinearLayer(SIZE)),
         "head": head},
        [(ng.NetPort("tokens"), "embed", "mix", "head", ng.NetPort("probs"))],
        tokens="Varying",
    )


def _data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.integers(0, N, 5).astype(np.int32), "y": rng.integers(0, N, 7).astype(np.int32)}


# ======================================================================== shapes
def test_shapes_are_inferred_through_the_share():
    for declared_first in (True, False):
        net = tied_pair(declared_first)
        assert net.input_ports == {"x": ("Varying", ng.Restricted("Integer", N)),
                                   "y": ("Varying", ng.Restricted("Integer", N))}
        assert net.output_ports == {"Output1": ("Varying", SIZE), "Output2": ("Varying", SIZE)}
        for user in ("enc", "dec"):
            dims = net.inference.array((user,), "Weights")
            assert tuple(d.size for d in dims) == (N, SIZE)


def test_shapes_through_the_share_reach_a_nested_automatic_layer():
    net = tied_language_model()
    assert net.output_ports == {"probs": ("Varying", N)}
    proj = ng.NetExtract(net, ("head", "proj", "Net"))
    assert proj.input_ports == {"Input": (SIZE,)} and proj.output_ports == {"Output": (N,)}


def test_users_needing_different_sizes_name_the_shared_array():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"a": ng.EmbeddingLayer(SIZE, N, Weights=ng.NetArray("emb")),
                     "b": ng.EmbeddingLayer(SIZE + 1, N, Weights=ng.NetArray("emb"))},
                    [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")])
    assert 'NetArray("emb")' in str(info.value), str(info.value)


def test_users_needing_sizes_set_by_their_ports_name_the_shared_array():
    """The conflict only appears once each user's port sizes flow into its array."""
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"a": ng.LinearLayer(3, Weights=ng.NetArray("emb"), Input=5),
                     "b": ng.LinearLayer(3, Weights=ng.NetArray("emb"), Input=4)},
                    [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")])
    assert 'NetArray("emb")' in str(info.value), str(info.value)


def test_users_needing_different_ranks_name_the_shared_array():
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetGraph({"a": ng.EmbeddingLayer(SIZE, N, Weights=ng.NetArray("emb")),
                     "c": ng.ConvolutionLayer(2, 2, Weights=ng.NetArray("emb"), Input=(3, 5))},
                    [(ng.NetPort("x"), "a"), (ng.NetPort("z"), "c")])
    assert 'NetArray("emb")' in str(info.value), str(info.value)


def test_a_given_value_of_the_wrong_shape_is_refused():
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetGraph({"a": ng.EmbeddingLayer(SIZE, N, Weights=ng.NetArray("emb")),
                     "b": ng.EmbeddingLayer(Weights=ng.NetArray("emb", np.zeros((N, SIZE + 1))))},
                    [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")])


# ================================================================ initialisation
def test_one_initial_value_equal_at_both_paths():
    net = ng.NetInitialize(tied_pair(), seed=0)
    enc = ng.NetExtract(net, ("enc", "Weights"))
    dec = ng.NetExtract(net, ("dec", "Weights"))
    shared = ng.NetExtract(net, EMB)
    assert shared.shape == (N, SIZE) and shared.dtype == np.float32
    np.testing.assert_array_equal(enc, shared)
    np.testing.assert_array_equal(dec, shared)
    assert np.std(shared) > 0.1  # drawn (standard normal for embeddings), not a constant
    # reproducible and independent of which user declares the sizes
    again = ng.NetInitialize(tied_pair(declared_first=False), seed=0)
    np.testing.assert_array_equal(ng.NetExtract(again, EMB), shared)
    other = ng.NetInitialize(tied_pair(), seed=1)
    assert not np.array_equal(ng.NetExtract(other, EMB), shared)


def test_uninitialised_shared_array_extracts_as_none():
    net = tied_pair()
    assert ng.NetExtract(net, EMB) is None
    with pytest.raises(ng.PartSpecError):
        ng.NetExtract(net, ng.NetArray("nope"))


def test_a_given_value_is_used_everywhere():
    w = np.arange(N * SIZE, dtype=np.float32).reshape(N, SIZE)
    net = ng.NetGraph({"a": ng.EmbeddingLayer(Weights=ng.NetArray("emb", w)),
                       "b": ng.EmbeddingLayer(Weights=ng.NetArray("emb"))},
                      [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")], x="Varying", y="Varying")
    assert net.output_ports == {"Output1": ("Varying", SIZE), "Output2": ("Varying", SIZE)}
    net = ng.NetInitialize(net)
    np.testing.assert_array_equal(ng.NetExtract(net, ("b", "Weights")), w)
    out = net({"x": np.array([1, 2]), "y": np.array([3])})
    np.testing.assert_array_equal(out["Output1"], w[[1, 2]])
    np.testing.assert_array_equal(out["Output2"], w[[3]])


# ======================================================================== params
def test_params_hold_the_shared_array_once():
    net = ng.NetInitialize(tied_pair(), seed=0)
    params = ng.params_of(net)
    assert set(params) == {"enc", "dec", "SharedArrays"}
    assert params["enc"] == {} and params["dec"] == {}
    assert set(params["SharedArrays"]) == {"emb"}
    np.testing.assert_array_equal(params["SharedArrays"]["emb"], ng.NetExtract(net, EMB))
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == 1


def test_params_of_a_nested_share_are_at_the_top():
    net = ng.NetInitialize(tied_language_model(), seed=0)
    params = ng.params_of(net)
    assert set(params["SharedArrays"]) == {"emb"}
    assert "Weights" not in params["embed"]
    assert params["head"]["proj"]["Net"] == {}
    assert set(params["mix"]["Net"]) == {"Weights", "Biases"}
    assert sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)) == N * SIZE + SIZE * SIZE + SIZE


def test_information_counts_the_shared_array_once():
    net = ng.NetInitialize(tied_pair(), seed=0)
    assert ng.Information(net, "ArraysTotalElementCount") == N * SIZE
    lm = ng.NetInitialize(tied_language_model(), seed=0)
    assert ng.Information(lm, "ArraysTotalElementCount") == N * SIZE + SIZE * SIZE + SIZE


# ===================================================================== gradients
def _loss_fn(net, weights_x, weights_y):
    apply = ng.lower(net)

    def loss(params, data):
        out = apply(params, data)
        return jnp.sum(out["Output1"] * weights_x) + jnp.sum(jnp.tanh(out["Output2"]) * weights_y)

    return loss


def test_gradients_from_both_users_add_up():
    rng = np.random.default_rng(0)
    data = _data(rng)
    data["y"][:2] = data["x"][:2]  # both users touch some of the same rows
    wx = rng.standard_normal((5, SIZE)).astype(np.float32)
    wy = rng.standard_normal((7, SIZE)).astype(np.float32)
    net = ng.NetInitialize(tied_pair(), seed=0)
    w = ng.NetExtract(net, EMB)
    grads = jax.grad(_loss_fn(net, wx, wy))(ng.params_of(net), data)
    assert set(grads) == {"enc", "dec", "SharedArrays"}
    shared_grad = np.asarray(grads["SharedArrays"]["emb"])

    separate = untied_pair(w, w)
    g2 = jax.grad(_loss_fn(separate, wx, wy))(ng.params_of(separate), data)
    expected = np.asarray(g2["enc"]["Weights"]) + np.asarray(g2["dec"]["Weights"])
    assert np.abs(np.asarray(g2["enc"]["Weights"])).sum() > 0
    assert np.abs(np.asarray(g2["dec"]["Weights"])).sum() > 0
    np.testing.assert_allclose(shared_grad, expected, rtol=1e-6, atol=1e-6)
    # and under jit
    jitted = jax.jit(jax.grad(_loss_fn(net, wx, wy)))(ng.params_of(net), data)
    np.testing.assert_allclose(np.asarray(jitted["SharedArrays"]["emb"]), expected, rtol=1e-6, atol=1e-6)


def test_gradient_of_a_tied_language_model_adds_embedding_and_projection_parts():
    rng = np.random.default_rng(1)
    net = ng.NetInitialize(tied_language_model(), seed=0)
    tokens = rng.integers(0, N, 6).astype(np.int32)
    target = rng.standard_normal((6, N)).astype(np.float32)
    apply = ng.lower(net)

    def loss(params):
        return jnp.sum(apply(params, {"tokens": tokens})["probs"] * target)

    params = ng.params_of(net)
    shared_grad = np.asarray(jax.grad(loss)(params)["SharedArrays"]["emb"])

    # the same with the two uses as separate leaves, placed by hand
    w = params["SharedArrays"]["emb"]

    def loss_split(w_embed, w_proj):
        untied = {k: v for k, v in params.items() if k != "SharedArrays"}
        untied["embed"] = {"Weights": w_embed}
        untied["head"] = {"proj": {"Net": {"Weights": w_proj}}, "act": {}}
        return jnp.sum(ng.lower(_untied_lm(net))(untied, {"tokens": tokens})["probs"] * target)

    ge, gp = jax.grad(loss_split, argnums=(0, 1))(w, w)
    assert np.abs(np.asarray(ge)).sum() > 0 and np.abs(np.asarray(gp)).sum() > 0
    np.testing.assert_allclose(shared_grad, np.asarray(ge) + np.asarray(gp), rtol=1e-5, atol=1e-6)


def _untied_lm(net: ng.NetGraph) -> ng.NetGraph:
    """``tied_language_model`` with the two uses of "emb" as separate (given) arrays."""
    w = ng.NetExtract(net, EMB)
    head = ng.NetChain({"proj": ng.NetMapOperator(ng.LinearLayer(N, Weights=w, Biases=None)),
                        "act": ng.SoftmaxLayer()})
    mix = ng.NetExtract(net, "mix")
    return ng.NetGraph({"embed": ng.EmbeddingLayer(SIZE, N, Weights=w), "mix": mix, "head": head},
                       [(ng.NetPort("tokens"), "embed", "mix", "head", ng.NetPort("probs"))],
                       tokens="Varying")


def test_manual_sgd_step_with_with_params_keeps_the_uses_identical():
    rng = np.random.default_rng(2)
    data = _data(rng)
    wx = rng.standard_normal((5, SIZE)).astype(np.float32)
    wy = rng.standard_normal((7, SIZE)).astype(np.float32)
    net = ng.NetInitialize(tied_pair(), seed=0)
    loss = _loss_fn(net, wx, wy)
    params = ng.params_of(net)
    before = loss(params, data)
    for _ in range(3):
        grads = jax.grad(loss)(params, data)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
    trained = ng.with_params(net, params)
    enc = ng.NetExtract(trained, ("enc", "Weights"))
    dec = ng.NetExtract(trained, ("dec", "Weights"))
    np.testing.assert_array_equal(enc, dec)
    np.testing.assert_array_equal(enc, np.asarray(params["SharedArrays"]["emb"]))
    assert not np.array_equal(enc, ng.NetExtract(net, EMB))
    # still one shared array, and the net computes with the new value
    again = ng.params_of(trained)
    assert set(again["SharedArrays"]) == {"emb"} and again["enc"] == {} and again["dec"] == {}
    assert float(loss(again, data)) < float(before)
    out = trained(data)
    np.testing.assert_allclose(out["Output1"], enc[data["x"]], rtol=1e-6)
    np.testing.assert_allclose(out["Output2"], enc[data["y"]], rtol=1e-6)


# ========================================================================= edits
def test_replace_part_by_netarray_replaces_both_uses():
    net = ng.NetInitialize(tied_pair(), seed=0)
    w = np.random.default_rng(3).standard_normal((N, SIZE)).astype(np.float32)
    new = ng.NetReplacePart(net, {EMB: w})
    for user in ("enc", "dec"):
        np.testing.assert_array_equal(ng.NetExtract(new, (user, "Weights")), w)
    np.testing.assert_array_equal(ng.NetExtract(new, EMB), w)
    assert set(ng.params_of(new)["SharedArrays"]) == {"emb"}
    np.testing.assert_array_equal(ng.NetExtract(net, EMB), ng.NetExtract(ng.NetInitialize(tied_pair(), seed=0), EMB))


@pytest.mark.parametrize("user", ["enc", "dec"])
def test_replace_part_through_one_users_path_replaces_both(user):
    net = ng.NetInitialize(tied_pair(), seed=0)
    w = np.full((N, SIZE), 0.5, np.float32)
    new = ng.NetReplacePart(net, {(user, "Weights"): w})
    for other in ("enc", "dec"):
        np.testing.assert_array_equal(ng.NetExtract(new, (other, "Weights")), w)
    out = new(_data(np.random.default_rng(0)))
    np.testing.assert_array_equal(out["Output1"], np.full((5, SIZE), 0.5, np.float32))
    np.testing.assert_array_equal(out["Output2"], np.full((7, SIZE), 0.5, np.float32))


def test_replace_part_in_an_uninitialised_net_sets_both():
    w = np.ones((N, SIZE), np.float32)
    new = ng.NetReplacePart(tied_pair(), {("dec", "Weights"): w})
    np.testing.assert_array_equal(ng.NetExtract(new, ("enc", "Weights")), w)


def test_replace_part_with_a_wrong_shape_is_refused():
    net = ng.NetInitialize(tied_pair(), seed=0)
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetReplacePart(net, {EMB: np.zeros((N, SIZE + 1), np.float32)})
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetReplacePart(net, {("dec", "Weights"): np.zeros((3, SIZE), np.float32)})


def test_replace_unknown_shared_array():
    with pytest.raises(ng.PartSpecError):
        ng.NetReplacePart(tied_pair(), {ng.NetArray("nope"): np.zeros((N, SIZE))})


# ====================================================================== conflicts
def _conflicting() -> ng.NetGraph:
    return ng.NetGraph(
        {"a": ng.EmbeddingLayer(Weights=ng.NetArray("emb", np.zeros((N, SIZE)))),
         "b": ng.EmbeddingLayer(Weights=ng.NetArray("emb", np.ones((N, SIZE))))},
        [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")], x="Varying", y="Varying")


@pytest.mark.parametrize("use", [
    ng.params_of,
    ng.NetInitialize,
    lambda net: ng.NetExtract(net, EMB),
    lambda net: net({"x": np.array([1]), "y": np.array([2])}),
])
def test_conflicting_given_values_are_an_error_when_used(use):
    """Two different values given for the same name: every use of the net refuses it with
    a message naming the shared array and both paths."""
    try:
        net = _conflicting()
    except ng.NetGraphError as err:  # refusing at construction is fine too
        message = str(err)
    else:
        with pytest.raises(ng.NetGraphError) as info:
            use(net)
        message = str(info.value)
    assert 'NetArray("emb")' in message and "a/Weights" in message and "b/Weights" in message, message


def test_conflicting_given_values_cannot_be_saved(tmp_path):
    try:
        net = _conflicting()
    except ng.NetGraphError:
        return
    with pytest.raises(ng.NetGraphError, match='NetArray\\("emb"\\)'):
        ng.save(net, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_conflicting_given_values_fail_at_construction():
    """Inconsistent declarations fail at construction (layers/base.py, "as in Wolfram"):
    two different values for one shared array are such a declaration."""
    with pytest.raises(ng.NetGraphError, match='NetArray\\("emb"\\)'):
        _conflicting()


def test_equal_given_values_are_not_a_conflict():
    w = np.arange(N * SIZE, dtype=np.float32).reshape(N, SIZE)
    net = ng.NetGraph(
        {"a": ng.EmbeddingLayer(Weights=ng.NetArray("emb", w)),
         "b": ng.EmbeddingLayer(Weights=ng.NetArray("emb", w.copy()))},
        [(ng.NetPort("x"), "a"), (ng.NetPort("y"), "b")], x="Varying", y="Varying")
    np.testing.assert_array_equal(ng.params_of(net)["SharedArrays"]["emb"], w)


# ==================================================================== save / load
def test_save_load_keeps_it_shared(tmp_path):
    net = ng.NetInitialize(tied_pair(), seed=0)
    path = tmp_path / "tied.npz"
    ng.save(net, path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["__netgraph__", "array:SharedArrays/emb"]
        document = json.loads(data["__netgraph__"].tobytes())
    assert document["arrays"] == {"SharedArrays/emb": [N, SIZE]}
    assert document["net"]["children"]["enc"]["shared"] == {"Weights": "emb"}
    back = ng.load(path)
    assert ng.to_config(back) == ng.to_config(net)
    assert back.nodes["enc"].shared == {"Weights": "emb"} and back.nodes["dec"].shared == {"Weights": "emb"}
    np.testing.assert_array_equal(ng.NetExtract(back, EMB), ng.NetExtract(net, EMB))
    params = ng.params_of(back)
    assert set(params["SharedArrays"]) == {"emb"} and len(jax.tree_util.tree_leaves(params)) == 1
    data = _data(np.random.default_rng(4))
    expected, actual = net(data), back(data)
    for port in expected:
        np.testing.assert_array_equal(actual[port], expected[port])
    # still tied after loading: one replacement changes both
    w = np.zeros((N, SIZE), np.float32)
    replaced = ng.NetReplacePart(back, {("enc", "Weights"): w})
    np.testing.assert_array_equal(ng.NetExtract(replaced, ("dec", "Weights")), w)
    assert ng.Information(back, "ArraysTotalElementCount") == N * SIZE


def test_save_load_nested_share(tmp_path):
    net = ng.NetInitialize(tied_language_model(), seed=0)
    path = tmp_path / "lm.npz"
    ng.save(net, path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["__netgraph__", "array:SharedArrays/emb",
                                      "array:mix/Net/Biases", "array:mix/Net/Weights"]
    back = ng.load(path)
    assert ng.to_config(back) == ng.to_config(net)
    tokens = np.array([1, 5, 9, 0], np.int32)
    np.testing.assert_array_equal(back({"tokens": tokens}), net({"tokens": tokens}))
    np.testing.assert_array_equal(ng.NetExtract(back, ("head", "proj", "Net", "Weights")),
                                  ng.NetExtract(net, EMB))


def test_save_load_uninitialised_share(tmp_path):
    net = tied_pair(declared_first=False)
    ng.save(net, tmp_path / "u.npz")
    with np.load(tmp_path / "u.npz", allow_pickle=False) as data:
        assert data.files == ["__netgraph__"]
    back = ng.load(tmp_path / "u.npz")
    assert ng.NetExtract(back, EMB) is None
    assert back.output_ports == net.output_ports
    a = ng.NetExtract(ng.NetInitialize(back, seed=0), EMB)
    np.testing.assert_array_equal(a, ng.NetExtract(ng.NetInitialize(net, seed=0), EMB))


def test_config_roundtrip_keeps_the_share():
    net = tied_language_model()
    config = ng.to_config(net)
    back = ng.from_config(json.loads(json.dumps(config)))
    assert ng.to_config(back) == config
    assert back.output_ports == net.output_ports
    assert ng.NetExtract(back, ("head", "proj", "Net")).shared == {"Weights": "emb"}


def test_loaded_shared_array_with_wrong_shape_is_refused(tmp_path):
    net = ng.NetInitialize(tied_pair(), seed=0)
    ng.save(net, tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        document = json.loads(data["__netgraph__"].tobytes())
    bad = np.zeros((N, SIZE + 1), np.float32)
    document["arrays"]["SharedArrays/emb"] = list(bad.shape)
    with open(tmp_path / "bad.npz", "wb") as handle:
        np.savez(handle, __netgraph__=np.frombuffer(json.dumps(document).encode(), np.uint8),
                 **{"array:SharedArrays/emb": bad})
    with pytest.raises(ng.SerializationError):
        ng.load(tmp_path / "bad.npz")


# ============================================================ name collisions
def test_a_node_named_sharedarrays_does_not_collide_with_the_shared_params(tmp_path):
    """A graph node may be called "SharedArrays"; its params must not be overwritten by
    (or mixed with) the shared arrays - or the name must be refused up front."""
    try:
        net = ng.NetGraph(
            {"SharedArrays": ng.LinearLayer(2, Input=3),
             "e": ng.EmbeddingLayer(2, 5, Weights=ng.NetArray("emb"), Input="Varying")},
            [(ng.NetPort("a"), "SharedArrays"), (ng.NetPort("b"), "e")])
    except ng.NetGraphError as err:
        assert "SharedArrays" in str(err)
        return
    net = ng.NetInitialize(net, seed=0)
    params = ng.params_of(net)
    leaves = jax.tree_util.tree_leaves(params)
    assert len(leaves) == 3, jax.tree_util.tree_map(np.shape, params)
    data = {"a": np.ones(3, np.float32), "b": np.array([1, 2])}
    out = net(data)
    w, b = ng.NetExtract(net, ("SharedArrays", "Weights")), ng.NetExtract(net, ("SharedArrays", "Biases"))
    np.testing.assert_allclose(out["Output1"], w @ np.ones(3) + b, rtol=1e-6)
    ng.save(net, tmp_path / "c.npz")
    back = ng.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back(data)["Output1"], out["Output1"])
