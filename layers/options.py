"""Option types shared by several layers (pydantic-validated)."""
from __future__ import annotations

from typing import Annotated, Any, Iterable, Mapping, Union

import numpy as np
import pydantic

from ..shapes import Automatic
from ..shapes.dims import _AutomaticType


class _AllType:
    """The user-facing marker for "all levels" / "all parts" (Wolfram's ``All``)."""

    _instance: "_AllType | None" = None

    def __new__(cls) -> "_AllType":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "All"


All = _AllType()


class _InheritedType:
    """ReshapeLayer marker: keep the input's dimension at this position."""

    _instance: "_InheritedType | None" = None

    def __new__(cls) -> "_InheritedType":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Inherited"


Inherited = _InheritedType()


def _is(marker: object) -> Any:
    def check(value: object) -> object:
        if value is marker or value == repr(marker):
            return marker
        raise ValueError(f"expected {marker!r}")

    return pydantic.BeforeValidator(check)


def as_tuple(value: Any) -> Any:
    """Before-validator of tuple options: any other iterable (a list, a range) as a tuple."""
    skip = (tuple, str, bytes, Mapping, pydantic.BaseModel)
    if isinstance(value, Iterable) and not isinstance(value, skip):
        return tuple(value)
    return value


AutomaticT = Annotated[_AutomaticType, _is(Automatic)]
AllT = Annotated[_AllType, _is(All)]
InheritedT = Annotated[_InheritedType, _is(Inherited)]
MAX_SIZE = 2**31 - 1
"""The largest size of one dimension (JAX indexes with int32)."""


def _whole_number(value: Any) -> Any:
    """Before-validator of sizes: an int (a NumPy integer too); a bool or a float is refused,
    so ``LinearLayer(True)`` or ``LinearLayer(8.0)`` is an error, not size 1 or 8."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"a size must be an int, not a bool ({value!r})")
    if isinstance(value, (float, np.floating)):
        raise ValueError(f"a size must be an int, not a float ({value!r})")
    if isinstance(value, np.integer):
        return int(value)
    return value


Size = Annotated[int, pydantic.BeforeValidator(_whole_number), pydantic.Field(ge=0, le=MAX_SIZE)]
PositiveSize = Annotated[int, pydantic.BeforeValidator(_whole_number), pydantic.Field(ge=1, le=MAX_SIZE)]
SizeOrAuto = Union[Size, AutomaticT]
Dims = Union[Size, tuple[Size, ...], AutomaticT]
