"""NetTrain data-parallel over several devices equals one-device training.

The host CPU is split into 4 XLA devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``),
which must be set before JAX starts, so the runs happen in a subprocess (as in
test_multidevice.py): each net is trained with ``target_device=("CPU", 4)`` (batch rows sharded
over a Mesh, params replicated) and with one device from the same seed, and the child prints a
JSON summary of the largest weight and history differences, which the tests check.

Covered: batches whose rows do not divide among the devices (batch 6 -> padded to 8 with
weight-0 rows; a last partial batch), dropout, BatchNormalization's batch statistics and moving
statistics, activity regularizers, a validation set, ragged sequences with convolution and
causal attention, a list of 2 devices, and ``("CPU", "All")``.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netgraph as ng
from harness import run_on_cpu_devices

CHILD = textwrap.dedent(
    """
    import json
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    import numpy as np
    import netgraph as ng
    from netgraph.train import Placement
    from netgraph.train_data import Batch

    def arrays(net):
        out = {}
        def walk(layer, path):
            for name, value in layer.arrays.items():
                out["/".join(path + (name,))] = np.asarray(value)
            for child, sub in layer.children().items():
                walk(sub, path + (child,))
        walk(net, ())
        return out

    def weight_diff(a, b):
        A, B = arrays(a), arrays(b)
        assert A.keys() == B.keys()
        return max(float(np.max(np.abs(A[k] - B[k]))) for k in A if A[k].size)

    def history_diff(a, b):
        keys = [k for k in a.history if k not in ("seconds", "compilations", "epoch")]
        assert keys == [k for k in b.history if k not in ("seconds", "compilations", "epoch")]
        return max(abs(u - v) for k in keys for u, v in zip(a.history[k], b.history[k]))

    report = {"devices": len(jax.devices("cpu")), "errors": {}}

    def check(name, fn):
        try:
            report[name] = fn()
        except Exception as err:  # recorded, so that one failure does not hide the others
            report["errors"][name] = f"{type(err).__name__}: {str(err)[:400]}"

    def compare(net, data, devices, **kw):
        one = ng.NetTrain(net, data, target_device=("CPU", 1), **kw)
        many = ng.NetTrain(net, data, target_device=devices, **kw)
        moved = weight_diff(one.final_net, ng.NetInitialize(net, seed=kw["seed"]))  # the start
        return {"weights": weight_diff(one.final_net, many.final_net),
                "history": history_diff(one, many), "steps": len(one.batch_losses),
                "trained": moved, "keys": sorted(many.history)}

    rng = np.random.default_rng(0)
    x = rng.standard_normal((45, 4)).astype(np.float32)
    y = np.argmax(x[:, :3], 1).astype(np.int32)
    mlp = ng.NetChain({"h": ng.LinearLayer(16), "bn": ng.BatchNormalizationLayer(), "act": "Tanh",
                       "drop": ng.DropoutLayer(0.2), "o": ng.LinearLayer(3), "p": ng.SoftmaxLayer()},
                      Input=4)
    mlp_options = dict(max_epochs=3, batch_size=6, seed=1, learning_rate=1e-2,
                       validation_set={"Input": x[:10], "Target": y[:10]},
                       activity_regularizers={"h": ("l2", 1e-3)}, regularizers={"o": "l2"})
    check("mlp", lambda: compare(mlp, {"Input": x, "Target": y}, ("CPU", 4), **mlp_options))
    check("mlp_two", lambda: compare(mlp, {"Input": x, "Target": y}, jax.devices("cpu")[:2], **mlp_options))
    check("mlp_all", lambda: compare(mlp, {"Input": x, "Target": y}, ("CPU", "All"), **mlp_options))

    V = "Varying"
    lengths = [1, 2] + [int(n) for n in rng.integers(1, 30, 35)]
    xs = [rng.integers(0, 8, n).astype(np.int32) for n in lengths]
    ys = np.array([int((s == 3).any()) for s in xs], np.int32)
    attend = ng.NetGraph({"att": ng.AttentionLayer("Dot", mask="Causal", dropout=0.1)},
                         [(ng.NetPort("Input"), ng.NetPort("att", "Query")),
                          (ng.NetPort("Input"), ng.NetPort("att", "Key")),
                          (ng.NetPort("Input"), ng.NetPort("att", "Value"))])
    seq = ng.NetChain({"emb": ng.EmbeddingLayer(8, 8),
                       "conv": ng.ConvolutionLayer(8, 3, padding="Same", interleaving=True),
                       "att": attend, "pool": ng.AggregationLayer("Mean", 0), "o": ng.LinearLayer(2),
                       "p": ng.SoftmaxLayer()}, Input=(V, ng.Restricted("Integer", 8)))
    check("ragged", lambda: compare(seq, {"Input": xs, "Target": ys}, ("CPU", 4), max_epochs=3,
                                    batch_size=8, seed=2, learning_rate=1e-2,
                                    activity_regularizers={"conv": ("l1", 1e-3)}))

    def shards():
        placement = Placement(jax.devices("cpu")[:4])
        batch = placement.batch(Batch({"Input": np.arange(18, dtype=np.float32).reshape(6, 3)}, {},
                                      np.ones(6, np.float32), 6))
        return {"shard_rows": list(batch["weights"].sharding.shard_shape(batch["weights"].shape)),
                "weights": np.asarray(batch["weights"]).tolist(),
                "padding_repeats_row0": bool(np.array_equal(np.asarray(batch["inputs"]["Input"])[6:],
                                                            np.zeros((2, 3)) + np.arange(3)))}
    check("shards", shards)
    print("RESULT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the child once; its JSON summary."""
    result = run_on_cpu_devices(CHILD)
    assert result["devices"] == 4, result
    return result


@pytest.mark.parametrize("key", ["mlp", "mlp_two", "mlp_all", "ragged"])
def test_data_parallel_training_equals_one_device(report: dict, key: str) -> None:
    """Several steps (3 epochs) from the same seed: weights to 1e-5, the history (losses,
    metrics, regularization, validation) to 1e-5; and training did move the weights."""
    assert key not in report["errors"], report["errors"][key]
    run = report[key]
    assert run["steps"] >= 15, run
    assert run["trained"] > 1e-3, run
    assert run["weights"] <= 1e-5, run
    assert run["history"] <= 1e-5, run


def test_mlp_history_has_the_regularization_terms(report: dict) -> None:
    assert "mlp" not in report["errors"], report["errors"].get("mlp")
    for key in ("regularization", "activity_regularization", "validation_loss", "accuracy"):
        assert key in report["mlp"]["keys"]


def test_batch_rows_are_sharded_and_padded_with_weight_zero_rows(report: dict) -> None:
    """6 rows on 4 devices: padded to 8 (2 rows per device), the padding repeats row 0 and
    weighs 0."""
    assert "shards" not in report["errors"], report["errors"].get("shards")
    assert report["shards"] == {"shard_rows": [2], "weights": [1, 1, 1, 1, 1, 1, 0, 0],
                                "padding_repeats_row0": True}


def test_bad_target_device_is_a_clear_error() -> None:
    x = np.zeros((4, 2), np.float32)
    net = ng.NetChain([ng.LinearLayer(1)], Input=2)
    with pytest.raises(ng.InputDataError, match="target_device"):
        ng.NetTrain(net, {"Input": x, "Target": x[:, :1]}, target_device="TPU", max_epochs=1)
    with pytest.raises(ng.InputDataError, match="device"):
        ng.NetTrain(net, {"Input": x, "Target": x[:, :1]}, target_device=("CPU", 999), max_epochs=1)
