"""``Scope.shapes``: templates declared as patterns with dimension and rank variables,
solved in both directions."""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import pytest

import netgraph as ng
from netgraph.layers.base import ArraySpec, Layer, LayerOptions
from netgraph.layers.lowering import lower_layer


class PatternProbeLayer(Layer):
    """Output = Input with its last axis ``n`` replaced by ``m`` (Weights m x n)."""

    class Options(LayerOptions):
        pass

    arrays_declared = {"Weights": ArraySpec("weights")}

    def template(self, scope: Any) -> None:
        scope.shapes(Input=("*a", "n"), Output=("*a", "m"), Weights=("m", "n"))
        scope.real("Input", "Output")


@lower_layer.register(PatternProbeLayer)
def _lower_probe(layer: PatternProbeLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": jnp.einsum("...n,mn->...m", inputs["Input"], ctx.params["Weights"])}


def test_forward_from_the_input():
    layer = PatternProbeLayer(Input=(2, 5, 3), Output=(2, 5, 4))
    assert layer.output_ports == {"Output": (2, 5, 4)}
    assert layer.inference.array((), "Weights") is not None


def test_backward_from_the_output_and_the_array():
    net = ng.NetChain([PatternProbeLayer(), ng.ElementwiseLayer("Tanh")],
                      Output=("Varying", 7, 4))
    net = ng.NetReplacePart(net, {"Input": ("Varying", 7, 3)})
    assert net.input_ports == {"Input": ("Varying", 7, 3)}
    assert net.output_ports == {"Output": ("Varying", 7, 4)}


def test_run_of_length_zero_and_a_conflict():
    assert PatternProbeLayer(Input=3, Output=2).output_ports == {"Output": (2,)}
    with pytest.raises(ng.ShapeMismatchError):
        PatternProbeLayer(Input=(2, 3), Output=(5, 2))  # *a = (2,) vs (5,)
    with pytest.raises(ng.ShapeMismatchError, match="at least 1 dimension"):
        PatternProbeLayer(Input=())
