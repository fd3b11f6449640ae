"""NetTrain's parameter rules: optimisers, learning-rate multipliers, regularizers, constraints.

Everything here is keyed by **NetExtract paths** of the user's net: a layer name or path
(``"enc"``, ``("enc", "proj")``, an int position), a path ending in an array
(``("o", "Weights")``), ``NetArray(name)`` for a shared array, or ``All`` for the whole net.
A path is resolved to leaves of the params pytree (``params_of``), the same leaves the
optimiser updates.

* **Optimisers** are optax transforms: "Adam", "SGD", "RMSProp", "AdamW" (optionally
  ``(name, {optax keyword: value})``), or any ``optax.GradientTransformation``. The update
  chain is ``clip -> weight decay -> optimiser -> multipliers -> constraints``.
* **learning_rate_multipliers** ``{path: m}``: the update of those arrays is scaled by ``m``
  (``optax.multi_transform``); the most specific path wins; ``m = 0`` freezes the arrays -
  they get no gradient and are passed through the step untouched (bit-identical).
* **regularizers** (Keras semantics) ``{path: "l1" | "l2" | "l1_l2" | ("l1", f) | ("l2", f) |
  ("l1_l2", l1, l2)}``: ``l1 * sum|w| + l2 * sum w^2`` added to the loss; a layer path means
  its "Weights" arrays (Keras's kernel regularizer).
* **activity_regularizers** (Keras's ``activity_regularizer``) ``{layer path: regularizer}``
  in the same spellings: the penalty of the layer's outputs (every output port, its true
  positions only) per example, averaged over the batch's real examples - Keras adds
  ``regularizer(output) / batch_size``, the same number for unpadded data. The layer must be
  a node of a NetGraph or NetChain (its outputs exist once per example).
* **constraints** (Keras semantics, applied after each update as an optax transform)
  ``{path: "max_norm" | "non_neg" | "unit_norm" | "min_max_norm" | (name, value...) |
  (name, {option: value})}``. Norms are taken over ``axis`` of the netgraph array, by default
  every axis but the first (one norm per output unit: Keras's ``axis=0`` for a Dense kernel,
  whose orientation is the transpose of netgraph's ``Weights``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .errors import PartSpecError, SpecificationError
from .extract import _no_part
from .layers.tree import child_name, iter_layers
from .layers.base import Layer, NetArray, shared_values
from .layers.options import All

Leaf = tuple[str, ...]  # a path in the params pytree

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): the fuzz factor of the norm constraints


# ------------------------------------------------------------------------ paths
def _spec_text(spec: Any) -> str:
    return repr(spec)


def _leaf(layer: Layer, path: Leaf, name: str) -> Leaf:
    return ("SharedArrays", layer.shared[name]) if name in layer.shared else path + (name,)


def _arrays_below(layer: Layer, path: Leaf) -> list[tuple[Layer, Leaf, str]]:
    return [(sub, sub_path, name) for sub_path, sub in iter_layers(layer, path, include_root=True)
            for name in sub.array_specs()]


def resolve_arrays(net: Layer, spec: Any, *, weights_only: bool = False,
                   option: str = "learning_rate_multipliers") -> tuple[list[Leaf], int]:
    """The params-pytree leaves named by a NetExtract ``spec`` and its specificity (the
    number of path parts; ``All`` is 0). ``weights_only``: a layer path means only its
    "Weights" arrays (a path ending in an array always means that array)."""
    if spec is All:
        layer, path, depth = net, (), 0
    elif isinstance(spec, NetArray):
        if spec.name not in shared_values(net):
            raise PartSpecError(f"{option}: the net has no shared array NetArray({spec.name!r}).",
                                hint=f"its shared arrays are: {sorted(shared_values(net)) or 'none'}.")
        return [("SharedArrays", spec.name)], 1
    else:
        parts = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
        if not parts:
            raise SpecificationError(f"{option}: an empty path () names nothing; use All for the whole net.")
        layer, path, depth = net, (), len(parts)
        for i, part in enumerate(parts):
            name = child_name(layer.children(), part)
            if name is not None:
                layer, path = layer.children()[name], path + (name,)
                continue
            if i == len(parts) - 1 and isinstance(part, str) and part in layer.array_specs():
                return [_leaf(layer, path, part)], depth
            err = _no_part(layer, part, path)
            raise PartSpecError(f"{option}: {err.message}", hint=err.hint) from None
    found = [_leaf(owner, p, name) for owner, p, name in _arrays_below(layer, path)
             if not weights_only or name == "Weights"]
    if not found:
        what = '"Weights" arrays' if weights_only else "arrays"
        raise SpecificationError(
            f"{option}: {_spec_text(spec)} ({layer.describe()}) has no {what}.",
            hint='name an array explicitly, e.g. ("layer", "Biases").' if weights_only else None,
        )
    return list(dict.fromkeys(found)), depth


def _by_specificity(net: Layer, table: Mapping[Any, Any], option: str, weights_only: bool = False,
                    ) -> dict[Leaf, tuple[Any, Any]]:
    """``{leaf: (value, spec)}``: each spec's value on its leaves, more specific specs last."""
    if not isinstance(table, Mapping):
        raise SpecificationError(
            f"{option} must be a dict keyed by NetExtract paths; found {type(table).__name__}.",
            hint=f'e.g. {option}={{"layer": ..., ("layer", "Weights"): ...}}.')
    resolved = [(depth, i, spec, leaves)
                for i, spec in enumerate(table)
                for leaves, depth in [resolve_arrays(net, spec, weights_only=weights_only, option=option)]]
    out: dict[Leaf, tuple[Any, Any]] = {}
    for _, _, spec, leaves in sorted(resolved, key=lambda r: (r[0], r[1])):
        for leaf in leaves:
            out[leaf] = (table[spec], spec)
    return out


def tree_get(tree: Mapping[str, Any], leaf: Leaf) -> Any:
    for key in leaf:
        tree = tree[key]
    return tree


def _key_path(path: Sequence[Any]) -> Leaf:
    return tuple(key.key for key in path)  # jax's DictKey entries as the plain path


def leaf_paths(tree: Any) -> list[Leaf]:
    """Every leaf path of a nested dict of arrays (``None`` leaves skipped)."""
    return [_key_path(path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)]


def map_leaves(fn: Callable[[Leaf, Any], Any], tree: Any) -> Any:
    """A nested dict of the same structure with ``fn(path, leaf)`` at every leaf (``None``
    leaves stay ``None``)."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(_key_path(path), leaf), tree)


# ------------------------------------------------------------------ multipliers
def multipliers(net: Layer, table: Mapping[Any, Any] | None, prefix: Leaf) -> dict[Leaf, float]:
    """``{training-tree leaf: multiplier}`` for every leaf whose multiplier is not 1."""
    if not table:
        return {}
    out = {}
    for leaf, (value, spec) in _by_specificity(net, table, "learning_rate_multipliers").items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise SpecificationError(
                f"learning_rate_multipliers[{spec!r}] must be a finite number >= 0 (0 freezes); "
                f"found {value!r}.")
        out[_prefixed(leaf, prefix)] = float(value)
    return {leaf: m for leaf, m in out.items() if m != 1.0}


def _prefixed(leaf: Leaf, prefix: Leaf) -> Leaf:
    return leaf if leaf[0] == "SharedArrays" else prefix + leaf


# -------------------------------------------------------------------- optimiser
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "Adam": optax.adam, "SGD": optax.sgd, "RMSProp": optax.rmsprop, "AdamW": optax.adamw,
}


def _named_optimizer(name: str, options: Mapping[str, Any], learning_rate: Any,
                     weight_decay: float | None) -> optax.GradientTransformation:
    lookup = {k.lower(): k for k in OPTIMIZERS}
    key = lookup.get(name.lower()) if isinstance(name, str) else None
    if key is None:
        raise SpecificationError(
            f"optimizer={name!r} is not a known optimizer; use one of {list(OPTIMIZERS)}, "
            "(name, {option: value}) or an optax.GradientTransformation.")
    kwargs = dict(options)
    if key == "AdamW" and weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    try:
        return OPTIMIZERS[key](learning_rate, **kwargs)
    except TypeError as err:
        raise SpecificationError(f"optimizer=({key!r}, {dict(options)!r}): {err}.",
                                 hint=f"the options are those of optax.{OPTIMIZERS[key].__name__}.") from err


def _clipping(spec: Any) -> optax.GradientTransformation:
    if isinstance(spec, (int, float)) and not isinstance(spec, bool) and spec > 0:
        return optax.clip_by_global_norm(float(spec))
    if (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ("GlobalNorm", "Value")
            and isinstance(spec[1], (int, float)) and spec[1] > 0):
        return optax.clip_by_global_norm(float(spec[1])) if spec[0] == "GlobalNorm" else optax.clip(float(spec[1]))
    raise SpecificationError(
        f"gradient_clipping={spec!r}: use a positive number (the largest global gradient norm), "
        '("GlobalNorm", c) or ("Value", c) (each element clipped to [-c, c]).')


def _learning_rate(value: Any) -> Any:
    if callable(value):
        return value  # an optax schedule: step -> learning rate
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecificationError(
            f"learning_rate must be a positive number or an optax schedule; found {value!r}.")
    return float(value)


def build_optimizer(optimizer: Any, learning_rate: Any, *, learning_rate_given: bool,
                    gradient_clipping: Any, weight_decay: Any, labels: Any,
                    scales: Mapping[str, float], constraint: optax.GradientTransformation | None,
                    ) -> optax.GradientTransformation:
    """The whole update chain (see the module docstring); ``labels``: a pytree of
    multiplier labels over the trainable params (keys of ``scales``)."""
    if weight_decay is not None and (isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float))
                                     or not math.isfinite(weight_decay) or weight_decay < 0):
        raise SpecificationError(f"weight_decay must be a number >= 0; found {weight_decay!r}.")
    chain = []
    if gradient_clipping is not None:
        chain.append(_clipping(gradient_clipping))
    if isinstance(optimizer, optax.GradientTransformation):
        if learning_rate_given:
            raise SpecificationError(
                "learning_rate was given together with an optax transform, which has its own "
                "learning rate; it would be ignored.",
                hint="build the transform with the learning rate (optax.adam(3e-4)) and drop learning_rate=.")
        if weight_decay:
            chain.append(optax.add_decayed_weights(float(weight_decay)))
        chain.append(optimizer)
    else:
        name, options = optimizer, {}
        if isinstance(optimizer, tuple) and len(optimizer) == 2 and isinstance(optimizer[1], Mapping):
            name, options = optimizer
        lr = _learning_rate(learning_rate)
        if weight_decay and not (isinstance(name, str) and name.lower() == "adamw"):
            chain.append(optax.add_decayed_weights(float(weight_decay)))
        chain.append(_named_optimizer(name, options, lr, weight_decay))
    if scales:
        chain.append(optax.multi_transform(
            {label: (optax.identity() if m == 1.0 else optax.scale(m)) for label, m in scales.items()},
            labels))
    if constraint is not None:
        chain.append(constraint)
    return optax.chain(*chain) if len(chain) > 1 else chain[0]


# ------------------------------------------------------------------ regularizers
@dataclass(frozen=True)
class Penalty:
    l1: float
    l2: float

    def __call__(self, w: jax.Array) -> jax.Array:
        total = jnp.zeros((), w.dtype)
        if self.l1:
            total = total + jnp.asarray(self.l1, w.dtype) * jnp.sum(jnp.abs(w))
        if self.l2:
            total = total + jnp.asarray(self.l2, w.dtype) * jnp.sum(jnp.square(w))
        return total


def _factor(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SpecificationError(f"{where}: a regularization factor must be a number >= 0; found {value!r}.")
    return float(value)


def parse_regularizer(spec: Any, where: str) -> Penalty:
    """Keras's spellings: "l1", "l2" (factor 0.01), "l1_l2" (0.01 and 0.01, as Keras
    documents), ("l1", f), ("l2", f), ("l1_l2", l1, l2), {"l1": a, "l2": b}."""
    if isinstance(spec, str):
        spec = (spec,)
    if isinstance(spec, Mapping) and set(spec) <= {"l1", "l2"}:
        return Penalty(_factor(spec.get("l1", 0.0), where), _factor(spec.get("l2", 0.0), where))
    if isinstance(spec, tuple) and spec and spec[0] in ("l1", "l2", "l1_l2"):
        kind, args = spec[0], spec[1:]
        if kind == "l1_l2" and len(args) in (0, 2):
            l1, l2 = args or (0.01, 0.01)
            return Penalty(_factor(l1, where), _factor(l2, where))
        if kind != "l1_l2" and len(args) <= 1:
            f = _factor(args[0], where) if args else 0.01
            return Penalty(f, 0.0) if kind == "l1" else Penalty(0.0, f)
    raise SpecificationError(
        f"{where}: {spec!r} is not a regularizer.",
        hint='use "l1", "l2", "l1_l2", ("l2", 1e-3), ("l1_l2", 1e-4, 1e-3) or {"l1": a, "l2": b}.')


def regularizers(net: Layer, table: Mapping[Any, Any] | None, prefix: Leaf) -> dict[Leaf, Penalty]:
    """``{training-tree leaf: penalty}``; a layer path means its "Weights" arrays."""
    if not table:
        return {}
    return {_prefixed(leaf, prefix): parse_regularizer(value, f"regularizers[{spec!r}]")
            for leaf, (value, spec) in _by_specificity(net, table, "regularizers", weights_only=True).items()}


def activity_regularizers(net: Layer, table: Mapping[Any, Any] | None, prefix: Leaf) -> dict[Leaf, Penalty]:
    """``{training-net node path: penalty}`` for ``table`` keyed by layer paths of ``net``
    (see the module docstring); every layer on a path must be a node of a graph."""
    if not table:
        return {}
    if not isinstance(table, Mapping):
        raise SpecificationError(
            f"activity_regularizers must be a dict keyed by layer paths; found {type(table).__name__}.",
            hint='e.g. activity_regularizers={"h": ("l2", 1e-3)}.')
    out: dict[Leaf, Penalty] = {}
    named: dict[Leaf, Any] = {}
    for spec, value in table.items():
        where = f"activity_regularizers[{spec!r}]"
        path = graph_node_path(net, spec, where)
        if path in named:
            raise SpecificationError(f"{where}: {named[path]!r} and {spec!r} name the same layer "
                                     f"{'/'.join(path)}; give one regularizer per layer.")
        named[path] = spec
        out[prefix + path] = parse_regularizer(value, where)
    return out


def graph_node_path(net: Layer, spec: Any, where: str) -> Leaf:
    """The path of names of the layer ``spec`` (a name, a 0-based position or a path of
    them) names, each step a node of a graph (a NetGraph or NetChain)."""
    from .graph import NetGraph

    parts = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
    if not parts or spec is All or isinstance(spec, NetArray):
        raise SpecificationError(
            f"{where}: an activity regularizer is keyed by a layer path; found {spec!r}.",
            hint='name a layer: "h", 2 (a position) or ("block", "h").')
    layer, path = net, ()
    for part in parts:
        if not isinstance(layer, NetGraph):
            raise SpecificationError(
                f"{where}: {'/'.join(path) or 'the net'} ({layer.describe()}) is not a NetGraph "
                f"or NetChain, so its inner layer {part!r} has no output of its own per example "
                "to regularize.",
                hint=f"regularize the output of {'/'.join(path)!r} itself." if path else None)
        name = child_name(layer.children(), part)
        if name is None:
            err = _no_part(layer, part, path)
            raise PartSpecError(f"{where}: {err.message}", hint=err.hint) from None
        layer, path = layer.children()[name], path + (name,)
    return path


def penalty(params: Mapping[str, Any], table: Mapping[Leaf, Penalty]) -> jax.Array:
    """The total regularization of ``params`` (a scalar; 0 without regularizers)."""
    terms = [fn(tree_get(params, leaf)) for leaf, fn in table.items()]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros((), jnp.float32)


# ------------------------------------------------------------------- constraints
def _axes(axis: Any, rank: int, where: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(1, rank)) if rank >= 2 else tuple(range(rank))
    chosen = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in chosen:
        if not isinstance(a, int) or not -rank <= a < rank:
            raise SpecificationError(f"{where}: axis {a!r} does not exist in a rank-{rank} array.")
    return tuple(sorted({a % rank for a in chosen}))


_CONSTRAINT_OPTIONS = {
    "max_norm": ("max_value", "axis"),
    "non_neg": (),
    "unit_norm": ("axis",),
    "min_max_norm": ("min_value", "max_value", "rate", "axis"),
}
_CONSTRAINT_DEFAULTS = {"max_value": 2.0, "min_value": 0.0, "rate": 1.0, "axis": None}
_MIN_MAX_DEFAULTS = {"max_value": 1.0}


def parse_constraint(spec: Any, rank: int, where: str) -> Callable[[jax.Array], jax.Array]:
    """A projection ``w -> w'`` with Keras's semantics (see the module docstring)."""
    if isinstance(spec, str):
        spec = (spec,)
    if not (isinstance(spec, tuple) and spec and spec[0] in _CONSTRAINT_OPTIONS):
        raise SpecificationError(
            f"{where}: {spec!r} is not a constraint.",
            hint=f'use one of {list(_CONSTRAINT_OPTIONS)}, e.g. "non_neg", ("max_norm", 3.0) or '
            '("min_max_norm", {"min_value": 0.5, "max_value": 1.0, "rate": 1.0, "axis": 1}).')
    kind, args = spec[0], spec[1:]
    names = _CONSTRAINT_OPTIONS[kind]
    if len(args) == 1 and isinstance(args[0], Mapping):
        given = dict(args[0])
    else:
        if len(args) > len(names):
            raise SpecificationError(f"{where}: {kind} takes at most {len(names)} values {names}; found {args!r}.")
        given = dict(zip(names, args))
    unknown = set(given) - set(names)
    if unknown:
        raise SpecificationError(f"{where}: {kind} has no option(s) {sorted(unknown)}; its options are {list(names)}.")
    values = {**_CONSTRAINT_DEFAULTS, **(_MIN_MAX_DEFAULTS if kind == "min_max_norm" else {}), **given}
    for key in ("max_value", "min_value", "rate"):
        v = values[key]
        if key in names and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise SpecificationError(f"{where}: {kind} {key} must be a number >= 0; found {v!r}.")
    axes = _axes(values["axis"], rank, where)

    def norms(w: jax.Array) -> jax.Array:
        return jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))

    eps = KERAS_EPSILON
    if kind == "non_neg":
        return lambda w: jnp.maximum(w, jnp.zeros((), w.dtype))
    if kind == "unit_norm":
        return lambda w: w / (eps + norms(w))
    if kind == "max_norm":
        top = float(values["max_value"])
        return lambda w: w * (jnp.clip(norms(w), 0.0, top) / (eps + norms(w)))
    low, high, rate = (float(values[k]) for k in ("min_value", "max_value", "rate"))

    def min_max(w: jax.Array) -> jax.Array:
        n = norms(w)
        return w * ((rate * jnp.clip(n, low, high) + (1.0 - rate) * n) / (eps + n))

    return min_max


def constraints(net: Layer, table: Mapping[Any, Any] | None, prefix: Leaf, params: Mapping[str, Any],
                ) -> dict[Leaf, Callable[[jax.Array], jax.Array]]:
    """``{training-tree leaf: projection}`` for ``table`` (see the module docstring)."""
    if not table:
        return {}
    out = {}
    for leaf, (value, spec) in _by_specificity(net, table, "constraints").items():
        full = _prefixed(leaf, prefix)
        out[full] = parse_constraint(value, np.ndim(tree_get(params, full)), f"constraints[{spec!r}]")
    return out


class _ConstraintState(NamedTuple):
    pass


def constraint_transform(table: Mapping[Leaf, Callable[[jax.Array], jax.Array]]) -> optax.GradientTransformation | None:
    """An optax transform whose update moves each constrained array onto its constraint:
    ``u' = c(w + u) - w`` (so ``apply_updates`` gives ``c(w + u)``)."""
    if not table:
        return None

    def init(params: Any) -> _ConstraintState:
        return _ConstraintState()

    def update(updates: Any, state: _ConstraintState, params: Any = None) -> tuple[Any, _ConstraintState]:
        if params is None:
            raise SpecificationError("constraints need the params in the optimizer update.")

        def one(path: Leaf, u: jax.Array) -> jax.Array:
            fn = table.get(path)
            if fn is None:
                return u
            w = tree_get(params, path)
            return fn(w + u) - w

        return map_leaves(one, updates), state

    return optax.GradientTransformation(init, update)


__all__ = [
    "OPTIMIZERS", "Penalty", "activity_regularizers", "build_optimizer", "constraint_transform",
    "constraints", "graph_node_path", "leaf_paths", "map_leaves", "multipliers", "parse_constraint",
    "parse_regularizer", "penalty", "regularizers", "resolve_arrays", "tree_get",
]
