"""AggregationLayer and SummationLayer: reductions over levels, fixed and varying."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng
from harness import check_layer


def _reduce(function, x, axes):
    """NumPy reduction of ``x`` over ``axes`` (a tuple of non-negative ints)."""
    if function == "Mean":
        return x.sum(axis=axes) / int(np.prod([x.shape[a] for a in axes]))
    if function in SPREADS:
        kept = [a for a in range(x.ndim) if a not in axes]
        rows = np.transpose(x, kept + list(axes)).reshape([x.shape[a] for a in kept] + [-1])
        return np.apply_along_axis(SPREADS[function], -1, rows)
    return {"Total": np.sum, "Max": np.max, "Min": np.min, "Times": np.prod}[function](x, axis=axes)


def _axes(levels, rank):
    if levels is ng.All:
        return tuple(range(rank))
    if isinstance(levels, slice):
        return tuple(range(rank))[levels]
    chosen = (levels,) if isinstance(levels, int) else levels
    return tuple(sorted({lv % rank for lv in chosen}))


def _mean_deviation(v):
    return np.mean(np.abs(v - np.mean(v)))


def _unbiased(v, root=False):
    """Wolfram's Variance (unbiased, n - 1); 0 for a single element."""
    var = np.var(v, ddof=1) if v.size > 1 else 0.0
    return np.sqrt(var) if root else var


def _iqr(v):
    """Wolfram's InterquartileRange: quantile parameters {{1/2, 0}, {0, 1}} (NumPy's hazen)."""
    return np.quantile(v, 0.75, method="hazen") - np.quantile(v, 0.25, method="hazen")


SPREADS = {"Median": np.median, "Variance": _unbiased,
           "StandardDeviation": lambda v: _unbiased(v, root=True), "MeanDeviation": _mean_deviation,
           "InterquartileRange": _iqr}
FUNCTIONS = ["Mean", "Total", "Max", "Min", "Times"]
LEVELS = [1, -1, (2, 0), ng.All, slice(1, None), slice(None, -1)]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("levels", LEVELS, ids=repr)
def test_levels(function, levels, rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    kept = tuple(n for k, n in enumerate(x.shape) if k not in _axes(levels, 3))
    layer = ng.AggregationLayer(function, levels)
    # inference alone (cheap) for every combination
    assert layer.evolve(port_specs={"Input": x.shape}).output_ports == {"Output": kept}
    net = ng.NetInitialize(layer.evolve(port_specs={"Input": x.shape}), seed=0)
    np.testing.assert_allclose(net(x), _reduce(function, x.astype(np.float64), _axes(levels, 3)),
                               atol=1e-5, rtol=1e-5)


# full check_layer (batch, jit, vmap, Automatic) on a representative subset
@pytest.mark.parametrize(
    "function, levels",
    [("Mean", 1), ("Total", (0, 2)), ("Max", ng.All), ("Min", slice(1, None)), ("Times", -1)],
    ids=repr,
)
def test_check_layer(function, levels, rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    check_layer(ng.AggregationLayer(function, levels), {"Input": x},
                lambda i, a: _reduce(function, i["Input"], _axes(levels, 3)))


def test_default_levels_keep_first_dimension(rng):
    x = rng.standard_normal((3, 2, 2)).astype(np.float32)
    check = check_layer(ng.AggregationLayer("Mean"), {"Input": x},
                        lambda i, a: i["Input"].mean(axis=(1, 2)))
    assert check.net.output_ports == {"Output": (3,)}


@pytest.mark.parametrize("function", [*FUNCTIONS, "Median", "Variance"])
def test_varying_reduced_level(function, rng):
    """Reducing the varying level: the harness pads with junk (7.0) that must be ignored."""
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.AggregationLayer(function, 0), {"Input": x},
                        lambda i, a: _reduce(function, i["Input"], (0,)), varying=True)
    assert check.variants["varying"].output_ports == {"Output": (3,)}


def test_varying_all_levels(rng):
    levels = ng.All
    x = rng.standard_normal((4, 2)).astype(np.float32)
    check_layer(ng.AggregationLayer("Max", levels), {"Input": x},
                lambda i, a: i["Input"].max(), varying=True)


def test_varying_kept_level(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    check = check_layer(ng.AggregationLayer("Mean", 1), {"Input": x},
                        lambda i, a: i["Input"].mean(axis=1), varying=True)
    assert check.variants["varying"].output_ports == {"Output": ("Varying",)}


def test_varying_per_example_lengths(rng):
    layer = ng.AggregationLayer("Mean", 0, Input=("Varying", 2))
    for length in (1, 2, 5):
        x = rng.standard_normal((length, 2)).astype(np.float32)
        np.testing.assert_allclose(layer(x), x.mean(axis=0), atol=1e-6)


# ---------------------------------------------------------------------- SummationLayer
def test_summation(rng):
    check = check_layer(ng.SummationLayer(), {"Input": rng.standard_normal((2, 3)).astype(np.float32)},
                        lambda i, a: i["Input"].sum())
    assert check.net.output_ports == {"Output": ()}


def test_summation_varying(rng):
    check_layer(ng.SummationLayer(), {"Input": rng.standard_normal((4, 2)).astype(np.float32)},
                lambda i, a: i["Input"].sum(), varying=True)


def test_summation_vector(rng):
    check_layer(ng.SummationLayer(), {"Input": rng.standard_normal(5).astype(np.float32)},
                lambda i, a: i["Input"].sum())


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("levels", [3, -4, (0, 3)], ids=repr)
def test_level_out_of_range(levels):
    with pytest.raises(ng.ShapeMismatchError, match="does not exist"):
        ng.AggregationLayer("Mean", levels, Input=(2, 3, 4)).output_ports


def test_unknown_function():
    with pytest.raises(ng.SpecificationError, match="Median"):
        ng.AggregationLayer("Quantile")


def test_slice_with_step():
    with pytest.raises(ng.SpecificationError, match="step"):
        ng.AggregationLayer("Mean", slice(0, None, 2))


def test_wrong_output_rank():
    with pytest.raises(ng.ShapeMismatchError):
        ng.AggregationLayer("Mean", 0, Input=(2, 3), Output=(2,)).output_ports


@pytest.mark.parametrize("function", ["Mean", "Total", "Max", "Min", *SPREADS])
def test_empty_varying_level_gives_zero(function):
    """Documented: an empty selection along a varying level gives 0 (here a length-0
    example, and a length-0 example padded in a list with a longer one)."""
    layer = ng.AggregationLayer(function, 0, Input=("Varying", 2))
    np.testing.assert_array_equal(layer(np.zeros((0, 2), np.float32)), np.zeros(2, np.float32))
    out = layer([np.zeros((0, 2), np.float32), np.ones((3, 2), np.float32)])
    np.testing.assert_array_equal(out[0], np.zeros(2, np.float32))


# ---------------------------------------------------- Median, Variance, StandardDeviation
@pytest.mark.parametrize("levels", [1, (2, 0), ng.All, slice(1, None)], ids=repr)
def test_spread_levels(levels, rng):
    """Every spread function over some levels, in one graph."""
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    graph = ng.NetGraph({f: ng.AggregationLayer(f, levels) for f in SPREADS},
                        [(f, ng.NetPort(f)) for f in SPREADS], Input=x.shape)
    out = graph(x)
    for function in SPREADS:
        np.testing.assert_allclose(out[function], _reduce(function, x.astype(np.float64),
                                                          _axes(levels, 3)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("function", ["Median", "StandardDeviation"])
def test_spreads_check_layer(function, rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    check_layer(ng.AggregationLayer(function, (0, 2)), {"Input": x},
                lambda i, a: _reduce(function, i["Input"], (0, 2)))


@pytest.mark.parametrize("function", ["Median", "InterquartileRange"])
def test_order_statistics_odd_and_even_counts_and_padding(function, rng):
    """Over a varying level: only the real positions count (padding would change them);
    an even count averages the two middle elements, as Wolfram's Median."""
    layer = ng.AggregationLayer(function, 0, Input=("Varying", 2))
    examples = [rng.standard_normal((n, 2)).astype(np.float32) for n in (1, 2, 3, 4, 5, 8)]
    for x, out in zip(examples, layer(examples)):
        np.testing.assert_allclose(out, np.apply_along_axis(SPREADS[function], 0, x), atol=1e-6)


def test_interquartile_range_is_wolframs():
    """InterquartileRange[{1, 2, 3, 4}] is 2 in Wolfram (hazen quantiles 1.5 and 3.5)."""
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    assert float(ng.AggregationLayer("InterquartileRange", 0, Input=4)(x)) == pytest.approx(2.0)


def test_variance_is_unbiased():
    """Wolfram's Variance[{1, 2, 3, 4}] is 5/3 (divides by n - 1), not 5/4."""
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    assert float(ng.AggregationLayer("Variance", 0, Input=4)(x)) == pytest.approx(5 / 3)
    assert float(ng.AggregationLayer("StandardDeviation", 0, Input=4)(x)) == pytest.approx(
        np.sqrt(5 / 3))
    assert float(ng.AggregationLayer("MeanDeviation", 0, Input=4)(x)) == pytest.approx(1.0)


def test_standard_deviation_of_one_element_has_finite_gradient():
    import jax

    net = ng.AggregationLayer("StandardDeviation", 0, Input=("Varying", 2))
    apply = ng.lower(net)
    grad = jax.grad(lambda x: apply({}, {"Input": x})["Output"].sum())(np.ones((1, 2), np.float32))
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("function", ["Median", "Variance"])
def test_spread_saves_and_loads(function, tmp_path, rng):
    layer = ng.AggregationLayer(function, 0, Input=("Varying", 3))
    ng.save(layer, tmp_path / "a.npz")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(ng.load(tmp_path / "a.npz")(x), layer(x))
