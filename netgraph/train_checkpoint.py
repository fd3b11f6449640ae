"""NetTrain checkpoints: the net and the whole training state, in safe files (no pickle).

A checkpoint directory holds

* ``net.npz``: the net with the weights of the last finished epoch, written by
  :func:`netgraph.serialize.save` (``ng.load("dir/net.npz")`` reads it);
* ``training.npz``: everything needed to continue: the params of the training net (trainable
  and frozen, by path), the optimiser state (its leaves in pytree order), the best params so
  far, and a JSON record (epoch, step, history, early-stopping counters, a fingerprint of the
  run: seed, batch size, example count, params shapes). It is read with
  ``allow_pickle=False``; every array is checked against a freshly built training state, so
  a file of another run or a damaged file is a :class:`~netgraph.errors.SerializationError`.

Both files are written to a temporary name and renamed, so an interrupted save never leaves
half a checkpoint. Randomness is a function of (seed, epoch, step), so a resumed run takes
exactly the steps an uninterrupted run takes: same final weights, bit for bit.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import numpy as np

from .errors import SerializationError, SpecificationError
from .serialize import save
from .train_optim import leaf_paths, map_leaves, tree_get

FORMAT = "netgraph-training"
VERSION = 1
NET_FILE = "net.npz"
STATE_FILE = "training.npz"


@dataclass
class TrainingState:
    """What a checkpoint restores."""

    trainable: Any
    frozen: Any
    opt_state: Any
    best: Any                 # params tree of the best epoch so far, or None
    record: dict[str, Any]    # epoch, step, history, best_epoch, best_value, waited, fingerprint


def _flat(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}:{'/'.join(p)}": np.asarray(tree_get(tree, p)) for p in leaf_paths(tree)}


def _atomic(path: str, write: Any) -> None:
    temporary = path + ".partial"
    with open(temporary, "wb") as handle:
        write(handle)
    os.replace(temporary, path)


def save_checkpoint(directory: str, net: Any, state: TrainingState) -> None:
    """Write ``net`` and ``state`` into ``directory`` (created if needed)."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise SpecificationError(f"checkpoint={directory!r}: cannot create the directory ({err}).") from err
    arrays = {**_flat("trainable", state.trainable), **_flat("frozen", state.frozen)}
    if state.best is not None:
        arrays.update(_flat("best", state.best))
    leaves = jax.tree_util.tree_leaves(state.opt_state)
    arrays.update({f"opt:{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    header = {"format": FORMAT, "version": VERSION, **state.record}
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    _atomic(os.path.join(directory, STATE_FILE),
            lambda handle: np.savez(handle, __netgraph_training__=blob, **arrays))
    net_path = os.path.join(directory, NET_FILE)
    save(net, net_path + ".partial")
    os.replace(net_path + ".partial", net_path)


def _fill(prefix: str, like: Any, arrays: Mapping[str, np.ndarray], where: str) -> Any:
    def one(path: tuple, leaf: Any) -> Any:
        key = f"{prefix}:{'/'.join(path)}"
        if key not in arrays:
            raise SerializationError(f"{where}: the checkpoint has no array {key!r}; it was written by another run.")
        value = arrays[key]
        if value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise SerializationError(
                f"{where}: array {key!r} has shape {value.shape} ({value.dtype}); this run needs "
                f"{np.shape(leaf)} ({np.asarray(leaf).dtype}).")
        return value

    return map_leaves(one, like)


def load_checkpoint(directory: str, like: TrainingState, full: Any,
                    fingerprint: Mapping[str, Any]) -> TrainingState:
    """Read the state saved in ``directory``; ``like`` is a fresh state of this run (its tree
    structures, shapes and dtypes), ``full`` its whole params tree (the shape of the best
    params), ``fingerprint`` what must match the saved run."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(path):
        raise SerializationError(f"resume={directory!r}: no checkpoint there (no {STATE_FILE}).",
                                 hint="pass the directory given as checkpoint= to the earlier run.")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            if "__netgraph_training__" not in data.files:
                raise SerializationError(f"{path} is not a NetTrain checkpoint.")
            record = json.loads(data["__netgraph_training__"].tobytes().decode())
            arrays = {k: data[k] for k in data.files if k != "__netgraph_training__"}
    except SerializationError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, KeyError,
            AttributeError, TypeError) as err:
        raise SerializationError(f"{path} is truncated, damaged or not a NetTrain checkpoint "
                                 f"({type(err).__name__}).") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("version") != VERSION:
        raise SerializationError(f"{path}: not a {FORMAT} version {VERSION} file.")
    saved = record.get("fingerprint", {})
    different = {k: (saved.get(k), v) for k, v in fingerprint.items() if saved.get(k) != v}
    if different:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in different.items())
        raise SpecificationError(f"resume={directory!r}: the checkpoint belongs to another run ({shown}).",
                                 hint="resume with the same net, data size, batch_size and seed.")
    leaves, treedef = jax.tree_util.tree_flatten(like.opt_state)
    opt_leaves = []
    for i, leaf in enumerate(leaves):
        value = arrays.get(f"opt:{i}")
        if value is None or value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise SerializationError(f"resume={directory!r}: the optimizer state does not match this "
                                     "run's optimizer.", hint="resume with the same optimizer settings.")
        opt_leaves.append(value)
    if f"opt:{len(leaves)}" in arrays:
        raise SerializationError(f"resume={directory!r}: the optimizer state does not match this run's optimizer.")
    best = _fill("best", full, arrays, f"resume={directory!r}") if record.get("has_best") else None
    return TrainingState(
        _fill("trainable", like.trainable, arrays, f"resume={directory!r}"),
        _fill("frozen", like.frozen, arrays, f"resume={directory!r}"),
        jax.tree_util.tree_unflatten(treedef, opt_leaves), best, record)


__all__ = ["NET_FILE", "STATE_FILE", "TrainingState", "load_checkpoint", "save_checkpoint"]
