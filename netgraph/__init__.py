"""netgraph: declarative neural-network graphs with shape inference, lowered to JAX.

Everything a user needs is re-exported here: ``import netgraph as ng``.
"""
from layers import *  # noqa: F401,F403 - the layer library is part of the public API
from layers import __all__ as _layer_names
from layers.base import Layer, NetArray
from shapes import (
    AmbiguousShapeError,
    Automatic,
    CycleError,
    ElementTypeError,
    InputDataError,
    NetConnectionError,
    NetGraphError,
    PartSpecError,
    SerializationError,
    Restricted,
    ShapeMismatchError,
    SpecificationError,
    UninitializedError,
)

from . import keras
from .evaluate import compile_stats, evaluate
from .extract import NetExtract, NetReplacePart
from .graph import NetChain, NetGraph, NetPort
from . import plot as _plot
from .information import Information
from .initialize import NetInitialize
from .surgery import NetDrop, NetFlatten, NetTake
from .compiler import lower, params_of, with_params
from .serialize import from_config, load, save, to_config

Layer.services.update(evaluate=evaluate, plot=_plot.plot)

__all__ = [
    *_layer_names,
    "AmbiguousShapeError", "Automatic", "CycleError", "Information", "ElementTypeError", "InputDataError",
    "NetChain", "NetConnectionError", "NetExtract", "NetGraph", "NetGraphError",
    "NetDrop", "NetFlatten", "NetInitialize", "NetPort", "NetReplacePart", "NetTake",
    "PartSpecError", "Restricted",
    "SerializationError", "from_config", "load", "save", "to_config",
    "ShapeMismatchError", "SpecificationError", "UninitializedError", "compile_stats",
    "evaluate", "keras", "lower", "params_of", "with_params", "NetArray", "Layer",
]
