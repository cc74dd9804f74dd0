"""The README's main job runs end to end, every prediction holds, and the committed report in docs/figures says the same.

``make run`` is ``meanfield run --out out``: phase diagrams and critical lines, then ``meanfield verify`` on sampled
networks. This test runs it in a fresh process exactly as the Makefile does (into a temporary folder), so CI fails when
any verify record misses its tolerance, and when ``docs/figures`` (written by ``make figures`` with the same command)
no longer agrees with what the current code finds.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "figures"


def _verdicts(report: Path) -> dict:
    """{(experiment, quantity, parameters...): passed} from the tables of a verify report.

    The key is every cell before the ``theory`` column (the record's identity); the verdict is the last cell.
    """
    out = {}
    header = None
    for line in report.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "experiment":
            header = cells
            continue
        if header is None or set(cells[0]) <= {"-", " "} or "theory" not in header:
            continue
        key = tuple(f"{h}={c}" for h, c in zip(header[: header.index("theory")], cells))
        out[key] = cells[-1] == "✓"
    return out


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("main_job")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "meanfield.cli", "run", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    return out, proc


def test_main_job_exits_zero_with_every_record_within_tolerance(main_job):
    out, proc = main_job
    assert proc.returncode == 0, f"`meanfield run` failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    results = json.loads((out / "verify" / "results.json").read_text())
    missed = [r for r in results["records"] if not r["passed"]]
    assert results["passed"] and not missed, missed[:5]
    assert len(results["records"]) >= 300
    for name in ("REPORT.md", "critical_lines.png", "phase_diagram_tanh.png", "edge_of_chaos.png", "verify/report.md"):
        assert (out / name).stat().st_size > 0, name


def test_committed_report_agrees_with_a_fresh_run(main_job):
    """docs/figures/verify/report.md is regenerated from the current code (`make figures`): same records, same verdicts."""
    out, proc = main_job
    assert proc.returncode == 0
    fresh = _verdicts(out / "verify" / "report.md")
    committed = _verdicts(DOCS / "verify" / "report.md")
    assert len(fresh) >= 300
    assert set(committed) == set(fresh), (
        "docs/figures is stale: run `make figures`; records only in the committed report: "
        f"{sorted(set(committed) - set(fresh))[:3]}, only in a fresh run: {sorted(set(fresh) - set(committed))[:3]}"
    )
    differ = [k for k in fresh if fresh[k] != committed[k]]
    assert not differ, f"verdicts differ from docs/figures (run `make figures`): {differ[:5]}"
    m = re.search(r"(\d+)/(\d+) records within tolerance", (DOCS / "verify" / "report.md").read_text(encoding="utf-8"))
    assert m and m.group(1) == m.group(2) == str(len(fresh))
