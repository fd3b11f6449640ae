"""Blocked attention (``AttentionLayer(key_block_size=...)``): memory and time against the
materialised path, and the dot path against hand-written JAX.

Run from the repository root::

    python benchmarks/bench_attention_memory.py            # a few minutes on 2 CPU cores
    python benchmarks/bench_attention_memory.py --large    # also T = 8192 and 16384 (memory,
                                                           # and one MLP training step at 16384)
    python benchmarks/bench_attention_memory.py --quick    # smoke test
    python benchmarks/bench_attention_memory.py --json results.json

It writes ``benchmarks/attention_memory.md`` (the tables) and ``benchmarks/attention_memory.png``
(the plots) and prints the tables.

* **Memory** (batch 2, key/query/value size 32, scorer hidden size 64): XLA's compiled temp
  size (``jax.jit(f).lower(...).compile().memory_analysis()``) of ``jit(vmap(ng.lower(net)))``
  (forward) and of ``jit(grad(sum of outputs))`` with respect to params and inputs
  (forward + grad), blocked (``key_block_size=Automatic``) and materialised
  (``key_block_size=None``; compiled, never run), for four scorers: "Dot", "Bilinear", an
  additive NetGraph (``w . tanh(Wk k + Wq q)``) and an MLP (Catenate -> Linear(64) -> Tanh ->
  Linear(())). Peak RSS of a fresh subprocess that compiles and runs the blocked
  forward + grad of the MLP scorer.
* **Time, dot path** (batch 4, 8 heads, head size 64, T = 128 .. 2048, forward): netgraph
  ``AttentionLayer("Dot", multi_head=True)`` (Automatic) against a hand-written einsum,
  ``jax.nn.dot_product_attention(implementation="xla")`` and a hand-written chunked online
  softmax (``lax.scan`` over key chunks of 512), all in the same interleaved rounds
  (``benchmarks/timing.py``); ratio = netgraph / the best of the three.
* **Time, blocked vs materialised** (forward + grad, batch 2, T = 1024): each scorer,
  ``key_block_size=Automatic`` against ``None``.
* **Causal block skipping** (forward + grad of a blocked causal additive scorer, batch 1,
  T = 2048; T = 4096 with ``--large``): skipping blocks above the diagonal against the same
  blocked computation with skipping switched off (``Visibility.needed`` patched to "every
  block").
"""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import netgraph as ng
from netgraph.layers import attention_blocked
from timing import arguments, paired_ratio, timed_rounds, write_json

HERE = Path(__file__).resolve().parent
BATCH, SIZE, HIDDEN = 2, 32, 64
P = ng.NetPort


# ------------------------------------------------------------------------------ nets
def scorer(name: str) -> Any:
    if name in ("Dot", "Bilinear"):
        return name
    if name == "additive":
        return ng.NetGraph(
            [ng.LinearLayer(HIDDEN, Biases=None), ng.LinearLayer(HIDDEN, Biases=None),
             ng.ThreadingLayer(lambda a, b: jnp.tanh(a + b)), ng.LinearLayer((), Biases=None)],
            [(P("Input"), 0, 2), (P("Query"), 1, 2, 3)])
    return ng.NetGraph([ng.CatenateLayer(), ng.LinearLayer(HIDDEN), ng.ElementwiseLayer("Tanh"),
                        ng.LinearLayer(())], [([P("Input"), P("Query")], 0, 1, 2, 3)])


SCORERS = ("Dot", "Bilinear", "additive", "MLP")


def attention(name: str, T: int, block: Any, **options: Any) -> ng.AttentionLayer:
    layer = ng.AttentionLayer(scorer(name), key_block_size=block, Key=(T, SIZE), Value=(T, SIZE),
                              Query=(T, SIZE), **options)
    return ng.NetInitialize(layer, seed=0)


def functions(net: Any, batch: int) -> tuple[Callable, Callable, tuple]:
    """(forward, forward + grad, args) of ``jit(vmap(lower(net)))``."""
    apply = jax.vmap(ng.lower(net), in_axes=(None, 0))
    shape = {n: jax.ShapeDtypeStruct((batch,) + tuple(net.port_types()[n].dims[i].size for i in range(2)),
                                     jnp.float32) for n in net.input_names}
    params = ng.params_of(net)

    def forward(p: Any, x: dict) -> jax.Array:
        return apply(p, x)["Output"]

    def loss(p: Any, x: dict) -> jax.Array:
        return jnp.sum(apply(p, x)["Output"])

    return jax.jit(forward), jax.jit(jax.grad(loss, argnums=(0, 1))), (params, shape)


def temp_bytes(fn: Callable, args: tuple) -> int:
    return int(fn.lower(*args).compile().memory_analysis().temp_size_in_bytes)


def concrete(args: tuple, seed: int = 0) -> tuple:
    params, shape = args
    rng = np.random.default_rng(seed)
    x = {n: jnp.asarray(rng.standard_normal(s.shape), jnp.float32) for n, s in shape.items()}
    return params, x


# ------------------------------------------------------------------------------ memory
def memory(ts: list[int]) -> list[dict]:
    rows = []
    for name in SCORERS:
        for T in ts:
            row: dict[str, Any] = {"scorer": name, "T": T}
            for label, block in (("blocked", ng.Automatic), ("materialised", None)):
                fwd, grad, args = functions(attention(name, T, block), BATCH)
                row[f"{label}_forward"] = temp_bytes(fwd, args)
                row[f"{label}_grad"] = temp_bytes(grad, args)
            rows.append(row)
            print(f"  memory {name:8s} T={T:5d}: " + ", ".join(f"{k} {v / 2**20:.1f} MiB"
                                                         for k, v in row.items() if k not in ("scorer", "T")))
    return rows


def rss_child(name: str, T: int) -> None:
    """(subprocess) compile and run the blocked forward + grad once; print the peak RSS."""
    _, grad, args = functions(attention(name, T, ng.Automatic), BATCH)
    jax.block_until_ready(grad(*concrete(args)))
    print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def rss(name: str, T: int) -> int:
    out = subprocess.run([sys.executable, __file__, "--rss-child", name, str(T)], capture_output=True,
                         text=True, cwd=HERE, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("RSS "):
            return int(line.split()[1])
    raise RuntimeError(out.stderr[-2000:])


# -------------------------------------------------------------------------- dot path
def hand_einsum(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(s, axis=-1), v)


def hand_chunked(q: jax.Array, k: jax.Array, v: jax.Array, chunk: int = 512) -> jax.Array:
    B, T, H, D = q.shape
    c = min(chunk, k.shape[1])
    ks = k.reshape(B, -1, c, H, D).transpose(1, 0, 2, 3, 4)
    vs = v.reshape(B, -1, c, H, D).transpose(1, 0, 2, 3, 4)

    def step(carry: tuple, kv: tuple) -> tuple:
        m, l, acc = carry
        s = jnp.einsum("bqhd,bkhd->bhqk", q, kv[0])
        new = jnp.maximum(m, s.max(-1))
        p = jnp.exp(s - new[..., None])
        r = jnp.exp(m - new)
        return (new, l * r + p.sum(-1), acc * r[..., None] + jnp.einsum("bhqk,bkhd->bhqd", p, kv[1])), None

    init = (jnp.full((B, H, T), -jnp.inf), jnp.zeros((B, H, T)), jnp.zeros((B, H, T, D)))
    (_, l, acc), _ = jax.lax.scan(step, init, (ks, vs))
    return (acc / l[..., None]).transpose(0, 2, 1, 3)


def dot_speed(ts: list[int], reps: int) -> list[dict]:
    B, H, D = 4, 8, 64
    rows = []
    for T in ts:
        rng = np.random.default_rng(T)
        q, k, v = (jnp.asarray(rng.standard_normal((B, T, H, D)), jnp.float32) for _ in range(3))
        net = ng.NetInitialize(ng.AttentionLayer("Dot", multi_head=True, Key=(T, H, D), Value=(T, H, D),
                                                 Query=(T, H, D)), seed=0)
        apply = jax.jit(jax.vmap(ng.lower(net), in_axes=(None, 0)))
        params = ng.params_of(net)
        fns = {
            "netgraph": lambda: apply(params, {"Key": k, "Value": v, "Query": q})["Output"],
            "einsum": lambda f=jax.jit(hand_einsum): f(q, k, v),
            "dpa_xla": lambda f=jax.jit(lambda a, b, c: jax.nn.dot_product_attention(
                a, b, c, scale=1.0, implementation="xla")): f(q, k, v),
            "chunked": lambda f=jax.jit(hand_chunked): f(q, k, v),
        }
        want = np.asarray(fns["einsum"]())
        for name, fn in fns.items():
            np.testing.assert_allclose(np.asarray(fn()), want, rtol=2e-4, atol=2e-4, err_msg=name)
        res = timed_rounds(fns, reps * (8 if T <= 128 else 3 if T <= 512 else 1), 1)
        best = min(("einsum", "dpa_xla", "chunked"), key=lambda n: res[n]["median_s"])
        row = {"T": T, **{f"{n}_ms": res[n]["median_s"] * 1e3 for n in fns}, "best": best,
               "ratio": paired_ratio(res["netgraph"]["samples"], res[best]["samples"])}
        rows.append(row)
        print(f"  dot T={T:5d}: " + ", ".join(f"{n} {res[n]['median_s'] * 1e3:.1f} ms" for n in fns)
              + f"; netgraph / {best} = {row['ratio']:.2f}")
    return rows


# --------------------------------------------------------------- blocked vs materialised
def blocked_speed(T: int, reps: int) -> list[dict]:
    rows = []
    for name in SCORERS:
        fns = {}
        for label, block in (("blocked", ng.Automatic), ("materialised", None)):
            _, grad, args = functions(attention(name, T, block), BATCH)
            fns[label] = lambda g=grad, a=concrete(args): g(*a)
        res = timed_rounds(fns, reps, 1)
        row = {"scorer": name, "T": T, **{f"{n}_ms": res[n]["median_s"] * 1e3 for n in fns},
               "ratio": paired_ratio(res["blocked"]["samples"], res["materialised"]["samples"])}
        rows.append(row)
        print(f"  fwd+grad {name:8s} T={T}: blocked / materialised = {row['ratio']:.2f}")
    return rows


def skipping(T: int, reps: int) -> dict:
    fns = {}
    net = attention("additive", T, 128, mask="Causal")
    _, grad, args = functions(net, 1)
    x = concrete(args)
    fns["skipping"] = lambda g=grad: g(*x)
    original = attention_blocked.Visibility.needed
    attention_blocked.Visibility.needed = lambda self, *a: None  # every block computed
    try:
        _, every, _ = functions(net, 1)
        every.lower(*x).compile()
        jax.block_until_ready(every(*x))
    finally:
        attention_blocked.Visibility.needed = original
    fns["every block"] = lambda g=every: g(*x)
    res = timed_rounds(fns, reps, 1)
    row = {"T": T, **{f"{n}_ms": res[n]["median_s"] * 1e3 for n in fns},
           "ratio": paired_ratio(res["skipping"]["samples"], res["every block"]["samples"])}
    print(f"  causal skipping T={T}: {row['ratio']:.2f} of the time without skipping")
    return row


# ------------------------------------------------------------------------------ report
def mib(b: float) -> str:
    return f"{b / 2**20:,.1f}"


def tables(res: dict) -> str:
    out = [f"Machine: {res['machine']}.", "",
           "### Peak memory (XLA compiled temp size, MiB; batch 2, size 32, hidden 64)", "",
           "| scorer | T | blocked fwd | materialised fwd | blocked fwd+grad | materialised fwd+grad "
           "| blocked / materialised (fwd+grad) |", "|---|---|---|---|---|---|---|"]
    for r in res["memory"]:
        out.append(f"| {r['scorer']} | {r['T']} | {mib(r['blocked_forward'])} | {mib(r['materialised_forward'])} "
                   f"| {mib(r['blocked_grad'])} | {mib(r['materialised_grad'])} "
                   f"| {r['blocked_grad'] / max(r['materialised_grad'], 1):.3f} |")
    out += ["", "Growth per doubling of T (blocked, fwd+grad):", ""]
    for name in SCORERS:
        rs = [r for r in res["memory"] if r["scorer"] == name]
        growth = [b["blocked_grad"] / max(a["blocked_grad"], 1) for a, b in zip(rs, rs[1:])]
        out.append(f"* {name}: " + ", ".join(f"{g:.2f}x" for g in growth))
    if res.get("rss"):
        out += ["", "Peak RSS of a subprocess running the blocked MLP forward + grad: "
                + ", ".join(f"T={t}: {mib(b)} MiB" for t, b in res["rss"].items())]
    out += ["", "### Dot path, forward (batch 4, 8 heads, head 64; ms, medians of interleaved rounds)", "",
            "| T | netgraph | einsum | dot_product_attention (xla) | chunked | netgraph / best |",
            "|---|---|---|---|---|---|"]
    for r in res["dot"]:
        out.append(f"| {r['T']} | {r['netgraph_ms']:.1f} | {r['einsum_ms']:.1f} | {r['dpa_xla_ms']:.1f} "
                   f"| {r['chunked_ms']:.1f} | {r['ratio']:.2f} ({r['best']}) |")
    out += ["", f"### Blocked / materialised, forward + grad (batch 2, T = {res['blocked'][0]['T']})", "",
            "| scorer | blocked ms | materialised ms | ratio |", "|---|---|---|---|"]
    for r in res["blocked"]:
        out.append(f"| {r['scorer']} | {r['blocked_ms']:.1f} | {r['materialised_ms']:.1f} | {r['ratio']:.2f} |")
    s = res["skipping"]
    out += ["", f"### Causal block skipping (additive scorer, blocks of 128, forward + grad, T = {s['T']})", "",
            f"skipping {s['skipping_ms']:.0f} ms, every block {s['every block_ms']:.0f} ms: "
            f"ratio {s['ratio']:.2f}"]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key in zip(axes[:2], ("forward", "grad")):
        for name in SCORERS:
            rs = [r for r in res["memory"] if r["scorer"] == name]
            ts = [r["T"] for r in rs]
            line, = ax.loglog(ts, [r[f"blocked_{key}"] / 2**20 for r in rs], "o-", label=f"{name} blocked")
            ax.loglog(ts, [r[f"materialised_{key}"] / 2**20 for r in rs], "x--", color=line.get_color(),
                      label=f"{name} materialised")
        ax.set(xlabel="T", ylabel="XLA temp MiB", title=f"memory, {'forward' if key == 'forward' else 'forward + grad'}")
        ax.legend(fontsize=7)
    ax = axes[2]
    ts = [r["T"] for r in res["dot"]]
    for name in ("netgraph", "einsum", "dpa_xla", "chunked"):
        ax.loglog(ts, [r[f"{name}_ms"] for r in res["dot"]], "o-", label=name)
    ax.set(xlabel="T", ylabel="ms", title="dot attention, forward (B=4, 8 heads, 64)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, samples=False)
    parser.add_argument("--large", action="store_true", help="also T = 8192, 16384 (slow, needs memory)")
    parser.add_argument("--rss-child", nargs=2, metavar=("SCORER", "T"), help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0
    quick = args.quick
    ts = [256, 512] if quick else [1024, 2048, 4096] + ([8192, 16384] if args.large else [])
    reps = 2 if quick else 5
    res: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
                                      f"{jax.default_backend()}"}
    print("memory ...")
    res["memory"] = memory(ts)
    print("RSS ...")
    res["rss"] = {T: rss("MLP", T) for T in (ts if args.large else ts[:2])}
    print("dot path ...")
    res["dot"] = dot_speed([128, 256] if quick else [128, 512, 1024, 2048], reps)
    print("blocked vs materialised ...")
    res["blocked"] = blocked_speed(256 if quick else 1024, reps)
    print("causal skipping ...")
    res["skipping"] = skipping(512 if quick else (4096 if args.large else 2048), reps)
    text = tables(res)
    print(text)
    if not quick:
        (HERE / "attention_memory.md").write_text(text)
        plot(res, HERE / "attention_memory.png")
    write_json(args.json, res)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
