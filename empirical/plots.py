"""Figures of the theory-vs-simulation experiments (:mod:`empirical.experiments`): one function per experiment.

Each function takes a :class:`~empirical.experiments.ResultTable` (or anything with its ``records`` and ``data``) and
draws what the experiment computed — theory curves as lines, simulations as markers with error bars of ± one
seed-to-seed standard deviation (the records' ``spread``), log axes where a scaling is the point. Nothing here
computes physics: histograms, theory densities and theory curves on fine grids come in ``table.data``.

``path`` (every function): when given, the figure is saved there and closed (pyplot keeps no reference); the figure
is returned either way. matplotlib is imported when a function is first called, never at import of the package.
"""

from __future__ import annotations

import os
from itertools import cycle

import numpy as np

__all__ = [
    "plot_trajectories",
    "plot_jacobian_spectra",
    "plot_fisher_depth",
    "plot_conditional_fisher",
    "plot_learning_rate",
    "plot_sokol_park",
    "plot_ntk_kernels",
    "plot_experiment",
    "plot_all",
    "plot_description",
    "FIGURES",
]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P")
DPI = 110
THEORY = dict(lw=1.8, alpha=0.9)
POINTS = dict(ms=5, capsize=2.5, lw=0, elinewidth=1.1)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=DPI)
        _plt().close(fig)
    return fig


def _payloads(table, experiment):
    data = getattr(table, "data", {}).get(experiment, [])
    if not data:
        raise ValueError(f"the table holds no data for {experiment!r}: run empirical.experiments.{experiment} first")
    return data


def _series(table, experiment, quantity, key, **params):
    """(x, mean, spread, theory) over the records of one quantity matching ``params``, sorted by param ``key``."""
    recs = [
        r
        for r in table.records
        if r.experiment == experiment
        and r.quantity == quantity
        and all(r.params.get(k) == v for k, v in params.items())
    ]
    recs.sort(key=lambda r: r.params[key])
    arr = lambda f: np.array([f(r) for r in recs], dtype=np.float64)  # noqa: E731
    return arr(lambda r: r.params[key]), arr(lambda r: r.measured), arr(lambda r: r.spread), arr(lambda r: r.theory)


def _log_histogram(ax, d, color, edge):
    """A histogram of log₁₀ λ (``bin_edges``, ``histogram``) with the theory density of log₁₀ λ (``x``,
    ``log10_density``) and the edge; a log λ axis unless the spectrum spans less than a decade."""
    ax.stairs(d["histogram"], d["bin_edges"], fill=True, color=color, alpha=0.35, label="simulation")
    ax.plot(d["x"], d["log10_density"], "k-", lw=1.4, label="theory")
    ax.axvline(edge, color="k", ls=":", lw=1, label="edge")
    if d["bin_edges"][-1] / d["bin_edges"][0] > 10.0:
        ax.set_xscale("log")
    ax.set_ylabel(r"density of $\log_{10}\lambda$")


def _verdict(table, experiment, **params):
    recs = [
        r
        for r in table.records
        if r.experiment == experiment and all(r.params.get(k) == v for k, v in params.items())
    ]
    bad = sum(not r.passed for r in recs)
    return f"{len(recs) - bad}/{len(recs)} within tolerance"


# ---------------------------------------------------------------------------------------------------- (1) trajectories
def plot_trajectories(table, path=None):
    """q^l (log scale) and c^l vs layer: :func:`meanfield.propagate` (lines) and simulations (markers)."""
    plt = _plt()
    data = _payloads(table, "trajectories")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), constrained_layout=True)
    for d, color, marker in zip(data, cycle(COLORS), cycle(MARKERS)):
        label = f"{d['point']} ($\\sigma_w^2$={d['sigma_w'] ** 2:.3g}, $\\sigma_b^2$={d['sigma_b'] ** 2:.3g})"
        for ax, qty in zip(axes, ("q", "c")):
            x, m, s, t = _series(table, "trajectories", qty, "layer", point=d["point"])
            ax.plot(d["layers"], d[f"{qty}_theory"], "-", color=color, label=label, **THEORY)
            ax.errorbar(x, m, yerr=s, fmt=marker, color=color, mfc="white", **POINTS)
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"$q^l = |h^l|^2/N$")
    axes[1].set_ylabel(r"$c^l$ (two inputs)")
    for ax in axes:
        ax.set_xlabel("layer $l$")
    d0 = data[0]
    n = len(d0["q"])
    axes[0].set_title(f"length map: theory (lines), N = {d0['width']}, mean ± s.d. of {n} seeds")
    axes[1].set_title(f"correlation map ({_verdict(table, 'trajectories')})")
    axes[0].legend(fontsize=8)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------- (2) Jacobian spectra
def plot_jacobian_spectra(table, path=None):
    """Histograms of log₁₀ λ(JJᵀ) pooled over seeds against the free-probability density, one panel per point and
    weight ensemble (rows: ensembles)."""
    plt = _plt()
    data = _payloads(table, "jacobian_spectra")
    ws = list(dict.fromkeys(d["weights"] for d in data))
    pts = list(dict.fromkeys(d["point"] for d in data))
    fig, axes = plt.subplots(len(ws), len(pts), figsize=(3.6 * len(pts) + 0.6, 3.0 * len(ws) + 0.4),
                             constrained_layout=True, squeeze=False)
    for d in data:
        i, j = ws.index(d["weights"]), pts.index(d["point"])
        ax = axes[i, j]
        color = COLORS[i % len(COLORS)]
        _log_histogram(ax, d, color, d["theory_edge"])
        ax.set_title(f"{d['weights']}, {d['point']}, L = {d['depth']}", fontsize=10)
        m = table.select(experiment="jacobian_spectra", quantity="mean", point=d["point"], weights=d["weights"])
        v = table.select(experiment="jacobian_spectra", quantity="variance", point=d["point"], weights=d["weights"])
        if len(m) and len(v):
            ax.text(0.02, 0.97, f"mean {m[0].measured:.3g} (theory {m[0].theory:.3g})\n"
                    f"var {v[0].measured:.3g} (theory {v[0].theory:.3g})",
                    transform=ax.transAxes, va="top", fontsize=7.5)
        if j > 0:
            ax.set_ylabel("")
        if i == len(ws) - 1:
            ax.set_xlabel(r"eigenvalue $\lambda$ of $JJ^T$")
    axes[0, 0].legend(fontsize=7.5, loc="center left")
    fig.suptitle(f"Jacobian spectra on the critical line, N = {data[0]['width']} "
                 f"({_verdict(table, 'jacobian_spectra')})", fontsize=11)
    return _finish(fig, path)


# ------------------------------------------------------------------------------------------------- (3) FIM vs depth
_FISHER_PANELS = (
    ("lambda_max", r"$\lambda_{max}/N$", lambda N: 1.0 / N),
    ("mean_eigenvalue", r"$m_\lambda \cdot N$", lambda N: float(N)),
    ("second_moment", r"$s_\lambda$", lambda N: 1.0),
)


def plot_fisher_depth(table, path=None):
    """λ_max/N, N·m_λ and s_λ of the FIM vs depth (log–log; the widths collapse under these scalings): Karakida's
    mean-field theory (lines, one per width) and simulations (markers: one shape per width), Gaussian and orthogonal
    weights in the two columns, points in colours."""
    plt = _plt()
    data = _payloads(table, "fisher_depth")
    ws = list(dict.fromkeys(d["weights"] for d in data))
    pts = list(dict.fromkeys(d["point"] for d in data))
    Ns = sorted({d["width"] for d in data})
    fig, axes = plt.subplots(len(_FISHER_PANELS), len(ws), figsize=(5.2 * len(ws), 3.2 * len(_FISHER_PANELS)),
                             constrained_layout=True, squeeze=False, sharex=True)
    for d in data:
        j = ws.index(d["weights"])
        color = COLORS[pts.index(d["point"]) % len(COLORS)]
        k = Ns.index(d["width"])
        marker, dash = MARKERS[k % len(MARKERS)], ("-", "--", ":", "-.")[k % 4]
        for i, (qty, _, norm) in enumerate(_FISHER_PANELS):
            ax = axes[i, j]
            c = norm(d["width"])
            ax.plot(d["theory_depths"], c * d[f"theory_{qty}"], dash, color=color, **THEORY)
            x, m, s, _ = _series(table, "fisher_depth", qty, "depth", point=d["point"], weights=d["weights"],
                                 width=d["width"])
            shift = 1.0 + 0.05 * (k - (len(Ns) - 1) / 2.0)  # side by side, not on top of each other
            ax.errorbar(x * shift, c * m, yerr=c * s, fmt=marker, color=color, mfc="white", **POINTS)
    for j, w in enumerate(ws):
        axes[0, j].set_title(f"{w} weights")
        axes[-1, j].set_xlabel("depth $L$ (hidden layers)")
        for i, (_, label, _) in enumerate(_FISHER_PANELS):
            axes[i, j].set_xscale("log", base=2)
            axes[i, j].set_yscale("log")
            if j == 0:
                axes[i, j].set_ylabel(label)
    # legends: colours = points, markers = widths
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS[i % len(COLORS)], lw=2, label=p) for i, p in enumerate(pts)]
    handles += [Line2D([], [], color="gray", marker=MARKERS[k % len(MARKERS)], ls=("-", "--", ":", "-.")[k % 4],
                       mfc="white", label=f"N = {N}") for k, N in enumerate(Ns)]
    axes[0, 0].legend(handles=handles, fontsize=8)
    d0 = data[0]
    fig.suptitle(f"Fisher information vs depth: theory (lines) and mean ± s.d. of {len(d0['lambda_max'][0])} seeds, "
                 f"T = {d0['n_samples']} inputs ({_verdict(table, 'fisher_depth')})", fontsize=11)
    return _finish(fig, path)


# ------------------------------------------------------------------------------------------- (4) conditional FIM
def plot_conditional_fisher(table, path=None):
    """Top row: λ_max (the theory's edge) and the mean of F(θ|x)/N vs depth, one panel per point and ensemble (linear
    axes: both grow ∝ L under dynamical isometry), theory lines and simulation markers. Bottom row: the spectrum at the
    largest depth (histogram of log₁₀ λ) against the theory density."""
    plt = _plt()
    data = _payloads(table, "conditional_fisher")
    fig, axes = plt.subplots(2, len(data), figsize=(4.8 * len(data), 7.0), constrained_layout=True, squeeze=False)
    for k, d in enumerate(data):
        color = COLORS[k % len(COLORS)]
        ax = axes[0, k]
        for qty, marker, ls, label in (("lambda_max", "o", "-", "λ_max"), ("mean", "s", "--", "mean")):
            ax.plot(d["depths"], d[f"theory_{qty}"], ls, color=color, **THEORY, label=f"theory {label}")
            x, m, s, _ = _series(table, "conditional_fisher", qty, "depth", point=d["point"], weights=d["weights"])
            ax.errorbar(x, m, yerr=s, fmt=marker, color=color, mfc="white", **POINTS, label=f"simulation {label}")
        ax.set_xlabel("depth $L$")
        ax.set_ylabel(r"eigenvalues of $F(\theta|x)/N$")
        ax.set_ylim(bottom=0.0)
        ax.set_title(f"{d['weights']}, {d['point']}, N = C = {d['width']}\n"
                     f"({_verdict(table, 'conditional_fisher', point=d['point'], weights=d['weights'])})", fontsize=10)
        ax.legend(fontsize=8)
        ax = axes[1, k]
        if "histogram" in d:
            i = int(np.argmax(d["depths"]))
            _log_histogram(ax, d, color, d["theory_lambda_max"][i])
            for loc, mass in np.asarray(d.get("atoms", np.zeros((0, 2)))).reshape(-1, 2):
                ax.axvline(loc, color=color, lw=2, label=f"atom, mass {mass:.2g}")
            ax.set_title(f"spectrum at L = {int(d['spectrum_depth'])}", fontsize=10)
            ax.legend(fontsize=8)
        ax.set_xlabel(r"eigenvalue $\lambda$ of $F(\theta|x)/N$")
    return _finish(fig, path)


# ----------------------------------------------------------------------------------------------- (5) learning rate
def plot_learning_rate(table, path=None):
    """Loss / initial loss vs gradient-descent step (log scale) at each η = factor × 2/λ_max(theory), every seed a
    thin line, one panel per point."""
    plt = _plt()
    data = _payloads(table, "learning_rate")
    fig, axes = plt.subplots(1, len(data), figsize=(5.4 * len(data), 4.0), constrained_layout=True, squeeze=False)
    for ax, d in zip(axes[0], data):
        for k, (key, curves) in enumerate(sorted(d["losses"].items(), key=lambda kv: float(kv[0]))):
            color = COLORS[k % len(COLORS)]
            f = float(key)
            rec = table.select(experiment="learning_rate", quantity=f"monotone@eta={key}x2/lambda_max",
                               point=d["point"])
            frac = ""
            if len(rec):
                r = rec[0]
                frac = f"{r.measured:.0%} of {r.n} seeds monotone" if r.n else "no seed near enough to test"
                if r.params.get("excused"):
                    frac += f", {r.params['excused']} excused"
            for s, c in enumerate(np.atleast_2d(curves)):
                ax.plot(np.arange(len(c)), c / c[0], color=color, lw=1.2, alpha=0.8,
                        label=f"η = {f:g} × 2/λ_max ({'predicted monotone' if f < 1 else 'predicted not monotone'}; "
                        f"{frac})" if s == 0 else None)
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel("loss / initial loss")
        lam = d["lambda_max"]
        sd = np.std(lam, ddof=1) if len(lam) > 1 else 0.0
        ax.set_title(f"{d['point']} tanh, {d['weights']}, L = {d['depth']}, N = {d['width']}\n"
                     f"λ_max theory {d['theory_lambda_max']:.4g}, measured {np.mean(lam):.4g} ± {sd:.2g}", fontsize=10)
        ax.legend(fontsize=7.5, loc="lower left")
    return _finish(fig, path)


# -------------------------------------------------------------------------------------------------- (6) Sokol–Park
def plot_sokol_park(table, path=None):
    """Left: λ_max(F(θ|x))/N and the Sokol–Park bound against σ_max²(J) across q* on the critical line (log–log), theory
    curves parametrised by q* and simulations with error bars in both directions. Right: the three against q*."""
    plt = _plt()
    (d,) = _payloads(table, "sokol_park")[:1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    ax = axes[0]
    ax.plot(d["curve_sigma_max_sq"], d["curve_lambda_max"], "-", color=COLORS[0], label="theory λ_max(F(θ|x))/N",
            **THEORY)
    ax.plot(d["curve_sigma_max_sq"], d["curve_bound"], "--", color=COLORS[1], label="theory bound / N", **THEORY)
    sm, ss = np.mean(d["sigma_max_sq"], axis=1), np.std(d["sigma_max_sq"], axis=1, ddof=1)
    for key, color, marker in (("lambda_max", COLORS[0], "o"), ("bound", COLORS[1], "s")):
        m, s = np.mean(d[key], axis=1), np.std(d[key], axis=1, ddof=1)
        ax.errorbar(sm, m, xerr=ss, yerr=s, fmt=marker, color=color, mfc="white", **POINTS,
                    label=f"simulation {'λ_max' if key == 'lambda_max' else 'bound'}")
    for q, x, y in zip(d["q_star"], sm, np.mean(d["lambda_max"], axis=1)):
        ax.annotate(f"q*={q:g}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=7.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\sigma_{max}^2(J)$, input-output Jacobian")
    ax.set_ylabel(r"$\lambda_{max}(F(\theta|x))/N$")
    ax.set_title(f"curvature follows the Jacobian ({d['weights']}, L = {d['depth']}, N = C = {d['width']})",
                 fontsize=10)
    ax.legend(fontsize=7.5)
    ax = axes[1]
    for key, color, marker, label in (("sigma_max_sq", COLORS[2], "^", r"$\sigma_{max}^2(J)$"),
                                      ("lambda_max", COLORS[0], "o", r"$\lambda_{max}/N$"),
                                      ("bound", COLORS[1], "s", "bound / N")):
        ax.plot(d["curve_q_star"], d[f"curve_{key}"], "-", color=color, **THEORY, label=label)
        x, m, s, _ = _series(table, "sokol_park", "sigma_max_sq_J" if key == "sigma_max_sq" else key, "q_star")
        ax.errorbar(x, m, yerr=s, fmt=marker, color=color, mfc="white", **POINTS)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$q^*$ on the critical line")
    ax.set_title(f"vs q*: theory (lines), mean ± s.d. of {d['lambda_max'].shape[1]} seeds "
                 f"({_verdict(table, 'sokol_park')})", fontsize=10)
    ax.legend(fontsize=8)
    return _finish(fig, path)


# ------------------------------------------------------------------------------------------------- (7) NTK kernels
def plot_ntk_kernels(table, path=None):
    """Left panels, one per data set: the deviation ‖K_N − K_∞‖_F/‖K_∞‖ of the NNGP and of Θ/N from
    :func:`meanfield.kernels` against the width N (log–log), every seed a marker, the fitted power law (its slope, the
    mean of the per-seed slopes, in the legend) and a N^{-1/2} reference through the fit's centre. Right panel (when the
    table holds it): the NTK gradient-descent prediction against the trained networks at each test point, mean ± s.d.
    over seeds, with the diagonal."""
    plt = _plt()
    data = _payloads(table, "ntk_kernels")
    devs = [d for d in data if d["kernel"] != "prediction"]
    preds = [d for d in data if d["kernel"] == "prediction"]
    sets = list(dict.fromkeys(d["data"] for d in devs))
    kernels = list(dict.fromkeys(d["kernel"] for d in devs))
    n_panels = len(sets) + len(preds)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.6 * n_panels, 4.2), constrained_layout=True, squeeze=False)
    axes = axes[0]
    for d in devs:
        ax = axes[sets.index(d["data"])]
        k = kernels.index(d["kernel"])
        color, marker = COLORS[k % len(COLORS)], MARKERS[k % len(MARKERS)]
        ws, dev = np.asarray(d["widths"], dtype=np.float64), np.atleast_2d(np.asarray(d["deviation"], np.float64))
        shift = 1.0 + 0.04 * (k - (len(kernels) - 1) / 2.0)  # side by side, not on top of each other
        for s, row in enumerate(dev):
            ax.plot(ws * shift, row, marker, color=color, mfc="white", ms=4.5, alpha=0.8, ls="none",
                    label=f"{d['kernel'].upper()}: {len(dev)} seeds" if s == 0 else None)
        # the pooled least-squares line over all seeds: its slope is the mean of the per-seed slopes
        lx, ly = np.log(ws), np.log(dev)
        slope = float(d["slope"])
        centre_x, centre_y = float(lx.mean()), float(ly.mean())
        grid = np.exp(np.linspace(lx[0], lx[-1], 50))
        rec = table.select(experiment="ntk_kernels", quantity="slope", data=d["data"], kernel=d["kernel"])
        verdict = ""
        if len(rec):
            r = rec[0]
            verdict = f" (−1/2 within {r.tolerance:.2g} {'✓' if r.passed else '✗'})"
        ax.plot(grid, np.exp(centre_y + slope * (np.log(grid) - centre_x)), "-", color=color, **THEORY,
                label=f"{d['kernel'].upper()} fit: slope {slope:.3f}{verdict}")
        ax.plot(grid, np.exp(centre_y - 0.5 * (np.log(grid) - centre_x)), ":", color="k", lw=1.2,
                label=r"$\propto N^{-1/2}$" if k == len(kernels) - 1 else None)
    recs = table.select(experiment="ntk_kernels", quantity="slope")
    about = ""
    if len(recs):
        p = recs[0].params
        about = f"{p.get('activation', '')}, L = {p.get('depth', '')}, σ_w = {p.get('sigma_w', 0):g}, " \
                f"σ_b = {p.get('sigma_b', 0):g}"
    for i, name in enumerate(sets):
        ax = axes[i]
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width $N$")
        ax.set_ylabel(r"$\|K_N - K_\infty\|_F / \|K_\infty\|_F$")
        kt = [r for r in table.select(experiment="ntk_kernels", data=name).records if r.quantity != "prediction"]
        ax.set_title(f"{name}: {sum(r.passed for r in kt)}/{len(kt)} within tolerance (slopes, mean entries)",
                     fontsize=10)
        ax.legend(fontsize=7.5, loc="lower left")
    for j, d in enumerate(preds):
        ax = axes[len(sets) + j]
        th = np.asarray(d["theory"], dtype=np.float64)
        got = np.atleast_2d(np.asarray(d["measured"], dtype=np.float64))
        sd = np.std(got, axis=0, ddof=1) if got.shape[0] > 1 else np.zeros(th.shape)
        lo, hi = float(min(th.min(), got.mean(0).min())), float(max(th.max(), got.mean(0).max()))
        pad = 0.08 * (hi - lo if hi > lo else 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=1.0, alpha=0.7, label="theory = measured")
        ax.errorbar(th, got.mean(0), yerr=sd, fmt="o", color=COLORS[2], mfc="white", **POINTS,
                    label=f"trained networks, mean ± s.d. of {got.shape[0]} seeds")
        ax.set_xlabel("NTK gradient-descent prediction (meanfield.predict)")
        ax.set_ylabel("trained network (initial function removed)")
        rp = table.select(experiment="ntk_kernels", quantity="prediction", data=d["data"])
        width = rp[0].params.get("width", "") if len(rp) else ""
        ax.set_title(f"{d['data']} test points, N = {width}: {_verdict(rp, 'ntk_kernels')}", fontsize=10)
        ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(f"empirical NNGP and NTK/N against the infinite-width kernels ({about})", fontsize=11)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------------------- all
FIGURES = {
    "trajectories": plot_trajectories,
    "jacobian_spectra": plot_jacobian_spectra,
    "fisher_depth": plot_fisher_depth,
    "conditional_fisher": plot_conditional_fisher,
    "learning_rate": plot_learning_rate,
    "sokol_park": plot_sokol_park,
    "ntk_kernels": plot_ntk_kernels,
}


def plot_experiment(table, experiment: str, path=None):
    """The figure of one experiment by name (a key of :data:`FIGURES`)."""
    if experiment not in FIGURES:
        raise ValueError(f"no figure for experiment {experiment!r}; known: {', '.join(FIGURES)}")
    return FIGURES[experiment](table, path=path)


def plot_all(table, out_dir, fmt: str = "png") -> dict:
    """Save the figure of every experiment present in ``table.data`` as ``out_dir/<experiment>.<fmt>``; returns
    ``{experiment: path}``."""
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for name in FIGURES:
        if getattr(table, "data", {}).get(name):
            path = os.path.join(out_dir, f"{name}.{fmt}")
            FIGURES[name](table, path=path)
            out[name] = path
    return out


def plot_description(desc, path=None):
    """The mean-field reading of a user's model (:func:`empirical.describe`): q^l per layer (theory line, measured
    markers when measured), each layer's Jacobian gain χ_1 with the critical value 1, and each layer's correlation depth
    scale ξ_c at its own fixed point beside the model's ξ_c along the trajectory and the depth L (the edge-of-chaos
    criterion is the model's ξ_c ≥ L)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    layers = np.array([r["layer"] for r in desc.layers])
    q = np.array([r["q"] for r in desc.layers])
    ax = axes[0]
    ax.plot(layers, q, color=COLORS[0], label="theory", **THEORY)
    if desc.measured is not None:
        ax.plot(layers, [r["q_measured"] for r in desc.layers], "o", color=COLORS[1], ms=4, label="measured")
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("q^l (pre-activation variance)")
    ax.legend(frameon=False)
    ax = axes[1]
    ax.plot(layers, [r["chi1"] for r in desc.layers], "o-", color=COLORS[2], ms=4, lw=1.2)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("χ_1 = σ_w² E[φ'(h)²]")
    ax = axes[2]
    xi = np.array([r["xi_c"] for r in desc.layers], dtype=float)
    shown = np.where(np.isfinite(xi), xi, np.nan)
    ax.plot(layers, shown, "o-", color=COLORS[3], ms=4, lw=1.2, label="ξ_c of the layer's own fixed point")
    if np.isfinite(desc.xi_c) and desc.xi_c > 0:
        ax.axhline(desc.xi_c, color=COLORS[3], lw=1.2, ls=":", label="ξ_c along the trajectory")
    ax.axhline(desc.depth, color="k", lw=0.8, ls="--", label=f"depth L = {desc.depth}")
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("ξ_c (infinite values not drawn)")
    ax.legend(frameon=False)
    fig.suptitle(f"edge of chaos (ξ_c = {desc.xi_c:.3g} ≥ L along the trajectory): {'yes' if desc.edge_of_chaos else 'no'}; "
                 f"FIM λ_max {desc.fisher_lambda_max:.4g}, learning-rate bound {desc.learning_rate_bound:.3g}")
    fig.tight_layout()
    return _finish(fig, path)
