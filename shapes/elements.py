"""Element types of port values: real numbers, integers, and integers restricted to a range.

``Restricted("Integer", n)`` (Wolfram's spelling) is the type of index inputs: integers in
``[0, n)`` (netgraph is 0-based, like NumPy, where Wolfram counts from 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .dims import Dim, Known


@dataclass(frozen=True)
class Real:
    """Real numbers (float32 by default)."""

    def __str__(self) -> str:
        return "Real"


@dataclass(frozen=True)
class Integer:
    """Integers of any value."""

    def __str__(self) -> str:
        return "Integer"


@dataclass(frozen=True)
class Index:
    """Integers in ``[0, n)``; ``n`` is a dimension so that inference can solve it."""

    n: Dim

    def __str__(self) -> str:
        bound = self.n.size if isinstance(self.n, Known) else "Automatic"
        return f"Integer in [0, {bound})"


Element = Union[Real, Integer, Index]


@dataclass(frozen=True, repr=False)
class Restricted:
    """User spec for a bounded integer port: ``Restricted("Integer", n)`` is ``0 <= x < n``."""

    kind: str
    n: int

    def __repr__(self) -> str:
        return f"Restricted({self.kind!r}, {self.n})"

    def __post_init__(self) -> None:
        from ..errors import SpecificationError

        if self.kind != "Integer":
            raise SpecificationError(
                f'Restricted supports only "Integer"; found {self.kind!r}.',
                hint='write Restricted("Integer", n) for indices 0 <= i < n.',
            )
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise SpecificationError(
                f"Restricted(\"Integer\", n) needs a positive integer n; found {self.n!r}."
            )
