"""A solved port type: dimensions plus element type."""
from __future__ import annotations

from dataclasses import dataclass

from .dims import Auto, Dim, Known, Varying, dim_to_user, Automatic
from .elements import Element, Index, Integer, Real


@dataclass(frozen=True)
class PortType:
    """``dims`` is None while the rank is unknown."""

    dims: tuple[Dim, ...] | None
    element: Element = Real()

    @property
    def rank(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    def to_user(self) -> object:
        """The user-spec spelling: ``(3,)``, ``("Varying", 3)``, ``Automatic``; an integer
        port ends with its element type: ``("Varying", Restricted("Integer", 10))``."""
        if self.dims is None:
            return Automatic
        dims = tuple(dim_to_user(d) for d in self.dims)
        if isinstance(self.element, Index):
            from .elements import Restricted

            bound = self.element.n
            return dims + ((Restricted("Integer", bound.size) if isinstance(bound, Known) else "Integer"),)
        if isinstance(self.element, Integer):
            return dims + ("Integer",)
        return dims

    def __str__(self) -> str:
        if self.dims is None:
            shape = "array of unknown rank"
        elif not self.dims:
            shape = "scalar"
        else:
            shape = "{" + ", ".join(str(d) for d in self.dims) + "}"
        if isinstance(self.element, Real):
            return shape
        return f"{shape} of {self.element}"


__all__ = ["PortType", "Auto", "Known", "Varying", "Index", "Integer", "Real"]
