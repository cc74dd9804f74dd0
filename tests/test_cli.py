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
