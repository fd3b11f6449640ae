"""The examples run (each in a few seconds) and their own checks pass: the Transformer encoder
block (MultiHeadAttention, residuals, NormalizationLayer, feed-forward; saved and loaded) and
the small CNN with pooling trained by NetTrain."""
from __future__ import annotations

import pathlib
import runpy

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["transformer_block.py", "cnn_pooling.py"])
def test_example_runs(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert capsys.readouterr().out
