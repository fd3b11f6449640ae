"""Recurrent layers: BasicRecurrentLayer, GatedRecurrentLayer, LongShortTermMemoryLayer.

Shape legend: L sequence length (fixed or varying), k input size, n state size (``size``).

================== ============== ======= ===================================================
port               when           shape   notes
================== ============== ======= ===================================================
Input              always         L x k   the sequence x_1 .. x_L
Output             always         L x n   the states s_1 .. s_L (zeros past the true length)
State              initial_state  n       s_0 (zeros without the port)
CellState          initial_state  n       c_0, LongShortTermMemoryLayer only
FinalState         return_state   n       s_T at each example's *true* last step T
FinalCellState     return_state   n       c_T, LongShortTermMemoryLayer only
================== ============== ======= ===================================================

Wolfram's recurrences (``.`` a matrix-vector product, ``*`` elementwise, sigma the logistic
sigmoid); every matrix ``W?x`` is n x k, every ``W?s`` n x n, every bias a vector of n:

* BasicRecurrentLayer: ``s_t = tanh(Wx.x_t + Ws.s_{t-1} + b)`` with arrays "InputWeights",
  "StateWeights", "Biases".
* GatedRecurrentLayer (Chung et al. 2014, as Wolfram): input (update) gate
  ``i = sigma(Wix.x + Wis.s + bi)``, reset gate ``r = sigma(Wrx.x + Wrs.s + br)``, memory gate
  ``m = tanh(Wmx.x + r * (Wms.s) + bm)``, ``s_t = (1 - i) * m + i * s_{t-1}``. The reset gate
  multiplies ``Wms.s`` *after* the product: this is Keras's ``GRU(reset_after=True)`` with a
  zero recurrent bias of the candidate (Keras's ``reset_after=False`` computes
  ``Wms.(r * s)`` instead, a different function). Arrays "InputGateInputWeights",
  "InputGateStateWeights", "InputGateBiases", and the same for "ResetGate" and "MemoryGate".
* LongShortTermMemoryLayer: input, output and forget gates ``g = sigma(Wgx.x + Wgs.s + bg)``,
  memory gate ``m = tanh(Wmx.x + Wms.s + bm)``, cell ``c_t = f * c_{t-1} + i * m``, state
  ``s_t = o * tanh(c_t)``. Arrays "InputGate...", "OutputGate...", "ForgetGate...",
  "MemoryGate..." (each "InputWeights", "StateWeights", "Biases"). Biases start at zero
  (Keras's ``unit_forget_bias`` would start the forget bias at 1).

The recurrence is one ``lax.scan`` over time. Steps past an example's true length (padding)
leave the state unchanged, so "FinalState" is the state at the true last step and padding
never changes a result. Options: ``size`` n, ``initial_state`` / ``return_state`` (the
optional ports above: a layer has only the ports it declares, so that a chain of recurrent
layers has no dangling state ports; Wolfram's hidden state ports, Keras's
``initial_state=`` / ``return_state``; the final states are "Final..." because one name
cannot be both an input and an output port of a net), and ``dropout`` p: in training mode,
Wolfram's "VariationalInput" method - one dropout mask over the input vector per sequence,
the same at every step, as Keras's ``dropout=`` (Wolfram's other dropout methods, on
weights and states, are not provided).
"""
from __future__ import annotations

import abc
from typing import Annotated, Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import pydantic

from ..shapes import Automatic

from .base import ArraySpec, Layer, LayerOptions
from .dropout import dropout
from .lowering import lower_layer, valid_mask
from .options import SizeOrAuto


def scan_steps(step: Any, carry: Any, xs: Any, length: Any) -> tuple[Any, Any]:
    """``lax.scan`` of ``step(carry, x, t) -> (carry, y)`` over the leading axis of ``xs``;
    steps at ``t >= length`` keep the carry and give zeros (``length`` None: every step is
    real). Returns the final carry (the one after the true last step) and the stacked ys."""
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    mask = valid_mask(length, steps)

    def body(carry: Any, inputs: Any) -> tuple[Any, Any]:
        t, x, keep = inputs
        new, y = step(carry, x, t)
        if keep is None:
            return new, y
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, carry)
        y = jax.tree_util.tree_map(lambda a: jnp.where(keep, a, jnp.zeros((), a.dtype)), y)
        return new, y

    return jax.lax.scan(body, carry, (jnp.arange(steps), xs, mask))


def _array_names(gates: tuple[str, ...]) -> dict[str, ArraySpec]:
    parts = (("InputWeights", "weights"), ("StateWeights", "weights"), ("Biases", "zeros"))
    return {f"{gate}{part}": ArraySpec(init) for gate in gates for part, init in parts}


class RecurrentLayer(Layer):
    """The shared contract of the recurrent layers (see the module docstring)."""

    class Options(LayerOptions):
        size: SizeOrAuto = Automatic
        initial_state: bool = False
        return_state: bool = False
        dropout: Annotated[float, pydantic.Field(ge=0.0, lt=1.0)] = 0.0

    positional = ("size",)
    gates: ClassVar[tuple[str, ...]]
    states: ClassVar[tuple[str, ...]] = ("State",)

    @abc.abstractmethod
    def cell(self, gates: jax.Array, state_part: Callable[[jax.Array], jax.Array],
             carry: tuple) -> tuple:
        """One step: the gates' input parts ``gates`` (G x n, biases included) and the
        state product ``state_part(s)`` (G x n) give the new carry (the states)."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("Input", *(self.states if self.options.initial_state else ()))

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("Output", *(f"Final{s}" for s in self.states if self.options.return_state))

    def describe(self) -> str:
        size = self.options.size
        return f"{self.type_name}[{'Automatic' if size is Automatic else size}]"

    def template(self, scope: Any) -> None:
        patterns: dict[str, tuple[str, ...]] = {"Input": ("L", "k"), "Output": ("L", "n")}
        for port in (*self.input_names[1:], *self.output_names[1:]):
            patterns[port] = ("n",)
        for gate in self.gates:
            patterns.update({f"{gate}InputWeights": ("n", "k"), f"{gate}StateWeights": ("n", "n"),
                             f"{gate}Biases": ("n",)})
        cells = scope.shapes(**patterns)
        if self.options.size is not Automatic:
            scope.fix(cells["n"], self.options.size, "Output")
        scope.real(*self.input_names, *self.output_names)


class BasicRecurrentLayer(RecurrentLayer):
    """``s_t = tanh(Wx.x_t + Ws.s_{t-1} + b)``; see the module docstring."""

    gates = ("",)
    arrays_declared = _array_names(gates)

    def cell(self, gates: jax.Array, state_part: Callable, carry: tuple) -> tuple:
        return (jnp.tanh(gates[0] + state_part(carry[0])[0]),)


class GatedRecurrentLayer(RecurrentLayer):
    """Wolfram's gated recurrent unit (Keras ``GRU(reset_after=True)``); see the module
    docstring."""

    gates = ("InputGate", "ResetGate", "MemoryGate")
    arrays_declared = _array_names(gates)

    def cell(self, gates: jax.Array, state_part: Callable, carry: tuple) -> tuple:
        s = carry[0]
        ws = state_part(s)
        i, r = jax.nn.sigmoid(gates[0] + ws[0]), jax.nn.sigmoid(gates[1] + ws[1])
        m = jnp.tanh(gates[2] + r * ws[2])
        return ((1 - i) * m + i * s,)


class LongShortTermMemoryLayer(RecurrentLayer):
    """Long short-term memory with input, output, forget and memory gates and a cell state;
    see the module docstring."""

    gates = ("InputGate", "OutputGate", "ForgetGate", "MemoryGate")
    states = ("State", "CellState")
    arrays_declared = _array_names(gates)

    def cell(self, gates: jax.Array, state_part: Callable, carry: tuple) -> tuple:
        s, c = carry
        total = gates + state_part(s)
        i, o, f = (jax.nn.sigmoid(total[j]) for j in range(3))
        c = f * c + i * jnp.tanh(total[3])
        return (o * jnp.tanh(c), c)


@lower_layer.register(RecurrentLayer)
def _lower_recurrent(layer: RecurrentLayer, ctx: Any, inputs: dict) -> dict:
    x = inputs["Input"]
    p = ctx.params
    n = ctx.shape("Output")[1]
    rate = layer.options.dropout
    if ctx.train and rate > 0.0:
        x = x * dropout(jnp.ones(x.shape[1:], x.dtype), rate, ctx.key())[None]
    w_in = jnp.stack([p[f"{g}InputWeights"] for g in layer.gates])      # G x n x k
    w_state = jnp.stack([p[f"{g}StateWeights"] for g in layer.gates])   # G x n x n
    biases = jnp.stack([p[f"{g}Biases"] for g in layer.gates])          # G x n
    gates_in = jnp.einsum("gnk,tk->tgn", w_in, x) + biases[None]        # L x G x n

    def state_part(s: jax.Array) -> jax.Array:
        return jnp.einsum("gnm,m->gn", w_state, s)

    carry = tuple(inputs.get(s, jnp.zeros((n,), x.dtype)) for s in layer.states)

    def step(carry: tuple, g: jax.Array, t: jax.Array) -> tuple:
        new = layer.cell(g, state_part, carry)
        return new, new[0]

    final, ys = scan_steps(step, carry, gates_in, ctx.length("Input", 0))
    outputs = {"Output": ys}
    if layer.options.return_state:
        outputs.update({f"Final{s}": v for s, v in zip(layer.states, final)})
    return outputs


__all__ = ["BasicRecurrentLayer", "GatedRecurrentLayer", "LongShortTermMemoryLayer"]
