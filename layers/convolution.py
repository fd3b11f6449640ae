"""ConvolutionLayer: 1-D and 2-D convolutions (channels first, as Wolfram; or interleaved).

Shape legend: c input channels, n output channels, s_i spatial sizes, k_i kernel sizes,
g channel groups, d the number of spatial dims (1 or 2; from ``kernel`` or the input rank).

======= ================================= =========================================
port    shape (``interleaving=False``)    with ``interleaving=True``
======= ================================= =========================================
Input   c x s1 [x s2]                     s1 [x s2] x c
Output  n x o1 [x o2]                     o1 [x o2] x n
======= ================================= =========================================

``o = floor((s + lo + hi - (dilation*(k-1)+1)) / stride) + 1``; ``padding="Same"`` gives
``o = ceil(s / stride)`` with the extra padding split low = total // 2 (as TensorFlow/Keras).
Arrays: ``Weights`` n x c/g x k1 [x k2], ``Biases`` n. The first spatial dimension may vary:
positions beyond each example's length are treated as zero padding, so a padded batch gives
exactly the per-example results.
"""
from __future__ import annotations

from typing import Any, Literal, Union

import jax
import jax.numpy as jnp

from ..shapes import Automatic, Known
from ..errors import ShapeMismatchError
from ..shapes import rules

from .base import ArraySpec, Layer, LayerOptions
from .lowering import lower_layer, masked_along, valid_mask
from .options import PositiveSize, Size, SizeOrAuto

PosInt = PositiveSize
PerAxis = Union[PosInt, tuple[PosInt, ...]]
Padding = Union[
    Size,
    tuple[Size, ...],
    tuple[tuple[Size, Size], ...],
    Literal["Same", "Valid"],
]


def _span(kernel: int, dilation: int) -> int:
    """The extent of a dilated kernel."""
    return dilation * (kernel - 1) + 1


def _per_axis(value: Any, d: int, what: str, owner: str) -> tuple:
    values = tuple(value) if isinstance(value, tuple) else (value,) * d
    if len(values) != d:
        raise ShapeMismatchError(f"{owner}: {what} {value!r} does not fit {d} spatial dimension(s).")
    return values


def window_geometry(owner: str, d: int, kernel: Any, stride: Any, dilation: Any,
                    padding: Any) -> list[tuple[int, int, int, Any]]:
    """Per spatial axis of a sliding window (convolution, pooling): (kernel, stride,
    dilation, padding) with padding a (lo, hi) pair or "Same"."""
    if padding == "Same":
        pads: tuple = ("Same",) * d
    elif padding == "Valid":
        pads = ((0, 0),) * d
    elif isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        pads = _per_axis(padding, d, "padding", owner)
    else:
        pads = tuple((p, p) for p in _per_axis(padding, d, "padding", owner))
    return list(zip(_per_axis(kernel, d, "kernel", owner), _per_axis(stride, d, "stride", owner),
                    _per_axis(dilation, d, "dilation", owner), pads))


def output_size(size: Any, kernel: int, stride: int, dilation: int, pad: Any) -> Any:
    """``o`` of the module docstring, for an int or a traced true length."""
    if pad == "Same":
        return -(-size // stride)
    return (size + pad[0] + pad[1] - _span(kernel, dilation)) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """The (low, high) padding of "Same" along an axis of ``size``: low = total // 2."""
    total = max((-(-size // stride) - 1) * stride + _span(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def spatial_size_rules(scope: Any, sizes_in: tuple[int, ...], sizes_out: tuple[int, ...],
                       geometry: list[tuple[int, int, int, Any]]) -> None:
    """Each output spatial size follows from the input's by :func:`output_size` (a varying
    input size gives a varying output size: the same one for a stride-1 "Same" window)."""
    for i, (kernel, stride, dilation, pad) in enumerate(geometry):
        rules.mapped(
            scope.solver, sizes_in[i], sizes_out[i],
            lambda n, k=kernel, st=stride, dl=dilation, p=pad: output_size(n, k, st, dl, p),
            scope.origin("Output"), lambda i=i: f"spatial dimension {i + 1} of {scope.where('Output')}",
            same_when_varying=(pad == "Same" and stride == 1),
        )


class ConvolutionLayer(Layer):
    """A learned convolution over 1 or 2 spatial dimensions (shapes and padding below)."""

    class Options(LayerOptions):
        channels: SizeOrAuto = Automatic
        kernel: PerAxis
        stride: PerAxis = 1
        dilation: PerAxis = 1
        padding: Padding = 0
        channel_groups: PosInt = 1
        interleaving: bool = False

    positional = ("channels", "kernel")
    arrays_declared = {"Weights": ArraySpec("weights"), "Biases": ArraySpec("zeros", optional=True)}

    def describe(self) -> str:
        return f"ConvolutionLayer[{self.options.channels}, {self.options.kernel}]"

    # ------------------------------------------------------------------ geometry
    def geometry(self, d: int) -> list[tuple[int, int, int, Any]]:
        """Per spatial axis: (kernel, stride, dilation, padding); see :func:`window_geometry`."""
        o = self.options
        return window_geometry(self.type_name, d, o.kernel, o.stride, o.dilation, o.padding)

    def spatial_rank(self, input_rank: int | None) -> int | None:
        if isinstance(self.options.kernel, tuple):
            return len(self.options.kernel)
        return None if input_rank is None else input_rank - 1

    # ------------------------------------------------------------------ template
    def inferred_options(self, port: Any) -> dict[str, Any]:
        out = port("Output").dims
        channels = (out[-1] if self.options.interleaving else out[0]) if out else None
        return {"channels": channels.size if isinstance(channels, Known) else None}

    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.real("Input", "Output")
        x = scope.port("Input")
        if isinstance(self.options.kernel, tuple):
            scope.dims("Input", len(self.options.kernel) + 1)

        def install(rank: int) -> None:
            d = self.spatial_rank(rank)
            if d not in (1, 2) or rank != d + 1:
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: ConvolutionLayer takes a rank-2 (1-D) or rank-3 "
                    f"(2-D) input; found rank {rank}."
                )
            self._spatial_rules(scope, d)

        def default() -> None:  # an input of unknown rank is a 1-D signal
            if s.dims(x) is None:
                scope.dims("Input", 2)

        scope.once_ranked(("Input",), install)
        s.fallback(default)

    def _spatial_rules(self, scope: Any, d: int) -> None:
        s = scope.solver
        o = self.options
        inp, out = scope.dims("Input", d + 1), scope.dims("Output", d + 1)
        c_in, sp_in = (inp[-1], inp[:-1]) if o.interleaving else (inp[0], inp[1:])
        c_out, sp_out = (out[-1], out[:-1]) if o.interleaving else (out[0], out[1:])
        weights = scope.array_dims("Weights", d + 2)
        if o.channels is not Automatic:
            scope.fix(c_out, o.channels, "Output")
        scope.same_dim(weights[0], c_out, "Weights")
        groups = s.new_dim(o.channel_groups)
        channels_hint = ("channels cannot vary." if o.interleaving else "channels cannot vary: "
                         "the input is channels-first (channels x positions); for a sequence of "
                         "vectors (positions x channels) use interleaving=True.")
        rules.product(s, s.shape_of_dims((weights[1], groups)), c_in, scope.origin("Input"),
                      scope.where("Input"), varying_hint=channels_hint)
        rules.product(s, s.shape_of_dims((s.new_dim(), groups)), c_out, scope.origin("Output"),
                      lambda: f"{scope.where('Output')} (channel_groups={o.channel_groups} must "
                      "divide the output channels)", varying_hint="channels cannot vary.")
        if "Biases" in self.array_specs():
            (bias,) = scope.array_dims("Biases", 1)
            scope.same_dim(bias, c_out, "Biases")
        for i, (kernel, *_) in enumerate(self.geometry(d)):
            scope.fix(weights[2 + i], kernel, "Weights")
        spatial_size_rules(scope, sp_in, sp_out, self.geometry(d))


def dynamic_same_window(x: jax.Array, axis: int, length: jax.Array, kernel: int,
                        stride: int, dilation: int) -> jax.Array:
    """Shift a varying axis so that "Same" padding is computed from the true ``length``:
    the window that a "Valid" convolution (or pooling) turns into the padded axis's output."""
    size = x.shape[axis]
    span = _span(kernel, dilation)
    out = -(-size // stride)
    low_max = (span - 1) // 2
    out_true = (length + stride - 1) // stride
    low = jnp.maximum((out_true - 1) * stride + span - length, 0) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (low_max, span + stride)
    padded = jnp.pad(x, pad)
    window = (out - 1) * stride + span
    return jax.lax.dynamic_slice_in_dim(padded, low_max - low, window, axis)


@lower_layer.register(ConvolutionLayer)
def _lower_convolution(layer: ConvolutionLayer, ctx: Any, inputs: dict) -> dict:
    o = layer.options
    x = inputs["Input"]
    if o.interleaving:
        x = jnp.moveaxis(x, -1, 0)
    d = x.ndim - 1
    geometry = layer.geometry(d)
    first_length = ctx.length("Input", 0 if o.interleaving else 1)
    x = masked_along(x, 1, valid_mask(first_length, x.shape[1]), 0.0)
    padding = []
    for i, (kernel, stride, dilation, pad) in enumerate(geometry):
        if pad != "Same":
            padding.append(pad)
        elif i == 0 and first_length is not None:
            x = dynamic_same_window(x, 1, first_length, kernel, stride, dilation)
            padding.append((0, 0))
        else:
            padding.append(same_padding(x.shape[1 + i], kernel, stride, dilation))
    y = jax.lax.conv_general_dilated(
        x[None], ctx.params["Weights"],
        window_strides=tuple(g[1] for g in geometry), padding=padding,
        rhs_dilation=tuple(g[2] for g in geometry), feature_group_count=o.channel_groups,
    )[0]
    if "Biases" in ctx.params:
        y = y + ctx.params["Biases"].reshape((-1,) + (1,) * d)
    if first_length is not None:
        out_len = output_size(first_length, *geometry[0])  # an int for exact-size data
        out_len = max(out_len, 0) if isinstance(out_len, int) else jnp.maximum(out_len, 0)
        ctx.set_length("Output", 0 if o.interleaving else 1, out_len)
    if o.interleaving:
        y = jnp.moveaxis(y, 0, -1)
    return {"Output": y}


__all__ = ["ConvolutionLayer"]
