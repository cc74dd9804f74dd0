"""``verify``: run the seven theory-vs-simulation experiments, write figures and a report, fail when a prediction misses.

:func:`run_verify` runs :func:`empirical.experiments.run_all` at one of the :data:`SIZES` (``"default"`` is sized for a
two-core CPU, a few minutes at most; ``"full"`` is larger and slower; ``"tiny"`` is a smoke test), with a progress bar,
and writes into ``out_dir``:

* ``<experiment>.png`` — one figure per experiment (:mod:`empirical.plots`);
* ``report.md`` — a summary, the figures and every record of the table, failures first;
* ``results.csv`` and ``results.json`` — the table (the JSON holds the figures' data too:
  :meth:`~empirical.experiments.ResultTable.from_json` reads it back and :func:`empirical.plots.plot_all` redraws).

:func:`main` is the command line (``--out``, ``--full``, ``--size``, ``--workers``, ``--threads``, ``--quiet``,
``--theory-sigma-w-scale``); it exits with status 1 when a record misses its tolerance, 0 when all pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import torch

import meanfield as mf

from empirical import experiments as ex
from empirical import plots

__all__ = ["SIZES", "experiment_sizes", "run_verify", "main"]

SIZES = ("tiny", "default", "full")


def experiment_sizes(size: str = "default") -> dict:
    """Keyword arguments of each experiment for a size in :data:`SIZES`.

    ``"default"``: the experiments' own defaults — about 20 s of computation on two idle CPU cores with one torch
    thread (the whole run, imports and figures included, well under 3 minutes on a loaded machine); ``"full"``: larger
    widths, more seeds, depths and points (several minutes); ``"tiny"``: a smoke test of the whole pipeline (seconds).
    """
    if size == "default":
        return {name: {} for name in ex.EXPERIMENTS}
    if size == "tiny":
        critical = {"critical": ex.tanh_points()["critical"]}
        return {
            "trajectories": dict(depth=3, width=128, seeds=3, points=critical),
            "jacobian_spectra": dict(depth=3, width=96, seeds=3, points=ex.critical_points("tanh", (1 / 64,)),
                                     quantiles=(0.25, 0.5, 0.75), bins=20),
            "fisher_depth": dict(widths=(64,), depths=(1, 3), seeds=3, n_samples=8, weights=("orthogonal",),
                                 points=critical),
            "conditional_fisher": dict(depths=(1, 3), width=64, seeds=3, weights=("orthogonal",), bins=20),
            "learning_rate": dict(seeds=3),
            "sokol_park": dict(q_stars=(0.01, 0.5), depth=3, width=64, seeds=3),
            "ntk_kernels": dict(widths=(64, 128, 256, 512), seeds=3, n_inputs=8, train_width=256, steps=60),
        }
    if size == "full":
        return {
            "trajectories": dict(depth=16, width=1000, seeds=8),
            "jacobian_spectra": dict(depth=12, width=512, seeds=8),
            "fisher_depth": dict(widths=(128, 256, 512), depths=(1, 2, 4, 8, 16), seeds=8),
            "conditional_fisher": dict(points=ex.critical_points("tanh", (1 / 64, 0.5)), depths=(1, 2, 4, 8, 16, 32),
                                       width=400, seeds=6),
            "learning_rate": dict(points={**ex.tanh_points(), **ex.critical_points("tanh", (1 / 64,))}, width=1024,
                                  seeds=6),
            "sokol_park": dict(q_stars=(1e-3, 0.01, 0.1, 0.25, 1.0, 4.0), depth=10, width=400, seeds=6),
            "ntk_kernels": dict(widths=(64, 128, 256, 512, 1024, 2048, 4096), seeds=6, n_inputs=32, train_width=1024,
                                steps=300),
        }
    raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")


DESCRIPTIONS = {
    "trajectories": "q^l and c^l of two inputs, layer by layer, against the length and correlation maps "
    "(`meanfield.propagate`, THEORY §1) at ordered, critical and chaotic tanh points.",
    "jacobian_spectra": "Eigenvalues of JJᵀ against the free-probability spectrum "
    "(`meanfield.spectra.jacobian_spectrum`, THEORY §2) on the tanh critical line, Gaussian and orthogonal weights: "
    "mean, variance and quantiles.",
    "fisher_depth": "The Fisher information's λ_max, mean m_λ and second moment s_λ against depth "
    "(`meanfield.fisher_statistics`, Karakida et al. 2019, THEORY §3), Gaussian and orthogonal weights, "
    "on and off the critical line, two widths.",
    "conditional_fisher": "The conditional FIM F(θ|x)/N (C = N outputs) against "
    "`meanfield.conditional_fisher_spectrum` (Hayase & Karakida 2021, THEORY §4): under dynamical isometry λ_max "
    "grows ∝ depth.",
    "learning_rate": "Full-batch gradient descent on the squared loss at η = 0.9 and 1.1 × 2/λ_max(theory) "
    "(THEORY §3): monotone below, not above.",
    "sokol_park": "λ_max of the conditional FIM against σ_max²(J) and the Sokol–Park bound across q* on the critical "
    "line (THEORY §5).",
    "ntk_kernels": "The empirical NTK Θ/N and the NNGP of sampled networks against `meanfield.kernels` (THEORY §7) on "
    "points of a sphere and a two-moons set: mean entries per width, the deviation ‖K_N − K_∞‖/‖K_∞‖ shrinking like "
    "1/√N (fitted log-log slope against −1/2), and the NTK gradient-descent prediction (`meanfield.predict`) against "
    "networks trained by full-batch gradient descent.",
}


# ------------------------------------------------------------------------------------------------------ progress
class _Progress:
    """``progress(label, done, total)`` as a bar on stderr: tqdm when installed, else a plain text bar redrawn in place
    at most every 0.1 s on a terminal, or, when the stream is not a terminal (a CI log), one line every 10 s and one
    when the experiment finishes."""

    def __init__(self, n_experiments: int, stream=None):
        self.n = n_experiments
        self.index = 0
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None
        self.label = None
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is optional
            tqdm = None
        self.tqdm = tqdm
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self.label:
            self.close()
            self.label = label
            self.index += 1
            self.start = time.perf_counter()
            desc = f"[{self.index}/{self.n}] {label}"
            if self.tqdm is not None:
                self.bar = self.tqdm(total=total, desc=desc, file=self.stream, leave=True, dynamic_ncols=True)
            else:
                self.desc = desc
                self.last = self.start
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()
            return
        now = time.perf_counter()
        finished = done >= total
        if self.interactive:  # redraw in place, at most every 0.1 s
            if not finished and done > 0 and now - self.last < 0.1:
                return
            width = 30
            filled = int(width * done / max(total, 1))
            self.stream.write(f"\r{self.desc:<28} |{'█' * filled}{'·' * (width - filled)}| {done}/{total}"
                              f"  {now - self.start:5.1f}s" + ("\n" if finished else ""))
        else:  # a log file: one line every 10 s and one at the end, no carriage returns
            if not finished and now - self.last < 10.0:
                return
            self.stream.write(f"{self.desc:<28} {done}/{total}  {now - self.start:5.1f}s\n")
        self.last = now
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextmanager
def _torch_threads(n):
    """torch's intra-op thread count set to ``n`` for the duration (None: unchanged), restored afterwards."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -------------------------------------------------------------------------------------------------------- report
def _report(table, figures: dict, timings: dict, info: dict) -> str:
    lines = [
        "# meanfield verify: theory against simulation",
        "",
        f"**{'All predictions hold' if table.passed else 'Some predictions missed'}**: "
        f"{sum(r.passed for r in table.records)}/{len(table)} records within tolerance.",
        "",
        "| experiment | records | failed | time (s) |",
        "|---|---|---|---|",
    ]
    for s in table.summary():
        t = timings.get(s["experiment"], 0.0)
        lines.append(f"| {s['experiment']} | {s['records']} | {s['failed']} | {t:.1f} |")
    lines += [
        "",
        "Each record compares a theory value with the mean over seeds of a measurement on finite random networks; "
        "`spread` is the seed-to-seed standard deviation, `n` the number of seeds, and "
        "`tolerance` = k·max(spread, floor)/√n plus a finite-width allowance stated in the docstring of the experiment "
        "(`empirical.experiments`). "
        "Figures: theory as lines, simulations as mean ± one standard deviation over seeds.",
        "",
        "Run: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
    ]
    failures = table.failures()
    if len(failures):
        lines += ["## Failures", "", failures.to_markdown(), ""]
    for name in table.experiments:
        sub = table.select(experiment=name)
        lines += [f"## {name}", "", DESCRIPTIONS.get(name, ""), ""]
        if name in figures:
            lines += [f"![{name}]({os.path.basename(figures[name])})", ""]
        lines += [sub.to_markdown(), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- run
def run_verify(
    out_dir,
    full: bool = False,
    progress=True,
    *,
    size: str | None = None,
    sizes: dict | None = None,
    executor=None,
    threads: int | None = 1,
    device=None,
    theory_sigma_w_scale: float = 1.0,
):
    """Run the seven experiments, write figures, ``report.md``, ``results.csv`` and ``results.json`` into ``out_dir``.

    Parameters
    ----------
    out_dir : the output folder (created).
    full : use the ``"full"`` sizes instead of ``"default"``.
    progress : True for a progress bar on stderr (tqdm when installed), False for none, or a callable
        ``progress(label, done, total)``.
    size : one of :data:`SIZES` (overrides ``full``; see :func:`experiment_sizes`); ``sizes`` : ``{experiment: kwargs}``
        merged over those.
    executor : a :class:`concurrent.futures.Executor` for the networks (None: serial); results do not depend on it.
    threads : torch's intra-op threads during the run (restored afterwards); the networks are small, so one thread per
        task is fastest — scale out with ``executor`` instead. None leaves torch's setting alone.
    device : where the networks live (None: CUDA when available).
    theory_sigma_w_scale : evaluate the theory at σ_w × this (1: the real check; 1.1: a wrong theory, which fails).

    Returns
    -------
    (ResultTable, path of report.md)
    """
    name = size if size is not None else ("full" if full else "default")
    kw = experiment_sizes(name)
    for k, v in (sizes or {}).items():
        kw.setdefault(k, {}).update(v)
    os.makedirs(out_dir, exist_ok=True)
    if progress is True:
        bar = _Progress(len(ex.EXPERIMENTS))
    elif progress is False or progress is None:
        bar = None
    else:
        bar = progress
    table = ex.ResultTable()
    timings = {}
    t_start = time.perf_counter()
    with _torch_threads(threads):
        for exp in ex.EXPERIMENTS:
            t0 = time.perf_counter()
            table = table + ex.run_all({exp: kw.get(exp, {})}, executor=executor, progress=bar, device=device,
                                       theory_sigma_w_scale=theory_sigma_w_scale, experiments=(exp,))
            timings[exp] = time.perf_counter() - t0
        if isinstance(bar, _Progress):
            bar.close()
        figures = plots.plot_all(table, out_dir)
    elapsed = time.perf_counter() - t_start
    info = {
        "size": f"`{name}`",
        "time": f"{elapsed:.1f} s",
        "meanfield": mf.__version__,
        "torch": torch.__version__,
        "device": str(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")),
        "torch threads": str(threads if threads is not None else torch.get_num_threads()),
        "executor": type(executor).__name__ if executor is not None else "serial",
        "python": platform.python_version(),
    }
    if theory_sigma_w_scale != 1.0:
        info["theory σ_w scale"] = f"{theory_sigma_w_scale:g} (a deliberately wrong theory)"
    table.to_csv(os.path.join(out_dir, "results.csv"))
    table.to_json(os.path.join(out_dir, "results.json"))
    report = os.path.join(out_dir, "report.md")
    with open(report, "w", encoding="utf-8") as fh:
        fh.write(_report(table, figures, timings, info))
    return table, report


# ------------------------------------------------------------------------------------------------------ command
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="meanfield verify",
        description="Check the mean-field predictions against finite random networks: seven experiments, figures and a "
        "Markdown report. Exits with status 1 when a prediction misses its tolerance.",
    )
    p.add_argument("--out", default="verify", help="output folder (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="larger widths, more seeds and depths (several minutes)")
    p.add_argument("--size", choices=SIZES, default=None, help="sizes by name (overrides --full)")
    p.add_argument("--workers", type=int, default=0, help="threads running networks in parallel (0: serial)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: CUDA when available, else CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--theory-sigma-w-scale", type=float, default=1.0, metavar="X",
                   help="evaluate the theory at sigma_w*X: X != 1 is a deliberately wrong theory, "
                   "to see the checks fail")
    return p


def main(argv=None) -> int:
    """``meanfield verify``: returns the exit status (0: every prediction holds; 1: some missed; 2: bad arguments)."""
    args = build_parser().parse_args(argv)
    if args.workers < 0 or args.threads < 1:
        print("error: --workers must be ≥ 0 and --threads ≥ 1", file=sys.stderr)
        return 2
    pool = ThreadPoolExecutor(args.workers) if args.workers > 0 else nullcontext(None)
    with pool as executor:
        table, report = run_verify(args.out, full=args.full, progress=not args.quiet, size=args.size,
                                   executor=executor, threads=args.threads, device=args.device,
                                   theory_sigma_w_scale=args.theory_sigma_w_scale)
    for s in table.summary():
        mark = "ok  " if s["passed"] else "FAIL"
        print(f"{mark} {s['experiment']:<20} {s['records'] - s['failed']}/{s['records']} records within tolerance")
    print(f"report: {report}")
    if not table.passed:
        print(f"{len(table.failures())} record(s) missed their tolerance:", file=sys.stderr)
        print(table.failures().to_markdown(max_rows=20), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
