"""NetTrain benchmark: epoch time against a hand-written jax.jit + optax loop (and Keras
``fit``), and compile counts of ragged training.

Run from the repository root::

    python benchmarks/bench_train.py              # full run (about 3 minutes on 2 CPU cores)
    python benchmarks/bench_train.py --quick      # smoke test (about 40 s)
    python benchmarks/bench_train.py --json out.json
    python benchmarks/bench_train.py --part similarity   # only (c); also "mlp", "ragged"

(a) **Step time.** A 2-layer MLP classifier (64 -> 256 Tanh -> 256 Tanh -> 10 Softmax,
    cross-entropy, Adam 1e-3, batch 128, 8,192 examples: 64 steps per epoch). Three
    implementations train the same initial weights on the same data, in interleaved rounds
    (``timing.timed_rounds``: the order rotating and flipping every round, the garbage
    collector paused; each run's samples are the epoch times it reports):

    * ``NetTrain``: ``ng.NetTrain(net, data, max_epochs=E)``; an epoch's time is
      ``history["seconds"]`` (shuffling, batching, the steps, the epoch's loss and metrics);
      epoch 0 (compilation) is dropped;
    * ``NetTrain, metrics=False``: the same without the accuracy metric;
    * ``hand-written``: the usual loop - a permutation per epoch, ``x[idx]`` per batch, one
      ``jax.jit`` step (``value_and_grad`` of the same loss, ``optax.adam``), the epoch's mean
      loss fetched at its end;
    * ``Keras fit`` (if keras is installed): the same model in Keras 3 on the JAX backend,
      epoch times from a callback.

    Reported: median seconds per epoch (and per step) and the ratio to the hand-written
    loop. Before timing, one step of NetTrain and of the hand-written loop are checked to
    give the same weights (to 1e-5).
(b) **Ragged compilations.** 1,000 token sequences of lengths 1..512 (a convolution + max
    pooling classifier), 2 epochs: compilations of the training step against the number of
    distinct padded batch shapes netgraph's batching plan makes, and new compilations in
    epoch 2 (target 0).
(c) **Seed 002's text-similarity model** (the Keras ``Attention`` CNN + attention example,
    ``text_similarity_net()`` of ``examples/text_similarity.py``, its Keras twin
    ``keras_text_similarity``): token embedding (1,000 x 64) and Conv1D (100 filters,
    width 4, "same") shared by the two texts, dot attention of the query over the value, both
    pooled, catenated, Dense(1, sigmoid); binary cross-entropy, Adam 1e-3, batch 64, 4,096
    pairs of texts of 16 (query) and 12 (value) tokens - rectangular, so that Keras and
    netgraph do exactly the same math. ``NetTrain`` and Keras 3 ``fit`` (JAX backend, with its
    accuracy metric) from the same initial weights, in interleaved rounds; before timing, the
    two models' outputs on the same pairs are checked equal (1e-5). Also reported (no Keras
    counterpart): NetTrain on the same number of *ragged* pairs (lengths 6..16 and 4..12).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "examples")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import netgraph as ng  # noqa: E402
from netgraph.batching import Example, batch_bucket, bucket, plan  # noqa: E402
from text_similarity import VOCAB as SIM_VOCAB  # noqa: E402 - examples/text_similarity.py: seed 002's model
from text_similarity import keras_text_similarity, text_similarity_net  # noqa: E402
from timing import timed_rounds  # noqa: E402

FEATURES, HIDDEN, CLASSES, BATCH, EXAMPLES = 64, 256, 10, 128, 8192
FULL = {"rounds": 5, "epochs": 4, "ragged": 1000}
QUICK = {"rounds": 2, "epochs": 2, "ragged": 200}
TARGETS = {"netgraph_vs_hand_max": 1.05, "netgraph_vs_keras_max": 1.0, "ragged_epoch2_compilations": 0,
           "similarity_netgraph_vs_keras_max": 1.0}
SIM_BATCH, SIM_PAIRS, SIM_QUERY, SIM_VALUE = 64, 4096, 16, 12


# ----------------------------------------------------------------------------- model
def build_net(seed: int = 0) -> Any:
    net = ng.NetChain({"h1": ng.LinearLayer(HIDDEN), "a1": "Tanh", "h2": ng.LinearLayer(HIDDEN), "a2": "Tanh",
                       "o": ng.LinearLayer(CLASSES), "p": ng.SoftmaxLayer()}, Input=FEATURES)
    return ng.NetInitialize(net, seed=seed)


def workload(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((EXAMPLES, FEATURES)).astype(np.float32)
    w = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    return x, np.argmax(x @ w, axis=1).astype(np.int32)


def hand_params(net: Any) -> dict:
    return {k: {"w": jnp.asarray(ng.NetExtract(net, (k, "Weights"))),
                "b": jnp.asarray(ng.NetExtract(net, (k, "Biases")))} for k in ("h1", "h2", "o")}


def hand_loss(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    h = jnp.tanh(x @ p["h1"]["w"].T + p["h1"]["b"])
    h = jnp.tanh(h @ p["h2"]["w"].T + p["h2"]["b"])
    probs = jax.nn.softmax(h @ p["o"]["w"].T + p["o"]["b"], axis=-1)
    picked = jnp.take_along_axis(probs, y[:, None], axis=1)[:, 0]
    return -jnp.mean(jnp.log(jnp.clip(picked, 1e-7, 1 - 1e-7)))


def hand_trainer(net: Any, learning_rate: float = 1e-3):
    tx = optax.adam(learning_rate)

    @jax.jit
    def step(p, state, x, y):
        loss, grads = jax.value_and_grad(hand_loss)(p, x, y)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> tuple[list[float], dict]:
        p = hand_params(net)
        state = tx.init(p)
        times = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            order = np.random.default_rng([seed, epoch]).permutation(len(x))
            losses = []
            for start in range(0, len(x), BATCH):
                idx = order[start:start + BATCH]
                p, state, loss = step(p, state, x[idx], y[idx])
                losses.append(loss)
            float(jnp.mean(jnp.stack(losses)))
            times.append(time.perf_counter() - t0)
        return times, p

    return train


def keras_epoch_times(model: Any, x: Any, y: Any, batch_size: int, epochs: int) -> list[float]:
    """Seconds per epoch of ``model.fit`` (timed by a callback at epoch boundaries)."""
    import keras

    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()])
    return times


def keras_trainer(net: Any):
    try:
        import keras
    except Exception:  # noqa: BLE001 - keras is optional here
        return None
    if keras.backend.backend() != "jax":
        return None

    def train(x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, "tanh"),
                                  keras.layers.Dense(HIDDEN, "tanh"), keras.layers.Dense(CLASSES, "softmax")])
        weights = []
        for k in ("h1", "h2", "o"):
            weights += [ng.NetExtract(net, (k, "Weights")).T, ng.NetExtract(net, (k, "Biases"))]
        model.set_weights(weights)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return keras_epoch_times(model, x, y, BATCH, epochs)

    return train


# ------------------------------------------------------------------------- (a) steps
def check_same_step(net: Any, x: np.ndarray, y: np.ndarray) -> float:
    """One full-batch step of NetTrain and of the hand-written loop from the same weights."""
    one = ng.NetTrain(net, {"Input": x[:BATCH], "Target": y[:BATCH]}, max_epochs=1, batch_size=BATCH,
                      shuffle=False, metrics=False)
    _, p = hand_trainer(net)(x[:BATCH], y[:BATCH], 1)
    return max(float(np.max(np.abs(ng.NetExtract(one.net, (k, "Weights")) - np.asarray(p[k]["w"]))))
               for k in ("h1", "h2", "o"))


def bench_steps(cfg: dict) -> dict[str, Any]:
    net = build_net()
    x, y = workload()
    diff = check_same_step(net, x, y)
    assert diff < 1e-5, f"NetTrain and the hand-written step disagree by {diff}"
    hand = hand_trainer(net)
    keras_train = keras_trainer(net)
    runs = {
        "NetTrain": lambda: ng.NetTrain(net, {"Input": x, "Target": y}, max_epochs=cfg["epochs"],
                                        batch_size=BATCH).history["seconds"][1:],
        "NetTrain, metrics=False": lambda: ng.NetTrain(net, {"Input": x, "Target": y}, max_epochs=cfg["epochs"],
                                                       batch_size=BATCH, metrics=False).history["seconds"][1:],
        "hand-written jit + optax": lambda: hand(x, y, cfg["epochs"])[0][1:],
    }
    if keras_train is not None:
        runs["Keras fit"] = lambda: keras_train(x, y, cfg["epochs"])[1:]
    timed = timed_rounds(runs, cfg["rounds"], 0, self_timed=True)
    steps = -(-EXAMPLES // BATCH)
    base = timed["hand-written jit + optax"]["median_s"]
    rows = {}
    for name, t in timed.items():
        med = t["median_s"]
        rows[name] = {"epoch_median_s": med, "step_median_ms": 1e3 * med / steps, "epochs_timed": t["reps"],
                      "ratio_vs_hand": med / base, "min_s": t["min_s"]}
    if "Keras fit" in rows:
        rows["NetTrain"]["ratio_vs_keras"] = rows["NetTrain"]["epoch_median_s"] / rows["Keras fit"]["epoch_median_s"]
    return {"check_max_weight_diff": diff, "steps_per_epoch": steps, "rows": rows}


# ------------------------------------------------------------- (c) text similarity
def similarity_net(seed: int = 0) -> Any:
    return ng.NetInitialize(text_similarity_net(), seed=seed)   # at the Keras example's sizes


def similarity_data(ragged: bool, seed: int = 0) -> dict[str, Any]:
    """Pairs labelled 1 when both texts come from the same one of 5 topics (200 tokens each;
    20 % of a text's tokens are random)."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 5, (SIM_PAIRS, 2))
    topics[::2, 1] = topics[::2, 0]

    def texts(column: np.ndarray, longest: int, shortest: int) -> Any:
        lengths = rng.integers(shortest, longest + 1, SIM_PAIRS) if ragged else np.full(SIM_PAIRS, longest)
        out = [np.where(rng.random(n) < 0.8, 200 * t + rng.integers(0, 200, n), rng.integers(0, SIM_VOCAB, n))
               .astype(np.int32) for t, n in zip(column, lengths)]
        return out if ragged else np.stack(out)

    return {"Query": texts(topics[:, 0], SIM_QUERY, 6), "Value": texts(topics[:, 1], SIM_VALUE, 4),
            "Target": (topics[:, :1] == topics[:, 1:]).astype(np.float32)}


def bench_similarity(cfg: dict) -> dict[str, Any]:
    net = similarity_net()
    data, ragged = similarity_data(False), similarity_data(True)
    try:
        import keras  # noqa: F401
    except Exception:  # noqa: BLE001 - keras is optional here
        keras = None
    if keras is not None and keras.backend.backend() != "jax":
        keras = None
    check = None
    if keras is not None:
        probe = {k: v[:8] for k, v in data.items()}
        ours = np.asarray(net({"Query": probe["Query"], "Value": probe["Value"]}))
        theirs = np.asarray(keras_text_similarity(net)([probe["Query"], probe["Value"]]))
        check = float(np.max(np.abs(ours - theirs)))
        assert check < 1e-5, f"netgraph and Keras disagree on the similarity model by {check}"
    loss = ng.CrossEntropyLossLayer("Binary")

    def netgraph_run(which: dict) -> list[float]:
        return ng.NetTrain(net, which, loss=loss, max_epochs=cfg["epochs"], batch_size=SIM_BATCH).history["seconds"][1:]

    runs: dict[str, Any] = {"NetTrain": lambda: netgraph_run(data),
                            "NetTrain, ragged pairs": lambda: netgraph_run(ragged)}
    if keras is not None:
        def keras_run() -> list[float]:
            model = keras_text_similarity(net)
            model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
            return keras_epoch_times(model, [data["Query"], data["Value"]], data["Target"], SIM_BATCH,
                                     cfg["epochs"])[1:]

        runs["Keras fit"] = keras_run
    timed = timed_rounds(runs, cfg["rounds"], 0, self_timed=True)
    steps = -(-SIM_PAIRS // SIM_BATCH)
    rows = {name: {"epoch_median_s": t["median_s"], "step_median_ms": 1e3 * t["median_s"] / steps,
                   "epochs_timed": t["reps"], "min_s": t["min_s"]} for name, t in timed.items()}
    out: dict[str, Any] = {"check_max_output_diff": check, "steps_per_epoch": steps, "rows": rows}
    if "Keras fit" in rows:
        out["ratio_vs_keras"] = rows["NetTrain"]["epoch_median_s"] / rows["Keras fit"]["epoch_median_s"]
    return out


# ---------------------------------------------------------------------- (b) ragged
def bench_ragged(cfg: dict) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 513, cfg["ragged"])
    xs = [rng.integers(0, 20, int(k)).astype(np.int32) for k in lengths]
    ys = np.array([int((x == 3).any()) for x in xs], np.int32)
    net = ng.NetChain([ng.EmbeddingLayer(16, 20), ng.ConvolutionLayer(16, 3, interleaving=True), "Ramp",
                       ng.AggregationLayer("Max", 0), ng.LinearLayer(2), ng.SoftmaxLayer()],
                      Input=("Varying", ng.Restricted("Integer", 20)))
    t0 = time.perf_counter()
    result = ng.NetTrain(net, {"Input": xs, "Target": ys}, max_epochs=2, batch_size=32)
    seconds = time.perf_counter() - t0
    examples = [Example({}, {"n": int(k)}) for k in lengths]
    shapes = {(batch_bucket(len(idx), 32), bucket(max(int(lengths[i]) for i in idx)))
              for idx in plan(examples, 32)}
    return {"sequences": len(xs), "max_length": int(lengths.max()), "padded_shapes_of_plan": len(shapes),
            "compilations_epoch1": result.history["compilations"][0],
            "compilations_epoch2": result.history["compilations"][1],
            "train_step_compilations": result.compilations["train"], "seconds": seconds,
            "epoch_seconds": result.history["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--part", choices=["mlp", "similarity", "ragged"], action="append",
                        help="run only these parts (default: all)")
    args = parser.parse_args()
    parts = set(args.part or ["mlp", "similarity", "ragged"])
    cfg = QUICK if args.quick else FULL
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                       "device": str(jax.devices()[0])}, "config": cfg, "targets": TARGETS}
    if "mlp" in parts:
        out["steps"] = bench_steps(cfg)
        print(f"(a) MLP {FEATURES}-{HIDDEN}-{HIDDEN}-{CLASSES}, batch {BATCH}, {out['steps']['steps_per_epoch']} "
              f"steps/epoch; one-step weight check: max diff {out['steps']['check_max_weight_diff']:.1e}")
        for name, row in out["steps"]["rows"].items():
            extra = f", vs Keras {row['ratio_vs_keras']:.3f}x" if "ratio_vs_keras" in row else ""
            print(f"    {name:26s} {row['epoch_median_s'] * 1e3:8.1f} ms/epoch {row['step_median_ms']:6.2f} ms/step "
                  f"ratio {row['ratio_vs_hand']:.3f}x{extra}  ({row['epochs_timed']} epochs)")
    if "ragged" in parts:
        out["ragged"] = bench_ragged(cfg)
        r = out["ragged"]
        print(f"(b) ragged: {r['sequences']} sequences, lengths 1..{r['max_length']}: plan shapes "
              f"{r['padded_shapes_of_plan']}, compilations epoch 1 {r['compilations_epoch1']} (train step "
              f"{r['train_step_compilations']}), epoch 2 {r['compilations_epoch2']}; {r['seconds']:.1f} s")
    if "similarity" in parts:
        out["similarity"] = sim = bench_similarity(cfg)
        shown = ("skipped (no keras)" if sim["check_max_output_diff"] is None
                 else f"{sim['check_max_output_diff']:.1e}")
        print(f"(c) text similarity (seed 002), batch {SIM_BATCH}, {sim['steps_per_epoch']} steps/epoch; "
              f"output check vs Keras: {shown}")
        for name, row in sim["rows"].items():
            print(f"    {name:26s} {row['epoch_median_s'] * 1e3:8.1f} ms/epoch {row['step_median_ms']:6.2f} ms/step "
                  f"({row['epochs_timed']} epochs)")
        if "ratio_vs_keras" in sim:
            print(f"    NetTrain vs Keras fit: {sim['ratio_vs_keras']:.3f}x per epoch (target <= 1.0)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
