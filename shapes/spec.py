"""Parsing of user port specifications (the only place where ``"Varying"`` is a string).

Accepted forms (Wolfram's, in Python spelling)::

    n                          a vector of length n
    (n1, n2, ...)              an array; each entry an int, "Varying" or Automatic
    "Varying"                  a sequence of scalars of varying length
    ("Varying", n2, ...)       a sequence of n2 x ... arrays
    Automatic                  any array, to be inferred
    "Real" | "Integer"         a scalar of that element type
    Restricted("Integer", n)   a scalar index 0 <= i < n
    (..., "Integer")           a trailing element type after the dimensions
    NetEncoder(...), NetDecoder(...)   a port coder: the type it produces or reads
                               (any object with a ``port_spec()`` method giving one of the
                               forms above), kept on the spec as ``coder``
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .dims import Automatic, _AutomaticType
from .elements import Restricted
from ..errors import SpecificationError

DimSpec = Union[int, str, _AutomaticType]
ElemSpec = Union[str, Restricted, None]

_ELEMENT_NAMES = ("Real", "Integer")


@dataclass(frozen=True)
class PortSpec:
    """A parsed user specification: ``dims`` is None when the rank is left to inference."""

    dims: tuple[DimSpec, ...] | None
    element: ElemSpec = None
    coder: object = None
    """The NetEncoder / NetDecoder this spec came from (None for a plain shape)."""

    def to_user(self) -> object:
        """The plain-data spelling of this spec (inverse of :func:`parse_port_spec`); the
        coder itself for a coded port."""
        if self.coder is not None:
            return self.coder
        if self.dims is None:
            return Automatic if self.element is None else self.element
        body = tuple(self.dims) + ((self.element,) if self.element is not None else ())
        return body


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_dim(entry: object, spec: object, where: str) -> DimSpec:
    if _is_int(entry):
        if entry < 0:
            raise SpecificationError(
                f"{where}: dimension sizes must be >= 0; found {entry} in {spec!r}."
            )
        return int(entry)
    if entry == "Varying" or entry is Automatic:
        return entry
    if hasattr(entry, "__index__") and not isinstance(entry, (bool, str)):
        return _parse_dim(int(entry), spec, where)
    raise SpecificationError(
        f"{where}: {entry!r} is not a valid dimension in the shape {spec!r}.",
        hint='each dimension is an int, "Varying" or Automatic, e.g. ("Varying", 8).',
    )


def _is_element(entry: object) -> bool:
    return isinstance(entry, Restricted) or entry in _ELEMENT_NAMES


def parse_port_spec(spec: object, where: str = "port") -> PortSpec:
    """Parse a user port specification; ``where`` names the port for error messages."""
    if isinstance(spec, PortSpec):
        return spec
    if callable(getattr(spec, "port_spec", None)):  # a NetEncoder / NetDecoder
        plain = parse_port_spec(spec.port_spec(), where)
        return PortSpec(plain.dims, plain.element, spec)
    if spec is Automatic or spec is None:
        return PortSpec(None)
    if _is_element(spec):
        return PortSpec((), spec)
    if spec == "Varying":
        return PortSpec(("Varying",))
    if isinstance(spec, (tuple, list)):
        entries = list(spec)
        element: ElemSpec = None
        if entries and _is_element(entries[-1]):
            element = entries.pop()
        dims = tuple(_parse_dim(e, spec, where) for e in entries)
        if any(d == "Varying" for d in dims[1:]):
            raise SpecificationError(
                f'{where}: only the first dimension can be "Varying"; found {spec!r}.'
            )
        return PortSpec(dims, element)
    if isinstance(spec, str):
        raise SpecificationError(
            f"{where}: {spec!r} is not a valid port specification.",
            hint='use n, (n1, n2, ...), "Varying", ("Varying", n, ...), Automatic, "Real", '
            '"Integer" or Restricted("Integer", n).',
        )
    return PortSpec((_parse_dim(spec, spec, where),))
