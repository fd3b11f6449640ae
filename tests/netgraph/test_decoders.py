"""NetDecoder: Class properties (Wolfram's class decoder), Boolean, Characters / Tokens argmax
decoding, errors, files, surgery, display, and decoded targets in NetTrain."""
from __future__ import annotations

import numpy as np
import pytest

import netgraph as ng

LABELS = ["cat", "dog", "bird"]


def classifier(decoder: ng.NetDecoder | None = None) -> ng.NetChain:
    return ng.NetInitialize(ng.NetChain(
        [ng.LinearLayer(3), ng.SoftmaxLayer()], Input=4,
        Output=decoder or ng.NetDecoder("Class", LABELS)), seed=0)


def probabilities(net: ng.NetChain, x: np.ndarray) -> np.ndarray:
    return ng.NetReplacePart(net, {"Output": None})(x)


X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)


def test_the_class_decoder_returns_labels():
    net = classifier()
    p = probabilities(net, X)
    assert net(X[0]) == LABELS[int(np.argmax(p[0]))]
    assert net(X) == [LABELS[i] for i in np.argmax(p, axis=1)]           # a batch: a list
    assert net(list(X[:2])) == [LABELS[i] for i in np.argmax(p[:2], axis=1)]  # a list of examples
    assert net(X[0], "Decision") == net(X[0])


def test_class_decoder_properties_follow_wolfram():
    net = classifier()
    p = probabilities(net, X[0]).astype(np.float64)
    order = np.argsort(-p, kind="stable")
    probs = net(X[0], "Probabilities")
    assert list(probs) == LABELS and np.allclose(list(probs.values()), p, rtol=1e-6)
    assert net(X[0], ("TopDecisions", 2)) == [LABELS[i] for i in order[:2]]
    assert net(X[0], "TopDecisions") == [LABELS[i] for i in order]
    top = net(X[0], ("TopProbabilities", 1))
    assert top[0][0] == LABELS[order[0]] and np.isclose(top[0][1], p[order[0]], rtol=1e-6)
    assert [label for label, _ in net(X[0], "TopProbabilities")] == [LABELS[i] for i in order if p[i] >= 0.01]
    assert np.isclose(net(X[0], "Entropy"), -np.sum(p * np.log(p)), rtol=1e-5)
    assert np.isclose(net(X[0], ("Probability", "dog")), p[1], rtol=1e-6)
    batch = net(X[:3], "Entropy")
    assert isinstance(batch, list) and len(batch) == 3
    assert net(X[0], "Output") == net(X[0])  # an output port by name


def test_bad_properties_are_clear_errors_before_evaluating():
    net = classifier()
    for prop in ("Probabilty", ("TopDecisions", 0), ("TopDecisions", "2"), ("Entropy", 2)):
        with pytest.raises(ng.SpecificationError, match="does not answer the property") as err:
            net(X[0], prop)
        assert '("TopDecisions", k)' in str(err.value)
    with pytest.raises(ng.InputDataError, match="'fish' is not one of its 3 classes"):
        net(X[0], ("Probability", "fish"))
    plain = ng.NetInitialize(ng.NetChain([ng.LinearLayer(3)], Input=4))
    with pytest.raises(ng.SpecificationError, match="has no NetDecoder"):
        plain(X[0], "Probabilities")


def test_the_boolean_decoder():
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(()), ng.ElementwiseLayer("LogisticSigmoid")],
                                       Input=4, Output=ng.NetDecoder("Boolean")), seed=0)
    p = ng.NetReplacePart(net, {"Output": None})(X).astype(np.float64)
    assert net(X) == [bool(v > 0.5) for v in p]
    assert np.isclose(net(X[0], "Probability"), p[0], rtol=1e-6)
    assert net(X[0], "Probabilities") == pytest.approx({True: p[0], False: 1 - p[0]}, rel=1e-6)
    assert np.isclose(net(X[0], "Entropy"), -(p[0] * np.log(p[0]) + (1 - p[0]) * np.log(1 - p[0])), rtol=1e-5)
    with pytest.raises(ng.SpecificationError, match="does not answer"):
        net(X[0], "TopProbabilities")


def test_characters_and_tokens_decoders_take_the_argmax_per_position():
    chars = "abc"
    net = ng.NetInitialize(ng.NetChain(
        [ng.EmbeddingLayer(8), ng.NetMapOperator(ng.LinearLayer(4)), ng.SoftmaxLayer()],
        Input=ng.NetEncoder("Characters", chars),
        Output=ng.NetDecoder("Characters", chars, unknown="?")), seed=1)
    raw = ng.NetReplacePart(net, {"Output": None})
    for text in ("abcab", "c", ""):
        expected = "".join((chars + "?")[i] for i in np.argmax(raw(text), axis=-1)) if text else ""
        assert net(text) == expected
    assert net(["ab", "cab"]) == [net("ab"), net("cab")]
    words = ng.NetDecoder("Tokens", ["hello", "world"])
    assert words.decode(np.array([[0.1, 0.9], [0.8, 0.2]])) == "world hello"


def test_a_decoder_on_a_port_of_the_wrong_shape():
    with pytest.raises(ng.ShapeMismatchError, match=r"expected 3 .*\n.*got +5") as err:
        ng.NetChain([ng.LinearLayer(5), ng.SoftmaxLayer()], Input=4, Output=ng.NetDecoder("Class", LABELS))
    message = str(err.value)
    assert "note: port \"Output\" carries NetDecoder[\"Class\", 3 labels: 'cat', 'dog', 'bird']" in message
    assert "number of classes" in message
    with pytest.raises(ng.ShapeMismatchError, match="ranks"):
        ng.NetChain([ng.LinearLayer(3)], Input=4, Output=ng.NetDecoder("Characters", "abc"))
    with pytest.raises(ng.SpecificationError, match='port "Input" is an input port'):
        ng.NetChain([ng.LinearLayer(3)], Input=ng.NetDecoder("Class", LABELS))
    with pytest.raises(ng.SpecificationError, match="takes no output"):
        ng.NetDecoder("Class", LABELS, output="UnitVector")


def test_decoders_survive_files_parts_and_surgery(tmp_path):
    net = classifier()
    ng.save(net, tmp_path / "net.npz")
    back = ng.load(tmp_path / "net.npz")
    assert back(X) == net(X) and ng.NetExtract(back, "Output") == ng.NetDecoder("Class", LABELS)
    assert ng.from_config(ng.to_config(net)).port_specs["Output"].coder == ng.NetDecoder("Class", LABELS)
    assert ng.NetExtract(ng.NetDrop(net, 1), "Output") == ng.NetDecoder("Class", LABELS)  # keeps the end
    assert "Output" not in ng.coders.port_coders(ng.NetTake(net, 0))        # the last layer is gone
    relabelled = ng.NetReplacePart(net, {"Output": ng.NetDecoder("Class", ["x", "y", "z"])})
    assert relabelled(X[0]) in ("x", "y", "z")
    assert "decoder  Output  NetDecoder[\"Class\", 3 labels: 'cat', 'dog', 'bird']" in repr(net)


def test_nettrain_reads_labels_through_the_decoder():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    labels = [LABELS[i] for i in np.argmax(x[:, :3], axis=1)]
    net = ng.NetChain([ng.LinearLayer(3), ng.SoftmaxLayer()], Input=4, Output=ng.NetDecoder("Class", LABELS))
    result = ng.NetTrain(net, {"Input": x, "Target": labels}, max_epochs=30, learning_rate=5e-2,
                         batch_size=32, seed=0, validation_set=(x[:32], labels[:32]))
    trained = result.net
    assert np.mean([a == b for a, b in zip(trained(x), labels)]) > 0.9
    assert result.history["validation_accuracy"][-1] > 0.9
    onehot = ng.NetTrain(net, {"Input": x, "Target": labels}, loss=ng.CrossEntropyLossLayer("Probabilities"),
                         max_epochs=1, batch_size=32)
    assert len(onehot.history["loss"]) == 1                     # labels became one-hot rows
    with pytest.raises(ng.InputDataError, match=r"'fish' \(example #1\) is not one of its 3 classes"):
        ng.NetTrain(net, {"Input": x[:2], "Target": ["cat", "fish"]}, max_epochs=1)


def test_a_boolean_decoder_trains_with_binary_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = [bool(v) for v in x[:, 0] > x[:, 1]]
    net = ng.NetChain([ng.LinearLayer(()), ng.ElementwiseLayer("LogisticSigmoid")], Input=2,
                      Output=ng.NetDecoder("Boolean"))
    result = ng.NetTrain(net, {"Input": x, "Target": y}, max_epochs=20, learning_rate=1e-1,
                         batch_size=32, seed=0)
    from netgraph.train_loss import build_training_net

    assert build_training_net(net).terms[0].kind == "Binary"   # the automatic loss
    assert np.mean([a == b for a, b in zip(result.net(x), y)]) > 0.9
