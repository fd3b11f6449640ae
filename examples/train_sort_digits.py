"""Sorting lists of digits with an attention net, trained by NetTrain (Wolfram's example).

Each output position has a learned query vector; it attends over the digits' embeddings
(keys and values), and a small per-position net reads the attended vector beside the query
and gives a softmax over the 10 digits. ``loss="Automatic"`` sees a softmax over classes and
attaches ``CrossEntropyLossLayer("Index")`` with a "Target" input of shape (6,) integers.

Run: python examples/train_sort_digits.py     (about 10 s on 2 CPU cores)
"""
import numpy as np

import netgraph as ng

N = 6  # digits per list


def lists(count, seed):
    x = np.random.default_rng(seed).integers(0, 10, (count, N)).astype(np.int32)
    return {"Input": x, "Target": np.sort(x, axis=1)}


net = ng.NetGraph(
    {"embed": ng.EmbeddingLayer(32, 10),
     "queries": ng.NetArrayLayer(Output=(N, 32)),
     "attend": ng.AttentionLayer("Dot"),
     "join": ng.CatenateLayer(-1),
     "read": ng.NetMapOperator(ng.NetChain([ng.LinearLayer(128), "Ramp", ng.LinearLayer(10), ng.SoftmaxLayer()]))},
    [(ng.NetPort("Input"), "embed", ng.NetPort("attend", "Key")), ("embed", ng.NetPort("attend", "Value")),
     ("queries", ng.NetPort("attend", "Query")), (["attend", "queries"], "join", "read")],
    Input=(N, ng.Restricted("Integer", 10)))

result = ng.NetTrain(net, lists(6000, 0), validation_set=lists(500, 1), max_epochs=12, batch_size=64,
                     learning_rate=3e-3, progress=True)
print(f"validation token accuracy: {result.history['validation_accuracy'][result.best_epoch]:.2%}")
result.plot("sort_digits_loss.png")

sorter = result.net
for digits in ([3, 1, 4, 1, 5, 9], [9, 8, 7, 0, 0, 2]):
    print(digits, "->", sorter(np.array(digits, np.int32)).argmax(axis=-1).tolist())
