"""Spectral edges and densities of strongly contracting and expanding chains (issue 12), and the fast paths of
issue 14 against the methods they replace.

References: the Bhatia–Davis inequality (var ≤ (λ_max - mean)(mean - λ_min), Bhatia & Davis 2000) and the operator
norm of the recursion ``G_l = a_l I + W D G_{l-1} D Wᵀ`` (THEORY §4), both written out here; sampled networks in numpy
(the recursion of THEORY §4 with Gaussian weights); the previous edge search (``fisher._edge_scan``), kept as the
baseline, where its scan window holds the fold.
"""

import math

import numpy as np
import pytest

import meanfield.fisher as F
from meanfield.errors import ConvergenceError

SIG = ("sigmoid", 0.9, 0.3)  # χ_1 ≈ 0.05: the chain contracts by ~20 per level (issue 12)
TANH_CRIT_1_64 = (1.0151637852, 2.1566949868e-3)  # THEORY §1: tanh critical point with q* = 1/64


def _bounds(r):
    """Bhatia–Davis lower bound with λ_min ≥ a_{L+1}/N, and the operator-norm upper bound, written out here."""
    lower = r.mean + r.variance / (r.mean - r.shift[-1])
    c = 4.0 if r.weights == "gaussian" else 1.0  # ‖WWᵀ‖/σ_w² → 4 (Marchenko–Pastur, ratio 1) or 1 (orthogonal)
    act = __import__("meanfield").get_activation(r.activation)
    u = np.linspace(-9.0, 9.0, 20001)
    upper = r.shift[1]
    for l in range(2, r.depth + 2):
        top = r.sigma_w**2 * float(np.max(act.dphi(u * math.sqrt(r.q[l - 1])) ** 2))
        upper = r.shift[l] + c * top * upper
    return lower, upper


def _sampled_top(phi, dphi, sw, sb, L, N, rng):
    """Largest eigenvalue of Φ/N for one network with Gaussian weights (THEORY §4's recursion), in numpy."""
    x = rng.standard_normal(N)
    x *= math.sqrt(N) / np.linalg.norm(x)  # input_norm = 1
    Ws = [sw * rng.standard_normal((N, N)) / math.sqrt(N) for _ in range(L + 1)]
    xs, ds = [x], []
    for l in range(L):
        h = Ws[l] @ xs[-1] + sb * rng.standard_normal(N)
        ds.append(dphi(h))
        xs.append(phi(h))
    G = (xs[0] @ xs[0] + 1.0) * np.eye(N)
    for l in range(2, L + 2):
        M = Ws[l - 1] * ds[l - 2]
        G = (xs[l - 1] @ xs[l - 1] + 1.0) * np.eye(N) + M @ G @ M.T
    return float(np.linalg.eigvalsh(G / N)[-1])


# ================================================================================ conditional FIM edge (issue 12)
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_contracting_chain_edge_is_within_its_bounds(weights):
    """sigmoid σ_w = 0.9, σ_b = 0.3: λ_max was 12,847 (Gaussian, depth 20) and inf (orthogonal, depth ≥ 30)."""
    for L in (20, 30, 60):
        r = F.conditional_fisher_spectrum(*SIG, depth=L, width=500, weights=weights)
        lower, upper = _bounds(r)
        assert lower <= r.lambda_max <= upper, (L, lower, r.lambda_max, upper)
    # the chain forgets its bottom: from depth 20 on the law (and its edge) no longer changes to rounding
    e = [F.conditional_fisher_spectrum(*SIG, depth=L, width=500, weights=weights).lambda_max for L in (20, 40)]
    assert e[0] == pytest.approx(e[1], rel=1e-12)


def test_contracting_chain_edge_vs_sampled_networks():
    """Gaussian weights, depth 20: sampled networks (N = 300) put the top eigenvalue at 0.31–0.32 (issue 12)."""
    r = F.conditional_fisher_spectrum(*SIG, depth=20, width=300, weights="gaussian")
    rng = np.random.default_rng(12)
    sig = lambda h: 1.0 / (1.0 + np.exp(-h))  # noqa: E731
    dsig = lambda h: sig(h) * (1.0 - sig(h))  # noqa: E731
    tops = [_sampled_top(sig, dsig, *SIG[1:], 20, 300, rng) for _ in range(2)]
    assert np.mean(tops) == pytest.approx(r.lambda_max, rel=0.04)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_edge_agrees_with_the_previous_search_where_its_window_holds_the_fold(weights):
    """The fold of the chain in logarithms vs the previous scan over w_1 ∈ s_1(1 + e^[-36, 20]) (baseline)."""
    cases = [("tanh", *TANH_CRIT_1_64, 16), ("tanh", 2.3287072899, 2.0088803794, 16), ("erf", 1.2, 0.2, 6),
             (*SIG, 4)]
    for phi, sw, sb, L in cases:
        r = F.conditional_fisher_spectrum(phi, sw, sb, L, 400, weights=weights)
        assert r.lambda_max == pytest.approx(F._edge_scan(r._levels), rel=1e-12), (phi, L)


def test_deep_critical_chain_edge_and_mean():
    """tanh at q* = 1/64, depth 200 (issue 14's benchmark case): the edge lies within its bounds and above the mean."""
    r = F.conditional_fisher_spectrum("tanh", *TANH_CRIT_1_64, depth=200, width=500)
    lower, upper = _bounds(r)
    assert lower <= r.lambda_max <= upper
    assert r.lambda_max > r.mean + math.sqrt(r.variance)


def test_an_edge_outside_its_bounds_raises(monkeypatch):
    """The check that stands behind every returned λ_max: a wrong fold (the old 12,847) is an error, not a number."""
    monkeypatch.setattr(F, "_edge", lambda lev: 12847.0)
    with pytest.raises(ConvergenceError, match="outside its bounds"):
        F.conditional_fisher_spectrum(*SIG, depth=20, width=500, weights="gaussian")
    monkeypatch.setattr(F, "_edge", lambda lev: 0.25)  # below the mean
    with pytest.raises(ConvergenceError, match="outside its bounds"):
        F.conditional_fisher_spectrum(*SIG, depth=20, width=500, weights="gaussian")


# ========================================================================== Jacobian density far below the bulk
ERF_CASES = [(1.1663, 0.2157), (1.1663, 0.5), (2.0, 0.0), (2.0, 0.5), (3.0, 0.0)]


def _mass_tail_and_bulk(s, n=1000):
    """∫ρ dλ on [support lo, edge]: log grid (∫ λρ d log λ) below 1e-3 × edge, Chebyshev-clustered grid above."""
    lo, hi = s.support
    u = np.linspace(math.log(max(lo, 1e-300 * s.mean)), math.log(1e-3 * hi), n)
    tail = np.trapezoid(s.density(np.exp(u)) * np.exp(u), u)
    t = (np.arange(n) + 0.5) / n
    a = 1e-3 * hi
    x = a + (hi - a) * 0.5 * (1.0 - np.cos(np.pi * t))
    w = (hi - a) * 0.5 * np.pi * np.sin(np.pi * t) / n
    return tail + np.sum(s.density(x) * w)


@pytest.mark.parametrize("sw,sb", ERF_CASES)
def test_erf_orthogonal_depth_two_density_across_its_support(sw, sb):
    """Issue 12: ConvergenceError at x ≈ 1e-30 × mean inside the support, and zeros between non-zero neighbours."""
    from meanfield.spectra import jacobian_spectrum

    s = jacobian_spectrum("erf", sw, sb, 2, weights="orthogonal")
    lo, hi = s.support
    x = np.exp(np.linspace(math.log(max(lo, 1e-300 * s.mean)), math.log(hi), 600))[1:-1]
    d = s.density(x)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0)
    nz = np.nonzero(d > 0.0)[0]
    assert nz.size and np.all(d[nz.min() : nz.max() + 1] > 0.0)  # no zero between non-zero values
    # the bulk against the exact moments (S-transform series): m_1 and m_2 of the density (atoms: none)
    n = 4000
    t = (np.arange(n) + 0.5) / n
    xs = hi * 0.5 * (1.0 - np.cos(np.pi * t))
    w = hi * 0.5 * np.pi * np.sin(np.pi * t) / n
    rho = s.density(xs) * w
    assert np.sum(xs * rho) == pytest.approx(s.mean, rel=1e-7)
    assert np.sum(xs * xs * rho) == pytest.approx(s.moment(2), rel=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("sw,sb", ERF_CASES[:2])
def test_erf_far_tail_carries_its_mass(sw, sb):
    """Where the tail is resolved the density integrates to 1 (no atoms): 4 % and 12 % of the mass lie below 1e-3 ×
    the edge, down to 1e-52 × the mean."""
    from meanfield.spectra import jacobian_spectrum

    s = jacobian_spectrum("erf", sw, sb, 2, weights="orthogonal")
    assert _mass_tail_and_bulk(s) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_contracting_chain_density_carries_the_exact_moments(weights):
    """The density of the depth-20 sigmoid chain (issue 12) on [a_{L+1}/N, λ_max]: mass 1, the exact mean and the
    exact variance (the moment recursion of THEORY §4), centred at the mean (the spread is 1 % of it)."""
    r = F.conditional_fisher_spectrum(*SIG, depth=20, width=500, weights=weights)
    lo, hi = r.shift[-1], r.lambda_max
    n = 300
    t = (np.arange(n) + 0.5) / n
    x = lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.pi * t))  # clustered at both ends (inverse-square-root edges)
    rho = r.density(x) * (hi - lo) * 0.5 * np.pi * np.sin(np.pi * t) / n
    assert not r.atoms
    assert rho.sum() == pytest.approx(1.0, abs=1e-3)
    assert (x * rho).sum() == pytest.approx(r.mean, rel=1e-3)
    assert ((x - r.mean) ** 2 * rho).sum() == pytest.approx(r.variance, rel=3e-3)
