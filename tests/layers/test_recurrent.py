"""BasicRecurrentLayer, GatedRecurrentLayer and LongShortTermMemoryLayer against NumPy loops
of Wolfram's formulas: fixed, Automatic and varying lengths (padding never changes a result),
initial and final state ports, steps past the true length, dropout, save/load, bad inputs,
and the LSTM classifier example."""
from __future__ import annotations

import pathlib
import runpy

import jax
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer

GATES = {
    ng.BasicRecurrentLayer: ("",),
    ng.GatedRecurrentLayer: ("InputGate", "ResetGate", "MemoryGate"),
    ng.LongShortTermMemoryLayer: ("InputGate", "OutputGate", "ForgetGate", "MemoryGate"),
}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_run(cls, x, a, state=None, cell=None):
    """Wolfram's recurrence in a plain loop: (outputs L x n, final state, final cell)."""
    n = a["StateWeights" if cls is ng.BasicRecurrentLayer else "InputGateStateWeights"].shape[0]
    s = np.zeros(n) if state is None else state
    c = np.zeros(n) if cell is None else cell

    def gate(name, s):
        return a[f"{name}InputWeights"] @ xt + a[f"{name}StateWeights"] @ s + a[f"{name}Biases"]

    out = []
    for xt in x:
        if cls is ng.BasicRecurrentLayer:
            s = np.tanh(gate("", s))
        elif cls is ng.GatedRecurrentLayer:
            i, r = sigmoid(gate("InputGate", s)), sigmoid(gate("ResetGate", s))
            m = np.tanh(a["MemoryGateInputWeights"] @ xt + r * (a["MemoryGateStateWeights"] @ s)
                        + a["MemoryGateBiases"])
            s = (1 - i) * m + i * s
        else:
            i, o, f = (sigmoid(gate(g, s)) for g in ("InputGate", "OutputGate", "ForgetGate"))
            c = f * c + i * np.tanh(gate("MemoryGate", s))
            s = o * np.tanh(c)
        out.append(s)
    return np.array(out).reshape(len(x), n), s, c


def _reference(cls, return_state=False, initial_state=False):
    def reference(inputs, a):
        state = inputs.get("State") if initial_state else None
        cell = inputs.get("CellState") if initial_state else None
        out, s, c = reference_run(cls, inputs["Input"], a, state, cell)
        result = {"Output": out}
        if return_state:
            result["FinalState"] = s
            if cls is ng.LongShortTermMemoryLayer:
                result["FinalCellState"] = c
        return result

    return reference


@pytest.mark.parametrize("cls", list(GATES))
def test_against_numpy_with_state_ports_varying(cls, rng):
    """Initial states in, final states out: the final state is taken at the true last step
    (the harness pads with junk that must not move it). Input size 3, state size 2."""
    data = {"Input": rng.standard_normal((3, 3)).astype(np.float32),
            "State": rng.standard_normal(2).astype(np.float32)}
    if cls is ng.LongShortTermMemoryLayer:
        data["CellState"] = rng.standard_normal(2).astype(np.float32)
    layer = cls(2, initial_state=True, return_state=True)
    check = check_layer(layer, data, _reference(cls, True, True), varying={"Input"})
    assert check.variants["varying"].output_ports["Output"] == ("Varying", 2)
    for gate in GATES[cls]:
        assert ng.NetExtract(check.net, f"{gate}InputWeights").shape == (2, 3)
        assert ng.NetExtract(check.net, f"{gate}StateWeights").shape == (2, 2)
        assert ng.NetExtract(check.net, f"{gate}Biases").shape == (2,)
    assert set(check.net.output_names) == ({"Output", "FinalState", "FinalCellState"}
                                           if cls is ng.LongShortTermMemoryLayer else {"Output", "FinalState"})


@pytest.mark.parametrize("cls", list(GATES))
def test_padded_batch_final_state_is_at_each_true_length(cls, rng):
    net = ng.NetInitialize(cls(3, return_state=True, Input=("Varying", 2)), seed=1)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (1, 5, 3)]
    results = net(seqs)
    a = {name: ng.NetExtract(net, name).astype(np.float64) for name in net.arrays}
    for seq, got in zip(seqs, results):
        out, s, _ = reference_run(cls, seq.astype(np.float64), a)
        np.testing.assert_allclose(got["Output"], out, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["FinalState"], s, rtol=1e-5, atol=1e-5)
    # the lowered function on a padded example: steps past the length change nothing
    apply = ng.lower(net)
    padded = np.concatenate([seqs[0], 9 * np.ones((4, 2), np.float32)])
    outputs = apply(ng.params_of(net), {"Input": padded}, lengths={"Input": 1})
    np.testing.assert_allclose(outputs["FinalState"], results[0]["FinalState"], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(outputs["Output"])[1:], 0.0)


def test_empty_sequence_keeps_the_initial_state(rng):
    s0 = rng.standard_normal(3).astype(np.float32)
    net = ng.NetInitialize(ng.BasicRecurrentLayer(3, initial_state=True, return_state=True,
                                                  Input=("Varying", 2)))
    out = net({"Input": np.zeros((0, 2), np.float32), "State": s0})
    assert out["Output"].shape == (0, 3)
    np.testing.assert_allclose(out["FinalState"], s0)


def test_size_inferred_from_arrays_and_input_size_from_weights():
    w = np.zeros((4, 3), np.float32)
    layer = ng.BasicRecurrentLayer(InputWeights=w, Input=(5, ng.Automatic))
    assert layer.output_ports == {"Output": (5, 4)}
    assert layer.input_ports == {"Input": (5, 3)}


def test_dropout_in_training_only(rng):
    net = ng.NetInitialize(ng.LongShortTermMemoryLayer(3, dropout=0.5, Input=(4, 6)))
    x = rng.standard_normal((4, 6)).astype(np.float32)
    apply, params = ng.lower(net), ng.params_of(net)
    plain = ng.NetInitialize(ng.LongShortTermMemoryLayer(3, Input=(4, 6)))
    np.testing.assert_allclose(net(x), plain(x), rtol=1e-6)
    a = apply(params, {"Input": x}, train=True, rng=jax.random.key(0))
    b = apply(params, {"Input": x}, train=True, rng=jax.random.key(1))
    assert not np.allclose(a["Output"], b["Output"])


def test_save_load_round_trip(tmp_path, rng):
    net = ng.NetInitialize(ng.GatedRecurrentLayer(3, return_state=True, Input=("Varying", 2)))
    ng.save(net, tmp_path / "gru.npz")
    back = ng.load(tmp_path / "gru.npz")
    x = rng.standard_normal((4, 2)).astype(np.float32)
    assert back.options == net.options
    np.testing.assert_allclose(back(x)["FinalState"], net(x)["FinalState"])


def test_in_a_chain_with_sequence_last(rng):
    chain = ng.NetInitialize(ng.NetChain([ng.LongShortTermMemoryLayer(4), ng.SequenceLastLayer(),
                                          ng.LinearLayer(2)], Input=("Varying", 3)))
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (2, 6)]
    out = chain(seqs)
    assert np.asarray(out).shape == (2, 2)
    np.testing.assert_allclose(out[0], chain(seqs[0]), rtol=1e-5, atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ng.SpecificationError, match="size"):
        ng.BasicRecurrentLayer(-1)
    with pytest.raises(ng.SpecificationError, match="dropout"):
        ng.GatedRecurrentLayer(3, dropout=1.0)
    with pytest.raises(ng.ShapeMismatchError):
        ng.LongShortTermMemoryLayer(3, Input=(4,)).output_ports  # not a sequence of vectors
    with pytest.raises(ng.ShapeMismatchError):
        ng.BasicRecurrentLayer(3, InputWeights=np.zeros((4, 2), np.float32)).output_ports
    with pytest.raises(ng.ShapeMismatchError):
        ng.BasicRecurrentLayer(3, initial_state=True, State=4).input_ports
    with pytest.raises(ng.SpecificationError, match="State"):
        ng.BasicRecurrentLayer(3, State=3)  # no such port without initial_state=True
    net = ng.NetInitialize(ng.BasicRecurrentLayer(3, Input=(4, 2)))
    with pytest.raises(ng.InputDataError):
        net(np.zeros((4, 5), np.float32))


def test_lstm_classifier_example_learns():
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "lstm_classifier.py"
    found = runpy.run_path(str(path), run_name="lstm_classifier")
    assert found["accuracy"] > 0.8
