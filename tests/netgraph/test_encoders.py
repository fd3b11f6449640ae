"""NetEncoder: specs, encoding, ragged evaluation and training, errors, files, surgery, display,
and the two examples that use coders."""
from __future__ import annotations

import pathlib
import runpy

import jax
import numpy as np
import pytest

import netgraph as ng
from netgraph.coders import NetEncoder

VOCAB = ["the", "cat", "sat", "on", "mat"]
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def token_net(encoder: NetEncoder | None = None) -> ng.NetChain:
    encoder = encoder or ng.NetEncoder("Tokens", VOCAB, unknown="<unk>")
    return ng.NetInitialize(ng.NetChain(
        [ng.EmbeddingLayer(4), ng.AggregationLayer("Mean", 0), ng.LinearLayer(3), ng.SoftmaxLayer()],
        Input=encoder), seed=0)


# ------------------------------------------------------------------------- specs
def test_encoders_declare_their_port_types():
    cases = [
        (ng.NetEncoder("Tokens", VOCAB), ("Varying", ng.Restricted("Integer", 5))),
        (ng.NetEncoder("Tokens", VOCAB, unknown="<unk>"), ("Varying", ng.Restricted("Integer", 6))),
        (ng.NetEncoder("Tokens", VOCAB, unknown="cat"), ("Varying", ng.Restricted("Integer", 5))),
        (ng.NetEncoder("Characters", "abc"), ("Varying", ng.Restricted("Integer", 3))),
        (ng.NetEncoder("Characters", "abc", output="UnitVector"), ("Varying", 3)),
        (ng.NetEncoder("Class", ["a", "b"]), (ng.Restricted("Integer", 2),)),
        (ng.NetEncoder("Class", ["a", "b"], output="UnitVector"), (2,)),
        (ng.NetEncoder("Boolean"), ()),
        (ng.NetEncoder("Function", np.sqrt, (3,)), (3,)),
    ]
    for encoder, expected in cases:
        chain = ng.NetChain([ng.ElementwiseLayer("Tanh") if "Integer" not in str(expected)
                             else ng.EmbeddingLayer(2)], Input=encoder)
        assert chain.input_ports["Input"] == expected, encoder


def test_encoders_are_validated_values():
    a, b = ng.NetEncoder("Tokens", VOCAB), ng.NetEncoder("Tokens", tuple(VOCAB))
    assert a == b and hash(a) == hash(b) and a != ng.NetEncoder("Tokens", VOCAB, ignore_case=True)
    with pytest.raises(AttributeError):
        a.kind = "Class"
    bad = [(("Words", VOCAB), {}, "unknown kind"), (("Tokens", ["a", "a"]), {}, "appears twice"),
           (("Tokens", []), {}, "at least one"), (("Characters", ["ab"]), {}, "one character"),
           (("Tokens", VOCAB), {"ignore": True}, "invalid"), (("Class",), {}, "labels"),
           (("Function", np.sqrt, "Vector"), {}, "output_shape"),
           (("Tokens", VOCAB, 3), {}, "positional")]
    for args, options, words in bad:
        with pytest.raises(ng.SpecificationError, match=words):
            ng.NetEncoder(*args, **options)


def test_from_data_builds_the_vocabulary_in_order_of_appearance():
    enc = ng.NetEncoder.from_data("Tokens", ["b a", "a c b"], unknown="<unk>")
    assert enc.words == ("b", "a", "c", "<unk>")
    chars = ng.NetEncoder.from_data("Characters", ["hello", "Hi"], ignore_case=True)
    assert "".join(chars.words) == "helo" + "i"


def test_encoding_forms():
    enc = ng.NetEncoder("Tokens", VOCAB, unknown="<unk>", ignore_case=True)
    form, one = enc.encode("The cat DANCED", "Input")
    assert form == "one" and one.tolist() == [0, 1, 5] and one.dtype == np.int32
    form, many = enc.encode(["cat", "", "on the mat"], "Input")
    assert form == "list" and [m.tolist() for m in many] == [[1], [], [3, 0, 4]]
    split = ng.NetEncoder("Tokens", VOCAB, splitter=lambda s: s.split(","))
    assert split.encode("cat,sat", "Input")[1].tolist() == [1, 2]
    assert ng.NetEncoder("Class", ["x", "y"]).encode(["y", "x", "y"], "c")[1].tolist() == [1, 0, 1]
    onehot = ng.NetEncoder("Class", ["x", "y"], output="UnitVector").encode("y", "c")[1]
    assert onehot.tolist() == [0.0, 1.0] and onehot.dtype == np.float32
    assert ng.NetEncoder("Boolean").encode([True, False], "b")[1].tolist() == [1.0, 0.0]
    assert ng.NetEncoder("Characters", "ab", output="UnitVector").encode("ba", "c")[1].tolist() == [[0, 1], [1, 0]]


# --------------------------------------------------------------------- evaluation
def test_strings_evaluate_like_their_indices():
    net = token_net()
    raw = ng.NetReplacePart(net, {"Input": None})
    ids = {"the cat": [0, 1], "on the mat": [3, 0, 4], "": [], "a dog": [5, 5]}
    one = net("the cat")
    np.testing.assert_allclose(one, raw(np.array(ids["the cat"], np.int32)), rtol=1e-6)
    ragged = net(list(ids))  # a list of strings is a list of examples of different lengths
    assert isinstance(ragged, list) and len(ragged) == 4
    for out, tokens in zip(ragged, ids.values()):
        np.testing.assert_allclose(out, raw(np.array(tokens, np.int32)), rtol=1e-5, atol=1e-6)
    assert net(np.array(["the cat", "on the mat"])) is not None  # a NumPy array of strings


def test_class_and_boolean_encoders_give_batches():
    net = ng.NetInitialize(ng.NetGraph(
        {"emb": ng.EmbeddingLayer(3), "flag": ng.ElementwiseLayer("Tanh")},
        [(ng.NetPort("Color"), "emb"), ("emb", ng.NetPort("Out1")),
         (ng.NetPort("Flag"), "flag", ng.NetPort("Out2"))],
        Color=ng.NetEncoder("Class", ["red", "green"]), Flag=ng.NetEncoder("Boolean")), seed=0)
    out = net({"Color": ["green", "red"], "Flag": [True, False]})
    emb = ng.NetExtract(net, ("emb", "Weights"))
    np.testing.assert_allclose(out["Out1"], emb[[1, 0]], rtol=1e-6)
    np.testing.assert_allclose(out["Out2"], np.tanh([1.0, 0.0]), rtol=1e-6)
    single = net({"Color": "red", "Flag": True})
    assert single["Out1"].shape == (3,) and single["Out2"].shape == ()


def test_function_encoder():
    enc = ng.NetEncoder("Function", lambda s: [len(s), s.count("a")], (2,))
    net = ng.NetInitialize(ng.NetChain([ng.LinearLayer(1)], Input=enc), seed=0)
    w, b = ng.NetExtract(net, (0, "Weights")), ng.NetExtract(net, (0, "Biases"))
    out = net(["banana", "kiwi"])
    np.testing.assert_allclose(np.stack(out), np.array([[6, 3], [4, 0]]) @ w.T + b, rtol=1e-5)


def test_a_ragged_port_turns_stacked_encodings_into_lists():
    net = ng.NetInitialize(ng.NetGraph(
        {"emb": ng.EmbeddingLayer(2), "pool": ng.AggregationLayer("Total", 0),
         "cls": ng.EmbeddingLayer(2), "plus": ng.ThreadingLayer("Plus")},
        [(ng.NetPort("Text"), "emb", "pool"), (ng.NetPort("Kind"), "cls"), (["pool", "cls"], "plus")],
        Text=ng.NetEncoder("Tokens", VOCAB), Kind=ng.NetEncoder("Class", ["a", "b"])), seed=0)
    out = net({"Text": ["the cat", "mat"], "Kind": ["b", "a"]})
    assert isinstance(out, list) and [o.shape for o in out] == [(2,), (2,)]
    np.testing.assert_allclose(out[1], net({"Text": "mat", "Kind": "a"}), rtol=1e-6)


# -------------------------------------------------------------------------- errors
def test_unknown_tokens_are_errors_unless_configured():
    net = token_net(ng.NetEncoder("Tokens", VOCAB))
    with pytest.raises(ng.InputDataError, match=r"token 'dog' \(#1 of 'the dog'\) is not in the vocabulary") as err:
        net("the dog")
    assert 'unknown="<unk>"' in str(err.value)
    with pytest.raises(ng.InputDataError, match="example #1"):
        net(["the", "cat dog"])
    with pytest.raises(ng.InputDataError, match="takes a string"):
        net(3)
    chars = ng.NetChain([ng.EmbeddingLayer(2)], Input=ng.NetEncoder("Characters", "ab"))
    with pytest.raises(ng.InputDataError, match="character 'c'"):
        ng.NetInitialize(chars)("abc")


def test_a_label_that_is_not_a_class():
    net = ng.NetInitialize(ng.NetChain([ng.EmbeddingLayer(2)], Input=ng.NetEncoder("Class", ["a", "b"])))
    with pytest.raises(ng.InputDataError, match=r"'c' \(example #1\) is not one of its 2 classes"):
        net(["a", "c"])
    with pytest.raises(ng.InputDataError, match="True is not one of"):
        ng.NetInitialize(ng.NetChain([ng.EmbeddingLayer(2)], Input=ng.NetEncoder("Class", [0, 1])))(True)
    boolean = ng.NetInitialize(ng.NetChain(["Tanh"], Input=ng.NetEncoder("Boolean")))
    with pytest.raises(ng.InputDataError, match="expected True or False"):
        boolean("yes")


def test_encoders_go_on_inputs_and_must_fit_the_layers():
    with pytest.raises(ng.SpecificationError, match='port "Output" is an output port'):
        ng.NetChain([ng.LinearLayer(2)], Input=2, Output=ng.NetEncoder("Boolean"))
    with pytest.raises(ng.ShapeMismatchError, match="carries NetEncoder") as err:
        ng.NetChain([ng.LinearLayer(2)], Input=ng.NetEncoder("Tokens", VOCAB))
    assert "encoder fixes its port's type" in str(err.value)


# ------------------------------------------------------------------ files, parts
def test_encoders_survive_save_load_and_config(tmp_path):
    net = token_net()
    ng.save(net, tmp_path / "net.npz")
    back = ng.load(tmp_path / "net.npz")
    assert ng.NetExtract(back, "Input") == ng.NetExtract(net, "Input")
    np.testing.assert_allclose(back(["the cat", "a b c"])[1], net(["the cat", "a b c"])[1], rtol=1e-6)
    config = ng.to_config(net)
    assert config["ports"]["Input"] == {"NetEncoder": {"kind": "Tokens", "options": {
        "vocabulary": VOCAB, "unknown": "<unk>"}}}
    assert ng.from_config(config).port_specs["Input"].coder == ng.NetExtract(net, "Input")
    for kind, args in (("Characters", ("ab",)), ("Class", ([1, "x", 2.5, True],)), ("Boolean", ())):
        enc = ng.NetEncoder(kind, *args)
        layer = ng.ElementwiseLayer("Tanh") if kind == "Boolean" else ng.EmbeddingLayer(2)
        again = ng.from_config(ng.to_config(ng.NetChain([layer], Input=enc)))
        assert ng.NetExtract(again, "Input") == enc


def test_encoders_holding_functions_refuse_to_be_saved(tmp_path):
    for enc in (ng.NetEncoder("Tokens", VOCAB, splitter=str.split),
                ng.NetEncoder("Function", np.sqrt, (3,))):
        layer = ng.EmbeddingLayer(2) if enc.kind == "Tokens" else ng.LinearLayer(2)
        net = ng.NetChain([layer], Input=enc)
        with pytest.raises(ng.SerializationError, match="Python function"):
            ng.save(net, tmp_path / "net.npz")
        assert isinstance(ng.Information(net, "TopologyHash"), str)  # a description still works


def test_damaged_encoder_records_are_serialization_errors():
    config = ng.to_config(token_net())
    config["ports"]["Input"]["NetEncoder"]["options"]["vocabulary"] = ["a", "a"]
    with pytest.raises(ng.SerializationError, match="appears twice"):
        ng.from_config(config)
    config["ports"]["Input"] = {"NetEncoder": {"kind": "Nope"}}
    with pytest.raises(ng.SerializationError, match="unknown kind"):
        ng.from_config(config)


def test_extract_replace_take_drop_keep_or_strip_the_encoder():
    net = token_net()
    enc = ng.NetExtract(net, "Input")
    assert isinstance(enc, ng.NetEncoder) and enc.kind == "Tokens"
    assert ng.NetExtract(net, (0, "Input")) == ("Varying", ng.Restricted("Integer", 6))  # a plain port
    stripped = ng.NetReplacePart(net, {"Input": None})
    assert stripped.port_specs["Input"].coder is None
    assert stripped.input_ports == net.input_ports  # the type stays
    again = ng.NetReplacePart(stripped, {"Input": enc})
    np.testing.assert_allclose(again("the mat"), net("the mat"), rtol=1e-6)
    assert ng.NetExtract(ng.NetTake(net, 1), "Input") == enc        # keeps the input side
    assert "Input" not in ng.coders.port_coders(ng.NetDrop(net, 1))   # the first layer is gone
    assert ng.NetExtract(ng.NetDrop(net, -1), "Input") == enc


def test_the_encoder_shows_in_print_summary_and_picture(tmp_path):
    net = token_net()
    text = repr(net)
    assert "encoder  Input  NetEncoder[\"Tokens\", 5 tokens, unknown '<unk>']" in text
    assert text == net.summary()
    net.plot(tmp_path / "net.svg")
    assert "NetEncoder[\"Tokens\", 5 tokens" in (tmp_path / "net.svg").read_text()


# ------------------------------------------------------------------------ training
def test_nettrain_takes_strings_for_encoded_inputs():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(VOCAB, size=rng.integers(3, 5))) for _ in range(64)]  # one bucket
    target = np.array([float("cat" in t.split()) for t in texts], np.float32)
    net = ng.NetChain([ng.EmbeddingLayer(4), ng.AggregationLayer("Max", 0), ng.LinearLayer(()),
                       ng.ElementwiseLayer("LogisticSigmoid")], Input=ng.NetEncoder("Tokens", VOCAB))
    result = ng.NetTrain(net, {"Input": texts, "Target": target}, loss=ng.CrossEntropyLossLayer("Binary"),
                         max_epochs=10, learning_rate=1e-1, batch_size=16, seed=0)
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    trained = result.net
    assert trained("the cat sat") > 0.5 > trained("on the mat")
    pair = ng.NetTrain(net, (texts, target), loss=ng.CrossEntropyLossLayer("Binary"), max_epochs=1,
                       batch_size=16)
    assert len(pair.history["loss"]) == 1
    with pytest.raises(ng.InputDataError, match="not in the vocabulary"):
        ng.NetTrain(net, {"Input": ["the dog"], "Target": [1.0]}, max_epochs=1)
    with pytest.raises(ng.InputDataError, match="single example"):
        ng.NetTrain(net, {"Input": "the cat", "Target": [1.0]}, max_epochs=1)


# ------------------------------------------------------------------------ examples
@pytest.mark.parametrize("name", ["char_model.py", "text_similarity_strings.py"])
def test_the_coder_examples_run(name, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/<name>` runs it: siblings import
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):  # as a user runs
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert "accuracy" in capsys.readouterr().out or name == "char_model.py"


def test_netextract_reads_the_options_of_a_coder():
    enc = ng.NetExtract(token_net(), "Input")
    assert ng.NetExtract(enc, "vocabulary") == tuple(VOCAB) and ng.NetExtract(enc, "unknown") == "<unk>"
    with pytest.raises(ng.PartSpecError, match="has no part 'labels'"):
        ng.NetExtract(enc, "labels")
