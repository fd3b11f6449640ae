"""The layer library: one module per layer family, each with its shape template and lowering."""
from .base import ArraySpec, Layer, LayerOptions
from .elementwise import ElementwiseLayer
from .linear import LinearLayer
from .options import All, Inherited
from .threading import ThreadingLayer, TotalLayer

__all__ = [
    "All", "ArraySpec", "ElementwiseLayer", "Inherited", "Layer", "LayerOptions", "LinearLayer",
    "ThreadingLayer", "TotalLayer",
]
