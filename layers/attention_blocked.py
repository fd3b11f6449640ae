"""Attention in blocks: memory linear in the key length, for any scoring net.

The machinery behind ``AttentionLayer(key_block_size=...)`` (see ``attention.py``). Shape
legend: M query positions, P key positions (both flattened), bq / bk the query / key block,
v value size.

* :class:`Visibility` says which key each query row sees - key validity (padding, KeyMask),
  QueryMask, AttentionMask and the causal masks - without building an M x P array (unless an
  AttentionMask brings one): the materialised path asks it for the whole ``(M, P)`` mask,
  the blocked path for one ``(bq, bk)`` block at a time, and for the blocks it may skip.
* :func:`online_attention` is the online softmax of Rabe & Staats / FlashAttention: a
  ``lax.map`` over query blocks, inside it a ``lax.scan`` over key blocks carrying the running
  maximum, normaliser and weighted sum of values (float32 for 16- and 32-bit inputs, float64 for float64 ones). Every
  block's scores come from ``pair_scores(key_block, query_block) -> (bq, bk)``: a matmul on
  the fast path, the scoring net lowered by the one walker on the block's (query, key) pairs
  otherwise. Both the query-block body and the key-block step are ``jax.checkpoint``-ed, so
  the backward pass recomputes block scores instead of storing them: the memory of forward
  and backward is linear in P (for a fixed block size). Dropout is applied to the block's
  unnormalised weights with a key folded from the block indices.
* Blocks that the masks discard entirely (above the causal diagonal, outside a
  ("Causal", n) window, beyond the true key or query length) are skipped with ``lax.cond``
  on block indices. A true length differs per example: under the evaluator's batch ``vmap``
  the batch's largest length is used (``lax.pmax`` over ``ctx.batch_axis``), so the
  predicate is the same for every example and the skipped block is really not computed.
* :func:`blocked_scores` gives the M x P scores block by block (for ``attention_weights``):
  M x P numbers, never the M x P x hidden pair tensor.

A non-finite value at a key position hidden from a query row never reaches that row: hidden
values are replaced by zeros before the weighted sum, and a row that sees a non-finite value
gives NaN (the same rule on the materialised path).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from .dropout import dropout

LOW = float(jnp.finfo(jnp.float32).min)

PairScores = Callable[[jax.Array, jax.Array], jax.Array]
"""``pair_scores(key_block (bk, ..), query_block (bq, ..)) -> scores (bq, bk)``."""


@dataclass(frozen=True)
class Visibility:
    """Which key position each query position sees (all four parts are optional).

    ``keys`` (P,) bool: valid keys (true length and KeyMask); ``queries`` (M,) bool:
    QueryMask; ``pairs`` (M, P) bool: AttentionMask; ``causal``: the layer's ``mask``
    option. ``key_bound`` / ``query_bound``: how many leading key / query positions may be
    seen (an int, an unbatched int32 scalar, or None for all) - what block skipping reads."""

    keys: Optional[jax.Array] = None
    queries: Optional[jax.Array] = None
    pairs: Optional[jax.Array] = None
    causal: Any = None
    key_bound: Any = None
    query_bound: Any = None

    @property
    def rows_differ(self) -> bool:
        """Whether two query rows may see different keys (then hidden values are cleaned)."""
        return self.queries is not None or self.pairs is not None or self.causal is not None

    @property
    def empty(self) -> bool:
        return self.keys is None and not self.rows_differ

    def block(self, i0: Any, bq: int, j0: Any, bk: int) -> Optional[jax.Array]:
        """(bq, bk) bool for query rows ``i0 ..`` and key columns ``j0 ..``; None if all."""
        parts = []
        if self.keys is not None:
            parts.append(jax.lax.dynamic_slice_in_dim(self.keys, j0, bk)[None, :])
        if self.queries is not None:
            parts.append(jax.lax.dynamic_slice_in_dim(self.queries, i0, bq)[:, None])
        if self.pairs is not None:
            parts.append(jax.lax.dynamic_slice(self.pairs, (i0, j0), (bq, bk)))
        if self.causal is not None:
            i = i0 + jnp.arange(bq, dtype=jnp.int32)[:, None]
            j = j0 + jnp.arange(bk, dtype=jnp.int32)[None, :]
            allowed = j <= i
            if isinstance(self.causal, tuple):
                allowed = allowed & (j > i - self.causal[1])
            parts.append(allowed)
        if not parts:
            return None
        mask = parts[0]
        for part in parts[1:]:
            mask = mask & part
        return jnp.broadcast_to(mask, (bq, bk))

    def dense(self, M: int, P: int) -> Optional[jax.Array]:
        """The whole (M, P) mask, or None when every query sees every key."""
        return self.block(0, M, 0, P)

    def seen(self, M: int, P: int) -> jax.Array:
        """(M,) int32: how many keys each query row sees (LengthSqrt), in O(M + P) memory
        unless an AttentionMask is given."""
        if self.pairs is not None:
            return jnp.sum(self.dense(M, P), axis=-1, dtype=jnp.int32)
        ok = jnp.ones(P, jnp.int32) if self.keys is None else self.keys.astype(jnp.int32)
        before = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(ok)])  # keys < j
        i = jnp.arange(M, dtype=jnp.int32)
        if self.causal is None:
            count = jnp.full(M, before[P])
        else:
            hi = jnp.minimum(i + 1, P)
            lo = jnp.zeros(M, jnp.int32)
            if isinstance(self.causal, tuple):
                lo = jnp.clip(i - self.causal[1] + 1, 0, P)
            count = jnp.where(lo < hi, before[hi] - before[jnp.minimum(lo, hi)], 0)
        if self.queries is not None:
            count = jnp.where(self.queries, count, 0)
        return count

    def padded(self, M: int, P: int, Mp: int, Pp: int) -> "Visibility":
        """The same visibility over M, P padded to Mp, Pp (padded keys are never seen)."""
        keys = self.keys
        if Pp > P:
            keys = jnp.arange(Pp, dtype=jnp.int32) < P if keys is None else jnp.pad(keys, (0, Pp - P))
        queries = None if self.queries is None else jnp.pad(self.queries, (0, Mp - M))
        pairs = None if self.pairs is None else jnp.pad(self.pairs, ((0, Mp - M), (0, Pp - P)))
        return replace(self, keys=keys, queries=queries, pairs=pairs)

    def needed(self, i0: Any, bq: int, j0: Any, bk: int) -> Optional[jax.Array]:
        """Whether the (bq, bk) block at (i0, j0) can hold a visible pair, from block
        indices and bounds alone; None when every block can."""
        tests = []
        if self.causal is not None:
            tests.append(j0 <= i0 + bq - 1)  # not entirely above the diagonal
            if isinstance(self.causal, tuple):
                tests.append(j0 + bk - 1 > i0 - self.causal[1])  # inside the window
        if self.key_bound is not None:
            tests.append(j0 < self.key_bound)
        if self.query_bound is not None:
            tests.append(i0 < self.query_bound)
        if not tests:
            return None
        result = tests[0]
        for t in tests[1:]:
            result = result & t
        return result


def clean_values(values: jax.Array, vis: Visibility) -> tuple[jax.Array, Optional[jax.Array]]:
    """Values with hidden junk removed, and (P,) bool "this position holds a non-finite
    value" when rows see different keys (else None).

    Positions no query sees (padding, KeyMask) become zeros; when rows differ (causal,
    QueryMask, AttentionMask) every non-finite value becomes zero too, and the rows that see
    one are set to NaN afterwards (:func:`poison`)."""
    if vis.keys is not None:
        values = jnp.where(vis.keys.reshape((-1,) + (1,) * (values.ndim - 1)), values,
                           jnp.zeros((), values.dtype))
    if not vis.rows_differ:
        return values, None
    finite = jnp.isfinite(values)
    bad = ~jnp.all(finite.reshape(values.shape[0], math.prod(values.shape[1:])), axis=-1)
    return jnp.where(finite, values, jnp.zeros((), values.dtype)), bad


def poison(out: jax.Array, hit: Optional[jax.Array]) -> jax.Array:
    """``out`` (M, ..) with the rows flagged in ``hit`` (M,) set to NaN."""
    if hit is None:
        return out
    return jnp.where(hit.reshape((-1,) + (1,) * (out.ndim - 1)), jnp.asarray(jnp.nan, out.dtype), out)


def _pad_rows(x: jax.Array, rows: int) -> jax.Array:
    return jnp.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def _fold(key: jax.Array, *indices: Any) -> jax.Array:
    for index in indices:
        key = jax.random.fold_in(key, index)
    return key


def online_attention(pair_scores: PairScores, keys: jax.Array, values: jax.Array,
                     queries: jax.Array, vis: Visibility, block_q: int, block_k: int,
                     scale: Optional[jax.Array], rate: float, drop: Optional[jax.Array]) -> jax.Array:
    """Output (M, v) of one head by an online softmax over (block_q x block_k) blocks.

    ``keys`` (P, ..) and ``queries`` (M, ..) are what ``pair_scores`` reads; ``values``
    (P, v); ``scale`` (M,) float32 multiplies the scores of each row (or None); ``drop``: a
    dropout key (training) or None."""
    M, P, dtype = queries.shape[0], keys.shape[0], values.dtype
    stat = jnp.float64 if dtype == jnp.float64 else jnp.float32  # statistics: float64 under Real64
    if M == 0 or P == 0:  # no query, or no key to see: zero rows
        return jnp.zeros((M, values.shape[-1]), dtype)
    bq, bk = min(block_q, M), min(block_k, P)
    nq, nk = -(-M // bq), -(-P // bk)
    values, bad = clean_values(values, vis)
    vis = vis.padded(M, P, nq * bq, nk * bk)
    qs, ks, vs = _pad_rows(queries, nq * bq), _pad_rows(keys, nk * bk), _pad_rows(values, nk * bk)
    bad = None if bad is None else jnp.pad(bad, (0, nk * bk - P))
    scales = None if scale is None else jnp.pad(scale, (0, nq * bq - M))
    width = values.shape[-1]

    def query_block(iq: jax.Array) -> jax.Array:
        i0 = iq * bq
        q = jax.lax.dynamic_slice_in_dim(qs, i0, bq)

        def step(carry: tuple, jk: jax.Array) -> tuple:
            j0 = jk * bk

            def compute(carry: tuple) -> tuple:
                top, total, acc, hit = carry
                s = pair_scores(jax.lax.dynamic_slice_in_dim(ks, j0, bk), q).astype(stat)
                if scales is not None:
                    s = s * jax.lax.dynamic_slice_in_dim(scales, i0, bq).astype(stat)[:, None]
                seen = vis.block(i0, bq, j0, bk)
                if seen is not None:
                    s = jnp.where(seen, s, LOW)
                new_top = jax.lax.stop_gradient(jnp.maximum(top, jnp.max(s, axis=-1)))
                p = jnp.exp(s - new_top[:, None])
                if seen is not None:
                    p = jnp.where(seen, p, 0.0)
                rescale = jnp.exp(top - new_top)
                total = total * rescale + jnp.sum(p, axis=-1)
                if drop is not None:
                    p = dropout(p, rate, _fold(drop, iq, jk))
                v = jax.lax.dynamic_slice_in_dim(vs, j0, bk).astype(stat)
                acc = acc * rescale[:, None] + p @ v
                if bad is not None:
                    hit = hit | jnp.any(seen & jax.lax.dynamic_slice_in_dim(bad, j0, bk)[None, :], axis=-1)
                return new_top, total, acc, hit

            needed = vis.needed(i0, bq, j0, bk)
            if needed is None:
                return compute(carry), None
            return jax.lax.cond(needed, compute, lambda c: c, carry), None

        init = (jnp.full(bq, LOW, stat), jnp.zeros(bq, stat),
                jnp.zeros((bq, width), stat), jnp.zeros(bq, bool))
        (_, total, acc, hit), _ = jax.lax.scan(jax.checkpoint(step), init, jnp.arange(nk, dtype=jnp.int32))
        some = total > 0
        out = jnp.where(some[:, None], acc / jnp.where(some, total, 1.0)[:, None], 0.0)
        return poison(out, hit if bad is not None else None).astype(dtype)

    out = jax.lax.map(jax.checkpoint(query_block), jnp.arange(nq, dtype=jnp.int32))
    return out.reshape(nq * bq, width)[:M]


def blocked_scores(pair_scores: PairScores, keys: jax.Array, queries: jax.Array,
                   block_q: int, block_k: int) -> jax.Array:
    """The (M, P) scores, computed block by block (checkpointed: the backward pass
    recomputes each block's pair tensor instead of storing it)."""
    M, P = queries.shape[0], keys.shape[0]
    if M == 0 or P == 0:
        return jnp.zeros((M, P), queries.dtype)
    bq, bk = min(block_q, M), min(block_k, P)
    nq, nk = -(-M // bq), -(-P // bk)
    qs, ks = _pad_rows(queries, nq * bq), _pad_rows(keys, nk * bk)

    @jax.checkpoint
    def one(iq: jax.Array, jk: jax.Array) -> jax.Array:
        return pair_scores(jax.lax.dynamic_slice_in_dim(ks, jk * bk, bk),
                           jax.lax.dynamic_slice_in_dim(qs, iq * bq, bq))

    rows = jax.lax.map(lambda iq: jax.lax.map(lambda jk: one(iq, jk), jnp.arange(nk, dtype=jnp.int32)), jnp.arange(nq, dtype=jnp.int32))
    return jnp.transpose(rows, (0, 2, 1, 3)).reshape(nq * bq, nk * bk)[:M, :P]


def batch_bound(length: Any, batch_axis: Optional[str]) -> Any:
    """A length bound the same for every example of the batch (the batch's largest
    length), so that block skipping stays a real branch under ``vmap``."""
    if length is None or isinstance(length, int) or batch_axis is None:
        return length
    return jax.lax.pmax(length, batch_axis)


def block_sizes(option: Any, per_pair: int, M: int, P: int, heads: int, itemsize: int,
                fast: bool, causal: bool, threshold: int, block_bytes: int,
                score_bytes: int) -> Optional[tuple[int, int]]:
    """(query block, key block), or None to materialise.

    ``option``: the layer's ``key_block_size`` (None, an int, or Automatic: block when the
    pair tensor ``M * P * heads * per_pair * itemsize`` exceeds ``threshold`` bytes, with
    blocks of about ``block_bytes``; on the matmul fast path also when one head's M x P
    scores exceed ``score_bytes`` - beyond that a blocked online softmax is faster than the
    materialised one - with key blocks of ``score_bytes`` / M positions, 128 to 1024;
    with symbolic lengths, as in an exported function serving every length, Automatic
    materialises). The fast path blocks keys only (scores are M x bk), except under a causal
    mask, whose skipping needs query blocks too."""
    if option is None:
        return None
    wide = fast and not causal
    if isinstance(option, int):
        return (M, option) if wide else (option, option)
    if not (isinstance(M, int) and isinstance(P, int)):
        return None  # symbolic lengths (ng.export): the size is unknown, materialise
    big = M * P * max(heads, 1) * per_pair * itemsize > threshold
    slow = fast and M * P * itemsize > score_bytes
    if not (big or slow):
        return None
    pairs = max(block_bytes // (max(heads, 1) * per_pair * itemsize), 1)
    log = int(math.log2(max(pairs // M, 1))) if wide else int(math.log2(pairs)) // 2
    block = 1 << max(4, min(10, log))
    if fast:
        block = min(block, 1 << max(7, min(10, int(math.log2(max(score_bytes // (M * itemsize), 1))))))
    return (M, block) if wide else (block, block)


def cudnn_applies(dtype: Any, sizes: tuple[int, int, int], rate: float, causal: Any,
                  rescaling: Optional[str], ports: tuple[str, ...]) -> bool:
    """Whether ``jax.nn.dot_product_attention``'s cuDNN kernel can compute this dot-product
    attention exactly as the layer defines it: on a GPU, 16-bit inputs, one head size <= 128
    and a multiple of 8 for keys, queries and values, no dropout, no rescaling but
    DimensionSqrt, no mask but "Causal" / ("Causal", n), no mask ports, no weights output."""
    k, q, v = sizes
    return (jax.default_backend() == "gpu" and jnp.dtype(dtype) in (jnp.float16, jnp.bfloat16)
            and k == q == v and k <= 128 and k % 8 == 0 and rate == 0.0
            and rescaling in (None, "DimensionSqrt")
            and set(ports) <= {"Key", "Value", "Query", "Output"})


def fused_dot_attention(keys: jax.Array, values: jax.Array, queries: jax.Array, causal: Any,
                        scale: float, key_length: Any, implementation: str) -> jax.Array:
    """Multi-head dot attention (P, H, k), (P, H, v), (M, H, q) -> (M, H, v) by
    ``jax.nn.dot_product_attention`` (``implementation`` "cudnn" on a GPU, "xla" anywhere);
    rows that see no key are zeros."""
    window = (causal[1] - 1, 0) if isinstance(causal, tuple) else None
    lengths = None if key_length is None else jnp.reshape(jnp.asarray(key_length, jnp.int32), (1,))
    out = jax.nn.dot_product_attention(
        queries[None], keys[None], values[None], scale=scale, is_causal=causal is not None,
        key_value_seq_lengths=lengths, local_window_size=window, implementation=implementation)[0]
    M, P = queries.shape[0], keys.shape[0]
    valid = None if key_length is None else jnp.arange(P, dtype=jnp.int32) < key_length
    sees = Visibility(keys=valid, causal=causal).seen(M, P) > 0
    return jnp.where(sees[:, None, None], out, jnp.zeros((), out.dtype))
