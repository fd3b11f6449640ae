"""Saving and loading nets (``ng.to_config`` / ``ng.from_config`` / ``ng.save`` / ``ng.load``).

1. A round-trip sweep over the whole layer registry: every layer class that netgraph exports
   has at least one configured case in ``CASES`` (a registered, exported class without one
   fails ``test_every_exported_layer_class_has_a_case``). Each case goes through
   ``to_config -> json -> from_config`` and, initialised and not, through ``save -> load``:
   same structure, same inferred port types, the same arrays bit for bit and the same outputs.
2. Bad files (damaged, foreign, hostile) raise ``ng.SerializationError`` and never return a
   net; nothing in a file is executed.
3. A layer holding a Python function refuses to be saved.
"""
from __future__ import annotations

import inspect
import json
import pickle
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np
import pytest

from netgraph import layers
import netgraph as ng
import netgraph.serialize as serialize
from netgraph.shapes import Index, Integer, Known, Real, Varying

VARYING_LENGTH = 3


# ============================================================================ helpers
def _walk(net: Any, path: tuple = ()):
    """(path, layer) for ``net`` and every sub-net, depth first."""
    yield path, net
    for name, child in net.children().items():
        yield from _walk(child, path + (name,))


def _arrays(net: Any) -> dict[tuple, Any]:
    """Every array slot of ``net`` by path (None when uninitialised)."""
    return {path + (name,): value for path, layer in _walk(net) for name, value in layer.arrays.items()}


def _port_types(net: Any) -> dict[tuple, Any]:
    """The inferred PortType of every port of every layer in ``net``, by (path, port)."""
    found = {}
    for path, layer in _walk(net):
        for port in (*layer.input_names, *layer.output_names):
            found[(path, port)] = net.inference.port(path, port)
    return found


def _example(net: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random data for ONE example of ``net`` (varying dims get length VARYING_LENGTH)."""
    data = {}
    for name in net.input_names:
        ptype = net.inference.port((), name)
        assert ptype.dims is not None, f"case must declare the rank of input {name!r}"
        shape = []
        for dim in ptype.dims:
            if isinstance(dim, Known):
                shape.append(dim.size)
            else:
                assert isinstance(dim, Varying), f"input {name!r} not fully inferred: {ptype}"
                shape.append(VARYING_LENGTH)
        element = ptype.element
        if isinstance(element, Real):
            data[name] = rng.standard_normal(shape).astype(np.float32)
        elif isinstance(element, Index):
            assert isinstance(element.n, Known), f"index bound of {name!r} not inferred"
            data[name] = rng.integers(0, element.n.size, shape).astype(np.int32)
        else:
            assert isinstance(element, Integer)
            data[name] = rng.integers(0, 2, shape).astype(np.int32)
    return data


def _outputs(net: Any, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    apply = ng.lower(net)
    return {k: np.asarray(v) for k, v in apply(ng.params_of(net), data).items()}


def _roundtrip_config(net: Any) -> Any:
    config = ng.to_config(net)
    text = json.dumps(config)
    return config, ng.from_config(json.loads(text))


def _write(path: Any, document: Any = None, *, raw: bytes | None = None, **arrays: Any) -> Any:
    """A hand-made netgraph file: ``document`` as the JSON record (or ``raw`` bytes) and
    ``arrays`` as members (keys as stored, e.g. ``"array:Weights"``)."""
    blob = raw if raw is not None else json.dumps(document).encode()
    with open(path, "wb") as handle:
        np.savez(handle, __netgraph__=np.frombuffer(blob, np.uint8), **arrays)
    return path


def _short_id(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    text = "".join(c for c in text if c not in '"{}[] ')
    return "".join(c if c.isalnum() or c in "_-:.," else "_" for c in text)[:80]


def _record(net: dict, arrays: dict | None = None, **extra: Any) -> dict:
    """A structure record in the format ``ng.save`` writes."""
    return {"format": "netgraph", "version": 1, "net": net,
            "arrays": {k: list(np.shape(v)) for k, v in (arrays or {}).items()}, **extra}


def _assert_refused(path: Any, *fragments: str) -> ng.SerializationError:
    """``ng.load(path)`` raises SerializationError (not any other exception, never a net),
    and the message contains every fragment (case-insensitive)."""
    result = None
    try:
        result = ng.load(path)
    except ng.SerializationError as err:
        message = str(err).lower()
        for fragment in fragments:
            assert fragment.lower() in message, f"{fragment!r} not in the message {str(err)!r}"
        return err
    except BaseException as err:  # noqa: BLE001 - the point of the test
        pytest.fail(f"ng.load raised {type(err).__name__} instead of SerializationError: {err!r}")
    pytest.fail(f"ng.load returned a net instead of raising SerializationError: {result!r}")


# ======================================================================= the sweep
@dataclass(frozen=True)
class Case:
    make: Callable[[], Any]  # a fresh, uninitialised net with every input fully declared


def _scoring_graph(size: int) -> Any:
    """A custom scoring net: ``Query . W k`` (a Dot over a projected key)."""
    return ng.NetGraph({"proj": ng.LinearLayer(size, Biases=None), "dot": ng.DotLayer()},
                       [(ng.NetPort("Input"), "proj"), ([ng.NetPort("Query"), "proj"], "dot")])


def _tanh_scoring_graph() -> Any:
    """A custom scoring net with no ``q . f(k)`` form (the generic path)."""
    return ng.NetGraph(
        {"plus": ng.ThreadingLayer("Plus"), "act": ng.ElementwiseLayer("Tanh"),
         "total": ng.SummationLayer()},
        [([ng.NetPort("Query"), ng.NetPort("Input")], "plus", "act", "total")],
    )


def _nested_graph() -> Any:
    """Graphs nested three deep (graph > graph > chain > map > linear), a muted output,
    removed biases, an initializer, named graph ports."""
    inner_chain = ng.NetChain({
        "map": ng.NetMapOperator(ng.LinearLayer(3).with_initializers({"Biases": "Ones"})),
        "act": ng.ElementwiseLayer("ReLU"),
    })
    middle = ng.NetGraph(
        {"chain": inner_chain,
         "side": ng.LinearLayer(2, Biases=None),
         "last": ng.SequenceLastLayer()},
        [(ng.NetPort("Input"), "chain", "last", "side", ng.NetPort("Output")),
         (ng.NetPort("chain", "Output"), ng.NetPort("Sequence"))],
    )
    return ng.NetGraph(
        {"middle": middle,
         "probe": ng.SoftmaxLayer(),
         "scale": ng.ConstantTimesLayer()},
        [(ng.NetPort("x"), "middle"),
         (ng.NetPort("middle", "Output"), "scale", ng.NetPort("y")),
         (ng.NetPort("middle", "Sequence"), "probe"),
         (ng.NetPort("probe", "Output"), None)],
        x=("Varying", 4),
    )


def _muted_attention_graph() -> Any:
    """A graph muting one output of a two-output layer."""
    attention = ng.AttentionLayer("Dot", attention_weights=True)
    return ng.NetGraph(
        {"attention": attention, "out": ng.LinearLayer(2)},
        [(ng.NetPort("Key"), ng.NetPort("attention", "Key")),
         (ng.NetPort("Value"), ng.NetPort("attention", "Value")),
         (ng.NetPort("Query"), ng.NetPort("attention", "Query")),
         (ng.NetPort("attention", "Output"), "out"),
         (ng.NetPort("attention", "AttentionWeights"), None)],
        Key=("Varying", 3), Value=("Varying", 2), Query=3,
    )


def _keras_attention(**kw: Any) -> Any:
    net = ng.keras.Attention(**kw)
    shapes = {"Query": ("Varying", 3), "Value": ("Varying", 3), "Key": ("Varying", 3)}
    return net.evolve(port_specs={k: v for k, v in shapes.items() if k in net.input_names})


def _keras_additive() -> Any:
    net = ng.keras.AdditiveAttention(use_scale=True, query_mask=True, value_mask=True)
    return net.evolve(port_specs={"Query": ("Varying", 3), "Value": ("Varying", 3), "Key": ("Varying", 3)})


def _keras_mha(**kw: Any) -> Any:
    net = ng.keras.MultiHeadAttention(**kw)
    positions = kw.get("positions", 1)
    shapes = {"Query": ("Varying",) + (2,) * (positions - 1) + (4,),
              "Value": ("Varying",) + (2,) * (positions - 1) + (5,),
              "Key": ("Varying",) + (2,) * (positions - 1) + (6,)}
    return net.evolve(port_specs={k: v for k, v in shapes.items() if k in net.input_names})


R = ng.Restricted
A = ng.Automatic

CASES: dict[str, tuple[type, Case]] = {
    # --- linear, with markers, tuples, removed arrays, initializers, given arrays
    "LinearLayer": (ng.LinearLayer, Case(lambda: ng.LinearLayer(3, Input=4))),
    "LinearLayer/tuple-no-biases-xavier": (ng.LinearLayer, Case(
        lambda: ng.LinearLayer((2, 3), Biases=None, Input=(2, 2)).with_initializers(
            {"Weights": ("Xavier", "Uniform")}))),
    "LinearLayer/automatic-size": (ng.LinearLayer, Case(lambda: ng.LinearLayer(A, Input=4, Output=5))),
    "LinearLayer/partly-given": (ng.LinearLayer, Case(
        lambda: ng.LinearLayer(2, Input=3, Weights=np.arange(6, dtype=np.float32).reshape(2, 3) / 7))),
    "LinearLayer/initializers": (ng.LinearLayer, Case(
        lambda: ng.LinearLayer(3, Input=(2, A)).evolve(port_specs={"Input": (2, 2)}).with_initializers(
            {"Weights": ("Kaiming", "Normal"), "Biases": "Ones"}))),
    # --- batch normalization: options, and layer state saved with the net
    "BatchNormalizationLayer": (ng.BatchNormalizationLayer, Case(
        lambda: ng.BatchNormalizationLayer(momentum=0.5, epsilon=0.01, interleaving=True,
                                           Input=("Varying", 3),
                                           MovingMean=np.arange(3, dtype=np.float32)))),
    # --- losses
    "MeanSquaredLossLayer": (ng.MeanSquaredLossLayer, Case(
        lambda: ng.MeanSquaredLossLayer(Input=("Varying", 2)))),
    "MeanAbsoluteLossLayer": (ng.MeanAbsoluteLossLayer, Case(lambda: ng.MeanAbsoluteLossLayer(Input=3))),
    "CrossEntropyLossLayer": (ng.CrossEntropyLossLayer, Case(
        lambda: ng.CrossEntropyLossLayer("Index", Input=("Varying", 4)))),
    # --- elementwise / threading
    "ElementwiseLayer": (ng.ElementwiseLayer, Case(lambda: ng.ElementwiseLayer("Tanh", Input=("Varying", 3)))),
    "ElementwiseLayer/GELU": (ng.ElementwiseLayer, Case(lambda: ng.ElementwiseLayer("GELU", Input=(2, 2)))),
    "ThreadingLayer": (ng.ThreadingLayer, Case(
        lambda: ng.ThreadingLayer("Times", Input1=(2, 3), Input2=(1, 3)))),
    "ThreadingLayer/three-inputs-no-broadcast": (ng.ThreadingLayer, Case(
        lambda: ng.ThreadingLayer("Plus", broadcasting=False, inputs=3,
                                  Input1=("Varying", 2), Input2=("Varying", 2), Input3=("Varying", 2)))),
    "TotalLayer": (ng.TotalLayer, Case(
        lambda: ng.TotalLayer(inputs=3, Input1=("Varying", 2), Input2=("Varying", 2), Input3=("Varying", 2)))),
    "CatenateLayer": (ng.CatenateLayer, Case(lambda: ng.CatenateLayer(1, Input1=(2, 2), Input2=(2, 3)))),
    "CatenateLayer/varying": (ng.CatenateLayer, Case(
        lambda: ng.CatenateLayer(0, Input1=("Varying", 2), Input2=(2, 2)))),
    "DotLayer": (ng.DotLayer, Case(lambda: ng.DotLayer(Input1=(2, 3), Input2=3))),
    # --- aggregation: All, spans (slices), tuples, negative levels
    "AggregationLayer/all": (ng.AggregationLayer, Case(lambda: ng.AggregationLayer("Max", ng.All, Input=(3, 2)))),
    "AggregationLayer/span": (ng.AggregationLayer, Case(
        lambda: ng.AggregationLayer("Mean", slice(1, None), Input=("Varying", 2, 3)))),
    "AggregationLayer/span-stop": (ng.AggregationLayer, Case(
        lambda: ng.AggregationLayer("Min", slice(0, 2), Input=("Varying", 2, 3)))),
    "AggregationLayer/tuple": (ng.AggregationLayer, Case(
        lambda: ng.AggregationLayer("Total", (0, 2), Input=(2, 3, 4)))),
    "AggregationLayer/negative": (ng.AggregationLayer, Case(
        lambda: ng.AggregationLayer("Times", -1, Input=(2, 3)))),
    "SummationLayer": (ng.SummationLayer, Case(lambda: ng.SummationLayer(Input=("Varying", 2)))),
    "SoftmaxLayer": (ng.SoftmaxLayer, Case(lambda: ng.SoftmaxLayer(0, Input=(4, 2)))),
    # --- reshaping: Inherited and Automatic inside a tuple, All, permutations
    "ReshapeLayer": (ng.ReshapeLayer, Case(lambda: ng.ReshapeLayer((ng.Inherited, A, 2), Input=(3, 4)))),
    "ReshapeLayer/varying": (ng.ReshapeLayer, Case(
        lambda: ng.ReshapeLayer((ng.Inherited, 2, 2), Input=("Varying", 4)))),
    "FlattenLayer": (ng.FlattenLayer, Case(lambda: ng.FlattenLayer(ng.All, Input=(2, 3)))),
    "FlattenLayer/level": (ng.FlattenLayer, Case(lambda: ng.FlattenLayer(1, Input=(2, 3, 2)))),
    "TransposeLayer": (ng.TransposeLayer, Case(lambda: ng.TransposeLayer((2, 0, 1), Input=(2, 3, 2)))),
    "TransposeLayer/default": (ng.TransposeLayer, Case(lambda: ng.TransposeLayer(Input=(2, 3)))),
    "ReplicateLayer": (ng.ReplicateLayer, Case(lambda: ng.ReplicateLayer((2, 3), 0, Input=2))),
    "ReplicateLayer/automatic": (ng.ReplicateLayer, Case(
        lambda: ng.ReplicateLayer(A, -1, Input=3, Output=(3, 4)))),
    # --- scaling
    "ConstantTimesLayer": (ng.ConstantTimesLayer, Case(lambda: ng.ConstantTimesLayer(Input=("Varying", 2)))),
    "ConstantTimesLayer/given": (ng.ConstantTimesLayer, Case(
        lambda: ng.ConstantTimesLayer(Scaling=np.float32(2.5), Input=(2, 3)))),
    "NetArrayLayer": (ng.NetArrayLayer, Case(lambda: ng.NetArrayLayer(Output=(2, 3)))),
    "DropoutLayer": (ng.DropoutLayer, Case(lambda: ng.DropoutLayer(0.25, Input=(3, 2)))),
    # --- embeddings: ("Varying", Restricted("Integer", n)) and a scalar index
    "EmbeddingLayer": (ng.EmbeddingLayer, Case(lambda: ng.EmbeddingLayer(4, 10, Input="Varying"))),
    "EmbeddingLayer/restricted-varying": (ng.EmbeddingLayer, Case(
        lambda: ng.EmbeddingLayer(3, Input=("Varying", R("Integer", 7))))),
    "EmbeddingLayer/restricted-scalar": (ng.EmbeddingLayer, Case(
        lambda: ng.EmbeddingLayer(2, Input=R("Integer", 5)))),
    "EmbeddingLayer/restricted-matrix-normal-init": (ng.EmbeddingLayer, Case(
        lambda: ng.EmbeddingLayer(2, Input=(2, 3, R("Integer", 4))).with_initializers({"Weights": "Zeros"}))),
    # --- convolution: tuples of tuples, strings, removed biases
    "ConvolutionLayer": (ng.ConvolutionLayer, Case(
        lambda: ng.ConvolutionLayer(2, (2, 2), stride=(1, 2), padding=((1, 0), (0, 1)), Input=(3, 5, 6)))),
    "ConvolutionLayer/interleaved-same-no-biases": (ng.ConvolutionLayer, Case(
        lambda: ng.ConvolutionLayer(4, 3, interleaving=True, padding="Same", channel_groups=2,
                                    Biases=None, Input=("Varying", 2)))),
    "ConvolutionLayer/dilated-automatic-channels": (ng.ConvolutionLayer, Case(
        lambda: ng.ConvolutionLayer(kernel=2, dilation=2, Input=(2, 6), Output=(3, 4)))),
    # --- sequences
    "SequenceLastLayer": (ng.SequenceLastLayer, Case(lambda: ng.SequenceLastLayer(Input=("Varying", 3)))),
    "NetMapOperator": (ng.NetMapOperator, Case(lambda: ng.NetMapOperator(ng.LinearLayer(2), Input=("Varying", 3)))),
    "NetMapOperator/nested": (ng.NetMapOperator, Case(
        lambda: ng.NetMapOperator(ng.NetMapOperator(ng.NetChain([ng.LinearLayer(2), "Tanh"])),
                                  Input=("Varying", 2, 3)))),
    # --- attention and scoring
    "DotScoringLayer": (ng.DotScoringLayer, Case(lambda: ng.DotScoringLayer(Input=3, Query=3))),
    "BilinearScoringLayer": (ng.BilinearScoringLayer, Case(lambda: ng.BilinearScoringLayer(Input=3, Query=2))),
    "AttentionLayer/dot": (ng.AttentionLayer, Case(
        lambda: ng.AttentionLayer("Dot", Key=("Varying", 3), Value=("Varying", 2), Query=3))),
    "AttentionLayer/bilinear-masks": (ng.AttentionLayer, Case(
        lambda: ng.AttentionLayer("Bilinear", mask=("Causal", 2), score_rescaling="LengthSqrt",
                                  attention_weights=True, key_mask=True, query_mask=True,
                                  dropout=0.1, seed=7,
                                  Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 4)))),
    "AttentionLayer/custom-graph-multi-head": (ng.AttentionLayer, Case(
        lambda: ng.AttentionLayer(_scoring_graph(3), multi_head=True, score_rescaling="DimensionSqrt",
                                  attention_mask=True, fast_path=False,
                                  Key=("Varying", 2, 3), Value=("Varying", 2, 2), Query=(4, 2, 3)))),
    "AttentionLayer/custom-graph-generic": (ng.AttentionLayer, Case(
        lambda: ng.AttentionLayer(_tanh_scoring_graph(), mask="Causal",
                                  Key=("Varying", 3), Value=("Varying", 2), Query=("Varying", 3)))),
    # --- containers
    "NetGraph/nested-3-deep-muted": (ng.NetGraph, Case(_nested_graph)),
    "NetGraph/muted-attention-weights": (ng.NetGraph, Case(_muted_attention_graph)),
    "NetGraph/no-input": (ng.NetGraph, Case(
        lambda: ng.NetGraph({"const": ng.NetArrayLayer(Output=(2, 3)), "act": ng.ElementwiseLayer("Tanh")},
                            [("const", "act")]))),
    "NetChain": (ng.NetChain, Case(lambda: ng.NetChain([ng.LinearLayer(3), "Tanh", 2], Input=4))),
    "NetGraph/tied-embeddings": (ng.NetGraph, Case(
        lambda: ng.NetGraph({"enc": ng.EmbeddingLayer(3, 6, Weights=ng.NetArray("emb")),
                             "dec": ng.NetMapOperator(ng.LinearLayer(Weights=ng.NetArray("emb"), Biases=None))},
                            [(ng.NetPort("tokens"), "enc", "dec")], tokens="Varying"))),
    # --- the nets of the Keras builders
    "keras.Attention": (ng.NetGraph, Case(lambda: _keras_attention())),
    "keras.Attention/scale-causal-scores": (ng.NetGraph, Case(
        lambda: _keras_attention(use_scale=True, use_causal_mask=True, return_attention_scores=True))),
    "keras.Attention/concat-no-key": (ng.NetGraph, Case(
        lambda: _keras_attention(score_mode="concat", use_scale=True, use_key=False))),
    "keras.AdditiveAttention/masks": (ng.NetGraph, Case(_keras_additive)),
    "keras.MultiHeadAttention": (ng.NetGraph, Case(lambda: _keras_mha(num_heads=2, key_dim=3, query_dim=4))),
    "keras.MultiHeadAttention/2d-no-bias-scores": (ng.NetGraph, Case(
        lambda: _keras_mha(num_heads=2, key_dim=2, value_dim=3, positions=2, attention_axes=2,
                           use_bias=False, output_shape=(2, 2), return_attention_scores=True,
                           kernel_initializer="he_normal"))),
    # --- branch parts: sequence and part layers (options with slices, index lists, markers)
    "SequenceMostLayer": (ng.SequenceMostLayer, Case(lambda: ng.SequenceMostLayer(Input=("Varying", 2)))),
    "SequenceRestLayer": (ng.SequenceRestLayer, Case(lambda: ng.SequenceRestLayer(Input=(3, 2)))),
    "SequenceReverseLayer": (ng.SequenceReverseLayer, Case(
        lambda: ng.SequenceReverseLayer(Input=("Varying", 2)))),
    "SequenceIndicesLayer": (ng.SequenceIndicesLayer, Case(
        lambda: ng.SequenceIndicesLayer(maximum=4, Input=("Varying", 2)))),
    "AppendLayer": (ng.AppendLayer, Case(lambda: ng.AppendLayer(Input=("Varying", 2)))),
    "PrependLayer": (ng.PrependLayer, Case(lambda: ng.PrependLayer(Input=(3, 2)))),
    "PartLayer": (ng.PartLayer, Case(
        lambda: ng.PartLayer((slice(None, None, -1), [1, 0], ng.All, -1), Input=("Varying", 2, 3, 2)))),
    "PaddingLayer": (ng.PaddingLayer, Case(
        lambda: ng.PaddingLayer(((1, 2), (0, 1)), padding="Reflected", Input=("Varying", 3)))),
    "UnitVectorLayer": (ng.UnitVectorLayer, Case(lambda: ng.UnitVectorLayer(Input=("Varying", R("Integer", 4))))),
    "OrderingLayer": (ng.OrderingLayer, Case(lambda: ng.OrderingLayer(-2, Input="Varying"))),
    "OrderingLayer/all": (ng.OrderingLayer, Case(lambda: ng.OrderingLayer(Input=3))),
    # --- branch recurrent: recurrent layers and operators
    "BasicRecurrentLayer": (ng.BasicRecurrentLayer, Case(
        lambda: ng.BasicRecurrentLayer(3, Input=("Varying", 2)))),
    "GatedRecurrentLayer/states-dropout": (ng.GatedRecurrentLayer, Case(
        lambda: ng.GatedRecurrentLayer(3, initial_state=True, return_state=True, dropout=0.2,
                                       Input=("Varying", 2)))),
    "LongShortTermMemoryLayer/final-states": (ng.LongShortTermMemoryLayer, Case(
        lambda: ng.LongShortTermMemoryLayer(2, return_state=True, Input=(4, 3)))),
    "NetFoldOperator/feedback": (ng.NetFoldOperator, Case(
        lambda: ng.NetFoldOperator(
            ng.NetGraph({"lin": ng.LinearLayer(2), "plus": ng.ThreadingLayer("Plus")},
                        [(ng.NetPort("Input"), "lin"), (["lin", ng.NetPort("State")], "plus"),
                         ("plus", ng.NetPort("Next"))]),
            {"Next": "State"}, initial_state=True, return_state=True, Input=("Varying", 3)))),
    "NetNestOperator": (ng.NetNestOperator, Case(
        lambda: ng.NetNestOperator(ng.NetChain([ng.LinearLayer(3), "Tanh"]), 3, Input=3))),
    "NetBidirectionalOperator/pair-mean": (ng.NetBidirectionalOperator, Case(
        lambda: ng.NetBidirectionalOperator([ng.LongShortTermMemoryLayer(2, return_state=True),
                                             ng.GatedRecurrentLayer(2)], "Mean", Input=("Varying", 3)))),
    # branch normpool
    "NormalizationLayer": (ng.NormalizationLayer, Case(
        lambda: ng.NormalizationLayer(slice(1, None), "Complement", epsilon=0.01, Input=(2, 3, 4)))),
    "NormalizationLayer/rms-no-biases": (ng.NormalizationLayer, Case(
        lambda: ng.NormalizationLayer((0, 1), 1, method="RMS", Biases=None, Input=("Varying", 3)))),
    "PoolingLayer": (ng.PoolingLayer, Case(
        lambda: ng.PoolingLayer((2, 2), (1, 2), padding="Same", function="Mean", interleaving=True,
                                Input=("Varying", 4, 2)))),
    "NetArrayLayer/initializer": (ng.NetArrayLayer, Case(
        lambda: ng.NetArrayLayer(initializer=("TruncatedNormal", 0.0, 0.02), Output=3))),
}


def _exported_layer_classes() -> dict[str, type]:
    """Every class in the layer registry that netgraph exports (``ng.__all__``, which
    includes ``layers.__all__``)."""
    exported = {}
    for name in set(ng.__all__) | set(layers.__all__):
        obj = getattr(ng, name, None)
        if inspect.isclass(obj) and issubclass(obj, ng.Layer) and obj.__name__ in ng.Layer.registry:
            exported[obj.__name__] = obj
    return exported


def test_every_exported_layer_class_has_a_case():
    exported = _exported_layer_classes()
    # sanity: the registry holds the exported classes themselves, under their names
    for name, cls in exported.items():
        assert ng.Layer.registry[name] is cls, f"registry[{name!r}] is {ng.Layer.registry[name]!r}"
    # every public layer class of layers.__all__ is registered
    public = {n for n in layers.__all__
              if inspect.isclass(getattr(layers, n)) and issubclass(getattr(layers, n), ng.Layer)
              and getattr(layers, n) is not ng.Layer}
    assert public <= set(exported), f"unregistered public layers: {sorted(public - set(exported))}"
    assert {"NetGraph", "NetChain", "NetMapOperator", "AttentionLayer", "DotScoringLayer",
            "BilinearScoringLayer"} <= set(exported)
    covered = {cls.__name__ for cls, _ in CASES.values()}
    missing = sorted(set(exported) - covered)
    assert not missing, f"exported layer classes without a serialization case in CASES: {missing}"
    # every net builder of ng.keras has a case too ("keras.<builder>...")
    builders = {n for n in ng.keras.__all__ if n != "from_keras"}
    with_case = {key.split("/")[0][len("keras."):] for key in CASES if key.startswith("keras.")}
    assert builders <= with_case, f"ng.keras builders without a case: {sorted(builders - with_case)}"


def _config_nodes(config: dict, depth: int = 1):
    yield config, depth
    for child in config.get("children", {}).values():
        yield from _config_nodes(child, depth + 1)


def test_cases_cover_the_features_the_format_must_carry():
    """The table exercises markers, spans, tuples, removed arrays, initializers, declared
    varying and index ports, deep nesting, muted outputs and shared arrays."""
    nodes = [n for _, case in CASES.values() for n in _config_nodes(ng.to_config(case.make()))]
    texts = [json.dumps(config) for config, _ in nodes]
    options = [json.dumps(config.get("options", {})) for config, _ in nodes]
    ports = [json.dumps(config.get("ports", {})) for config, _ in nodes]
    assert any('"Automatic"' in t for t in options)
    assert any('"Inherited"' in t for t in options)
    assert any('"All"' in t for t in options)
    assert any('"start"' in t and '"stop"' in t for t in options)  # a Span (slice) of levels
    assert any("[[" in t for t in options)  # a tuple of tuples (convolution padding)
    assert any(config.get("removed") for config, _ in nodes)
    assert any(config.get("initializers") for config, _ in nodes)
    assert any(config.get("shared") for config, _ in nodes)
    assert any(config.get("muted") for config, _ in nodes)
    assert any('"Varying"' in t for t in ports)
    assert any('"Restricted"' in t for t in ports)
    assert any('["Varying", {"Restricted"' in t for t in ports)
    assert max(depth for _, depth in nodes) >= 5  # graph > graph > chain > map > linear
    assert len(texts) > len(CASES)


@pytest.mark.parametrize("case_id", list(CASES))
def test_case_builds_the_declared_class(case_id):
    cls, case = CASES[case_id]
    net = case.make()
    assert type(net) is cls, f"{case_id}: built {type(net).__name__}, declared {cls.__name__}"


@pytest.mark.parametrize("case_id", list(CASES))
def test_config_roundtrip_through_json(case_id):
    _, case = CASES[case_id]
    for net in (case.make(), ng.NetInitialize(case.make(), seed=3)):
        config, back = _roundtrip_config(net)
        assert type(back) is type(net)
        assert ng.to_config(back) == config
        assert json.loads(json.dumps(ng.to_config(back))) == json.loads(json.dumps(config))
        assert _port_types(back) == _port_types(net)
        assert back.input_ports == net.input_ports and back.output_ports == net.output_ports
        # from_config gives the structure alone: arrays given at construction are not in it
        assert all(v is None for v in _arrays(back).values())
        assert set(_arrays(back)) == set(_arrays(net))


def _save_and_load(net, path):
    """Save ``net`` to ``path`` and load it back, checking structure, port types and arrays
    (uninitialised ones stay None; the others come back exactly, as float32)."""
    ng.save(net, path)
    back = ng.load(path)
    assert type(back) is type(net)
    assert ng.to_config(back) == ng.to_config(net)
    assert _port_types(back) == _port_types(net)
    before, after = _arrays(net), _arrays(back)
    assert set(after) == set(before)
    for key, value in before.items():
        if value is None:
            assert after[key] is None, f"{key}: uninitialised array came back as {after[key]!r}"
        else:
            assert after[key] is not None, f"{key} not restored"
            assert after[key].dtype == np.float32 and after[key].shape == value.shape
            np.testing.assert_array_equal(after[key], value, err_msg=str(key))
    return back, before


@pytest.mark.parametrize("case_id", list(CASES))
def test_save_load_uninitialized(case_id, tmp_path):
    _, case = CASES[case_id]
    net = case.make()
    path = tmp_path / "net.npz"
    back, before = _save_and_load(net, path)
    # what was saved is exactly the given arrays (none for a fully uninitialised net)
    with np.load(path, allow_pickle=False) as data:
        stored = {k for k in data.files if k != "__netgraph__"}
    assert stored == {"array:" + "/".join(k) for k, v in before.items() if v is not None}


@pytest.mark.parametrize("case_id", list(CASES))
def test_save_load_initialized(case_id, tmp_path):
    _, case = CASES[case_id]
    net = ng.NetInitialize(case.make(), seed=11)
    path = tmp_path / "net.npz"
    back, before = _save_and_load(net, path)
    assert all(value is not None for value in before.values())
    data = _example(net, np.random.default_rng(5))
    expected, actual = _outputs(net, data), _outputs(back, data)
    assert set(actual) == set(expected)
    for port in expected:
        np.testing.assert_array_equal(actual[port], expected[port], err_msg=port)
    # a second save of the loaded net gives the same record
    again = tmp_path / "again.npz"
    ng.save(back, again)
    with np.load(path, allow_pickle=False) as a, np.load(again, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        assert json.loads(a["__netgraph__"].tobytes()) == json.loads(b["__netgraph__"].tobytes())


def test_save_writes_one_npz_with_a_json_record(tmp_path):
    net = ng.NetInitialize(ng.NetChain({"lin": ng.LinearLayer(3, Biases=None), "act": "Tanh"}, Input=2))
    path = tmp_path / "chain.npz"
    ng.save(net, path)
    assert [p.name for p in tmp_path.iterdir()] == ["chain.npz"]
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["__netgraph__", "array:lin/Weights"]
        record = data["__netgraph__"]
        assert record.dtype == np.uint8 and record.ndim == 1
        document = json.loads(record.tobytes().decode("utf-8"))
    assert document["format"] == "netgraph" and document["version"] == 1
    assert document["arrays"] == {"lin/Weights": [3, 2]}
    assert document["net"] == ng.to_config(net)
    assert document["net"]["children"]["lin"]["removed"] == ["Biases"]


def test_config_spells_markers_and_specs_as_plain_data():
    net = ng.NetGraph(
        {"emb": ng.EmbeddingLayer(3, Input=("Varying", R("Integer", 7))),
         "agg": ng.AggregationLayer("Mean", slice(1, None)),
         "shape": ng.ReshapeLayer((ng.Inherited, A)),
         "flat": ng.FlattenLayer(ng.All)},
        [("emb", "shape", "agg"), ("agg", "flat")],
    )
    config = ng.to_config(net)
    assert json.loads(json.dumps(config)) == config  # already plain JSON data
    children = config["children"]
    assert children["emb"]["ports"]["Input"] == ["Varying", {"Restricted": ["Integer", 7]}]
    assert children["emb"]["options"] == {"size": 3, "n": "Automatic"}
    assert children["agg"]["options"]["levels"] == {"start": 1, "stop": None}
    assert children["shape"]["options"]["dims"] == ["Inherited", "Automatic"]
    assert children["flat"]["options"]["level"] == "All"
    back = ng.from_config(config)
    assert back.nodes["agg"].options.levels == net.nodes["agg"].options.levels
    assert back.nodes["shape"].options.dims == (ng.Inherited, A)
    assert back.nodes["flat"].options.level is ng.All
    assert back.nodes["emb"].port_specs["Input"] == net.nodes["emb"].port_specs["Input"]


def test_loaded_net_is_usable_for_training_shapes(tmp_path):
    """A loaded net lowers, jits and differentiates like the original."""
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(3), "Tanh", ng.LinearLayer(1)], Input=2), seed=2)
    ng.save(net, tmp_path / "n.npz")
    back = ng.load(tmp_path / "n.npz")
    x = np.ones(2, np.float32)

    def loss(params, model):
        return ng.lower(model)(params, x)["Output"].sum()

    g1 = jax.grad(loss)(ng.params_of(net), net)
    g2 = jax.grad(loss)(ng.params_of(back), back)
    jax.tree_util.tree_map(np.testing.assert_array_equal, g1, g2)


# ===================================================================== bad files
@pytest.fixture
def good_file(tmp_path):
    net = ng.NetInitialize(ng.NetChain({"lin": ng.LinearLayer(3), "act": "Tanh"}, Input=4), seed=1)
    path = tmp_path / "good.npz"
    ng.save(net, path)
    return path


def test_good_file_loads(good_file):
    assert isinstance(ng.load(good_file), ng.NetChain)


def test_truncated_file(good_file, tmp_path):
    data = good_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        _assert_refused(path, "truncated")


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(5):
        path = tmp_path / f"random{k}.npz"
        path.write_bytes(rng.bytes(500 + 300 * k))
        _assert_refused(path)


def test_random_bytes_with_zip_magic(tmp_path):
    path = tmp_path / "zip.npz"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(400))
    _assert_refused(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _assert_refused(path)


def test_missing_file(tmp_path):
    _assert_refused(tmp_path / "nope.npz")


def test_plain_npz_without_record(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weights=np.zeros((3, 4), np.float32))
    _assert_refused(path, "not a netgraph file")


def test_plain_npy_is_not_a_netgraph_file(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.zeros(3, np.float32))
    _assert_refused(path)


@pytest.mark.parametrize("record", [
    np.zeros(8, np.float64),            # wrong dtype
    np.zeros((2, 4), np.uint8),         # wrong rank
    np.frombuffer(b"{}", np.uint8).astype(np.int64),
])
def test_malformed_record_array(tmp_path, record):
    path = tmp_path / "bad.npz"
    with open(path, "wb") as handle:
        np.savez(handle, __netgraph__=record)
    _assert_refused(path, "structure record")


def test_record_too_large(tmp_path, monkeypatch):
    path = _write(tmp_path / "big.npz", _record({"type": "LinearLayer", "options": {"size": 3}}))
    monkeypatch.setattr(serialize, "MAX_JSON_BYTES", 16)
    _assert_refused(path, "too large")


def test_wrong_format_name(tmp_path):
    path = _write(tmp_path / "f.npz", {**_record({"type": "LinearLayer"}), "format": "keras"})
    _assert_refused(path, "format 'keras'", "not supported")


@pytest.mark.parametrize("version", [0, 2, 99])
def test_wrong_version(tmp_path, version):
    path = _write(tmp_path / "v.npz", {**_record({"type": "LinearLayer"}), "version": version})
    _assert_refused(path, f"version {version}", "not supported")


@pytest.mark.parametrize("name", ["NoSuchLayer", "os.system", "builtins.eval", "__import__", ""])
def test_unknown_layer_type(tmp_path, name):
    path = _write(tmp_path / "u.npz", _record({"type": name}))
    _assert_refused(path, "unknown layer type")


def test_unknown_layer_type_deep_inside(tmp_path):
    net = ng.to_config(ng.NetChain([ng.LinearLayer(3), "Tanh"], Input=2))
    net["children"]["1"]["type"] = "Subprocess"
    path = _write(tmp_path / "u.npz", _record(net))
    err = _assert_refused(path, "unknown layer type", "Subprocess")
    assert "1" in str(err)


@pytest.mark.parametrize("name", ["Layer", "VariadicLayer", "_ScoringLayer", "LayerOptions"])
def test_abstract_or_private_type_names(tmp_path, name):
    """Names that are not concrete, exported layers: refused cleanly."""
    path = _write(tmp_path / "a.npz", _record({"type": name}))
    _assert_refused(path)


def test_array_of_wrong_shape_for_the_layer(tmp_path):
    """Record and array agree, but the layer needs another shape: inference refuses it."""
    w = np.zeros((3, 5), np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}, "ports": {"Input": [4]}},
                     {"Weights": w})
    path = _write(tmp_path / "w.npz", record, **{"array:Weights": w})
    _assert_refused(path, "Weights")


def test_array_of_wrong_shape_in_a_chain(tmp_path, good_file):
    with np.load(good_file, allow_pickle=False) as data:
        document = json.loads(data["__netgraph__"].tobytes())
        arrays = {k: data[k] for k in data.files if k != "__netgraph__"}
    arrays["array:lin/Biases"] = np.zeros(5, np.float32)
    document["arrays"]["lin/Biases"] = [5]
    path = _write(tmp_path / "w.npz", document, **arrays)
    _assert_refused(path, "Biases")


def test_array_shape_disagrees_with_record(tmp_path):
    w = np.zeros((3, 4), np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}}, {"Weights": np.zeros((4, 4))})
    path = _write(tmp_path / "w.npz", record, **{"array:Weights": w})
    _assert_refused(path, "Weights", "shape")


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.float16, np.bool_, np.complex64])
def test_array_of_wrong_dtype(tmp_path, dtype):
    w = np.zeros((3, 4), dtype)
    record = _record({"type": "LinearLayer", "options": {"size": 3}}, {"Weights": w})
    path = _write(tmp_path / "w.npz", record, **{"array:Weights": w})
    _assert_refused(path, "Weights", "dtype")


def test_string_array(tmp_path):
    w = np.array(["a", "b"])
    record = _record({"type": "LinearLayer", "options": {"size": 3}}, {"Weights": w})
    path = _write(tmp_path / "w.npz", record, **{"array:Weights": w})
    _assert_refused(path)


def test_extra_array_not_in_record(tmp_path, good_file):
    with np.load(good_file, allow_pickle=False) as data:
        members = {k: data[k] for k in data.files}
    members["array:lin/Extra"] = np.zeros(3, np.float32)
    path = tmp_path / "extra.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **members)
    _assert_refused(path, "do not match")


def test_missing_array_listed_in_record(tmp_path, good_file):
    with np.load(good_file, allow_pickle=False) as data:
        members = {k: data[k] for k in data.files if k != "array:lin/Weights"}
    path = tmp_path / "missing.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **members)
    _assert_refused(path, "do not match")


def test_array_for_no_layer_is_refused(tmp_path):
    """Record and file agree on an array that no layer of the net has: it must not be
    silently dropped (the file does not describe the net it loads)."""
    w = np.zeros((3, 4), np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}, "ports": {"Input": [4]}},
                     {"nowhere/Weights": w})
    path = _write(tmp_path / "x.npz", record, **{"array:nowhere/Weights": w})
    _assert_refused(path, "nowhere/Weights")


def test_unused_shared_array_is_refused(tmp_path):
    w = np.zeros((3, 4), np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}, "ports": {"Input": [4]}},
                     {"SharedArrays/ghost": w})
    path = _write(tmp_path / "x.npz", record, **{"array:SharedArrays/ghost": w})
    _assert_refused(path, "ghost")


def test_array_for_a_removed_array_is_refused(tmp_path):
    """The record says Biases was removed, yet stores Biases: contradictory, refused."""
    b = np.zeros(3, np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}, "ports": {"Input": [2]},
                      "removed": ["Biases"]}, {"Biases": b})
    path = _write(tmp_path / "x.npz", record, **{"array:Biases": b})
    _assert_refused(path, "Biases")


def test_unknown_array_name_on_a_layer(tmp_path):
    w = np.zeros(3, np.float32)
    record = _record({"type": "LinearLayer", "options": {"size": 3}}, {"Kernel": w})
    path = _write(tmp_path / "x.npz", record, **{"array:Kernel": w})
    _assert_refused(path, "Kernel")


# ---------------------------------------------------------------- hostile records
def test_deeply_nested_lists(tmp_path):
    raw = ("[" * 10_000 + "]" * 10_000).encode()
    _assert_refused(_write(tmp_path / "deep.npz", raw=raw), "nested")


def test_deeply_nested_lists_inside_an_option(tmp_path):
    raw = ('{"format": "netgraph", "version": 1, "net": {"type": "LinearLayer", "options": {"size": '
           + "[" * 10_000 + "]" * 10_000 + "}}}").encode()
    _assert_refused(_write(tmp_path / "deep.npz", raw=raw), "nested")


def test_deeply_nested_children(tmp_path):
    body = '{"type": "NetChain", "children": {"0": ' * 10_000 + '{"type": "LinearLayer"}' + "}}" * 10_000
    raw = ('{"format": "netgraph", "version": 1, "net": ' + body + "}").encode()
    _assert_refused(_write(tmp_path / "deep.npz", raw=raw), "nested")


def test_nesting_beyond_max_depth_in_python_data(tmp_path):
    """A record deeper than MAX_DEPTH that the JSON decoder can parse is refused too."""
    net: dict = {"type": "LinearLayer"}
    for _ in range(serialize.MAX_DEPTH + 5):
        net = {"type": "NetChain", "children": {"0": net}}
    _assert_refused(_write(tmp_path / "deep.npz", _record(net)), "nested deeper")
    with pytest.raises(ng.SerializationError, match="nested deeper"):
        ng.from_config(net)


def test_from_config_deep_lists_is_refused():
    deep: Any = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ng.SerializationError):
        ng.from_config({"type": "LinearLayer", "options": {"size": deep}})


def test_huge_port_sizes_do_not_allocate(tmp_path):
    """A port spec of 10**12 (and 10**24) elements: loading an uninitialised net only
    infers shapes - it must be fast and allocate nothing."""
    for size in (10**12, 10**24):
        record = _record({"type": "LinearLayer", "options": {"size": size}, "ports": {"Input": [size]}})
        path = _write(tmp_path / f"huge{size}.npz", record)
        start = time.perf_counter()
        try:
            net = ng.load(path)
        except ng.SerializationError:
            net = None
        assert time.perf_counter() - start < 2.0
        if net is not None:
            assert net.input_ports == {"Input": (size,)}
            assert all(v is None for v in _arrays(net).values())


def test_huge_rank_port_spec_is_cheap(tmp_path):
    """A port spec with 300,000 dimensions (1.5 MB of JSON, well under MAX_JSON_BYTES):
    refused or loaded quickly, not a per-dimension crawl through inference (a hostile
    file of 16 MB would otherwise keep the loader busy for minutes)."""
    record = _record({"type": "ElementwiseLayer", "options": {"function": "Tanh"},
                      "ports": {"Input": [1] * 300_000}})
    path = _write(tmp_path / "rank.npz", record)
    start = time.perf_counter()
    try:
        ng.load(path)
    except ng.SerializationError:
        pass
    assert time.perf_counter() - start < 2.0, f"took {time.perf_counter() - start:.1f} s"


def test_huge_sizes_in_options(tmp_path):
    for net in (
        {"type": "ReplicateLayer", "options": {"size": 10**12}, "ports": {"Input": [10**12]}},
        {"type": "ReshapeLayer", "options": {"dims": [10**12, 10**12]}, "ports": {"Input": [10**12, 10**12]}},
        {"type": "EmbeddingLayer", "options": {"size": 10**12, "n": 10**12}, "ports": {"Input": ["Varying"]}},
        {"type": "NetArrayLayer", "ports": {"Output": [10**9, 10**9, 10**9]}},
    ):
        path = _write(tmp_path / "huge.npz", _record(net))
        start = time.perf_counter()
        try:
            ng.load(path)
        except ng.SerializationError:
            pass
        assert time.perf_counter() - start < 2.0


def test_huge_size_listed_for_an_array(tmp_path):
    record = _record({"type": "LinearLayer", "options": {"size": 3}})
    record["arrays"] = {"Weights": [10**12, 10**12]}
    _assert_refused(_write(tmp_path / "x.npz", record), "do not match")


@pytest.mark.parametrize("document", [[1, 2, 3], "net", 42, None, True, 1.5])
def test_record_that_is_not_an_object(tmp_path, document):
    _assert_refused(_write(tmp_path / "x.npz", document), "invalid structure record")


@pytest.mark.parametrize("raw", [
    b"\xff\xfe\xfd",                      # not UTF-8
    b'{"format": "netgraph\xc3\x28"}',    # invalid continuation byte
    b"\xed\xa0\x80",                      # UTF-8-encoded surrogate
    b"",                                  # empty record
    b"{",                                 # not JSON
    b'{"format": "netgraph", "version": 1, "net": {"type": "LinearLayer"}} trailing',
    b"NaN",
])
def test_record_that_is_not_json(tmp_path, raw):
    _assert_refused(_write(tmp_path / "x.npz", raw=raw))


@pytest.mark.parametrize("net", [
    5,
    {"options": {}},                                     # no type
    {"type": 3},
    {"type": "LinearLayer", "colour": "red"},            # unknown field
    {"type": "LinearLayer", "children": []},
    {"type": "LinearLayer", "removed": "Biases"},
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer"}}, "edges": [["a", "Input"]]},
], ids=_short_id)
def test_record_with_bad_fields(tmp_path, net):
    _assert_refused(_write(tmp_path / "x.npz", _record(net)), "invalid structure record")


def test_record_with_unknown_top_level_field(tmp_path):
    _assert_refused(_write(tmp_path / "x.npz", {**_record({"type": "LinearLayer"}), "code": "rm -rf"}),
                    "invalid structure record")


@pytest.mark.parametrize("net", [
    {"type": "LinearLayer", "options": {"size": "three"}},
    {"type": "LinearLayer", "options": {"colour": 1}},
    {"type": "LinearLayer", "options": {"size": -3}},
    {"type": "LinearLayer", "options": {"size": 1e308}},
    {"type": "LinearLayer", "ports": {"Input": [-1]}},
    {"type": "LinearLayer", "ports": {"Input": [1.5]}},
    {"type": "LinearLayer", "ports": {"Input": ["Varying", "Varying"]}},
    {"type": "LinearLayer", "ports": {"Input": {"a": 1}}},
    {"type": "LinearLayer", "ports": {"Input": [{"Restricted": ["Integer", "x"]}]}},
    {"type": "LinearLayer", "ports": {"Input": [{"Restricted": ["Float", 3]}]}},
    {"type": "LinearLayer", "ports": {"Input": {"Restricted": ["Integer"]}}},
    {"type": "LinearLayer", "ports": {"Input": {"Restricted": 5}}},
    {"type": "LinearLayer", "ports": {"Input": {"Restricted": None}}},
    {"type": "LinearLayer", "ports": {"Nope": [3]}},
    {"type": "LinearLayer", "removed": ["Weights"]},
    {"type": "LinearLayer", "removed": ["Nope"]},
    {"type": "LinearLayer", "initializers": {"Weights": "Bogus"}},
    {"type": "LinearLayer", "initializers": {"Weights": {"a": 1}}},
    {"type": "LinearLayer", "initializers": {"Nope": "Zeros"}},
    {"type": "LinearLayer", "shared": {"Weights": ""}},
    {"type": "LinearLayer", "shared": {"Nope": "w"}},
    {"type": "LinearLayer", "children": {"x": {"type": "LinearLayer"}}},
    {"type": "ElementwiseLayer", "options": {"function": "__import__"}},
    {"type": "ElementwiseLayer", "options": {"function": ["Tanh"]}},
    {"type": "ElementwiseLayer", "options": {"function": {"module": "os", "name": "system"}}},
    {"type": "ThreadingLayer", "options": {"function": {"a": 1}}},
    {"type": "ThreadingLayer"},
    {"type": "AggregationLayer", "options": {"function": "Max", "levels": {"start": "x"}}},
    {"type": "AttentionLayer"},                           # no scoring net
    {"type": "AttentionLayer", "children": {"ScoringNet": {"type": "LinearLayer"}}},
    {"type": "NetMapOperator"},                           # no inner net
    {"type": "NetMapOperator", "children": {"Other": {"type": "LinearLayer"}}},
    {"type": "NetGraph", "children": {}},
    {"type": "NetGraph", "options": {"size": 3}, "children": {"a": {"type": "LinearLayer"}}},
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer"}, "b": {"type": "LinearLayer"}},
     "edges": [["a", "Input", "b", "Output"], ["b", "Input", "a", "Output"]]},   # a cycle
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer"}}, "edges": [["a", "Input", "zz", "Output"]]},
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer"}}, "edges": [["a", "Nope", None, "x"]]},
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer"}}, "muted": [["a", "Nope"]]},
    {"type": "NetGraph", "children": {"a": {"type": "LinearLayer", "options": {"size": 2}},
                                      "b": {"type": "LinearLayer", "options": {"size": 3}, "ports": {"Input": [5]}}},
     "edges": [["b", "Input", "a", "Output"]]},          # a size mismatch through an edge
], ids=_short_id)
def test_record_with_bad_content(tmp_path, net):
    """Schema-valid records whose content no layer accepts: SerializationError, whatever
    the layer code raises underneath."""
    _assert_refused(_write(tmp_path / "x.npz", _record(net)))


@pytest.mark.parametrize("net", [
    {"type": "AttentionLayer"},
    {"type": "NetMapOperator"},
    {"type": "LinearLayer", "ports": {"Input": {"Restricted": ["Integer"]}}},
    {"type": "ElementwiseLayer", "options": {"function": {"a": 1}}},
    {"type": "LinearLayer", "initializers": {"Weights": "Bogus"}},
    {"type": "LinearLayer", "shared": {"Weights": ""}},
    {"type": "VariadicLayer"},
], ids=_short_id)
def test_from_config_bad_content(net):
    with pytest.raises(ng.SerializationError):
        ng.from_config(net)


def test_error_on_a_bad_file_never_leaves_a_partial_result(tmp_path, good_file):
    """Damaging the last array of an otherwise good file: nothing is returned."""
    with np.load(good_file, allow_pickle=False) as data:
        document = json.loads(data["__netgraph__"].tobytes())
        arrays = {k: data[k] for k in data.files if k != "__netgraph__"}
    arrays["array:lin/Weights"] = arrays["array:lin/Weights"].astype(np.int64)
    _assert_refused(_write(tmp_path / "x.npz", document, **arrays), "dtype")


# ------------------------------------------------------- loading never executes code
_EXECUTED: list[str] = []


def _sentinel(tag: str) -> np.ndarray:
    _EXECUTED.append(tag)
    return np.zeros((3, 4), np.float32)


class _Payload:
    """Unpickling this runs ``_sentinel`` (a stand-in for ``os.system``)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __reduce__(self):
        return (_sentinel, (self.tag,))


@pytest.fixture
def executed():
    _EXECUTED.clear()
    yield _EXECUTED
    _EXECUTED.clear()


def test_pickle_payload_itself_would_run(executed):
    """Sanity: the payload does run the sentinel when unpickled (so the tests below mean
    something)."""
    pickle.loads(pickle.dumps(np.array([_Payload("sanity")], dtype=object)))
    assert executed == ["sanity"]
    executed.clear()


def test_object_array_member_is_refused_and_not_executed(tmp_path, executed):
    payload = np.array([_Payload("array")], dtype=object)
    record = _record({"type": "LinearLayer", "options": {"size": 3}}, {"Weights": np.zeros((1,))})
    path = _write(tmp_path / "evil.npz", record, **{"array:Weights": payload})
    _assert_refused(path)
    assert executed == []


def test_object_record_is_refused_and_not_executed(tmp_path, executed):
    path = tmp_path / "evil.npz"
    with open(path, "wb") as handle:
        np.savez(handle, __netgraph__=np.array([_Payload("record")], dtype=object))
    _assert_refused(path)
    assert executed == []


def test_raw_pickle_file_is_refused_and_not_executed(tmp_path, executed):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Payload("raw")))
    _assert_refused(path)
    assert executed == []


def test_refusal_never_suggests_unpickling(tmp_path):
    """A file that is not a netgraph file (a raw pickle, random bytes) is refused without
    advising the user to load it with pickle (numpy's own message does: "you can load it
    unsafely using the allow_pickle= keyword argument or pickle.load()")."""
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(9).bytes(256))
    for path in (raw, noise):
        message = str(_assert_refused(path)).lower()
        assert "allow_pickle" not in message and "pickle.load" not in message, message


def test_layer_names_never_reach_import_machinery(tmp_path, monkeypatch):
    """Type names are looked up in the registry only: importing is never attempted."""
    import builtins
    import importlib

    calls = []
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        if "evil" in name:
            calls.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: calls.append(name))
    path = _write(tmp_path / "x.npz", _record({"type": "evil_module.EvilLayer"}))
    _assert_refused(path, "unknown layer type")
    assert calls == []


# ------------------------------------------------------------- unsaveable layers
def test_elementwise_lambda_cannot_be_saved(tmp_path):
    net = ng.ElementwiseLayer(lambda x: x, Input=3)
    with pytest.raises(ng.SerializationError) as info:
        ng.save(net, tmp_path / "f.npz")
    message = str(info.value)
    assert '"function"' in message and "net" in message and "Python function" in message
    assert not (tmp_path / "f.npz").exists()
    with pytest.raises(ng.SerializationError):
        ng.to_config(net)


def test_callable_deep_in_a_graph_names_the_path(tmp_path):
    def my_activation(x):
        return x * 2

    net = ng.NetGraph(
        {"enc": ng.NetChain({"proj": ng.LinearLayer(3), "act": ng.ElementwiseLayer(my_activation)}),
         "join": ng.ThreadingLayer(lambda a, b: a - b)},
        [(ng.NetPort("Input"), "enc", ng.NetPort("join", "Input1")),
         (ng.NetPort("Other"), ng.NetPort("join", "Input2"))],
        Input=2,
    )
    with pytest.raises(ng.SerializationError) as info:
        ng.to_config(net)
    message = str(info.value)
    assert "net/enc/act" in message, message
    assert '"function"' in message and "my_activation" in message
    only_threading = net.with_children({"enc": ng.NetChain([ng.LinearLayer(3)])})
    with pytest.raises(ng.SerializationError) as info:
        ng.save(only_threading, tmp_path / "t.npz")
    assert "net/join" in str(info.value) and '"function"' in str(info.value)


def test_failed_save_does_not_leave_a_loadable_file(tmp_path):
    path = tmp_path / "f.npz"
    with pytest.raises(ng.SerializationError):
        ng.save(ng.ThreadingLayer(lambda a, b: a + b), path)
    if path.exists():
        _assert_refused(path)
