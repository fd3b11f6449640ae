"""ThreadingLayer and TotalLayer: combine several arrays element by element.

Shape legend: all ports have one rank r; ``Input1 .. Inputk`` and ``Output``.

========= ================= ===================================================
port      shape             notes
========= ================= ===================================================
Input<i>  s1 x ... x sr     with broadcasting, a size-1 axis stretches
Output    s1 x ... x sr     the common (broadcast) shape
========= ================= ===================================================

``ThreadingLayer(function, broadcasting=True, inputs=None)``: ``function`` is one of
Plus, Times, Subtract, Divide, Power, Max, Min, or a callable of k JAX arrays. ``inputs`` is
the number of inputs; left None, a NetGraph sets it from the connections (2 if unconnected).
``TotalLayer(inputs=None)`` sums arrays of equal shape.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, Union

import jax
import jax.numpy as jnp
import pydantic

from ..shapes import rules

from .base import Layer, LayerOptions
from .elementwise import call_user_function
from .lowering import lower_layer

_BINARY = ("Subtract", "Divide", "Power")
THREADING_FUNCTIONS: dict[str, Callable[..., jax.Array]] = {
    "Plus": lambda *xs: functools.reduce(jnp.add, xs),
    "Times": lambda *xs: functools.reduce(jnp.multiply, xs),
    "Max": lambda *xs: functools.reduce(jnp.maximum, xs),
    "Min": lambda *xs: functools.reduce(jnp.minimum, xs),
    "Subtract": jnp.subtract,
    "Divide": jnp.divide,
    "Power": jnp.power,
}


class VariadicLayer(Layer):
    """A layer with inputs ``Input1 .. Inputk``; k is the ``inputs`` option."""

    @property
    def variadic(self) -> bool:
        return self.options.inputs is None

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f"Input{i + 1}" for i in range(self.options.inputs or 2))

    def with_input_count(self, count: int) -> "VariadicLayer":
        return self.evolve(options={"inputs": count})  # type: ignore[return-value]


def thread_template(scope: Any, names: Sequence[str], broadcasting: bool) -> None:
    """All ports share one rank; sizes broadcast (size-1 axes stretch) or are equal."""
    s = scope.solver
    scope.real(*names, "Output")
    for name in names:
        scope.same_element(name, "Output", at=name)
    if not broadcasting:
        for name in names:
            s.unify_shapes(scope.port("Output"), scope.port(name), scope.where(name))
        return

    scope.when_ranked((*names, "Output"), functools.partial(_broadcast_axes, tuple(names)))


def _broadcast_axes(names: tuple[str, ...], scope: Any, rank: int) -> None:
    """Once the rank is known: every port gets it, and each axis broadcasts."""
    s = scope.solver
    for name in (*names, "Output"):
        scope.dims(name, rank)
    out = s.dims(scope.port("Output"))
    for axis in range(rank):
        rules.broadcast(s, [s.dims(scope.port(n))[axis] for n in names], out[axis],
                        scope.origin("Output"), scope.where_dim("Output", axis))


def thread_arrays(function: Callable[..., jax.Array], xs: Sequence[jax.Array]) -> jax.Array:
    shape = jnp.broadcast_shapes(*(x.shape for x in xs))
    return function(*(jnp.broadcast_to(x, shape) for x in xs))


def _check_function(value: object) -> object:
    if callable(value) or value in THREADING_FUNCTIONS:
        return value
    raise ValueError(
        f"unknown function {value!r}; expected a callable or one of: "
        + ", ".join(THREADING_FUNCTIONS)
    )


class ThreadingLayer(VariadicLayer):
    """Combines its inputs element by element with ``function``."""

    class Options(LayerOptions):
        function: pydantic.SkipValidation[Union[str, Callable]]
        broadcasting: bool = True
        inputs: Union[pydantic.PositiveInt, None] = None

        @pydantic.field_validator("function", mode="before")
        @classmethod
        def _known(cls, value: object) -> object:
            return _check_function(value)

        @pydantic.model_validator(mode="after")
        def _arity(self) -> "ThreadingLayer.Options":
            if self.function in _BINARY and self.inputs not in (None, 2):
                raise ValueError(f"{self.function} takes exactly 2 inputs, not {self.inputs}")
            return self

    positional = ("function", "broadcasting")

    def describe(self) -> str:
        f = self.options.function
        return f"ThreadingLayer[{f if isinstance(f, str) else getattr(f, '__name__', 'f')}]"

    def template(self, scope: Any) -> None:
        thread_template(scope, self.input_names, self.options.broadcasting)


class TotalLayer(VariadicLayer):
    """Sums its inputs, which all have the same shape."""

    class Options(LayerOptions):
        inputs: Union[pydantic.PositiveInt, None] = None

    def template(self, scope: Any) -> None:
        thread_template(scope, self.input_names, broadcasting=False)


@lower_layer.register(ThreadingLayer)
def _lower_threading(layer: ThreadingLayer, ctx: Any, inputs: dict) -> dict:
    f = layer.options.function
    xs = [inputs[n] for n in layer.input_names]
    if isinstance(f, str):
        return {"Output": thread_arrays(THREADING_FUNCTIONS[f], xs)}
    return {"Output": thread_arrays(lambda *args: call_user_function(layer, ctx, f, *args), xs)}


@lower_layer.register(TotalLayer)
def _lower_total(layer: TotalLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": thread_arrays(THREADING_FUNCTIONS["Plus"], [inputs[n] for n in layer.input_names])}
