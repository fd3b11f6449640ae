"""Dimension types, element types, user shape specs and the constraint solver."""
from .dims import Auto, Automatic, Dim, Known, Varying, dim_to_user
from .elements import Element, Index, Integer, Real, Restricted
from .solver import Origin, Solver, Sym
from .spec import PortSpec, parse_port_spec

__all__ = [
    "Auto", "Automatic", "Dim", "Element", "Index", "Integer", "Known", "Origin", "PortSpec",
    "Real", "Restricted", "Solver", "Sym", "Varying", "dim_to_user", "parse_port_spec",
]
