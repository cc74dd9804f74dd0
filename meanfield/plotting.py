"""Figures of theory results (matplotlib is imported here only, never by the theory modules)."""

from __future__ import annotations

import numpy as np


def _plt():
    # No backend is forced: headless runs fall back to Agg by themselves, notebooks keep their inline backend.
    import matplotlib.pyplot as plt

    return plt


def plot_phase_diagram(pd, critical=None, path=None):
    """χ_1 and ξ_c over (σ_w², σ_b²) with the critical line; ``critical`` = (sigma_w, sigma_b) arrays of the line."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    W2, B2 = np.meshgrid(pd.sigma_w**2, pd.sigma_b**2, indexing="ij")
    chi = np.ma.masked_invalid(pd.chi1)
    m = axes[0].pcolormesh(W2, B2, chi, shading="auto", cmap="RdBu_r", vmin=0.0, vmax=2.0)
    fig.colorbar(m, ax=axes[0], label=r"$\chi_1$")
    axes[0].contour(W2, B2, chi, levels=[1.0], colors="k", linewidths=1.5)
    axes[0].set_title(f"{pd.activation}: $\\chi_1$ (ordered < 1 < chaotic)")
    xi = np.ma.masked_invalid(np.log10(np.clip(pd.xi_c, 1e-3, 1e6)))
    m = axes[1].pcolormesh(W2, B2, xi, shading="auto", cmap="viridis")
    fig.colorbar(m, ax=axes[1], label=r"$\log_{10}\xi_c$")
    axes[1].set_title(r"correlation depth scale $\xi_c$")
    for ax in axes:
        if critical is not None:
            ax.plot(np.asarray(critical[0]) ** 2, np.asarray(critical[1]) ** 2, "w--", lw=2, label="critical line")
        ax.set_xlabel(r"$\sigma_w^2$")
        ax.set_ylabel(r"$\sigma_b^2$")
        ax.set_xlim(W2.min(), W2.max())
        ax.set_ylim(B2.min(), B2.max())
    if critical is not None:
        axes[0].legend(loc="upper left")
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def plot_critical_lines(lines, path=None):
    """``lines``: {activation name: (sigma_w, sigma_b)} arrays along each critical line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    for name, (sw, sb) in lines.items():
        ax.plot(np.asarray(sw) ** 2, np.asarray(sb) ** 2, lw=2, label=name)
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    ax.set_title(r"order-to-chaos critical lines ($\chi_1 = 1$)")
    ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
