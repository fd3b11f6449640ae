"""netgraph: declarative neural-network graphs with shape inference, lowered to JAX.

Everything a user needs is re-exported here: ``import netgraph as ng``.
"""
import os as _os

if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "layers")):
    # A source checkout used without installing: the repository's layers/ and shapes/
    # folders, beside this one, are netgraph.layers and netgraph.shapes (as installed).
    __path__.append(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
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
from .layers import *  # noqa: F401,F403 - the layer library is part of the public API
from .layers import __all__ as _layer_names
from .layers.base import Layer, NetArray
from .layers.tree import iter_layers, map_layers
from .shapes import Automatic, Restricted

from . import keras
from .evaluate import compile_stats, evaluate
from .extract import NetExtract, NetReplacePart
from .coders import NetDecoder, NetEncoder
from .artifact import export, exported_signature, load_exported
from .graph import NetChain, NetGraph, NetPort
from .ir import GraphIR, PortRef, walk
from .information import Information
from .initialize import NetInitialize
from .surgery import NetDrop, NetFlatten, NetTake
from .compiler import lower, params_of, with_params
from .serialize import from_config, load, save, to_config
from .train import NetTrain, TrainResult, TrainingEvent
from . import distributed

__all__ = [
    *_layer_names,
    "AmbiguousShapeError", "Automatic", "CycleError", "Information", "ElementTypeError", "InputDataError",
    "NetChain", "NetConnectionError", "NetDecoder", "NetEncoder", "NetExtract", "NetGraph", "NetGraphError",
    "NetDrop", "NetFlatten", "NetInitialize", "NetPort", "NetReplacePart", "NetTake",
    "PartSpecError", "Restricted",
    "SerializationError", "from_config", "load", "save", "to_config",
    "ShapeMismatchError", "SpecificationError", "UninitializedError", "compile_stats",
    "evaluate", "export", "exported_signature", "load_exported", "keras", "GraphIR", "PortRef", "walk", "iter_layers", "map_layers", "NetTrain", "TrainResult", "TrainingEvent", "lower", "params_of", "with_params", "NetArray", "Layer",
    "distributed",
]
