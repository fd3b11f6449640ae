"""NetFoldOperator, NetNestOperator and NetBidirectionalOperator against NumPy loops: any
step net folded over a sequence (lowered through the graph walker inside one lax.scan),
nesting with shared weights, forward + reversed-within-the-true-length directions, their
ports, containers (NetExtract, replace, save/load, summary), and bad inputs."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def step_net(n=3):
    """s_t = tanh(W . [x_t, s_{t-1}] + b): a basic recurrent cell as a graph."""
    return ng.NetGraph({"cat": ng.CatenateLayer(), "lin": ng.LinearLayer(n), "act": ng.ElementwiseLayer("Tanh")},
                       [([ng.NetPort("Input"), ng.NetPort("State")], "cat", "lin", "act")])


def fold_reference(x, w, b, s):
    out = []
    for xt in x:
        s = np.tanh(w @ np.concatenate([xt, s]) + b)
        out.append(s)
    return np.array(out).reshape(len(x), len(b)), s


# ------------------------------------------------------------------------ NetFoldOperator
def test_fold_against_numpy_varying_with_states(rng):
    def reference(inputs, a):
        out, s = fold_reference(inputs["Input"], a["Net", "lin", "Weights"], a["Net", "lin", "Biases"],
                                inputs["State"])
        return {"Output": out, "FinalState": s}

    data = {"Input": rng.standard_normal((4, 2)).astype(np.float32),
            "State": rng.standard_normal(3).astype(np.float32)}
    fold = ng.NetFoldOperator(step_net(), initial_state=True, return_state=True)
    check = check_layer(fold, data, reference, varying={"Input"})
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3), "FinalState": (3,)}
    assert ng.NetExtract(check.net, ("Net", "lin", "Weights")).shape == (3, 5)


def test_fold_equals_basic_recurrent_layer(rng):
    """The graph cell folded is BasicRecurrentLayer with the same weights."""
    fold = ng.NetInitialize(ng.NetFoldOperator(step_net(), return_state=True, Input=("Varying", 2)))
    w = ng.NetExtract(fold, ("Net", "lin", "Weights"))
    rnn = ng.BasicRecurrentLayer(3, return_state=True, InputWeights=w[:, :2], StateWeights=w[:, 2:],
                                 Biases=ng.NetExtract(fold, ("Net", "lin", "Biases")), Input=("Varying", 2))
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (3, 1, 6)]
    for a, b in zip(fold(seqs), rnn(seqs)):
        np.testing.assert_allclose(a["Output"], b["Output"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a["FinalState"], b["FinalState"], rtol=1e-5, atol=1e-6)


def test_fold_is_one_scan_whatever_the_length():
    """No Python loop over time: the lowered function has the same size for 3 or 30 steps,
    and its one scan runs the step graph."""
    fold = ng.NetInitialize(ng.NetFoldOperator(step_net(), Input=("Varying", 2)))
    apply, params = ng.lower(fold), ng.params_of(fold)

    def size(steps):
        jaxpr = jax.make_jaxpr(lambda x: apply(params, {"Input": x}))(jnp.zeros((steps, 2)))
        return len(jaxpr.eqns), str(jaxpr).count("scan[")

    assert size(3) == size(30)
    assert size(3)[1] == 1


def test_fold_step_is_lowered_by_the_graph_walker(monkeypatch):
    """The step graph goes through the one lowering walker, traced once for all steps."""
    import netgraph.compiler as compiler

    seen = []
    real = compiler.walk
    monkeypatch.setattr(compiler, "walk", lambda ir, *args, **kw: (seen.append(ir), real(ir, *args, **kw))[1])
    fold = ng.NetInitialize(ng.NetFoldOperator(step_net(), Input=("Varying", 2)))
    apply, params = ng.lower(fold), ng.params_of(fold)
    jax.make_jaxpr(lambda x: apply(params, {"Input": x}))(jnp.zeros((7, 2)))
    assert seen == [fold.net.ir]


def test_fold_feedback_named_and_several_outputs(rng):
    """A step net whose fed-back output is not "Output": {"NewState": "State"}; its other
    output is a sequence too."""
    step = ng.NetGraph({"lin": ng.LinearLayer(2), "plus": ng.ThreadingLayer("Plus"),
                        "sq": ng.ElementwiseLayer("Tanh")},
                       [(ng.NetPort("Input"), "lin"), (["lin", ng.NetPort("State")], "plus"),
                        ("plus", ng.NetPort("NewState")), ("plus", "sq", ng.NetPort("Output"))])
    fold = ng.NetInitialize(ng.NetFoldOperator(step, {"NewState": "State"}, return_state=True,
                                               Input=(3, 4)))
    assert fold.input_names == ("Input",)
    assert set(fold.output_names) == {"NewState", "Output", "FinalState"}
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out = fold(x)
    w, b = ng.NetExtract(fold, ("Net", "lin", "Weights")), ng.NetExtract(fold, ("Net", "lin", "Biases"))
    running = np.cumsum(x @ w.T + b, axis=0)
    np.testing.assert_allclose(out["NewState"], running, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["Output"], np.tanh(running), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["FinalState"], running[-1], rtol=1e-5, atol=1e-5)


def test_fold_training_gives_each_step_its_own_randomness():
    step = ng.NetGraph({"plus": ng.ThreadingLayer("Plus"), "drop": ng.DropoutLayer(0.5)},
                       [([ng.NetPort("Input"), ng.NetPort("State")], "plus", "drop")])
    fold = ng.NetFoldOperator(step, Input=(6, 64))
    apply = ng.lower(fold)
    x = jnp.ones((6, 64))
    evaluation = apply({}, {"Input": x})["Output"]
    np.testing.assert_allclose(evaluation[-1], 6.0)
    masks = np.asarray(apply({}, {"Input": x}, train=True, rng=jax.random.key(0))["Output"]) == 0
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])


def test_fold_reports_layer_state_from_the_last_true_step(rng):
    """A BatchNormalizationLayer in the step net: training reports its moving statistics as
    of the last true step (padding steps do not count)."""
    step = ng.NetGraph({"plus": ng.ThreadingLayer("Plus"), "bn": ng.BatchNormalizationLayer(momentum=0.0)},
                       [([ng.NetPort("Input"), ng.NetPort("State")], "plus", "bn")])
    fold = ng.NetInitialize(ng.NetFoldOperator(step, Input=("Varying", 2)))
    apply = ng.lower(fold)
    x = jnp.asarray(rng.standard_normal((5, 2)), jnp.float32)
    padded = jnp.concatenate([x[:3], 50 * jnp.ones((2, 2))])
    _, exact = apply(ng.params_of(fold), {"Input": x[:3]}, train=True, return_state=True)
    _, pad = apply(ng.params_of(fold), {"Input": padded}, lengths={"Input": 3}, train=True,
                   return_state=True)
    assert set(exact["Net"]["bn"]) == {"MovingMean", "MovingVariance"}
    np.testing.assert_allclose(pad["Net"]["bn"]["MovingMean"], exact["Net"]["bn"]["MovingMean"], rtol=1e-6)


def test_fold_container_parts(tmp_path, rng):
    fold = ng.NetInitialize(ng.NetFoldOperator(step_net(), Input=("Varying", 2)))
    assert fold.is_container and list(fold.children()) == ["Net"]
    assert "Net/lin" in fold.summary() or "lin" in fold.summary()
    w = np.zeros((3, 5), np.float32)
    replaced = ng.NetReplacePart(fold, {("Net", "lin", "Weights"): w})
    x = rng.standard_normal((4, 2)).astype(np.float32)
    b = ng.NetExtract(fold, ("Net", "lin", "Biases"))
    np.testing.assert_allclose(replaced(x), np.tile(np.tanh(b), (4, 1)), rtol=1e-6)
    ng.save(fold, tmp_path / "fold.npz")
    back = ng.load(tmp_path / "fold.npz")
    assert back.options == fold.options
    np.testing.assert_allclose(back(x), fold(x), rtol=1e-6)


def test_fold_bad_specifications():
    with pytest.raises(ng.SpecificationError, match="not a layer"):
        ng.NetFoldOperator(3)
    with pytest.raises(ng.SpecificationError, match="feedback"):
        ng.NetFoldOperator(ng.LinearLayer(3))  # no "State" input
    with pytest.raises(ng.SpecificationError, match="feedback"):
        ng.NetFoldOperator(step_net(), {"Nope": "State"})
    with pytest.raises(ng.ShapeMismatchError):  # the output (4) cannot feed the state (3)
        ng.NetFoldOperator(step_net(4), initial_state=True, State=3, Input=(5, 2)).output_ports
    with pytest.raises(ng.ShapeMismatchError, match="rank|needs a sequence"):  # not a sequence
        ng.NetFoldOperator(step_net(), Input=()).output_ports
    fold = ng.NetInitialize(ng.NetFoldOperator(step_net(), Input=("Varying", 2)))
    with pytest.raises(ng.InputDataError):
        fold(np.zeros((3, 4), np.float32))


# ------------------------------------------------------------------------ NetNestOperator
def test_nest_against_numpy(rng):
    def reference(inputs, a):
        s = inputs["Input"]
        for _ in range(4):
            s = np.tanh(a["Net", "0", "Weights"] @ s + a["Net", "0", "Biases"])
        return s

    nest = ng.NetNestOperator(ng.NetChain([ng.LinearLayer(3), "Tanh"]), 4)
    check = check_layer(nest, {"Input": rng.standard_normal(3).astype(np.float32)}, reference)
    assert check.net.output_ports == {"Output": (3,)}
    assert ng.NetExtract(check.net, ("Net", "0", "Weights")).shape == (3, 3)


def test_nest_compiles_once_for_any_n():
    def size(n):
        nest = ng.NetInitialize(ng.NetNestOperator(ng.NetChain([ng.LinearLayer(3), "Tanh"]), n, Input=3))
        apply, params = ng.lower(nest), ng.params_of(nest)
        return len(jax.make_jaxpr(lambda x: apply(params, {"Input": x}))(jnp.zeros(3)).eqns)

    assert size(2) == size(50)


def test_nest_over_a_varying_sequence(rng):
    nest = ng.NetInitialize(ng.NetNestOperator(ng.NetMapOperator(ng.LinearLayer(2)), 3,
                                               Input=("Varying", 2)))
    assert nest.output_ports == {"Output": ("Varying", 2)}
    x = rng.standard_normal((5, 2)).astype(np.float32)
    w, b = ng.NetExtract(nest, ("Net", "Net", "Weights")), ng.NetExtract(nest, ("Net", "Net", "Biases"))
    expected = x
    for _ in range(3):
        expected = expected @ w.T + b
    np.testing.assert_allclose(nest(x), expected, rtol=1e-5, atol=1e-5)


def test_nest_bad_specifications(tmp_path):
    with pytest.raises(ng.SpecificationError, match="n"):
        ng.NetNestOperator(ng.LinearLayer(3), 0)
    with pytest.raises(ng.SpecificationError, match="exactly one input"):
        ng.NetNestOperator(ng.ThreadingLayer("Plus"), 2)
    with pytest.raises(ng.ShapeMismatchError):
        ng.NetNestOperator(ng.LinearLayer(3), 2, Input=4).output_ports
    nest = ng.NetInitialize(ng.NetNestOperator(ng.LinearLayer(3), 2, Input=3))
    ng.save(nest, tmp_path / "nest.npz")
    x = np.ones(3, np.float32)
    np.testing.assert_allclose(ng.load(tmp_path / "nest.npz")(x), nest(x), rtol=1e-6)


# --------------------------------------------------------------- NetBidirectionalOperator
def _rnn(a, prefix, x):
    s, out = np.zeros(len(a[prefix, "Biases"])), []
    for xt in x:
        s = np.tanh(a[prefix, "InputWeights"] @ xt + a[prefix, "StateWeights"] @ s + a[prefix, "Biases"])
        out.append(s)
    return np.array(out).reshape(len(x), -1), s


def _bidirectional_reference(combiner):
    def reference(inputs, a):
        x = inputs["Input"]
        forward, fs = _rnn(a, "ForwardNet", x)
        backward, bs = _rnn(a, "BackwardNet", x[::-1])
        backward = backward[::-1]
        out = np.concatenate([forward, backward], -1) if combiner == "Catenate" else (
            forward + backward) / (2 if combiner == "Mean" else 1)
        return {"Output": out, "ForwardFinalState": fs, "BackwardFinalState": bs}

    return reference


def test_bidirectional_against_numpy_varying(rng):
    layer = ng.NetBidirectionalOperator(ng.BasicRecurrentLayer(2, return_state=True))
    check = check_layer(layer, {"Input": rng.standard_normal((4, 3)).astype(np.float32)},
                        _bidirectional_reference("Catenate"), varying=True)
    assert check.variants["varying"].output_ports["Output"] == ("Varying", 4)
    # independent copies: the two directions got different initial weights
    assert not np.allclose(ng.NetExtract(check.net, ("ForwardNet", "InputWeights")),
                           ng.NetExtract(check.net, ("BackwardNet", "InputWeights")))


@pytest.mark.parametrize("combiner", ["Total", "Mean"])
def test_bidirectional_combiners(combiner, rng):
    net = ng.NetInitialize(ng.NetBidirectionalOperator(ng.BasicRecurrentLayer(2, return_state=True),
                                                       combiner, Input=("Varying", 3)))
    assert net.output_ports["Output"] == ("Varying", 2)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    arrays = {("ForwardNet", n): ng.NetExtract(net, ("ForwardNet", n)).astype(np.float64)
              for n in net.forward_net.arrays}
    arrays.update({("BackwardNet", n): ng.NetExtract(net, ("BackwardNet", n)).astype(np.float64)
                   for n in net.backward_net.arrays})
    expected = _bidirectional_reference(combiner)({"Input": x.astype(np.float64)}, arrays)
    for port, value in net(x).items():
        np.testing.assert_allclose(value, expected[port], rtol=1e-5, atol=1e-6)


def test_bidirectional_reverses_within_the_true_length(rng):
    """A running sum as the backward net shows the reversal: reversed within the true
    length, summed, reversed back, it gives the suffix sums of the real elements (padding
    stays at the end and never enters)."""
    running_sum = ng.NetFoldOperator(ng.NetGraph({"plus": ng.ThreadingLayer("Plus")},
                                                 [([ng.NetPort("Input"), ng.NetPort("State")], "plus")]))
    net = ng.NetBidirectionalOperator((ng.NetMapOperator(ng.ElementwiseLayer("Tanh")), running_sum),
                                      Input=("Varying", 2))
    x = rng.standard_normal((3, 2)).astype(np.float32)
    suffix = np.cumsum(x[::-1], axis=0)[::-1]
    np.testing.assert_allclose(net(x), np.concatenate([np.tanh(x), suffix], -1), rtol=1e-5, atol=1e-6)
    padded = np.concatenate([x, 9 * np.ones((4, 2), np.float32)])
    out = np.asarray(ng.lower(net)({}, {"Input": padded}, lengths={"Input": 3})["Output"])
    np.testing.assert_allclose(out[:3, 2:], suffix, rtol=1e-5, atol=1e-6)
    seqs = [x, rng.standard_normal((6, 2)).astype(np.float32)]
    for seq, got in zip(seqs, net(seqs)):
        np.testing.assert_allclose(got, net(seq), rtol=1e-5, atol=1e-6)


def test_bidirectional_pair_and_prefixed_state_ports(rng, tmp_path):
    layer = ng.NetBidirectionalOperator(
        [ng.LongShortTermMemoryLayer(2, initial_state=True), ng.GatedRecurrentLayer(3)],
        Input=("Varying", 2))
    assert layer.input_names == ("Input", "ForwardState", "ForwardCellState")
    assert layer.output_ports == {"Output": ("Varying", 5)}
    net = ng.NetInitialize(layer)
    data = {"Input": rng.standard_normal((3, 2)).astype(np.float32),
            "ForwardState": np.ones(2, np.float32), "ForwardCellState": np.zeros(2, np.float32)}
    ng.save(net, tmp_path / "bi.npz")
    np.testing.assert_allclose(ng.load(tmp_path / "bi.npz")(data), net(data), rtol=1e-6)
    assert list(ng.NetExtract(net, "BackwardNet").arrays)[0] == "InputGateInputWeights"


def test_bidirectional_bad_specifications():
    with pytest.raises(ng.SpecificationError, match="pair"):
        ng.NetBidirectionalOperator([ng.BasicRecurrentLayer(2)] * 3)
    with pytest.raises(ng.SpecificationError, match="combiner"):
        ng.NetBidirectionalOperator(ng.BasicRecurrentLayer(2), "Max")
    with pytest.raises(ng.SpecificationError, match='"Input"'):
        ng.NetBidirectionalOperator(ng.ThreadingLayer("Plus"))
    with pytest.raises(ng.ShapeMismatchError, match="sequence"):
        ng.NetBidirectionalOperator(ng.NetMapOperator(ng.LinearLayer([])), Input=(4, 2)).output_ports
