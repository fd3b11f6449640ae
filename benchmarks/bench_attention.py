"""Attention benchmarks: netgraph against Keras 3 (JAX backend) and hand-written JAX.

Run from the repository root::

    python benchmarks/bench_attention.py               # full run (2-3 minutes on 2 CPU cores)
    python benchmarks/bench_attention.py --quick       # smoke test: small shapes, few repetitions
    python benchmarks/bench_attention.py --experiment  # also time a patched attention lowering
    python benchmarks/bench_attention.py --json results.json [--samples]
    python benchmarks/bench_attention.py --cases dot,mha   # a subset (dot, bilinear,
                                                           # additive_net, additive_builder, mha, methods)

Cases (batch 32, Tq = Tv = 128, feature size 64; Key = Value, as Keras's ``[query, value]``):

* ``dot``: ``AttentionLayer("Dot")`` in a NetGraph and the ``ng.keras.Attention()`` builder,
  against ``keras.layers.Attention()``.
* ``bilinear``: ``AttentionLayer("Bilinear")`` (``s = q . W k``), against a Keras model
  ``Attention()([q, v, Dense(64, use_bias=False)(v)])``.
* ``additive_net``: ``AttentionLayer(scoring)`` with a custom Wolfram-style scoring NetGraph
  (``s = w . tanh(Wk k + Wq q)``: two LinearLayers, a tanh-of-sum ThreadingLayer,
  ``LinearLayer(())``), which takes the generic per-(query, key)-pair path; against a Keras
  model ``AdditiveAttention()([Dense(64)(q), v, Dense(64)(v)])``.
* ``additive_builder``: ``ng.keras.AdditiveAttention`` (made by ``ng.keras.from_keras``)
  against ``keras.layers.AdditiveAttention(use_scale=True)``.
* ``mha``: ``ng.keras.MultiHeadAttention`` (made by ``ng.keras.from_keras``) against
  ``keras.layers.MultiHeadAttention(num_heads=4, key_dim=16)``.

Each case is also written by hand in JAX (``jnp.einsum`` / ``jax.nn.softmax``). All three use
the same arrays, and the outputs and gradients are checked to agree before anything is timed.

* netgraph: ``jax.jit(jax.vmap(ng.lower(net), in_axes=(None, 0)))(params, inputs)`` with
  ``params = ng.params_of(net)`` on the device.
* Keras: ``jax.jit`` of ``layer.stateless_call(trainable, non_trainable, ...)``, the variables
  passed as arguments (as netgraph's params are). A separate section compares this with
  Keras's other ways of calling a layer (eager, ``predict_on_batch``, jit with the weights
  closed over) to show it is the fastest fair one.
* forward+grad: ``jax.jit(jax.grad(loss, argnums=...))`` with ``loss = sum(output * R)`` for
  a fixed random ``R``; the gradient is taken with respect to the parameters AND both inputs.

Timing as in ``bench_core.py``: warm-up, interleaved rounds (the order rotates and flips, so
every implementation follows every other one equally often), ``block_until_ready`` on every
call, garbage collector off, medians. The number of rounds of each group is set from a time
budget (between a minimum and a maximum count). The ``kernels`` column counts the kernels of
each compiled module (HLO entry instructions): a structural check that load does not disturb.
"""
from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # must be set before keras is imported

import contextlib  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import keras  # noqa: E402

import netgraph as ng  # noqa: E402
from timing import arguments, block, paired_ratio, timed_rounds, write_json  # noqa: E402

# ----------------------------------------------------------------------------- settings
BATCH, TQ, TV, DIM = 32, 128, 128, 64
HIDDEN = 64                       # additive scoring: size of the projected query and key
HEADS, KEY_DIM = 4, 16            # multi-head attention
TARGET_KERAS = 1.0                # netgraph / Keras: never slower than Keras
TARGET_HAND = 1.05                # netgraph / hand-written

# Rounds per timed group: budget_s / (time of one round), clamped to [min_reps, max_reps].
FULL = {"budget_s": 5.0, "min_reps": 10, "max_reps": 400, "warmup_s": 0.6, "max_warmup": 10,
        "methods_budget_s": 4.0, "batch": BATCH, "tq": TQ, "tv": TV}
# --quick: a smoke test (everything is built, checked and timed a few times) on a smaller
# batch and shorter sequences; its ratios are not meaningful.
QUICK = {"budget_s": 0.3, "min_reps": 3, "max_reps": 20, "warmup_s": 0.1, "max_warmup": 2,
         "methods_budget_s": 0.3, "batch": 8, "tq": 64, "tv": 64}


# ------------------------------------------------------------------------------ timing
def time_interleaved(fns: dict[str, Callable[[], Any]], cfg: dict, budget_s: float | None = None
                     ) -> dict[str, Any]:
    """Median seconds per call of each zero-argument function, timed in interleaved rounds.
    Warm-up rounds and the number of timed rounds follow from the time of one round."""
    t0 = time.perf_counter()
    for fn in fns.values():                 # first warm-up round (everything is compiled already)
        block(fn())
    round_s = max(time.perf_counter() - t0, 1e-6)
    warmup = int(min(cfg["max_warmup"], max(1, cfg["warmup_s"] / round_s)))
    budget = cfg["budget_s"] if budget_s is None else budget_s
    reps = int(min(cfg["max_reps"], max(cfg["min_reps"], budget / round_s)))
    return timed_rounds(fns, reps, warmup - 1)


def ratio(res: dict, num: str, den: str) -> dict:
    return {"ratio_of_medians": res[num]["median_s"] / res[den]["median_s"],
            "paired_median_ratio": paired_ratio(res[num]["samples"], res[den]["samples"])}


# ------------------------------------------------------------------------------ nets
def attention_graph(scoring: Any) -> ng.NetGraph:
    """Wolfram style: one AttentionLayer, Query in, Value used as both key and value."""
    return ng.NetGraph(
        {"attention": ng.AttentionLayer(scoring)},
        [(ng.NetPort("Query"), ng.NetPort("attention", "Query")),
         (ng.NetPort("Value"), ng.NetPort("attention", "Key")),
         (ng.NetPort("Value"), ng.NetPort("attention", "Value")),
         (ng.NetPort("attention", "Output"), ng.NetPort("Output"))],
        Query=("Varying", DIM), Value=("Varying", DIM))


def additive_scoring_net() -> ng.NetGraph:
    """``s = w . tanh(Wk k + Wq q)`` (the "Additive" parity case of Wolfram's tests)."""
    return ng.NetGraph(
        {"key": ng.LinearLayer(HIDDEN, Biases=None),
         "query": ng.LinearLayer(HIDDEN, Biases=None),
         "tanh": ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)),
         "score": ng.LinearLayer((), Biases=None)},
        [(ng.NetPort("Input"), "key"), (ng.NetPort("Query"), "query"),
         (["key", "query"], "tanh", "score")])


def keras_vars(layer: Any) -> tuple[list, list]:
    """Copies of the layer's variable values (copies: Keras's own jitted steps, such as
    predict_on_batch, donate the variables' buffers)."""
    return ([jnp.array(v.value, copy=True) for v in layer.trainable_variables],
            [jnp.array(v.value, copy=True) for v in layer.non_trainable_variables])


def keras_model(outputs_of: Callable[[Any, Any], Any]) -> keras.Model:
    q_in = keras.Input((None, DIM), name="query")
    v_in = keras.Input((None, DIM), name="value")
    return keras.Model([q_in, v_in], outputs_of(q_in, v_in))


def softmax_attend(scores: jax.Array, values: jax.Array) -> jax.Array:
    return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(scores, axis=-1), values)


@dataclass
class Case:
    name: str
    title: str
    nets: dict[str, ng.NetGraph]                 # label -> initialised netgraph net
    keras_layer: Any                             # a built keras Layer or Model
    keras_args: Callable[[Any, Any], tuple]      # (q, v) -> positional args of its call
    hand: Callable[..., jax.Array]               # hand(params, q, v) -> (B, Tq, Dv)
    hand_params: dict[str, Any]
    patchable: bool = True                       # --experiment applies to it


def make_cases(q: np.ndarray, v: np.ndarray) -> list[Case]:
    rng = np.random.default_rng(1)
    cases = []

    # ---- dot
    dot_layer = keras.layers.Attention()
    dot_layer([q[:1], v[:1]])
    cases.append(Case(
        "dot", 'AttentionLayer("Dot") / ng.keras.Attention vs keras Attention',
        {"netgraph": ng.NetInitialize(attention_graph("Dot")),
         "ng.keras.Attention": ng.keras.from_keras(dot_layer, use_key=False)},
        dot_layer, lambda a, b: ([a, b],),
        lambda p, a, b: softmax_attend(jnp.einsum("bqd,bkd->bqk", a, b), b), {}))

    # ---- bilinear: s = q . (W k)
    net = ng.NetInitialize(attention_graph("Bilinear"), seed=0)
    W = ng.NetExtract(net, ("attention", "ScoringNet", "Weights"))     # (q, k)
    dense = keras.layers.Dense(DIM, use_bias=False)
    model = keras_model(lambda a, b: keras.layers.Attention()([a, b, dense(b)]))
    dense.set_weights([W.T])
    cases.append(Case(
        "bilinear", 'AttentionLayer("Bilinear") vs keras Attention()([q, v, Dense(v)])',
        {"netgraph": net}, model, lambda a, b: ([a, b],),
        lambda p, a, b: softmax_attend(jnp.einsum("bqd,bkd->bqk", a, b @ p["W"].T), b),
        {"W": jnp.asarray(W)}))

    # ---- additive scoring NetGraph (generic per-pair path)
    net = ng.NetInitialize(attention_graph(additive_scoring_net()), seed=0)
    sc = ("attention", "ScoringNet")
    Wk, Wq = (ng.NetExtract(net, sc + (n, "Weights")) for n in ("key", "query"))
    w = ng.NetExtract(net, sc + ("score", "Weights")).reshape(-1)
    dq, dk = keras.layers.Dense(HIDDEN, use_bias=False), keras.layers.Dense(HIDDEN, use_bias=False)
    add = keras.layers.AdditiveAttention(use_scale=True)
    model = keras_model(lambda a, b: add([dq(a), b, dk(b)]))
    dq.set_weights([Wq.T])
    dk.set_weights([Wk.T])
    add.set_weights([w])

    def hand_additive(p: dict, a: jax.Array, b: jax.Array) -> jax.Array:
        qh, kh = a @ p["Wq"].T, b @ p["Wk"].T
        # sum(t * w), not t @ w: on XLA's CPU backend the fused attention is about 2.2x faster
        # with the elementwise product (see README)
        return softmax_attend(jnp.sum(jnp.tanh(qh[:, :, None, :] + kh[:, None, :, :]) * p["w"], -1), b)

    cases.append(Case(
        "additive_net", "AttentionLayer(additive scoring NetGraph) vs keras Dense+AdditiveAttention",
        {"netgraph": net}, model, lambda a, b: ([a, b],), hand_additive,
        {"Wq": jnp.asarray(Wq), "Wk": jnp.asarray(Wk), "w": jnp.asarray(w)}))

    # ---- ng.keras.AdditiveAttention (Keras's own scoring: sum(scale * tanh(q + k)))
    add = keras.layers.AdditiveAttention(use_scale=True)
    add([q[:1], v[:1]])
    add.set_weights([rng.standard_normal(DIM).astype(np.float32) * 0.3])
    scale = np.asarray(add.weights[0].numpy())

    def hand_additive_keras(p: dict, a: jax.Array, b: jax.Array) -> jax.Array:
        # tanh(..) * scale, not scale * tanh(..): on XLA's CPU backend the order of this
        # product changes the speed of the whole fused attention about 2.5x (see README)
        s = jnp.sum(jnp.tanh(a[:, :, None, :] + b[:, None, :, :]) * p["scale"], axis=-1)
        return softmax_attend(s, b)

    cases.append(Case(
        "additive_builder", "ng.keras.AdditiveAttention vs keras AdditiveAttention",
        {"ng.keras.AdditiveAttention": ng.keras.from_keras(add, use_key=False)},
        add, lambda a, b: ([a, b],), hand_additive_keras, {"scale": jnp.asarray(scale)}))

    # ---- multi-head attention
    mha = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    mha(q[:1], v[:1])
    weights = {"/".join(x.path.split("/")[-2:]): jnp.asarray(x.numpy()) for x in mha.weights}
    # keras initialises biases to zero; make them non-zero so that they are checked too
    biases = {k: rng.standard_normal(x.shape).astype(np.float32) * 0.1
              for k, x in weights.items() if k.endswith("bias")}
    mha.set_weights([biases.get(k, np.asarray(x)) for k, x in weights.items()])
    weights = {k: jnp.asarray(biases.get(k, x)) for k, x in weights.items()}

    def hand_mha(p: dict, a: jax.Array, b: jax.Array) -> jax.Array:
        qh = jnp.einsum("btd,dhk->bthk", a, p["query/kernel"]) + p["query/bias"]
        kh = jnp.einsum("btd,dhk->bthk", b, p["key/kernel"]) + p["key/bias"]
        vh = jnp.einsum("btd,dhk->bthk", b, p["value/kernel"]) + p["value/bias"]
        s = jnp.einsum("bqhk,bthk->bhqt", qh / math.sqrt(KEY_DIM), kh)
        o = jnp.einsum("bhqt,bthv->bqhv", jax.nn.softmax(s, axis=-1), vh)
        return jnp.einsum("bqhv,hvo->bqo", o, p["attention_output/kernel"]) + p["attention_output/bias"]

    cases.append(Case(
        "mha", f"ng.keras.MultiHeadAttention vs keras MultiHeadAttention ({HEADS} heads x {KEY_DIM})",
        {"ng.keras.MultiHeadAttention": ng.keras.from_keras(mha, use_key=False)},
        mha, lambda a, b: (a, b), hand_mha, weights, patchable=False))
    return cases


# ------------------------------------------------ experiment: a faster attention lowering
@contextlib.contextmanager
def patched_lowering() -> Any:
    """EXPERIMENT, in this process only (the package is not modified): what the attention
    lowering costs with these changes (``--experiment`` adds a ``+patch`` row per net):

    1. lengths read off the input shapes (no ``lengths=`` given) are Python ints, and
       ``valid_mask`` returns None for a length that covers the whole axis, so an unpadded
       batch gets no masks at all (today it gets ``where``s with all-true masks that XLA
       does not remove, in the softmax and on the values);
    2. single-head attention (``multi_head=False``) is lowered without a heads axis of size 1
       (``q @ f(k).T``, softmax, ``w @ v``) - the size-1 batch axis makes XLA insert layout
       copies;
    3. multi-head attention is lowered exactly as today, masks included: without the all-true
       masks its forward pass got about 25 % faster but forward+grad 1.3-1.8x SLOWER, so the
       ``mha`` case has no ``+patch`` row;
    4. the "Bilinear" key transform is ``key @ W.T`` instead of ``W @ key`` (the orientation
       fix that ``_lower_linear`` already got), so that under vmap the keys stay rows;
    5. a LinearLayer with a single output (``LinearLayer(())`` or ``LinearLayer(1)``, as at the
       end of an additive scorer) is lowered as ``sum(x * w) + b`` instead of a matrix-vector
       product, which XLA's CPU backend fuses much better into the per-pair scores.

    With 1, 2 and 4, XLA's CPU backend compiles single-head attention to the same kernels as the
    hand-written version (one fused kernel for the forward pass)."""
    import netgraph.layers.attention as A
    import netgraph.layers.linear as LIN
    import netgraph.layers.lowering as L
    NL = sys.modules["netgraph.compiler"]      # (netgraph.compiler the attribute is the function)
    original = L.lower_layer.dispatch(A.AttentionLayer)
    original_linear = L.lower_layer.dispatch(LIN.LinearLayer)
    original_bilinear = A.key_transform.dispatch(A.BilinearScoringLayer)
    saved_valid_mask, saved_input_lengths = L.valid_mask, NL.input_lengths

    def valid_mask(length: Any, size: int) -> Any:
        if isinstance(length, int) and length >= size:
            return None
        return saved_valid_mask(length, size)

    def input_lengths(net: Any, inputs: Any) -> dict:
        from netgraph.shapes import Varying
        lengths: dict = {}
        for name in net.input_names:
            for axis, dim in enumerate(net.inference.port((), name).dims or ()):
                if isinstance(dim, Varying) and dim.symbol not in lengths:
                    lengths[dim.symbol] = int(jnp.shape(inputs[name])[axis])
        return lengths

    def lower_attention(layer: Any, ctx: Any, inputs: dict) -> dict:
        if "AttentionWeights" in layer.output_names or (ctx.train and layer.options.dropout > 0):
            return original(layer, ctx, inputs)
        h = layer.heads
        if h:                                # multi-head: today's lowering, masks included
            L.valid_mask = saved_valid_mask
            try:
                return original(layer, ctx, inputs)
            finally:
                L.valid_mask = valid_mask
        key, value, query = inputs["Key"], inputs["Value"], inputs["Query"]
        kpos, qpos = key.shape[: key.ndim - 1 - h], query.shape[: query.ndim - 1 - h]
        P, M = math.prod(kpos), math.prod(qpos)
        heads = key.shape[-2] if h else 1
        if h:
            def per_head(x: jax.Array, count: int) -> jax.Array:
                return jnp.moveaxis(x.reshape(count, heads, x.shape[-1]), 1, 0)
            keys, values, queries = per_head(key, P), per_head(value, P), per_head(query, M)
            transform, pair_scores = A._scorer(layer, ctx)
            if transform is not None:
                keys = jax.vmap(jax.vmap(transform))(keys)
            scores = jax.vmap(pair_scores)(keys, queries)                      # (H, M, P)
        else:
            keys, values, queries = key.reshape(P, -1), value.reshape(P, -1), query.reshape(M, -1)
            sctx = ctx.child("ScoringNet")
            transform = A.key_transform(layer.scoring_net, sctx) if layer.options.fast_path else None
            if transform is not None:
                scores = queries @ jax.vmap(transform)(keys).T                  # (M, P)
            else:
                def score(k: jax.Array, q: jax.Array) -> jax.Array:
                    return L.lower_layer(layer.scoring_net, sctx, {"Input": k, "Query": q})["Output"]
                scores = jax.vmap(jax.vmap(score, in_axes=(0, None)), in_axes=(None, 0))(keys, queries)
        visible = A._visibility(layer, ctx, inputs, kpos, qpos).dense(M, P)      # (M, P) or None
        rescaling = layer.options.score_rescaling
        if rescaling == "DimensionSqrt":
            scores = scores / jnp.sqrt(jnp.asarray(key.shape[-1], scores.dtype))
        elif rescaling == "LengthSqrt":
            count = jnp.full((M, P), True) if visible is None else visible
            seen = jnp.maximum(jnp.sum(count, axis=-1, keepdims=True), 1).astype(scores.dtype)
            scores = scores / jnp.sqrt(seen)
        mask = None if visible is None else jnp.broadcast_to(visible, scores.shape)
        weights = L.masked_softmax(scores, -1, mask)
        padded = L.valid_positions(ctx, "Value", jnp.zeros(kpos, bool), tuple(range(len(kpos))))
        if padded is not None:
            values = jnp.where(padded.reshape((1,) * h + (P, 1)), values, jnp.zeros((), values.dtype))
        if h:
            out = jnp.einsum("hmp,hpv->mhv", weights, values)
        else:
            out = weights @ values
        return {"Output": out.reshape(qpos + ((heads,) if h else ()) + (values.shape[-1],))}

    def lower_linear(layer: Any, ctx: Any, inputs: dict) -> dict:
        weights = ctx.params["Weights"]
        if weights.shape[0] != 1:
            return original_linear(layer, ctx, inputs)
        y = jnp.sum(inputs["Input"].reshape(-1) * weights[0])
        if "Biases" in ctx.params:
            y = y + ctx.params["Biases"].reshape(())
        return {"Output": y.reshape(ctx.shape("Output"))}

    def bilinear_transform(scoring: Any, ctx: Any) -> Callable:
        return lambda key: key @ ctx.params["Weights"].T

    L.valid_mask, NL.input_lengths = valid_mask, input_lengths
    L.lower_layer.register(A.AttentionLayer)(lower_attention)
    L.lower_layer.register(LIN.LinearLayer)(lower_linear)
    A.key_transform.register(A.BilinearScoringLayer)(bilinear_transform)
    try:
        yield
    finally:
        L.valid_mask, NL.input_lengths = saved_valid_mask, saved_input_lengths
        L.lower_layer.register(A.AttentionLayer)(original)
        L.lower_layer.register(LIN.LinearLayer)(original_linear)
        A.key_transform.register(A.BilinearScoringLayer)(original_bilinear)


# ------------------------------------------------------------------------ functions
def tree_sq_norm(tree: Any) -> float:
    return float(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))


def entry_ops(compiled_text: str) -> Counter:
    """Kernels of a compiled module: the instructions of its ENTRY computation by opcode
    (fusions by kind), without parameters, constants, tuples and bitcasts."""
    entry = compiled_text[compiled_text.index("\nENTRY"):]
    ops: Counter = Counter()
    for line in entry.splitlines()[1:]:
        m = re.match(r"\s*(?:ROOT )?%\S+ = .*? ([a-z][\w-]*)\(", line)
        if not m or m.group(1) in ("parameter", "constant", "tuple", "get-tuple-element", "bitcast"):
            continue
        op = m.group(1)
        if op == "fusion":
            kind = re.search(r'"kind":"(\w+)"', line) or re.search(r"kind=(\w+)", line)
            op = f"fusion:{kind.group(1).strip('_')}" if kind else op
        ops[op] += 1
    return ops


def compiled_ops(fwd_lowered: Any, grad_lowered: Any) -> dict[str, dict[str, int]]:
    return {"forward": dict(entry_ops(fwd_lowered.compile().as_text())),
            "grad": dict(entry_ops(grad_lowered.compile().as_text()))}


def netgraph_functions(net: ng.NetGraph) -> dict[str, Any]:
    apply = ng.lower(net)
    batched = jax.vmap(apply, in_axes=(None, 0))
    params = jax.device_put(ng.params_of(net))

    def loss(p: Any, x: dict, r: jax.Array) -> jax.Array:
        return jnp.sum(batched(p, x)["Output"] * r)

    fwd = jax.jit(lambda p, x: batched(p, x)["Output"])
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return {
        "fwd": lambda q, v: fwd(params, {"Query": q, "Value": v}),
        "grad": lambda q, v, r: grad(params, {"Query": q, "Value": v}, r),
        "split": lambda g: (g[0], g[1]["Query"], g[1]["Value"]),
        "hlo": lambda q, v, r: compiled_ops(fwd.lower(params, {"Query": q, "Value": v}),
                                            grad.lower(params, {"Query": q, "Value": v}, r)),
    }


def build_functions(case: Case, q: jax.Array, v: jax.Array, r: jax.Array,
                    experiment: bool) -> dict[str, dict[str, Callable]]:
    """label -> {"fwd": f(q, v), "grad": f(q, v, r), "split": grads -> (params, dq, dv)}."""
    funcs: dict[str, dict[str, Any]] = {}
    for label, net in case.nets.items():
        funcs[label] = netgraph_functions(net)
        if experiment and case.patchable:
            f = netgraph_functions(net)
            with patched_lowering():     # trace (and compile) while the patch is in place
                f["compile_s"] = {"forward": first_call_s(lambda: f["fwd"](q, v)),
                                  "grad": first_call_s(lambda: f["grad"](q, v, r))}
                f["hlo_ops"] = f["hlo"](q, v, r)
            funcs[f"{label} +patch"] = f

    layer, args = case.keras_layer, case.keras_args
    tv, ntv = keras_vars(layer)

    def k_fwd(tv: list, ntv: list, q: jax.Array, v: jax.Array) -> jax.Array:
        return layer.stateless_call(tv, ntv, *args(q, v))[0]

    def k_loss(tv: list, q: jax.Array, v: jax.Array, ntv: list, r: jax.Array) -> jax.Array:
        return jnp.sum(k_fwd(tv, ntv, q, v) * r)

    kf, kg = jax.jit(k_fwd), jax.jit(jax.grad(k_loss, argnums=(0, 1, 2)))
    funcs["keras"] = {
        "fwd": lambda q, v: kf(tv, ntv, q, v),
        "grad": lambda q, v, r: kg(tv, q, v, ntv, r),
        "split": lambda g: g,
        "hlo": lambda q, v, r: compiled_ops(kf.lower(tv, ntv, q, v), kg.lower(tv, q, v, ntv, r)),
    }

    hand, hp = case.hand, jax.device_put(case.hand_params)

    def h_loss(p: dict, q: jax.Array, v: jax.Array, r: jax.Array) -> jax.Array:
        return jnp.sum(hand(p, q, v) * r)

    hf, hg = jax.jit(hand), jax.jit(jax.grad(h_loss, argnums=(0, 1, 2)))
    funcs["hand"] = {
        "fwd": lambda q, v: hf(hp, q, v),
        "grad": lambda q, v, r: hg(hp, q, v, r),
        "split": lambda g: g,
        "hlo": lambda q, v, r: compiled_ops(hf.lower(hp, q, v), hg.lower(hp, q, v, r)),
    }
    return funcs


def check(case: Case, funcs: dict, q: jax.Array, v: jax.Array, r: jax.Array, tol: float) -> dict:
    """Outputs, input gradients and parameter-gradient norms agree across implementations."""
    ref = np.asarray(funcs["hand"]["fwd"](q, v))
    ref_grad = funcs["hand"]["split"](funcs["hand"]["grad"](q, v, r))
    ref_norm = tree_sq_norm(ref_grad[0])
    report = {}
    for label, f in funcs.items():
        out = np.asarray(f["fwd"](q, v))
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=f"{case.name}: {label} output")
        g = f["split"](f["grad"](q, v, r))
        for i, port in ((1, "Query"), (2, "Value")):
            np.testing.assert_allclose(np.asarray(g[i]), np.asarray(ref_grad[i]), rtol=tol, atol=tol,
                                       err_msg=f"{case.name}: {label} d/d{port}")
        norm = tree_sq_norm(g[0])
        # parameter layouts differ (Wolfram (out, in) vs Keras (in, out), heads split or not),
        # so compare the squared norm of all parameter gradients, which layouts preserve
        assert math.isclose(norm, ref_norm, rel_tol=10 * tol, abs_tol=tol), (case.name, label, norm, ref_norm)
        report[label] = {"max_abs_diff_output": float(np.max(np.abs(out - ref))),
                         "param_grad_sq_norm": norm}
    return report


def first_call_s(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    block(fn())
    return time.perf_counter() - t0


def bench_case(case: Case, q: jax.Array, v: jax.Array, r: jax.Array, cfg: dict,
               experiment: bool = False) -> dict:
    funcs = build_functions(case, q, v, r, experiment)
    compile_s = {}
    for label, f in funcs.items():
        compile_s[label] = f.get("compile_s") or {"forward": first_call_s(lambda: f["fwd"](q, v)),
                                                  "grad": first_call_s(lambda: f["grad"](q, v, r))}
    agreement = check(case, funcs, q, v, r, tol=1e-4)
    kernels = {label: f.get("hlo_ops") or f["hlo"](q, v, r) for label, f in funcs.items()}
    fwd = time_interleaved({label: (lambda f=f: f["fwd"](q, v)) for label, f in funcs.items()}, cfg)
    grad = time_interleaved({label: (lambda f=f: f["grad"](q, v, r)) for label, f in funcs.items()}, cfg)
    ratios = {}
    labels = [label for label in funcs if label not in ("keras", "hand")]
    for label in labels:
        ratios[label] = {
            "forward_vs_keras": ratio(fwd, label, "keras"),
            "forward_vs_hand": ratio(fwd, label, "hand"),
            "grad_vs_keras": ratio(grad, label, "keras"),
            "grad_vs_hand": ratio(grad, label, "hand"),
        }
    ratios["keras"] = {"forward_vs_hand": ratio(fwd, "keras", "hand"),
                       "grad_vs_hand": ratio(grad, "keras", "hand")}
    return {"title": case.title, "netgraph_labels": labels, "compile_s": compile_s, "kernels": kernels,
            "agreement": agreement, "forward": fwd, "grad": grad, "ratios": ratios}


# ------------------------------------------------------------- ways of calling keras
def bench_keras_methods(q_np: np.ndarray, v_np: np.ndarray, cfg: dict) -> dict:
    """The ways to run a Keras layer on the JAX backend, on MultiHeadAttention (forward):
    eager ``layer(q, v)``; ``model.predict_on_batch`` (Keras's own jitted predict step,
    NumPy in and out); ``jax.jit`` of the layer call with the weights closed over (they
    become compile-time constants: not comparable to a function of its params);
    ``jax.jit(stateless_call)`` with the variables as arguments (what the benchmark uses)."""
    mha = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    q_in, v_in = keras.Input((None, DIM)), keras.Input((None, DIM))
    model = keras.Model([q_in, v_in], mha(q_in, v_in))
    q, v = jnp.asarray(q_np), jnp.asarray(v_np)
    tv, ntv = keras_vars(mha)
    stateless = jax.jit(lambda tv, ntv, a, b: mha.stateless_call(tv, ntv, a, b)[0])
    closed = jax.jit(lambda a, b: mha(a, b))
    fns = {
        "eager layer(q, v)": lambda: mha(q, v),
        "model.predict_on_batch (numpy io)": lambda: model.predict_on_batch([q_np, v_np]),
        "jax.jit(layer call), weights closed over": lambda: closed(q, v),
        "jax.jit(stateless_call), weights as args": lambda: stateless(tv, ntv, q, v),
    }
    ref = np.asarray(stateless(tv, ntv, q, v))
    for name, fn in fns.items():
        np.testing.assert_allclose(np.asarray(fn()), ref, rtol=1e-4, atol=1e-4, err_msg=name)
    res = time_interleaved(fns, cfg, budget_s=cfg["methods_budget_s"])
    base = res["jax.jit(stateless_call), weights as args"]["median_s"]
    return {name: {**t, "vs_stateless_jit": t["median_s"] / base} for name, t in res.items()}


# ------------------------------------------------------------------------------ report
def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "jax": jax.__version__,
            "keras": keras.__version__, "keras_backend": keras.backend.backend(),
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(), "platform": platform.platform()}


def ms(s: float) -> str:
    return f"{s * 1e3:9.3f}"


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "ABOVE"


def print_report(res: dict) -> None:
    m = res["machine"]
    print(f"\nnetgraph attention benchmarks  ({'quick' if res['quick'] else 'full'} run; JAX {m['jax']} "
          f"on {m['backend']}, Keras {m['keras']} ({m['keras_backend']} backend), "
          f"{m['cpu_count']} CPU cores)")
    sh = res["shape"]
    print(f"shapes: batch {sh['batch']}, Tq {sh['tq']}, Tv {sh['tv']}, features {DIM}; additive hidden {HIDDEN}; "
          f"MHA {HEADS} heads x {KEY_DIM}. grad = d(sum(out*R))/d(params, query, value)")
    for name, c in res["cases"].items():
        print(f"\n[{name}] {c['title']}")
        header = (f"  {'implementation':<36}{'fwd ms':>9}{'p90':>8}{'grad ms':>9}{'p90':>8}"
                  f"{'reps':>10}{'compile s':>11}{'max|d|':>10}{'kernels':>9}")
        print(header)
        for label in c["forward"]:
            f, g = c["forward"][label], c["grad"][label]
            cs = c["compile_s"][label]
            print(f"  {label:<36}{ms(f['median_s'])}{f['p90_s'] * 1e3:8.2f}{ms(g['median_s'])}"
                  f"{g['p90_s'] * 1e3:8.2f}{f['reps']:>5}/{g['reps']:<4}"
                  f"{cs['forward'] + cs['grad']:11.2f}"
                  f"{c['agreement'][label]['max_abs_diff_output']:10.1e}"
                  f"{sum(c['kernels'][label]['forward'].values()):>5}/{sum(c['kernels'][label]['grad'].values())}")
        for label in c["netgraph_labels"]:
            r = c["ratios"][label]
            parts = []
            for key, tgt in (("forward_vs_keras", TARGET_KERAS), ("grad_vs_keras", TARGET_KERAS),
                             ("forward_vs_hand", TARGET_HAND), ("grad_vs_hand", TARGET_HAND)):
                v = r[key]["ratio_of_medians"]
                parts.append(f"{key.replace('_vs_', '/')} {v:.3f} ({r[key]['paired_median_ratio']:.3f}, "
                             f"{verdict(v, tgt)})")
            print(f"  {label}: " + "; ".join(parts))
        rk = c["ratios"]["keras"]
        print(f"  keras/hand: forward {rk['forward_vs_hand']['ratio_of_medians']:.3f}, "
              f"grad {rk['grad_vs_hand']['ratio_of_medians']:.3f}")

    print("\nsummary: ratio of medians (paired median ratio); targets: /keras <= "
          f"{TARGET_KERAS}, /hand <= {TARGET_HAND}")
    print(f"  {'case':<18}{'netgraph variant':<36}{'fwd/keras':>11}{'grad/keras':>11}"
          f"{'fwd/hand':>10}{'grad/hand':>11}")
    for name, c in res["cases"].items():
        for label in c["netgraph_labels"]:
            r = c["ratios"][label]
            cells = []
            for key, tgt in (("forward_vs_keras", TARGET_KERAS), ("grad_vs_keras", TARGET_KERAS),
                             ("forward_vs_hand", TARGET_HAND), ("grad_vs_hand", TARGET_HAND)):
                v = r[key]["ratio_of_medians"]
                cells.append(f"{v:.3f}{'*' if v > tgt else ' '}")
            print(f"  {name:<18}{label:<36}{cells[0]:>11}{cells[1]:>11}{cells[2]:>10}{cells[3]:>11}")
    print("  (* = above target)")

    km = res.get("keras_methods")
    if km:
        print("\nways of running keras MultiHeadAttention (forward, same shapes):")
        for name, t in km.items():
            print(f"  {name:<44}{ms(t['median_s'])} ms  x{t['vs_stateless_jit']:.2f}")
    print(f"\ntotal wall time {res['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--experiment", action="store_true",
                        help="also time netgraph with an in-process patched attention lowering "
                        "(see patched_lowering)")
    parser.add_argument("--cases", help="comma-separated subset of: dot, bilinear, additive_net, "
                        "additive_builder, mha, methods")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    assert keras.backend.backend() == "jax", keras.backend.backend()
    wanted = set(args.cases.split(",")) if args.cases else None
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    b, tq, tv = cfg["batch"], cfg["tq"], cfg["tv"]
    q_np = rng.standard_normal((b, tq, DIM)).astype(np.float32)
    v_np = rng.standard_normal((b, tv, DIM)).astype(np.float32)
    r_np = rng.standard_normal((b, tq, DIM)).astype(np.float32)
    q, v, r = (jax.device_put(a) for a in (q_np, v_np, r_np))
    res: dict[str, Any] = {"quick": args.quick, "experiment": args.experiment, "config": cfg,
                           "machine": machine(),
                           "shape": {"batch": b, "tq": tq, "tv": tv, "dim": DIM,
                                     "additive_hidden": HIDDEN, "heads": HEADS, "key_dim": KEY_DIM},
                           "cases": {}}
    for case in make_cases(q_np, v_np):
        if wanted is None or case.name in wanted:
            t = time.perf_counter()
            res["cases"][case.name] = bench_case(case, q, v, r, cfg, args.experiment)
            print(f"  {case.name}: {time.perf_counter() - t:.1f} s", flush=True)
    if wanted is None or "methods" in wanted:
        t = time.perf_counter()
        res["keras_methods"] = bench_keras_methods(q_np, v_np, cfg)
        print(f"  keras call methods: {time.perf_counter() - t:.1f} s", flush=True)
    res["wall_s"] = time.perf_counter() - t0
    res["targets"] = {"netgraph_over_keras_max": TARGET_KERAS, "netgraph_over_hand_max": TARGET_HAND}
    print_report(res)
    if args.json:
        if not args.samples:
            for c in res["cases"].values():
                for section in ("forward", "grad"):
                    for t in c[section].values():
                        t.pop("samples", None)
            for t in res.get("keras_methods", {}).values():
                t.pop("samples", None)
    write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
