"""The Keras attention layers, built as ordinary nets (NetGraphs around AttentionLayer).

Keras decides masks, causality and ``return_attention_scores`` at call time; a net is a static
graph, so these are builder options here and become ports:

=================== =============================================================
port                shape (per example; Keras's batch axis is the list/batch axis)
=================== =============================================================
Query               Tq x D          (MHA: T1 x .. x Tp x Dq)
Value               Tv x Dv
Key                 Tv x D          only with ``use_key=True`` (else Value is the key)
QueryMask           Tq              ``query_mask=True``; 1 = keep (zeroes output rows)
ValueMask           Tv              ``value_mask=True``
KeyMask             Tv              MHA's ``key_mask=True`` (joined with ValueMask)
AttentionMask       Tq x Tv         MHA's ``attention_mask=True`` (``"heads"``: N x Tq x Tv)
Output              Tq x Dv         (MHA: T.. x output_shape)
AttentionWeights    Tq x Tv         ``return_attention_scores=True`` (MHA: N x T.. x S..)
=================== =============================================================

Differences from Keras, on purpose (see ``../shared/reference/keras.md``): a query row that
sees no key gets all-zero weights and a zero attention output (Keras gives uniform weights,
or NaN in float16); returned weights are always taken before dropout; MHA works with
``value_dim != key_dim``; ``use_causal_mask`` is aligned top-left as in Keras. Masks may be
booleans, 0/1 integers or floats (non-zero = visible). ``positions`` > 1 maps the single-head
layers over Keras's extra leading axes ``(B, T1, .., Tq, dim)``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import jax.numpy as jnp
import numpy as np

from .layers.attention import AttentionLayer
from .layers.base import Layer, LayerOptions
from .layers.options import PositiveSize
from .layers.reshape import ReplicateLayer
from .layers.aggregation import SummationLayer
from .layers.dot import DotLayer
from .layers.elementwise import ElementwiseLayer
from .layers.linear import LinearLayer
from .layers.reshape import TransposeLayer
from .layers.scaling import ConstantTimesLayer
from .layers.sequence import NetMapOperator
from .layers.threading import ThreadingLayer
from .layers.lowering import lower_layer
from .shapes import Automatic
from .errors import SpecificationError
from .initialize import check_seed

from .extract import NetReplacePart
from .graph import NetChain, NetGraph, NetPort
from .initialize import initializer_spec


def _check_dropout(dropout: Any) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(dropout) < 1.0:
        raise SpecificationError(f"dropout must be a number in [0, 1); found {dropout!r}. "
                                 f"Received: dropout={dropout!r}")
    return float(dropout)


def _positive_int(builder: str, name: str, value: Any) -> int:
    """A size argument as Keras refuses bad ones: a positive int (NumPy ints too); a bool,
    a float (``8.0``), zero or a negative size is a SpecificationError naming it."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecificationError(f"{builder}: {name} must be a positive int; found "
                                 f"{type(value).__name__} {value!r}. Received: {name}={value!r}")
    return value


def _seed(seed: Any) -> Optional[int]:
    return None if seed is None else check_seed(seed, "seed")


class QueryMaskLayer(Layer):
    """Keras's ``query_mask`` on an attention output: ``Output = Input * Mask`` per query
    position (0: a zero output row; the attention weights are not touched).

    ====== =============== ======================================
    port   shape           notes
    ====== =============== ======================================
    Input  q1 x .. x qm x v
    Mask   q1 x .. x qm    integers 0/1 (booleans, or 0/1 floats)
    Output q1 x .. x qm x v
    ====== =============== ======================================
    """

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", "Mask")

    def template(self, scope: Any) -> None:
        scope.shapes(Input=("*q", "v"), Mask=("*q",), Output=("*q", "v"))
        scope.real("Input", "Output")
        scope.element("Mask", ("Index", scope.solver.new_dim(2)))


@lower_layer.register(QueryMaskLayer)
def _lower_query_mask(layer: QueryMaskLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    keep = jnp.asarray(inputs["Mask"] != 0, x.dtype)[..., None]
    return {"Output": x * keep}


class MaskAndLayer(Layer):
    """Two 0/1 masks of one shape joined: 1 where both are non-zero (Keras merges its masks
    with ``&``)."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input1", "Input2")

    def template(self, scope: Any) -> None:
        scope.shapes(Input1=("*a",), Input2=("*a",), Output=("*a",))
        for port in ("Input1", "Input2", "Output"):
            scope.element(port, ("Index", scope.solver.new_dim(2)))


@lower_layer.register(MaskAndLayer)
def _lower_mask_and(layer: MaskAndLayer, ctx: Any, inputs: dict) -> dict:
    return {"Output": ((inputs["Input1"] != 0) & (inputs["Input2"] != 0)).astype(jnp.int32)}


class SlidingWindowMaskLayer(Layer):
    """Keras's ``sliding_window`` band: query i sees key j when ``|i - j| < window``
    (positions along the first axis of Query and Key, aligned top-left).

    ====== ============ ==========================
    port   shape        notes
    ====== ============ ==========================
    Query  T x ..       only its first axis counts
    Key    S x ..
    Output T x S        integers 0/1
    ====== ============ ==========================
    """

    class Options(LayerOptions):
        window: PositiveSize

    positional = ("window",)

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Query", "Key")

    def template(self, scope: Any) -> None:
        scope.shapes(Query=("t", "*a"), Key=("s", "*b"), Output=("t", "s"))
        scope.element("Output", ("Index", scope.solver.new_dim(2)))


@lower_layer.register(SlidingWindowMaskLayer)
def _lower_sliding_window(layer: SlidingWindowMaskLayer, ctx: Any, inputs: dict) -> dict:
    t, s = inputs["Query"].shape[0], inputs["Key"].shape[0]
    i, j = jnp.arange(t)[:, None], jnp.arange(s)[None, :]
    return {"Output": (jnp.abs(i - j) < layer.options.window).astype(jnp.int32)}


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
                       return_attention_scores: bool, positions: int = 1) -> NetGraph:
    """Keras's ``Attention`` / ``AdditiveAttention``: ``positions`` - 1 leading axes (Keras's
    ``(B, T1, .., Tq, dim)`` inputs) are mapped over, attention runs over the last sequence
    axis. ``query_mask`` zeroes the output rows, as Keras does, and keeps their weights."""
    positions = _positive_int("Attention", "positions", positions)
    attention = AttentionLayer(
        scoring, dropout=_check_dropout(dropout), seed=_seed(seed),
        mask="TopLeftCausal" if use_causal_mask else None, key_mask=value_mask,
        attention_weights=return_attention_scores,
    )
    inner: list = [
        (NetPort("Query"), NetPort("attention", "Query")),
        (NetPort("Value"), NetPort("attention", "Value")),
        (NetPort("Key"), NetPort("attention", "Key")),
    ]
    nodes: dict[str, Any] = {"attention": attention}
    if query_mask:
        nodes["query_mask"] = QueryMaskLayer()
        inner += [(NetPort("attention", "Output"), NetPort("query_mask", "Input")),
                  (NetPort("QueryMask"), NetPort("query_mask", "Mask")),
                  (NetPort("query_mask", "Output"), NetPort("Output"))]
    else:
        inner.append((NetPort("attention", "Output"), NetPort("Output")))
    if value_mask:
        inner.append((NetPort("ValueMask"), NetPort("attention", "KeyMask")))
    if return_attention_scores:
        inner.append((NetPort("attention", "AttentionWeights"), NetPort("AttentionWeights")))
    lead = ("Varying",) + (Automatic,) * (positions - 1)
    shapes = {"Query": lead + (Automatic,), "Value": lead + (Automatic,)}
    if use_key:
        shapes["Key"] = lead + (Automatic,)
    if positions == 1:  # the attention layer at ("attention",), as in every Keras-family net
        if not use_key:
            inner = [(NetPort("Value"), dst) if src == NetPort("Key") else (src, dst) for src, dst in inner]
        return NetGraph(nodes, inner, **shapes)
    core = NetGraph(nodes, inner)
    mapped = _per_position(core, positions - 1)
    ports = ["Query", "Value", *(["QueryMask"] if query_mask else []), *(["ValueMask"] if value_mask else [])]
    connections: list = [(NetPort(p), NetPort("attention", p)) for p in ports]
    connections.append((NetPort("Key" if use_key else "Value"), NetPort("attention", "Key")))
    connections += [(NetPort("attention", p), NetPort(p)) for p in core.output_names]
    return NetGraph({"attention": mapped}, connections, **shapes)


def Attention(use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
              seed: Optional[int] = None, *, use_key: bool = True, use_causal_mask: bool = False,
              query_mask: bool = False, value_mask: bool = False,
              return_attention_scores: bool = False, positions: int = 1) -> NetGraph:
    """Keras's ``Attention`` (Luong-style, ``score_mode`` "dot" or "concat") as a net.
    The learned scalars sit at ("attention", "ScoringNet", "scale" | "concat_score_weight",
    "Scaling") (under one "Net" per extra position axis: ``positions=2`` takes Keras's
    ``(B, T1, T2, dim)`` inputs and attends over T2 for every T1)."""
    if score_mode not in ("dot", "concat"):
        raise SpecificationError(f'score_mode must be "dot" or "concat"; found {score_mode!r}.')
    scoring = dot_scoring(use_scale) if score_mode == "dot" else concat_scoring(use_scale)
    return _single_head_graph(scoring, dropout, seed, use_key, use_causal_mask, query_mask,
                              value_mask, return_attention_scores, positions)


def AdditiveAttention(use_scale: bool = True, dropout: float = 0.0, seed: Optional[int] = None, *,
                      use_key: bool = True, use_causal_mask: bool = False, query_mask: bool = False,
                      value_mask: bool = False, return_attention_scores: bool = False,
                      positions: int = 1) -> NetGraph:
    """Keras's ``AdditiveAttention`` (Bahdanau-style) as a net; the learned vector sits at
    ("attention", "ScoringNet", "scale", "Scaling") (``positions``: see :func:`Attention`)."""
    return _single_head_graph(additive_scoring(use_scale), dropout, seed, use_key, use_causal_mask,
                              query_mask, value_mask, return_attention_scores, positions)


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


def _output_shape(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_positive_int("MultiHeadAttention", "output_shape", v) for v in value)
    return _positive_int("MultiHeadAttention", "output_shape", value)


def MultiHeadAttention(
    num_heads: int, key_dim: int, value_dim: Optional[int] = None, dropout: float = 0.0,
    use_bias: bool = True, output_shape: Union[None, int, Sequence[int]] = None,
    attention_axes: Union[None, int, Sequence[int]] = None,
    kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
    kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
    kernel_constraint: Any = None, bias_constraint: Any = None,
    seed: Optional[int] = None, use_gate: bool = False, sliding_window: Optional[int] = None, *,
    positions: int = 1, query_dim: Optional[int] = None,
    use_key: bool = True, use_causal_mask: bool = False, query_mask: bool = False,
    value_mask: bool = False, key_mask: bool = False, attention_mask: Union[bool, str] = False,
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

    Keras 3's ``use_gate`` adds a "gate" projection of the query (sigmoid, heads x value_dim)
    that multiplies the attention output before the output projection; ``sliding_window=w``
    lets query i see keys with ``|i - j| < w`` (with ``use_causal_mask``: ``i - w < j <= i``,
    the AttentionLayer's ``("TopLeftCausal", w)``). Masks (ports, 1 = visible): ``query_mask``,
    ``value_mask``, ``key_mask`` (joined with ``&``, as Keras does), ``attention_mask=True``
    (T.. x S..) or ``attention_mask="heads"`` (a mask per head, N x T.. x S..).
    """
    builder = "MultiHeadAttention"
    num_heads, key_dim = _positive_int(builder, "num_heads", num_heads), _positive_int(builder, "key_dim", key_dim)
    positions = _positive_int(builder, "positions", positions)
    value_dim = key_dim if value_dim is None else _positive_int(builder, "value_dim", value_dim)
    if query_dim is not None:
        query_dim = _positive_int(builder, "query_dim", query_dim)
    if sliding_window is not None:
        sliding_window = _positive_int(builder, "sliding_window", sliding_window)
    if attention_mask not in (True, False, "heads"):
        raise SpecificationError(f'{builder}: attention_mask must be True, False or "heads"; '
                                 f"found {attention_mask!r}.")
    output_shape = _output_shape(output_shape)
    attended = _axes(attention_axes, positions)
    batch_like = tuple(i for i in range(positions) if i not in attended)
    if use_causal_mask and len(attended) != 1:
        raise SpecificationError("use_causal_mask needs exactly one attended axis.")
    if sliding_window is not None and len(attended) != 1:
        raise SpecificationError("sliding_window needs exactly one attended axis.")
    if batch_like and (query_mask or value_mask or key_mask or attention_mask == "heads"):
        raise SpecificationError(
            "with attention_axes that leave position axes unattended (here the axes "
            f"{[a + 1 for a in batch_like]} of attention_axes={attention_axes!r} act as batch "
            "axes) the one mask is attention_mask=True, laid out as Keras's: unattended axes, "
            "then the attended query axes, then the attended key axes.",
        )
    kernel = initializer_spec(kernel_initializer, "MultiHeadAttention kernel_initializer")
    bias = initializer_spec(bias_initializer, "MultiHeadAttention bias_initializer")
    rules = {kind: {array: spec for array, spec in
                    (("Weights", _rule(kinds[0], kind)), ("Biases", _rule(kinds[1], kind) if use_bias else None))
                    if spec is not None}
             for kind, kinds in (("regularizer", (kernel_regularizer, bias_regularizer)),
                                 ("constraint", (kernel_constraint, bias_constraint)))}

    def linear(size: Any) -> Layer:
        layer = LinearLayer(size, **({} if use_bias else {"Biases": None}))
        layer = layer.with_initializers({"Weights": kernel, **({"Biases": bias} if use_bias else {})})
        if rules["regularizer"]:
            layer = layer.with_regularizers(rules["regularizer"])
        if rules["constraint"]:
            layer = layer.with_constraints(rules["constraint"])
        return layer

    def dense(size: Any) -> Layer:
        return _per_position(linear(size), positions)

    out = output_shape if output_shape is not None else (query_dim if query_dim is not None else Automatic)
    core = _mha_core(_check_dropout(dropout), _seed(seed), use_causal_mask, sliding_window, query_mask,
                     value_mask, key_mask, attention_mask, return_attention_scores, len(attended), num_heads)
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
    attended_out: Any = NetPort("attention", "Output")
    if batch_like:
        heads_perm = (*perm, positions, positions + 1)
        inverse = tuple(int(i) for i in np.argsort(heads_perm))
        for name in into:
            nodes[f"{name}_order"] = TransposeLayer(heads_perm)
        nodes["output_order"] = TransposeLayer(inverse)
        for name, port in into.items():
            connections.append((name, f"{name}_order", NetPort("attention", port)))
        connections.append((attended_out, "output_order"))
        attended_out = "output_order"
    else:
        for name, port in into.items():
            connections.append((name, NetPort("attention", port)))
    if use_gate:  # Keras 3: sigmoid(query projection) gates the heads' outputs
        nodes["gate"] = _per_position(NetChain({"dense": linear((num_heads, value_dim)),
                                                "sigmoid": ElementwiseLayer("LogisticSigmoid")}), positions)
        nodes["gated"] = ThreadingLayer("Times")
        connections += [(NetPort("Query"), "gate"), ([attended_out, "gate"], "gated")]
        attended_out = "gated"
    connections.append((attended_out, "output", NetPort("Output")))
    for flag, port in ((query_mask, "QueryMask"), (value_mask, "ValueMask"), (key_mask, "KeyMask"),
                       (attention_mask, "AttentionMask")):
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


def _joined(nodes: dict, connections: list, name: str, sources: list, target: Any) -> None:
    """Connect one mask source to ``target``, or several through a MaskAndLayer (``&``)."""
    if len(sources) == 1:
        connections.append((sources[0], target))
    elif sources:
        nodes[name] = MaskAndLayer()
        connections += [(sources[0], NetPort(name, "Input1")), (sources[1], NetPort(name, "Input2")),
                        (NetPort(name, "Output"), target)]


def _mha_core(dropout: float, seed: Optional[int], causal: bool, window: Optional[int],
              query_mask: bool, value_mask: bool, key_mask: bool, attention_mask: Union[bool, str],
              weights: bool, attended: int, heads: int) -> NetGraph:
    """AttentionLayer over projected heads (key, value, query: positions x heads x size);
    weights reordered to Keras's N x T.. x S... With a mask per head, the heads become a
    mapped axis of single-head attention (each head with its own mask)."""
    per_head = attention_mask == "heads"
    band = window is not None and not causal
    attention = AttentionLayer(
        "Dot", multi_head=not per_head, score_rescaling="DimensionSqrt", dropout=dropout, seed=seed,
        mask=(("TopLeftCausal", window) if window is not None else "TopLeftCausal") if causal else None,
        key_mask=value_mask or key_mask, query_mask=query_mask,
        attention_mask=bool(attention_mask) or band, attention_weights=weights,
    )
    nodes: dict[str, Any] = {"attention": attention}
    connections: list = [(NetPort(p), NetPort("attention", p)) for p in ("Key", "Value", "Query")]
    connections.append((NetPort("attention", "Output"), NetPort("Output")))
    _joined(nodes, connections, "key_masks",
            [NetPort(p) for p, on in (("ValueMask", value_mask), ("KeyMask", key_mask)) if on],
            NetPort("attention", "KeyMask"))
    if query_mask:
        connections.append((NetPort("QueryMask"), NetPort("attention", "QueryMask")))
    masks = [NetPort("AttentionMask")] if attention_mask else []
    if band:
        nodes["sliding_window"] = SlidingWindowMaskLayer(window)
        connections += [(NetPort("Query"), NetPort("sliding_window", "Query")),
                        (NetPort("Key"), NetPort("sliding_window", "Key"))]
        masks.append(NetPort("sliding_window", "Output"))
    _joined(nodes, connections, "attention_masks", masks, NetPort("attention", "AttentionMask"))
    if weights and not per_head:
        nodes["heads_first"] = TransposeLayer((attended, *range(attended), *range(attended + 1, 2 * attended + 1)))
        connections.append((NetPort("attention", "AttentionWeights"), "heads_first", NetPort("AttentionWeights")))
    elif weights:
        connections.append((NetPort("attention", "AttentionWeights"), NetPort("AttentionWeights")))
    core = NetGraph(nodes, connections)
    if not per_head:
        return core
    # heads first (N x positions x size), one attention per head, then heads back in place
    first = (attended, *range(attended), attended + 1)
    back = (*range(1, attended + 1), 0, attended + 1)
    outer: dict[str, Any] = {"heads": NetMapOperator(core), "output_order": TransposeLayer(back)}
    wiring: list = []
    for port in ("Key", "Value", "Query"):
        outer[f"{port.lower()}_heads"] = TransposeLayer(first)
        wiring.append((NetPort(port), f"{port.lower()}_heads", NetPort("heads", port)))
    for port in core.input_names:
        if port in ("Key", "Value", "Query"):
            continue
        if port == "AttentionMask":
            wiring.append((NetPort(port), NetPort("heads", port)))
        else:  # a mask shared by the heads: one copy per head
            outer[f"{port}_per_head"] = ReplicateLayer(heads, 0)
            wiring.append((NetPort(port), f"{port}_per_head", NetPort("heads", port)))
    wiring.append((NetPort("heads", "Output"), "output_order", NetPort("Output")))
    if weights:
        wiring.append((NetPort("heads", "AttentionWeights"), NetPort("AttentionWeights")))
    return NetGraph(outer, wiring)


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
    if "positions" not in call_options:  # Keras's (B, T1, .., Tq, dim) inputs, as built
        shapes = (getattr(layer, "_build_shapes_dict", None) or {}).get("input_shape")
        if isinstance(shapes, (list, tuple)) and shapes and isinstance(shapes[0], (list, tuple)):
            call_options = {**call_options, "positions": max(len(shapes[0]) - 2, 1)}
    positions = call_options.get("positions", 1)
    scoring = ("attention",) + (("Net",) * (positions - 1) + ("attention",) if positions > 1 else ()) + ("ScoringNet",)
    if isinstance(layer, keras.layers.AdditiveAttention):
        net = AdditiveAttention(config["use_scale"], config["dropout"], **call_options)
        parts = {scoring + ("scale", "Scaling"): weights["scale"]} if config["use_scale"] else {}
    elif isinstance(layer, keras.layers.Attention):
        net = Attention(config["use_scale"], config["score_mode"], config["dropout"], config.get("seed"), **call_options)
        parts = {scoring + (name, "Scaling"): weights[name]
                 for name in ("scale", "concat_score_weight") if name in weights}
    else:
        raise SpecificationError(
            f"from_keras converts Attention, AdditiveAttention and MultiHeadAttention; "
            f"found {type(layer).__name__}."
        )
    return NetReplacePart(net, parts) if parts else net


def _from_keras_mha(layer: Any, config: dict, call_options: dict) -> NetGraph:
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
        positions=positions, query_dim=q_kernel.shape[0], use_gate=bool(config.get("use_gate")),
        sliding_window=config.get("sliding_window"), **call_options,
    )
    parts: dict = {}
    for name in ("query", "key", "value"):
        kernel = weights[f"{name}/kernel"]
        parts[_map_path(name, positions) + ("Weights",)] = kernel.reshape(kernel.shape[0], -1).T
        if config["use_bias"]:
            parts[_map_path(name, positions) + ("Biases",)] = weights[f"{name}/bias"]
    if config.get("use_gate"):
        kernel = weights["gate/kernel"]
        gate = ("gate",) + ("Net",) * positions + ("dense",)
        parts[gate + ("Weights",)] = kernel.reshape(kernel.shape[0], -1).T
        if config["use_bias"]:
            parts[gate + ("Biases",)] = weights["gate/bias"]
    n, hv = out_kernel.shape[:2]
    parts[_map_path("output", positions) + ("Weights",)] = out_kernel.reshape(n * hv, -1).T
    if config["use_bias"]:
        parts[_map_path("output", positions) + ("Biases",)] = weights["attention_output/bias"]
    return NetReplacePart(net, parts)


__all__ = ["AdditiveAttention", "Attention", "MultiHeadAttention", "from_keras"]
