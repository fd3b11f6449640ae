"""Loss layers: shapes, NumPy references, and the varying-length rule (padding never counts).

* each layer through ``check_layer`` (shapes three ways, reference, batch, jit, vmap, and
  padded-with-junk inputs given the true lengths) against an independent NumPy reference;
* threaded evaluation of ragged lists (sorted, bucketed, padded) equals each example alone;
* the Index form's Target type (integers in [0, c)), inference in both directions, errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer

EPS = 1e-7


def clip(p):
    return np.clip(p, EPS, 1 - EPS)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_mse(i, a):
    return np.mean((i["Input"] - i["Target"]) ** 2)


def ref_mae(i, a):
    return np.mean(np.abs(i["Input"] - i["Target"]))


def ref_ce_index(i, a):
    p, t = i["Input"], i["Target"]
    picked = np.take_along_axis(p, t[..., None], axis=-1)[..., 0]
    return np.mean(-np.log(clip(picked)))


def ref_ce_probabilities(i, a):
    return np.mean(-np.sum(i["Target"] * np.log(clip(i["Input"])), axis=-1))


def ref_ce_binary(i, a):
    p, t = clip(i["Input"]), i["Target"]
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))


def probs(rng, *shape):
    return softmax(rng.standard_normal(shape)).astype(np.float32)


def unit(rng, *shape):
    return rng.uniform(0.05, 0.95, shape).astype(np.float32)


CASES = {
    "mse": (ng.MeanSquaredLossLayer, lambda r: {"Input": r.standard_normal((4, 3)),
                                                "Target": r.standard_normal((4, 3))}, ref_mse),
    "mae": (ng.MeanAbsoluteLossLayer, lambda r: {"Input": r.standard_normal((5, 2)),
                                                 "Target": r.standard_normal((5, 2))}, ref_mae),
    "ce-index": (lambda: ng.CrossEntropyLossLayer("Index"),
                 lambda r: {"Input": probs(r, 5, 4), "Target": r.integers(0, 4, 5)}, ref_ce_index),
    "ce-probabilities": (lambda: ng.CrossEntropyLossLayer("Probabilities"),
                         lambda r: {"Input": probs(r, 4, 3), "Target": probs(r, 4, 3)},
                         ref_ce_probabilities),
    "ce-binary": (lambda: ng.CrossEntropyLossLayer("Binary"),
                  lambda r: {"Input": unit(r, 6), "Target": unit(r, 6)}, ref_ce_binary),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_fixed_and_varying(name, rng):
    make, inputs, reference = CASES[name]
    check = check_layer(make(), inputs(rng), reference, varying=True, atol=1e-5)
    assert check.net.output_ports == {"Loss": ()}
    assert check.variants["varying"].input_ports["Input"][0] == "Varying"


@pytest.mark.parametrize("make, reference", [
    (ng.MeanSquaredLossLayer, ref_mse), (ng.MeanAbsoluteLossLayer, ref_mae)])
def test_scalar_and_higher_rank(make, reference, rng):
    check_layer(make(), {"Input": np.float32(0.3), "Target": np.float32(-1.2)}, reference)
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    check_layer(make(), {"Input": x, "Target": x[::-1].copy()}, reference)


def test_index_over_a_sequence_of_class_vectors(rng):
    p = probs(rng, 3, 4, 5)
    t = rng.integers(0, 5, (3, 4))
    check_layer(ng.CrossEntropyLossLayer("Index"), {"Input": p, "Target": t}, ref_ce_index,
                varying=True)


# ------------------------------------------------ ragged lists: padded == exact, per example
@pytest.mark.parametrize("name", sorted(CASES))
def test_ragged_lists_average_over_true_lengths(name, rng):
    make, inputs, reference = CASES[name]
    sample = inputs(rng)
    layer = make().evolve(port_specs={"Input": ("Varying", *np.shape(sample["Input"])[1:])})
    lengths = [0, 1, 2, 3, 5, 8, 13]
    examples = []
    for n in lengths:
        full = inputs(np.random.default_rng(n))
        examples.append({k: np.asarray(v)[:n] if np.ndim(v) else v for k, v in full.items()})
    data = {k: [e[k] if np.asarray(e[k]).dtype.kind in "iu" else np.asarray(e[k], np.float32)
                for e in examples] for k in ("Input", "Target")}
    threaded = layer(data, batch_size=4)
    for n, example, value in zip(lengths, examples, threaded):
        expected = 0.0 if n == 0 else reference(
            {k: np.asarray(v, np.float64) if np.asarray(v).dtype.kind == "f" else v
             for k, v in example.items()}, None)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}, length {n}")
        if n:
            alone = layer({k: example[k] for k in ("Input", "Target")})
            np.testing.assert_allclose(value, alone, rtol=1e-6, atol=1e-7)


def test_padding_is_never_averaged_in_a_batch(rng):
    """The same sequence alone and padded beside a long one gives the same loss."""
    layer = ng.MeanSquaredLossLayer(Input=("Varying", 2))
    short = rng.standard_normal((2, 2)).astype(np.float32)
    long = rng.standard_normal((40, 2)).astype(np.float32)
    out = layer({"Input": [short, long], "Target": [np.zeros_like(short), np.zeros_like(long)]})
    np.testing.assert_allclose(out[0], np.mean(short.astype(np.float64) ** 2), rtol=1e-6)


# --------------------------------------------------------------------- types and errors
def test_index_target_type_is_inferred_both_ways():
    layer = ng.CrossEntropyLossLayer("Index", Input=("Varying", 7))
    assert layer.input_ports == {"Input": ("Varying", 7),
                                 "Target": ("Varying", ng.Restricted("Integer", 7))}
    backwards = ng.CrossEntropyLossLayer("Index", Target=(3, ng.Restricted("Integer", 4)))
    assert backwards.input_ports["Input"] == (3, 4)


def test_index_target_out_of_range_names_the_port():
    layer = ng.CrossEntropyLossLayer("Index", Input=3)
    with pytest.raises(ng.InputDataError, match='"Target"'):
        layer({"Input": np.full(3, 1 / 3, np.float32), "Target": np.int32(3)})


def test_index_needs_a_class_axis():
    with pytest.raises(ng.ShapeMismatchError, match="class probabilities"):
        ng.CrossEntropyLossLayer("Index", Input=())


def test_mismatched_target_shape():
    with pytest.raises(ng.ShapeMismatchError):
        ng.MeanSquaredLossLayer(Input=3, Target=4)


def test_unknown_target_form():
    with pytest.raises(ng.SpecificationError, match="target_form"):
        ng.CrossEntropyLossLayer("Logits")


def test_zero_probability_is_finite():
    layer = ng.CrossEntropyLossLayer("Index", Input=3)
    value = layer({"Input": np.array([1.0, 0.0, 0.0], np.float32), "Target": np.int32(1)})
    assert np.isfinite(value) and value == pytest.approx(-np.log(EPS), rel=1e-4)


def test_ports_and_describe():
    layer = ng.CrossEntropyLossLayer("Binary")
    assert layer.input_names == ("Input", "Target") and layer.output_names == ("Loss",)
    assert layer.describe() == 'CrossEntropyLossLayer["Binary"]'
    assert ng.from_config(ng.to_config(layer)).options.target_form == "Binary"
