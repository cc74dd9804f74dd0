"""Tolerance helpers shared by the experiments: the statistical factor :data:`K_SIGMA` and the finite-width scales the
allowances are built from — where the largest of N eigenvalues of a limiting law sits (:func:`top_eigenvalue_location`)
and the relative variance ``v`` of a product of random layers (:func:`finite_width_variance`, THEORY §2)."""

from __future__ import annotations

import math

import numpy as np

from empirical.experiments.arguments import _int

K_SIGMA = 4.0  # statistical part of every tolerance: 4 standard errors of the mean over seeds


def _jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights, q0=None):
    from meanfield.spectra import jacobian_spectrum  # the spectra module is imported when first needed

    return jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights=weights, q0=q0)


TOP_GRID = 240  # density evaluations between the lower bound and the edge in top_eigenvalue_location


def top_eigenvalue_location(density, edge: float, lower: float, n: int, atoms=()) -> float:
    """The classical location γ_n of the largest of n eigenvalues drawn from a limiting spectral law:
    ``∫_{γ_n}^{edge} ρ + (atoms in [γ_n, edge]) = 1/n``.

    A sample of n eigenvalues does not reach the edge of its limiting law: its largest sits near γ_n (Tracy–Widom
    fluctuations around it aside), which for the heavy-tailed spectra of deep Gaussian networks is far below the edge
    (THEORY §2, last bullet). ``density`` evaluates ρ at an array of points; ``lower`` < edge bounds the search (the
    mean, say). Trapezoid rule on a grid geometric in the distance to the edge, which resolves both a square-root edge
    and a thin tail. Returns ``lower`` if the mass above it is below 1/n."""
    n = _int("n", n)
    if not edge > lower:
        return float(edge)
    d = np.geomspace(abs(edge) * 1e-10 if edge != 0 else 1e-300, edge - lower, TOP_GRID)
    x = edge - d
    rho = np.asarray(density(x), dtype=np.float64)
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(d))])
    for loc, m in atoms:
        mass = mass + m * ((loc >= x) & (loc <= edge))
    target = 1.0 / n
    j = int(np.searchsorted(mass, target))
    if j >= len(x):
        return float(lower)
    if j == 0:
        return float(x[0])
    t = (target - mass[j - 1]) / (mass[j] - mass[j - 1])
    return float(x[j - 1] - t * (d[j] - d[j - 1]))


def finite_width_variance(phi, sigma_w, sigma_b, depth, weights="gaussian", q0=1.0) -> float:
    """``v = Σ_l (μ_2(q^l)/μ_1(q^l)² − 1 − s_1)`` (s_1 = −1 Gaussian, 0 orthogonal weights): the relative variance of
    the JJᵀ spectrum of ``depth`` layers on the trajectory from ``|x|²/N_0 = q0`` (THEORY §2;
    :func:`meanfield.spectra.jacobian_spectrum`), computed as ``m_2/m_1² − 1`` from the exact log-moments (no overflow
    at any depth).

    ``v/N`` is the relative variance, across draws of a width-N network, of a backward gain ``|Jᵀu|²/|u|²`` through
    those layers: the scale of the finite-width corrections of everything built from products of random layers, which
    grows with depth/width, faster in the chaotic phase and for Gaussian weights (Hanin & Nica 2020, "Finite depth and
    width corrections to the neural tangent kernel", ICLR). The Fisher tolerances are multiples of it."""
    spec = _jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights, q0=q0)
    return float(math.expm1(spec.log_moment(2) - 2.0 * spec.log_moment(1)))
