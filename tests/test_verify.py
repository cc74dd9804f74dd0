"""empirical.verify (the ``verify`` command), empirical.plots and empirical.testing at smoke-test sizes."""

import os

import pytest
import torch

import empirical.experiments as ex
import empirical.plots as plots
from empirical import testing
from empirical.verify import SIZES, experiment_sizes, main, run_verify


@pytest.fixture(autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_run_verify_writes_report_figures_and_table(tmp_path, capsys):
    table, report = run_verify(tmp_path, size="tiny", progress=True)
    assert table.passed, table.failures().to_markdown()
    assert set(table.experiments) == set(ex.EXPERIMENTS)
    assert report == os.path.join(tmp_path, "report.md")
    for name in ex.EXPERIMENTS:
        png = tmp_path / f"{name}.png"
        assert png.stat().st_size > 10_000  # a real figure
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "All predictions hold" in text
    for name in ex.EXPERIMENTS:
        assert f"## {name}" in text and f"![{name}]({name}.png)" in text
    assert "| experiment | quantity |" in text
    back = ex.ResultTable.from_json(tmp_path / "results.json")
    assert back.records == table.records
    assert (tmp_path / "results.csv").read_text().startswith("experiment,quantity,")
    err = capsys.readouterr().err  # the progress bar
    assert "[6/7] sokol_park" in err and "[7/7] ntk_kernels" in err


def test_verify_command_exit_status(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "ok"), "--size", "tiny", "--quiet", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "ok   fisher_depth" in out and "report:" in out
    # a deliberately wrong theory (σ_w 10 % off) misses: exit status 1, the failures on stderr, the report says so
    assert main(["--out", str(tmp_path / "bad"), "--size", "tiny", "--quiet", "--theory-sigma-w-scale", "1.1"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "missed their tolerance" in captured.err
    assert "Some predictions missed" in (tmp_path / "bad" / "report.md").read_text(encoding="utf-8")
    assert main(["--out", str(tmp_path / "x"), "--workers", "-1"]) == 2


def test_sizes():
    assert SIZES == ("tiny", "default", "full")
    for size in SIZES:
        assert set(experiment_sizes(size)) == set(ex.EXPERIMENTS)
    with pytest.raises(ValueError):
        experiment_sizes("huge")


def test_plots_need_the_experiments_data(tmp_path):
    with pytest.raises(ValueError, match="fisher_depth"):
        plots.plot_fisher_depth(ex.ResultTable())
    with pytest.raises(ValueError):
        plots.plot_experiment(ex.ResultTable(), "nonsense")
    assert plots.plot_all(ex.ResultTable(), tmp_path) == {}


def test_plot_returns_figure_and_closes_when_saving(tmp_path):
    import matplotlib.pyplot as plt

    t = ex.trajectories(**experiment_sizes("tiny")["trajectories"])
    before = len(plt.get_fignums())
    fig = plots.plot_trajectories(t)
    assert len(fig.axes) == 2 and len(plt.get_fignums()) == before + 1
    plt.close(fig)
    fig = plots.plot_trajectories(t, path=tmp_path / "t.png")
    assert (tmp_path / "t.png").exists() and len(plt.get_fignums()) == before


def test_testing_helpers_pass_and_raise():
    sw, sb = ex.tanh_points()["critical"]
    t = testing.assert_layer_statistics_match_theory("tanh", sw, sb, depth=3, width=200)
    assert t.passed and len(t) == 6
    with pytest.raises(AssertionError, match=r"layer statistics of tanh .* missed their tolerance"):
        testing.assert_layer_statistics_match_theory("tanh", sw, sb, depth=3, width=200, theory_sigma_w_scale=1.1)
    sw, sb = ex.critical_points("tanh", (1 / 64,))["q*=0.01562"]
    testing.assert_jacobian_spectrum_matches_theory("tanh", sw, sb, depth=4, width=96, seeds=4)
    with pytest.raises(AssertionError, match=r"\| jacobian_spectra \| mean \|"):
        testing.assert_jacobian_spectrum_matches_theory("tanh", sw, sb, depth=4, width=96, seeds=4,
                                                        theory_sigma_w_scale=1.1)
    testing.assert_conditional_fisher_matches_theory("tanh", sw, sb, depths=(2,), width=64)
    with pytest.raises(AssertionError):
        testing.assert_conditional_fisher_matches_theory("tanh", sw, sb, depths=(2,), width=64,
                                                         theory_sigma_w_scale=1.1)
    sw, sb = ex.tanh_points()["ordered"]
    testing.assert_fisher_matches_theory("tanh", sw, sb, depths=(2, 6), width=128, n_samples=8, weights="orthogonal")
    with pytest.raises(AssertionError, match="Fisher information"):
        testing.assert_fisher_matches_theory("tanh", sw, sb, depths=(2, 6), width=128, n_samples=8,
                                             weights="orthogonal", theory_sigma_w_scale=1.1)


def test_text_progress_in_a_log_writes_few_plain_lines():
    """Not a terminal: no carriage returns, one line per experiment for a quick one (not one per task)."""
    import io

    from empirical.verify import _Progress

    stream = io.StringIO()
    bar = _Progress(2, stream=stream)
    bar.tqdm = None  # the plain text bar, whether or not tqdm is installed
    for label in ("first", "second"):
        for done in range(201):
            bar(label, done, 200)
    bar.close()
    out = stream.getvalue()
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/2] first") and lines[1].split()[-2] == "200/200"
