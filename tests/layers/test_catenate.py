"""CatenateLayer: joining arrays along a level, fixed and varying."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer
from netgraph.shapes import Varying


def _inputs(rng, shapes):
    return {f"Input{k + 1}": rng.standard_normal(s).astype(np.float32) for k, s in enumerate(shapes)}


def _cat(level, count):
    return lambda i, a: np.concatenate([i[f"Input{k + 1}"] for k in range(count)], axis=level)


@pytest.mark.parametrize(
    "level, shapes, out",
    [
        (0, [(2, 3), (4, 3)], (6, 3)),
        (1, [(2, 3), (2, 1)], (2, 4)),
        (-1, [(2, 3, 1), (2, 3, 2)], (2, 3, 3)),
        (-2, [(2, 1, 2), (2, 3, 2)], (2, 4, 2)),
        (0, [(3,), (2,)], (5,)),
    ],
)
def test_levels(level, shapes, out, rng):
    check = check_layer(ng.CatenateLayer(level), _inputs(rng, shapes), _cat(level, len(shapes)))
    assert check.net.output_ports == {"Output": out}


def test_three_inputs(rng):
    layer = ng.CatenateLayer(1, inputs=3)
    check = check_layer(layer, _inputs(rng, [(2, 1), (2, 2), (2, 3)]), _cat(1, 3))
    assert check.net.output_ports == {"Output": (2, 6)}


def test_default_level_is_zero():
    assert ng.CatenateLayer(Input1=(2, 3), Input2=(1, 3)).output_ports == {"Output": (3, 3)}


def test_infers_unknown_part_from_output():
    layer = ng.CatenateLayer(Input1=(2, 3), Output=(5, 3))
    assert layer.input_ports == {"Input1": (2, 3), "Input2": (3, 3)}


# ---------------------------------------------------------------------- varying
def _padded_result(var, data, lengths_of):
    """ng.lower(var) on inputs padded with junk, given the true lengths per port."""
    lengths, padded = {}, {}
    for name, value in data.items():
        dim = var.inference.port((), name).dims[0]
        if isinstance(dim, Varying):
            lengths[dim.symbol] = jnp.asarray(lengths_of[name], jnp.int32)
            junk = np.full((2, *value.shape[1:]), 7.0, np.float32)
            value = np.concatenate([value, junk])
        padded[name] = jnp.asarray(value)
    return np.asarray(ng.lower(var)(ng.params_of(var), padded, lengths=lengths)["Output"])


def test_varying_level_all_parts(rng):
    """Both parts vary along the joined level: a new varying length, the sum of both."""
    data = _inputs(rng, [(3, 2), (2, 2)])
    check = check_layer(ng.CatenateLayer(0), data, _cat(0, 2), varying=True)
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 2)}
    out_dim = var.inference.port((), "Output").dims[0]
    in_dims = [var.inference.port((), n).dims[0] for n in ("Input1", "Input2")]
    assert isinstance(out_dim, Varying) and out_dim.symbol not in {d.symbol for d in in_dims}
    # padded parts with their true lengths are joined without the padding in between
    got = _padded_result(var, data, {"Input1": 3, "Input2": 2})
    np.testing.assert_allclose(got[:5], np.concatenate([data["Input1"], data["Input2"]]),
                               atol=1e-6)


def test_varying_part_and_fixed_part(rng):
    data = _inputs(rng, [(3, 2), (2, 2)])
    check = check_layer(ng.CatenateLayer(0), data, _cat(0, 2), varying={"Input1"})
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 2)}
    got = _padded_result(var, data, {"Input1": 3})
    np.testing.assert_allclose(got[:5], np.concatenate([data["Input1"], data["Input2"]]),
                               atol=1e-6)


def test_varying_three_parts(rng):
    """Three varying parts: threaded per example, and padded with their true lengths."""
    layer = ng.CatenateLayer(0, inputs=3, Input1=("Varying", 2), Input2=("Varying", 2),
                             Input3=("Varying", 2))
    assert layer.output_ports == {"Output": ("Varying", 2)}
    data = _inputs(rng, [(2, 2), (1, 2), (3, 2)])
    np.testing.assert_allclose(layer(data), np.concatenate(list(data.values())), atol=1e-6)
    got = _padded_result(layer, data, {"Input1": 2, "Input2": 1, "Input3": 3})
    np.testing.assert_allclose(got[:6], np.concatenate(list(data.values())), atol=1e-6)


@pytest.mark.parametrize("level", [1, -1])
def test_varying_other_level(level, rng):
    """Joining along a fixed level while the first dimension varies (same length for all)."""
    data = _inputs(rng, [(4, 1), (4, 2)])
    check = check_layer(ng.CatenateLayer(level), data, _cat(level, 2), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 3)}


def test_varying_per_example_lengths(rng):
    """Threaded evaluation: each example's result equals the exact-length result."""
    layer = ng.CatenateLayer(0, Input1=("Varying", 2), Input2=(1, 2))
    for length in (1, 3, 5):
        a = rng.standard_normal((length, 2)).astype(np.float32)
        b = rng.standard_normal((1, 2)).astype(np.float32)
        np.testing.assert_allclose(layer({"Input1": a, "Input2": b}), np.concatenate([a, b]),
                                   atol=1e-6)


# ------------------------------------------------------------------------ errors
def test_off_level_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.CatenateLayer(1, Input1=(2, 3), Input2=(3, 3)).output_ports


def test_level_out_of_range():
    with pytest.raises(ng.ShapeMismatchError, match="level 2"):
        ng.CatenateLayer(2, Input1=(2, 3), Input2=(2, 3)).output_ports


def test_rank_mismatch():
    """A lower-rank input must match the trailing off-level dims of the others."""
    with pytest.raises(ng.ShapeMismatchError):
        ng.CatenateLayer(0, Input1=(2, 3, 4), Input2=(5, 3)).output_ports


# ------------------------------------------------- lower-rank inputs (Wolfram's rule)
def _replicated(level, shapes):
    """NumPy: lower-rank inputs broadcast along the leading dims they lack, the level
    counted from the first dim of the lowest-rank input."""
    def reference(i, a):
        xs = [i[f"Input{k + 1}"] for k in range(len(shapes))]
        top, low = max(x.ndim for x in xs), min(x.ndim for x in xs)
        axis = (level % low) + top - low
        lead = next(x for x in xs if x.ndim == top).shape
        xs = [np.broadcast_to(x, lead[:top - x.ndim] + x.shape) for x in xs]
        return np.concatenate(xs, axis=axis)

    return reference


@pytest.mark.parametrize("level, shapes, out", [
    (0, [(4, 2), (3,)], (4, 5)),            # a vector appended to every row
    (0, [(3,), (4, 2)], (4, 5)),            # order kept: the vector first
    (-1, [(2, 3, 2), (3, 4)], (2, 3, 6)),
    (0, [(2, 3, 2), (1, 2)], (2, 4, 2)),    # level 0 of the matrix is level 1 of the output
    (1, [(2, 3, 2), (3, 1), (5, 3, 4)], None),
], ids=repr)
def test_lower_rank_inputs_are_replicated(level, shapes, out, rng):
    layer = ng.CatenateLayer(level, inputs=len(shapes))
    data = _inputs(rng, shapes)
    if out is None:
        with pytest.raises(ng.ShapeMismatchError):
            layer.evolve(port_specs={n: v.shape for n, v in data.items()}).output_ports
        return
    check = check_layer(layer, data, _replicated(level, shapes))
    assert check.net.output_ports == {"Output": out}


def test_lower_rank_input_with_a_varying_sequence(rng):
    """A sequence of vectors and one vector: the vector joins every element; padding never
    changes a result."""
    data = _inputs(rng, [(4, 2), (3,)])
    check = check_layer(ng.CatenateLayer(0), data, _replicated(0, [(4, 2), (3,)]),
                        varying={"Input1"})
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 5)}
    assert var.port_types()["Output"].dims[0] == var.port_types()["Input1"].dims[0]


def test_unknown_rank_takes_the_highest():
    layer = ng.CatenateLayer(-1, Input1=(3, 2))
    assert layer.input_ports == {"Input1": (3, 2), "Input2": (3, ng.Automatic)}
    assert ng.CatenateLayer(0, Input2=(3,), Output=(4, 5)).input_ports == {
        "Input1": (4, 2), "Input2": (3,)}


def test_level_beyond_the_lowest_rank():
    with pytest.raises(ng.ShapeMismatchError, match="level 1"):
        ng.CatenateLayer(1, Input1=(2, 3), Input2=(3,)).output_ports


def test_output_too_short():
    with pytest.raises(ng.ShapeMismatchError):
        ng.CatenateLayer(0, Input1=(2, 3), Input2=(2, 3), Output=(3, 3)).output_ports


def test_element_types_must_agree():
    with pytest.raises(ng.ElementTypeError):
        ng.CatenateLayer(Input1=(2, "Integer"), Input2=(2, "Real")).output_ports


def test_integer_parts(rng):
    layer = ng.CatenateLayer(Input1=(2, "Integer"), Input2=(3, "Integer"))
    data = {"Input1": rng.integers(0, 9, 2), "Input2": rng.integers(0, 9, 3)}
    check = check_layer(layer, data, _cat(0, 2))
    assert np.issubdtype(check.outputs["Output"].dtype, np.integer)


def test_integer_parts_with_automatic_sizes():
    """Sizes left Automatic are fitted to the data; the declared element type must survive."""
    layer = ng.CatenateLayer(Input1=(ng.Automatic, "Integer"), Input2=(ng.Automatic, "Integer"))
    out = layer({"Input1": np.array([1, 2]), "Input2": np.array([3])})
    np.testing.assert_array_equal(out, [1, 2, 3])
