"""The ``meanfield`` command: critical points, fixed points, phase diagrams, and the main job ``run``.

Examples::

    meanfield critical tanh --sigma-b 0.1 0.3        # σ_w on the critical line for these biases
    meanfield critical tanh --q-star 0.015625        # the critical (σ_w, σ_b) with this q*
    meanfield fixed-point tanh --sigma-w 1.5 --sigma-b 0.2
    meanfield phase-diagram tanh --out results/      # CSV table + PNG figure with the critical line
    meanfield verify --out verify/                   # theory against sampled networks: figures, report, exit status
    meanfield run --out out/                         # the main job: phase diagrams, critical lines, then verify

σ_w and σ_b are standard deviations (weights N(0, σ_w²/N), biases N(0, σ_b²)).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np


def _progress(it, total, label):
    """A minimal progress bar on stderr (no dependency)."""
    for i, x in enumerate(it):
        yield x
        done = int(30 * (i + 1) / total)
        sys.stderr.write(f"\r{label:<28} [{'#' * done}{'.' * (30 - done)}] {i + 1}/{total}")
        sys.stderr.flush()
    sys.stderr.write("\n")


def _critical_line(mf, phi, n=60, q_range=(1e-3, 10.0)):
    qs = np.geomspace(*q_range, n)
    sw, sb = [], []
    for q in qs:
        try:
            w, b = mf.critical_point(phi, q)
        except mf.NoCriticalPointError:
            continue
        sw.append(w)
        sb.append(b)
    return np.array(sw), np.array(sb)


def cmd_critical(args):
    import meanfield as mf

    rows = []
    if args.q_star:
        for q in args.q_star:
            sw, sb = mf.critical_point(args.activation, q)
            rows.append(dict(q_star=q, sigma_w=sw, sigma_b=sb, sigma_w2=sw * sw, sigma_b2=sb * sb))
    else:
        for sb in args.sigma_b or [0.0]:
            sw = mf.critical_sigma_w(args.activation, sb)
            q = mf.q_star(args.activation, sw, sb) if sb > 0 else 0.0
            rows.append(dict(q_star=q, sigma_w=sw, sigma_b=sb, sigma_w2=sw * sw, sigma_b2=sb * sb))
    _emit(rows, args)


def cmd_fixed_point(args):
    import meanfield as mf

    fp = mf.fixed_point(args.activation, args.sigma_w, args.sigma_b, q0=args.q0)
    rows = [{k: getattr(fp, k) for k in ("sigma_w", "sigma_b", "q_star", "chi1", "c_star", "chi_c", "xi_q", "xi_c", "phase")}]
    _emit(rows, args)


def _emit(rows, args):
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return
    keys = list(rows[0])
    print("  ".join(f"{k:>12}" for k in keys))
    for r in rows:
        print("  ".join(f"{v:>12.8g}" if isinstance(v, float) else f"{v!s:>12}" for v in r.values()))


def _write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _phase_diagram(mf, phi, sw2_max, sb2_max, n, out, correlations=True):
    from meanfield.plotting import plot_phase_diagram

    sw = np.sqrt(np.linspace(sw2_max / n, sw2_max, n))
    sb = np.sqrt(np.linspace(0.0, sb2_max, n))
    t = time.perf_counter()
    pd = mf.phase_diagram(phi, sw, sb, correlations=correlations, progress=True)
    elapsed = time.perf_counter() - t
    name = mf.get_activation(phi).name.replace("*", "").replace(" ", "").replace("/", "_")
    _write_csv(pd.to_records(), out / f"phase_diagram_{name}.csv")
    crit = None
    try:
        crit = _critical_line(mf, phi)
    except mf.MeanFieldError:
        pass
    plot_phase_diagram(pd, crit, out / f"phase_diagram_{name}.png")
    return pd, elapsed


def cmd_phase_diagram(args):
    import meanfield as mf

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd, elapsed = _phase_diagram(mf, args.activation, args.sigma_w2_max, args.sigma_b2_max, args.n, out, not args.no_corr)
    print(f"{pd.q_star.size} points in {elapsed:.3f} s -> {out}/phase_diagram_*.csv, .png")


def _verify_main(argv):
    """``meanfield verify``: the empirical verifier's command (needs the ``empirical`` extra: torch, matplotlib)."""
    try:
        from empirical.verify import main as verify_main
    except ImportError as exc:  # torch or matplotlib missing
        print(f"error: `meanfield verify` needs the empirical extra (pip install 'meanfield[empirical]'): {exc}",
              file=sys.stderr)
        return 2
    return verify_main(argv)


def cmd_run(args):
    """The main job: phase diagrams of tanh and erf, critical lines of several activations, a summary report, then
    (unless ``--theory-only``) ``meanfield verify`` into ``OUT/verify``. Non-zero exit when either part fails."""
    status = _run_theory(args)
    if args.theory_only:
        return status
    print(f"\nmeanfield verify --out {Path(args.out) / 'verify'}" + (" --full" if args.full else ""))
    vstatus = _verify_main(["--out", str(Path(args.out) / "verify")] + (["--full"] if args.full else []))
    return status or vstatus


def _run_theory(args):
    import meanfield as mf
    from meanfield.plotting import plot_critical_lines

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = ["# meanfield run", ""]
    for phi in _progress(["tanh", "erf"], 2, "phase diagrams"):
        pd, elapsed = _phase_diagram(mf, phi, 4.0, 1.0, 61, out)
        n_chaotic = int(np.sum(pd.chi1 > 1))
        report.append(f"- {phi}: phase diagram {pd.q_star.size} points with c*, ξ_c in {elapsed:.2f} s; "
                      f"{n_chaotic} chaotic points; figure `phase_diagram_{phi}.png`")
    lines = {}
    names = ["tanh", "erf", "hard_tanh", "sigmoid", "atan(x)"]
    rows = []
    for phi in _progress(names, len(names), "critical lines"):
        sw, sb = _critical_line(mf, phi)
        lines[phi] = (sw, sb)
        for w, b in zip(sw, sb):
            rows.append(dict(activation=phi, sigma_w=w, sigma_b=b, chi1=mf.chi1(phi, w, b)))
    _write_csv(rows, out / "critical_lines.csv")
    plot_critical_lines(lines, out / "critical_lines.png")
    worst = max(abs(r["chi1"] - 1.0) for r in rows)
    report.append(f"- critical lines of {', '.join(names)}: {len(rows)} points, max |χ_1 - 1| = {worst:.2e}; "
                  "figure `critical_lines.png`")
    fp = mf.fixed_point("tanh", np.sqrt(2.5), np.sqrt(0.05))
    report.append(f"- tanh σ_w²=2.5, σ_b²=0.05: q*={fp.q_star:.6f}, χ_1={fp.chi1:.6f}, c*={fp.c_star:.6f}, "
                  f"ξ_c={fp.xi_c:.3f} ({fp.phase})")
    (out / "REPORT.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    if worst > 1e-8:
        print(f"FAIL: a critical point has |χ_1 - 1| = {worst:.2e}", file=sys.stderr)
        return 1
    return 0


def build_parser():
    p = argparse.ArgumentParser(
        prog="meanfield",
        description="Mean-field theory of deep networks at initialisation. σ_w, σ_b are standard deviations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::")[1],
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("critical", help="σ_w on the order-to-chaos line χ_1 = 1 (given σ_b or q*)")
    c.add_argument("activation", help="registry name (tanh, relu, erf, ...) or an expression in x, e.g. 'x*tanh(x)'")
    c.add_argument("--sigma-b", type=float, nargs="+", help="bias standard deviations")
    c.add_argument("--q-star", type=float, nargs="+", help="fixed points q* (alternative to --sigma-b)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.set_defaults(func=cmd_critical)

    f = sub.add_parser("fixed-point", help="q*, c*, χ_1, χ_c, depth scales and phase at (σ_w, σ_b)")
    f.add_argument("activation")
    f.add_argument("--sigma-w", type=float, required=True)
    f.add_argument("--sigma-b", type=float, required=True)
    f.add_argument("--q0", type=float, default=1.0, help="input length |x|²/N_0 the length map starts from")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fixed_point)

    d = sub.add_parser("phase-diagram", help="q*, χ_1, c*, ξ_c on a (σ_w², σ_b²) grid: CSV + PNG")
    d.add_argument("activation")
    d.add_argument("--sigma-w2-max", type=float, default=4.0)
    d.add_argument("--sigma-b2-max", type=float, default=1.0)
    d.add_argument("-n", type=int, default=101, help="grid points per axis")
    d.add_argument("--no-corr", action="store_true", help="skip c* and ξ_c (much faster)")
    d.add_argument("--out", default=".")
    d.set_defaults(func=cmd_phase_diagram)

    r = sub.add_parser("run", help="the main job: phase diagrams, critical lines, then `verify` (report and figures)")
    r.add_argument("--out", default="out", help="output folder; the verify part writes into OUT/verify")
    r.add_argument("--theory-only", action="store_true", help="skip the verify part (no torch needed)")
    r.add_argument("--full", action="store_true", help="run verify at its full sizes (several minutes)")
    r.set_defaults(func=cmd_run)

    # Listed for --help only: main() hands `verify ...` to empirical.verify, which has its own options and --help.
    sub.add_parser("verify", add_help=False,
                   help="theory against sampled random networks: six experiments, figures, a Markdown report; "
                   "exit status 1 when a prediction misses (see `meanfield verify --help`)")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        return _verify_main(argv[1:])
    args = build_parser().parse_args(argv)
    import meanfield as mf

    try:
        return args.func(args) or 0
    except mf.MeanFieldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
