"""NormalizationLayer and BatchNormalizationLayer against NumPy.

NormalizationLayer: the default (LayerNorm over the last level), other aggregation and
scaling levels, "RMS", removed arrays, varying levels (only real positions count), 16-bit
inputs (statistics in float32), errors, save/load. BatchNormalizationLayer: evaluation with
the moving statistics, training with batch statistics over real positions only, the
moving-statistics update reported as layer state, and the arrays' roles (trainable or state)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import check_layer
from netgraph.compiler import trainable_mask
from netgraph.layers.lowering import BATCH_AXIS


def _layer_norm(x, axes, scaled, a, eps=1e-3, rms=False):
    """One example, NumPy float64: normalise over ``axes``, scale over ``scaled``."""
    if rms:
        y = x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    else:
        y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    shape = [x.shape[i] if i in scaled else 1 for i in range(x.ndim)]
    if a.get("Scaling") is not None:
        y = y * np.reshape(a["Scaling"], shape)
    if a.get("Biases") is not None:
        y = y + np.reshape(a["Biases"], shape)
    return y


def _learned(rng, layer, shape):
    """``layer`` with random Scaling and Biases (so that their orientation is tested)."""
    net = ng.NetInitialize(layer.evolve(port_specs={"Input": shape}))
    parts = {name: rng.uniform(0.5, 2, ng.NetExtract(net, name).shape)
             for name in ("Scaling", "Biases") if name in net.arrays}
    return layer.evolve(arrays=parts) if parts else layer


def test_default_is_layer_norm_over_the_last_level(rng):
    layer = _learned(rng, ng.NormalizationLayer(), (4, 5))
    x = (3 * rng.standard_normal((4, 5)) + 2).astype(np.float32)
    check = check_layer(layer, {"Input": x}, lambda i, a: _layer_norm(i["Input"], (1,), (1,), a),
                        varying=True)
    assert ng.NetExtract(check.net, "Scaling").shape == (5,)
    assert check.variants["varying"].output_ports == {"Output": ("Varying", 5)}


@pytest.mark.parametrize("levels, scaling, axes, scaled", [
    (slice(1, None), "Complement", (1, 2), (0,)),   # Wolfram's default: instance normalisation
    ((0, 2), "Same", (0, 2), (0, 2)),
    (-1, (0, 1), (2,), (0, 1)),
])
def test_aggregation_and_scaling_levels(rng, levels, scaling, axes, scaled):
    layer = _learned(rng, ng.NormalizationLayer(levels, scaling, epsilon=0.01), (2, 3, 4))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    check_layer(layer, {"Input": x}, lambda i, a: _layer_norm(i["Input"], axes, scaled, a, 0.01))


def test_rms_and_removed_arrays(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    layer = _learned(rng, ng.NormalizationLayer(method="RMS", Biases=None), (3, 4))
    check_layer(layer, {"Input": x}, lambda i, a: _layer_norm(i["Input"], (1,), (1,), a, rms=True))
    bare = ng.NormalizationLayer(Scaling=None, Biases=None)
    check = check_layer(bare, {"Input": x}, lambda i, a: _layer_norm(i["Input"], (1,), (1,), {}))
    assert not check.net.arrays


@pytest.mark.parametrize("method", ["Standardize", "RMS"])
def test_over_a_varying_level_only_real_positions_count(rng, method):
    """Normalising a whole sequence: the harness pads it with junk that must not count."""
    layer = _learned(rng, ng.NormalizationLayer(ng.All, 1, method=method), (5, 3))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    check_layer(layer, {"Input": x},
                lambda i, a: _layer_norm(i["Input"], (0, 1), (1,), a, rms=method == "RMS"), varying=True)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("make", [lambda: ng.NormalizationLayer(),
                                  lambda: ng.BatchNormalizationLayer(interleaving=True)])
def test_16_bit_inputs_take_statistics_in_float32(rng, dtype, make):
    """A large offset with small spread: float16 sums lose the spread; float32 ones do not."""
    net = ng.NetInitialize(make().evolve(port_specs={"Input": (6, 8)}))
    x = (300 + rng.standard_normal((6, 8))).astype(np.float32)
    apply, params = ng.lower(net), ng.params_of(net)
    x16 = jnp.asarray(x, dtype)
    exact = np.asarray(x16, np.float64)
    axis = 1 if isinstance(net, ng.NormalizationLayer) else 0
    expected = (exact - exact.mean(axis, keepdims=True)) / np.sqrt(exact.var(axis, keepdims=True) + 1e-3)
    train = isinstance(net, ng.BatchNormalizationLayer)
    out = apply(params, {"Input": x16}, train=train)["Output"]
    assert out.dtype == dtype
    np.testing.assert_allclose(np.asarray(out, np.float64), expected, atol=0.05 if dtype == jnp.float16 else 0.1)


def test_normalization_errors():
    with pytest.raises(ng.ShapeMismatchError, match="varies"):
        ng.NormalizationLayer(0, Input=("Varying", 4))
    with pytest.raises(ng.ShapeMismatchError, match="selects no level"):
        ng.NormalizationLayer(slice(1, None), Input=(4,))
    with pytest.raises(ng.ShapeMismatchError, match="level 2 does not exist"):
        ng.NormalizationLayer(2, Input=(3, 4))
    with pytest.raises(ng.SpecificationError, match="epsilon"):
        ng.NormalizationLayer(epsilon=0)
    with pytest.raises(ng.SpecificationError, match="method"):
        ng.NormalizationLayer(method="L2")
    with pytest.raises(ng.ShapeMismatchError):
        ng.NormalizationLayer(Input=(3, 4), Scaling=np.ones(3, np.float32))


def test_normalization_saved_and_loaded(tmp_path, rng):
    net = ng.NetInitialize(_learned(rng, ng.NormalizationLayer(slice(1, None), "Complement"), (2, 3, 4)))
    ng.save(net, tmp_path / "norm.npz")
    back = ng.load(tmp_path / "norm.npz")
    assert back.options == net.options
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(back(x), net(x))


def _arrays(rng, c):
    return {"Scaling": rng.uniform(0.5, 2, c).astype(np.float32),
            "Biases": rng.standard_normal(c).astype(np.float32),
            "MovingMean": rng.standard_normal(c).astype(np.float32),
            "MovingVariance": rng.uniform(0.5, 2, c).astype(np.float32)}


def _normalise(x, mean, var, a, eps, channel_axis):
    shape = [1] * x.ndim
    shape[channel_axis] = -1
    r = lambda v: np.reshape(v, shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(a["Scaling"]) + r(a["Biases"])


@pytest.mark.parametrize("interleaving, shape", [(False, (3, 4)), (True, (4, 3)), (False, (3,))])
def test_evaluation_uses_the_moving_statistics(rng, interleaving, shape):
    layer = ng.BatchNormalizationLayer(interleaving=interleaving, epsilon=0.01)
    axis = len(shape) - 1 if interleaving else 0
    x = rng.standard_normal(shape).astype(np.float32)

    def reference(inputs, a):
        return _normalise(inputs["Input"], a["MovingMean"], a["MovingVariance"], a, 0.01, axis)

    check = check_layer(layer, {"Input": x}, reference)
    assert ng.NetExtract(check.net, "MovingMean").shape == (3,)


def _train_batch(net, x, lengths=None):
    apply = ng.lower(net, batch_axis=BATCH_AXIS)
    params = ng.params_of(net)

    def one(xi, n):
        return apply(params, {"Input": xi}, train=True, return_state=True,
                     lengths=None if n is None else {"Input": n})

    if lengths is None:
        return jax.vmap(lambda xi: one(xi, None), axis_name=BATCH_AXIS)(x)
    return jax.vmap(one, axis_name=BATCH_AXIS)(x, lengths)


def test_training_normalises_by_batch_statistics_and_reports_moving_ones(rng):
    a = _arrays(rng, 3)
    net = ng.BatchNormalizationLayer(momentum=0.8, Input=(3, 5), **a)
    x = (3 * rng.standard_normal((6, 3, 5)) + 1).astype(np.float32)
    outputs, state = _train_batch(net, x)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    expected = np.stack([_normalise(xi, mean, var, a, 1e-3, 0) for xi in x])
    np.testing.assert_allclose(outputs["Output"], expected, rtol=1e-5, atol=1e-5)
    # every row of the batch reports the same new state
    np.testing.assert_allclose(state["MovingMean"][0], 0.8 * a["MovingMean"] + 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(state["MovingVariance"][3], 0.8 * a["MovingVariance"] + 0.2 * var,
                               rtol=1e-5)
    assert set(state) == {"MovingMean", "MovingVariance"}


def test_padding_never_enters_the_statistics(rng):
    a = _arrays(rng, 2)
    net = ng.BatchNormalizationLayer(interleaving=True, Input=("Varying", 2), **a)
    lengths = np.array([3, 1, 4], np.int32)
    x = np.zeros((3, 4, 2), np.float32)
    for row, n in enumerate(lengths):
        x[row, :n] = rng.standard_normal((n, 2))
    x[0, 3] = 1e6  # padding: must not count
    outputs, state = _train_batch(net, x, lengths)
    real = np.concatenate([x[row, :n] for row, n in enumerate(lengths)])
    mean, var = real.mean(axis=0), real.var(axis=0)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(outputs["Output"][row, :n],
                                   _normalise(x[row, :n], mean, var, a, 1e-3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["MovingMean"][0], 0.9 * a["MovingMean"] + 0.1 * mean, rtol=1e-5)


def test_threaded_training_evaluation_ignores_padding_rows_and_padding(rng):
    a = _arrays(rng, 2)
    net = ng.BatchNormalizationLayer(interleaving=True, Input=("Varying", 2), **a)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (3, 5, 1)]
    outputs = net(seqs, train=True)
    real = np.concatenate(seqs)
    mean, var = real.mean(axis=0), real.var(axis=0)
    for out, seq in zip(outputs, seqs):
        np.testing.assert_allclose(out, _normalise(seq, mean, var, a, 1e-3, 1), rtol=1e-5, atol=1e-5)


def test_without_a_batch_axis_one_example_is_its_own_batch(rng):
    net = ng.NetInitialize(ng.BatchNormalizationLayer(Input=(2, 6)))
    x = rng.standard_normal((2, 6)).astype(np.float32)
    out, state = ng.lower(net)(ng.params_of(net), {"Input": x}, train=True, return_state=True)
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out["Output"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["MovingMean"], 0.1 * x.mean(1), rtol=1e-5, atol=1e-7)


def test_moving_statistics_are_state_not_trainable():
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(3), ng.BatchNormalizationLayer()], Input=2))
    mask = trainable_mask(net)
    assert mask["1"] == {"Scaling": True, "Biases": True, "MovingMean": False, "MovingVariance": False}
    assert mask["0"] == {"Weights": True, "Biases": True}
    np.testing.assert_array_equal(ng.NetExtract(net, ("1", "MovingVariance")), np.ones(3))
    # evaluation mode reports no state
    _, state = ng.lower(net)(ng.params_of(net), {"Input": np.ones(2, np.float32)}, return_state=True)
    assert state == {}


def test_bad_options_and_shapes():
    with pytest.raises(ng.SpecificationError, match="momentum"):
        ng.BatchNormalizationLayer(momentum=1.5)
    with pytest.raises(ng.SpecificationError, match="epsilon"):
        ng.BatchNormalizationLayer(epsilon=0)
    with pytest.raises(ng.ShapeMismatchError):
        ng.BatchNormalizationLayer(Input=(3, 4), MovingMean=np.zeros(4, np.float32))


def test_saved_and_loaded_with_its_state(tmp_path, rng):
    net = ng.BatchNormalizationLayer(Input=(3,), **_arrays(rng, 3))
    ng.save(net, tmp_path / "bn.npz")
    back = ng.load(tmp_path / "bn.npz")
    np.testing.assert_array_equal(ng.NetExtract(back, "MovingVariance"),
                                  ng.NetExtract(net, "MovingVariance"))
    assert back.options == net.options
