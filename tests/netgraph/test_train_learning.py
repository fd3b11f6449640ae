"""Nets that really learn, on data the tests generate; each asserts a held-out threshold.

* **Sorting digits with attention** (Wolfram's AttentionLayer application): lists of 6
  digits; the queries are one learned vector per output position, the keys and values the
  digits' embeddings; a per-position MLP reads the attended vector and the query.
  Held-out token accuracy >= 95 %.
* **MLP regression** with BatchNormalization and l2 regularization on
  ``y = sin(x0) + x1 * x2``: held-out mean absolute error below 0.15 (the targets' own
  mean absolute deviation is about 0.8).
* **Ragged sequence classifier**: token lists of lengths 1..60 labelled by whether a
  "trigger" token 3 is followed by token 7 somewhere; convolution + max pooling over the
  true length. Held-out accuracy >= 90 %.
"""
from __future__ import annotations

import numpy as np

import netgraph as ng


def test_sort_digits_with_attention():
    n = 6

    def lists(count, seed):
        x = np.random.default_rng(seed).integers(0, 10, (count, n)).astype(np.int32)
        return {"Input": x, "Target": np.sort(x, axis=1)}

    net = ng.NetGraph(
        {"embed": ng.EmbeddingLayer(32, 10),
         "queries": ng.NetArrayLayer(Output=(n, 32)),
         "attend": ng.AttentionLayer("Dot"),
         "join": ng.CatenateLayer(-1),
         "read": ng.NetMapOperator(ng.NetChain([ng.LinearLayer(128), "Ramp", ng.LinearLayer(10),
                                                ng.SoftmaxLayer()]))},
        [(ng.NetPort("Input"), "embed", ng.NetPort("attend", "Key")), ("embed", ng.NetPort("attend", "Value")),
         ("queries", ng.NetPort("attend", "Query")), (["attend", "queries"], "join", "read")],
        Input=(n, ng.Restricted("Integer", 10)))
    held_out = lists(500, 1)
    result = ng.NetTrain(net, lists(6000, 0), validation_set=held_out, max_epochs=12, batch_size=64,
                         learning_rate=3e-3)
    assert result.history["validation_accuracy"][result.best_epoch] >= 0.95
    predicted = result.net(held_out["Input"]).argmax(axis=-1)
    accuracy = float((predicted == held_out["Target"]).mean())
    assert accuracy >= 0.95, accuracy
    print(f"sort digits: held-out token accuracy {accuracy:.2%}")


def test_mlp_regression_with_batch_normalization_and_l2():
    def make(count, seed):
        x = np.random.default_rng(seed).uniform(-2, 2, (count, 3)).astype(np.float32)
        y = (np.sin(x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
        return {"Input": x, "Target": y}

    net = ng.NetChain({"h1": ng.LinearLayer(64), "bn": ng.BatchNormalizationLayer(), "a1": "Ramp",
                       "h2": ng.LinearLayer(64), "a2": "Ramp", "o": ng.LinearLayer(1)}, Input=3)
    held_out = make(500, 1)
    result = ng.NetTrain(net, make(4000, 0), validation_set=held_out, max_epochs=25, batch_size=64,
                         learning_rate=3e-3, regularizers={"h1": ("l2", 1e-4), "h2": ("l2", 1e-4)})
    error = float(np.mean(np.abs(result.net(held_out["Input"]) - held_out["Target"])))
    assert error < 0.15, error
    assert result.history["regularization"][-1] > 0
    assert not np.allclose(ng.NetExtract(result.net, ("bn", "MovingMean")), 0.0)
    print(f"MLP regression: held-out mean absolute error {error:.3f}")


def test_ragged_sequence_classifier():
    vocab = 10

    def make(count, seed):
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for i in range(count):
            x = rng.integers(0, vocab, int(rng.integers(1, 61)))
            x[x == 3] = rng.integers(0, vocab)  # remove stray triggers, then plant (or not) one
            x[x == 3] = 4
            label = i % 2
            if label and len(x) >= 2:
                at = int(rng.integers(0, len(x) - 1))
                x[at], x[at + 1] = 3, 7
            elif label:
                label = 0
            xs.append(x.astype(np.int32))
            ys.append(label)
        return {"Input": xs, "Target": np.array(ys, np.int32)}

    net = ng.NetChain([ng.EmbeddingLayer(16, vocab), ng.ConvolutionLayer(32, 2, interleaving=True),
                       "Ramp", ng.AggregationLayer("Max", 0), ng.LinearLayer(2), ng.SoftmaxLayer()],
                      Input=("Varying", ng.Restricted("Integer", vocab)))
    held_out = make(400, 1)
    result = ng.NetTrain(net, make(2000, 0), validation_set=held_out, max_epochs=8, batch_size=32,
                         learning_rate=1e-2)
    assert result.history["compilations"][-1] == 0
    predicted = np.array([p.argmax() for p in result.net(held_out["Input"])])
    accuracy = float((predicted == held_out["Target"]).mean())
    assert accuracy >= 0.9, accuracy
    print(f"ragged classifier: held-out accuracy {accuracy:.2%}")
