"""Recurrent operators: NetFoldOperator, NetNestOperator and NetBidirectionalOperator.

Shape legend: L sequence length (fixed or varying), ``<p>`` the shape of the sub-net's port p.

======================== ================ ============== ==========================================
operator                 port             shape          notes
======================== ================ ============== ==========================================
NetFoldOperator(net)     <mapped input p> L x <p>        every net input that is not fed back
                         State            <State>        ``initial_state=True``; zeros without it
                         <net output o>   L x <o>        o at every step
                         FinalState       <State>        ``return_state=True``: the last *true* step
NetNestOperator(net, n)  Input            <net's input>  s_0
                         Output           = Input        s_n = net(...net(s_0)), n applications
NetBidirectionalOperator Input            L x ...        the sequence
                         Output           L x ... x 2d   "Catenate" (per element); "Total", "Mean":
                                                         L x ... x d
                         Forward<p>, ...                 the nets' other ports, prefixed
======================== ================ ============== ==========================================

**NetFoldOperator(net, feedback)** runs ``net`` as a recurrence over sequences (Wolfram's
NetFoldOperator): ``feedback`` maps outputs of ``net`` to its inputs (default
``{"Output": "State"}``); at step t the fed-back inputs get step t-1's outputs (step 1 gets
the initial states), every other input of ``net`` is mapped over (all share the length L;
Wolfram's constant inputs are not provided). The fold's outputs are the sequences of all of
``net``'s outputs; with ``return_state=True`` also ``Final<input>`` for each fed-back input,
taken at each example's true last step. With ``initial_state=True`` the fed-back inputs are
ports of the fold (initial values); without it they start at zeros.

**NetNestOperator(net, n)** applies a one-input, one-output ``net`` n times with the same
weights (Wolfram's NetNestOperator; its input and output have the same shape).

**NetBidirectionalOperator(net)** / **NetBidirectionalOperator((fnet, bnet), combiner)** apply
``fnet`` to the sequence "Input" and ``bnet`` to it reversed *within each example's true
length* (padding stays at the end), reverse ``bnet``'s "Output" back, and combine the two
per element: "Catenate" (default, along the last level), "Total" or "Mean". One ``net`` gives
two independently trained copies. Other ports of the nets (initial and final states) become
ports of the operator prefixed "Forward" / "Backward" (Wolfram's spelling):
``NetBidirectionalOperator(LongShortTermMemoryLayer(8, return_state=True))`` has outputs
"Output", "ForwardFinalState", "ForwardFinalCellState", "BackwardFinalState", ...

The sub-nets are "Net" (fold, nest) or "ForwardNet" and "BackwardNet" (NetExtract paths,
params, summaries). Fold and nest lower their sub-net through the same ``lower_layer``
registry (a NetGraph step through the graph walker) inside one ``lax.scan``: compile time does
not grow with the sequence length or with n. Inside the scan each step gets its own PRNG key
(the call's key folded with the step), and new layer state (BatchNormalizationLayer's moving
statistics in training) is reported as of the last true step.
"""
from __future__ import annotations

from typing import Any, Iterable, Literal, Mapping, Optional

import jax
import jax.numpy as jnp
import pydantic

from ..errors import ShapeMismatchError, SpecificationError
from ..shapes import Known, Real, rules

from .base import Layer, LayerOptions
from .lowering import LowerContext, lower_layer
from .recurrent import scan_steps
from .scope import constrain
from .sequence import reverse_within, sequence_of


def _as_layer(net: Any, what: str) -> Layer:
    if not isinstance(net, Layer):
        raise SpecificationError(f"{what}: {net!r} is not a layer, a net, or a valid specification for one.")
    return net


class _Operator(Layer):
    """A pure container of named sub-nets (as NetMapOperator): children by name, copies with
    some replaced, options kept."""

    is_container = True

    def with_children(self, children: Mapping[str, Layer]) -> "_Operator":
        new = object.__new__(type(self))
        new._adopt_children({**self.children(), **children})
        new._build(self.options.model_dump(), {k: v.to_user() for k, v in self.port_specs.items()})
        new._set(activity_regularizer=self.activity_regularizer)  # what sits on the layer itself
        return new


# ------------------------------------------------------------------ scan-step contexts
def _step_context(ctx: LowerContext, name: str, step: jax.Array) -> LowerContext:
    """The context of sub-net ``name`` lowered inside a scan body: its own lengths (symbols
    an inner layer makes stay inside the step), a PRNG key per step, and a fresh collector
    of layer state (returned through the scan). Inner outputs are never tapped inside an
    operator (NetTrain's activity regularizers take graph nodes only)."""
    inner = ctx.child(name)
    inner.lengths = dict(ctx.lengths)
    if inner.rng is not None:
        inner.rng = jax.random.fold_in(inner.rng, step)
    inner.state = None if ctx.state is None else {}
    inner.taps = None
    return inner


def _report_state(ctx: LowerContext, stacked: dict, last: Any) -> None:
    """Hand the layer state the steps collected (stacked over steps) to the caller's
    context, as of step ``last``."""
    if ctx.state is not None:
        ctx.state.update({path: value[last] for path, value in stacked.items()})


def _zeros(ctx: LowerContext, path: tuple, port: str, why: str) -> jax.Array:
    ptype = ctx.inference.port(path, port)
    if not all(isinstance(d, Known) for d in ptype.dims):
        raise ShapeMismatchError(
            f'{why}: port "{port}" of {"/".join(path)} has no fixed size ({ptype}), so it has '
            "no zero initial value.", hint="give the initial value: initial_state=True.")
    dtype = jnp.float32 if isinstance(ptype.element, Real) else jnp.int32
    return jnp.zeros(tuple(d.size for d in ptype.dims), dtype)


# ------------------------------------------------------------------------ NetFoldOperator
def _feedback_pairs(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, v in value.items())
    return value


class NetFoldOperator(_Operator):
    """Runs ``net`` as a recurrence over sequences; see the module docstring."""

    child_caption = ", folded over the sequence"

    class Options(LayerOptions):
        feedback: Optional[tuple[tuple[str, str], ...]] = None
        initial_state: bool = False
        return_state: bool = False

        _pairs = pydantic.field_validator("feedback", mode="before")(classmethod(
            lambda cls, v: _feedback_pairs(v)))

    net: Layer

    def __init__(self, net: Layer, feedback: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        """The step net and its feedback ``{output: input}`` by position; options and ports
        by keyword."""
        self._set(net=_as_layer(net, "NetFoldOperator"))
        super().__init__(**({} if feedback is None else {"feedback": feedback}), **kwargs)

    def _adopt_children(self, children: Mapping[str, Layer]) -> None:
        self._set(net=children["Net"])

    def children(self) -> dict[str, Layer]:
        return {"Net": self.net}

    @property
    def feedback(self) -> tuple[tuple[str, str], ...]:
        """(net output, net input) pairs: step t-1's output feeds step t's input."""
        return self.options.feedback or (("Output", "State"),)

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(target for _, target in self.feedback)

    @property
    def mapped(self) -> tuple[str, ...]:
        return tuple(p for p in self.net.input_names if p not in self.states)

    @property
    def input_names(self) -> tuple[str, ...]:
        return (*self.mapped, *(self.states if self.options.initial_state else ()))

    @property
    def output_names(self) -> tuple[str, ...]:
        finals = (f"Final{s}" for s in self.states) if self.options.return_state else ()
        return (*self.net.output_names, *finals)

    def describe(self) -> str:
        return f"NetFoldOperator[{self.net.describe()}]"

    def _check(self) -> None:
        net = self.net
        for source, target in self.feedback:
            if source not in net.output_names or target not in net.input_names:
                raise SpecificationError(
                    f"NetFoldOperator: the feedback {source!r} -> {target!r} needs an output "
                    f"{source!r} and an input {target!r} of {net.describe()}, whose inputs are "
                    f"{list(net.input_names)} and outputs {list(net.output_names)}.",
                    hint='give the feedback as {"output": "input"}, e.g. NetFoldOperator(net, '
                    '{"Output": "State"}) for a step net with inputs "Input" and "State".')
        if len(set(self.states)) != len(self.states):
            raise SpecificationError(f"NetFoldOperator: two feedbacks feed one input: {self.feedback}.")
        if not self.mapped:
            raise SpecificationError(
                f"NetFoldOperator: every input of {net.describe()} is fed back; at least one "
                "must be a sequence to fold over.")
        clash = set(self.output_names[len(net.output_names):]) & set(net.output_names)
        if clash:
            raise SpecificationError(f"NetFoldOperator: the step net's outputs {sorted(clash)} "
                                     "clash with the final-state ports; rename them.")

    def template(self, scope: Any) -> None:
        self._check()
        s = scope.solver
        inner = scope.child("Net", self.net)
        constrain(self.net, inner)
        length = s.new_dim()
        for name in (*self.mapped, *self.net.output_names):
            sequence_of(scope, name, inner, name, length, "NetFoldOperator")
        for source, target in self.feedback:
            where = f'the feedback "{source}" -> "{target}" of {scope.where(target)}'
            s.unify_shapes(inner.port(source), inner.port(target), where)
            s.unify_elems(inner.elem(source), inner.elem(target), where)
            ports = ((target,) if self.options.initial_state else ()) + (
                (f"Final{target}",) if self.options.return_state else ())
            for port in ports:
                s.unify_shapes(scope.port(port), inner.port(target), scope.where(port))
                s.unify_elems(scope.elem(port), inner.elem(target), scope.where(port))


@lower_layer.register(NetFoldOperator)
def _lower_fold(layer: NetFoldOperator, ctx: LowerContext, inputs: dict) -> dict:
    path = ctx.path + ("Net",)
    carry = {t: inputs[t] if t in inputs else _zeros(ctx, path, t, layer.describe())
             for t in layer.states}
    xs = {p: inputs[p] for p in layer.mapped}
    length = ctx.length(layer.mapped[0], 0)

    def step(carry: dict, x: dict, t: jax.Array) -> tuple:
        sub = _step_context(ctx, "Net", t)
        out = lower_layer(layer.net, sub, {**x, **carry})
        return {target: out[source] for source, target in layer.feedback}, (out, dict(sub.state or {}))

    final, (outputs, stacked) = scan_steps(step, carry, xs, length)
    steps = next(iter(xs.values())).shape[0]
    if steps:
        _report_state(ctx, stacked, steps - 1 if length is None else jnp.maximum(length - 1, 0))
    if layer.options.return_state:
        outputs = {**outputs, **{f"Final{t}": v for t, v in final.items()}}
    return outputs


# ------------------------------------------------------------------------ NetNestOperator
class NetNestOperator(_Operator):
    """Applies a one-input, one-output ``net`` n times (shared weights); see the module
    docstring."""

    child_caption = ", applied repeatedly"

    class Options(LayerOptions):
        n: pydantic.PositiveInt

    positional = ("n",)
    net: Layer

    def __init__(self, net: Layer, *args: Any, **kwargs: Any) -> None:
        """The net and the number of applications ``n`` by position; ports by keyword."""
        self._set(net=_as_layer(net, "NetNestOperator"))
        super().__init__(*args, **kwargs)

    def _adopt_children(self, children: Mapping[str, Layer]) -> None:
        self._set(net=children["Net"])

    def children(self) -> dict[str, Layer]:
        return {"Net": self.net}

    def describe(self) -> str:
        return f"NetNestOperator[{self.net.describe()}, {self.options.n}]"

    def template(self, scope: Any) -> None:
        net = self.net
        if len(net.input_names) != 1 or len(net.output_names) != 1:
            raise SpecificationError(
                f"NetNestOperator: the net must take exactly one input and produce exactly one "
                f"output; {net.describe()} has inputs {list(net.input_names)} and outputs "
                f"{list(net.output_names)}.")
        s = scope.solver
        inner = scope.child("Net", net)
        constrain(net, inner)
        (source,), (target,) = net.output_names, net.input_names
        for outer, port in (("Input", target), ("Output", source)):
            s.unify_shapes(scope.port(outer), inner.port(port), scope.where(outer))
            s.unify_elems(scope.elem(outer), inner.elem(port), scope.where(outer))
        where = f"{scope.where('Output')}: the net's output must have its input's shape"
        s.unify_shapes(inner.port(source), inner.port(target), where)
        s.unify_elems(inner.elem(source), inner.elem(target), where)


@lower_layer.register(NetNestOperator)
def _lower_nest(layer: NetNestOperator, ctx: LowerContext, inputs: dict) -> dict:
    (source,), (target,) = layer.net.output_names, layer.net.input_names

    def body(x: jax.Array, t: jax.Array) -> tuple:
        sub = _step_context(ctx, "Net", t)
        return lower_layer(layer.net, sub, {target: x})[source], dict(sub.state or {})

    final, stacked = jax.lax.scan(body, inputs["Input"], jnp.arange(layer.options.n))
    _report_state(ctx, stacked, layer.options.n - 1)
    return {"Output": final}


# --------------------------------------------------------------- NetBidirectionalOperator
_SIDES = (("Forward", "ForwardNet"), ("Backward", "BackwardNet"))


class NetBidirectionalOperator(_Operator):
    """A net over a sequence and over its reverse, combined per element; see the module
    docstring."""

    class Options(LayerOptions):
        combiner: Literal["Catenate", "Total", "Mean"] = "Catenate"

    positional = ("combiner",)
    forward_net: Layer
    backward_net: Layer

    def __init__(self, nets: Layer | Iterable[Layer], *args: Any, **kwargs: Any) -> None:
        """``net`` (two copies) or ``(forward_net, backward_net)``, then the combiner, by
        position; ports by keyword."""
        if isinstance(nets, (tuple, list)):
            if len(nets) != 2:
                raise SpecificationError(
                    f"NetBidirectionalOperator takes a net or a pair (forward net, backward net); "
                    f"found {len(nets)} nets.")
            forward, backward = nets
        else:
            forward = backward = nets
        self._set(forward_net=_as_layer(forward, "NetBidirectionalOperator"),
                  backward_net=_as_layer(backward, "NetBidirectionalOperator"))
        super().__init__(*args, **kwargs)

    def _adopt_children(self, children: Mapping[str, Layer]) -> None:
        self._set(forward_net=children["ForwardNet"], backward_net=children["BackwardNet"])

    def children(self) -> dict[str, Layer]:
        return {"ForwardNet": self.forward_net, "BackwardNet": self.backward_net}

    def _extra(self, kind: str) -> list[tuple[str, str, str]]:
        """(operator port, sub-net name, sub-net port) for the nets' other ports."""
        main = "Input" if kind == "input_names" else "Output"
        nets = self.children()
        return [(prefix + p, name, p) for prefix, name in _SIDES
                for p in getattr(nets[name], kind) if p != main]

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", *(p for p, _, _ in self._extra("input_names")))

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("Output", *(p for p, _, _ in self._extra("output_names")))

    def describe(self) -> str:
        return f"NetBidirectionalOperator[{self.forward_net.describe()}, {self.options.combiner}]"

    def template(self, scope: Any) -> None:
        s = scope.solver
        subs = {}
        for _, name in _SIDES:
            net = self.children()[name]
            if "Input" not in net.input_names or "Output" not in net.output_names:
                raise SpecificationError(
                    f'NetBidirectionalOperator: the {name} {net.describe()} needs an input "Input" '
                    f'and an output "Output" (a sequence to a sequence); it has inputs '
                    f"{list(net.input_names)} and outputs {list(net.output_names)}.")
            subs[name] = scope.child(name, net)
            constrain(net, subs[name])
            s.unify_shapes(scope.port("Input"), subs[name].port("Input"), scope.where("Input"))
            s.unify_elems(scope.elem("Input"), subs[name].elem("Input"), scope.where("Input"))
            s.unify_elems(scope.elem("Output"), subs[name].elem("Output"), scope.where("Output"))
        for kind in ("input_names", "output_names"):
            for port, name, inner_port in self._extra(kind):
                s.unify_shapes(scope.port(port), subs[name].port(inner_port), scope.where(port))
                s.unify_elems(scope.elem(port), subs[name].elem(inner_port), scope.where(port))
        self._output_rule(scope, [sub.port("Output") for sub in subs.values()])

    def _output_rule(self, scope: Any, parts: list[int]) -> None:
        """Output: a sequence as long as Input; the two outputs agree on every dimension but
        the last, which "Catenate" adds up."""
        s = scope.solver
        cells = [scope.port("Output"), *parts]
        catenate = self.options.combiner == "Catenate"
        done: list[bool] = []

        def run() -> None:
            ranks = [len(d) for d in map(s.dims, cells) if d is not None]
            if done or not ranks:
                return
            rank = ranks[0]
            if rank < (2 if catenate else 1):
                raise ShapeMismatchError(
                    f"{scope.where('Output')}: the nets must output a sequence"
                    + (" of arrays (rank >= 2) to catenate per element" if catenate else "")
                    + f"; found rank {rank}.")
            done.append(True)
            out, *sides = [s.set_rank(c, rank, scope.origin("Output"), scope.where("Output"))
                           for c in cells]
            for side in sides:
                for i in range(rank - 1 if catenate else rank):
                    scope.same_dim(out[i], side[i], "Output")
            if catenate:
                rules.total(s, [side[-1] for side in sides], out[-1], scope.origin("Output"),
                            scope.where("Output"))

        s.rule(run, shapes=cells)
        self._length_rule(scope)

    def _length_rule(self, scope: Any) -> None:
        s = scope.solver
        cells = (scope.port("Input"), scope.port("Output"))

        def run() -> None:
            din, dout = s.dims(cells[0]), s.dims(cells[1])
            if din is None or dout is None:
                return
            if not din:
                raise ShapeMismatchError(f"{scope.where('Input')}: NetBidirectionalOperator needs "
                                         "a sequence; found a scalar.")
            scope.same_dim(din[0], dout[0], "Output")

        s.rule(run, shapes=cells)


@lower_layer.register(NetBidirectionalOperator)
def _lower_bidirectional(layer: NetBidirectionalOperator, ctx: LowerContext, inputs: dict) -> dict:
    x = inputs["Input"]
    length = ctx.length("Input", 0)
    extra_in = layer._extra("input_names")
    results = {}
    for (prefix, name), sequence in zip(_SIDES, (x, reverse_within(x, length))):
        fed = {"Input": sequence, **{p: inputs[port] for port, n, p in extra_in if n == name}}
        results[name] = lower_layer(layer.children()[name], ctx.child(name), fed)
    forward = results["ForwardNet"]["Output"]
    backward = reverse_within(results["BackwardNet"]["Output"], length)
    combiner = layer.options.combiner
    if combiner == "Catenate":
        output = jnp.concatenate([forward, backward], axis=-1)
    else:
        output = forward + backward
        if combiner == "Mean":
            output = output / jnp.asarray(2, output.dtype)
    outputs = {"Output": output}
    outputs.update({port: results[name][p] for port, name, p in layer._extra("output_names")})
    return outputs


__all__ = ["NetBidirectionalOperator", "NetFoldOperator", "NetNestOperator"]
