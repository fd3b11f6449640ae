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
* **Text similarity with CNN + attention** (seed 002, the Keras ``Attention`` example, built
  by ``text_similarity_net`` of ``examples/text_similarity.py``): two ragged token sequences,
  one embedding and one convolution shared by both (tied with ``NetArray``), the query
  attending to the value, both pooled, catenated, an MLP head with a sigmoid; synthetic pairs
  labelled 1 when both texts come from the same topic (each topic has its own 25 of the 100
  tokens, 30 % of a text's tokens are random). Validation accuracy >= 90 %.
* **A tiny causal Transformer**: token + position embeddings, ``ng.keras.MultiHeadAttention``
  with a causal mask, residual connections, a LayerNorm built from layers (mean, subtract,
  square, mean, 1/sqrt, times, in a NetMapOperator over positions) and a feed-forward block,
  on ragged sequences (lengths 2..16) of random tokens with the rule "the token at t is the
  previous token + 1 (mod 12)" (0 at t = 0). A position's answer depends only on the token
  before it, which only the causal attention can see (everything else is per position), so a
  net without working attention stays near ln 12 = 2.48; the test asks for a held-out loss
  below 0.05 and token accuracy >= 99 %.
"""
from __future__ import annotations

import pathlib
import runpy

import jax
import numpy as np
import pytest

import netgraph as ng

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
text_similarity_net = runpy.run_path(str(EXAMPLES / "text_similarity.py"))["text_similarity_net"]  # seed 002


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


def test_text_similarity_cnn_attention():
    vocab, topics, embed, filters = 100, 4, 16, 32
    tokens = ("Varying", ng.Restricted("Integer", vocab))

    def text(rng, topic):
        n = int(rng.integers(6, 17))
        own = topic * (vocab // topics) + rng.integers(0, vocab // topics, n)
        return np.where(rng.random(n) < 0.7, own, rng.integers(0, vocab, n)).astype(np.int32)

    def pairs(count, seed):
        rng = np.random.default_rng(seed)
        query, value, same = [], [], []
        for i in range(count):
            a = int(rng.integers(0, topics))
            b = a if i % 2 else int((a + rng.integers(1, topics)) % topics)
            query.append(text(rng, a))
            value.append(text(rng, b))
            same.append([float(a == b)])
        return {"Query": query, "Value": value, "Target": np.array(same, np.float32)}

    model = text_similarity_net(tokens, embedding_size=embed, filters=filters,
                                head=ng.NetChain([ng.LinearLayer(32), "Ramp", ng.LinearLayer(1),
                                                  ng.ElementwiseLayer("LogisticSigmoid")]))
    held_out = pairs(400, 1)
    result = ng.NetTrain(model, pairs(3000, 0), loss=ng.CrossEntropyLossLayer("Binary"), validation_set=held_out,
                         max_epochs=15, batch_size=32, learning_rate=1e-2)
    assert result.history["compilations"][-1] == 0
    predicted = np.concatenate(result.net({"Query": held_out["Query"], "Value": held_out["Value"]}))
    accuracy = float(((predicted > 0.5) == (held_out["Target"][:, 0] > 0.5)).mean())
    assert accuracy >= 0.9, accuracy
    assert result.history["validation_accuracy"][result.best_epoch] == pytest.approx(accuracy, abs=1e-6)
    print(f"text similarity: held-out accuracy {accuracy:.2%}")


def test_tiny_causal_transformer_learns_a_next_token_rule():
    vocab, width, longest = 12, 32, 16

    def layer_norm():
        """LayerNorm of one position's features (no learned scale or offset), from layers."""
        return ng.NetGraph(
            {"mean": ng.AggregationLayer("Mean", 0), "spread": ng.ReplicateLayer(width),
             "center": ng.ThreadingLayer("Subtract"), "square": ng.ElementwiseLayer("Square"),
             "variance": ng.AggregationLayer("Mean", 0),
             "inverse": ng.ElementwiseLayer(lambda v: jax.lax.rsqrt(v + 1e-5)),
             "spread_inverse": ng.ReplicateLayer(width), "scale": ng.ThreadingLayer("Times")},
            [(ng.NetPort("Input"), "mean", "spread"), ([ng.NetPort("Input"), "spread"], "center"),
             ("center", "square", "variance", "inverse", "spread_inverse"),
             (["center", "spread_inverse"], "scale", ng.NetPort("Output"))], Input=width)

    def sequences(count, seed):
        rng = np.random.default_rng(seed)
        xs, positions, ys = [], [], []
        for _ in range(count):
            n = int(rng.integers(2, longest + 1))
            x = rng.integers(0, vocab, n).astype(np.int32)
            xs.append(x)
            positions.append(np.arange(n, dtype=np.int32))
            ys.append(np.concatenate([[0], (x[:-1] + 1) % vocab]).astype(np.int32))
        return {"Input": xs, "Positions": positions, "Target": ys}

    per_position = ng.NetMapOperator
    net = ng.NetGraph(
        {"tokens": ng.EmbeddingLayer(width, vocab), "positions": ng.EmbeddingLayer(width, longest),
         "embed": ng.ThreadingLayer("Plus"),
         "attention": ng.keras.MultiHeadAttention(num_heads=2, key_dim=16, use_causal_mask=True, query_dim=width),
         "residual1": ng.ThreadingLayer("Plus"), "norm1": per_position(layer_norm()),
         "ffn": per_position(ng.NetChain([ng.LinearLayer(64), "Ramp", ng.LinearLayer(width)])),
         "residual2": ng.ThreadingLayer("Plus"), "norm2": per_position(layer_norm()),
         "read": per_position(ng.NetChain([ng.LinearLayer(vocab), ng.SoftmaxLayer()]))},
        [(ng.NetPort("Input"), "tokens"), (ng.NetPort("Positions"), "positions"), (["tokens", "positions"], "embed"),
         ("embed", ng.NetPort("attention", "Query")), ("embed", ng.NetPort("attention", "Key")),
         ("embed", ng.NetPort("attention", "Value")), (["embed", "attention"], "residual1", "norm1"),
         ("norm1", "ffn"), (["norm1", "ffn"], "residual2", "norm2", "read")],
        Input=("Varying", ng.Restricted("Integer", vocab)), Positions=("Varying", ng.Restricted("Integer", longest)))
    held_out = sequences(300, 1)
    result = ng.NetTrain(net, sequences(3000, 0), validation_set=held_out, max_epochs=10, batch_size=32,
                         learning_rate=3e-3)
    loss = result.history["validation_loss"][result.best_epoch]
    assert loss < 0.05, result.history["validation_loss"]
    predicted = result.net({"Input": held_out["Input"], "Positions": held_out["Positions"]})
    hits = np.concatenate([p.argmax(axis=-1) == y for p, y in zip(predicted, held_out["Target"])])
    assert hits.mean() >= 0.99, hits.mean()
    print(f"causal transformer: held-out loss {loss:.4f}, token accuracy {hits.mean():.2%}")
