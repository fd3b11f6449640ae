"""An LSTM classifier of variable-length sequences, trained with NetTrain.

Each example is a sequence of 2-vectors of its own length (4 to 16 steps): a noisy walk that
drifts up or down. The net reads the whole sequence with a LongShortTermMemoryLayer, takes its
state at the *true* last step (SequenceLastLayer: padding never enters), and classifies the
drift. The sequences go in as a plain list of arrays of different lengths; NetTrain pads each
batch to a bucket length and the recurrence ignores the padding.

Run: python examples/lstm_classifier.py     (a few seconds on 2 CPU cores)
"""
import numpy as np

import netgraph as ng

rng = np.random.default_rng(0)


def make(count):
    """Sequences (length 4..16, 2 features) drifting up (class 1) or down (class 0)."""
    labels = rng.integers(0, 2, count).astype(np.int32)
    seqs = []
    for label in labels:
        steps = int(rng.integers(4, 17))
        drift = (0.3 if label else -0.3) * np.arange(1, steps + 1)[:, None]
        seqs.append((drift + rng.standard_normal((steps, 2))).astype(np.float32))
    return {"Input": seqs, "Target": labels}


model = ng.NetChain(
    {"lstm": ng.LongShortTermMemoryLayer(8),
     "last": ng.SequenceLastLayer(),
     "out": ng.LinearLayer(2),
     "probs": ng.SoftmaxLayer()},
    Input=("Varying", 2))

train, test = make(256), make(200)
result = ng.NetTrain(model, train, max_epochs=4, batch_size=32, learning_rate=1e-2)
print(result.summary)

probs = np.asarray(result.net(test["Input"]))
accuracy = float(np.mean(probs.argmax(axis=1) == test["Target"]))
print(f"test accuracy: {accuracy:.1%}")
for seq, p in zip(test["Input"][:3], probs[:3]):
    print(f"{len(seq):2d} steps, last value {seq[-1].round(2)} -> P(up) = {p[1]:.3f}")
