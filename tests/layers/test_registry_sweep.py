"""A sweep over the registered layer classes: every public layer class has a smoke case here
(construction + ``check_layer``: shapes three ways, reference numbers, batch, jit == no-jit,
vmap). The table must be complete: a public Layer subclass without an entry fails."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

from netgraph import layers
import netgraph as ng
from harness import check_layer


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class Case:
    make: Callable[[], Any]                      # a fresh layer
    inputs: Callable[[np.random.Generator], dict]
    reference: Callable[[dict, Any], Any]
    varying: Any = False  # the family modules check varying inputs; kept off here for time


def _graph():
    return ng.NetGraph({"lin": ng.LinearLayer(3), "act": ng.ElementwiseLayer("Tanh")},
                       [("lin", "act")])


def _const_plus():
    return ng.NetGraph(
        {"const": ng.NetArrayLayer(Output=(2, 3)), "plus": ng.ThreadingLayer("Plus")},
        [(ng.NetPort("Input"), ng.NetPort("plus", "Input1")), ("const", ng.NetPort("plus", "Input2"))],
    )


TABLE: dict[str, Case] = {
    "LinearLayer": Case(
        lambda: ng.LinearLayer(3), lambda r: {"Input": _f(r, 2, 2)},
        lambda i, a: a["Weights"] @ i["Input"].reshape(-1) + a["Biases"]),
    "ElementwiseLayer": Case(
        lambda: ng.ElementwiseLayer("Tanh"), lambda r: {"Input": _f(r, 4, 2)},
        lambda i, a: np.tanh(i["Input"])),
    "ThreadingLayer": Case(
        lambda: ng.ThreadingLayer("Times"), lambda r: {"Input1": _f(r, 2, 3), "Input2": _f(r, 1, 3)},
        lambda i, a: i["Input1"] * i["Input2"]),
    "TotalLayer": Case(
        lambda: ng.TotalLayer(), lambda r: {"Input1": _f(r, 3, 2), "Input2": _f(r, 3, 2)},
        lambda i, a: i["Input1"] + i["Input2"]),
    "CatenateLayer": Case(
        lambda: ng.CatenateLayer(0), lambda r: {"Input1": _f(r, 2, 2), "Input2": _f(r, 3, 2)},
        lambda i, a: np.concatenate([i["Input1"], i["Input2"]])),
    "DotLayer": Case(
        lambda: ng.DotLayer(), lambda r: {"Input1": _f(r, 2, 3), "Input2": _f(r, 3, 2)},
        lambda i, a: i["Input1"] @ i["Input2"]),
    "AggregationLayer": Case(
        lambda: ng.AggregationLayer("Max", 0), lambda r: {"Input": _f(r, 4, 2)},
        lambda i, a: i["Input"].max(axis=0)),
    "SummationLayer": Case(
        lambda: ng.SummationLayer(), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"].sum()),
    "SoftmaxLayer": Case(
        lambda: ng.SoftmaxLayer(0), lambda r: {"Input": _f(r, 4, 2)},
        lambda i, a: _softmax(i["Input"], 0)),
    "ReshapeLayer": Case(
        lambda: ng.ReshapeLayer((ng.Inherited, 2, 2)), lambda r: {"Input": _f(r, 3, 4)},
        lambda i, a: i["Input"].reshape(-1, 2, 2)),
    "FlattenLayer": Case(
        lambda: ng.FlattenLayer(), lambda r: {"Input": _f(r, 2, 3)},
        lambda i, a: i["Input"].reshape(-1)),
    "TransposeLayer": Case(
        lambda: ng.TransposeLayer((2, 0, 1)), lambda r: {"Input": _f(r, 2, 3, 2)},
        lambda i, a: np.transpose(i["Input"], (2, 0, 1))),
    "ReplicateLayer": Case(
        lambda: ng.ReplicateLayer(2, -1), lambda r: {"Input": _f(r, 3)},
        lambda i, a: np.stack([i["Input"]] * 2, axis=-1)),
    "ConstantTimesLayer": Case(
        lambda: ng.ConstantTimesLayer(Scaling=np.array([2.0, -1.0], np.float32)),
        lambda r: {"Input": _f(r, 3, 2)}, lambda i, a: i["Input"] * a["Scaling"]),
    # no input ports: checked inside a graph (check_layer needs at least one input to batch)
    "NetArrayLayer": Case(
        _const_plus, lambda r: {"Input": _f(r, 2, 3)},
        lambda i, a: i["Input"] + a["const", "Array"]),
    "DropoutLayer": Case(
        lambda: ng.DropoutLayer(0.5), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"]),
    "EmbeddingLayer": Case(
        lambda: ng.EmbeddingLayer(2, 4), lambda r: {"Input": r.integers(0, 4, 3)},
        lambda i, a: a["Weights"][i["Input"]]),
    "ConvolutionLayer": Case(
        lambda: ng.ConvolutionLayer(2, 2, interleaving=True), lambda r: {"Input": _f(r, 4, 2)},
        lambda i, a: np.stack([
            np.einsum("ock,kc->o", a["Weights"], i["Input"][t:t + 2]) + a["Biases"]
            for t in range(i["Input"].shape[0] - 1)])),
    "SequenceLastLayer": Case(
        lambda: ng.SequenceLastLayer(), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"][-1]),
    "NetMapOperator": Case(
        lambda: ng.NetMapOperator(ng.LinearLayer(2)), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"] @ a["Net", "Weights"].T + a["Net", "Biases"]),
    "DotScoringLayer": Case(
        lambda: ng.DotScoringLayer(), lambda r: {"Input": _f(r, 3), "Query": _f(r, 3)},
        lambda i, a: i["Input"] @ i["Query"]),
    "BilinearScoringLayer": Case(
        lambda: ng.BilinearScoringLayer(), lambda r: {"Input": _f(r, 3), "Query": _f(r, 2)},
        lambda i, a: i["Query"] @ (a["Weights"] @ i["Input"])),
    "AttentionLayer": Case(
        lambda: ng.AttentionLayer("Dot"),
        lambda r: {"Key": _f(r, 4, 3), "Value": _f(r, 4, 2), "Query": _f(r, 3)},
        lambda i, a: _softmax(i["Key"] @ i["Query"]) @ i["Value"]),
    "BatchNormalizationLayer": Case(
        lambda: ng.BatchNormalizationLayer(), lambda r: {"Input": _f(r, 2, 3)},
        lambda i, a: ((i["Input"] - a["MovingMean"][:, None])
                      / np.sqrt(a["MovingVariance"][:, None] + 1e-3) * a["Scaling"][:, None]
                      + a["Biases"][:, None])),
    "MeanSquaredLossLayer": Case(
        lambda: ng.MeanSquaredLossLayer(), lambda r: {"Input": _f(r, 3, 2), "Target": _f(r, 3, 2)},
        lambda i, a: np.mean((i["Input"] - i["Target"]) ** 2)),
    "MeanAbsoluteLossLayer": Case(
        lambda: ng.MeanAbsoluteLossLayer(), lambda r: {"Input": _f(r, 4), "Target": _f(r, 4)},
        lambda i, a: np.mean(np.abs(i["Input"] - i["Target"]))),
    "CrossEntropyLossLayer": Case(
        lambda: ng.CrossEntropyLossLayer("Index"),
        lambda r: {"Input": _softmax(_f(r, 3, 4)), "Target": r.integers(0, 4, 3)},
        lambda i, a: np.mean(-np.log(np.clip(
            np.take_along_axis(i["Input"], i["Target"][:, None], axis=1)[:, 0], 1e-7, 1 - 1e-7)))),
    "NetGraph": Case(
        _graph, lambda r: {"Input": _f(r, 4)},
        lambda i, a: np.tanh(a["lin", "Weights"] @ i["Input"] + a["lin", "Biases"])),
    "NetChain": Case(
        lambda: ng.NetChain([ng.LinearLayer(3), "Tanh"]), lambda r: {"Input": _f(r, 4)},
        lambda i, a: np.tanh(a["0", "Weights"] @ i["Input"] + a["0", "Biases"])),
    # branch parts: sequence and part layers
    "SequenceMostLayer": Case(
        lambda: ng.SequenceMostLayer(), lambda r: {"Input": _f(r, 3, 2)}, lambda i, a: i["Input"][:-1]),
    "SequenceRestLayer": Case(
        lambda: ng.SequenceRestLayer(), lambda r: {"Input": _f(r, 3, 2)}, lambda i, a: i["Input"][1:]),
    "SequenceReverseLayer": Case(
        lambda: ng.SequenceReverseLayer(), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"][::-1]),
    "SequenceIndicesLayer": Case(
        lambda: ng.SequenceIndicesLayer(maximum=2), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: np.minimum(np.arange(3), 1)),
    "AppendLayer": Case(
        lambda: ng.AppendLayer(), lambda r: {"Input": _f(r, 3, 2), "Element": _f(r, 2)},
        lambda i, a: np.concatenate([i["Input"], i["Element"][None]])),
    "PrependLayer": Case(
        lambda: ng.PrependLayer(), lambda r: {"Input": _f(r, 3, 2), "Element": _f(r, 2)},
        lambda i, a: np.concatenate([i["Element"][None], i["Input"]])),
    "PartLayer": Case(
        lambda: ng.PartLayer((slice(1, None), -1)), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: i["Input"][1:, -1]),
    "PaddingLayer": Case(
        lambda: ng.PaddingLayer(((1, 2),), padding="Periodic"), lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: np.pad(i["Input"], ((1, 2), (0, 0)), mode="wrap")),
    "UnitVectorLayer": Case(
        lambda: ng.UnitVectorLayer(4, Input=(3, ng.Restricted("Integer", 4))),
        lambda r: {"Input": r.integers(0, 4, 3)}, lambda i, a: np.eye(4)[i["Input"]]),
    "OrderingLayer": Case(
        lambda: ng.OrderingLayer(2), lambda r: {"Input": _f(r, 5)},
        lambda i, a: np.argsort(i["Input"], kind="stable")[:2]),
    # branch recurrent: the NumPy references of the recurrences are in test_recurrent*.py
    "BasicRecurrentLayer": Case(
        lambda: ng.BasicRecurrentLayer(2), lambda r: {"Input": _f(r, 1, 3)},
        lambda i, a: np.tanh(a["InputWeights"] @ i["Input"][0] + a["Biases"])[None]),
    "GatedRecurrentLayer": Case(
        lambda: ng.GatedRecurrentLayer(2), lambda r: {"Input": _f(r, 3, 2)}, None),
    "LongShortTermMemoryLayer": Case(
        lambda: ng.LongShortTermMemoryLayer(2), lambda r: {"Input": _f(r, 3, 2)}, None),
    "NetFoldOperator": Case(
        lambda: ng.NetFoldOperator(ng.NetGraph({"plus": ng.ThreadingLayer("Plus")},
                                               [([ng.NetPort("Input"), ng.NetPort("State")], "plus")])),
        lambda r: {"Input": _f(r, 3, 2)}, lambda i, a: np.cumsum(i["Input"], axis=0)),
    "NetNestOperator": Case(
        lambda: ng.NetNestOperator(ng.LinearLayer(2), 2), lambda r: {"Input": _f(r, 2)},
        lambda i, a: a["Net", "Weights"] @ (a["Net", "Weights"] @ i["Input"] + a["Net", "Biases"])
        + a["Net", "Biases"]),
    "NetBidirectionalOperator": Case(
        lambda: ng.NetBidirectionalOperator(ng.NetMapOperator(ng.ElementwiseLayer("Tanh"))),
        lambda r: {"Input": _f(r, 3, 2)},
        lambda i, a: np.concatenate([np.tanh(i["Input"])] * 2, axis=-1)),
    # branch normpool
    "NormalizationLayer": Case(
        lambda: ng.NormalizationLayer(), lambda r: {"Input": _f(r, 2, 3)},
        lambda i, a: ((i["Input"] - i["Input"].mean(-1, keepdims=True))
                      / np.sqrt(i["Input"].var(-1, keepdims=True) + 1e-3) * a["Scaling"] + a["Biases"])),
    "PoolingLayer": Case(
        lambda: ng.PoolingLayer(2, 2, function="Mean"), lambda r: {"Input": _f(r, 2, 4)},
        lambda i, a: i["Input"].reshape(2, 2, 2).mean(-1)),
}


def _public_layer_classes() -> dict[str, type]:
    """Every Layer subclass exported by ``netgraph`` (``layers.__all__`` and containers)."""
    names = set(layers.__all__) | set(ng.__all__)
    found = {}
    for name in names:
        obj = getattr(ng, name, None) or getattr(layers, name, None)
        if inspect.isclass(obj) and issubclass(obj, ng.Layer) and obj is not ng.Layer:
            found[name] = obj
    return found


def test_table_is_complete():
    public = _public_layer_classes()
    layer_all = {n for n in layers.__all__
                 if inspect.isclass(getattr(layers, n)) and issubclass(getattr(layers, n), ng.Layer)
                 and getattr(layers, n) is not ng.Layer}
    assert layer_all <= set(public)
    missing = sorted(set(public) - set(TABLE))
    assert not missing, f"public layer classes without a sweep case: {missing}"
    stale = sorted(set(TABLE) - set(public))
    assert not stale, f"sweep cases for names that are not public layer classes: {stale}"


def test_public_classes_are_registered():
    registry = ng.Layer.registry
    for name, cls in _public_layer_classes().items():
        assert registry.get(name) is cls, f"{name} is not in ng.Layer.registry"
        assert cls.type_name == name


def test_registry_holds_only_layers():
    for name, cls in ng.Layer.registry.items():
        assert issubclass(cls, ng.Layer) and cls.__name__ == name


@pytest.mark.parametrize("name", sorted(TABLE))
def test_sweep(name, rng):
    case = TABLE[name]
    layer = case.make()
    assert isinstance(layer, ng.Layer)
    if name in ng.Layer.registry and name not in ("NetArrayLayer",):
        assert type(layer) is ng.Layer.registry[name]
    assert isinstance(repr(layer), str) and layer.describe()
    check_layer(layer, case.inputs(rng), case.reference, varying=case.varying, atol=1e-4)
