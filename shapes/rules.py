"""Reusable propagators: shape rules that a template of shared variables cannot say.

Each function installs one rule on a :class:`~shapes.solver.Solver`. The layer passes a
``where`` description (its path and port) used in error messages. The rules are data
(:meth:`Solver.propagator`: a module-level function and its arguments, cell ids offset by
``base``), so that the template of a layer repeated many times is copied, not re-run.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from ..errors import ShapeMismatchError
from .solver import Origin, Solver, Sym, Where


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
    solver.propagator(_product, (factors, target, origin, where, varying_hint),
                      dims=(target,), shapes=(factors,),
                      default=_vector_default if default_vector else None,
                      provenance=(origin, where))


def _product(solver: Solver, base: int, factors: int, target: int, origin: Origin,
             where: Where, varying_hint: str) -> None:
    dims = solver.dims(factors + base)
    if dims is None:
        return
    target += base
    values = solver.dim_values(dims)
    goal = solver.dim(target)
    if type(goal) is Sym or Sym in map(type, values):
        raise ShapeMismatchError(
            f"{solver.text(where)} cannot take a varying-length dimension here.", hint=varying_hint
        )
    if None not in values:
        size = math.prod(values)
        if goal != size:
            solver.bind_dim(target, size, origin, where)
        return
    unknown = [d for d, v in zip(dims, values) if v is None]
    if len(unknown) == 1 and isinstance(goal, int):
        rest = math.prod(v for v in values if v is not None)
        if rest == 0:
            return
        if goal % rest:
            raise ShapeMismatchError(
                f"{solver.text(where)}: {goal} elements cannot be split with known sizes "
                f"{[v for v in values if v is not None]} (product {rest}).",
                hint="check the sizes on both sides of this layer.",
            )
        solver.bind_dim(unknown[0], goal // rest, origin, where)


def _vector_default(solver: Solver, base: int, factors: int, target: int, origin: Origin,
                    where: Where, varying_hint: str) -> None:
    factors, target = factors + base, target + base
    if solver.dims(factors) is None and isinstance(solver.dim(target), int):
        solver.set_rank(factors, 1, origin, where)


def total(solver: Solver, parts: Sequence[int], result: int, origin: Origin, where: Where) -> None:
    """``result = sum(parts)``; any varying part makes the result a new varying length."""
    parts = tuple(parts)
    solver.propagator(_total, (parts, result, origin, where), dims=(*parts, result),
                      provenance=(origin, where))


def _total(solver: Solver, base: int, parts: tuple[int, ...], result: int, origin: Origin,
           where: Where) -> None:
    parts, result = tuple(d + base for d in parts), result + base
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
                f"{solver.text(where)}: the known parts already have {rest} elements, more than "
                f"the {whole} required.",
            )
        solver.bind_dim(unknown[0], whole - rest, origin, where)


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
    solver.propagator(_mapped, (source, result, forward, origin, where, same_when_varying),
                      dims=(source,), provenance=(origin, where))


def _mapped(solver: Solver, base: int, source: int, result: int, forward: Callable[[int], int],
            origin: Origin, where: Where, same_when_varying: bool) -> None:
    source, result = source + base, result + base
    value = solver.dim(source)
    if isinstance(value, int):
        size = forward(value)
        if size < 1:
            raise ShapeMismatchError(
                f"{solver.text(where)}: an input of size {value} gives an empty or negative "
                f"output size ({size}).",
                hint="use a smaller kernel, more padding or a longer input.",
            )
        solver.bind_dim(result, size, origin, where)
    elif isinstance(value, Sym):
        if same_when_varying:
            solver.unify_dims(result, source, where)
        elif not isinstance(solver.dim(result), Sym):
            solver.unify_dims(result, solver.new_varying(origin), where)


def broadcast(
    solver: Solver, inputs: Sequence[int], result: int, origin: Origin, where: Where
) -> None:
    """One axis of size-1 broadcasting: the result is the common size of the inputs, an input
    of size 1 stretching. Inputs still unknown at a fixed point are taken equal to the result.
    """
    inputs = tuple(inputs)
    solver.propagator(_broadcast, (inputs, result, origin, where), dims=(*inputs, result),
                      default=_broadcast_default, provenance=(origin, where))


def _broadcast(solver: Solver, base: int, inputs: tuple[int, ...], result: int, origin: Origin,
               where: Where) -> None:
    inputs, result = tuple(d + base for d in inputs), result + base
    values = [solver.dim(d) for d in inputs]
    if all(v == 1 for v in values):
        solver.bind_dim(result, 1, origin, where)
        return
    for d, v in zip(inputs, values):
        if v != 1 and v is not None:
            solver.unify_dims(result, d, where)
    # the unknown inputs are decided by the default below


def _broadcast_default(solver: Solver, base: int, inputs: tuple[int, ...], result: int,
                       origin: Origin, where: Where) -> None:
    for d in inputs:
        if solver.dim(d + base) is None:
            solver.unify_dims(result + base, d + base, where)
            return


__all__ = ["broadcast", "mapped", "product", "total"]
