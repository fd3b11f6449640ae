"""NetGraph / NetChain construction rules, inference across nesting levels, evaluation,
initialisation, NetExtract / NetReplacePart, compile caching and JAX transforms.

Layers get explicit arrays where a test checks numbers, so every expected value is computed
here in NumPy from those arrays.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from netgraph.ir import PortRef
from harness import check_layer

L = ng.LinearLayer


def lin(rng, n_out, n_in, *, bias=True):
    """A LinearLayer with given random arrays, and those arrays (float64) for references."""
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    layer = L(n_out, Weights=w, Biases=b) if bias else L(n_out, Weights=w, Biases=None)
    return layer, w.astype(np.float64), (b.astype(np.float64) if bias else np.zeros(n_out))


def close(actual, expected, atol=1e-5):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=1e-5)


# --------------------------------------------------------------------- layer specs
def test_list_layers_are_named_by_position():
    g = ng.NetGraph([L(3), L(2)], [(0, 1)], Input=4)
    assert list(g.children()) == ["0", "1"]
    assert g.input_ports == {"Input": (4,)}
    assert g.output_ports == {"Output": (2,)}


def test_dict_layers_keep_their_names_and_order():
    g = ng.NetGraph({"z": L(3), "a": L(2)}, [("z", "a")], Input=4)
    assert list(g.children()) == ["z", "a"]
    assert ng.NetExtract(g, "a").input_ports == {"Input": (3,)}


@pytest.mark.parametrize(
    "spec, cls, check",
    [
        (5, ng.LinearLayer, lambda l: l.options.size == 5),
        ("Tanh", ng.ElementwiseLayer, lambda l: l.options.function == "Tanh"),
        ("ReLU", ng.ElementwiseLayer, lambda l: l.options.function == "ReLU"),
        ("Plus", ng.ThreadingLayer, lambda l: l.options.function == "Plus"),
        ("Times", ng.ThreadingLayer, lambda l: l.options.function == "Times"),
        ([3, "Tanh"], ng.NetChain, lambda l: [type(c) for c in l.children().values()]
         == [ng.LinearLayer, ng.ElementwiseLayer]),
    ],
)
def test_layer_shortcuts(spec, cls, check):
    g = ng.NetGraph({"x": spec}, [])
    layer = g.children()["x"]
    assert type(layer) is cls
    assert check(layer)


def test_chain_of_shortcuts(rng):
    c = ng.NetChain([3, "Tanh", 2], Input=5)
    assert [type(x) for x in c.children().values()] == [L, ng.ElementwiseLayer, L]
    assert c.input_ports == {"Input": (5,)} and c.output_ports == {"Output": (2,)}
    c = ng.NetInitialize(c, seed=0)
    x = rng.standard_normal(5).astype(np.float32)
    w0, b0 = ng.NetExtract(c, (0, "Weights")), ng.NetExtract(c, (0, "Biases"))
    w2, b2 = ng.NetExtract(c, (2, "Weights")), ng.NetExtract(c, (2, "Biases"))
    close(c(x), w2 @ np.tanh(w0 @ x + b0) + b2)


def test_bad_layer_spec():
    with pytest.raises(ng.SpecificationError, match='layer "x"'):
        ng.NetGraph({"x": "NotAFunction"}, [])
    with pytest.raises(ng.SpecificationError):
        ng.NetGraph({}, [])
    with pytest.raises(ng.SpecificationError):
        ng.NetChain([])


# ---------------------------------------------------------------------- connections
def test_chain_connection(rng):
    (a, wa, ba), (b, wb, bb), (c, wc, bc) = lin(rng, 3, 4), lin(rng, 2, 3), lin(rng, 5, 2)
    g = ng.NetGraph({"a": a, "b": b, "c": c}, [("a", "b", "c")])
    assert g.input_names == ("Input",) and g.output_names == ("Output",)
    x = rng.standard_normal(4).astype(np.float32)
    close(g(x), wc @ (wb @ (wa @ x + ba) + bb) + bc)


def test_ordered_sources_feed_input1_then_input2(rng):
    (a, wa, ba), (b, wb, bb) = lin(rng, 2, 3), lin(rng, 2, 3)
    g = ng.NetGraph({"a": a, "b": b, "minus": ng.ThreadingLayer("Subtract")},
                    [(["a", "b"], "minus")])
    x = rng.standard_normal(3).astype(np.float32)
    close(g(x), (wa @ x + ba) - (wb @ x + bb))
    swapped = ng.NetGraph({"a": a, "b": b, "minus": ng.ThreadingLayer("Subtract")},
                          [(["b", "a"], "minus")])
    close(swapped(x), (wb @ x + bb) - (wa @ x + ba))


def test_separate_edges_into_one_layer_fill_its_inputs_in_order(rng):
    """Wolfram: a -> minus and b -> minus fill minus's Input1 and Input2 in that order."""
    (a, wa, ba), (b, wb, bb) = lin(rng, 2, 3), lin(rng, 2, 3)
    g = ng.NetGraph({"a": a, "b": b, "minus": ng.ThreadingLayer("Subtract")},
                    [("a", "minus"), ("b", "minus")])
    x = rng.standard_normal(3).astype(np.float32)
    close(g(x), (wa @ x + ba) - (wb @ x + bb))



def test_a_fanned_out_source_merged_into_several_layers_keeps_each_layers_own_order():
    """a -> {m1, m2}, then b -> m1 and c -> m2: m1 is a - b and m2 is a - c (merging one
    layer's sources leaves the fan-out's other destinations as they were)."""
    g = ng.NetGraph({"a": L(2), "b": L(2), "c": L(2), "m1": ng.ThreadingLayer("Subtract"),
                     "m2": ng.ThreadingLayer("Subtract")},
                    [("a", ["m1", "m2"]), ("b", "m1"), ("c", "m2")], Input=3)
    assert g.edges[PortRef("m1", "Input1")] == g.edges[PortRef("m2", "Input1")] == PortRef("a", "Output")
    assert g.edges[PortRef("m1", "Input2")] == PortRef("b", "Output")
    assert g.edges[PortRef("m2", "Input2")] == PortRef("c", "Output")

def test_too_many_sources_for_a_binary_threading_layer_name_the_connection_and_layer():
    with pytest.raises(ng.NetConnectionError) as err:
        ng.NetGraph({"a": L(2), "b": L(2), "c": L(2), "m": ng.ThreadingLayer("Subtract")},
                    [(["a", "b", "c"], "m")], Input=3)
    assert str(err.value).startswith(
        "['a', 'b', 'c'] -> 'm': 3 sources connected to 'm' (ThreadingLayer[Subtract]): "
        "ThreadingLayer: invalid options: Subtract takes exactly 2 inputs, not 3.")


def test_variadic_layer_gets_as_many_inputs_as_sources():
    g = ng.NetGraph({"a": L(2), "b": L(2), "c": L(2), "sum": "Plus"},
                    [(["a", "b", "c"], "sum")], Input=3)
    assert ng.NetExtract(g, "sum").input_names == ("Input1", "Input2", "Input3")
    assert g.output_ports == {"Output": (2,)}


def test_fan_out_and_dangling_output_suffixes(rng):
    (a, wa, ba), (b, wb, bb), (c, wc, bc) = lin(rng, 2, 3), lin(rng, 4, 2), lin(rng, 5, 2)
    g = ng.NetGraph({"a": a, "b": b, "c": c}, [("a", ["b", "c"])])
    assert g.output_names == ("Output1", "Output2")
    assert g.output_ports == {"Output1": (4,), "Output2": (5,)}
    x = rng.standard_normal(3).astype(np.float32)
    out = g(x)
    h = wa @ x + ba
    close(out["Output1"], wb @ h + bb)
    close(out["Output2"], wc @ h + bc)


def test_graph_ports(rng):
    (a, wa, ba), (b, wb, bb) = lin(rng, 2, 3), lin(rng, 4, 2)
    g = ng.NetGraph({"a": a, "b": b},
                    [(ng.NetPort("x"), "a", "b", ng.NetPort("y")), ("a", ng.NetPort("hidden"))])
    assert g.input_names == ("x",)
    assert set(g.output_names) == {"y", "hidden"}
    x = rng.standard_normal(3).astype(np.float32)
    out = g({"x": x})
    close(out["hidden"], wa @ x + ba)
    close(out["y"], wb @ (wa @ x + ba) + bb)


def test_named_layer_port_as_source_and_destination(rng):
    minus = ng.ThreadingLayer("Subtract")
    (a, wa, ba), = [lin(rng, 2, 3)]
    g = ng.NetGraph({"a": a, "minus": minus},
                    [(ng.NetPort("p"), ng.NetPort("minus", "Input2")),
                     (ng.NetPort("a", "Output"), ng.NetPort("minus", "Input1"))])
    assert set(g.input_names) == {"p", "Input"}
    x = rng.standard_normal(3).astype(np.float32)
    p = rng.standard_normal(2).astype(np.float32)
    close(g({"Input": x, "p": p}), (wa @ x + ba) - p)


def test_muting_an_output(rng):
    (a, _, _), (b, wb, bb) = lin(rng, 2, 3), lin(rng, 4, 3)
    g = ng.NetGraph({"a": a, "b": b}, [(ng.NetPort("a", "Output"), None)])
    assert g.output_names == ("Output",)
    x = rng.standard_normal(3).astype(np.float32)
    close(g(x), wb @ x + bb)


def test_dangling_inputs_merge_by_name(rng):
    (a, wa, ba), (b, wb, bb) = lin(rng, 2, 3), lin(rng, 4, 3)
    g = ng.NetGraph({"a": a, "b": b}, [])
    assert g.input_names == ("Input",)
    assert g.output_names == ("Output1", "Output2")
    x = rng.standard_normal(3).astype(np.float32)
    out = g(x)
    close(out["Output1"], wa @ x + ba)
    close(out["Output2"], wb @ x + bb)


def test_dangling_inputs_of_different_names_stay_apart():
    g = ng.NetGraph({"a": L(2), "p": "Plus"}, [], Input1=2)
    assert set(g.input_names) == {"Input", "Input1", "Input2"}
    assert g.input_ports["Input2"] == (2,)  # Plus ties its inputs' shapes


def test_graph_port_shapes_must_name_ports():
    with pytest.raises(ng.SpecificationError, match='"Nope"'):
        ng.NetGraph({"a": L(2)}, [], Nope=3)


# ------------------------------------------------------------------------ inference
def readme_graph():
    return ng.NetGraph(
        {"a": L(8), "b": L(ng.Automatic), "plus": ng.ThreadingLayer("Plus"), "out": L(2)},
        [(ng.NetPort("A"), "a"), (ng.NetPort("B"), "b"), (["a", "b"], "plus", "out")],
        A=4, B=5,
    )


def test_backward_inference_readme_example():
    g = readme_graph()
    b = ng.NetExtract(g, "b")
    assert b.input_ports == {"Input": (5,)}
    assert b.output_ports == {"Output": (8,)}  # from a's size, backwards through "plus"
    assert g.inference.port(("b",), "Output").to_user() == (8,)
    assert g.input_ports == {"A": (4,), "B": (5,)}
    assert g.output_ports == {"Output": (2,)}
    g = ng.NetInitialize(g, seed=0)
    assert ng.NetExtract(g, ("b", "Weights")).shape == (8, 5)
    assert ng.NetExtract(g, ("out", "Weights")).shape == (2, 8)


def test_inference_across_three_levels():
    level3 = ng.NetChain({"l": L(ng.Automatic)})
    level2 = ng.NetGraph({"inner": level3, "t": "Tanh"}, [("inner", "t")])
    level1 = ng.NetChain({"mid": level2, "head": L(2, Input=6)}, Input=4)
    deep = ng.NetExtract(level1, ("mid", "inner", "l"))
    assert deep.input_ports == {"Input": (4,)}  # forwards from the outer port
    assert deep.output_ports == {"Output": (6,)}  # backwards from a sibling of "mid"
    assert ng.NetExtract(level1, "mid").output_ports == {"Output": (6,)}
    net = ng.NetInitialize(level1, seed=0)
    assert ng.NetExtract(net, ("mid", "inner", "l", "Weights")).shape == (6, 4)
    assert ng.params_of(net)["mid"]["inner"]["l"]["Weights"].shape == (6, 4)


def test_nested_graph_named_ports(rng):
    (l, wl, bl), (pre, wp, bp) = lin(rng, 3, 4), lin(rng, 4, 2)
    inner = ng.NetGraph({"l": l}, [(ng.NetPort("x"), "l", ng.NetPort("y"))])
    outer = ng.NetGraph({"pre": pre, "inner": inner}, [("pre", ng.NetPort("inner", "x"))])
    assert outer.output_names == ("y",)
    x = rng.standard_normal(2).astype(np.float32)
    close(outer(x), wl @ (wp @ x + bp) + bl)


def test_graph_infers_varying_lengths():
    g = ng.NetChain(["Tanh", "Sin"], Input=("Varying", 3))
    assert g.output_ports == {"Output": ("Varying", 3)}
    out = g(np.zeros((5, 3), np.float32))
    assert out.shape == (5, 3)


# ----------------------------------------------------------------------- evaluation
def test_one_example_vs_batch(rng):
    g = ng.NetInitialize(readme_graph(), seed=3)
    a = rng.standard_normal((4, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    batch = g({"A": a, "B": b})
    assert batch.shape == (4, 2)
    for i in range(4):
        close(batch[i], g({"A": a[i], "B": b[i]}))


def test_multi_output_batch_returns_dict_of_batches(rng):
    g = ng.NetInitialize(ng.NetGraph({"a": L(2), "b": L(3)}, [], Input=4), seed=0)
    out = g(rng.standard_normal((6, 4)).astype(np.float32))
    assert {k: v.shape for k, v in out.items()} == {"Output1": (6, 2), "Output2": (6, 3)}


def test_check_layer_on_a_graph(rng):
    g = readme_graph()

    def reference(inputs, arrays):
        def dense(name, x):
            return arrays[name, "Weights"] @ x + arrays[name, "Biases"]

        return dense("out", dense("a", inputs["A"]) + dense("b", inputs["B"]))

    result = check_layer(
        g,
        {"A": rng.standard_normal(4).astype(np.float32),
         "B": rng.standard_normal(5).astype(np.float32)},
        reference,
    )
    assert result.outputs["Output"].shape == (2,)


def test_check_layer_on_a_varying_chain(rng):
    check_layer(
        ng.NetChain(["Tanh", "Square"]),
        {"Input": rng.standard_normal((3, 2)).astype(np.float32)},
        lambda inputs, arrays: np.tanh(inputs["Input"]) ** 2,
        varying=True,
    )


def test_check_layer_catches_a_wrong_reference(rng):
    x = rng.standard_normal(3).astype(np.float32)
    with pytest.raises(AssertionError, match="reference"):
        check_layer(ng.ElementwiseLayer("Tanh"), {"Input": x}, lambda i, a: np.sin(i["Input"]))


def test_check_layer_catches_a_lowering_that_ignores_padding(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    centre = ng.ElementwiseLayer(lambda v: v - v.mean(0, keepdims=True))  # not pointwise
    with pytest.raises(AssertionError, match="padded"):
        check_layer(centre, {"Input": x},
                    lambda i, a: i["Input"] - i["Input"].mean(0, keepdims=True), varying=True)


def test_check_layer_reference_sees_arrays_and_options(rng):
    seen = {}

    def reference(inputs, arrays):
        seen["size"] = arrays.option("size")
        seen["biases"] = arrays.get("Biases")
        seen["has"] = ("Weights" in arrays, "Biases" in arrays)
        return arrays["Weights"] @ inputs["Input"]

    result = check_layer(L(2, Biases=None), {"Input": rng.standard_normal(3).astype(np.float32)},
                         reference)
    assert seen == {"size": 2, "biases": None, "has": (True, False)}
    assert ng.NetExtract(result.net, "Weights").shape == (2, 3)


# ------------------------------------------------------------------- initialisation
def test_initialize_is_reproducible():
    g = readme_graph()
    one, two = ng.NetInitialize(g, seed=7), ng.NetInitialize(g, seed=7)
    other = ng.NetInitialize(g, seed=8)
    for name in ("a", "b", "out"):
        w1 = ng.NetExtract(one, (name, "Weights"))
        np.testing.assert_array_equal(w1, ng.NetExtract(two, (name, "Weights")))
        assert not np.allclose(w1, ng.NetExtract(other, (name, "Weights")))
    # different layers get different arrays even with equal shapes
    c = ng.NetInitialize(ng.NetChain([4, 4], Input=4), seed=0)
    assert not np.allclose(ng.NetExtract(c, (0, "Weights")), ng.NetExtract(c, (1, "Weights")))


def test_initialize_does_not_modify_its_argument():
    g = readme_graph()
    ng.NetInitialize(g, seed=0)
    assert ng.NetExtract(g, ("a", "Weights")) is None
    with pytest.raises(ng.UninitializedError):
        g({"A": np.zeros(4, np.float32), "B": np.zeros(5, np.float32)})


def test_adding_a_layer_keeps_the_other_initial_arrays():
    small = ng.NetInitialize(ng.NetChain({"a": L(3), "b": L(2)}, Input=4), seed=5)
    big = ng.NetInitialize(ng.NetChain({"pre": "Tanh", "a": L(3), "b": L(2), "c": L(6)}, Input=4),
                           seed=5)
    for spec in (("a", "Weights"), ("b", "Weights"), ("a", "Biases")):
        np.testing.assert_array_equal(ng.NetExtract(small, spec), ng.NetExtract(big, spec))


def test_initialize_keeps_given_arrays(rng):
    layer, w, _ = lin(rng, 2, 3)
    g = ng.NetInitialize(ng.NetChain({"given": layer, "new": L(4)}), seed=0)
    np.testing.assert_array_equal(ng.NetExtract(g, ("given", "Weights")), w.astype(np.float32))
    assert ng.NetExtract(g, ("new", "Weights")).shape == (4, 2)


def test_initialized_weight_statistics():
    """Kaiming-normal: std sqrt(2 / fan_in); biases start at zero."""
    net = ng.NetInitialize(L(400, Input=50), seed=0)
    w = ng.NetExtract(net, "Weights")
    assert w.dtype == np.float32
    assert abs(w.std() - np.sqrt(2 / 50)) < 0.01
    assert abs(w.mean()) < 0.01
    np.testing.assert_array_equal(ng.NetExtract(net, "Biases"), np.zeros(400, np.float32))


# ------------------------------------------------------------------------ NetExtract
@pytest.fixture
def nested():
    inner = ng.NetChain({"l": L(3), "t": "Tanh"})
    mid = ng.NetGraph({"inner": inner, "out": L(2)}, [("inner", "out")])
    return ng.NetInitialize(ng.NetGraph({"pre": L(5), "mid": mid}, [("pre", "mid")], Input=4),
                            seed=0)


def test_extract_by_name_and_index(nested):
    assert ng.NetExtract(nested, "pre").options.size == 5
    assert type(ng.NetExtract(nested, 0)) is L  # 0-based position
    assert type(ng.NetExtract(nested, -1)) is ng.NetGraph
    assert ng.NetExtract(nested, -1).output_ports == {"Output": (2,)}
    assert ng.NetExtract(nested, 1).input_ports == ng.NetExtract(nested, "mid").input_ports


def test_extracted_layer_carries_inferred_ports_and_runs_alone(nested, rng):
    l = ng.NetExtract(nested, ("mid", "inner", "l"))
    assert l.input_ports == {"Input": (5,)} and l.output_ports == {"Output": (3,)}
    x = rng.standard_normal(5).astype(np.float32)
    close(l(x), ng.NetExtract(nested, ("mid", "inner", "l", "Weights")) @ x
          + ng.NetExtract(nested, ("mid", "inner", "l", "Biases")))


def test_extract_arrays(nested):
    w = ng.NetExtract(nested, ("mid", "inner", "l", "Weights"))
    assert isinstance(w, np.ndarray) and w.shape == (3, 5)
    np.testing.assert_array_equal(w, ng.params_of(nested)["mid"]["inner"]["l"]["Weights"])
    w[...] = 0  # a copy: the net is unchanged
    assert np.any(ng.NetExtract(nested, ("mid", "inner", "l", "Weights")) != 0)
    assert ng.NetExtract(nested, ("mid", -1, "Biases")).shape == (2,)


def test_extract_all(nested):
    layers = ng.NetExtract(nested, ng.All)
    assert list(layers) == ["pre", "mid"]
    assert layers["mid"].output_ports == {"Output": (2,)}
    arrays = ng.NetExtract(ng.NetExtract(nested, "pre"), ng.All)
    assert set(arrays) == {"Weights", "Biases"} and arrays["Weights"].shape == (5, 4)


def test_extract_option(nested):
    assert ng.NetExtract(nested, ("pre", "size")) == 5
    assert ng.NetExtract(nested, ("mid", "inner", "t", "function")) == "Tanh"


@pytest.mark.parametrize("spec", ["nope", 2, -3, ("mid", "nope"), ("pre", "Weights", "x")])
def test_extract_missing_part(nested, spec):
    with pytest.raises(ng.PartSpecError) as info:
        ng.NetExtract(nested, spec)
    assert "has no part" in str(info.value)
    assert "hint: its parts are" in str(info.value)


# -------------------------------------------------------------------- NetReplacePart
def test_replace_array(nested, rng):
    w = rng.standard_normal((5, 4)).astype(np.float32)
    new = ng.NetReplacePart(nested, {("pre", "Weights"): w})
    np.testing.assert_array_equal(ng.NetExtract(new, ("pre", "Weights")), w)
    assert not np.array_equal(ng.NetExtract(nested, ("pre", "Weights")), w)  # original kept
    x = rng.standard_normal(4).astype(np.float32)
    pre_out = ng.NetExtract(ng.NetReplacePart(new, {"mid": ng.NetChain(["Tanh"])}), "pre")(x)
    close(pre_out, w @ x + ng.NetExtract(new, ("pre", "Biases")))


def test_replace_array_of_wrong_size(nested):
    with pytest.raises(ng.ShapeMismatchError) as info:
        ng.NetReplacePart(nested, {("pre", "Weights"): np.zeros((2, 2), np.float32)})
    message = str(info.value)
    assert '"Weights"' in message and "pre" in message
    assert "(5, 4)" in message and "(2, 2)" in message


def test_replacing_a_layer_reruns_inference():
    g = ng.NetGraph({"pre": L(5), "post": L(2)}, [("pre", "post")], Input=4)
    assert ng.NetExtract(g, "post").input_ports == {"Input": (5,)}
    new = ng.NetReplacePart(g, {"pre": L(7)})
    assert ng.NetExtract(new, "post").input_ports == {"Input": (7,)}
    assert ng.NetExtract(new, "pre").input_ports == {"Input": (4,)}
    new = ng.NetReplacePart(g, {"pre": 3})  # a shortcut
    assert ng.NetExtract(new, "post").input_ports == {"Input": (3,)}


def test_replacing_a_layer_with_a_conflicting_one(nested):
    # mid/inner/l already has Weights of shape (3, 5): its input must stay 5
    with pytest.raises(ng.ShapeMismatchError, match="5") as info:
        ng.NetReplacePart(nested, {"pre": L(7)})
    assert "7" in str(info.value)


# ---------------------------------------------------------------- compile caching
def test_compiles_once_per_shape(rng):
    net = ng.NetInitialize(readme_graph(), seed=0)
    assert ng.compile_stats(net)["compilations"] == 0
    data = {"A": rng.standard_normal(4).astype(np.float32),
            "B": rng.standard_normal(5).astype(np.float32)}
    first = net(data)
    second = net(data)
    np.testing.assert_array_equal(first, second)
    assert ng.compile_stats(net) == {"compilations": 1, "calls": 2}
    net({k: np.stack([v, v]) for k, v in data.items()})  # a batch is a new shape
    assert ng.compile_stats(net)["compilations"] == 2


def test_compiles_once_with_automatic_inputs(rng):
    net = ng.NetChain(["Tanh", "Cos"])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    net(x)
    net(x + 1)
    assert ng.compile_stats(net) == {"compilations": 1, "calls": 2}


def test_varying_length_compiles_per_length():
    net = ng.NetChain(["Tanh"], Input=("Varying", 2))
    net(np.zeros((3, 2), np.float32))
    net(np.ones((3, 2), np.float32))
    assert ng.compile_stats(net)["compilations"] == 1
    net(np.zeros((4, 2), np.float32))
    assert ng.compile_stats(net)["compilations"] == 2


# -------------------------------------------------------------------- JAX transforms
@pytest.fixture
def small(rng):
    (a, wa, ba), (b, wb, bb) = lin(rng, 3, 4), lin(rng, 2, 3)
    return ng.NetChain({"a": a, "t": "Tanh", "b": b}), (wa, ba, wb, bb)


def test_jit_of_lowered(small, rng):
    net, (wa, ba, wb, bb) = small
    apply, params = ng.lower(net), ng.params_of(net)
    x = rng.standard_normal(4).astype(np.float32)
    out = jax.jit(apply)(params, {"Input": x})
    assert set(out) == {"Output"}
    close(out["Output"], wb @ np.tanh(wa @ x + ba) + bb)
    close(apply(params, x)["Output"], out["Output"])  # one array for a one-input net
    close(net(x), out["Output"])


def test_grad_of_lowered(small, rng):
    net, (wa, ba, wb, bb) = small
    apply, params = ng.lower(net), ng.params_of(net)
    x = rng.standard_normal(4).astype(np.float32)

    def loss(p, x):
        return jnp.sum(apply(p, {"Input": x})["Output"])

    grads = jax.grad(loss)(params, x)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    h = np.tanh(wa @ x + ba)
    close(grads["b"]["Biases"], np.ones(2))
    close(grads["b"]["Weights"], np.outer(np.ones(2), h))
    dh = wb.T @ np.ones(2) * (1 - h**2)
    close(grads["a"]["Biases"], dh)
    close(grads["a"]["Weights"], np.outer(dh, x))
    close(jax.grad(loss, argnums=1)(params, x), wa.T @ dh)


def test_vmap_of_lowered(small, rng):
    net, _ = small
    apply, params = ng.lower(net), ng.params_of(net)
    xs = rng.standard_normal((5, 4)).astype(np.float32)
    out = jax.vmap(apply, in_axes=(None, 0))(params, {"Input": xs})
    close(out["Output"], net(xs))
    per_example = jax.jit(jax.vmap(jax.grad(lambda p, x: apply(p, x)["Output"].sum()),
                                   in_axes=(None, 0)))(params, xs)
    assert per_example["a"]["Weights"].shape == (5, 3, 4)


def test_lowered_function_is_pure(small, rng):
    """Different params give different results from the same lowered function."""
    net, _ = small
    apply, params = ng.lower(net), ng.params_of(net)
    x = rng.standard_normal(4).astype(np.float32)
    zeroed = jax.tree_util.tree_map(jnp.zeros_like, params)
    close(apply(zeroed, x)["Output"], np.zeros(2))
    assert not np.allclose(apply(params, x)["Output"], 0)
