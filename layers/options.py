"""Option types shared by several layers (pydantic-validated)."""
from __future__ import annotations

from typing import Annotated, Any, Iterable, Mapping, Union

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
Size = pydantic.NonNegativeInt
SizeOrAuto = Union[Size, AutomaticT]
Dims = Union[Size, tuple[Size, ...], AutomaticT]
