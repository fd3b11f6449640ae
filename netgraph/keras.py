"""The Keras attention layers, built as ordinary nets (NetGraphs around AttentionLayer).

Keras decides masks, causality and ``return_attention_scores`` at call time; a net is a static
graph, so these are builder options here and become ports:

=================== =============================================================
port                shape (per example; Keras's batch axis is the list/batch axis)
=================== =============================================================
Query               Tq x D          (MHA: T1 x .. x Tp x Dq)
Value               Tv x Dv
Key                 Tv x D          only with ``use_key=True`` (else Value is the key)
QueryMask           Tq              ``query_mask=True``; 1 = keep
ValueMask           Tv              ``value_mask=True``
AttentionMask       Tq x Tv         MHA's ``attention_mask=True``
Output              Tq x Dv         (MHA: T.. x output_shape)
AttentionWeights    Tq x Tv         ``return_attention_scores=True`` (MHA: N x T.. x S..)
=================== =============================================================

Differences from Keras, on purpose (see ``../shared/reference/keras.md``): a query row that
sees no key gets all-zero weights and a zero attention output (Keras gives uniform weights,
or NaN in float16); returned weights are always taken before dropout; MHA works with
``value_dim != key_dim``; ``use_causal_mask`` is aligned top-left as in Keras.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from .layers.attention import AttentionLayer
from .layers.base import Layer
from .layers.aggregation import SummationLayer
from .layers.dot import DotLayer
from .layers.elementwise import ElementwiseLayer
from .layers.linear import LinearLayer
from .layers.reshape import TransposeLayer
from .layers.scaling import ConstantTimesLayer
from .layers.sequence import NetMapOperator
from .layers.threading import ThreadingLayer
from .shapes import Automatic
from .errors import SpecificationError

from .extract import NetReplacePart
from .graph import NetGraph, NetPort
from .initialize import initializer_spec

def _check_dropout(dropout: float) -> float:
    if not 0.0 <= float(dropout) < 1.0:
        raise SpecificationError(f"dropout must be in [0, 1); found {dropout!r}.")
    return float(dropout)


# ------------------------------------------------------------------- scoring nets
def dot_scoring(use_scale: bool) -> Any:
    """``s = q . k`` (times a learned scalar ``scale``, initially 1, with ``use_scale``)."""
    if not use_scale:
        return "Dot"
    return NetGraph({"scale": ConstantTimesLayer(Scaling=np.float32(1.0)), "dot": DotLayer()},
                    [(NetPort("Input"), "scale"), ([NetPort("Query"), "scale"], "dot")])


def concat_scoring(use_scale: bool) -> NetGraph:
    """``s = concat_score_weight * sum(tanh(scale * (q + k)))`` (Keras ``score_mode="concat"``)."""
    layers: dict[str, Any] = {"plus": ThreadingLayer("Plus")}
    if use_scale:
        layers["scale"] = ConstantTimesLayer(Scaling=np.float32(1.0))
    layers.update(tanh=ElementwiseLayer("Tanh"), sum=SummationLayer(),
                  concat_score_weight=ConstantTimesLayer(Scaling=np.float32(1.0)))
    names = list(layers)
    return NetGraph(layers, [([NetPort("Query"), NetPort("Input")], *names)])


def additive_scoring(use_scale: bool) -> NetGraph:
    """``s = sum(scale * tanh(q + k))`` with a learned vector ``scale`` (Bahdanau)."""
    layers: dict[str, Any] = {"plus": ThreadingLayer("Plus"), "tanh": ElementwiseLayer("Tanh")}
    if use_scale:
        layers["scale"] = ConstantTimesLayer()
    layers["sum"] = SummationLayer()
    return NetGraph(layers, [([NetPort("Query"), NetPort("Input")], *layers)])


# ------------------------------------------------------------ Attention, Additive
def _single_head_graph(scoring: Any, dropout: float, seed: Optional[int], use_key: bool,
                       use_causal_mask: bool, query_mask: bool, value_mask: bool,
                       return_attention_scores: bool) -> NetGraph:
    attention = AttentionLayer(
        scoring, dropout=_check_dropout(dropout), seed=seed, mask="Causal" if use_causal_mask else None,
        key_mask=value_mask, query_mask=query_mask, attention_weights=return_attention_scores,
    )
    connections: list = [
        (NetPort("Query"), NetPort("attention", "Query")),
        (NetPort("Value"), NetPort("attention", "Value")),
        (NetPort("Key" if use_key else "Value"), NetPort("attention", "Key")),
        (NetPort("attention", "Output"), NetPort("Output")),
    ]
    if value_mask:
        connections.append((NetPort("ValueMask"), NetPort("attention", "KeyMask")))
    if query_mask:
        connections.append((NetPort("QueryMask"), NetPort("attention", "QueryMask")))
    if return_attention_scores:
        connections.append((NetPort("attention", "AttentionWeights"), NetPort("AttentionWeights")))
    shapes = {"Query": ("Varying", Automatic), "Value": ("Varying", Automatic)}
    if use_key:
        shapes["Key"] = ("Varying", Automatic)
    return NetGraph({"attention": attention}, connections, **shapes)


def Attention(use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
              seed: Optional[int] = None, *, use_key: bool = True, use_causal_mask: bool = False,
              query_mask: bool = False, value_mask: bool = False,
              return_attention_scores: bool = False) -> NetGraph:
    """Keras's ``Attention`` (Luong-style, ``score_mode`` "dot" or "concat") as a net.
    The learned scalars sit at ("attention", "ScoringNet", "scale" | "concat_score_weight",
    "Scaling")."""
    if score_mode not in ("dot", "concat"):
        raise SpecificationError(f'score_mode must be "dot" or "concat"; found {score_mode!r}.')
    scoring = dot_scoring(use_scale) if score_mode == "dot" else concat_scoring(use_scale)
    return _single_head_graph(scoring, dropout, seed, use_key, use_causal_mask, query_mask,
                              value_mask, return_attention_scores)


def AdditiveAttention(use_scale: bool = True, dropout: float = 0.0, seed: Optional[int] = None, *,
                      use_key: bool = True, use_causal_mask: bool = False, query_mask: bool = False,
                      value_mask: bool = False, return_attention_scores: bool = False) -> NetGraph:
    """Keras's ``AdditiveAttention`` (Bahdanau-style) as a net; the learned vector sits at
    ("attention", "ScoringNet", "scale", "Scaling")."""
    return _single_head_graph(additive_scoring(use_scale), dropout, seed, use_key, use_causal_mask,
                              query_mask, value_mask, return_attention_scores)


# -------------------------------------------------------------- MultiHeadAttention
def _per_position(layer: Layer, positions: int) -> Layer:
    for _ in range(positions):
        layer = NetMapOperator(layer)
    return layer


def _axes(attention_axes: Any, positions: int) -> tuple[int, ...]:
    """Attended position axes, 0-based among the positions, from Keras's input coordinates."""
    if attention_axes is None:
        return tuple(range(positions))
    axes = (attention_axes,) if isinstance(attention_axes, int) else tuple(attention_axes)
    rank = positions + 2
    chosen = []
    for axis in axes:
        a = axis + rank if axis < 0 else axis
        if not 1 <= a <= positions:
            raise SpecificationError(
                f"attention_axes={attention_axes!r}: axis {axis} is not a position axis of a "
                f"rank-{rank} input (positions are axes 1..{positions})."
            )
        chosen.append(a - 1)
    return tuple(sorted(set(chosen)))


def MultiHeadAttention(
    num_heads: int, key_dim: int, value_dim: Optional[int] = None, dropout: float = 0.0,
    use_bias: bool = True, output_shape: Union[None, int, Sequence[int]] = None,
    attention_axes: Union[None, int, Sequence[int]] = None,
    kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
    kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
    kernel_constraint: Any = None, bias_constraint: Any = None,
    seed: Optional[int] = None, *, positions: int = 1, query_dim: Optional[int] = None,
    use_key: bool = True, use_causal_mask: bool = False, query_mask: bool = False,
    value_mask: bool = False, attention_mask: bool = False,
    return_attention_scores: bool = False,
) -> NetGraph:
    """Keras's ``MultiHeadAttention`` as a net: per-position projections of query, key and
    value to ``num_heads`` heads, ``AttentionLayer("Dot", multi_head=True,
    score_rescaling="DimensionSqrt")``, and an output projection.

    ``positions`` is the number of position axes per example (Keras's input rank minus 2).
    The output size is ``output_shape``, else ``query_dim`` (the query's feature size), else
    inferred from what the output is connected to. Regularizers and constraints take
    NetTrain's spellings (``("l2", 1e-3)``, ``"max_norm"``, ...) or Keras objects
    (``keras.regularizers.L2(1e-3)``); they are stored on the four projections (the activity
    regularizer on the output projection) and applied by NetTrain. Initializers take every
    Keras name, object (``keras.initializers.TruncatedNormal(stddev=0.02)``) or serialised
    dict, or netgraph's own specs (see :mod:`netgraph.initialize`).
    """
    for name, value in (("num_heads", num_heads), ("key_dim", key_dim), ("positions", positions)):
        if not isinstance(value, int) or value < 1:
            raise SpecificationError(f"MultiHeadAttention: {name} must be a positive int; found {value!r}.")
    value_dim = key_dim if value_dim is None else value_dim
    attended = _axes(attention_axes, positions)
    batch_like = tuple(i for i in range(positions) if i not in attended)
    if use_causal_mask and len(attended) != 1:
        raise SpecificationError("use_causal_mask needs exactly one attended axis.")
    if batch_like and (attention_mask or query_mask or value_mask):
        raise SpecificationError(
            "masks are supported when every position axis is attended; with attention_axes "
            f"{attention_axes!r} the axes {[a + 1 for a in batch_like]} act as batch axes.",
        )
    kernel = initializer_spec(kernel_initializer, "MultiHeadAttention kernel_initializer")
    bias = initializer_spec(bias_initializer, "MultiHeadAttention bias_initializer")
    rules = {kind: {array: spec for array, spec in
                    (("Weights", _rule(kinds[0], kind)), ("Biases", _rule(kinds[1], kind) if use_bias else None))
                    if spec is not None}
             for kind, kinds in (("regularizer", (kernel_regularizer, bias_regularizer)),
                                 ("constraint", (kernel_constraint, bias_constraint)))}

    def dense(size: Any) -> Layer:
        linear = LinearLayer(size, **({} if use_bias else {"Biases": None}))
        inits = {"Weights": kernel, **({"Biases": bias} if use_bias else {})}
        linear = linear.with_initializers(inits)
        if rules["regularizer"]:
            linear = linear.with_regularizers(rules["regularizer"])
        if rules["constraint"]:
            linear = linear.with_constraints(rules["constraint"])
        return _per_position(linear, positions)

    out = output_shape if output_shape is not None else (query_dim if query_dim is not None else Automatic)
    if isinstance(out, (list, tuple)):
        out = tuple(out)
    core = _mha_core(dropout, seed, use_causal_mask, query_mask, value_mask, attention_mask,
                     return_attention_scores, len(attended))
    perm = (*batch_like, *attended)
    nodes: dict[str, Any] = {
        "query": dense((num_heads, key_dim)), "key": dense((num_heads, key_dim)),
        "value": dense((num_heads, value_dim)),
        "attention": _per_position(core, len(batch_like)), "output": dense(out),
    }
    activity = _rule(activity_regularizer, "regularizer")
    if activity is not None:
        nodes["output"] = nodes["output"].with_activity_regularizer(activity)
    connections: list = [(NetPort("Query"), "query"), (NetPort("Key" if use_key else "Value"), "key"),
                         (NetPort("Value"), "value")]
    into = {"query": "Query", "key": "Key", "value": "Value"}
    if batch_like:
        heads_perm = (*perm, positions, positions + 1)
        inverse = tuple(int(i) for i in np.argsort(heads_perm))
        for name in into:
            nodes[f"{name}_order"] = TransposeLayer(heads_perm)
        nodes["output_order"] = TransposeLayer(inverse)
        for name, port in into.items():
            connections.append((name, f"{name}_order", NetPort("attention", port)))
        connections.append((NetPort("attention", "Output"), "output_order", "output", NetPort("Output")))
    else:
        for name, port in into.items():
            connections.append((name, NetPort("attention", port)))
        connections.append((NetPort("attention", "Output"), "output", NetPort("Output")))
    for flag, port in ((query_mask, "QueryMask"), (value_mask, "ValueMask"), (attention_mask, "AttentionMask")):
        if flag:
            connections.append((NetPort(port), NetPort("attention", port)))
    if return_attention_scores:
        connections.append((NetPort("attention", "AttentionWeights"), NetPort("AttentionWeights")))
    feature = Automatic if query_dim is None else query_dim
    shapes = {"Query": ("Varying",) + (Automatic,) * (positions - 1) + (feature,),
              "Value": ("Varying",) + (Automatic,) * positions}
    if use_key:
        shapes["Key"] = ("Varying",) + (Automatic,) * positions
    return NetGraph(nodes, connections, **shapes)


_KERAS_REGULARIZERS = {"L1": ("l1", "l1"), "L2": ("l2", "l2")}
_KERAS_CONSTRAINTS = {"MaxNorm": "max_norm", "NonNeg": "non_neg", "UnitNorm": "unit_norm",
                      "MinMaxNorm": "min_max_norm"}


def _rule(value: Any, kind: str) -> Any:
    """A regularizer or constraint in NetTrain's spelling, from that spelling or a Keras
    object / config (Keras's kernels are (in, out): its default axis 0 is netgraph's default,
    the axes of each output unit's weights)."""
    if value is None or isinstance(value, (str, tuple)):
        return value
    config = value.get_config() if hasattr(value, "get_config") else value
    name = type(value).__name__ if hasattr(value, "get_config") else value.get("class_name")
    if isinstance(config, dict) and "config" in config and "class_name" in config:
        name, config = config["class_name"], config["config"]
    if kind == "regularizer" and name == "L1L2":
        return ("l1_l2", float(config.get("l1", 0.0)), float(config.get("l2", 0.0)))
    if kind == "regularizer" and name in _KERAS_REGULARIZERS:
        spelled, key = _KERAS_REGULARIZERS[name]
        return (spelled, float(config[key]))
    if kind == "constraint" and name in _KERAS_CONSTRAINTS:
        options = {k: v for k, v in config.items() if k != "axis"}
        if config.get("axis", 0) not in (0, [0], (0,)):
            raise SpecificationError(f"{name}(axis={config['axis']!r}): only Keras's default axis 0 "
                                     "(each output unit's weights) has a netgraph counterpart.")
        return (_KERAS_CONSTRAINTS[name], options) if options else _KERAS_CONSTRAINTS[name]
    raise SpecificationError(f"the {kind} {value!r} has no netgraph counterpart.",
                             hint=f"use {', '.join(_KERAS_REGULARIZERS if kind == 'regularizer' else _KERAS_CONSTRAINTS)}"
                             " (Keras) or NetTrain's spellings.")


def _mha_core(dropout: float, seed: Optional[int], causal: bool, query_mask: bool, value_mask: bool,
              attention_mask: bool, weights: bool, attended: int) -> NetGraph:
    """AttentionLayer over projected heads; weights reordered to Keras's N x T.. x S.."""
    attention = AttentionLayer(
        "Dot", multi_head=True, score_rescaling="DimensionSqrt", dropout=_check_dropout(dropout),
        seed=seed, mask="Causal" if causal else None, key_mask=value_mask, query_mask=query_mask,
        attention_mask=attention_mask, attention_weights=weights,
    )
    nodes: dict[str, Any] = {"attention": attention}
    connections: list = [(NetPort(p), NetPort("attention", p)) for p in ("Key", "Value", "Query")]
    connections.append((NetPort("attention", "Output"), NetPort("Output")))
    if value_mask:
        connections.append((NetPort("ValueMask"), NetPort("attention", "KeyMask")))
    if query_mask:
        connections.append((NetPort("QueryMask"), NetPort("attention", "QueryMask")))
    if attention_mask:
        connections.append((NetPort("AttentionMask"), NetPort("attention", "AttentionMask")))
    if weights:
        nodes["heads_first"] = TransposeLayer((attended, *range(attended), *range(attended + 1, 2 * attended + 1)))
        connections.append((NetPort("attention", "AttentionWeights"), "heads_first", NetPort("AttentionWeights")))
    return NetGraph(nodes, connections)


# --------------------------------------------------------------------- from_keras
def _map_path(name: str, positions: int) -> tuple:
    return (name,) + ("Net",) * positions


def from_keras(layer: Any, **call_options: Any) -> NetGraph:
    """Convert a built Keras ``Attention``, ``AdditiveAttention`` or ``MultiHeadAttention``
    layer (weights included). ``call_options`` are the builder's call-time options
    (``use_key``, ``use_causal_mask``, masks, ``return_attention_scores``)."""
    import keras

    if not getattr(layer, "built", False):
        raise SpecificationError(f"from_keras: {layer.name} is not built yet; call it once or build it.")
    config = layer.get_config()
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _from_keras_mha(layer, config, call_options)
    weights = {w.path.split("/")[-1]: np.asarray(w.value) for w in layer.weights}
    if isinstance(layer, keras.layers.AdditiveAttention):
        net = AdditiveAttention(config["use_scale"], config["dropout"], **call_options)
        parts = {("attention", "ScoringNet", "scale", "Scaling"): weights["scale"]} if config["use_scale"] else {}
    elif isinstance(layer, keras.layers.Attention):
        net = Attention(config["use_scale"], config["score_mode"], config["dropout"], config.get("seed"), **call_options)
        parts = {("attention", "ScoringNet", name, "Scaling"): weights[name]
                 for name in ("scale", "concat_score_weight") if name in weights}
    else:
        raise SpecificationError(
            f"from_keras converts Attention, AdditiveAttention and MultiHeadAttention; "
            f"found {type(layer).__name__}."
        )
    return NetReplacePart(net, parts) if parts else net


def _from_keras_mha(layer: Any, config: dict, call_options: dict) -> NetGraph:
    if config.get("use_gate") or config.get("sliding_window"):
        raise SpecificationError(
            "from_keras: MultiHeadAttention with use_gate or sliding_window has no netgraph "
            "equivalent yet."
        )
    weights = {"/".join(w.path.split("/")[-2:]): np.asarray(w.value) for w in layer.weights}
    q_kernel = weights["query/kernel"]
    positions = len(layer._query_dense.equation.split(",")[0]) - 2
    out_kernel = weights["attention_output/kernel"]
    out_dims = out_kernel.shape[2:]
    net = MultiHeadAttention(
        config["num_heads"], config["key_dim"], config["value_dim"], config["dropout"],
        config["use_bias"], tuple(out_dims), config["attention_axes"],
        **{key: config.get(key) for key in ("kernel_regularizer", "bias_regularizer",
                                            "kernel_constraint", "bias_constraint")},
        **{key: config[key] for key in ("kernel_initializer", "bias_initializer") if config.get(key)},
        activity_regularizer=config.get("activity_regularizer") or getattr(layer, "activity_regularizer", None),
        positions=positions, query_dim=q_kernel.shape[0], **call_options,
    )
    parts: dict = {}
    for name in ("query", "key", "value"):
        kernel = weights[f"{name}/kernel"]
        parts[_map_path(name, positions) + ("Weights",)] = kernel.reshape(kernel.shape[0], -1).T
        if config["use_bias"]:
            parts[_map_path(name, positions) + ("Biases",)] = weights[f"{name}/bias"]
    n, hv = out_kernel.shape[:2]
    parts[_map_path("output", positions) + ("Weights",)] = out_kernel.reshape(n * hv, -1).T
    if config["use_bias"]:
        parts[_map_path("output", positions) + ("Biases",)] = weights["attention_output/bias"]
    return NetReplacePart(net, parts)


__all__ = ["AdditiveAttention", "Attention", "MultiHeadAttention", "from_keras"]
