"""NetTrain: train a net on data with an optax optimiser (Wolfram's NetTrain, Keras's fit).

::

    result = ng.NetTrain(net, {"Input": xs, "Target": ys}, validation_set=(vx, vy),
                         optimizer="Adam", learning_rate=1e-3, batch_size=32, max_epochs=10)
    result.net            # the trained net (best on validation when a validation set is given)
    result["TrainedNet"]  # the same, Wolfram style
    result.history        # {"loss": [...], "validation_loss": [...], "accuracy": [...], ...}
    result.plot("loss.png")

How it works, one module per concern:

* :mod:`netgraph.train_loss`: the *training net* - a NetGraph holding the user's net as node
  "net" and the loss layers (``loss="Automatic"`` picks cross-entropy for a softmax over
  classes, else mean squared error) with a "Target" input;
* :mod:`netgraph.train_data`: data checked before anything is compiled, then shuffled and
  cut into batches, ragged examples bucketed and padded as threaded evaluation does;
* :mod:`netgraph.train_optim`: the optax chain (clipping, weight decay, the optimiser,
  learning-rate multipliers, constraints) and the regularizers, keyed by NetExtract paths;
* :mod:`netgraph.train_checkpoint`: checkpoints and bit-identical resumption;
* :class:`Placement`: the devices - with several (``target_device=("CPU", 4)``), data
  parallel with ``jax.sharding``: a Mesh over the devices with axis "batch", the rows of
  every batch sharded across it, params and optimiser state replicated (the engine of
  threaded evaluation); rows are padded to a multiple of the device count with weight-0
  rows, so the result equals one-device training up to float rounding.

One jitted step per padded batch shape: ``vmap`` of the lowered training net over the rows
(named batch axis, so batch-statistics layers see the real rows only), a weighted mean of
the per-example losses (padding rows weigh 0), the regularization (weights, and the activity
of tapped layer outputs: ``LowerContext.taps``), ``jax.value_and_grad``
over the trainable arrays only, the optax update, and the new layer state (moving
statistics) written back. Frozen arrays (multiplier 0) and non-trainable arrays never
receive a gradient and pass through the step untouched. Randomness (dropout) is
``fold_in(key(seed), step)`` split over the rows: a run is a function of its seed.

Shape legend: R rows of a padded batch, ``...`` a port's dims (padded along varying axes).
"""
from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .batching import resolve_devices
from .compiler import (cast_floats, missing_arrays, params_of, precision_dtype, precision_scope, run,
                       state_tree, trainable_mask, with_params)
from .distributed import put
from .errors import NetGraphError, SpecificationError
from .evaluate import fit_to_data, needs_data_shapes
from .initialize import NetInitialize
from .layers.tree import iter_layers
from .layers.base import Layer
from .layers.lowering import BATCH_AXIS, masked_along, valid_mask
from .shapes import Automatic, Varying
from .train_checkpoint import TrainingState, load_checkpoint, save_checkpoint
from .ports import training_encoders
from .train_data import Batch, Checker, Dataset, StreamData, as_source, dataset, first_example
from .train_loss import NET, TrainingNet, build_training_net, example_metrics
from .train_optim import Penalty, activity_regularizers as activity_table
from .train_optim import (build_optimizer, constraint_transform, constraints, leaf_paths, map_leaves, tree_get,
                          multipliers, penalty, regularizers)

_MAXIMISED = ("accuracy",)
STOP = "StopTraining"
ACTIVITY = "activity_regularization"  # the per-row activity penalty among the step's losses


# ------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What :func:`NetTrain` returns.

    Attributes:
        net: the trained net - the best epoch on the monitored value when a validation set
            is given (and ``select_best``), else the net after the last epoch.
        final_net: the net after the last epoch.
        history: per-epoch lists: "epoch", "loss" (the data loss, weighted over the losses),
            "validation_loss", metrics ("accuracy", "error_rate", "mean_absolute_error",
            "validation_..."; prefixed by the output's name when several losses are
            attached), "regularization" (when regularizers or activity regularizers are
            given: their sum, as added to the loss), "activity_regularization" (the activity
            part), "learning_rate" (a schedule's value), "compilations" (new compilations
            in that epoch), "seconds".
        batch_losses: the training loss of every batch.
        best_epoch: the epoch (0-based) ``net`` comes from.
        stop_reason: why training ended.
        compilations: compilations of the training and validation steps over the whole run.
        summary: the one-line summary (printed at the end with ``progress=True``).
    """

    net: Layer
    final_net: Layer
    history: dict[str, list]
    batch_losses: list[float]
    best_epoch: int | None
    stop_reason: str
    compilations: dict[str, int]
    seconds: float
    examples: int
    summary: str = ""

    _PROPERTIES = ("TrainedNet", "FinalNet", "RoundLossList", "ValidationLossList",
                   "BatchLossList", "TotalTrainingTime", "BestValidationRound", "History",
                   "Compilations", "Properties")

    def __getitem__(self, name: str) -> Any:
        """Wolfram's properties: "TrainedNet", "FinalNet", "RoundLossList",
        "ValidationLossList", "BatchLossList", "TotalTrainingTime", "BestValidationRound",
        "History", "Compilations", "Properties"."""
        table = {
            "TrainedNet": lambda: self.net, "FinalNet": lambda: self.final_net,
            "RoundLossList": lambda: list(self.history["loss"]),
            "ValidationLossList": lambda: list(self.history.get("validation_loss", [])),
            "BatchLossList": lambda: list(self.batch_losses),
            "TotalTrainingTime": lambda: self.seconds,
            "BestValidationRound": lambda: self.best_epoch,
            "History": lambda: self.history, "Compilations": lambda: dict(self.compilations),
            "Properties": lambda: list(self._PROPERTIES),
        }
        if name not in table:
            raise SpecificationError(f"NetTrain result has no property {name!r}.",
                                     hint=f"its properties are {list(self._PROPERTIES)}.")
        return table[name]()

    def plot(self, path: Any, *, metrics: bool = True) -> str:
        """Draw the loss curves per epoch (training and validation; a second panel with the
        metrics when ``metrics``) to ``path`` (.png, .svg, .pdf). Needs matplotlib
        (``pip install netgraph-jax[plot]``)."""
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise NetGraphError("result.plot needs matplotlib: pip install 'netgraph-jax[plot]'.") from err
        epochs = [e + 1 for e in self.history["epoch"]]
        extra = [k for k in self.history if any(k.endswith(m) for m in ("accuracy", "error"))
                 and not k.endswith("error_rate")] if metrics else []
        fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(10 if extra else 5.5, 3.8), squeeze=False)
        ax = axes[0][0]
        ax.plot(epochs, self.history["loss"], marker="o", label="training loss")
        if self.history.get("validation_loss"):
            ax.plot(epochs, self.history["validation_loss"], marker="o", label="validation loss")
        if self.best_epoch is not None and self.history.get("validation_loss"):
            ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if min(self.history["loss"] + self.history.get("validation_loss", [])) > 0:
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
        if extra:
            ax = axes[0][1]
            for key in extra:
                ax.plot(epochs, self.history[key], marker="o", label=key.replace("_", " "))
            ax.set_xlabel("epoch")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return str(path)

    def __repr__(self) -> str:
        return f"TrainResult({self.summary or self.stop_reason})"


@dataclass
class TrainingEvent:
    """What ``callback`` gets after every batch (``kind="batch"``) and every epoch
    (``kind="epoch"``). Return ``"StopTraining"`` to stop. ``net`` builds the current net
    (costly per batch: read it only when needed)."""

    kind: str
    epoch: int
    batch: int
    step: int
    loss: float
    metrics: dict[str, float]
    history: dict[str, list]
    _net: Callable[[], Layer] = field(repr=False, default=lambda: None)  # type: ignore[assignment]

    @property
    def net(self) -> Layer:
        return self._net()


# --------------------------------------------------------------------- arguments
def _int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecificationError(f"{name} must be an int >= {low}{' or None' if allow_none else ''}; found {value!r}.")


def _metric_keys(training: TrainingNet) -> list[str]:
    single = len(training.terms) == 1
    return [(m if single else f"{t.output or t.port}_{m}") for t in training.terms for m in t.metric_names()]


# --------------------------------------------------------------------- the step
class Steps:
    """The jitted training and evaluation steps of one run (compiled once per padded batch
    shape; ``compilations`` counts the traces)."""

    def __init__(self, training: TrainingNet, tx: optax.GradientTransformation,
                 penalties: Mapping, frozen_paths: set, metrics: bool,
                 activity: Mapping[tuple, Penalty] | None = None,
                 placement: "Placement | None" = None, precision: str = "Real32") -> None:
        self.training, self.tx, self.penalties = training, tx, penalties
        # the working precision computes; the trained arrays stay float32 (float64 for Real64)
        self.compute = precision_dtype(precision)
        self.master = np.dtype(np.float64 if precision == "Real64" else np.float32)
        self.activity = dict(activity or {})
        self.frozen_paths = frozen_paths
        self.metrics = metrics
        self.metric_keys = _metric_keys(training) if metrics else []
        # each step returns its scalars packed in one vector (one device buffer per step)
        self.train_names = ["loss", "regularization", *self.metric_keys]
        if self.activity:
            self.train_names.append(ACTIVITY)
        self.eval_names = ["loss", *self.metric_keys]
        self.compilations = {"train": 0, "validation": 0}
        # several devices: every result (params, optimiser state, scalars) replicated
        out = {} if placement is None or placement.single else {"out_shardings": placement.replicated}
        self.train = jax.jit(self._train_step, **out)
        self.evaluate = jax.jit(self._eval_step, **out)

    # the ONE place where the lowered training net is applied (training and evaluation)
    def forward(self, params: Any, batch: Mapping[str, Any], rngs: Any, train: bool) -> tuple[dict, dict, Any]:
        """Per-row losses and metrics of a batch, and (training) the new layer state; with
        activity regularizers (training), the per-row activity penalty is the loss
        ``ACTIVITY``."""
        graph = self.training.graph
        tapped = train and bool(self.activity)
        params = cast_floats(params, self.compute)

        def one(inputs: Any, lengths: Any, rng: Any, real: Any) -> tuple[dict, dict, Any]:
            collected: dict | None = {} if train else None
            taps: dict | None = dict.fromkeys(self.activity) if tapped else None
            outputs, lens = run(graph, params, inputs, lengths, rng if train else None, train,
                                batch_axis=BATCH_AXIS, row_valid=real, state=collected, taps=taps)
            losses = {t.port: outputs[t.port] for t in self.training.terms}
            if taps is not None:
                losses[ACTIVITY] = self._activity(taps, lens)
            found = {}
            if self.metrics:
                single = len(self.training.terms) == 1
                for t in self.training.terms:
                    if t.prediction is None or t.target is None:
                        continue
                    for name, value in example_metrics(t, graph, outputs[t.prediction], inputs[t.target],
                                                       lengths).items():
                        found[name if single else f"{t.output}_{name}"] = value
            return losses, found, state_tree(collected or {})

        return jax.vmap(one, axis_name=BATCH_AXIS)(batch["inputs"], batch["lengths"], rngs,
                                                  batch["weights"] > 0)

    def _activity(self, taps: Mapping[tuple, Any], lens: Mapping[str, Any]) -> jax.Array:
        """One example's activity penalty: each regularized layer's penalty over its output
        ports, counting true positions only (padding along a varying axis is zeroed)."""
        inference = self.training.graph.inference
        total = jnp.zeros((), jnp.float32)
        for path, fn in self.activity.items():
            outputs = taps[path]
            if outputs is None:  # every node of a graph is lowered; this would be a bug
                raise NetGraphError(f"activity_regularizers: the output of {'/'.join(path[1:])} was not captured.")
            for port, x in outputs.items():
                x = jnp.asarray(x).astype(jnp.float32)
                for axis, dim in enumerate(inference.port(path, port).dims or ()):
                    if isinstance(dim, Varying):
                        x = masked_along(x, axis, valid_mask(lens.get(dim.symbol), x.shape[axis]), 0.0)
                total = total + fn(x)
        return total

    def _weighted(self, losses: dict, found: dict, weights: jax.Array) -> tuple[jax.Array, dict]:
        weights = weights.astype(self.master)  # averages in float32 (float64 for Real64)
        total_weight = jnp.sum(weights)

        def mean(v: jax.Array) -> jax.Array:
            return jnp.sum(weights * v.astype(self.master)) / total_weight

        per_row = sum(t.weight * losses[t.port] for t in self.training.terms)
        if ACTIVITY in losses:
            found = {**found, ACTIVITY: losses[ACTIVITY]}
        return mean(per_row), {k: mean(v) for k, v in found.items()}

    def _train_step(self, trainable: Any, frozen: Any, opt_state: Any, batch: Any, key: Any,
                    step: Any) -> tuple:
        self.compilations["train"] += 1  # runs once per trace, i.e. per compilation
        rows = batch["weights"].shape[0]
        rngs = jax.random.split(jax.random.fold_in(key, step), rows)

        def objective(trainable: Any) -> tuple[jax.Array, tuple]:
            params = merge(trainable, frozen)
            losses, found, state = self.forward(params, batch, rngs, True)
            loss, means = self._weighted(losses, found, batch["weights"])
            reg = penalty(params, self.penalties).astype(self.master)
            if ACTIVITY in means:  # Keras: sum over the batch of the penalties / batch size
                reg = reg + means[ACTIVITY]
            return loss + reg, (loss, reg, means, state)

        (_, (loss, reg, means, state)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
        with optax_numerics():
            updates, opt_state = self.tx.update(grads, opt_state, trainable)
            trainable = optax.apply_updates(trainable, updates)
        frozen = write_state(frozen, state)
        extra = [means[ACTIVITY]] if ACTIVITY in means else []
        packed = [loss, reg, *(means[k] for k in self.metric_keys), *extra]
        return trainable, frozen, opt_state, jnp.stack([v.astype(self.master) for v in packed])

    def _eval_step(self, params: Any, batch: Any) -> dict:
        self.compilations["validation"] += 1
        rows = batch["weights"].shape[0]
        losses, found, _ = self.forward(params, batch, jnp.zeros((rows,), jnp.uint32), False)
        loss, means = self._weighted(losses, found, batch["weights"])
        return jnp.stack([loss, *(means[k] for k in self.metric_keys)])


@contextlib.contextmanager
def optax_numerics():
    """optax's own arithmetic under JAX's default promotion rules: it mixes Python floats
    with int32 step counts, which strict dtype promotion (netgraph's tests) refuses."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def merge(trainable: Any, frozen: Any) -> Any:
    """One params tree from the two partitions (each None where the other has the leaf)."""
    if isinstance(trainable, Mapping):
        return {k: merge(trainable[k], frozen[k]) for k in trainable}
    return frozen if trainable is None else trainable


def write_state(frozen: Any, state: Any) -> Any:
    """``frozen`` with the new layer state (the value of row 0: batch statistics are the
    same in every row) written over the non-trainable arrays."""
    if not state:
        return frozen
    out = dict(frozen)
    for key, value in state.items():
        out[key] = (write_state(frozen[key], value) if isinstance(value, Mapping)
                    else value[0].astype(frozen[key].dtype))  # computed in the working precision
    return out


def _partition(full: Any, frozen_paths: set) -> tuple[Any, Any]:
    trainable = map_leaves(lambda p, v: None if p in frozen_paths else v, full)
    frozen = map_leaves(lambda p, v: v if p in frozen_paths else None, full)
    return trainable, frozen


class Placement:
    """Where a run's arrays live (``target_device``): one device, or a Mesh over several
    with the axis "batch" - params, optimiser state and the step's results replicated, the
    rows of every batch sharded (padded to a multiple of the device count with weight-0
    rows that repeat row 0, as a partial batch is)."""

    def __init__(self, devices: list[Any]) -> None:
        self.devices = list(devices)
        self.single = len(self.devices) == 1
        if self.single:
            self.replicated = self.rows = jax.sharding.SingleDeviceSharding(self.devices[0])
        else:
            mesh = jax.sharding.Mesh(np.array(self.devices), ("batch",))
            self.replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
            self.rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))

    def params(self, tree: Any) -> Any:
        return put(tree, self.replicated)

    def batch(self, batch: Batch) -> dict:
        tree = {"inputs": batch.inputs, "lengths": batch.lengths, "weights": batch.weights}
        if self.single:  # host arrays: jit moves them next to the (committed) params
            return tree
        extra = -len(batch.weights) % len(self.devices)
        if extra:
            def pad(v: np.ndarray) -> np.ndarray:
                return np.concatenate([v, np.repeat(v[:1], extra, axis=0)])

            tree = {"inputs": {k: pad(v) for k, v in batch.inputs.items()},
                    "lengths": {k: pad(v) for k, v in batch.lengths.items()},
                    "weights": np.concatenate([batch.weights, np.zeros(extra, batch.weights.dtype)])}
        return put(tree, self.rows)  # several processes: each fills its own devices' rows


def _mean_records(records: list[tuple[Any, int]], names: list[str]) -> dict[str, float]:
    """Example-weighted means over an epoch of the packed per-batch scalars."""
    if not records:
        return {}
    counts = np.array([c for _, c in records], np.float64)
    host = np.stack([np.asarray(v, np.float64) for v in jax.device_get([r for r, _ in records])])
    return dict(zip(names, (counts @ host / counts.sum()).tolist()))


# ------------------------------------------------------------------------ NetTrain
_OPTIONS = (
    "loss", "validation_set", "optimizer", "learning_rate", "batch_size", "max_epochs", "seed",
    "learning_rate_multipliers", "loss_weights", "gradient_clipping", "weight_decay",
    "regularizers", "constraints", "patience", "monitor", "select_best", "metrics", "shuffle",
    "steps_per_epoch", "callback", "progress", "checkpoint", "resume", "activity_regularizers",
    "target_device", "precision",
)


def _net_train(net: Layer, data: Any, loss: Any = "Automatic", *, validation_set: Any = None,
             optimizer: Any = "Adam", learning_rate: Any = Automatic, batch_size: int = 32,
             max_epochs: int = 10, seed: int = 0, learning_rate_multipliers: Mapping | None = None,
             loss_weights: Mapping | None = None, gradient_clipping: Any = None,
             weight_decay: float | None = None, regularizers: Mapping | None = None,
             constraints: Mapping | None = None, patience: int | None = None, monitor: Any = Automatic,
             select_best: bool = True, metrics: bool = True, shuffle: bool = True,
             steps_per_epoch: int | None = None, callback: Callable | None = None,
             progress: bool = False, checkpoint: str | None = None, resume: str | None = None,
             activity_regularizers: Mapping | None = None, target_device: Any = None,
             precision: str = "Real32", **unknown: Any) -> TrainResult:
    """Train ``net`` on ``data``; returns a :class:`TrainResult` (``.net``, ``.history``).

    Args:
        net: any layer or net (initialised with ``seed`` if it is not; input shapes left
            Automatic are fitted to the data).
        data: ``{port: arrays or lists of examples}`` with the net's inputs and the targets
            ("Target"), a pair ``(x, y)``, or an iterable / function of batches
            (see :mod:`netgraph.train_data`).
        loss: "Automatic", a loss layer, ``{output: loss layer}``, or the names of the net's
            scalar loss outputs (see :mod:`netgraph.train_loss`).
        validation_set: data in the same forms, evaluated (no dropout) after every epoch.
        optimizer: "Adam", "SGD", "RMSProp", "AdamW", ``(name, {optax option: value})`` or
            an ``optax.GradientTransformation``.
        learning_rate: a number (default 1e-3) or an optax schedule; not with a transform.
        batch_size: examples per step. max_epochs: passes over the data. seed: initialisation,
            shuffling and dropout.
        learning_rate_multipliers: ``{NetExtract path: m}``; 0 freezes (see
            :mod:`netgraph.train_optim`, like ``regularizers`` and ``constraints``).
        loss_weights: ``{loss port or output: weight}``.
        gradient_clipping: c (largest global gradient norm), ("GlobalNorm", c), ("Value", c).
        weight_decay: decoupled for "AdamW", added to the gradient (L2) otherwise.
        patience: stop after this many epochs without improvement of ``monitor`` (default
            "validation_loss" with a validation set, else "loss"; "...accuracy" is maximised).
        select_best: with a validation set, ``result.net`` is the best epoch's net.
        metrics: compute accuracy / error rate / mean absolute error.
        shuffle: reshuffle in-memory data every epoch.
        steps_per_epoch: batches per epoch from an iterable of batches.
        callback: ``callback(event)`` after every batch and epoch (a :class:`TrainingEvent`);
            returning "StopTraining" stops.
        progress: a tqdm bar (epochs, batches, loss, examples/s) and a summary line.
        checkpoint: a directory; the net and the training state are saved after every epoch.
        resume: a checkpoint directory to continue from (same net, data size, batch size,
            seed): the final weights equal an uninterrupted run's.
        activity_regularizers: ``{layer path: regularizer}`` (Keras's activity_regularizer):
            the penalty of the layer's outputs per example, averaged over the batch, added to
            the loss (see :mod:`netgraph.train_optim`).
        target_device: "CPU", "GPU", (kind, n | "All") or a list of JAX devices; with
            several, data-parallel training (see :class:`Placement`).
        precision: the working precision, "Real32" (default), "Real16", "BFloat16" or
            "Real64": data, the forward and backward pass in that type; the optimiser
            keeps the arrays in float32 (float64 for "Real64": JAX's 64-bit types are on
            for the run), as Keras's mixed-precision policies do. Losses and metrics are
            averaged in float32. No loss scaling: float16 gradients below ~6e-8 flush to
            zero (BFloat16 has float32's range).
    """
    if unknown:
        raise SpecificationError(
            f"NetTrain got unknown option(s) {sorted(unknown)}. Received: "
            + ", ".join(f"{k}={v!r}" for k, v in unknown.items()),
            hint=f"its options are {list(_OPTIONS)}.")
    if not isinstance(net, Layer):
        raise SpecificationError(f"NetTrain needs a net (a Layer); found {type(net).__name__}.")
    _int("batch_size", batch_size, 1)
    _int("max_epochs", max_epochs, 0)
    _int("seed", seed, 0)
    _int("patience", patience, 1, allow_none=True)
    _int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
    if callback is not None and not callable(callback):
        raise SpecificationError(f"callback must be a function of one TrainingEvent; found {callback!r}.")
    for name, flag in (("progress", progress), ("select_best", select_best), ("metrics", metrics),
                       ("shuffle", shuffle)):
        if not isinstance(flag, bool):
            raise SpecificationError(f"{name} must be True or False; found {flag!r}.")
    placement = Placement(resolve_devices(target_device))

    # 1. the net: input shapes fitted to the data, initialised; the training net around it
    stream = None
    if not isinstance(data, (Mapping, tuple)) and (callable(data) or hasattr(data, "__iter__")):
        stream = StreamData(data, Checker({}, (), lambda p: None, "training data"), batch_size, set(),
                            steps_per_epoch, max_epochs)
    if needs_data_shapes(net):
        net = fit_to_data(net, *_fitting_example(net, data, stream))
    if missing_arrays(net):
        net = NetInitialize(net, seed=seed)
    training = build_training_net(net, loss, loss_weights)
    graph = training.graph
    types = {n: graph.inference.port((), n) for n in graph.input_names}
    encoders = training_encoders(net, training.terms, types)
    checker = Checker(types, training.target_ports, training.describe_target, "training data", encoders)
    checker.real = precision_dtype(precision)

    # 2. data, checked before anything is compiled
    seen: set = set()
    if stream is not None:
        stream.checker = checker
        stream.seen = seen
        train_set: Dataset = stream
    else:
        train_set = dataset(as_source(data, checker), checker, batch_size=batch_size, seen=seen,
                            steps_per_epoch=steps_per_epoch, max_epochs=max_epochs)
    validation = None
    if validation_set is not None:
        vchecker = Checker(types, training.target_ports, training.describe_target, "validation_set",
                           encoders)
        vchecker.real = checker.real
        vsource = as_source(validation_set, vchecker)
        if not isinstance(vsource, Mapping) and not callable(vsource) and iter(vsource) is vsource:
            raise SpecificationError("validation_set: a one-shot iterator cannot be read every epoch.",
                                     hint="give a dict of arrays, a list of batches, or a function returning batches.")
        validation = dataset(vsource, vchecker, batch_size=batch_size, seen=set())

    # 3. params, optimiser and parameter rules
    full = cast_floats(params_of(graph), np.float64 if precision == "Real64" else np.float32)
    rates = multipliers(net, learning_rate_multipliers, (NET,))
    mask = trainable_mask(graph)
    fixed = {p for p in leaf_paths(full) if not _mask_at(mask, p)}
    frozen_paths = fixed | {p for p, m in rates.items() if m == 0.0}
    trainable, frozen = _partition(full, frozen_paths)
    penalties = regularizers_for(net, regularizers)
    if net.activity_regularizer is not None:
        raise SpecificationError(
            "NetTrain: the trained net itself carries an activity regularizer; its outputs feed "
            "the loss directly.", hint="put it on a layer inside the net, or pass activity_regularizers=.")
    stored_activity = {path: layer.activity_regularizer for path, layer in iter_layers(net)
                       if layer.activity_regularizer is not None}
    activity = {**activity_table(net, stored_activity, (NET,)),
                **activity_table(net, activity_regularizers, (NET,))}
    projection = constraint_transform({p: fn for p, fn in constraints_for(net, constraints, full).items()
                                       if p not in frozen_paths})
    scales = {f"x{m!r}": m for p, m in rates.items() if m != 0.0}
    labels = map_leaves(lambda p, v: f"x{rates.get(p, 1.0)!r}", trainable)
    if scales:
        scales.setdefault("x1.0", 1.0)
    tx = build_optimizer(optimizer, 1e-3 if learning_rate is Automatic else learning_rate,
                         learning_rate_given=learning_rate is not Automatic,
                         gradient_clipping=gradient_clipping, weight_decay=weight_decay,
                         labels=labels, scales=scales, constraint=projection)
    with optax_numerics():
        opt_state = tx.init(trainable)
    steps = Steps(training, tx, penalties, frozen_paths, metrics, activity, placement, precision)

    keys = ["loss"] + _metric_keys(training) if metrics else ["loss"]
    monitor = _monitor(monitor, keys, validation is not None)
    maximise = any(monitor.endswith(m) for m in _MAXIMISED)
    history: dict[str, list] = {"epoch": []}
    best_epoch, best_value, best_params, waited = None, None, None, 0
    epoch, step = 0, 0
    fingerprint = {"seed": seed, "batch_size": batch_size, "examples": train_set.count,
                   "params": {"/".join(p): list(np.shape(tree_get(full, p))) for p in leaf_paths(full)}}

    # 4. resume
    if resume is not None:
        loaded = load_checkpoint(resume, TrainingState(trainable, frozen, opt_state, None, {}), full, fingerprint)
        trainable, frozen, opt_state = loaded.trainable, loaded.frozen, loaded.opt_state
        record = loaded.record
        epoch, step, history = record["epoch"], record["step"], record["history"]
        best_epoch, best_value, waited = record["best_epoch"], record["best_value"], record["waited"]
        best_params = loaded.best
    trainable, frozen, opt_state = placement.params((trainable, frozen, opt_state))
    key = placement.params(jax.random.key(seed))

    def current_net(tree: Any) -> Layer:
        tree = jax.device_get(tree)
        user = dict(tree.get(NET, {}))
        if "SharedArrays" in tree:
            user["SharedArrays"] = tree["SharedArrays"]
        return with_params(net, user)

    # 5. the epochs
    bar = _Bar(progress, max_epochs, train_set.batches_per_epoch, epoch)
    started = time.perf_counter()
    examples_seen = 0
    batch_losses: list[float] = []
    stop_reason = f"max_epochs={max_epochs} reached"
    stopped = False
    lr_schedule = learning_rate if callable(learning_rate) else None
    while epoch < max_epochs and not stopped:
        epoch_start = time.perf_counter()
        compiled_before = dict(steps.compilations)
        rng = np.random.default_rng([seed, epoch]) if shuffle else None
        records: list[tuple[dict, int]] = []
        for number, batch in enumerate(train_set.batches(epoch, rng)):
            trainable, frozen, opt_state, stats = steps.train(trainable, frozen, opt_state,
                                                              placement.batch(batch), key, np.int32(step))
            records.append((stats, batch.count))
            step += 1
            examples_seen += batch.count
            bar.batch(epoch, records, batch.count)
            if callback is not None:
                host = dict(zip(steps.train_names, np.asarray(jax.device_get(stats), np.float64).tolist()))
                event = TrainingEvent("batch", epoch, number, step, host["loss"],
                                      {k: v for k, v in host.items() if k != "loss"}, history,
                                      lambda: current_net(merge(trainable, frozen)))
                if callback(event) == STOP:
                    stopped, stop_reason = True, "the callback returned StopTraining"
                    break
        if not records:
            stop_reason = "the training data ran out"
            break
        means = _mean_records(records, steps.train_names)
        batch_losses += [float(r[0]) for r in jax.device_get([r for r, _ in records])]
        row = {"epoch": epoch, "loss": means["loss"]}
        row.update({k: means[k] for k in keys if k in means and k != "loss"})
        if penalties or activity:
            row["regularization"] = means["regularization"]
        if activity:
            row[ACTIVITY] = means[ACTIVITY]
        params_now = merge(trainable, frozen)
        if validation is not None:
            vrecords = [(steps.evaluate(params_now, placement.batch(b)), b.count)
                        for b in validation.batches(epoch, None)]
            row.update({f"validation_{k}": v for k, v in _mean_records(vrecords, steps.eval_names).items()})
        if lr_schedule is not None:
            with optax_numerics():
                row["learning_rate"] = float(lr_schedule(step))
        row["compilations"] = sum(steps.compilations.values()) - sum(compiled_before.values())
        row["seconds"] = time.perf_counter() - epoch_start
        for k, v in row.items():
            history.setdefault(k, []).append(v)
        value = row.get(monitor)
        if value is None:
            raise SpecificationError(f"monitor={monitor!r} is not in the history {sorted(row)}.")
        better = best_value is None or (value > best_value if maximise else value < best_value)
        if better and math.isfinite(value):
            best_epoch, best_value, waited = epoch, value, 0
            if validation is not None and select_best:
                best_params = jax.device_get(params_now)
        else:
            waited += 1
        epoch += 1
        if patience is not None and waited >= patience:
            stopped, stop_reason = True, f"no improvement of {monitor} for {patience} epoch(s) (patience)"
        if isinstance(train_set, StreamData) and train_set.exhausted and epoch < max_epochs:
            stopped, stop_reason = True, "the training data ran out"
        if checkpoint is not None and jax.process_index() == 0:  # one writer across processes
            save_checkpoint(checkpoint, current_net(params_now), TrainingState(
                jax.device_get(trainable), jax.device_get(frozen), jax.device_get(opt_state), best_params,
                {"epoch": epoch, "step": step, "history": history, "best_epoch": best_epoch,
                 "best_value": best_value, "waited": waited, "has_best": best_params is not None,
                 "fingerprint": fingerprint}))
        bar.epoch(epoch, row, monitor)
        if callback is not None and not stopped:
            event = TrainingEvent("epoch", epoch - 1, -1, step, row["loss"],
                                  {k: v for k, v in row.items() if k not in ("epoch", "loss")}, history,
                                  lambda: current_net(merge(trainable, frozen)))
            if callback(event) == STOP:
                stopped, stop_reason = True, "the callback returned StopTraining"
    seconds = time.perf_counter() - started
    final = current_net(merge(trainable, frozen))
    chosen = current_net(best_params) if best_params is not None else final
    if best_params is None and validation is None:
        best_epoch = (history["epoch"][-1] if history["epoch"] else None)
    result = TrainResult(chosen, final, history, batch_losses, best_epoch, stop_reason,
                         dict(steps.compilations), seconds, examples_seen)
    result.summary = _summary(result, monitor)
    bar.close(result.summary)
    return result


@functools.wraps(_net_train)
def NetTrain(net: Layer, data: Any, loss: Any = "Automatic", *, precision: str = "Real32",
             **options: Any) -> TrainResult:
    precision_dtype(precision)  # a bad name is an error before anything else
    with precision_scope(precision):  # Real64: JAX's 64-bit types on for this run only
        return _net_train(net, data, loss, precision=precision, **options)


# ------------------------------------------------------------------------ helpers
def _mask_at(mask: Any, path: tuple) -> bool:
    node = mask
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return True
        node = node[part]
    return bool(node)


def _stored(net: Layer, field: str) -> dict:
    """The regularizers or constraints stored on the net's layers (``with_regularizers``,
    ``ng.keras`` builders), as a NetTrain table keyed by array paths."""
    return {path + (name,): spec for path, layer in iter_layers(net, include_root=True)
            for name, spec in getattr(layer, field).items()}


def regularizers_for(net: Layer, table: Mapping | None) -> dict:
    """The stored regularizers, overridden array by array by NetTrain's ``regularizers=``."""
    return {**regularizers(net, _stored(net, "regularizers"), (NET,)), **regularizers(net, table, (NET,))}


def constraints_for(net: Layer, table: Mapping | None, full: Any) -> dict:
    """The stored constraints, overridden array by array by NetTrain's ``constraints=``."""
    return {**constraints(net, _stored(net, "constraints"), (NET,), full),
            **constraints(net, table, (NET,), full)}


def _fitting_example(net: Layer, data: Any, stream: StreamData | None) -> tuple[dict, set]:
    if stream is not None:
        data = stream.peek()
    if isinstance(data, tuple) and len(data) == 2 and len(net.input_names) == 1:
        data = {net.input_names[0]: data[0]}
    if not isinstance(data, Mapping):
        raise SpecificationError(f"NetTrain: cannot read the data's shapes from a {type(data).__name__}.")
    given = {str(k): v for k, v in data.items()}
    missing = [n for n in net.input_names if n not in given]
    if missing:
        from .errors import InputDataError

        raise InputDataError(f"training data: no data for the net's input port(s) {missing}; "
                             f"the net's inputs are {list(net.input_names)}.")
    return first_example(given, net.input_names)


def _monitor(monitor: Any, keys: list[str], validation: bool) -> str:
    if monitor is Automatic:
        return "validation_loss" if validation else "loss"
    allowed = keys + ([f"validation_{k}" for k in keys] if validation else [])
    if monitor not in allowed:
        raise SpecificationError(f"monitor={monitor!r} is not measured here; choose one of {allowed}.")
    return monitor


def _summary(result: TrainResult, monitor: str) -> str:
    h = result.history
    if not h["epoch"]:
        return f"NetTrain: no epoch run ({result.stop_reason})."
    rate = result.examples / result.seconds if result.seconds > 0 else float("nan")
    parts = [f"NetTrain: {len(h['epoch'])} epoch(s), {result.examples} examples in {result.seconds:.1f} s "
             f"({rate:,.0f} examples/s)", f"loss {h['loss'][-1]:.4g}"]
    for key in ("validation_loss", "accuracy", "validation_accuracy", "mean_absolute_error",
                "validation_mean_absolute_error"):
        if key in h:
            value = h[key][-1]
            parts.append(f"{key.replace('_', ' ')} {value:.2%}" if key.endswith("accuracy") else
                         f"{key.replace('_', ' ')} {value:.4g}")
    if result.best_epoch is not None and "validation_loss" in h:
        parts.append(f"best epoch {result.best_epoch + 1} ({monitor})")
    parts.append(f"compilations {sum(result.compilations.values())}; {result.stop_reason}")
    return "; ".join(parts)


class _Bar:
    """The tqdm progress bar (batches of all epochs) and the closing summary line."""

    def __init__(self, enabled: bool, epochs: int, per_epoch: int | None, done: int) -> None:
        self.enabled = enabled
        self.bar = None
        self.started = time.perf_counter()
        self.examples = 0
        self.epochs = epochs
        if enabled:
            from tqdm.auto import tqdm

            total = None if per_epoch is None else epochs * per_epoch
            self.bar = tqdm(total=total, initial=0 if per_epoch is None else done * per_epoch,
                            desc="NetTrain", unit="batch", file=sys.stderr, dynamic_ncols=True)

    def batch(self, epoch: int, records: list, count: int) -> None:
        if self.bar is None:
            return
        self.examples += count
        self.bar.update(1)
        if len(records) >= 2 and (len(records) % 10 == 0 or len(records) == 2):
            loss = float(records[-2][0][0])  # the previous step's loss: done, no wait
            rate = self.examples / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"epoch {epoch + 1}/{self.epochs}, loss {loss:.4g}, {rate:,.0f} examples/s")

    def epoch(self, done: int, row: Mapping[str, Any], monitor: str) -> None:
        if self.bar is None:
            return
        shown = f"epoch {done}/{self.epochs}, loss {row['loss']:.4g}"
        if "validation_loss" in row:
            shown += f", validation loss {row['validation_loss']:.4g}"
        rate = self.examples / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(shown + f", {rate:,.0f} examples/s")

    def close(self, summary: str) -> None:
        if self.bar is None:
            return
        self.bar.close()
        sys.stderr.write(summary + "\n")
        sys.stderr.flush()


__all__ = ["NetTrain", "TrainResult", "TrainingEvent"]
