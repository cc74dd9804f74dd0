"""The ``meanfield`` command: critical points, fixed points, phase diagrams, and the main job ``run``.

Examples::

    meanfield critical tanh erf --sigma-b 0.1 0.3    # σ_w on the critical line for these biases, two activations
    meanfield critical tanh --sigma-b2 0.05          # the same with the bias variance σ_b²
    meanfield critical tanh --q-star 0.015625        # the critical (σ_w, σ_b) with this q*
    meanfield fixed-point tanh --sigma-w 1.5 --sigma-b 0.2 --format json
    meanfield phase-diagram tanh --out results/      # CSV table + PNG figure with the critical line
    meanfield verify --out verify/                   # theory against sampled networks: figures, report, exit status
    meanfield run --out out/                         # the main job: phase diagrams, critical lines, then verify

Conventions (THEORY §0): --sigma-w and --sigma-b take standard deviations (weights N(0, σ_w²/N), biases
N(0, σ_b²)); --sigma-w2 and --sigma-b2 take the variances σ_w², σ_b² instead (give one of each pair). q* and the
iteration start --q-init are variances (mean squared pre-activations). Tables carry both σ and σ².
Bad input exits with status 2 and a one-line message naming the argument.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

FORMATS = ("table", "csv", "json")


# ============================================================================================ argument types
def _number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return x


def _real_type(minimum: float, strict: bool, kind: str):
    """An argparse type: a finite float > ``minimum`` (``strict``) or ≥ it; ``kind`` says what it is in the message."""

    def parse(text: str) -> float:
        x = _number(text)
        if x < minimum or (strict and x == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '≥'} {minimum:g} ({kind}), got {text!r}")
        if "standard deviation" in kind and not math.isfinite(x * x):
            raise argparse.ArgumentTypeError(f"must be ≤ {math.sqrt(sys.float_info.max):.4g} ({kind} whose square "
                                             f"must be finite), got {text!r}")
        return x

    parse.__name__ = kind
    return parse


STD_POSITIVE = _real_type(0.0, True, "a standard deviation")
STD = _real_type(0.0, False, "a standard deviation")
VAR_POSITIVE = _real_type(0.0, True, "a variance")
VAR = _real_type(0.0, False, "a variance")


def _grid_size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 2, got {text!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 2 (points per axis), got {text!r}")
    return n


def _activation(text: str) -> str:
    """The activation name as given, once the registry or the expression parser accepts it."""
    import meanfield as mf

    try:
        mf.get_activation(text)
    except mf.MeanFieldError as exc:
        raise argparse.ArgumentTypeError(_one_line(exc)) from None
    return text


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


class _DeprecatedAlias(argparse.Action):
    """Stores the value; warns on stderr when the option was spelt as one of ``deprecated``."""

    def __init__(self, *args, deprecated=(), **kwargs):
        self.deprecated = tuple(deprecated)
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.deprecated:
            print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.option_strings[0]}",
                  file=sys.stderr)
        setattr(namespace, self.dest, values)


class _Formatter(argparse.HelpFormatter):
    """Every option's help ends with its default (flags: off; "required" or "default" already in the help text is
    left alone); one-paragraph descriptions are wrapped, multi-line text (the examples) is kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "default" in text or "required" in text or action.default is argparse.SUPPRESS:
            return text
        if action.nargs == 0:  # a flag
            return text + " (default: off)"
        if action.default is None:
            return text + " (default: none)"
        return text + " (default: %(default)s)"

    def _fill_text(self, text, width, indent):
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


# ================================================================================================= output
def _emit(rows: list[dict], fmt: str, out=None) -> None:
    """Rows as an aligned table, CSV or strict JSON (inf and NaN as the strings "inf", "nan")."""
    from meanfield.results import _encode

    out = out or sys.stdout
    keys = _columns(rows)
    if fmt == "json":
        out.write(json.dumps(_encode([{k: _plain(v) for k, v in r.items()} for r in rows]), indent=2,
                             allow_nan=False, ensure_ascii=False) + "\n")
        return
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        w.writerows({k: _plain(v) for k, v in r.items()} for r in rows)
        return
    cells = [[_cell(r[k]) if k in r else "" for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    out.write("  ".join(f"{k:>{w}}" for k, w in zip(keys, widths)) + "\n")
    for c in cells:
        out.write("  ".join(f"{v:>{w}}" for v, w in zip(c, widths)) + "\n")


def _columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in order of first appearance (a row may lack some: its cells stay empty)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.10g}"
    return str(v)


def _write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_columns(rows))
        w.writeheader()
        w.writerows(rows)


def _with_variances(rows: list[dict]) -> list[dict]:
    """Rows with σ_w², σ_b² columns right after σ_w, σ_b (where missing)."""
    out = []
    for r in rows:
        new = {}
        for k, v in r.items():
            new[k] = v
            if k in ("sigma_w", "sigma_b") and f"{k}2" not in r:
                new[f"{k}2"] = v * v
        out.append(new)
    return out


def _safe_filename(name: str) -> str:
    from meanfield.plotting import safe_filename

    return safe_filename(name)


def _sigma(args, name: str):
    """σ from ``--name`` (standard deviation) or ``--name2`` (variance): argparse makes them mutually exclusive."""
    sd, var = getattr(args, name), getattr(args, name + "2")
    if var is None:
        return sd
    return [math.sqrt(v) for v in var] if isinstance(var, list) else math.sqrt(var)


def _start_keyword(func) -> str:
    """The keyword of ``func`` for the length-map iteration's start: ``q_init`` (``q0`` in older versions)."""
    return "q_init" if "q_init" in inspect.signature(func).parameters else "q0"


# =============================================================================================== commands
def cmd_critical(args):
    import meanfield as mf

    rows = []
    for phi in args.activation:
        if args.q_star is not None:
            for q in args.q_star:
                sw, sb = mf.critical_point(phi, q, **_unstable(mf.critical_point, args))
                rows.append(dict(activation=phi, sigma_w=sw, sigma_b=sb, q_star=q))
                if args.allow_unstable and hasattr(mf, "critical_line"):
                    rows[-1]["stable"] = bool(mf.critical_line(phi, q).stable[0])
        elif args.sigma_w is not None or args.sigma_w2 is not None:
            for sw in _sigma(args, "sigma_w"):
                sb = mf.critical_sigma_b(phi, sw, **_unstable(mf.critical_sigma_b, args))
                rows.append(_critical_row(mf, phi, sw, sb, args))
        else:
            for sb in _sigma(args, "sigma_b"):
                sw = mf.critical_sigma_w(phi, sb, **_unstable(mf.critical_sigma_w, args))
                rows.append(_critical_row(mf, phi, sw, sb, args))
    _emit(_with_variances(rows), args.format)


def _unstable(func, args) -> dict:
    """``allow_unstable=True`` when asked for (and the library takes it)."""
    if not args.allow_unstable:
        return {}
    return {"allow_unstable": True} if "allow_unstable" in inspect.signature(func).parameters else {}


def _critical_row(mf, phi, sw, sb, args) -> dict:
    """A critical point given by σ_w and σ_b with its q*: the fixed point of the length map (0 included where it is
    one) with χ_1 closest to 1; NaN where there is none or every q is fixed (ReLU at σ_b = 0). With
    ``--allow-unstable`` also whether q* is stable."""
    row = dict(activation=phi, sigma_w=sw, sigma_b=sb)
    if not hasattr(mf, "fixed_points"):
        row["q_star"] = mf.q_star(phi, sw, sb) if sb > 0 else 0.0
        return row
    found = mf.fixed_points(phi, sw, sb)
    candidates = [(p.q, p.chi1, p.stable) for p in found]
    if found.zero_is_fixed:
        candidates.append((0.0, sw * sw * mf.get_activation(phi).dphi0 ** 2, found.zero_attracts))
    if found.every_q_fixed or not candidates:
        row["q_star"], stable = math.nan, False
    else:
        row["q_star"], _, stable = min(candidates, key=lambda c: abs(c[1] - 1.0))
    if args.allow_unstable:
        row["stable"] = bool(stable)
    return row


def cmd_fixed_point(args):
    import meanfield as mf

    start = {_start_keyword(mf.fixed_point): args.q_init}
    sw, sb = _sigma(args, "sigma_w"), _sigma(args, "sigma_b")
    rows = []
    for phi in args.activation:
        fp = mf.fixed_point(phi, sw, sb, **start)
        row = dict(activation=phi, sigma_w=sw, sigma_b=sb)
        keys = ("q_star", "chi1", "c_star", "chi_c", "slope_q", "stable", "xi_q", "xi_c", "phase")
        row.update({k: getattr(fp, k) for k in keys if hasattr(fp, k)})
        rows.append(row)
    _emit(_with_variances(rows), args.format)


def _phase_diagram(mf, phi, sw2_max, sb2_max, n, out, correlations=True, fmt="csv", q_init=None):
    """Phase diagram of ``phi`` on the grid uniform in σ_w² ∈ (0, sw2_max], σ_b² ∈ [0, sb2_max]: writes the table
    (CSV with σ and σ² columns, or the PhaseDiagram's JSON) and the figure; returns (PhaseDiagram, seconds, stem)."""
    from meanfield.plotting import plot_phase_diagram

    sw = np.sqrt(np.linspace(sw2_max / n, sw2_max, n))
    sb = np.sqrt(np.linspace(0.0, sb2_max, n))
    start = {} if q_init is None else {_start_keyword(mf.phase_diagram): q_init}
    t = time.perf_counter()
    pd = mf.phase_diagram(phi, sw, sb, correlations=correlations, progress=True, **start)
    elapsed = time.perf_counter() - t
    stem = f"phase_diagram_{_safe_filename(mf.get_activation(phi).name)}"
    if fmt == "json":
        (out / f"{stem}.json").write_text(pd.to_json(), encoding="utf-8")
    else:
        _write_csv(_with_variances(pd.to_records()), out / f"{stem}.csv")
    crit = None
    try:
        crit = _critical_line(mf, phi)
    except mf.MeanFieldError:
        pass
    plot_phase_diagram(pd, crit, out / f"{stem}.png")
    return pd, elapsed, stem


def _critical_line(mf, phi, n=60, q_range=(1e-3, 10.0)):
    """The critical line of ``phi`` at ``n`` values of q* in ``q_range``: a CriticalLine (stable and unstable parts;
    NaN where σ_b² would be < 0), or (σ_w, σ_b) arrays of its points where the library has no ``critical_line``."""
    qs = np.geomspace(*q_range, n)
    if hasattr(mf, "critical_line"):
        return mf.critical_line(phi, qs)
    sw, sb = [], []
    for q in qs:
        try:
            w, b = mf.critical_point(phi, q)
        except mf.NoCriticalPointError:
            continue
        sw.append(w)
        sb.append(b)
    return np.array(sw), np.array(sb)


def cmd_phase_diagram(args):
    import meanfield as mf

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sw2_max = args.sigma_w2_max if args.sigma_w_max is None else args.sigma_w_max**2
    sb2_max = args.sigma_b2_max if args.sigma_b_max is None else args.sigma_b_max**2
    for phi in args.activation:
        pd, elapsed, stem = _phase_diagram(mf, phi, sw2_max, sb2_max, args.n, out, not args.no_corr, args.format,
                                           args.q_init)
        print(f"{phi}: {pd.q_star.size} points in {elapsed:.3f} s -> {out / stem}.{args.format}, .png")


def _verify_main(argv):
    """``meanfield verify``: the empirical verifier's command (needs the ``empirical`` extra: torch, matplotlib).

    The arguments are checked here first (no abbreviations, a device this machine has, finite numbers) so that bad
    input is a one-line error with exit status 2."""
    try:
        from empirical.verify import build_parser
        from empirical.verify import main as verify_main
    except ImportError as exc:  # torch or matplotlib missing
        print(f"meanfield verify: error: needs the empirical extra (pip install 'meanfield[empirical]'): {exc}",
              file=sys.stderr)
        return 2
    parser = build_parser()
    parser.allow_abbrev = False
    args, extra = parser.parse_known_args(argv)  # exits 2 (usage + one line) on a bad option, 0 on --help
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    problem = _verify_problem(args)
    if problem:
        parser.error(problem)
    import meanfield as mf

    try:
        return verify_main(argv)
    except (mf.MeanFieldError, OSError) as exc:  # OSError: an output path that cannot be written
        print(f"meanfield verify: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _verify_problem(args) -> str | None:
    """What is wrong with parsed ``verify`` arguments (None when nothing is)."""
    scale = getattr(args, "theory_sigma_w_scale", 1.0)
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        return f"argument --theory-sigma-w-scale: must be finite and > 0, got {scale}"
    if getattr(args, "workers", 0) < 0:
        return f"argument --workers: must be ≥ 0, got {args.workers}"
    if getattr(args, "threads", 1) < 1:
        return f"argument --threads: must be ≥ 1, got {args.threads}"
    device = getattr(args, "device", None)
    if device is not None:
        return _device_problem(device)
    return None


def available_devices() -> list[str]:
    """Torch devices this machine can run the verifier on: "cpu", then "cuda", "cuda:0", … and "mps" if present."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def _device_problem(name: str) -> str | None:
    import torch

    avail = available_devices()
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        return f"argument --device: {name!r} is not a torch device; available here: {', '.join(avail)}"
    if str(dev) in avail or (dev.type == "cpu" and dev.index in (None, 0)):
        return None
    return f"argument --device: {name!r} is not available on this machine; available: {', '.join(avail)}"


# ================================================================================================ the main job
def cmd_run(args):
    """The main job: the theory steps (:data:`RUN_STEPS`: phase diagrams, critical lines, a fixed point) write figures
    and ``REPORT.md`` into ``--out``; then, unless ``--theory-only``, ``meanfield verify`` into ``OUT/verify``.
    Non-zero exit when either part fails."""
    status = _run_theory(args)
    if args.theory_only:
        return status
    print(f"\nmeanfield verify --out {Path(args.out) / 'verify'}" + (" --full" if args.full else ""))
    vstatus = _verify_main(["--out", str(Path(args.out) / "verify")] + (["--full"] if args.full else []))
    return status or vstatus


def _run_theory(args):
    """Runs every step of :data:`RUN_STEPS` in order; each appends lines to the report and returns an exit status."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = ["# meanfield run", ""]
    status = 0
    for step in RUN_STEPS:
        status = step(out, report) or status
    (out / "REPORT.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    print("\n".join(report))
    return status


def _run_phase_diagrams(out, report):
    import meanfield as mf

    for phi in _progress(["tanh", "erf"], 2, "phase diagrams"):
        pd, elapsed, stem = _phase_diagram(mf, phi, 4.0, 1.0, 61, out)
        n_chaotic = int(np.sum(pd.chi1 > 1))
        report.append(f"- {phi}: phase diagram {pd.q_star.size} points with c*, ξ_c in {elapsed:.2f} s; "
                      f"{n_chaotic} chaotic points; figure `{stem}.png`")
    return 0


def _run_critical_lines(out, report):
    """Critical lines of several activations: CSV (σ, σ², q*, stability, χ_1 = σ_w² μ_1(q*) by direct quadrature at
    the line's own q*) and figure; fails when a point misses χ_1 = 1 by more than 1e-8."""
    import meanfield as mf
    from meanfield.plotting import plot_critical_lines

    lines = {}
    names = ["tanh", "erf", "hard_tanh", "sigmoid", "atan(x)"]
    rows = []
    for phi in _progress(names, len(names), "critical lines"):
        line = _critical_line(mf, phi)
        lines[phi] = line
        if isinstance(line, tuple):
            for w, b in zip(*line):
                rows.append(dict(activation=phi, sigma_w=w, sigma_b=b, chi1=mf.chi1(phi, w, b)))
            continue
        for q, w, b, stable in zip(line.q_star, line.sigma_w, line.sigma_b, line.stable):
            if np.isfinite(b):
                chi1 = w * w * mf.gaussian_moments(phi, float(q)).mu1
                rows.append(dict(activation=phi, q_star=float(q), sigma_w=float(w), sigma_b=float(b),
                                 stable=bool(stable), chi1=chi1))
    _write_csv(_with_variances(rows), out / "critical_lines.csv")
    plot_critical_lines(lines, out / "critical_lines.png")
    worst = max(abs(r["chi1"] - 1.0) for r in rows)
    n_unstable = sum(1 for r in rows if r.get("stable") is False)
    report.append(f"- critical lines of {', '.join(names)}: {len(rows)} points ({n_unstable} at an unstable q*), "
                  f"max |χ_1 - 1| = {worst:.2e}; figure `critical_lines.png`")
    if worst > 1e-8:
        print(f"FAIL: a critical point has |χ_1 - 1| = {worst:.2e}", file=sys.stderr)
        return 1
    return 0


def _run_fixed_point(out, report):
    import meanfield as mf

    fp = mf.fixed_point("tanh", np.sqrt(2.5), np.sqrt(0.05))
    report.append(f"- tanh σ_w²=2.5, σ_b²=0.05: q*={fp.q_star:.6f}, χ_1={fp.chi1:.6f}, c*={fp.c_star:.6f}, "
                  f"ξ_c={fp.xi_c:.3f} ({fp.phase})")
    return 0


def _run_edge_of_chaos(out, report):
    """Where the stable edge of chaos of GELU, SiLU, ELU and x·tanh x lies (THEORY §6; docs/edge_of_chaos.md)."""
    import meanfield as mf
    from meanfield.plotting import plot_edge_of_chaos

    names = ("gelu", "silu", "elu", "x*tanh(x)")
    plot_edge_of_chaos(names, path=out / "edge_of_chaos.png")
    starts = []
    for phi in names:
        line = mf.critical_line(phi, np.geomspace(1e-3, 1e3, 400))
        stable = line.stable & np.isfinite(line.sigma_b)
        if stable.all():
            starts.append(f"{phi} everywhere")
        elif stable.any():
            i = int(np.flatnonzero(~stable)[-1]) + 1  # above the last unstable point the line is stable
            starts.append(f"{phi} from σ_b² ≈ {line.sigma_b[i] ** 2:.3g} (q* ≈ {line.q_star[i]:.3g}, grid of 400 q*)"
                          if i < stable.size else f"{phi} nowhere for q* ≤ 1e3")
        else:
            starts.append(f"{phi} nowhere for q* ≤ 1e3")
    report.append(f"- stable edge of chaos (χ_1 = 1 at a stable q*): {'; '.join(starts)}; figure `edge_of_chaos.png`")
    return 0


# The theory part of `meanfield run`, in order: each step(out: Path, report: list[str]) -> exit status (0: fine).
RUN_STEPS = [_run_phase_diagrams, _run_critical_lines, _run_edge_of_chaos, _run_fixed_point]


def _progress(it, total, label):
    """A minimal progress bar on stderr (no dependency)."""
    for i, x in enumerate(it):
        yield x
        done = int(30 * (i + 1) / total)
        sys.stderr.write(f"\r{label:<28} [{'#' * done}{'.' * (30 - done)}] {i + 1}/{total}")
        sys.stderr.flush()
    sys.stderr.write("\n")


# ================================================================================================== parser
def _subparser(sub, name, help, description):
    return sub.add_parser(name, help=help, description=description, allow_abbrev=False, formatter_class=_Formatter)


def _activations_arg(p):
    p.add_argument("activation", nargs="+", type=_activation,
                   help="one or more activations: registry names (tanh, relu, erf, ...) or expressions in x, "
                   "e.g. 'x*tanh(x)'")


def _format_args(p, choices=FORMATS, default="table", alias=True):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--format", choices=choices, default=default, help="output format")
    if alias:
        g.add_argument("--json", dest="format", action="store_const", const="json",
                       help="same as --format json")


def _pair(p, name, sd_type, var_type, nargs=None, required=False, what=""):
    """Mutually exclusive ``--{name}`` (standard deviation) and ``--{name}2`` (variance)."""
    g = p.add_mutually_exclusive_group(required=required)
    flag = name.replace("_", "-")
    sym = "σ_w" if name == "sigma_w" else "σ_b"
    meta = "SW" if name == "sigma_w" else "SB"
    g.add_argument(f"--{flag}", type=sd_type, nargs=nargs, metavar=meta, help=f"{what}: standard deviation {sym}")
    g.add_argument(f"--{flag}2", type=var_type, nargs=nargs, metavar=meta + "2",
                   help=f"{what}: variance {sym}² instead of --{flag}")


def _q_init_arg(p, default=1.0):
    extra = "" if default is not None else " (default: the library's, 1.0)"
    p.add_argument("--q-init", "--q0", dest="q_init", type=VAR_POSITIVE, default=default, metavar="Q",
                   action=_DeprecatedAlias, deprecated=("--q0",),
                   help="variance the length-map iteration starts from: q* is the stable fixed point it reaches "
                   "(--q0: deprecated spelling)" + extra)


def build_parser():
    p = argparse.ArgumentParser(
        prog="meanfield",
        description="Mean-field theory of deep networks at initialisation. σ_w, σ_b are standard deviations.",
        formatter_class=_Formatter,
        epilog=__doc__.split("Examples::")[1],
        allow_abbrev=False,
    )
    from meanfield import __version__

    p.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = _subparser(sub, "critical", "σ_w or σ_b on the order-to-chaos line χ_1 = 1 (given σ_b, σ_w or q*)",
                   "Points of the critical line χ_1 = 1: σ_w for given biases (--sigma-b or --sigma-b2), σ_b for "
                   "given weight scales (--sigma-w or --sigma-w2), or the (σ_w, σ_b) whose fixed point is q* "
                   "(--q-star). Give exactly one of these. One row per activation and value, with σ and σ².")
    _activations_arg(c)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--sigma-b", type=STD, nargs="+", metavar="SB", help="bias standard deviations σ_b: σ_w for each (required: this or one of the next four)")
    g.add_argument("--sigma-b2", type=VAR, nargs="+", metavar="SB2", help="bias variances σ_b²: σ_w for each (required: this or another of the five)")
    g.add_argument("--sigma-w", type=STD_POSITIVE, nargs="+", metavar="SW",
                   help="weight standard deviations σ_w: σ_b for each (required: this or another of the five)")
    g.add_argument("--sigma-w2", type=VAR_POSITIVE, nargs="+", metavar="SW2", help="weight variances σ_w²: σ_b for each (required: this or another of the five)")
    g.add_argument("--q-star", type=VAR_POSITIVE, nargs="+", metavar="Q",
                   help="fixed points q* (variances): the critical (σ_w, σ_b) for each (required: this or another of the five)")
    c.add_argument("--allow-unstable", action="store_true",
                   help="also return χ_1 = 1 points whose q* is an unstable fixed point of the length map (not an edge "
                   "of chaos; an error otherwise)")
    _format_args(c)
    c.set_defaults(func=cmd_critical)

    f = _subparser(sub, "fixed-point", "q*, c*, χ_1, χ_c, depth scales and phase at (σ_w, σ_b)",
                   "The fixed point q* of the length map reached from --q-init, the correlation fixed point c*, "
                   "χ_1, χ_c, the depth scales ξ_q, ξ_c and the phase, at one (σ_w, σ_b). Give σ_w by --sigma-w or "
                   "--sigma-w2 and σ_b by --sigma-b or --sigma-b2.")
    _activations_arg(f)
    _pair(f, "sigma_w", STD_POSITIVE, VAR_POSITIVE, required=True, what="weights (required)")
    _pair(f, "sigma_b", STD, VAR, required=True, what="biases (required)")
    _q_init_arg(f)
    _format_args(f)
    f.set_defaults(func=cmd_fixed_point)

    d = _subparser(sub, "phase-diagram", "q*, χ_1, c*, ξ_c on a (σ_w², σ_b²) grid: CSV (or JSON) + PNG",
                   "Phase diagram on a grid uniform in the variances: σ_w² in (0, SW2_MAX] (n points, the first "
                   "SW2_MAX/n), σ_b² in [0, SB2_MAX]. Writes phase_diagram_<activation>.csv (columns σ and σ²) or "
                   ".json, and the figure .png, into --out.")
    _activations_arg(d)
    g = d.add_mutually_exclusive_group()
    g.add_argument("--sigma-w2-max", type=VAR_POSITIVE, default=4.0, metavar="SW2_MAX",
                   help="largest weight variance σ_w² of the grid")
    g.add_argument("--sigma-w-max", type=STD_POSITIVE, default=None, metavar="SW_MAX",
                   help="largest σ_w instead (the grid stays uniform in σ_w²; default: from --sigma-w2-max)")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--sigma-b2-max", type=VAR_POSITIVE, default=1.0, metavar="SB2_MAX",
                   help="largest bias variance σ_b² of the grid")
    g.add_argument("--sigma-b-max", type=STD_POSITIVE, default=None, metavar="SB_MAX",
                   help="largest σ_b instead (the grid stays uniform in σ_b²; default: from --sigma-b2-max)")
    d.add_argument("-n", "--points", dest="n", type=_grid_size, default=101, metavar="N",
                   help="grid points per axis (≥ 2)")
    d.add_argument("--no-corr", action="store_true", help="skip c* and ξ_c (much faster)")
    _q_init_arg(d, default=None)
    d.add_argument("--out", default=".", help="output folder")
    _format_args(d, choices=("csv", "json"), default="csv", alias=False)
    d.set_defaults(func=cmd_phase_diagram)

    r = _subparser(sub, "run", "the main job: phase diagrams, critical lines, then `verify` (report and figures)",
                   "The main job: phase diagrams of tanh and erf, critical lines of several activations with the "
                   "worst |χ_1 - 1|, a fixed point, written with REPORT.md into --out; then `meanfield verify` "
                   "(theory against sampled networks) into OUT/verify. Exit status 1 when either part fails.")
    r.add_argument("--out", default="out", help="output folder; the verify part writes into OUT/verify")
    r.add_argument("--theory-only", action="store_true", help="skip the verify part (no torch needed)")
    r.add_argument("--full", action="store_true", help="run verify at its full sizes (several minutes)")
    r.set_defaults(func=cmd_run)

    # Listed for --help only: main() hands `verify ...` to empirical.verify, which has its own options and --help.
    sub.add_parser("verify", add_help=False,
                   help="theory against sampled random networks: seven experiments, figures, a Markdown report; "
                   "exit status 1 when a prediction misses (see `meanfield verify --help`)",
                   description="Checks the mean-field predictions against finite random networks (see "
                   "`meanfield verify --help`).")
    return p


def _subparsers(parser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def main(argv=None) -> int:
    """Runs the command; returns its exit status (2 for bad input, with a one-line message on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "verify":
            return _verify_main(argv[1:])
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the subcommand, with its usage
            _subparsers(parser)[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
        import meanfield as mf

        try:
            return args.func(args) or 0
        except mf.MeanFieldError as exc:
            text = _one_line(exc).replace("Pass allow_unstable=True", "Pass --allow-unstable")
            print(f"meanfield: error: {text}", file=sys.stderr)
            return 2
        except OSError as exc:  # an output path that cannot be written
            print(f"meanfield {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
