"""The command line: subcommands run and print what they promise; errors exit non-zero with a message."""

import json

import pytest

from meanfield.cli import main


def test_critical_json(capsys):
    assert main(["critical", "tanh", "--q-star", "0.015625", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["sigma_w"] == pytest.approx(1.0151637852, rel=1e-9)  # THEORY §1


def test_fixed_point_table(capsys):
    assert main(["fixed-point", "tanh", "--sigma-w", "1.0", "--sigma-b", "0.223606797749979"]) == 0
    out = capsys.readouterr().out
    assert "ordered" in out and "0.7590316" in out


def test_error_exit_code(capsys):
    assert main(["critical", "relu", "--sigma-b", "0.1"]) == 2
    assert "positively homogeneous" in capsys.readouterr().err


def test_phase_diagram_writes_csv_and_png(tmp_path):
    assert main(["phase-diagram", "erf", "-n", "12", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "phase_diagram_erf.png").stat().st_size > 10_000
    lines = (tmp_path / "phase_diagram_erf.csv").read_text().splitlines()
    assert len(lines) == 1 + 12 * 12 and lines[0].startswith("sigma_w,sigma_b,q_star")


def test_help_mentions_conventions(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "standard deviations" in capsys.readouterr().out


def test_verify_subcommand_dispatches_to_the_verifier(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["verify", "--out", str(tmp_path), "--size", "tiny", "--quiet"]) == 0
    assert "ok   sokol_park" in capsys.readouterr().out
    assert "All predictions hold" in (tmp_path / "report.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    assert "--theory-sigma-w-scale" in capsys.readouterr().out


@pytest.mark.slow
def test_run_is_theory_then_verify(tmp_path, capsys, monkeypatch):
    import meanfield.cli as cli

    calls = []
    monkeypatch.setattr(cli, "_verify_main", lambda argv: calls.append(argv) or 1)
    assert main(["run", "--out", str(tmp_path)]) == 1  # the verify part's failure is the job's failure
    assert calls == [["--out", str(tmp_path / "verify")]]
    report = (tmp_path / "REPORT.md").read_text(encoding="utf-8")
    assert "max |χ_1 - 1|" in report
    for png in ("phase_diagram_tanh.png", "phase_diagram_erf.png", "critical_lines.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    calls.clear()
    assert main(["run", "--out", str(tmp_path), "--theory-only"]) == 0 and calls == []
