"""The examples of docs/layers.md run, wherever their library is installed, and train: the
residual denoiser's error after training is below its error before and below the noise's own."""

from __future__ import annotations

import re

import pytest

from references import ROOT

PAGE = ROOT / "docs" / "layers.md"


def examples() -> dict[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    found = {}
    for code in blocks:
        library = re.match(r"import (\w+)", code)[1]
        found[library] = code
    return found


def test_the_page_has_a_pytorch_and_a_jax_example():
    assert set(examples()) == {"torch", "jax"}


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_the_denoiser_example_runs_and_lowers_the_error(library, capsys):
    pytest.importorskip(library)
    namespace = {"__name__": f"layers_{library}"}
    exec(compile(examples()[library], f"docs/layers.md ({library})", "exec"), namespace)
    before, after = float(namespace["before"]), float(namespace["after"])
    noise = float(((namespace["noisy"] - namespace["clean"]) ** 2).mean())
    assert after < 0.7 * before and after < 0.5 * noise, (before, after, noise)
    assert "mean squared error" in capsys.readouterr().out
