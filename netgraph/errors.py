"""The one exception hierarchy of netgraph.

Every message says what went wrong, where (layer path and port), expected versus found with
the origin of each, and a hint. Errors are raised at declaration, inference or call time,
before anything is traced by JAX.
"""
from __future__ import annotations


class NetGraphError(Exception):
    """Root of every error netgraph raises for a user mistake."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))


class SpecificationError(NetGraphError, ValueError):
    """A bad option value, unknown option, or malformed shape specification."""


class NetConnectionError(NetGraphError, ValueError):
    """A connection names an unknown layer or port, or feeds one input twice."""


class CycleError(NetConnectionError):
    """The connections of a NetGraph form a cycle."""


class ShapeMismatchError(NetGraphError, ValueError):
    """Two constraints disagree on a size or a rank."""


class ElementTypeError(ShapeMismatchError):
    """Two constraints disagree on a port's element type (Real, Integer, index range)."""


class AmbiguousShapeError(NetGraphError, ValueError):
    """A shape needed for initialisation or evaluation could not be inferred."""


class UninitializedError(NetGraphError, RuntimeError):
    """A net with uninitialised arrays was evaluated."""


class InputDataError(NetGraphError, ValueError):
    """Data passed to a net at call time does not fit its input ports."""


class SerializationError(NetGraphError, ValueError):
    """A net cannot be saved (it holds a Python function), or a file cannot be loaded."""


class PartSpecError(NetGraphError, KeyError):
    """NetExtract / NetReplacePart was given a part that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)
