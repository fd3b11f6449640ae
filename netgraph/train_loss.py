"""NetTrain's losses: the training net built around the user's net, and the metrics.

The training net is a NetGraph with the user's net as node ``"net"`` and, for each output
that gets a loss, a loss layer fed by that output and a new graph input holding the target::

    Input ──> net ──Output──> loss ──Loss──> graph output "Loss"
                       Target ──┘             (and the prediction, for the metrics)

``loss=`` chooses how:

* ``"Automatic"``: if the net has scalar outputs named "Loss..." they are the losses (as
  built by hand, e.g. a NetGraph with its own loss layers); otherwise every output gets
  ``CrossEntropyLossLayer("Index")`` when it is a SoftmaxLayer's output over classes (also
  inside NetChain / NetGraph / NetMapOperator), else ``MeanSquaredLossLayer``;
* a loss layer (or any net with an "Input" port and a scalar "Loss" output): attached to the
  net's only output;
* ``{output: loss layer or "Automatic"}``: one loss per named output;
* an output name or a list of them: those (scalar) outputs of the net are the losses.

The target input is named ``"Target"`` when one loss is attached, else after the output it
belongs to (Wolfram's convention). ``loss_weights={port: w}`` (loss output, or the output a
loss is attached to) weights the total ``sum_k w_k * loss_k`` (default 1 each).

Metrics (per example, averaged over its true positions, then over examples): accuracy and
error rate for a cross-entropy loss, mean absolute error for a regression loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from .errors import SpecificationError
from .graph import NetGraph, NetPort
from .ir import PortRef
from .layers.base import Layer
from .layers.loss import (LOSS_PORT, TARGET_PORT, CrossEntropyLossLayer, MeanAbsoluteLossLayer,
                          MeanSquaredLossLayer)
from .layers.sequence import NetMapOperator
from .layers.softmax import SoftmaxLayer
from .shapes import Known, Varying
from .coders import coder_of

NET = "net"
PREDICTION = "{}$prediction"


@dataclass(frozen=True)
class LossTerm:
    """One loss of the training net: its scalar output port and weight; for an attached
    loss layer also the net output it reads, the target input and the metrics' kind."""

    port: str
    weight: float
    output: str | None = None      # the user's net output the loss is attached to
    target: str | None = None      # the training net's target input
    kind: str | None = None        # "Index" | "Probabilities" | "Binary" | "Regression" | None
    layer: str = ""                # how the loss is described in messages

    @property
    def prediction(self) -> str | None:
        return None if self.output is None else PREDICTION.format(self.output)

    def metric_names(self) -> tuple[str, ...]:
        if self.kind in ("Index", "Probabilities", "Binary"):
            return ("accuracy", "error_rate")
        if self.kind == "Regression":
            return ("mean_absolute_error",)
        return ()


@dataclass(frozen=True)
class TrainingNet:
    """The net trained (see the module docstring)."""

    graph: NetGraph
    terms: tuple[LossTerm, ...]

    @property
    def data_ports(self) -> tuple[str, ...]:
        return self.graph.input_names

    @property
    def target_ports(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.terms if t.target is not None)

    def describe_target(self, port: str) -> str | None:
        for term in self.terms:
            if term.target == port:
                ptype = self.graph.inference.port((), port)
                return (f'{term.layer} attached to the output "{term.output}" reads the target '
                        f'from "{port}": {ptype} per example')
        return None


# ----------------------------------------------------------------- automatic choice
def class_count(net: Layer, port: str) -> int | None:
    """The number of classes when ``port`` is a softmax over its last axis (looking through
    NetGraph, NetChain and NetMapOperator), else None."""
    ptype = net.inference.port((), port)
    if ptype.dims is None or not ptype.dims or not isinstance(ptype.dims[-1], Known):
        return None
    layer, rank = net, len(ptype.dims)
    while True:
        if isinstance(layer, NetGraph):
            src = layer.edges.get(PortRef(None, port))
            if src is None or src.node is None:
                return None
            layer, port = layer.nodes[src.node], src.port
        elif isinstance(layer, NetMapOperator):
            layer, rank = layer.net, rank - 1
        elif isinstance(layer, SoftmaxLayer):
            level = layer.options.level
            return ptype.dims[-1].size if rank >= 1 and level in (-1, rank - 1) else None
        else:
            return None


def automatic_loss(net: Layer, port: str) -> Layer:
    if getattr(coder_of(net.port_specs.get(port)), "kind", None) == "Boolean":  # a NetDecoder
        return CrossEntropyLossLayer("Binary")
    return CrossEntropyLossLayer("Index") if class_count(net, port) else MeanSquaredLossLayer()


def _kind(layer: Layer) -> str | None:
    if isinstance(layer, CrossEntropyLossLayer):
        return layer.options.target_form
    if isinstance(layer, (MeanSquaredLossLayer, MeanAbsoluteLossLayer)):
        return "Regression"
    return None


def _is_loss_net(layer: Any) -> bool:
    return (isinstance(layer, Layer) and "Input" in layer.input_names
            and LOSS_PORT in layer.output_names)


def _scalar_outputs(net: Layer) -> list[str]:
    return [n for n in net.output_names if net.inference.port((), n).dims == ()]


# ------------------------------------------------------------------ the training net
def _weight(weights: Mapping[str, Any], key: str) -> float:
    value = weights.get(key, 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SpecificationError(f"loss_weights[{key!r}] must be a finite number >= 0; found {value!r}.")
    return float(value)


def build_training_net(net: Layer, loss: Any = "Automatic",
                       loss_weights: Mapping[str, Any] | None = None) -> TrainingNet:
    """Wrap ``net`` with its losses (see the module docstring)."""
    weights = dict(loss_weights or {})
    if not isinstance(loss_weights, (Mapping, type(None))):
        raise SpecificationError(
            f"loss_weights must be a dict {{port: weight}}; found {type(loss_weights).__name__}.")
    outputs = list(net.output_names)
    own: list[str] | None = None
    attach: dict[str, Layer] = {}
    if isinstance(loss, str) and loss == "Automatic":
        own = [n for n in _scalar_outputs(net) if n.startswith(LOSS_PORT)] or None
        if own is None:
            attach = {o: automatic_loss(net, o) for o in outputs}
    elif isinstance(loss, str) or (isinstance(loss, (list, tuple)) and all(isinstance(x, str) for x in loss)):
        own = [loss] if isinstance(loss, str) else list(loss)
        scalars = _scalar_outputs(net)
        bad = [n for n in own if n not in scalars]
        if bad or not own:
            raise SpecificationError(
                f"loss={loss!r}: {bad or own} {'is' if len(bad) == 1 else 'are'} not scalar outputs of "
                f"{net.describe()}; its outputs are {net.output_ports}.",
                hint='loss="Automatic", a loss layer such as MeanSquaredLossLayer(), or '
                '{output: loss layer} attach a loss to a non-scalar output.')
    elif _is_loss_net(loss):
        if len(outputs) != 1:
            raise SpecificationError(
                f"loss={loss.describe()} does not say which output of {net.describe()} it belongs to; "
                f"the net has outputs {outputs}.",
                hint=f"give loss={{{outputs[0]!r}: {loss.describe()}, ...}}.")
        attach = {outputs[0]: loss}
    elif isinstance(loss, Mapping):
        for port, layer in loss.items():
            if port not in outputs:
                raise SpecificationError(f"loss: {port!r} is not an output of {net.describe()}; its outputs are {outputs}.")
            if isinstance(layer, str) and layer == "Automatic":
                layer = automatic_loss(net, port)
            if not _is_loss_net(layer):
                raise SpecificationError(
                    f"loss[{port!r}] = {layer!r} is not a loss layer (a net with an \"Input\" port "
                    'and a scalar "Loss" output) or "Automatic".')
            attach[port] = layer
        if not attach:
            raise SpecificationError("loss={} attaches no loss; give at least one output.")
    else:
        raise SpecificationError(
            f"loss={loss!r} is not a loss.",
            hint='use "Automatic", a loss layer (CrossEntropyLossLayer("Index")), {output: loss '
            'layer}, or the name(s) of scalar loss outputs of the net.')
    if own is not None:
        return _with_own_losses(net, own, weights)
    return _with_attached_losses(net, attach, weights)


def _check_weight_keys(weights: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = [k for k in weights if k not in allowed]
    if unknown:
        raise SpecificationError(f"loss_weights names {unknown}, which are not losses here; the losses are {list(allowed)}.")


def _with_own_losses(net: Layer, own: list[str], weights: Mapping[str, Any]) -> TrainingNet:
    _check_weight_keys(weights, own)
    connections = [(NetPort(i), NetPort(NET, i)) for i in net.input_names]
    connections += [(NetPort(NET, o), NetPort(o)) for o in own]
    connections += [(NetPort(NET, o), None) for o in net.output_names if o not in own]
    graph = NetGraph({NET: net}, connections)
    terms = tuple(LossTerm(o, _weight(weights, o), layer=f'the net\'s output "{o}"') for o in own)
    return TrainingNet(graph, terms)


def _with_attached_losses(net: Layer, attach: Mapping[str, Layer], weights: Mapping[str, Any]) -> TrainingNet:
    _check_weight_keys(weights, list(attach))
    single = len(attach) == 1
    nodes: dict[str, Layer] = {NET: net}
    connections: list = [(NetPort(i), NetPort(NET, i)) for i in net.input_names]
    terms = []
    taken = set(net.input_names)
    for number, (output, layer) in enumerate(attach.items()):
        node = "loss" if single else f"loss{number + 1}"
        target = TARGET_PORT if single else output
        port = LOSS_PORT if single else f"{output}{LOSS_PORT}"
        extra = [p for p in layer.input_names if p not in ("Input", TARGET_PORT)]
        for name in ([target] if TARGET_PORT in layer.input_names else []) + extra:
            if name in taken:
                raise SpecificationError(
                    f'the net already has an input "{name}", which the loss attached to '
                    f'"{output}" needs for its target.',
                    hint="rename the net's input port, or build the training net yourself with "
                    'loss layers and pass loss="Automatic".')
            taken.add(name)
        nodes[node] = layer
        connections.append((NetPort(NET, output), NetPort(node, "Input")))
        if TARGET_PORT in layer.input_names:
            connections.append((NetPort(target), NetPort(node, TARGET_PORT)))
        connections += [(NetPort(p), NetPort(node, p)) for p in extra]
        connections.append((NetPort(node, LOSS_PORT), NetPort(port)))
        connections += [(NetPort(node, o), None) for o in layer.output_names if o != LOSS_PORT]
        connections.append((NetPort(NET, output), NetPort(PREDICTION.format(output))))
        terms.append(LossTerm(port, _weight(weights, output), output,
                              target if TARGET_PORT in layer.input_names else None, _kind(layer),
                              layer.describe()))
    connections += [(NetPort(NET, o), None) for o in net.output_names if o not in attach]
    graph = NetGraph(nodes, connections)
    for term in terms:
        if graph.inference.port((), term.port).dims != ():
            raise SpecificationError(
                f'the loss attached to "{term.output}" ({term.layer}) has a non-scalar "Loss" '
                f"output {graph.inference.port((), term.port)}.")
    return TrainingNet(graph, tuple(terms))


# ----------------------------------------------------------------------------- metrics
def position_mask(dims: Sequence[Any], shape: Sequence[int], lengths: Mapping[str, Any]) -> jax.Array | None:
    """True at the real positions of one example's array (``dims`` its solved port dims,
    ``lengths`` the true length of each varying symbol, absent when exact)."""
    mask = None
    for axis, dim in enumerate(tuple(dims)[:len(shape)]):
        if isinstance(dim, Varying) and dim.symbol in lengths:
            m = jnp.arange(shape[axis]) < lengths[dim.symbol]
            view = [1] * len(shape)
            view[axis] = shape[axis]
            m = jnp.broadcast_to(m.reshape(view), tuple(shape))
            mask = m if mask is None else mask & m
    return mask


def _mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    values = values.astype(jnp.float32)
    if values.ndim == 0:
        return values
    if mask is None:
        return jnp.mean(values)
    total = jnp.sum(jnp.where(mask, values, jnp.zeros((), values.dtype)))
    return total / jnp.maximum(jnp.sum(mask), 1).astype(values.dtype)


def example_metrics(term: LossTerm, graph: NetGraph, prediction: jax.Array, target: jax.Array,
                    lengths: Mapping[str, Any]) -> dict[str, jax.Array]:
    """The metrics of one example for one loss (see the module docstring)."""
    if term.kind is None or term.target is None:
        return {}
    dims = graph.inference.port((), term.target).dims
    if term.kind == "Regression":
        error = jnp.abs(prediction - target)
        return {"mean_absolute_error": _mean(error, position_mask(dims, error.shape, lengths))}
    if term.kind == "Index":
        hit = jnp.argmax(prediction, axis=-1) == target
    elif term.kind == "Probabilities":
        hit = jnp.argmax(prediction, axis=-1) == jnp.argmax(target, axis=-1)
    else:
        hit = (prediction > 0.5) == (target > 0.5)
    accuracy = _mean(hit, position_mask(dims, hit.shape, lengths))
    return {"accuracy": accuracy, "error_rate": 1.0 - accuracy}


__all__ = ["LossTerm", "TrainingNet", "automatic_loss", "build_training_net", "class_count",
           "example_metrics", "position_mask"]
