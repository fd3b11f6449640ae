"""AttentionLayer: weighted sums of values, weights from any scoring net (Wolfram semantics).

Shape legend: d1..dn key positions, q1..qm query positions (m >= 0), k key size, v value
size, q query size, h heads (only with ``multi_head=True``: the penultimate axis).

================ ============================== ==============================================
port             shape                          notes
================ ============================== ==============================================
Key              d1 x .. x dn [x h] x k         n >= 1; only d1 may vary
Value            d1 x .. x dn [x h] x v         same positions as Key
Query            q1 x .. x qm [x h] x q         m = 0: a single query vector
KeyMask          d1 x .. x dn                   optional (``key_mask=True``): 1 = visible
QueryMask        q1 x .. x qm                   optional (``query_mask=True``): 0 = no keys
AttentionMask    q1 x .. x qm x d1 x .. x dn    optional (``attention_mask=True``)
Output           q1 x .. x qm [x h] x v
AttentionWeights q1 x .. x qm [x h] x d1..dn    optional (``attention_weights=True``)
================ ============================== ==============================================

For every query vector, every key position gets a score ``s = net(Input=key, Query=query)``;
the scores are rescaled (``score_rescaling``), masked, and normalised by a softmax taken
jointly over all d1..dn key positions; the output is the weighted sum of the value vectors.
Masked positions get no weight; a query row that sees no key at all gets all-zero weights and
a zero output (finite in every float dtype). ``AttentionWeights`` are taken before dropout.

``mask``: None, "Causal" (query i sees keys j <= i) or ("Causal", n) (also j > i - n); both
need one key axis and one query axis and, as in Wolfram, as many queries as keys (the mask
ties the Query's length to the Key's). "TopLeftCausal" / ("TopLeftCausal", n) see the same
keys without tying the lengths (Keras, PyTorch and ``jax.nn.dot_product_attention``: aligned
top-left when there are more keys than queries). ``dropout``: probability of
dropping an attention weight in training mode; its randomness comes from the call's rng and,
when given, the layer's ``seed`` (enough on its own when no rng is passed). ``score_rescaling``: None,
"LengthSqrt" (divide by the square root of the number of keys the query sees: the true
length for varying keys, i under a causal mask) or "DimensionSqrt" (divide by sqrt(k)).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Literal, Mapping, Optional, Union

import jax
import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError, SpecificationError
from ..shapes import Automatic, Sym

from .attention_blocked import (Visibility, batch_bound, block_sizes, blocked_scores, clean_values,
                                cudnn_applies, fused_dot_attention, online_attention, poison)
from .base import ArraySpec, Layer, LayerOptions, user_site
from .dropout import dropout
from .lowering import LowerContext, lower_layer, masked_softmax, valid_positions
from .options import AutomaticT
from .scope import constrain
from .tree import iter_layers


# --------------------------------------------------------------------- built-in scorers
class _ScoringLayer(Layer):
    """A built-in scoring net: vector ports "Input" (a key) and "Query", a scalar "Output"."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", "Query")


class DotScoringLayer(_ScoringLayer):
    """``s = key . query`` (Wolfram's "Dot" scoring net)."""

    def template(self, scope: Any) -> None:
        scope.real("Input", "Query", "Output")
        scope.shapes(Input=("k",), Query=("k",), Output=())


class BilinearScoringLayer(_ScoringLayer):
    """``s = query . (Weights . key)`` with Weights q x k (Wolfram's "Bilinear")."""

    arrays_declared = {"Weights": ArraySpec("weights")}

    def template(self, scope: Any) -> None:
        scope.real("Input", "Query", "Output")
        scope.shapes(Input=("k",), Query=("q",), Output=(), Weights=("q", "k"))


@lower_layer.register(DotScoringLayer)
def _lower_dot_score(layer: Any, ctx: LowerContext, inputs: dict) -> dict:
    return {"Output": jnp.dot(inputs["Input"], inputs["Query"])}


@lower_layer.register(BilinearScoringLayer)
def _lower_bilinear_score(layer: Any, ctx: LowerContext, inputs: dict) -> dict:
    return {"Output": jnp.dot(inputs["Query"], inputs["Input"] @ ctx.params["Weights"].T)}


@functools.singledispatch
def key_transform(scoring: Any, ctx: LowerContext) -> Optional[Any]:
    """The matmul fast path: a function ``f`` with ``score(k, q) == q . f(k)`` for this
    scoring net, or None when the net has no such form (the generic path is used)."""
    return None


@key_transform.register(DotScoringLayer)
def _dot_transform(scoring: Any, ctx: LowerContext) -> Any:
    return lambda key: key


@key_transform.register(BilinearScoringLayer)
def _bilinear_transform(scoring: Any, ctx: LowerContext) -> Any:
    return lambda key: key @ ctx.params["Weights"].T  # vmapped over keys: batch axis first


@functools.singledispatch
def pair_score(scoring: Any, ctx: LowerContext) -> Optional[Any]:
    """The generic path's faster form: a function ``score(key (k,), query (q,)) -> ()``
    equal to the scoring net's lowering that does less work per (query, key) pair - e.g. a
    graph whose LinearLayer reads a CatenateLayer of key-side and query-side vectors applies
    the Linear to each side on its own (see ``netgraph.compiler``) - or None."""
    return None


SCORING_NETS = {"Dot": DotScoringLayer, "Bilinear": BilinearScoringLayer}


def as_scoring_net(spec: Any) -> Layer:
    """Resolve "Dot" / "Bilinear" / a net, and check the scoring signature."""
    if isinstance(spec, str) and spec in SCORING_NETS:
        return SCORING_NETS[spec]()
    if not isinstance(spec, Layer):
        raise SpecificationError(
            f"{spec!r} is not a layer, a net, or a valid specification for one.",
            hint='a scoring net is "Dot", "Bilinear" or a net with inputs "Input" and "Query" '
            'and a scalar output "Output".',
        )
    if set(spec.input_names) != {"Input", "Query"} or "Output" not in spec.output_names:
        raise SpecificationError(
            f"the scoring net {spec.describe()} has inputs {list(spec.input_names)} and outputs "
            f"{list(spec.output_names)}; a scoring net must have exactly the inputs \"Input\" "
            "(a key vector) and \"Query\" (a query vector) and a scalar output \"Output\".",
            hint='connect its inputs to NetPort("Input") and NetPort("Query").',
        )
    return spec


# ---------------------------------------------------------------------- the layer
CAUSAL = ("Causal", "TopLeftCausal")
Mask = Union[None, Literal["Causal", "TopLeftCausal"],
             tuple[Literal["Causal", "TopLeftCausal"], pydantic.PositiveInt]]


class AttentionLayer(Layer):
    """Attention with any scoring net; see the module docstring for ports and options."""

    child_feeds = {"ScoringNet": {"Input": "Key", "Query": "Query"}}

    class Options(LayerOptions):
        mask: Mask = None
        score_rescaling: Optional[Literal["LengthSqrt", "DimensionSqrt"]] = None
        multi_head: bool = False
        dropout: pydantic.confloat(ge=0.0, lt=1.0) = 0.0  # type: ignore[valid-type]
        key_mask: bool = False
        query_mask: bool = False
        attention_mask: bool = False
        attention_weights: bool = False
        seed: Optional[int] = None
        fast_path: bool = True
        key_block_size: Union[None, pydantic.conint(strict=True, gt=0), AutomaticT] = Automatic  # type: ignore[valid-type]

        @pydantic.field_validator("mask", mode="before")
        @classmethod
        def _mask(cls, value: Any) -> Any:
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(value, tuple) and len(value) == 2 and value[0] in CAUSAL:
                window = value[1]
                if not isinstance(window, int) or isinstance(window, bool) or window < 1:
                    raise ValueError(f'the window n of ("Causal", n) must be a positive integer; got {window!r}')
                return value
            if value is None or value in CAUSAL:
                return value
            raise ValueError('the value of mask should be None, "Causal" or ("Causal", n) (or '
                             f'"TopLeftCausal", ("TopLeftCausal", n)); got {value!r}')

    scoring_net: Layer

    def __init__(self, scoring_net: Any = "Bilinear", **kwargs: Any) -> None:
        """The scoring net ("Dot", "Bilinear" or a net) by position; the rest by keyword."""
        self._set(scoring_net=as_scoring_net(scoring_net))
        super().__init__(**kwargs)

    def _adopt_children(self, children: Mapping[str, Layer]) -> None:
        self._set(scoring_net=as_scoring_net(children["ScoringNet"]))

    # ------------------------------------------------------------------ structure
    @property
    def heads(self) -> int:
        return 1 if self.options.multi_head else 0

    def positions(self, dims: tuple) -> tuple:
        """The position dimensions of a key, value or query shape (or its dimension cells):
        all but the vector axis and, with ``multi_head``, the heads axis before it."""
        return tuple(dims[: len(dims) - 1 - self.heads])

    @property
    def input_names(self) -> tuple[str, ...]:
        o = self.options
        optional = [("KeyMask", o.key_mask), ("QueryMask", o.query_mask), ("AttentionMask", o.attention_mask)]
        return ("Key", "Value", "Query", *(n for n, on in optional if on))

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("Output", "AttentionWeights") if self.options.attention_weights else ("Output",)

    def children(self) -> dict[str, Layer]:
        return {"ScoringNet": self.scoring_net}

    def with_children(self, children: Mapping[str, Layer]) -> "AttentionLayer":
        new = self.evolve()
        new._set(scoring_net=as_scoring_net(children.get("ScoringNet", self.scoring_net)),
                 origin=user_site())
        return new

    def describe(self) -> str:
        net = self.scoring_net
        name = {DotScoringLayer: "Dot", BilinearScoringLayer: "Bilinear"}.get(type(net), net.describe())
        return f"AttentionLayer[{name}]"

    # ------------------------------------------------------------------- template
    def template(self, scope: Any) -> None:
        s = scope.solver
        scope.real("Key", "Value", "Query", "Output")
        inner = scope.child("ScoringNet", self.scoring_net)
        constrain(self.scoring_net, inner)
        score = inner.port("Output")

        def scalar_score() -> None:
            dims = s.dims(score)
            if dims is not None and dims:
                raise ShapeMismatchError(
                    f'Output port "Output" of the net specified for the scoring net '
                    f"({self.scoring_net.describe()}) produces a rank-{len(dims)} array, but "
                    "a port producing a number (a scalar) is required.",
                    hint="end the scoring net with a layer giving a scalar, e.g. LinearLayer(()) "
                    "or SummationLayer().",
                )

        s.rule(scalar_score, shapes=(score,),
               default=lambda: s.dims(score) is None and s.set_rank(score, 0, scope.origin("ScoringNet"), ""))
        (key_size,) = inner.dims("Input", 1)
        (query_size,) = inner.dims("Query", 1)
        for name in ("KeyMask", "QueryMask", "AttentionMask"):
            if name in self.input_names:
                scope.element(name, ("Index", s.new_dim(2)))
        ports = {n: scope.port(n) for n in ("Key", "Value", "Query", "Output")}
        state: dict[str, Any] = {}

        def rank_of(*names: str) -> tuple[Optional[int], str]:
            for n in names:
                dims = s.dims(ports[n])
                if dims is not None:
                    return len(dims), n
            return None, names[0]

        def run() -> None:
            (kr, kport), (qr, qport) = rank_of("Key", "Value"), rank_of("Query", "Output")
            if kr is not None and "keys" not in state:
                state["keys"] = self._key_rules(scope, kr, key_size, kport)
            if qr is not None and "queries" not in state:
                state["queries"] = self._query_rules(scope, qr, query_size, qport)
            if "keys" in state and "queries" in state and "joint" not in state:
                state["joint"] = True
                self._joint_rules(scope, state["keys"], state["queries"])

        s.rule(run, shapes=tuple(ports.values()))

    def _minimum(self, scope: Any, port: str, rank: int, minimum: int) -> None:
        if rank < minimum:
            raise ShapeMismatchError(
                f"{scope.where(port)} must be an array of rank >= {minimum}; found rank {rank}.",
                hint="keys and values are arrays of vectors" + (", with heads on the "
                "penultimate axis" if self.heads else "") + ".",
            )

    def _key_rules(self, scope: Any, rank: int, key_size: int, port: str) -> tuple:
        h = self.heads
        self._minimum(scope, port, rank, 2 + h)
        key, value = scope.dims("Key", rank), scope.dims("Value", rank)
        for a, b in zip(key[:-1], value[:-1]):
            scope.same_dim(a, b, "Value")
        scope.same_dim(key_size, key[-1], "Key")
        positions = self.positions(key)
        for later in positions[1:]:
            scope.solver.rule(lambda d=later: self._fixed_position(scope, d), dims=(later,))
        if "KeyMask" in self.input_names:
            for a, b in zip(scope.dims("KeyMask", len(positions)), positions):
                scope.same_dim(a, b, "KeyMask")
        return key, value, positions

    def _fixed_position(self, scope: Any, dim: int) -> None:
        if isinstance(scope.solver.dim(dim), Sym):
            raise ShapeMismatchError(
                f"{scope.where('Key')}: only the first key dimension can vary.",
            )

    def _query_rules(self, scope: Any, rank: int, query_size: int, port: str) -> tuple:
        h = self.heads
        self._minimum(scope, port, rank, 1 + h)
        query, out = scope.dims("Query", rank), scope.dims("Output", rank)
        for a, b in zip(query[:-1], out[:-1]):
            scope.same_dim(a, b, "Output")
        scope.same_dim(query_size, query[-1], "Query")
        positions = self.positions(query)
        if "QueryMask" in self.input_names:
            for a, b in zip(scope.dims("QueryMask", len(positions)), positions):
                scope.same_dim(a, b, "QueryMask")
        return query, out, positions

    def _causal_lengths(self, scope: Any, query: int, key: int) -> None:
        """A causal mask ties the query length to the key length (Wolfram): one symbol for
        varying lengths, Wolfram's message for two different fixed ones."""
        def check() -> None:
            q, k = scope.solver.dim(query), scope.solver.dim(key)
            if isinstance(q, int) and isinstance(k, int) and q != k:
                raise ShapeMismatchError(
                    f"{scope.where('Query')}: Value of query shape ({{{q}}}) is inconsistent "
                    f"with value of input shape ({{{k}}}).",
                    hint='a causal mask needs as many queries as keys (query i sees keys 0..i); '
                    "use an AttentionMask for other patterns.",
                )

        check()
        scope.same_dim(query, key, "Query")

    def _joint_rules(self, scope: Any, keys: tuple, queries: tuple) -> None:
        key, value, kpos = keys
        query, out, qpos = queries
        scope.same_dim(out[-1], value[-1], "Output")
        if self.heads:
            for dims, port in ((value, "Value"), (query, "Query"), (out, "Output")):
                scope.same_dim(key[-2], dims[-2], port)
        if self.options.mask is not None and (len(kpos) != 1 or len(qpos) != 1):
            raise ShapeMismatchError(
                f"{scope.where('Query')}: a causal mask needs keys and queries that are 1-D "
                f"sequences; found {len(kpos)} key and {len(qpos)} query position dimension(s).",
                hint="use AttentionMask for masks over multi-dimensional positions.",
            )
        mask = self.options.mask
        if (mask[0] if isinstance(mask, tuple) else mask) == "Causal":  # not "TopLeftCausal"
            self._causal_lengths(scope, qpos[0], kpos[0])
        heads = [key[-2]] if self.heads else []
        if "AttentionMask" in self.input_names:
            dims = scope.dims("AttentionMask", len(qpos) + len(kpos))
            for a, b in zip(dims, (*qpos, *kpos)):
                scope.same_dim(a, b, "AttentionMask")
        if "AttentionWeights" in self.output_names:
            dims = scope.dims("AttentionWeights", len(qpos) + len(heads) + len(kpos))
            for a, b in zip(dims, (*qpos, *heads, *kpos)):
                scope.same_dim(a, b, "AttentionWeights")


# ---------------------------------------------------------------------- lowering
AUTOMATIC_PAIR_BYTES = 16 * 2**20
"""``key_block_size=Automatic`` evaluates in blocks when one example's materialised pair
tensor - query positions x key positions x heads x the scoring net's values per pair (1 on
the matmul fast path) x 4 bytes - would exceed this size (16 MiB)."""

AUTOMATIC_BLOCK_BYTES = 16 * 2**20
"""The size Automatic aims at for one block's pair tensor, 16 MiB (blocks of 16 to 1024 positions)."""

AUTOMATIC_SCORE_BYTES = 256 * 2**10
"""On the matmul fast path Automatic also blocks when one head's M x P scores exceed this size
(256 KiB: more than 256 x 256 float32 scores), with key blocks of this size / M positions (128
to 1024); not when AttentionWeights is an output (the M x P scores are stored anyway). Measured
on a 2-core x86 CPU (``benchmarks/bench_attention_memory.py``: batch 4, 8 heads, head size 64):
beyond this size XLA's fused softmax-attention kernel is 1.2-1.8x slower than blocks of 128
keys, which run at 0.7-0.95x the best hand-written attention at T = 512 to 2048."""


def _causal(mask: Any) -> Any:
    """The visibility rule of a mask option: "TopLeftCausal" sees what "Causal" sees."""
    if isinstance(mask, tuple):
        return ("Causal", mask[1])
    return None if mask is None else "Causal"


def _visibility(layer: AttentionLayer, ctx: LowerContext, inputs: dict, kpos: tuple, qpos: tuple,
                bounded: bool) -> Visibility:
    """What each query position sees, as a :class:`Visibility` over flattened positions;
    ``bounded``: with the true lengths as bounds for skipping blocks (blocked evaluation)."""
    P = math.prod(kpos)
    keys = valid_positions(ctx, "Key", jnp.zeros(kpos, bool), tuple(range(len(kpos))))
    keys = None if keys is None else keys.reshape(P)
    if "KeyMask" in inputs:
        given = jnp.asarray(inputs["KeyMask"], bool).reshape(P)
        keys = given if keys is None else keys & given
    queries = jnp.asarray(inputs["QueryMask"], bool).reshape(-1) if "QueryMask" in inputs else None
    pairs = (jnp.asarray(inputs["AttentionMask"], bool).reshape(math.prod(qpos), P)
             if "AttentionMask" in inputs else None)
    key_length, query_length = (ctx.length("Key", 0), ctx.length("Query", 0)) if bounded else (None, None)
    return Visibility(
        keys, queries, pairs, _causal(layer.options.mask),
        key_bound=batch_bound(None if key_length is None else key_length * math.prod(kpos[1:]), ctx.batch_axis),
        query_bound=batch_bound(None if query_length is None or not qpos else query_length * math.prod(qpos[1:]),
                                ctx.batch_axis),
    )


def _pair_elements(layer: AttentionLayer, ctx: LowerContext) -> int:
    """Numbers the scoring net makes for one (query, key) pair: the outputs of its inner
    layers (its key input for a built-in scorer on the generic path)."""
    path = ctx.path + ("ScoringNet",)
    total = 0
    for sub, inner in iter_layers(layer.scoring_net):
        for port in inner.output_names:
            total += math.prod(getattr(d, "size", 1) or 1 for d in ctx.inference.port(path + sub, port).dims)
    return max(total, math.prod(ctx.shape("Key")[-1:]))


def _scorer(layer: AttentionLayer, ctx: LowerContext) -> tuple[Optional[Any], Any]:
    """(key transform or None, ``pair_scores(keys, queries) -> (M, P)``) of one head."""
    scoring_ctx = ctx.child("ScoringNet")
    fast = layer.options.fast_path
    transform = key_transform(layer.scoring_net, scoring_ctx) if fast else None
    if transform is not None:
        return transform, lambda keys, queries: queries @ keys.T

    def score(key: jax.Array, query: jax.Array) -> jax.Array:
        return lower_layer(layer.scoring_net, scoring_ctx, {"Input": key, "Query": query})["Output"]

    # vmapped over keys inside queries: what depends on one side only is computed per side
    score = (pair_score(layer.scoring_net, scoring_ctx) if fast else None) or score
    return None, jax.vmap(jax.vmap(score, in_axes=(0, None)), in_axes=(None, 0))


@jax.custom_jvp
def _softmax_sum(scores: jax.Array, values: jax.Array, visible: Optional[jax.Array]) -> jax.Array:
    """``masked_softmax(scores, -1, visible) @ values`` (M, v), normalised after the weighted
    sum (M x v divisions instead of M x P) with no select: one XLA kernel on the CPU. A row
    that sees no key sums to 0 (every other row to >= 1); the floor at the smallest normal
    number turns its 0 / 0 into 0. Derivatives are those of ``masked_softmax(...) @ values``
    (autodiff of the division after the sum costs more kernels and time in the backward)."""
    low = jnp.asarray(jnp.finfo(scores.dtype).min, scores.dtype)
    z = scores if visible is None else jnp.where(visible, scores, low)
    e = jnp.exp(z - jnp.max(z, axis=-1, keepdims=True, initial=low))
    if visible is not None:
        e = jnp.where(visible, e, jnp.zeros((), e.dtype))
    total = jnp.sum(e, axis=-1, keepdims=True)
    return (e @ values) / jnp.maximum(total, jnp.finfo(total.dtype).tiny)


@_softmax_sum.defjvp
def _softmax_sum_jvp(primals: tuple, tangents: tuple) -> tuple:
    scores, values, visible = primals
    return jax.jvp(lambda s, v: masked_softmax(s, -1, visible) @ v, primals[:2], tangents[:2])


def _attend(layer: AttentionLayer, ctx: LowerContext, keys: jax.Array, values: jax.Array,
            queries: jax.Array, vis: Visibility, key: Optional[jax.Array], blocks: Optional[tuple]) -> tuple:
    """One head: output (M, v) and weights (M, P) or None from keys (P, k), values (P, v),
    queries (M, q); ``key`` a dropout key or None; ``blocks`` (query block, key block) or
    None to materialise."""
    M, P, size = queries.shape[0], keys.shape[0], keys.shape[-1]
    transform, pair_scores = _scorer(layer, ctx)
    if transform is not None:
        keys = jax.vmap(transform)(keys)
    rescaling = layer.options.score_rescaling
    want_weights = "AttentionWeights" in layer.output_names
    if blocks is not None and not want_weights:
        scale = None
        if rescaling == "DimensionSqrt":
            scale = jnp.full(M, 1 / math.sqrt(size), jnp.float32)
        elif rescaling == "LengthSqrt":
            scale = jax.lax.rsqrt(jnp.maximum(vis.seen(M, P), 1).astype(jnp.float32))
        out = online_attention(pair_scores, keys, values, queries, vis, *blocks, scale,
                               layer.options.dropout, key)
        return out, None
    scores = pair_scores(keys, queries) if blocks is None else blocked_scores(pair_scores, keys, queries, *blocks)
    visible = vis.dense(M, P)
    if rescaling == "DimensionSqrt":
        scores = scores / jnp.sqrt(jnp.asarray(size, scores.dtype))
    elif rescaling == "LengthSqrt":
        seen = jnp.full(M, P) if visible is None else jnp.maximum(jnp.sum(visible, axis=-1), 1)
        scores = scores / jnp.sqrt(seen.astype(scores.dtype))[:, None]
    clean, bad = clean_values(values, vis)
    if transform is not None and not want_weights and key is None:  # the matmul path: one kernel
        weights, out = None, _softmax_sum(scores, clean, visible)
    else:  # normalised before the sum, which fuses better with a generic scoring net's pairs
        weights = masked_softmax(scores, -1, visible)
        out = (weights if key is None else dropout(weights, layer.options.dropout, key)) @ clean
    if bad is not None:  # a row that sees a non-finite value is NaN; hidden ones never reach it
        out = poison(out, jnp.any(visible & bad[None, :], axis=-1))
    return out, weights


def _blocks(layer: AttentionLayer, ctx: LowerContext, M: int, P: int, dtype: Any) -> Optional[tuple]:
    """(query block, key block) or None to materialise; Automatic materialises the fast path
    when the weights are an output (its M x P scores are all there is to store)."""
    option = layer.options.key_block_size
    fast = layer.options.fast_path and key_transform(layer.scoring_net, ctx.child("ScoringNet")) is not None
    if fast and option is Automatic and "AttentionWeights" in layer.output_names:
        return None
    per_pair = 1 if fast else _pair_elements(layer, ctx)
    return block_sizes(option, per_pair, M, P, ctx.shape("Key")[-2] if layer.heads else 0,
                       max(jnp.dtype(dtype).itemsize, 4), fast, layer.options.mask is not None,
                       AUTOMATIC_PAIR_BYTES, AUTOMATIC_BLOCK_BYTES, AUTOMATIC_SCORE_BYTES)


def _fused(layer: AttentionLayer, ctx: LowerContext, keys: jax.Array, values: jax.Array,
           queries: jax.Array, vis: Visibility) -> Optional[jax.Array]:
    """Multi-head dot attention by the cuDNN kernel where it applies (a GPU; see
    :func:`cudnn_applies`), else None."""
    o = layer.options
    if not (layer.heads and o.fast_path and len(layer.positions(keys.shape)) == 1):
        return None
    if not cudnn_applies(queries.dtype, (keys.shape[-1], queries.shape[-1], values.shape[-1]), o.dropout,
                         o.mask, o.score_rescaling, (*layer.input_names, *layer.output_names)):
        return None
    transform = key_transform(layer.scoring_net, ctx.child("ScoringNet"))
    if transform is None:
        return None
    scale = 1 / math.sqrt(keys.shape[-1]) if o.score_rescaling == "DimensionSqrt" else 1.0
    keys = jax.vmap(jax.vmap(transform), in_axes=1, out_axes=1)(keys)
    values, _ = clean_values(values, vis)
    return fused_dot_attention(keys, values, queries, _causal(o.mask), scale, ctx.length("Key", 0), "cudnn")


@lower_layer.register(AttentionLayer)
def _lower_attention(layer: AttentionLayer, ctx: LowerContext, inputs: dict) -> dict:
    h = layer.heads
    key, value, query = inputs["Key"], inputs["Value"], inputs["Query"]
    kpos, qpos = layer.positions(key.shape), layer.positions(query.shape)
    P, M = math.prod(kpos), math.prod(qpos)
    keys = key.reshape((P,) + key.shape[len(kpos):])  # (P, [H,] k)
    values = value.reshape((P,) + value.shape[len(kpos):])
    queries = query.reshape((M,) + query.shape[len(qpos):])
    blocks = _blocks(layer, ctx, M, P, query.dtype)
    vis = _visibility(layer, ctx, inputs, kpos, qpos, bounded=blocks is not None)
    fused = _fused(layer, ctx, keys, values, queries, vis)
    if fused is not None:
        return {"Output": fused.reshape(qpos + fused.shape[1:])}
    drop = ctx.key(layer.options.seed) if ctx.train and layer.options.dropout > 0 else None
    if h:  # heads: the same computation per head, vmapped over the penultimate axis
        heads = key.shape[-2]
        drops = None if drop is None else jax.random.split(drop, heads)
        attend = lambda k, v, q, d: _attend(layer, ctx, k, v, q, vis, d, blocks)  # noqa: E731
        out, weights = jax.vmap(attend, in_axes=(1, 1, 1, None if drops is None else 0),
                                out_axes=(1, 1))(keys, values, queries, drops)
    else:
        out, weights = _attend(layer, ctx, keys, values, queries, vis, drop, blocks)
    result = {"Output": out.reshape(qpos + out.shape[1:])}
    if "AttentionWeights" in layer.output_names:
        result["AttentionWeights"] = weights.reshape(qpos + weights.shape[1:-1] + kpos)
    return result
