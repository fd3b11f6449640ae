"""Part layers: PartLayer, PaddingLayer, AppendLayer, PrependLayer, UnitVectorLayer,
OrderingLayer - taking, adding and locating parts of arrays.

Shape legend: L first dimension (fixed or varying), ``...`` the other dims, n a size.

=============== ======= ===================== ==============================================
layer           port    shape                 notes
=============== ======= ===================== ==============================================
PartLayer(p)    Input   d1 x d2 x ...         ``p`` one spec per level (NumPy's indexing)
                Output  the selected part     an int drops its level; a slice or an index
                                              list keeps it; All keeps the whole level
PaddingLayer    Input   d1 x .. x dr          ``((before, after), ...)`` from level 0 on
                Output  (d1+b1+a1) x ..       a varying level gets a new varying length
AppendLayer     Input   L x ...               ``Element`` joined after the last *real*
                Element ...                   element (``PrependLayer``: before the first)
                Output  (L+1) x ...           a varying L gives a new length, L + 1
UnitVectorLayer Input   ... integers          each in [0, n) (0-based)
                Output  ... x n               one-hot vectors (reals)
OrderingLayer   Input   l (a vector)          ``n``: All, k > 0 or -k
                Output  l, or k integers      0-based positions in ascending order of value
=============== ======= ===================== ==============================================

On a varying level every layer works within each example's true length: a PartLayer index
or span counts from the true end (negative indices, ``slice(-3, None)``), padding is placed
after the true end, and positions past the true length never reach a result. An index past
the true length of a varying level gives zeros (it cannot be an error: the length is data).
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Union

import jax
import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError
from ..shapes import Automatic
from ..shapes.solver import Sym

from .base import Layer, LayerOptions
from .lowering import lower_layer, masked_along, valid_mask
from .options import All, AllT, SizeOrAuto, as_tuple


# ------------------------------------------------------------------- length rules
def length_rule(scope: Any, source: int, result: int, port: str, forward: Callable[[int], int],
                backward: Callable[[int], Optional[int]] | None = None) -> None:
    """Dimension ``result`` of ``port`` is ``forward(source)`` for known sizes (and
    ``source`` is ``backward(result)`` where that is given and not None); a varying source
    gives a new varying result, whose true length the lowering sets."""
    s = scope.solver
    origin, where = scope.origin(port), scope.where(port)

    def run() -> None:
        a, b = s.dim(source), s.dim(result)
        if isinstance(a, int):
            s.bind_dim(result, forward(a), origin, where)
        elif isinstance(a, Sym):
            if not isinstance(b, Sym):
                s.unify_dims(result, s.new_varying(origin), where)
        elif isinstance(b, int) and backward is not None and backward(b) is not None:
            s.bind_dim(source, backward(b), origin, where)
        elif isinstance(b, Sym) and a is None:
            s.unify_dims(source, s.new_varying(origin), where)

    s.rule(run, dims=(source, result))


def shifted(scope: Any, source: int, result: int, port: str, delta: int, minimum: int = 0,
            what: str = "") -> None:
    """``result = source + delta`` in both directions; a known source below ``minimum`` is
    an error (``what`` names the layer's need)."""
    def forward(n: int) -> int:
        if n < minimum:
            raise ShapeMismatchError(
                f"{scope.where(port)}: {what or 'the input'} needs a size of at least "
                f"{minimum}; found {n}.")
        return n + delta

    def backward(m: int) -> int:
        if m - delta < minimum:
            raise ShapeMismatchError(
                f"{scope.where(port)}: a size of {m} would need an input of size {m - delta}; "
                f"{what or 'the input'} needs a size of at least {minimum}.")
        return m - delta

    length_rule(scope, source, result, port, forward, backward)


def _gather(x: jax.Array, axis: int, source: jax.Array, valid: jax.Array | None) -> jax.Array:
    """``x`` taken at positions ``source`` along ``axis``; zeros where ``valid`` is False."""
    size = x.shape[axis]
    if size == 0:
        shape = list(x.shape)
        shape[axis] = source.shape[0]
        return jnp.zeros(shape, x.dtype)
    out = jnp.take(x, jnp.clip(source, 0, size - 1), axis=axis)
    return masked_along(out, axis, valid, 0)


# ---------------------------------------------------------------------- PartLayer
class PartSpan(pydantic.BaseModel):
    """A span of one level, as a Python slice (0-based, ``stop`` exclusive)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    start: Optional[int] = None
    stop: Optional[int] = None
    step: int = 1

    @pydantic.field_validator("step")
    @classmethod
    def _nonzero(cls, step: int) -> int:
        if step == 0:
            raise ValueError("a span's step cannot be 0")
        return step

    def as_slice(self) -> slice:
        return slice(self.start, self.stop, self.step)

    def count(self, n: int) -> int:
        return len(range(*self.as_slice().indices(n)))

    def start_and_count(self, n: Any) -> tuple[Any, Any]:
        """Python's slice rules for a (traced) length ``n``: first index and element count."""
        step, start, stop = self.step, self.start, self.stop
        if step > 0:
            lo = 0 if start is None else jnp.clip(start + n if start < 0 else start, 0, n)
            hi = n if stop is None else jnp.clip(stop + n if stop < 0 else stop, 0, n)
            return lo, jnp.maximum(0, (hi - lo + step - 1) // step)
        lo = n - 1 if start is None else jnp.clip(start + n if start < 0 else start, -1, n - 1)
        hi = -1 if stop is None else jnp.clip(stop + n if stop < 0 else stop, -1, n - 1)
        return lo, jnp.maximum(0, (lo - hi - step - 1) // -step)


class PartIndices(pydantic.BaseModel):
    """A list of positions along one level (0-based; negative ones count from the end)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    indices: tuple[int, ...]

    @pydantic.field_validator("indices")
    @classmethod
    def _some(cls, indices: tuple) -> tuple:
        if not indices:
            raise ValueError("an index list cannot be empty")
        return indices


LevelSpec = Union[int, AllT, PartSpan, PartIndices]


class PartSpec(pydantic.BaseModel):
    """PartLayer's part: one spec per level, from level 0 on."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    levels: tuple[LevelSpec, ...]


def _level_spec(value: Any) -> Any:
    if isinstance(value, slice):
        return PartSpan(start=value.start, stop=value.stop,
                        step=1 if value.step is None else value.step)
    if isinstance(value, list):
        return PartIndices(indices=tuple(value))
    return value


def _show_level(spec: Any) -> str:
    if isinstance(spec, PartSpan):
        parts = ["" if v is None else str(v) for v in (spec.start, spec.stop)]
        return ":".join(parts + ([str(spec.step)] if spec.step != 1 else []))
    if isinstance(spec, PartIndices):
        return str(list(spec.indices))
    return repr(spec)


class PartLayer(Layer):
    """Takes the part ``part`` of its input: NumPy's basic indexing, one spec per level.

    ``part``: an int ``i`` (drops the level; negative counts from the end), a ``slice``
    (0-based, stop exclusive, any nonzero step), a list of ints (those positions, in order),
    ``All`` (the whole level), or a tuple of these for several levels (levels not named
    are kept whole): ``PartLayer(0)``, ``PartLayer(-1)``, ``PartLayer(slice(1, None))``,
    ``PartLayer((All, 0))`` (the first column), ``PartLayer([0, 2])``. An empty part of a
    fixed level is an error (as in Wolfram); on a varying level it is an empty sequence.
    """

    class Options(LayerOptions):
        part: PartSpec

        @pydantic.field_validator("part", mode="before")
        @classmethod
        def _spec(cls, part: Any) -> Any:
            if isinstance(part, (PartSpec, dict)):
                return part
            levels = part if isinstance(part, tuple) else (part,)
            if not levels:
                raise ValueError("give at least one level's part")
            return PartSpec(levels=tuple(_level_spec(level) for level in levels))

    positional = ("part",)

    def describe(self) -> str:
        return f"PartLayer[{', '.join(_show_level(p) for p in self.options.part.levels)}]"

    def template(self, scope: Any) -> None:
        s = scope.solver
        levels = self.options.part.levels
        dropped = sum(isinstance(p, int) for p in levels)
        scope.same_element("Input", "Output")

        def install(rank: int, known_input: bool) -> None:
            rank_in = rank if known_input else rank + dropped
            if rank_in < len(levels):
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: the part {self.describe()} names {len(levels)} "
                    f"level(s), but the input has rank {rank_in}.")
            din = scope.dims("Input", rank_in)
            dout = scope.dims("Output", rank_in - dropped)
            out = iter(dout)
            for level, cell in enumerate(din):
                spec = levels[level] if level < len(levels) else All
                if isinstance(spec, int):
                    length_rule(scope, cell, s.new_dim(), "Input", self._index_check(scope, spec))
                elif spec is All:
                    scope.same_dim(next(out), cell, "Output")
                elif isinstance(spec, PartIndices):
                    scope.fix(next(out), len(spec.indices), "Output")
                    for i in spec.indices:
                        length_rule(scope, cell, s.new_dim(), "Input", self._index_check(scope, i))
                else:
                    length_rule(scope, cell, next(out), "Output", self._span_count(scope, spec))

        done: list[bool] = []

        def run() -> None:
            if done:
                return
            for port, known_input in (("Input", True), ("Output", False)):
                dims = s.dims(scope.port(port))
                if dims is not None:
                    done.append(True)
                    install(len(dims), known_input)
                    return

        s.rule(run, shapes=(scope.port("Input"), scope.port("Output")))

    def _index_check(self, scope: Any, index: int) -> Callable[[int], int]:
        def check(n: int) -> int:
            if not -n <= index < n:
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: {self.describe()} takes position {index} of a "
                    f"level of size {n}.", hint="positions are 0-based; -1 is the last.")
            return 1

        return check

    def _span_count(self, scope: Any, span: PartSpan) -> Callable[[int], int]:
        def count(n: int) -> int:
            size = span.count(n)
            if size == 0:
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: {self.describe()} selects nothing of a level of "
                    f"size {n}; a net cannot hold an empty array.")
            return size

        return count


@lower_layer.register(PartLayer)
def _lower_part(layer: PartLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    axis = 0  # the axis of ``x`` that input level ``level`` is now at
    for level, spec in enumerate(layer.options.part.levels):
        length = ctx.length("Input", level)
        varying = length is not None
        n = x.shape[axis] if length is None else length
        if spec is All:
            axis += 1
        elif isinstance(spec, (int, PartIndices)):
            wanted = jnp.asarray(spec.indices if isinstance(spec, PartIndices) else (spec,), jnp.int32)
            source = jnp.where(wanted < 0, wanted + n, wanted)
            valid = ((source >= 0) & (source < n)) if varying else None
            x = _gather(x, axis, source, valid)
            if isinstance(spec, int):
                x = jnp.squeeze(x, axis)
            else:
                axis += 1
        elif not varying:
            x = x[(slice(None),) * axis + (spec.as_slice(),)]
            axis += 1
        else:
            start, count = spec.start_and_count(n)
            size = max(spec.count(k) for k in range(x.shape[axis] + 1))  # the longest it can be
            j = jnp.arange(size, dtype=jnp.int32)
            x = _gather(x, axis, start + spec.step * j, valid_mask(count, size))
            ctx.set_length("Output", axis, count)
            axis += 1
    return {"Output": x}


# -------------------------------------------------------------------- PaddingLayer
PaddingMethod = Union[float, Literal["Fixed", "Reflected", "Periodic"]]


class PaddingLayer(Layer):
    """Pads level i with ``sizes[i] = (before, after)`` elements (Wolfram's
    ``PaddingLayer[{{m1, n1}, {m2, n2}, ...}]``, levels from 0; unnamed levels are kept).

    ``padding`` (Wolfram's "Padding" option): a constant (default 0), "Fixed" (repeat the
    boundary element, NumPy's "edge"), "Reflected" (mirror without repeating the boundary,
    NumPy's "reflect") or "Periodic" (wrap around, NumPy's "wrap"). On a varying level the
    padding surrounds the example's true elements; an empty example is padded with zeros.
    """

    class Options(LayerOptions):
        sizes: tuple[tuple[pydantic.NonNegativeInt, pydantic.NonNegativeInt], ...]
        padding: PaddingMethod = 0.0

        @pydantic.field_validator("sizes", mode="before")
        @classmethod
        def _pairs(cls, sizes: Any) -> Any:
            sizes = as_tuple(sizes)
            return tuple(as_tuple(pair) for pair in sizes) if isinstance(sizes, tuple) else sizes

        @pydantic.field_validator("sizes")
        @classmethod
        def _some(cls, sizes: tuple) -> tuple:
            if not sizes:
                raise ValueError("give a (before, after) pair for at least one level")
            return sizes

    positional = ("sizes",)

    def describe(self) -> str:
        return f"PaddingLayer[{[list(p) for p in self.options.sizes]}]"

    def template(self, scope: Any) -> None:
        sizes = self.options.sizes
        names = [f"d{i}" for i in range(len(sizes))]
        cells = scope.shapes(Input=(*[f"{n}in" for n in names], "*r"),
                             Output=(*[f"{n}out" for n in names], "*r"),
                             needs=f"{self.describe()} needs an input of rank >= {len(sizes)}")
        scope.same_element("Input", "Output")
        for name, (before, after) in zip(names, sizes):
            shifted(scope, cells[f"{name}in"], cells[f"{name}out"], "Output", before + after)


_NUMPY_MODE = {"Fixed": "edge", "Reflected": "reflect", "Periodic": "wrap"}


def _padded_source(t: jax.Array, n: Any, method: str) -> jax.Array:
    """Source positions for positions ``t`` relative to the first real element of a level
    with ``n`` real elements (``n >= 1``), padded by ``method``."""
    if method == "Fixed":
        return jnp.clip(t, 0, n - 1)
    if method == "Periodic":
        return jnp.mod(t, n)
    period = jnp.maximum(2 * (n - 1), 1)  # "Reflected": a triangle wave of period 2(n-1)
    u = jnp.mod(jnp.abs(t), period)
    return jnp.where(n == 1, 0, jnp.where(u < n, u, period - u))


@lower_layer.register(PaddingLayer)
def _lower_padding(layer: PaddingLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    method = layer.options.padding
    sizes = layer.options.sizes
    varying = [ctx.length("Input", axis) is not None for axis in range(len(sizes))]
    fixed = [((0, 0) if v else pair) for v, pair in zip(varying, sizes)] + [(0, 0)] * (x.ndim - len(sizes))
    if isinstance(method, str):
        x = jnp.pad(x, fixed, mode=_NUMPY_MODE[method])
    else:
        x = jnp.pad(x, fixed, constant_values=jnp.asarray(method, x.dtype))
    for axis, (before, after) in enumerate(sizes):
        if not varying[axis]:
            continue
        n = ctx.length("Input", axis)
        t = jnp.arange(x.shape[axis] + before + after, dtype=jnp.int32) - before
        inside = (t >= 0) & (t < n)
        if isinstance(method, str):
            source, keep = _padded_source(t, jnp.maximum(n, 1), method), n > 0
        else:
            source, keep = t, inside
        out = _gather(x, axis, source, keep & (t < n + after))
        if not isinstance(method, str):  # the constant, where padding goes
            fill = (~inside) & (t < n + after)
            out = jnp.where(_along(fill, axis, out.ndim), jnp.asarray(method, x.dtype), out)
        x = out
        ctx.set_length("Output", axis, n + before + after)
    return {"Output": x}


def _along(mask: jax.Array, axis: int, rank: int) -> jax.Array:
    shape = [1] * rank
    shape[axis] = mask.shape[0]
    return mask.reshape(shape)


# ----------------------------------------------------------- AppendLayer, PrependLayer
class _JoinElement(Layer):
    """Shared template of AppendLayer and PrependLayer."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", "Element")

    def template(self, scope: Any) -> None:
        cells = scope.shapes(Input=("L", "*a"), Element=("*a",), Output=("M", "*a"),
                             needs=f"{self.type_name} needs an array of rank >= 1")
        scope.same_element("Input", "Element")
        scope.same_element("Input", "Output")
        shifted(scope, cells["L"], cells["M"], "Output", 1)


class AppendLayer(_JoinElement):
    """Appends ``Element`` (rank n-1) after the last element of ``Input`` (rank n)."""


class PrependLayer(_JoinElement):
    """Prepends ``Element`` (rank n-1) before the first element of ``Input`` (rank n)."""


@lower_layer.register(AppendLayer)
def _lower_append(layer: AppendLayer, ctx: Any, inputs: dict) -> dict:
    x, element = inputs["Input"], inputs["Element"][None]
    length = ctx.length("Input", 0)
    if length is None:
        return {"Output": jnp.concatenate([x, element])}
    out = jnp.concatenate([x, jnp.zeros_like(element)])
    at_end = _along(jnp.arange(out.shape[0], dtype=jnp.int32) == length, 0, out.ndim)
    ctx.set_length("Output", 0, length + 1)
    return {"Output": jnp.where(at_end, element, out)}


@lower_layer.register(PrependLayer)
def _lower_prepend(layer: PrependLayer, ctx: Any, inputs: dict) -> dict:
    length = ctx.length("Input", 0)
    if length is not None:
        ctx.set_length("Output", 0, length + 1)
    return {"Output": jnp.concatenate([inputs["Element"][None], inputs["Input"]])}


# ----------------------------------------------------------------- UnitVectorLayer
class UnitVectorLayer(Layer):
    """Integers in [0, n) to n-dimensional unit ("one-hot") vectors; ``n`` is inferred from
    the input's index range (``Restricted("Integer", n)``) when not given."""

    class Options(LayerOptions):
        n: SizeOrAuto = Automatic

    positional = ("n",)

    def describe(self) -> str:
        return f"UnitVectorLayer[{self.options.n}]"

    def template(self, scope: Any) -> None:
        cells = scope.shapes(Input=("*a",), Output=("*a", "n"))
        if self.options.n is not Automatic:
            scope.fix(cells["n"], self.options.n, "Output")
        scope.element("Input", ("Index", cells["n"]))
        scope.real("Output")


@lower_layer.register(UnitVectorLayer)
def _lower_unit_vector(layer: UnitVectorLayer, ctx: Any, inputs: dict) -> dict:
    n = ctx.shape("Output")[-1]
    return {"Output": jax.nn.one_hot(inputs["Input"], n, dtype=jnp.float32)}


# ------------------------------------------------------------------- OrderingLayer
def _nonzero(n: Any) -> Any:
    if isinstance(n, int) and n == 0:
        raise ValueError("the number of positions cannot be 0 (use All for all of them)")
    return n


class OrderingLayer(Layer):
    """Wolfram's ``Ordering``: the positions (0-based) that sort the input vector ascending
    (stable: equal values keep their order). ``n``: All (every position), k (the positions
    of the k smallest elements) or -k (the last k of the ordering: the k largest, still in
    ascending order). On a varying input only the real elements are ordered, and k > the
    true length gives as many positions as there are elements."""

    class Options(LayerOptions):
        n: Union[AllT, int] = All

        @pydantic.field_validator("n")
        @classmethod
        def _not_zero(cls, n: Any) -> Any:
            return _nonzero(n)

    positional = ("n",)

    def describe(self) -> str:
        return f"OrderingLayer[{self.options.n}]"

    def template(self, scope: Any) -> None:
        cells = scope.shapes(Input=("l",), Output=("k",))
        scope.element("Output", "Integer")
        n = self.options.n
        if n is All:
            scope.same_dim(cells["k"], cells["l"], "Output")
            return

        def count(size: int) -> int:
            if abs(n) > size:
                raise ShapeMismatchError(
                    f"{scope.where('Input')}: {self.describe()} asks for {abs(n)} positions "
                    f"of a vector of {size} elements.")
            return abs(n)

        length_rule(scope, cells["l"], cells["k"], "Output", count)


@lower_layer.register(OrderingLayer)
def _lower_ordering(layer: OrderingLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    length = ctx.length("Input", 0)
    if length is not None:  # padding sorts last
        top = jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).max
        x = jnp.where(jnp.arange(x.shape[0], dtype=jnp.int32) < length, x, jnp.asarray(top, x.dtype))
    order = jnp.argsort(x, stable=True).astype(jnp.int32)
    n = layer.options.n
    if n is All:
        return {"Output": order}
    k = abs(n)
    if length is None:
        return {"Output": order[:k] if n > 0 else order[order.shape[0] - k:]}
    size = min(k, x.shape[0])
    count = jnp.minimum(k, length)
    j = jnp.arange(size, dtype=jnp.int32)
    source = j if n > 0 else length - count + j
    ctx.set_length("Output", 0, count)
    return {"Output": _gather(order, 0, source, valid_mask(count, size))}
