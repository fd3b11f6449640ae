"""Text similarity with a CNN + attention, as one declarative NetGraph.

This is the CNN + Attention example from the Keras ``Attention`` documentation:

    query_input = Input(shape=(None,), dtype="int32"); value_input = ... (the same)
    token_embedding = Embedding(input_dim=1000, output_dim=64)      # shared by both inputs
    cnn_layer = Conv1D(filters=100, kernel_size=4, padding="same")  # shared by both inputs
    query_seq_encoding = cnn_layer(token_embedding(query_input))
    value_seq_encoding = cnn_layer(token_embedding(value_input))
    query_value_attention_seq = Attention()([query_seq_encoding, value_seq_encoding])
    query_encoding = GlobalAveragePooling1D()(query_seq_encoding)
    query_value_attention = GlobalAveragePooling1D()(query_value_attention_seq)
    input_layer = Concatenate()([query_encoding, query_value_attention])  # then a DNN head

Sharing: in Keras one layer object is called twice. A NetGraph node has exactly one input
port per name, so one node cannot embed both the query and the value tokens (and the two
texts have different lengths, so NetMapOperator over a stacked pair does not fit either).
So there are two EmbeddingLayer nodes and two ConvolutionLayer nodes whose arrays are TIED
with ``ng.NetArray(name)`` (Wolfram's NetSharedArray): one array in the params (under
"SharedArrays"), initialised once, and in training the gradients of both uses add up. (Without
NetArray you would copy the arrays across with NetReplacePart after NetInitialize, and they
would drift apart in training unless you add up the two gradients yourself.)

The net is declared once, by :func:`text_similarity_net` (its sizes and its head are
arguments): ``examples/text_similarity_strings.py`` builds a small one over strings, and
``tests/netgraph/test_train_learning.py`` and ``benchmarks/bench_train.py`` train it.
:func:`keras_text_similarity` is the Keras model of the documentation holding the same arrays.

Run: python examples/text_similarity.py
"""
import os
from typing import Any

import jax
import numpy as np

import netgraph as ng

VOCAB, EMBED, FILTERS, WIDTH = 1000, 64, 100, 4   # the sizes of the Keras example
TOKENS = ("Varying", ng.Restricted("Integer", VOCAB))  # a sequence of ids in [0, 1000)


def text_similarity_net(tokens: Any = TOKENS, *, embedding_size: int = EMBED, filters: int = FILTERS,
                        width: int = WIDTH, head: Any = None, attention_weights: bool = False,
                        similarity: Any = None) -> ng.NetGraph:
    """Seed 002's CNN + attention model (uninitialised): inputs "Query" and "Value", output
    "Similarity".

    Args:
        tokens: the form of both texts: a varying sequence of ids, ``("Varying",
            ng.Restricted("Integer", n))``, or a ``ng.NetEncoder("Tokens", ...)``; the size
            of the embedding table is inferred from it.
        embedding_size: the width of the shared token embedding.
        filters: the number of filters of the shared convolution ("Same" padding).
        width: the width of its kernel.
        head: the net from the two catenated poolings (2 * filters) to "Similarity"; by
            default Keras's ``Dense(1, activation="sigmoid")``.
        attention_weights: also give the attention layer its "AttentionWeights" output, kept
            inside the graph (read it with ``ng.NetPort("attention", "AttentionWeights")``).
        similarity: the form of the "Similarity" port (a ``ng.NetDecoder``, say); by default
            inferred from the head.
    """
    def embedding() -> ng.EmbeddingLayer:   # one table: both nodes hold the same NetArray
        return ng.EmbeddingLayer(embedding_size, Weights=ng.NetArray("token_embedding"))

    def cnn() -> ng.ConvolutionLayer:       # one convolution, likewise
        return ng.ConvolutionLayer(filters, width, padding="Same", interleaving=True,
                                   Weights=ng.NetArray("cnn_weights"), Biases=ng.NetArray("cnn_biases"))

    if head is None:
        head = ng.NetChain([ng.LinearLayer(1), ng.ElementwiseLayer("LogisticSigmoid")])
    kept_inside = [(ng.NetPort("attention", "AttentionWeights"), None)] if attention_weights else []
    ports = {"Query": tokens, "Value": tokens}
    if similarity is not None:
        ports["Similarity"] = similarity
    return ng.NetGraph(
        {"embed_query": embedding(), "embed_value": embedding(),
         "cnn_query": cnn(), "cnn_value": cnn(),
         "attention": ng.AttentionLayer("Dot", attention_weights=attention_weights),
         "pool_query": ng.AggregationLayer("Mean", 0),   # GlobalAveragePooling1D
         "pool_attention": ng.AggregationLayer("Mean", 0),
         "catenate": ng.CatenateLayer(),
         "head": head},
        [(ng.NetPort("Query"), "embed_query", "cnn_query"),
         (ng.NetPort("Value"), "embed_value", "cnn_value"),
         ("cnn_query", ng.NetPort("attention", "Query")),
         ("cnn_value", ng.NetPort("attention", "Key")),  # Key = Value = the value encoding
         ("cnn_value", ng.NetPort("attention", "Value")),
         *kept_inside,
         ("cnn_query", "pool_query"),
         (ng.NetPort("attention", "Output"), "pool_attention"),
         (["pool_query", "pool_attention"], "catenate", "head", ng.NetPort("Similarity"))],
        **ports)


def keras_text_similarity(net: ng.NetGraph) -> Any:
    """The Keras model of the ``Attention`` documentation (JAX backend), holding the arrays
    of ``net``: an initialised :func:`text_similarity_net` with the default head."""
    import keras

    vocab, embed = ng.NetExtract(net, ng.NetArray("token_embedding")).shape
    filters, _, width = ng.NetExtract(net, ng.NetArray("cnn_weights")).shape   # (out, in, width)
    q_in = keras.Input(shape=(None,), dtype="int32")
    v_in = keras.Input(shape=(None,), dtype="int32")
    embedding = keras.layers.Embedding(vocab, embed)
    cnn = keras.layers.Conv1D(filters, width, padding="same")
    q_enc, v_enc = cnn(embedding(q_in)), cnn(embedding(v_in))
    attention = keras.layers.Attention()([q_enc, v_enc])
    merged = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(q_enc),
                                         keras.layers.GlobalAveragePooling1D()(attention)])
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model([q_in, v_in], dense(merged))
    embedding.set_weights([ng.NetExtract(net, ng.NetArray("token_embedding"))])
    cnn.set_weights([ng.NetExtract(net, ng.NetArray("cnn_weights")).transpose(2, 1, 0),  # (width, in, out)
                     ng.NetExtract(net, ng.NetArray("cnn_biases"))])
    dense.set_weights([ng.NetExtract(net, ("head", "0", "Weights")).T,
                       ng.NetExtract(net, ("head", "0", "Biases"))])
    return model


def main() -> None:
    model = text_similarity_net()
    print("The model, with every inferred shape (the two texts have independent lengths):")
    print(model)

    # --- initialise: each shared array is drawn once and used by both of its layers
    net = ng.NetInitialize(model, seed=0)
    for a, b in ((("embed_query", "Weights"), ("embed_value", "Weights")),
                 (("cnn_query", "Weights"), ("cnn_value", "Weights"))):
        assert np.array_equal(ng.NetExtract(net, a), ng.NetExtract(net, b))
    params = ng.params_of(net)
    print("\nshared arrays, stored once in the params:",
          {k: v.shape for k, v in params["SharedArrays"].items()})
    distinct = sum(np.size(a) for a in jax.tree_util.tree_leaves(params))
    print(f"parameters: {distinct:,} (each shared array counted once)")
    print("conv kernel", ng.NetExtract(net, ng.NetArray("cnn_weights")).shape, "(out, in, width)")

    # --- evaluate on two token sequences of different lengths
    rng = np.random.default_rng(0)
    query = rng.integers(0, VOCAB, size=7)    # 7 tokens
    value = rng.integers(0, VOCAB, size=12)   # 12 tokens
    similarity = net({"Query": query, "Value": value})
    print(f"\nquery {query.tolist()}\nvalue {value.tolist()}\nsimilarity: {similarity}")
    print("the same pair, swapped:", net({"Query": value, "Value": query}))

    # Several pairs of different lengths at once: lists of examples (threaded evaluation).
    pairs = net({"Query": [query, query[:5], value], "Value": [value, value[:3], query]})
    print("\nthree pairs (lengths 7/12, 5/3, 12/7):", np.round(np.concatenate(pairs), 6))
    np.testing.assert_allclose(pairs[0], similarity, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pairs[1], net({"Query": query[:5], "Value": value[:3]}), rtol=1e-5, atol=1e-6)
    print("each equals the pair evaluated on its own")

    # --- optional: the same model in Keras (JAX backend), with the same arrays
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
    except Exception as err:  # keras not installed, or another backend unavailable
        print(f"\n(Keras cross-check skipped: {type(err).__name__}: {err})")
        return
    k_sim = np.asarray(keras_text_similarity(net)([query[None], value[None]]))[0]
    print(f"\nKeras {keras.__version__} (JAX backend), same arrays: {k_sim}")
    np.testing.assert_allclose(k_sim, similarity, rtol=1e-4, atol=1e-5)
    print("netgraph and Keras agree")


if __name__ == "__main__":
    main()
