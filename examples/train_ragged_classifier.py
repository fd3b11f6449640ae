"""Training on ragged sequences with NetTrain: no padding by hand, no optax boilerplate.

The sequence classifier of ``examples/train_optax.py`` (embedding -> convolution -> attention
pooling with a learned query -> linear -> softmax) learns whether token 7 occurs in a token
list of length 1..40. The lists go in as they are; NetTrain sorts them by length, pads each
batch to a bucket length (as threaded evaluation does) and compiles once per bucket shape
for the whole run. The embedding is frozen for the first run (``learning_rate_multipliers``
0: its arrays stay bit-identical), training continues from a checkpoint, and early stopping
watches the validation loss.

Run: python examples/train_ragged_classifier.py     (about 30 s on 2 CPU cores)
"""
import tempfile

import numpy as np

import netgraph as ng

VOCAB = 10
rng = np.random.default_rng(0)


def make(count):
    tokens = [rng.integers(0, VOCAB, int(rng.integers(1, 41))).astype(np.int32) for _ in range(count)]
    return {"Tokens": tokens, "Target": np.array([int((t == 7).any()) for t in tokens], np.int32)}


model = ng.NetGraph(
    {"embed": ng.EmbeddingLayer(16, VOCAB),
     "conv": ng.ConvolutionLayer(16, 3, padding="Same", interleaving=True),
     "relu": ng.ElementwiseLayer("Ramp"),
     "query": ng.NetArrayLayer(Output=(1, 16)),
     "pool": ng.AttentionLayer("Dot"),
     "flat": ng.FlattenLayer(),
     "out": ng.LinearLayer(2),
     "probs": ng.SoftmaxLayer()},
    [(ng.NetPort("Tokens"), "embed", "conv", "relu", ng.NetPort("pool", "Key")),
     ("relu", ng.NetPort("pool", "Value")),
     ("query", ng.NetPort("pool", "Query")),
     ("pool", "flat", "out", "probs")],
    Tokens=("Varying", ng.Restricted("Integer", VOCAB)))

train, validation = make(2000), make(300)
with tempfile.TemporaryDirectory() as checkpoints:
    first = ng.NetTrain(model, train, validation_set=validation, max_epochs=3, learning_rate=1e-2,
                        learning_rate_multipliers={"embed": 0.0}, checkpoint=checkpoints)
    print(first.summary)
    print("compilations per epoch:", first.history["compilations"])
    # continue the same run to 10 epochs (same seed and data: as if never interrupted)
    result = ng.NetTrain(model, train, validation_set=validation, max_epochs=10, learning_rate=1e-2,
                         learning_rate_multipliers={"embed": 0.0}, checkpoint=checkpoints,
                         resume=checkpoints, patience=3, progress=True)

frozen = np.array_equal(ng.NetExtract(first.net, ("embed", "Weights")),
                        ng.NetExtract(ng.NetInitialize(model, seed=0), ("embed", "Weights")))
print("embedding unchanged by training:", frozen)
print("validation accuracy per epoch:", [f"{a:.1%}" for a in result.history["validation_accuracy"]])
test = [np.array([1, 2, 7, 3]), np.array([4, 5, 6]), np.array([7]), np.array([0, 1, 2, 3, 4, 5, 6, 8, 9])]
for seq, probs in zip(test, result.net({"Tokens": test})):
    print(f"{seq} -> P(contains 7) = {probs[1]:.3f}")
