"""Every ``python`` snippet of the README runs as written, top to bottom in one session (as a
reader pastes them), and the claims written next to its results hold."""
from __future__ import annotations

import pathlib
import re

import jax
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_snippets():
    assert len(SNIPPETS) >= 6


def test_every_snippet_runs_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets write files (plots)
    namespace: dict = {}
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):  # as a user runs
        for number, code in enumerate(SNIPPETS, 1):
            try:
                exec(compile(code, f"README.md snippet {number}", "exec"), namespace)
            except Exception as error:  # pragma: no cover - the failure message
                pytest.fail(f"README snippet {number} fails: {type(error).__name__}: {error}\n{code}")
    assert namespace["chain"].output_ports == {"Output": (3,)}
    assert namespace["seq"].output_ports == {"Output": ("Varying", 3)}
    assert [o.shape for o in namespace["outs"]] == [(2, 2), (3, 2), (5, 2)]
    assert len(namespace["result"].history["loss"]) == 10
    assert (tmp_path / "loss.png").exists()
