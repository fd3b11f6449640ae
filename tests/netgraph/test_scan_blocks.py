"""Repeated blocks lowered as one lax.scan: the runs found, and scan == unrolled (outputs,
gradients, randomness, layer state) - see netgraph/scan_blocks.py."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from netgraph.scan_blocks import STACKED, find_runs, stack_runs


def pairs(k: int, size: int = 8) -> list:
    layers = []
    for _ in range(k):
        layers += [ng.LinearLayer(size), ng.ElementwiseLayer("Tanh")]
    return layers


def residual_block(size: int = 8) -> ng.NetGraph:
    return ng.NetGraph({"lin": ng.LinearLayer(size), "act": ng.ElementwiseLayer("Tanh"),
                        "add": ng.ThreadingLayer("Plus")},
                       [("lin", "act"), (["act", ng.NetPort("Input")], "add")])


def transformer_block(d: int = 8, heads: int = 2) -> ng.NetGraph:
    return ng.NetGraph({
        "mha": ng.keras.MultiHeadAttention(heads, d // heads),
        "add1": ng.ThreadingLayer("Plus"),
        "ff1": ng.NetMapOperator(ng.LinearLayer(2 * d)), "act": ng.ElementwiseLayer("Ramp"),
        "ff2": ng.NetMapOperator(ng.LinearLayer(d)), "add2": ng.ThreadingLayer("Plus")},
        [(ng.NetPort("Input"), ng.NetPort("mha", p)) for p in ("Query", "Key", "Value")]
        + [(["mha", ng.NetPort("Input")], "add1"), ("add1", "ff1", "act", "ff2"), (["ff2", "add1"], "add2")])


def shape_of(net: ng.Layer) -> list[tuple[int, int]]:
    """(count, period) of each run of the top graph."""
    return [(len(r.names), len(r.names[0])) for r in find_runs(net.ir, net.inference, ())]


def uses_scan(fn, *args) -> bool:
    return "scan" in str(jax.make_jaxpr(fn)(*args))


def assert_same(net: ng.Layer, inputs: dict, grads: bool = True, **call) -> None:
    """scan == unrolled: outputs, and (``grads``) gradients w.r.t. every array."""
    params = ng.params_of(net)
    scanned, unrolled = ng.lower(net), ng.lower(net, scan_blocks=False)
    assert uses_scan(lambda p: scanned(p, inputs, **call), params)
    assert not uses_scan(lambda p: unrolled(p, inputs, **call), params)
    first = jax.jit(lambda p: scanned(p, inputs, **call))(params)
    second = jax.jit(lambda p: unrolled(p, inputs, **call))(params)
    for name, a in first.items():
        np.testing.assert_allclose(a, second[name], rtol=1e-5, atol=1e-5)
    if not grads:
        return

    def loss(fn):
        return lambda p: sum(jnp.sum(v) for v in fn(p, inputs, **call).values())

    g1, g2 = jax.jit(jax.grad(loss(scanned)))(params), jax.jit(jax.grad(loss(unrolled)))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g1, g2)


def test_chain_of_linear_tanh_pairs_is_one_run_equal_to_unrolled():
    net = ng.NetInitialize(ng.NetChain(pairs(6), Input=8), seed=0)
    assert shape_of(net) == [(6, 2)]
    x = np.random.default_rng(0).normal(size=8).astype(np.float32)
    assert_same(net, {"Input": x})
    np.testing.assert_allclose(net(x), ng.lower(net, scan_blocks=False)(ng.params_of(net), {"Input": x})["Output"],
                               rtol=1e-5, atol=1e-6)


def test_only_the_repeated_stretch_is_scanned():
    layers = [ng.LinearLayer(8), *pairs(4), ng.LinearLayer(3), ng.ElementwiseLayer("Tanh"), ng.LinearLayer(3)]
    net = ng.NetInitialize(ng.NetChain(layers, Input=5), seed=1)
    assert shape_of(net) == [(4, 2)]  # the first Linear maps 5 -> 8: a different block
    assert_same(net, {"Input": np.ones(5, np.float32)})


def test_identical_sub_nets_and_residual_graphs_and_nesting():
    chains = ng.NetInitialize(ng.NetChain([ng.NetChain(pairs(2)) for _ in range(3)], Input=8), seed=2)
    assert shape_of(chains) == [(3, 1)]
    assert_same(chains, {"Input": np.linspace(-1, 1, 8, dtype=np.float32)})
    residual = ng.NetInitialize(ng.NetChain([residual_block() for _ in range(4)], Input=8), seed=3)
    assert shape_of(residual) == [(4, 1)]
    assert_same(residual, {"Input": np.linspace(-1, 1, 8, dtype=np.float32)})


def test_flat_residual_graph_with_fan_out_is_a_run():
    nodes, connections, previous = {}, [], ng.NetPort("Input")
    for i in range(3):
        nodes.update({f"lin{i}": ng.LinearLayer(8), f"add{i}": ng.ThreadingLayer("Plus")})
        connections += [(previous, f"lin{i}"), ([f"lin{i}", previous], f"add{i}")]
        previous = f"add{i}"
    net = ng.NetInitialize(ng.NetGraph(nodes, connections, Input=8), seed=4)
    assert shape_of(net) == [(3, 2)]
    assert_same(net, {"Input": np.linspace(-1, 1, 8, dtype=np.float32)})


def test_an_output_read_from_inside_a_block_ends_the_run():
    net = ng.NetGraph(pairs(4), [("0", "1", "2", "3", "4", "5", "6", "7"),
                                 ("3", ng.NetPort("Middle"))], Input=8)
    # block 1's Tanh is read by the graph output "Middle": blocks 0-1 and 2-3 are the runs
    assert [(len(r.names), len(r.names[0])) for r in find_runs(net.ir, net.inference, ())] == [(2, 2), (2, 2)]
    net = ng.NetInitialize(net, seed=5)
    assert_same(net, {"Input": np.ones(8, np.float32)})


def test_transformer_stack_of_multi_head_attention_blocks():
    stack = ng.NetChain([transformer_block() for _ in range(48)], Input=("Varying", 8))
    assert shape_of(stack) == [(48, 1)]  # inference only: a 48-block stack is one run
    net = ng.NetInitialize(ng.NetChain([transformer_block() for _ in range(2)], Input=("Varying", 8)), seed=6)
    x = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32) * 0.3
    assert_same(net, {"Input": x})
    padded = np.concatenate([x, np.zeros((2, 8), np.float32)])
    assert_same(net, {"Input": padded}, grads=False, lengths={"Input": 5})


def test_dropout_randomness_is_the_unrolled_randomness():
    layers = []
    for _ in range(3):
        layers += [ng.LinearLayer(8), ng.DropoutLayer(0.5)]
    net = ng.NetInitialize(ng.NetChain(layers, Input=8), seed=7)
    assert shape_of(net) == [(3, 2)]
    assert_same(net, {"Input": np.ones(8, np.float32)}, train=True, rng=jax.random.key(3))


def test_batch_normalization_state_comes_out_per_block():
    layers = []
    for _ in range(3):
        layers += [ng.LinearLayer(4), ng.BatchNormalizationLayer()]
    net = ng.NetInitialize(ng.NetChain(layers, Input=4), seed=8)
    params = ng.params_of(net)
    x = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    results = []
    for scan in (True, False):
        apply = ng.lower(net, batch_axis="batch", scan_blocks=scan)
        fn = jax.vmap(lambda v: apply(params, {"Input": v}, train=True, return_state=True), axis_name="batch")
        results.append(fn(x))
    (out1, state1), (out2, state2) = results
    np.testing.assert_allclose(out1["Output"], out2["Output"], rtol=1e-5, atol=1e-5)
    assert set(state1) == {"1", "3", "5"}
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), state1, state2)


def test_tapped_blocks_stay_unrolled():
    net = ng.NetChain(pairs(4), Input=8)
    runs = find_runs(net.ir, net.inference, (), taps={("5",): None})
    # node "5" (block 2's Tanh) is tapped: the blocks before it form the only run
    assert [r.names for r in runs] == [[("0", "1"), ("2", "3")]]


def test_params_stacked_ahead_of_time_give_the_same_result():
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(8), *pairs(3)], Input=8), seed=9)
    params = ng.params_of(net)
    stacked = stack_runs(net, params)
    assert set(stacked) == {"0", STACKED}
    assert stacked[STACKED]["1"][0]["Weights"].shape == (3, 8, 8)
    x = {"Input": np.ones(8, np.float32)}
    apply = ng.lower(net)
    np.testing.assert_allclose(apply(stacked, x)["Output"], apply(params, x)["Output"], rtol=1e-6)


def test_shared_arrays_in_repeated_blocks():
    shared = ng.NetArray("W")
    layers = []
    for _ in range(3):
        layers += [ng.LinearLayer(8, Weights=shared), ng.ElementwiseLayer("Tanh")]
    net = ng.NetInitialize(ng.NetChain(layers, Input=8), seed=10)
    assert stack_runs(net, ng.params_of(net)) is not None
    assert_same(net, {"Input": np.ones(8, np.float32)})
    np.testing.assert_allclose(net(np.ones(8, np.float32)),
                               ng.lower(net, scan_blocks=False)(ng.params_of(net), {"Input": np.ones(8, np.float32)})["Output"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [2, 5])
def test_net_train_through_scanned_blocks(k):
    net = ng.NetChain([*pairs(k, 4), ng.LinearLayer(1)], Input=4)
    rng = np.random.default_rng(k)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = x[:, :1] * 0.5
    result = ng.NetTrain(net, {"Input": x, "Target": y}, max_epochs=3, batch_size=16, progress=False)
    assert np.isfinite(result.history["loss"]).all()


def test_layers_repeated_at_a_distance_with_other_ports_are_no_run():
    """Aggregation and Replicate appear twice, four nodes apart, between nodes of other
    kinds (a layer norm made of layers): no run, and no error."""
    width = 4
    net = ng.NetGraph(
        {"mean": ng.AggregationLayer("Mean", 0), "spread": ng.ReplicateLayer(width),
         "center": ng.ThreadingLayer("Subtract"), "square": ng.ElementwiseLayer("Square"),
         "variance": ng.AggregationLayer("Mean", 0), "inverse": ng.ElementwiseLayer("Sqrt"),
         "spread_inverse": ng.ReplicateLayer(width), "scale": ng.ThreadingLayer("Divide")},
        [(ng.NetPort("Input"), "mean", "spread"), ([ng.NetPort("Input"), "spread"], "center"),
         ("center", "square", "variance", "inverse", "spread_inverse"),
         (["center", "spread_inverse"], "scale", ng.NetPort("Output"))], Input=width)
    assert find_runs(net.ir, net.inference, ()) == []


def test_params_stacked_ahead_serve_lowerings_with_taps_and_without_scans():
    net = ng.NetInitialize(ng.NetChain(pairs(4), Input=8), seed=11)
    params, x = ng.params_of(net), {"Input": np.linspace(-1, 1, 8, dtype=np.float32)}
    stacked = stack_runs(net, params)
    expected = ng.lower(net, scan_blocks=False)(params, x)["Output"]
    np.testing.assert_allclose(ng.lower(net, scan_blocks=False)(stacked, x)["Output"], expected, rtol=1e-6)
    taps = {("5",): None}  # block 2's Tanh: the run found with taps is shorter
    outputs, _ = ng.compiler.run(net, stacked, x, None, None, False, taps=taps)
    np.testing.assert_allclose(outputs["Output"], expected, rtol=1e-5, atol=1e-6)
    assert taps[("5",)]["Output"].shape == (8,)
