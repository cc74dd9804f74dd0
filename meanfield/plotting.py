"""Figures of theory results (matplotlib is imported here only, never by the theory modules).

Conventions on every figure: the axes carry the variances σ_w², σ_b² (the Python API takes the standard deviations σ_w,
σ_b; THEORY §0), and the titles name the activation. The critical line χ_1 = 1 (THEORY §1) is drawn solid where its
fixed point q* is stable (the edge of chaos) and dashed grey where q* is unstable (THEORY §6: the length map's slope
g'(q*) > 1 there, so no network sits on it); each drawn line has exactly one legend entry.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["plot_phase_diagram", "plot_critical_lines", "plot_edge_of_chaos", "safe_filename"]

# Colours of the regions without a fixed point (never white, which the diverging χ_1 map uses for χ_1 = 1).
DIVERGED_COLOR = "#4d4d4d"
NO_FIXED_POINT_COLOR = "#c08a00"
STABLE_STYLE = dict(color="k", ls="-", lw=2.0)
UNSTABLE_STYLE = dict(color="0.45", ls="--", lw=1.8)
SIGMA_W2 = r"$\sigma_w^2$ (weight variance)"
SIGMA_B2 = r"$\sigma_b^2$ (bias variance)"


def _plt():
    # No backend is forced: headless runs fall back to Agg by themselves, notebooks keep their inline backend.
    import matplotlib.pyplot as plt

    return plt


def safe_filename(name: str, max_length: int = 80) -> str:
    """A file-name stem for any activation name or expression: letters, digits, ``.``, ``_`` and ``-`` only.

    Names that are already safe come back unchanged (``"tanh"``, ``"hard_tanh"``); otherwise every run of other
    characters becomes ``_`` and a short hash of the original name is appended, so that different expressions never
    share a file (``"x*tanh(x)"`` → ``"x_tanh_x-<hash>"``, ``"x+tanh(x)"`` gets another hash).
    """
    name = str(name)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:max_length]
    if clean == name and clean:
        return clean
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{clean}-{digest}" if clean else f"activation-{digest}"


def _split_line(critical):
    """(σ_w², σ_b², stable mask) from a :class:`meanfield.results.CriticalLine` or a pair (sigma_w, sigma_b) of
    standard deviations (then every point is taken as stable)."""
    if hasattr(critical, "stable"):
        return np.asarray(critical.sigma_w) ** 2, np.asarray(critical.sigma_b) ** 2, np.asarray(critical.stable, bool)
    sw, sb = (np.asarray(a, dtype=float) for a in critical)
    return sw**2, sb**2, np.ones(sw.shape, dtype=bool)


def _draw_line(ax, x, y, stable, label, stable_style=STABLE_STYLE, unstable_style=UNSTABLE_STYLE,
               unstable_label=None):
    """The stable part solid, the unstable part dashed, each with one legend entry (none for an empty part).
    Returns the Line2D objects drawn."""
    out = []
    for part, style, lab in ((stable, stable_style, label), (~stable, unstable_style, unstable_label)):
        ys = np.where(part & np.isfinite(y), y, np.nan)
        if np.any(np.isfinite(ys)):
            (ln,) = ax.plot(x, ys, label=lab, **style)
            out.append(ln)
    return out


def plot_phase_diagram(pd, critical=None, path=None):
    """χ_1 and ξ_c over (σ_w², σ_b²) with the critical line (THEORY §1, §6).

    ``pd``: a :class:`meanfield.results.PhaseDiagram`. ``critical``: a :class:`meanfield.results.CriticalLine`
    (``meanfield.critical_line(phi, q_stars)``: stable part solid, unstable part dashed grey), a pair (sigma_w,
    sigma_b) of standard deviations along the line (drawn solid), or None (the grid's own χ_1 = 1 contour is drawn and
    labelled). Points where q diverges and points without a (proved) finite fixed point get their own colours and legend
    entries. ``path``: save there and close the figure.
    """
    import matplotlib.colors as mcolors
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), constrained_layout=True)
    W2, B2 = np.meshgrid(pd.sigma_w**2, pd.sigma_b**2, indexing="ij")
    chi = np.ma.masked_invalid(pd.chi1)
    m = axes[0].pcolormesh(W2, B2, chi, shading="auto", cmap="RdBu_r", vmin=0.0, vmax=2.0)
    fig.colorbar(m, ax=axes[0], label=r"$\chi_1$")
    axes[0].set_title(f"{pd.activation}: $\\chi_1$ (ordered < 1 < chaotic) over variances")
    xi = np.ma.masked_invalid(np.log10(np.clip(pd.xi_c, 1e-3, 1e6)))
    m = axes[1].pcolormesh(W2, B2, xi, shading="auto", cmap="viridis")
    fig.colorbar(m, ax=axes[1], label=r"$\log_{10}\xi_c$")
    axes[1].set_title(f"{pd.activation}: correlation depth scale $\\xi_c$ over variances")
    diverged = np.asarray(pd.status) == 2
    other = ~np.isin(np.asarray(pd.status), (0, 2, 3))
    regions = [(diverged, DIVERGED_COLOR, "q diverges (no finite fixed point)"),
               (other, NO_FIXED_POINT_COLOR, "no proved fixed point")]
    for ax in axes:
        handles = []
        for mask, color, label in regions:
            if mask.any():
                ax.pcolormesh(W2, B2, np.ma.masked_where(~mask, np.ones(mask.shape)), shading="auto",
                              cmap=mcolors.ListedColormap([color]), vmin=0.0, vmax=1.0)
                handles.append(Patch(facecolor=color, label=label))
        if critical is not None:
            x, y, stable = _split_line(critical)
            handles += _draw_line(ax, x, y, stable, r"critical line $\chi_1 = 1$ (stable $q^*$: edge of chaos)",
                                  unstable_label=r"$\chi_1 = 1$ at an unstable $q^*$ (not an edge of chaos)")
        elif np.isfinite(pd.chi1).any() and np.nanmin(pd.chi1) < 1.0 < np.nanmax(pd.chi1):
            ax.contour(W2, B2, np.ma.filled(chi.astype(float), np.nan), levels=[1.0], colors="k", linewidths=1.5)
            handles.append(Line2D([], [], color="k", lw=1.5, label=r"$\chi_1 = 1$ (contour of the grid)"))
        ax.set_xlabel(SIGMA_W2)
        ax.set_ylabel(SIGMA_B2)
        ax.set_xlim(W2.min(), W2.max())
        ax.set_ylim(B2.min(), B2.max())
        if handles:
            ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def plot_critical_lines(lines, path=None):
    """Critical lines of several activations over (σ_w², σ_b²). ``lines``: {activation name: CriticalLine or
    (sigma_w, sigma_b) standard deviations along the line}; a CriticalLine's unstable part is dashed in the same colour
    with its own legend entry."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.4), constrained_layout=True)
    for k, (name, line) in enumerate(lines.items()):
        color = f"C{k % 10}"
        x, y, stable = _split_line(line)
        _draw_line(ax, x, y, stable, name, dict(color=color, ls="-", lw=2.0), dict(color=color, ls="--", lw=1.5),
                   f"{name} (unstable $q^*$)")
    ax.set_xlabel(SIGMA_W2)
    ax.set_ylabel(SIGMA_B2)
    ax.set_title(r"order-to-chaos critical lines ($\chi_1 = 1$) over variances")
    ax.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def plot_edge_of_chaos(activations=("gelu", "silu", "elu", "x*tanh(x)"), q_range=(1e-3, 1e3), n=400,
                       sigma_w2_range=(0.8, 2.8), path=None):
    """Where the stable edge of chaos lies (THEORY §6): for each activation the critical line parametrised by
    q* ∈ ``q_range`` (log-spaced, ``n`` points), by :func:`meanfield.critical_line`.

    Left: the line over (σ_w², σ_b²), solid where q* is a stable fixed point of the length map, dashed where it is
    unstable, a dot where the slope g'(q*) crosses 1. Right: the slope g'(q*) along the line against q* (the edge of
    chaos is where it is below 1). ``sigma_w2_range``: the σ_w² axis of the left panel (x·tanh x's line leaves it
    towards σ_w² → ∞ as q* → 0, since φ'(0) = 0). Used for ``docs/figures/edge_of_chaos.png``.
    """
    from meanfield.critical import critical_line

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6), constrained_layout=True)
    qs = np.geomspace(q_range[0], q_range[1], n)
    for k, name in enumerate(activations):
        color = f"C{k % 10}"
        line = critical_line(name, qs)
        x, y = line.sigma_w**2, line.sigma_b**2
        _draw_line(axes[0], x, y, line.stable, f"{name}: stable $q^*$ (edge of chaos)",
                   dict(color=color, ls="-", lw=2.0), dict(color=color, ls="--", lw=1.5), f"{name}: unstable $q^*$")
        flips = np.flatnonzero(line.stable[1:] != line.stable[:-1])
        if flips.size:
            axes[0].plot(x[flips + 1], y[flips + 1], "o", color=color, ms=5)
        axes[1].plot(line.q_star, line.slope_q, color=color, lw=2.0, label=name)
    axes[0].set_xlabel(SIGMA_W2)
    axes[0].set_ylabel(SIGMA_B2)
    axes[0].set_yscale("log")
    axes[0].set_xlim(*sigma_w2_range)
    axes[0].set_title(r"critical lines $\chi_1 = 1$; dots: $g'(q^*) = 1$")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].axhline(1.0, color="0.3", lw=1.0, ls=":")
    axes[1].set_xscale("log")
    axes[1].set_xlabel(r"$q^*$ (fixed point of the length map, a variance)")
    axes[1].set_ylabel(r"slope of the length map $g'(q^*) = \sigma_w^2\, dE_q[\phi^2]/dq$")
    axes[1].set_title(r"stability along the critical line (stable where $g' < 1$)")
    axes[1].legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=130)
        plt.close(fig)
    return fig
