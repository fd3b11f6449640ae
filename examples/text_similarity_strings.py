"""Seed 002's text-similarity model (CNN + attention), taking two *strings* and answering
with a class label.

The model is ``text_similarity_net`` of ``examples/text_similarity.py`` (Keras's ``Attention``
documentation example: a shared token embedding and a shared Conv1D over the query and the
value text, dot-product attention, global average pooling), smaller, with a two-class head and
Wolfram-style coders on its ports:

* ``NetEncoder("Tokens", vocabulary, unknown="<unk>")`` on both inputs: a string is split on
  whitespace and each token becomes its index (unknown words share the "<unk>" index), so
  ``net({"Query": "the cat sat", "Value": "a dog ran"})`` takes plain text, and a list of
  strings is a list of examples of different lengths (batched and padded by the evaluator);
* ``NetDecoder("Class", ["different", "same"])`` on the "Similarity" output: ``net(x)``
  returns a label, ``net(x, "Probabilities")`` the probability of each.

NetTrain reads the same forms: strings for the inputs and labels for the target. The task
(generated here): do the two texts talk about the same topic (animals or vehicles)?
Finally ``ng.NetPort("attention", "AttentionWeights")`` reads the attention weights of one
pair, from the same compiled evaluation, without changing the net.

Run: python examples/text_similarity_strings.py
"""
import numpy as np

import netgraph as ng
from text_similarity import text_similarity_net   # examples/text_similarity.py: the model

TOPICS = {"animals": "cat dog horse cow sheep bird fish mouse".split(),
          "vehicles": "car bus train truck bike boat plane tram".split()}
FILLER = "the a my your big small red old".split()
VOCABULARY = sorted({w for words in TOPICS.values() for w in words} | set(FILLER))
EMBED, FILTERS = 16, 16


def text(rng: np.random.Generator, topic: str) -> str:
    words = [rng.choice(TOPICS[topic]) if rng.random() < 0.6 else rng.choice(FILLER)
             for _ in range(rng.integers(3, 5))]   # 3 or 4 words: one padded length
    words[rng.integers(len(words))] = rng.choice(TOPICS[topic])  # at least one topic word
    return " ".join(words)


def pairs(count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    queries, values, labels = [], [], []
    for _ in range(count):
        a, b = rng.choice(list(TOPICS), size=2)
        queries.append(text(rng, a))
        values.append(text(rng, b))
        labels.append("same" if a == b else "different")
    return {"Query": queries, "Value": values, "Target": labels}


tokens = ng.NetEncoder("Tokens", VOCABULARY, unknown="<unk>")
labels = ng.NetDecoder("Class", ["different", "same"])
model = text_similarity_net(
    tokens, embedding_size=EMBED, filters=FILTERS, width=3, attention_weights=True, similarity=labels,
    head=ng.NetChain([ng.LinearLayer(16), ng.ElementwiseLayer("Tanh"), ng.LinearLayer(2), ng.SoftmaxLayer()]))
print(model)   # the encoders and the decoder are listed under the ports line

result = ng.NetTrain(model, pairs(512, seed=0), validation_set=pairs(128, seed=1),
                     max_epochs=20, batch_size=32, learning_rate=1e-2, seed=0)
net = result.net
print(f"\nvalidation accuracy: {result.history['validation_accuracy'][-1]:.2f}")

pair = {"Query": "the red cat and cow", "Value": "my old dog"}   # "and" is an unknown token
print(f"\n{pair} -> {net(pair)!r}")
print("probabilities:", {k: round(v, 3) for k, v in net(pair, "Probabilities").items()})
print("three pairs:", net({"Query": ["a bus", "the big train", "a bird"],
                           "Value": ["my car", "the cow", "a small fish"]}))

weights = net(pair, ng.NetPort("attention", "AttentionWeights"))   # query x value tokens
print(f"\nattention weights of the pair, {weights.shape[0]} query x {weights.shape[1]} value tokens:")
print(np.round(weights, 2))
assert np.allclose(weights.sum(axis=1), 1, atol=1e-5)

test = pairs(128, seed=2)
guesses = net({"Query": test["Query"], "Value": test["Value"]})
accuracy = np.mean([g == t for g, t in zip(guesses, test["Target"])])
print(f"held-out accuracy: {accuracy:.2f}")
assert accuracy > 0.75, accuracy
