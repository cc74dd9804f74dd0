"""The README's Python examples run as written (with the arrays they leave to the reader filled in)."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(_blocks()) >= 3


@pytest.mark.slow
def test_readme_examples_run(monkeypatch):
    torch = pytest.importorskip("torch")
    import empirical.experiments as ex

    # the sweep in the example runs at its defaults in the README; here at a smoke-test size
    real = ex.fisher_depth
    monkeypatch.setattr("empirical.fisher_depth", lambda **kw: real(widths=(64,), depths=(1, 2), **kw))
    ns = {
        "sigma_w_grid": np.linspace(0.5, 2.0, 8),
        "sigma_b_grid": np.linspace(0.0, 0.5, 6),
        "x": np.linspace(0.05, 3.0, 50),
        "X": torch.randn(8, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
    }
    for block in _blocks():
        if "def test_" in block:  # the CI example: define it, call it
            exec(compile(block, "README", "exec"), ns)
            ns["test_my_initialisation_is_described_by_mean_field"]()
        else:
            exec(compile(block, "README", "exec"), ns)
    assert ns["js"].edge > 0 and np.all(np.isfinite(ns["js"].density(ns["x"])))
    assert ns["fs"].kappa1 == pytest.approx(1.5, rel=2e-3)  # THEORY §3 (biases add 0.1 %)
