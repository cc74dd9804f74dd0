"""Figures: each type rendered and its artists checked (legend entries match the drawn lines, regions without a fixed
point have their own colour and entry, titles name the activation and the σ² convention); safe file names."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(ax):
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg is not None else []


def _visible_lines(ax):
    return [ln for ln in ax.get_lines() if np.isfinite(np.asarray(ln.get_ydata(), dtype=float)).any()]


def test_phase_diagram_figure_with_stable_and_unstable_critical_line(tmp_path):
    sw = np.sqrt(np.linspace(1.5, 4.0, 14))
    sb = np.sqrt(np.linspace(0.0, 0.5, 9))
    pd = mf.phase_diagram("gelu", sw, sb)
    assert pd.diverges.any()
    line = mf.critical_line("gelu", np.geomspace(0.05, 30, 60))
    assert line.stable.any() and (~line.stable).any()
    path = tmp_path / f"phase_diagram_{plotting.safe_filename(pd.activation)}.png"
    fig = plotting.plot_phase_diagram(pd, line, path)
    assert path.stat().st_size > 10_000
    for ax in fig.axes[:2]:  # the two panels (the colorbars come after them)
        labels = _labels(ax)
        lines = _visible_lines(ax)
        assert len(lines) == 2  # stable solid + unstable dashed, nothing else
        assert [ln.get_label() for ln in lines] == [lb for lb in labels if "χ" in lb or "chi" in lb]
        assert {ln.get_linestyle() for ln in lines} == {"-", "--"}
        assert sum("unstable" in lb for lb in labels) == 1 and sum("edge of chaos" in lb for lb in labels) == 2
        assert "q diverges (no finite fixed point)" in labels
        assert "gelu" in ax.get_title() and "variances" in ax.get_title()
        assert "sigma_w^2" in ax.get_xlabel() and "sigma_b^2" in ax.get_ylabel()
        # the diverged region is drawn in its own (non-white) colour
        colors = [c.get_cmap()(1.0) for c in ax.collections if getattr(c, "get_cmap", None)]
        assert mcolors.to_rgba(plotting.DIVERGED_COLOR) in colors
        assert mcolors.to_rgba(plotting.DIVERGED_COLOR) != mcolors.to_rgba("white")


def test_phase_diagram_figure_without_critical_line_labels_the_contour():
    sw = np.sqrt(np.linspace(0.5, 3.0, 12))
    sb = np.sqrt(np.linspace(0.0, 0.3, 6))
    pd = mf.phase_diagram("tanh", sw, sb, correlations=False)
    fig = plotting.plot_phase_diagram(pd)
    ax = fig.axes[0]
    assert _labels(ax) == [r"$\chi_1 = 1$ (contour of the grid)"]
    assert not pd.diverges.any() and "q diverges" not in " ".join(_labels(ax))


def test_relu_phase_diagram_has_no_legend_entry_without_a_line():
    """Issue 15: the ReLU figure had a legend entry but no line. Its critical line is one point (σ_b = 0)."""
    sw = np.sqrt(np.linspace(1.0, 3.0, 9))
    sb = np.sqrt(np.linspace(0.0, 0.5, 6))
    pd = mf.phase_diagram("relu", sw, sb, correlations=False)
    fig = plotting.plot_phase_diagram(pd, (np.array([np.sqrt(2.0)]), np.array([0.0])))
    ax = fig.axes[0]
    assert len(_visible_lines(ax)) == 1 and "q diverges (no finite fixed point)" in _labels(ax)
    assert sum("critical line" in lb for lb in _labels(ax)) == 1


def test_critical_lines_figure():
    lines = {"tanh": mf.critical_line("tanh", np.geomspace(0.01, 10, 40)),
             "silu": mf.critical_line("silu", np.geomspace(0.5, 50, 40)),
             "erf": (np.array([1.1, 1.2]), np.array([0.1, 0.2]))}
    fig = plotting.plot_critical_lines(lines)
    ax = fig.axes[0]
    assert _labels(ax) == ["tanh", "silu", "silu (unstable $q^*$)", "erf"]
    assert len(_visible_lines(ax)) == 4 and "variances" in ax.get_title()


def test_edge_of_chaos_figure(tmp_path):
    fig = plotting.plot_edge_of_chaos(("gelu", "elu"), q_range=(0.01, 100), n=60, path=tmp_path / "eoc.png")
    left, right = fig.axes
    labels = _labels(left)
    assert labels == ["gelu: stable $q^*$ (edge of chaos)", "gelu: unstable $q^*$", "elu: stable $q^*$ (edge of chaos)"]
    assert len([ln for ln in left.get_lines() if ln.get_marker() == "o"]) == 1  # GELU's slope crosses 1 once
    assert _labels(right) == ["gelu", "elu"] and (tmp_path / "eoc.png").exists()


@pytest.mark.parametrize("name", ["tanh", "hard_tanh", "x*tanh(x)", "x+tanh(x)", "1/(1+exp(-x))", "Max(0,x)", "../x",
                                  "***", "a b"])
def test_safe_filename(name):
    got = plotting.safe_filename(name)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", got) and not got.startswith(".") and "/" not in got
    if re.fullmatch(r"[A-Za-z0-9_]+", name):
        assert got == name


def test_safe_filename_distinguishes_expressions():
    assert plotting.safe_filename("x*tanh(x)") != plotting.safe_filename("x+tanh(x)")
    assert plotting.safe_filename("x*tanh(x)").startswith("x_tanh_x-")
