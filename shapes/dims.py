"""Dimensions: the sum type every shape in netgraph is built from.

A solved dimension is exactly one of

* ``Known(n)``        a fixed size ``n >= 0``;
* ``Auto(id)``        not known yet: inference must solve it before arrays can be initialised;
* ``Varying(symbol)`` a length that differs from example to example. Two varying dimensions
  are the same length only when they carry the same symbol.

User specifications spell these as ``n``, :data:`Automatic` and ``"Varying"``; the strings are
parsed at the user boundary (:mod:`shapes.spec`) and never travel inside the IR.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Known:
    """A fixed size."""

    size: int

    def __str__(self) -> str:
        return str(self.size)


@dataclass(frozen=True)
class Auto:
    """A size that inference has not determined (yet)."""

    id: int

    def __str__(self) -> str:
        return "Automatic"


@dataclass(frozen=True)
class Varying:
    """A per-example length named by ``symbol``."""

    symbol: str

    def __str__(self) -> str:
        return '"Varying"'


Dim = Union[Known, Auto, Varying]


class _AutomaticType:
    """The user-facing marker for "infer this" (Wolfram's ``Automatic``)."""

    _instance: "_AutomaticType | None" = None

    def __new__(cls) -> "_AutomaticType":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Automatic"

    def __reduce__(self) -> str:
        return "Automatic"


Automatic = _AutomaticType()


def dim_to_user(dim: Dim) -> object:
    """The user-spec spelling of a solved dimension: ``n``, ``"Varying"`` or ``Automatic``."""
    if isinstance(dim, Known):
        return dim.size
    if isinstance(dim, Varying):
        return "Varying"
    return Automatic
