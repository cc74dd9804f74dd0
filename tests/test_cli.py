"""The command line: subcommands run and print what they promise; bad input exits 2 with one line naming the argument,
never a traceback."""

import argparse
import csv
import io
import json
import math
import re

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erf, expit

from meanfield.cli import build_parser, main


def _gauss(f, q):
    """E f(√q z), z ~ N(0, 1), by adaptive quadrature (scipy.integrate.quad): the independent reference."""
    s = math.sqrt(q)
    return quad(lambda z: f(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), -np.inf, np.inf,
                epsabs=1e-14, epsrel=1e-13, limit=200)[0]


PHI = {  # φ and φ' written out here, not taken from the library
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "erf": (erf, lambda x: 2.0 / math.sqrt(math.pi) * math.exp(-x * x)),
    "sigmoid": (expit, lambda x: expit(x) * (1.0 - expit(x))),
}


def _assert_critical(row):
    """χ_1 = σ_w² E φ'(√q* z)² = 1 and q* = σ_w² E φ² + σ_b² (THEORY §1), by quadrature written in the test."""
    phi, dphi = PHI[row["activation"]]
    sw, sb, q = float(row["sigma_w"]), float(row["sigma_b"]), float(row["q_star"])
    assert float(row["sigma_w2"]) == pytest.approx(sw * sw, rel=1e-15)
    assert float(row["sigma_b2"]) == pytest.approx(sb * sb, rel=1e-15, abs=0)
    assert sw * sw * _gauss(lambda x: dphi(x) ** 2, q) == pytest.approx(1.0, abs=1e-9)
    assert sw * sw * _gauss(lambda x: phi(x) ** 2, q) + sb * sb == pytest.approx(q, rel=1e-9)


def _strict_json(text):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_critical_json(capsys):
    assert main(["critical", "tanh", "--q-star", "0.015625", "--json"]) == 0
    rows = _strict_json(capsys.readouterr().out)
    assert rows[0]["sigma_w"] == pytest.approx(1.0151637852, rel=1e-9)  # THEORY §1
    _assert_critical(rows[0])


def test_critical_several_activations_and_values(capsys):
    assert main(["critical", "tanh", "erf", "--sigma-b", "0.125", "0.5", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["activation"], float(r["sigma_b"])) for r in rows] == [
        ("tanh", 0.125), ("tanh", 0.5), ("erf", 0.125), ("erf", 0.5)]
    for r in rows:
        _assert_critical(r)


def test_critical_at_zero_bias(capsys):
    """σ_b = 0: q* = 0 where φ(0) = 0 (tanh: σ_w = 1/φ'(0) = 1), a positive q* where not (sigmoid)."""
    assert main(["critical", "tanh", "sigmoid", "--sigma-b", "0", "--format", "json"]) == 0
    tanh, sigmoid = _strict_json(capsys.readouterr().out)
    assert (tanh["sigma_w"], tanh["q_star"]) == (pytest.approx(1.0, rel=1e-12), 0.0)
    assert sigmoid["q_star"] > 1.0
    _assert_critical(sigmoid)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_rows_with_and_without_a_column(fmt):
    """A row may lack a column (stability known for some points only): its cell stays empty, no KeyError."""
    from meanfield.cli import _emit

    out = io.StringIO()
    _emit([dict(a=1.5, c="x"), dict(a=math.inf, b=True, c="y")], fmt, out)
    text = out.getvalue()
    if fmt == "json":
        assert _strict_json(text) == [dict(a=1.5, c="x"), dict(a="inf", b=True, c="y")]
    elif fmt == "csv":
        assert text == "a,c,b\n1.5,x,\ninf,y,True\n"
    else:
        assert text.split("\n")[0].split() == ["a", "c", "b"] and text.split("\n")[2].split() == ["inf", "y", "True"]


def test_critical_given_sigma_w(capsys):
    assert main(["critical", "tanh", "--sigma-w2", "1.5", "--format", "json"]) == 0
    (row,) = _strict_json(capsys.readouterr().out)
    assert row["sigma_w"] == pytest.approx(math.sqrt(1.5), rel=1e-15) and row["sigma_b"] > 0
    _assert_critical(row)


def test_unstable_critical_points_need_the_flag(capsys):
    """GELU's χ_1 = 1 point at σ_b² = 0.05 has an unstable q* (issue 12: q* = 0.722, slope 1.085)."""
    assert main(["critical", "gelu", "--sigma-b2", "0.05"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unstable" in err and "--allow-unstable" in err and "allow_unstable=" not in err
    assert main(["critical", "gelu", "--q-star", "0.5", "8", "--allow-unstable", "--format", "json"]) == 0
    rows = _strict_json(capsys.readouterr().out)
    assert [(r["q_star"], r["stable"]) for r in rows] == [(0.5, False), (8.0, True)]


@pytest.mark.parametrize(
    "sd, var",
    [
        (["critical", "erf", "--sigma-b", "0.25"], ["critical", "erf", "--sigma-b2", "0.0625"]),
        (["critical", "tanh", "--sigma-w", "1.25"], ["critical", "tanh", "--sigma-w2", "1.5625"]),
        (["fixed-point", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.5"],
         ["fixed-point", "tanh", "--sigma-w2", "2.25", "--sigma-b2", "0.25"]),
    ],
)
def test_sigma_and_variance_flags_agree(capsys, sd, var):
    """Exact squares: --sigma-x s and --sigma-x2 s² print the same table."""
    assert main(sd) == 0
    first = capsys.readouterr().out
    assert main(var) == 0
    assert capsys.readouterr().out == first


def test_fixed_point_table(capsys):
    assert main(["fixed-point", "tanh", "--sigma-w", "1.0", "--sigma-b", "0.223606797749979"]) == 0
    out = capsys.readouterr().out
    assert "ordered" in out and "0.7590316" in out
    assert out.split("\n")[0].split()[:5] == ["activation", "sigma_w", "sigma_w2", "sigma_b", "sigma_b2"]


def test_fixed_point_json_two_activations(capsys):
    assert main(["fixed-point", "tanh", "erf", "--sigma-w", "1.5", "--sigma-b", "0.25", "--format", "json"]) == 0
    rows = _strict_json(capsys.readouterr().out)
    assert [r["activation"] for r in rows] == ["tanh", "erf"]
    for r in rows:
        phi, dphi = PHI[r["activation"]]
        q = r["q_star"]
        assert 2.25 * _gauss(lambda x: phi(x) ** 2, q) + 0.0625 == pytest.approx(q, rel=1e-9)
        assert r["chi1"] == pytest.approx(2.25 * _gauss(lambda x: dphi(x) ** 2, q), rel=1e-9)
        assert r["phase"] == "chaotic" and r["sigma_b2"] == 0.0625


def test_q0_is_a_deprecated_spelling_of_q_init(capsys):
    base = ["fixed-point", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.25", "--format", "csv"]
    assert main(base + ["--q-init", "4"]) == 0
    new = capsys.readouterr()
    assert main(base + ["--q0", "4"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and "deprecated" in old.err and "--q-init" in old.err and new.err == ""


def test_library_error_is_one_line(capsys):
    assert main(["critical", "relu", "--sigma-b", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meanfield: error: ") and err.count("\n") == 1
    assert "positively homogeneous" in err


# (argv, what the error line must name); each exits 2 with the subcommand's usage and one error line
BAD = [
    (["critical", "tanh"], "--sigma-b"),  # no silent σ_b = 0 row
    (["critical", "tanh", "--sigma-b", "0.1", "--q-star", "0.5"], "--q-star: not allowed with argument --sigma-b"),
    (["critical", "tanh", "--sigma-b", "0.1", "--sigma-b2", "0.01"], "not allowed with"),
    (["critical", "tanh", "--sigma-b", "nan"], "--sigma-b"),
    (["critical", "tanh", "--sigma-b", "inf"], "--sigma-b"),
    (["critical", "tanh", "--sigma-b", "-0.1"], "--sigma-b"),
    (["critical", "tanh", "--sigma-b", "abc"], "--sigma-b"),
    (["critical", "tanh", "--sigma-w", "0"], "--sigma-w"),
    (["critical", "tanh", "--q-star", "0"], "--q-star"),
    (["critical", "tanh", "--q-star", "-1e-3"], "--q-star"),
    (["critical", "nosuch", "--sigma-b", "0.1"], "activation"),
    (["critical", "tanh", "x**", "--sigma-b", "0.1"], "activation"),
    (["critical", "tanh(y)", "--sigma-b", "0.1"], "activation"),
    (["critical", "", "--sigma-b", "0.1"], "activation"),
    (["critical", "--sigma-b", "0.1"], "activation"),
    (["fixed-point", "tanh", "--sigma-w", "1.5"], "--sigma-b"),
    (["fixed-point", "tanh", "--sigma-b", "0.5"], "--sigma-w"),
    (["fixed-point", "tanh", "--sigma-w", "1.5", "--sigma-w2", "2", "--sigma-b", "0"], "--sigma-w"),
    (["fixed-point", "tanh", "--sigma-w", "-1", "--sigma-b", "0.1"], "--sigma-w"),
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "1e200"], "--sigma-b: must be ≤ 1.341e+154"),  # σ² = inf
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b2", "-0.1"], "--sigma-b2"),
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "0.1", "--q-init", "0"], "--q-init"),
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "0.1", "--q-init", "nan"], "--q-init"),
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "0.1", "--form", "json"], "--form"),  # no prefixes
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "0.1", "--format", "xml"], "--format"),
    (["fixed-point", "tanh", "--sigma-w", "1", "--sigma-b", "0.1", "--format", "csv", "--json"], "--json"),
    (["phase-diagram", "tanh", "-n", "1"], "-n"),
    (["phase-diagram", "tanh", "-n", "0"], "-n"),
    (["phase-diagram", "tanh", "-n", "1.5"], "-n"),
    (["phase-diagram", "tanh", "--sigma-w2-max", "4", "--sigma-w-max", "2"], "--sigma-w-max"),
    (["phase-diagram", "tanh", "--sigma-b2-max", "-1"], "--sigma-b2-max"),
    (["phase-diagram", "tanh", "--sigma-w2-max", "inf"], "--sigma-w2-max"),
    (["phase-diagram", "tanh", "--format", "table"], "--format"),
    (["run", "--ful"], "--ful"),
    (["run", "--theory"], "--theory"),
    (["nosuch"], "nosuch"),
    ([], "COMMAND"),
]


@pytest.mark.parametrize("argv, named", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(capsys, argv, named):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("meanfield") and ": error: " in last and named in last
    sub = argv[0] if argv and argv[0] in ("critical", "fixed-point", "phase-diagram", "run") else None
    assert err.startswith(f"usage: meanfield {sub}" if sub else "usage: meanfield ")


def _subparsers():
    p = build_parser()
    (action,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return p, action.choices


def test_every_option_has_help_with_its_default():
    _, subs = _subparsers()
    for name, sp in subs.items():
        if name == "verify":  # a pointer to the verifier's own parser
            continue
        formatter = sp._get_formatter()
        for action in sp._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            text = formatter._get_help_string(action)
            assert action.help, (name, action.option_strings)
            assert "default" in text or "required" in text, (name, action.option_strings, text)
        assert not sp.allow_abbrev, name
    assert "(default: 101)" in subs["phase-diagram"].format_help()


def test_run_and_verify_are_described(capsys):
    p, subs = _subparsers()
    for name in ("critical", "fixed-point", "phase-diagram", "run", "verify"):
        assert subs[name].description and len(subs[name].description) > 40, name
    assert main(["run", "--help"]) == 0
    assert "main job" in capsys.readouterr().out


def test_help_mentions_conventions(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "standard deviations" in out and "--sigma-w2" in out
    assert main(["--version"]) == 0


def test_phase_diagram_writes_csv_and_png(tmp_path):
    assert main(["phase-diagram", "erf", "-n", "12", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "phase_diagram_erf.png").stat().st_size > 10_000
    with open(tmp_path / "phase_diagram_erf.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 * 12
    assert list(rows[0])[:5] == ["sigma_w", "sigma_w2", "sigma_b", "sigma_b2", "q_star"]
    sw2 = sorted({float(r["sigma_w2"]) for r in rows})
    sb2 = sorted({float(r["sigma_b2"]) for r in rows})
    np.testing.assert_allclose(sw2, np.linspace(4.0 / 12, 4.0, 12), rtol=1e-14)  # the default axes, in σ²
    np.testing.assert_allclose(sb2, np.linspace(0.0, 1.0, 12), rtol=1e-14, atol=1e-16)
    for r in rows:
        assert float(r["sigma_w2"]) == pytest.approx(float(r["sigma_w"]) ** 2, rel=1e-15)


def test_phase_diagram_json_and_sigma_limits(tmp_path, capsys):
    import meanfield as mf

    argv = ["phase-diagram", "tanh", "relu", "-n", "3", "--no-corr", "--sigma-w-max", "2", "--sigma-b-max", "0.5",
            "--format", "json", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "tanh: 9 points" in capsys.readouterr().out
    pd = mf.PhaseDiagram.from_json((tmp_path / "phase_diagram_relu.json").read_text(encoding="utf-8"))
    np.testing.assert_allclose(pd.sigma_w**2, [4 / 3, 8 / 3, 4.0], rtol=1e-14)
    np.testing.assert_allclose(pd.sigma_b**2, [0.0, 0.125, 0.25], rtol=1e-14)
    # ReLU: q* = σ_b²/(1 - σ_w²/2) for σ_w² < 2 (closed form, THEORY §1); no finite fixed point beyond
    np.testing.assert_allclose(pd.q_star[0, 1:], [0.125 / (1 - 2 / 3), 0.25 / (1 - 2 / 3)], rtol=1e-10)
    assert np.all(np.isinf(pd.q_star[2, 1:]))


def test_phase_diagram_file_names_are_safe_for_expressions(tmp_path):
    assert main(["phase-diagram", "x*tanh(x)", "-n", "3", "--no-corr", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(re.fullmatch(r"phase_diagram_[A-Za-z0-9._-]+\.(csv|png)", n) for n in names)


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["phase-diagram", "tanh", "-n", "2", "--no-corr", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meanfield phase-diagram: error: ") and err.count("\n") == 1 and "a_file" in err


@pytest.fixture
def cpu_only(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--device", "cuda"], "--device: 'cuda' is not available on this machine; available: cpu"),
        (["--device", "cuda:1"], "available: cpu"),
        (["--device", "nosuch"], "--device: 'nosuch'"),
        (["--ful"], "--ful"),  # no prefix matching
        (["--theory-sigma-w-scale", "nan"], "--theory-sigma-w-scale"),
        (["--threads", "0"], "--threads"),
        (["--size", "huge"], "--size"),
    ],
)
def test_verify_bad_input(capsys, cpu_only, argv, named):
    assert main(["verify"] + argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("usage: meanfield verify")
    assert named in err.rstrip("\n").split("\n")[-1]


def test_verify_subcommand_dispatches_to_the_verifier(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["verify", "--out", str(tmp_path), "--size", "tiny", "--quiet"]) == 0
    assert "ok   sokol_park" in capsys.readouterr().out
    assert "All predictions hold" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert main(["verify", "--help"]) == 0
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
