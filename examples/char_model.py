"""A character-level model with a "Characters" encoder and decoder: learning a Caesar cipher.

``NetEncoder("Characters", ALPHABET)`` turns a string into the sequence of its character
indices (a {"Varying"} port of Integer in [0, 27)), and ``NetDecoder("Characters", ALPHABET)``
turns the net's sequence of probability vectors back into a string (the most probable
character at each position). So the net maps strings to strings: ``net("hello world")``.

The net (an embedding, a convolution that sees each character's neighbours, a per-position
softmax) learns to shift every letter by one ("a" -> "b", ..., "z" -> "a"; a space stays a
space). NetTrain takes the strings as they are: the inputs through the encoder, the targets
through the decoder read backwards (each target string becomes its character indices, for
the automatic CrossEntropyLossLayer["Index"] over the sequence). Examples of different
lengths are batched and padded like any "Varying" data; padding never enters the loss.

Run: python examples/char_model.py
"""
import string

import numpy as np

import netgraph as ng

ALPHABET = string.ascii_lowercase + " "


def shifted(text: str) -> str:
    return "".join(c if c == " " else ALPHABET[(ALPHABET.index(c) + 1) % 26] for c in text)


def words(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(ALPHABET), size=rng.integers(3, 9))) for _ in range(count)]


model = ng.NetChain(
    [ng.EmbeddingLayer(16), ng.ConvolutionLayer(32, 3, padding="Same", interleaving=True),
     ng.ElementwiseLayer("Ramp"), ng.NetMapOperator(ng.LinearLayer(len(ALPHABET))), ng.SoftmaxLayer()],
    Input=ng.NetEncoder("Characters", ALPHABET),
    Output=ng.NetDecoder("Characters", ALPHABET))
print(model)

texts = words(768, seed=0)
result = ng.NetTrain(model, {"Input": texts, "Target": [shifted(t) for t in texts]},
                     max_epochs=8, batch_size=64, learning_rate=3e-2, seed=0)
net = result.net
print(f"\ntraining loss {result.history['loss'][0]:.3f} -> {result.history['loss'][-1]:.3f}")

for text in ("hello world", "netgraph", "xyz"):
    print(f"{text!r} -> {net(text)!r}   (expected {shifted(text)!r})")

test = words(200, seed=1)
correct = np.mean([a == shifted(t) for a, t in zip(net(test), test)])
print(f"held-out strings decoded exactly right: {correct:.2f}")
assert correct > 0.9, correct

# unknown characters are an error unless the encoder maps them to an "unknown" index
try:
    net("Hello!")
except ng.InputDataError as err:
    print("\nInputDataError:", str(err).splitlines()[0])
