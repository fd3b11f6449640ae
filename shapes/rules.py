"""Reusable propagators: shape rules that a template of shared variables cannot say.

Each function installs one rule on a :class:`~shapes.solver.Solver`. The layer passes a
``where`` description (its path and port) used in error messages.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from ..errors import ShapeMismatchError
from .solver import Origin, Solver, Sym, Where, _text


def product(
    solver: Solver,
    factors: int,
    target: int,
    origin: Origin,
    where: Where,
    *,
    varying_hint: str,
    default_vector: bool = False,
) -> None:
    """``target`` (a dim) is the product of the dims of shape ``factors``.

    Solves forwards (all factors known) and backwards (one factor unknown). A varying factor
    is an error whose hint is ``varying_hint``. With ``default_vector``, a shape whose rank is
    still unknown at a fixed point becomes a vector (as LinearLayer's input does).
    """

    def run() -> None:
        dims = solver.dims(factors)
        if dims is None:
            return
        values = [solver.dim(d) for d in dims]
        if any(isinstance(v, Sym) for v in values) or isinstance(solver.dim(target), Sym):
            raise ShapeMismatchError(
                f"{_text(where)} cannot take a varying-length dimension here.", hint=varying_hint
            )
        unknown = [d for d, v in zip(dims, values) if v is None]
        if not unknown:
            solver.bind_dim(target, math.prod(values), origin, where)
            return
        total = solver.dim(target)
        if len(unknown) == 1 and isinstance(total, int):
            rest = math.prod(v for v in values if v is not None)
            if rest == 0:
                return
            if total % rest:
                raise ShapeMismatchError(
                    f"{_text(where)}: {total} elements cannot be split with known sizes "
                    f"{[v for v in values if v is not None]} (product {rest}).",
                    hint="check the sizes on both sides of this layer.",
                )
            solver.bind_dim(unknown[0], total // rest, origin, where)

    def default() -> None:
        if solver.dims(factors) is None and isinstance(solver.dim(target), int):
            solver.set_rank(factors, 1, origin, where)

    solver.rule(
        run, dims=(target,), shapes=(factors,), default=default if default_vector else None
    )


def total(solver: Solver, parts: Sequence[int], result: int, origin: Origin, where: Where) -> None:
    """``result = sum(parts)``; any varying part makes the result a new varying length."""

    def run() -> None:
        values = [solver.dim(d) for d in parts]
        if any(isinstance(v, Sym) for v in values):
            if not isinstance(solver.dim(result), Sym):
                solver.unify_dims(result, solver.new_varying(origin), where)
            return
        unknown = [d for d, v in zip(parts, values) if v is None]
        if not unknown:
            solver.bind_dim(result, sum(values), origin, where)
            return
        whole = solver.dim(result)
        if len(unknown) == 1 and isinstance(whole, int):
            rest = sum(v for v in values if v is not None)
            if rest > whole:
                raise ShapeMismatchError(
                    f"{_text(where)}: the known parts already have {rest} elements, more than "
                    f"the {whole} required.",
                )
            solver.bind_dim(unknown[0], whole - rest, origin, where)

    solver.rule(run, dims=(*parts, result))


def mapped(
    solver: Solver,
    source: int,
    result: int,
    forward: Callable[[int], int],
    origin: Origin,
    where: Where,
    *,
    same_when_varying: bool = False,
) -> None:
    """``result = forward(source)`` for known sizes; a varying source gives a varying result
    (the same symbol when ``same_when_varying``, else a new one)."""

    def run() -> None:
        value = solver.dim(source)
        if isinstance(value, int):
            size = forward(value)
            if size < 1:
                raise ShapeMismatchError(
                    f"{_text(where)}: an input of size {value} gives an empty or negative "
                    f"output size ({size}).",
                    hint="use a smaller kernel, more padding or a longer input.",
                )
            solver.bind_dim(result, size, origin, where)
        elif isinstance(value, Sym):
            if same_when_varying:
                solver.unify_dims(result, source, where)
            elif not isinstance(solver.dim(result), Sym):
                solver.unify_dims(result, solver.new_varying(origin), where)

    solver.rule(run, dims=(source,))


def broadcast(
    solver: Solver, inputs: Sequence[int], result: int, origin: Origin, where: Where
) -> None:
    """One axis of size-1 broadcasting: the result is the common size of the inputs, an input
    of size 1 stretching. Inputs still unknown at a fixed point are taken equal to the result.
    """

    def run() -> None:
        values = [solver.dim(d) for d in inputs]
        wide = [d for d, v in zip(inputs, values) if v != 1]
        if all(v == 1 for v in values):
            solver.bind_dim(result, 1, origin, where)
            return
        known = [d for d, v in zip(wide, values) if v is not None]
        for d in known:
            solver.unify_dims(result, d, where)
        # the unknown inputs are decided by the default below

    def default() -> None:
        for d in inputs:
            if solver.dim(d) is None:
                solver.unify_dims(result, d, where)
                return

    solver.rule(run, dims=(*inputs, result), default=default)


__all__ = ["broadcast", "mapped", "product", "total"]
