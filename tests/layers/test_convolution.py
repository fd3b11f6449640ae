"""ConvolutionLayer: 1-D and 2-D convolutions against an explicit-loop NumPy reference."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netgraph as ng
from harness import Arrays, check_layer
from netgraph.shapes import Varying


# --------------------------------------------------------------------- NumPy reference
def _per_axis(value, d):
    return tuple(value) if isinstance(value, tuple) else (value,) * d


def _pads(padding, sizes, kernel, stride, dilation):
    """(lo, hi) per spatial axis, following the layer's documented rules."""
    d = len(sizes)
    if padding == "Same":
        pads = []
        for s, k, st, dl in zip(sizes, kernel, stride, dilation):
            span = dl * (k - 1) + 1
            out = -(-s // st)
            total = max((out - 1) * st + span - s, 0)
            pads.append((total // 2, total - total // 2))  # low = total // 2 (TF / Keras)
        return pads
    if padding == "Valid":
        return [(0, 0)] * d
    if isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        return list(padding)
    return [(p, p) for p in _per_axis(padding, d)]


def conv_reference(x, w, b, *, stride=1, dilation=1, padding=0, groups=1, interleaving=False):
    """Cross-correlation of one example, channels first: x (c, *s), w (n, c/g, *k)."""
    if interleaving:
        x = np.moveaxis(x, -1, 0)
    d = x.ndim - 1
    kernel = w.shape[2:]
    stride, dilation = _per_axis(stride, d), _per_axis(dilation, d)
    pads = _pads(padding, x.shape[1:], kernel, stride, dilation)
    xp = np.pad(x, [(0, 0)] + pads)
    n, cg = w.shape[:2]
    per_group = n // groups
    out_sizes = [
        (xp.shape[1 + i] - (dilation[i] * (kernel[i] - 1) + 1)) // stride[i] + 1 for i in range(d)
    ]
    y = np.zeros((n, *out_sizes))
    for o in np.ndindex(*out_sizes):
        taps = [np.arange(kernel[i]) * dilation[i] + o[i] * stride[i] for i in range(d)]
        window = xp[(slice(None),) + np.ix_(*taps)]  # (c, *k)
        for g in range(groups):
            wg = w[g * per_group:(g + 1) * per_group]      # (n/g, c/g, *k)
            xg = window[g * cg:(g + 1) * cg]               # (c/g, *k)
            y[(slice(g * per_group, (g + 1) * per_group),) + o] = np.einsum(
                wg.reshape(per_group, -1), [0, 1], xg.reshape(-1), [1], [0])
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * d)
    if interleaving:
        y = np.moveaxis(y, 0, -1)
    return y


def _reference(stride=1, dilation=1, padding=0, groups=1, interleaving=False, part=()):
    def reference(inputs, arrays):
        w = arrays[(*part, "Weights")]
        b = arrays.get((*part, "Biases"))
        return conv_reference(inputs["Input"], w, b, stride=stride, dilation=dilation,
                              padding=padding, groups=groups, interleaving=interleaving)
    return reference


def _random_biases(layer, channels, rng):
    """Non-zero Biases so that the bias term is really tested."""
    return layer.evolve(arrays={"Biases": rng.standard_normal(channels).astype(np.float32)})


def test_reference_matches_hand_computed_example():
    """The reference itself on a tiny case computed by hand."""
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    w = np.array([[[1.0, -1.0]]])
    np.testing.assert_allclose(conv_reference(x, w, None), [[-1.0, -1.0, -1.0]])
    np.testing.assert_allclose(conv_reference(x, w, np.array([0.5]), stride=2), [[-0.5, -0.5]])
    # "Same", kernel 2: total padding 1, split low 0 / high 1
    np.testing.assert_allclose(conv_reference(x, w, None, padding="Same"),
                               [[-1.0, -1.0, -1.0, 4.0]])


# --------------------------------------------------------------------- fixed shapes
def _options_reference(options):
    return _reference(
        stride=options.get("stride", 1), dilation=options.get("dilation", 1),
        padding=options.get("padding", 0), groups=options.get("channel_groups", 1),
        interleaving=options.get("interleaving", False))


# full check_layer (shapes three ways, batch, jit == no-jit, vmap) on the main options
CASES = [
    # (channels, kernel, options, input shape, output shape)
    (4, 3, {}, (2, 7), (4, 5)),
    (3, 3, {"stride": 2}, (2, 8), (3, 3)),
    (2, 2, {"dilation": 2}, (1, 7), (2, 5)),
    (2, 3, {"padding": 1}, (2, 5), (2, 5)),
    (2, 4, {"padding": "Same"}, (2, 6), (2, 6)),                  # even kernel: low 1, high 2
    (2, 3, {"padding": "Same", "stride": 2}, (2, 7), (2, 4)),
    (6, 3, {"channel_groups": 2}, (4, 6), (6, 4)),
    (3, 3, {"interleaving": True}, (7, 2), (5, 3)),
    (3, (2, 3), {}, (2, 5, 6), (3, 4, 4)),
    (2, (3, 3), {"stride": (2, 1), "padding": (1, 2)}, (1, 5, 4), (2, 3, 6)),
    (2, (2, 3), {"dilation": (1, 2), "padding": ((1, 0), (0, 2))}, (1, 4, 5), (2, 4, 3)),
    (2, (3, 4), {"padding": "Same", "stride": 2}, (2, 5, 6), (2, 3, 3)),
    (4, (2, 2), {"channel_groups": 2, "interleaving": True}, (4, 4, 4), (3, 3, 4)),
]


@pytest.mark.parametrize("channels, kernel, options, shape, out", CASES, ids=repr)
def test_conv(channels, kernel, options, shape, out, rng):
    layer = _random_biases(ng.ConvolutionLayer(channels, kernel, **options), channels, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    check = check_layer(layer, {"Input": x}, _options_reference(options), atol=1e-4)
    assert check.net.output_ports == {"Output": out}
    c = shape[-1] if options.get("interleaving") else shape[0]
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * (len(shape) - 1)
    assert ng.NetExtract(check.net, "Weights").shape == (
        channels, c // options.get("channel_groups", 1), *kernel)


# more geometry, numbers only (one compiled net each)
MORE_CASES = [
    (2, 3, {"stride": 2, "dilation": 2}, (2, 9), (2, 3)),
    (2, 3, {"padding": (2,)}, (2, 5), (2, 7)),
    (2, 3, {"padding": ((2, 0),)}, (2, 5), (2, 5)),
    (2, 3, {"padding": "Valid"}, (2, 5), (2, 3)),
    (2, 3, {"padding": "Same"}, (2, 6), (2, 6)),
    (2, 4, {"padding": "Same", "stride": 2}, (2, 8), (2, 4)),
    (2, 4, {"padding": "Same", "stride": 3}, (1, 7), (2, 3)),
    (2, 3, {"padding": "Same", "dilation": 2}, (2, 6), (2, 6)),
    (4, 2, {"channel_groups": 4}, (4, 5), (4, 4)),                # depthwise
    (3, 3, {"interleaving": True, "padding": "Same", "stride": 2}, (7, 2), (4, 3)),
    (2, 3, {}, (1, 4, 5), (2, 2, 3)),                              # int kernel on 2-D input
    (2, (3, 2), {"stride": (2, 1)}, (2, 7, 5), (2, 3, 4)),
    (2, (3, 4), {"padding": "Same"}, (1, 4, 5), (2, 4, 5)),
    (3, (2, 3), {"interleaving": True, "padding": "Same"}, (5, 6, 2), (5, 6, 3)),
]


@pytest.mark.parametrize("channels, kernel, options, shape, out", MORE_CASES, ids=repr)
def test_conv_geometry(channels, kernel, options, shape, out, rng):
    layer = ng.ConvolutionLayer(channels, kernel, **options, Input=shape)
    assert layer.output_ports == {"Output": out}
    net = _random_biases(ng.NetInitialize(layer, seed=0), channels, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = _options_reference(options)({"Input": x.astype(np.float64)}, Arrays(net))
    np.testing.assert_allclose(net(x), expected, atol=1e-4, rtol=1e-4)


def test_no_biases(rng):
    layer = ng.ConvolutionLayer(2, 3, Biases=None)
    check = check_layer(layer, {"Input": rng.standard_normal((2, 5)).astype(np.float32)},
                        _reference(), atol=1e-4)
    assert "Biases" not in check.net.array_specs()


def test_given_weights_infer_channels_and_kernel(rng):
    w = rng.standard_normal((3, 2, 4)).astype(np.float32)
    layer = ng.ConvolutionLayer(kernel=4, Weights=w, Input=(2, 9))
    assert layer.output_ports == {"Output": (3, 6)}
    check_layer(layer, {"Input": rng.standard_normal((2, 9)).astype(np.float32)}, _reference(),
                atol=1e-4)


# ------------------------------------------------------------ varying first spatial axis
def _padded_matches(var, xs, reference, out_axis=0, arrays=None):
    """ng.lower(var) (jitted) on each of ``xs`` padded with junk to one common length, given
    its true length: the first rows of the output (as many as the reference has) equal the
    reference. Covers outputs whose varying length is one the layer makes (stride > 1,
    "Valid"), which the harness does not compare through padding."""
    dim = var.inference.port((), "Input").dims[0]
    assert isinstance(dim, Varying)
    apply = jax.jit(ng.lower(var))
    params = ng.params_of(var)
    arrays = Arrays(var) if arrays is None else arrays
    size = max(x.shape[0] for x in xs) + 3
    for x in xs:
        junk = np.full((size - x.shape[0], *x.shape[1:]), 7.0, np.float32)
        padded = np.concatenate([x, junk])
        out = apply(params, {"Input": jnp.asarray(padded)},
                    lengths={dim.symbol: jnp.asarray(x.shape[0], jnp.int32)})["Output"]
        expected = reference({"Input": x.astype(np.float64)}, arrays)
        out = np.take(np.asarray(out), np.arange(expected.shape[out_axis]), axis=out_axis)
        np.testing.assert_allclose(out, expected, atol=1e-4, rtol=1e-4,
                                   err_msg=f"length {x.shape[0]} padded to {size}")


VARYING_1D = [
    # (kernel, options, length) with interleaving=True: input L x c
    (3, {}, 6),
    (2, {"dilation": 2, "padding": 1}, 6),
    (4, {"padding": "Same"}, 6),
    (3, {"padding": "Same", "stride": 2}, 6),
    (4, {"padding": "Same", "stride": 3, "dilation": 2}, 8),
]


@pytest.mark.parametrize("kernel, options, length", VARYING_1D, ids=repr)
def test_varying_1d(kernel, options, length, rng):
    layer = _random_biases(ng.ConvolutionLayer(3, kernel, interleaving=True, **options), 3, rng)
    x = rng.standard_normal((length, 2)).astype(np.float32)
    reference = _reference(stride=options.get("stride", 1), dilation=options.get("dilation", 1),
                           padding=options.get("padding", 0), interleaving=True)
    check = check_layer(layer, {"Input": x}, reference, varying=True, atol=1e-4)
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 3)}
    xs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (length, length - 1, length + 2)]
    _padded_matches(var, xs, reference)


def test_varying_same_stride_one_keeps_the_length_symbol(rng):
    layer = ng.ConvolutionLayer(2, 3, interleaving=True, padding="Same", Input=("Varying", 2))
    types = layer.port_types()
    assert types["Output"].dims[0] == types["Input"].dims[0]


def test_varying_2d(rng):
    layer = _random_biases(
        ng.ConvolutionLayer(2, (3, 2), interleaving=True, padding="Same", stride=(2, 1)), 2, rng)
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    reference = _reference(padding="Same", stride=(2, 1), interleaving=True)
    check = check_layer(layer, {"Input": x}, reference, varying=True, atol=1e-4)
    var = check.variants["varying"]
    assert var.output_ports == {"Output": ("Varying", 4, 2)}
    xs = [rng.standard_normal((n, 4, 2)).astype(np.float32) for n in (6, 7)]
    _padded_matches(var, xs, reference)


def test_varying_channels_first_after_transpose(rng):
    """A channels-first convolution whose spatial axis varies: L x c -> c x L -> conv."""
    options = {"padding": "Same", "stride": 2}
    chain = ng.NetChain({"t": ng.TransposeLayer(), "conv": ng.ConvolutionLayer(3, 3, **options)})
    x = rng.standard_normal((6, 2)).astype(np.float32)
    base = _reference(stride=options.get("stride", 1), padding=options.get("padding", 0),
                      part=("conv",))
    check = check_layer(chain, {"Input": x},
                        lambda i, a: base({"Input": i["Input"].T}, a), varying=True, atol=1e-4)
    var = check.variants["varying"]
    assert var.output_ports == {"Output": (3, "Varying")}
    xs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (5, 6)]
    # the arrays are read off the fixed-size net (the same arrays): see the next test
    _padded_matches(var, xs, lambda i, a: base({"Input": i["Input"].T}, a), out_axis=1,
                    arrays=Arrays(check.net))


def test_extract_conv_after_transpose_with_varying_axis():
    """The convolution inside a chain whose spatial axis varies (not its first axis) can be
    extracted, as any part of a valid net."""
    chain = ng.NetChain({"t": ng.TransposeLayer(), "conv": ng.ConvolutionLayer(3, 3)},
                        Input=("Varying", 2))
    assert chain.output_ports == {"Output": (3, "Varying")}
    conv = ng.NetExtract(chain, "conv")
    assert isinstance(conv, ng.ConvolutionLayer)
    assert conv.options.kernel == 3


# ------------------------------------------------------------------------ errors
def test_input_too_short_for_kernel():
    """Size 2 with kernel 3 leaves no output position: an error, not an empty array."""
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(2, 3, Input=(2, 2)).output_ports


def test_input_much_too_short():
    with pytest.raises(ng.ShapeMismatchError, match="size 1"):
        ng.ConvolutionLayer(2, 3, Input=(2, 1)).output_ports


def test_input_too_short_2d_dilated():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(2, (2, 3), dilation=2, Input=(1, 6, 4)).output_ports


def test_input_rank():
    with pytest.raises(ng.ShapeMismatchError, match="rank"):
        ng.ConvolutionLayer(2, 3, Input=(2, 2, 4, 4)).output_ports


def test_kernel_rank_vs_input_rank():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(2, (3, 3), Input=(2, 8)).output_ports


def test_input_channels_not_divisible_by_groups():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(4, 3, channel_groups=2, Input=(3, 8)).output_ports


def test_output_channels_not_divisible_by_groups():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(3, 3, channel_groups=2, Input=(4, 8)).output_ports


def test_stride_length_mismatch():
    with pytest.raises(ng.ShapeMismatchError, match="stride"):
        ng.ConvolutionLayer(2, (3, 3), stride=(1, 1, 1), Input=(2, 8, 8)).output_ports


def test_channels_cannot_vary():
    """Channels first, a "Varying" first dimension is the channel axis: an error."""
    with pytest.raises(ng.ShapeMismatchError, match="channels"):
        ng.ConvolutionLayer(2, 3, Input=("Varying", 5)).output_ports


def test_weights_shape_mismatch():
    with pytest.raises(ng.ShapeMismatchError):
        ng.ConvolutionLayer(2, 3, Weights=np.zeros((2, 2, 4)), Input=(2, 8)).output_ports


def test_missing_kernel():
    with pytest.raises(ng.SpecificationError, match="kernel"):
        ng.ConvolutionLayer(2)


@pytest.mark.parametrize("bad", [{"stride": 0}, {"padding": -1}, {"padding": "Full"},
                                 {"channel_groups": 0}])
def test_invalid_options(bad):
    with pytest.raises(ng.SpecificationError):
        ng.ConvolutionLayer(2, 3, **bad)
