"""An MLP-scorer attention net trains at long lengths (issue "Attention in memory linear in the
key length"): ``ng.NetTrain`` of a self-attention net whose scoring net is Catenate ->
Linear(64) -> Tanh -> Linear(()), on sequences of length T = 16384 by default.

Run from the repository root::

    python benchmarks/bench_attention_train_long.py                  # T = 16384, 3 steps (~15 min on 2 cores)
    python benchmarks/bench_attention_train_long.py --length 2048    # a quicker look

It prints, for batch 2, key/query/value size 32: the XLA compiled temp size of one training
step's forward + grad (``jit(grad(...)).lower(...).compile().memory_analysis()``, blocked and
- compiled, never run - materialised), the loss after each step (``NetTrain``'s history, one
step per epoch), the wall time of the run, and the process's peak RSS. The materialised pair
tensor at T = 16384 alone would be 2 x 16384^2 x 64 x 4 bytes = 128 GiB.
"""
from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import netgraph as ng

P = ng.NetPort
SIZE, HIDDEN, BATCH = 32, 64, 2


def net(T: int, block: Any) -> ng.NetGraph:
    scorer = ng.NetGraph([ng.CatenateLayer(), ng.LinearLayer(HIDDEN), ng.ElementwiseLayer("Tanh"),
                          ng.LinearLayer(())], [([P("Input"), P("Query")], 0, 1, 2, 3)])
    attention = ng.AttentionLayer(scorer, key_block_size=block)
    return ng.NetGraph({"att": attention},
                       [(P("Input"), [P("att", "Key"), P("att", "Value"), P("att", "Query")])],
                       Input=(T, SIZE))


def step_temp_mib(T: int, block: Any) -> float:
    """Compiled temp size of forward + grad of the mean squared error, batch of 2."""
    model = ng.NetInitialize(net(T, block), seed=0)
    apply = jax.vmap(ng.lower(model), in_axes=(None, 0))
    x = jax.ShapeDtypeStruct((BATCH, T, SIZE), jnp.float32)

    def loss(params: Any, x: jax.Array) -> jax.Array:
        return jnp.mean((apply(params, {"Input": x})["Output"] - x) ** 2)

    compiled = jax.jit(jax.grad(loss)).lower(ng.params_of(model), x).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    T = args.length
    print(f"T = {T}: compiled temp of one step, blocked {step_temp_mib(T, ng.Automatic):.1f} MiB, "
          f"materialised {step_temp_mib(T, None):.1f} MiB")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, T, SIZE)).astype(np.float32)
    target = np.roll(x, 1, axis=1)  # the previous position's vector
    start = time.perf_counter()
    result = ng.NetTrain(net(T, ng.Automatic), {"Input": x, "Target": target}, loss=ng.MeanSquaredLossLayer(),
                         batch_size=BATCH, max_epochs=args.steps, learning_rate=1e-2, seed=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    losses = ", ".join(f"{v:.4f}" for v in result.history["loss"])
    print(f"T = {T}: NetTrain, {args.steps} steps of batch {BATCH}: losses {losses}; "
          f"{seconds:.0f} s ({seconds / args.steps:.0f} s per step with the compile); peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
