"""Dimension types, element types, user shape specs and the constraint solver."""
from .dims import Auto, Automatic, Dim, Known, Varying, dim_to_user
from .elements import Element, Index, Integer, Real, Restricted
from .errors import (
    AmbiguousShapeError,
    CycleError,
    ElementTypeError,
    InputDataError,
    NetConnectionError,
    NetGraphError,
    PartSpecError,
    SerializationError,
    ShapeMismatchError,
    SpecificationError,
    UninitializedError,
)
from .solver import Origin, Solver, Sym
from .spec import PortSpec, parse_port_spec

__all__ = [
    "AmbiguousShapeError", "Auto", "Automatic", "CycleError", "Dim", "Element",
    "ElementTypeError", "Index", "InputDataError", "Integer", "Known", "NetConnectionError",
    "NetGraphError", "Origin", "PartSpecError", "PortSpec", "SerializationError", "Real", "Restricted",
    "ShapeMismatchError", "Solver", "SpecificationError", "Sym", "UninitializedError",
    "Varying", "dim_to_user", "parse_port_spec",
]
