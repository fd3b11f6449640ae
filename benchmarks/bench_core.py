"""Side-by-side benchmarks of netgraph against the same math written by hand in JAX.

Run from the repository root::

    python benchmarks/bench_core.py            # full run (about a minute on 2 CPU cores)
    python benchmarks/bench_core.py --quick    # fewer repetitions (smoke test)
    python benchmarks/bench_core.py --json results.json

What is measured (see benchmarks/README.md for the details and the targets):

1. ``forward`` / ``grad``: a compiled two-input NetGraph (``jax.jit(jax.vmap(ng.lower(net)))``)
   against a hand-written ``jax.jit`` function using the very same weights (read with
   ``ng.NetExtract``). Outputs and gradients are checked to agree before anything is timed.
2. ``call``: the user-facing ``net(inputs)`` (input validation, NumPy in and out) against the
   hand-written function, with device inputs and with NumPy in/out.
3. ``inference``: construction time (which runs shape inference) of 1,000-layer NetChains.

Timing: warm-up first, then many interleaved repetitions (the order of the implementations
alternates each round), each call ended with ``block_until_ready``; the median is reported.
"""
from __future__ import annotations

import gc
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import netgraph as ng
from timing import arguments, block, paired_ratio, timed_rounds, write_json

# ----------------------------------------------------------------------------- settings
BATCH = 256
WIDTH = 512
CHAIN_LAYERS = 1000
CHAIN_WIDTH = 32
TARGET_RATIO = 1.05

FULL = {"forward_reps": 1000, "grad_reps": 400, "call_reps": 400, "tiny_reps": 2000,
        "inference_reps": 7, "warmup": 20}
QUICK = {"forward_reps": 20, "grad_reps": 10, "call_reps": 10, "tiny_reps": 50,
         "inference_reps": 1, "warmup": 2}


# ------------------------------------------------------------------------------ timing
def time_interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int) -> dict[str, Any]:
    """Median seconds per call of each zero-argument function, timed in interleaved rounds."""
    return timed_rounds(fns, reps, warmup)


# ---------------------------------------------------------------------- the graph
LINEARS = ("a1", "b1", "h", "out")


def build_graph(width: int = WIDTH) -> ng.NetGraph:
    """Two inputs, a Tanh branch and a Ramp branch, a Plus merge, a hidden Tanh layer, output."""
    net = ng.NetGraph(
        {
            "a1": ng.LinearLayer(width), "t1": ng.ElementwiseLayer("Tanh"),
            "b1": ng.LinearLayer(width), "r1": ng.ElementwiseLayer("Ramp"),
            "plus": ng.ThreadingLayer("Plus"),
            "h": ng.LinearLayer(width), "t2": ng.ElementwiseLayer("Tanh"),
            "out": ng.LinearLayer(width),
        },
        [
            (ng.NetPort("x"), "a1", "t1"),
            (ng.NetPort("y"), "b1", "r1"),
            (["t1", "r1"], "plus", "h", "t2", "out", ng.NetPort("Output")),
        ],
        x=width, y=width,
    )
    return ng.NetInitialize(net, seed=0)


def hand_forward(w: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """The same math, batched, as one would write it directly: rows are examples."""
    def dense(name: str, v: jax.Array) -> jax.Array:
        return v @ w[name]["Weights"].T + w[name]["Biases"]

    a = jnp.tanh(dense("a1", x))
    b = jax.nn.relu(dense("b1", y))
    h = jnp.tanh(dense("h", a + b))
    return dense("out", h)


def hand_forward_one(w: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """The same math for ONE example (W @ x), to be vmapped: a diagnostic variant that has
    exactly the structure netgraph's lowering has."""
    def dense(name: str, v: jax.Array) -> jax.Array:
        return w[name]["Weights"] @ v + w[name]["Biases"]

    a = jnp.tanh(dense("a1", x))
    b = jax.nn.relu(dense("b1", y))
    h = jnp.tanh(dense("h", a + b))
    return dense("out", h)


def count_ops(jaxpr_text: str, ops: tuple[str, ...]) -> dict[str, int]:
    return {op: sum(1 for line in jaxpr_text.splitlines() if f"= {op}[" in line or f"= {op} " in line)
            for op in ops}


def hlo_ops(hlo_text: str) -> Counter:
    """Counts of the instructions (by opcode) of a compiled HLO module, fusions included."""
    return Counter(m.group(1) for m in re.finditer(r"= \S+ ([a-z][\w-]*)\(", hlo_text))


def bench_graph(cfg: dict) -> dict[str, Any]:
    net = build_graph()
    apply = ng.lower(net)
    params = jax.tree_util.tree_map(jnp.asarray, ng.params_of(net))
    # The hand-written side gets its weights through the public NetExtract, as NumPy arrays.
    hand_w = {
        name: {a: jnp.asarray(ng.NetExtract(net, (name, a))) for a in ("Weights", "Biases")}
        for name in LINEARS
    }

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    y_np = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    inputs = {"x": x, "y": y}

    batched = jax.vmap(apply, in_axes=(None, 0))
    ng_fwd = jax.jit(batched)
    hand_fwd = jax.jit(hand_forward)
    hand_vmap_fwd = jax.jit(jax.vmap(hand_forward_one, in_axes=(None, 0, 0)))

    def ng_loss(p: Any, inp: Any) -> jax.Array:
        return jnp.sum(batched(p, inp)["Output"])

    def hand_loss(w: Any, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(hand_forward(w, a, b))

    def hand_vmap_loss(w: Any, a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(jax.vmap(hand_forward_one, in_axes=(None, 0, 0))(w, a, b))

    ng_grad = jax.jit(jax.grad(ng_loss))
    hand_grad = jax.jit(jax.grad(hand_loss))
    hand_vmap_grad = jax.jit(jax.grad(hand_vmap_loss))

    # ---- compile times (first call), then correctness checks
    compile_s = {}
    for label, thunk in [
        ("netgraph_forward", lambda: ng_fwd(params, inputs)),
        ("hand_forward", lambda: hand_fwd(hand_w, x, y)),
        ("netgraph_grad", lambda: ng_grad(params, inputs)),
        ("hand_grad", lambda: hand_grad(hand_w, x, y)),
    ]:
        t0 = time.perf_counter()
        block(thunk())
        compile_s[label] = time.perf_counter() - t0

    out_ng = np.asarray(ng_fwd(params, inputs)["Output"])
    out_hand = np.asarray(hand_fwd(hand_w, x, y))
    out_hand_vmap = np.asarray(hand_vmap_fwd(hand_w, x, y))
    out_call = net({"x": x_np, "y": y_np})
    np.testing.assert_allclose(out_ng, out_hand, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out_hand_vmap, out_hand, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out_call, out_hand, rtol=1e-4, atol=1e-4)
    g_ng, g_hand = ng_grad(params, inputs), hand_grad(hand_w, x, y)
    for name in LINEARS:
        for a in ("Weights", "Biases"):
            np.testing.assert_allclose(np.asarray(g_ng[name][a]), np.asarray(g_hand[name][a]),
                                       rtol=1e-3, atol=1e-3)
    max_abs_diff = float(np.max(np.abs(out_ng - out_hand)))

    # ---- jaxpr / compiled-HLO structure (what extra work, if any, the lowering adds)
    ops = ("dot_general", "transpose", "broadcast_in_dim", "reshape", "add", "tanh")
    structure: dict[str, Any] = {
        "netgraph_jaxpr": count_ops(str(jax.make_jaxpr(batched)(params, inputs)), ops),
        "hand_jaxpr": count_ops(str(jax.make_jaxpr(hand_forward)(hand_w, x, y)), ops),
    }
    for label, (fn_ng, args_ng), (fn_hand, args_hand) in [
        ("forward_hlo", (ng_fwd, (params, inputs)), (hand_fwd, (hand_w, x, y))),
        ("grad_hlo", (ng_grad, (params, inputs)), (hand_grad, (hand_w, x, y))),
    ]:
        a = hlo_ops(fn_ng.lower(*args_ng).compile().as_text())
        b = hlo_ops(fn_hand.lower(*args_hand).compile().as_text())
        structure[label] = {
            "identical_op_counts": a == b,
            "netgraph_extra": dict(a - b),
            "hand_extra": dict(b - a),
            "netgraph": {k: a[k] for k in ("dot", "fusion", "transpose", "copy", "broadcast")},
            "hand": {k: b[k] for k in ("dot", "fusion", "transpose", "copy", "broadcast")},
        }

    # ---- timings
    fwd = time_interleaved(
        {
            "netgraph": lambda: ng_fwd(params, inputs),
            "hand": lambda: hand_fwd(hand_w, x, y),
            "hand_vmap": lambda: hand_vmap_fwd(hand_w, x, y),
        },
        cfg["forward_reps"], cfg["warmup"],
    )
    grad = time_interleaved(
        {
            "netgraph": lambda: ng_grad(params, inputs),
            "hand": lambda: hand_grad(hand_w, x, y),
            "hand_vmap": lambda: hand_vmap_grad(hand_w, x, y),
        },
        cfg["grad_reps"], cfg["warmup"],
    )
    call = time_interleaved(
        {
            "net_call": lambda: net({"x": x_np, "y": y_np}),
            "hand": lambda: hand_fwd(hand_w, x, y),
            "hand_numpy_io": lambda: np.asarray(hand_fwd(hand_w, x_np, y_np)),
        },
        cfg["call_reps"], cfg["warmup"],
    )

    # Fixed per-call cost of net(...): a tiny net, where the math itself costs next to nothing.
    tiny = ng.NetInitialize(ng.NetChain([ng.LinearLayer(4)], Input=4), seed=0)
    tiny_w = {a: jnp.asarray(ng.NetExtract(tiny, ("0", a))) for a in ("Weights", "Biases")}
    tiny_hand = jax.jit(lambda w, v: v @ w["Weights"].T + w["Biases"])
    t_np = rng.standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_allclose(tiny(t_np), np.asarray(tiny_hand(tiny_w, t_np)), rtol=1e-5, atol=1e-6)
    call_tiny = time_interleaved(
        {
            "net_call": lambda: tiny(t_np),
            "hand_numpy_io": lambda: np.asarray(tiny_hand(tiny_w, t_np)),
        },
        cfg["tiny_reps"], cfg["warmup"],
    )

    def summary(res: dict, num: str, den: str) -> dict:
        return {
            "ratio_of_medians": res[num]["median_s"] / res[den]["median_s"],
            "paired_median_ratio": paired_ratio(res[num]["samples"], res[den]["samples"]),
        }

    return {
        "shape": {"batch": BATCH, "width": WIDTH, "linear_layers": len(LINEARS)},
        "max_abs_diff_forward": max_abs_diff,
        "compile_s": compile_s,
        "structure": structure,
        "forward": {"timings": fwd,
                    "netgraph_vs_hand": summary(fwd, "netgraph", "hand"),
                    "netgraph_vs_hand_vmap": summary(fwd, "netgraph", "hand_vmap"),
                    "hand_vmap_vs_hand": summary(fwd, "hand_vmap", "hand")},
        "grad": {"timings": grad,
                 "netgraph_vs_hand": summary(grad, "netgraph", "hand"),
                 "netgraph_vs_hand_vmap": summary(grad, "netgraph", "hand_vmap"),
                 "hand_vmap_vs_hand": summary(grad, "hand_vmap", "hand")},
        "call": {"timings": call,
                 "net_call_vs_hand": summary(call, "net_call", "hand"),
                 "net_call_vs_hand_numpy_io": summary(call, "net_call", "hand_numpy_io")},
        "call_tiny": {"timings": call_tiny,
                      "net_call_vs_hand_numpy_io": summary(call_tiny, "net_call", "hand_numpy_io"),
                      "overhead_s": call_tiny["net_call"]["median_s"]
                      - call_tiny["hand_numpy_io"]["median_s"]},
    }


# ---------------------------------------------------------------- shape inference
def chain_forward() -> tuple[list, dict]:
    """Alternating LinearLayer(32) / Tanh; sizes flow forward from Input=32."""
    layers = []
    for _ in range(CHAIN_LAYERS // 2):
        layers += [ng.LinearLayer(CHAIN_WIDTH), ng.ElementwiseLayer("Tanh")]
    return layers, {"Input": CHAIN_WIDTH}


def chain_backward_local() -> tuple[list, dict]:
    """Alternating LinearLayer(Automatic, Input=32) / Tanh with only Output=32 declared on the
    chain: every output size is Automatic and is inferred backwards (through the following
    Tanh) from the next layer's declared input, the last one from the chain's Output; the
    chain's Input is inferred from the first layer."""
    layers = []
    for _ in range(CHAIN_LAYERS // 2):
        layers += [ng.LinearLayer(ng.Automatic, Input=CHAIN_WIDTH), ng.ElementwiseLayer("Tanh")]
    return layers, {"Output": CHAIN_WIDTH}


def chain_backward_long() -> tuple[list, dict]:
    """LinearLayer(Automatic) then 999 Tanh layers, Input=32 and Output=32 declared: the
    Linear's output size travels backwards from the Output through all 999 layers."""
    layers = [ng.LinearLayer(ng.Automatic)] + [ng.ElementwiseLayer("Tanh")
                                               for _ in range(CHAIN_LAYERS - 1)]
    return layers, {"Input": CHAIN_WIDTH, "Output": CHAIN_WIDTH}


def fully_known(net: ng.NetChain) -> bool:
    return all(p.dims is not None and all(getattr(d, "size", None) is not None for d in p.dims)
               for p in net.inference.ports.values())


def bench_inference(cfg: dict) -> dict[str, Any]:
    """Seconds for ``NetChain(layers, **ports)`` (assembly + shape inference); making the
    layer objects themselves is timed separately."""
    results = {}
    for label, make in [("forward", chain_forward),
                        ("backward_local", chain_backward_local),
                        ("backward_long", chain_backward_long)]:
        times, make_times = [], []
        net = None
        for _ in range(cfg["inference_reps"]):
            net = None
            gc.collect()
            t0 = time.perf_counter()
            layers, ports = make()
            t1 = time.perf_counter()
            net = ng.NetChain(layers, **ports)
            times.append(time.perf_counter() - t1)
            make_times.append(t1 - t0)
        assert net is not None and len(net.nodes) == CHAIN_LAYERS
        assert fully_known(net), f"{label}: not every port size was inferred"
        lin = net.inference.array(("0",), "Weights")
        assert tuple(d.size for d in lin) == (CHAIN_WIDTH, CHAIN_WIDTH), lin
        results[label] = {"median_s": statistics.median(times), "min_s": min(times),
                          "make_layers_median_s": statistics.median(make_times),
                          "reps": len(times), "layers": CHAIN_LAYERS,
                          "ports": len(net.inference.ports)}
    return results


# ------------------------------------------------------------------------------ report
def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def ms(s: float) -> str:
    return f"{s * 1e3:9.3f}"


def print_report(res: dict) -> None:
    g = res["graph"]
    m = res["machine"]
    print(f"\nnetgraph core benchmarks  ({'quick' if res['quick'] else 'full'} run; JAX {m['jax']} "
          f"on {m['backend']}, {m['cpu_count']} CPU cores)")
    print(f"graph: 2 inputs, {g['shape']['linear_layers']} LinearLayers, Tanh/Ramp, Plus; "
          f"batch {g['shape']['batch']} x width {g['shape']['width']}; "
          f"max |netgraph - hand| = {g['max_abs_diff_forward']:.2e}\n")
    header = f"{'benchmark':<34}{'median ms':>10}{'min ms':>10}{'p90 ms':>10}{'reps':>6}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    rows = [
        ("forward", "netgraph", "jit(vmap(lower(net)))", "netgraph_vs_hand"),
        ("forward", "hand", "hand-written jit", None),
        ("forward", "hand_vmap", "hand-written jit(vmap(W@x))", "hand_vmap_vs_hand"),
        ("grad", "netgraph", "grad: netgraph", "netgraph_vs_hand"),
        ("grad", "hand", "grad: hand-written", None),
        ("grad", "hand_vmap", "grad: hand-written vmap(W@x)", "hand_vmap_vs_hand"),
        ("call", "net_call", "net(inputs) (numpy in/out)", "net_call_vs_hand"),
        ("call", "hand", "hand-written jit (device arrays)", None),
        ("call", "hand_numpy_io", "hand-written jit (numpy in/out)", None),
    ]
    for section, key, label, ratio_key in rows:
        t = g[section]["timings"][key]
        ratio = f"{g[section][ratio_key]['ratio_of_medians']:9.3f}" if ratio_key else f"{'1.000':>9}"
        if section == "call" and key == "hand_numpy_io":
            ratio = f"{t['median_s'] / g['call']['timings']['hand']['median_s']:9.3f}"
        print(f"{label:<34}{ms(t['median_s']):>10}{ms(t['min_s']):>10}{ms(t['p90_s']):>10}"
              f"{t['reps']:>6}{ratio}")
    print()
    fr = g["forward"]["netgraph_vs_hand"]
    gr = g["grad"]["netgraph_vs_hand"]
    cr = g["call"]["net_call_vs_hand"]
    cn = g["call"]["net_call_vs_hand_numpy_io"]
    for label, r, target in [("forward  netgraph / hand-written", fr, TARGET_RATIO),
                             ("fwd+grad netgraph / hand-written", gr, TARGET_RATIO),
                             ("net(inputs) / hand-written (device)", cr, None),
                             ("net(inputs) / hand-written (numpy io)", cn, None)]:
        verdict = ""
        if target is not None:
            verdict = "  OK" if r["ratio_of_medians"] <= target else f"  ABOVE TARGET {target}"
        print(f"{label:<40} {r['ratio_of_medians']:6.3f}  (paired median {r['paired_median_ratio']:.3f})"
              f"{verdict}")
    ct = g["call"]["timings"]
    print(f"{'net(inputs) overhead over hand (device)':<40} "
          f"{(ct['net_call']['median_s'] - ct['hand']['median_s']) * 1e3:6.3f} ms")
    print(f"{'net(inputs) overhead over hand (numpy io)':<40} "
          f"{(ct['net_call']['median_s'] - ct['hand_numpy_io']['median_s']) * 1e3:6.3f} ms")
    tt = g["call_tiny"]["timings"]
    print(f"{'fixed per-call cost, tiny net (8x4->4)':<40} net(x) {tt['net_call']['median_s'] * 1e6:.1f} us"
          f", hand-written (numpy io) {tt['hand_numpy_io']['median_s'] * 1e6:.1f} us"
          f"  -> overhead {g['call_tiny']['overhead_s'] * 1e6:.1f} us")
    c = g["compile_s"]
    print(f"\nfirst call (trace + compile): forward netgraph {c['netgraph_forward']:.3f} s, "
          f"hand {c['hand_forward']:.3f} s; grad netgraph {c['netgraph_grad']:.3f} s, "
          f"hand {c['hand_grad']:.3f} s")
    s = g["structure"]
    print(f"jaxpr ops  netgraph {s['netgraph_jaxpr']}\n           hand     {s['hand_jaxpr']}")
    for key, label in (("forward_hlo", "forward"), ("grad_hlo", "fwd+grad")):
        h = s[key]
        same = "identical op counts" if h["identical_op_counts"] else (
            f"differ: netgraph extra {h['netgraph_extra']}, hand extra {h['hand_extra']}")
        print(f"compiled HLO ({label}): netgraph {h['netgraph']}\n"
              f"{'':<24}hand     {h['hand']}  -> {same}")

    print(f"\nshape inference (construction of a {CHAIN_LAYERS}-layer NetChain, width {CHAIN_WIDTH})")
    labels = {
        "forward": "Linear(32)/Tanh, Input=32",
        "backward_local": "Linear(Automatic, Input=32)/Tanh, Output=32",
        "backward_long": "Linear(Automatic) + 999 Tanh, In/Output=32",
    }
    for key, r in res["inference"].items():
        print(f"  {labels[key]:<46} {r['median_s']:8.3f} s  (min {r['min_s']:.3f} s, "
              f"{r['reps']} reps, {r['ports']} ports; making the layer objects "
              f"{r['make_layers_median_s']:.3f} s more)")
    print(f"\ntotal wall time {res['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    res: dict[str, Any] = {"quick": args.quick, "config": cfg, "machine": machine()}
    res["graph"] = bench_graph(cfg)
    res["inference"] = bench_inference(cfg)
    res["wall_s"] = time.perf_counter() - t0
    res["targets"] = {"forward_ratio_max": TARGET_RATIO, "grad_ratio_max": TARGET_RATIO}
    res["meets_targets"] = {
        "forward": res["graph"]["forward"]["netgraph_vs_hand"]["ratio_of_medians"] <= TARGET_RATIO,
        "grad": res["graph"]["grad"]["netgraph_vs_hand"]["ratio_of_medians"] <= TARGET_RATIO,
    }
    print_report(res)
    if args.json:
        if not args.samples:
            for section in ("forward", "grad", "call", "call_tiny"):
                for t in res["graph"][section]["timings"].values():
                    t.pop("samples", None)
    write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
