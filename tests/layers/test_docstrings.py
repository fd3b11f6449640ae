"""``help(layer class)`` shows the options themselves (defaults, choices, positional ones),
the arrays, and the family's port/shape table - for every registered layer class."""
from __future__ import annotations

import pydoc

import pytest

import netgraph as ng
from netgraph.layers.base import Layer


@pytest.mark.parametrize("name", sorted(Layer.registry))
def test_every_layer_class_documents_its_options_arrays_and_shapes(name):
    cls = Layer.registry[name]
    doc = cls.__doc__
    for option, field in cls.Options.model_fields.items():
        assert (option if field.is_required() else f"{option}={field.default!r}") in doc
    for array in cls.arrays_declared:
        assert f"    {array}: " in doc
    module_doc = pydoc.sys.modules[cls.__module__].__doc__
    if module_doc:
        assert module_doc.strip().splitlines()[0] in doc


def test_help_of_convolution_shows_its_options_and_table():
    text = pydoc.render_doc(ng.ConvolutionLayer, renderer=pydoc.plaintext)
    assert "see the module docstring" not in text
    for expected in ("channels=Automatic  (positional 1)", "kernel  (required; positional 2)",
                     "padding=0", "interleaving=False", "Biases=None removes it",
                     "Input   c x s1 [x s2]"):
        assert expected in text
    assert "'Max' | 'Mean' | 'Total'" in ng.PoolingLayer.__doc__
