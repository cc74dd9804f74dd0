"""Free-probability spectrum of the input-output Jacobian (THEORY §2; ``meanfield.spectra``).

Three-way checks: closed forms (Fuss–Catalan, Marchenko–Pastur, Bernoulli edges, push-forward laws) against the general
S-transform solver (tight); the solver's density against its own exact moments (∫ρ, ∫λρ, ∫λ²ρ); finite-width Monte
Carlo of J = D_L W_L ⋯ D_1 W_1 (loose, seeded, several draws). THEORY §2 reference values are cited by row.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import InvalidParameterError
from meanfield.spectra import (
    _d2_law,
    _pushforward_density,
    _solve_sorted,
    _upper_edge_normalised,
    bernoulli_edge,
    fuss_catalan_density,
    fuss_catalan_edge,
    fuss_catalan_moment,
    jacobian_spectrum,
    marchenko_pastur_density,
)

SQRT2 = math.sqrt(2.0)
# THEORY §2, tanh at criticality with q* = 1/64 (σ_w, σ_b from THEORY §1 "tanh critical point from q*")
TANH_QSTAR = 1.0 / 64.0


@pytest.fixture(scope="module")
def tanh_critical():
    return mf.critical_point("tanh", TANH_QSTAR)


# ------------------------------------------------------------------------------------------------------ helpers
def _ts_rule(h=1.0 / 48.0, n=5.0):
    """tanh-sinh nodes/weights on (0, 1): exact for endpoint singularities of algebraic type."""
    t = np.arange(-n / h, n / h + 1) * h
    u = 0.5 * math.pi * np.sinh(t)
    x = 0.5 * (1.0 + np.tanh(u))
    w = 0.25 * math.pi * np.cosh(t) / np.cosh(u) ** 2 * h
    keep = (x > 0.0) & (x < 1.0) & (w > 1e-300)
    return x[keep], w[keep]


def _continuous_top(spec):
    """Upper end of the continuous part: the edge, or, below an atom at the edge, the last x with a density."""
    if spec.edge_kind != "atom":
        return spec.edge
    x = np.linspace(0.0, spec.edge, 4001)[1:-1]
    d = spec.density(x)
    i = np.nonzero(d > 0)[0][-1]
    a, b = x[i], x[i + 1]
    for _ in range(60):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if spec.density(mid) > 0 else (a, mid)
    return b


def _segment(r, w, lo, hi, p=1.0, log=False):
    if log:
        x = lo * (hi / lo) ** r
        return x, x * math.log(hi / lo) * w
    x = lo + (hi - lo) * r**p
    return x, (hi - lo) * p * r ** (p - 1.0) * w


def integrate_spectrum(spec, f, pieces=8):
    """∫ f(λ) ρ(λ) dλ over the continuous part by tanh-sinh (exact for the algebraic edge singularities) on `pieces`
    sub-intervals of a mapped variable: x = hi u^p at 0 (p absorbs ρ ~ x^{-L/(L+1)}, Gaussian weights or an atom at
    0), logarithmic where the support spans decades."""
    lo = spec.support[0]
    if spec._solver["cont_lo"] > -math.inf:
        lo = max(lo, math.exp(spec.log_mean + spec._solver["cont_lo"]))
    hi = _continuous_top(spec)
    if lo < 1e-250 * hi:  # a lower edge in the far tail (truncated laws of φ'²): the density there is nil
        lo = 0.0
    r, w = _ts_rule()
    cuts = np.linspace(0.0, 1.0, pieces + 1)
    u = np.concatenate([a + (b - a) * r for a, b in zip(cuts[:-1], cuts[1:])])
    wu = np.concatenate([(b - a) * w for a, b in zip(cuts[:-1], cuts[1:])])
    if lo > 0.0 and hi / lo > 1e3:  # spread over decades: logarithmic below hi/1000, linear above
        segs = [_segment(u, wu, lo, hi * 1e-3, log=True), _segment(u, wu, hi * 1e-3, hi)]
    else:
        singular = lo == 0.0 and (spec.weights == "gaussian" or any(a == 0.0 for a, _ in spec.atoms))
        segs = [_segment(u, wu, lo, hi, p=2.0 * (spec.depth + 1) if singular else 1.0)]
    return float(sum(np.sum(f(x) * spec.density(x) * dx) for x, dx in segs))


def theory_cdf(spec, x):
    """P(λ ≤ x) from the density (trapezoid on a fine grid in u, x = hi·u^p) plus the atoms."""
    hi = spec.edge
    p = 2.0 * (spec.depth + 1)  # resolves ρ ~ x^{-L/(L+1)} and the pile-up of saturated units near 0
    u = np.linspace(0.0, 1.0, 8001)
    xs = hi * u**p
    dens = spec.density(xs) * hi * p * u ** (p - 1.0)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(u))])
    atoms = sum(m for loc, m in spec.atoms if loc <= x)
    return float(np.interp(x, xs, cum)) + atoms


def sample_eigenvalues(phi, sigma_w, sigma_b, depth, width, weights, q0, rng):
    """Eigenvalues of JJᵀ for one draw of the network (THEORY §0), input with |x|²/N = q0."""
    act = mf.get_activation(phi)
    x = rng.standard_normal(width)
    x *= math.sqrt(q0 * width) / np.linalg.norm(x)
    J = np.eye(width)
    for _ in range(depth):
        if weights == "gaussian":
            W = rng.normal(0.0, sigma_w / math.sqrt(width), (width, width))
        else:
            Q, R = np.linalg.qr(rng.standard_normal((width, width)))
            W = sigma_w * Q * np.sign(np.diag(R))
        h = W @ x + rng.normal(0.0, sigma_b, width)
        J = act.dphi(h)[:, None] * (W @ J)
        x = act.phi(h)
    return np.linalg.svd(J, compute_uv=False) ** 2


def input_at_fixed_point(phi, sigma_w, sigma_b):
    """q0 with σ_w² q0 + σ_b² = q*: every layer then sits at q* (THEORY §1, first bullet)."""
    q = mf.q_star(phi, sigma_w, sigma_b)
    return (q - sigma_b**2) / sigma_w**2


# ------------------------------------------------------------------------------------------------------ closed forms
def test_fuss_catalan_density_reference_values():
    # THEORY §2: Fuss–Catalan L = 2 at x = 0.5, 1, 2, 4, 6
    x = np.array([0.5, 1.0, 2.0, 4.0, 6.0])
    ref = np.array([0.318310, 0.178979, 0.093860, 0.040493, 0.015046])
    np.testing.assert_allclose(fuss_catalan_density(x, 2), ref, atol=6e-7)


def test_marchenko_pastur_is_fuss_catalan_of_depth_one():
    x = np.linspace(-0.5, 4.5, 101)
    np.testing.assert_allclose(marchenko_pastur_density(x), fuss_catalan_density(x, 1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("L, ref", [(1, 4.0), (2, 6.75), (3, 9.48148), (4, 12.20703)])
def test_fuss_catalan_edges(L, ref):
    assert fuss_catalan_edge(L) == pytest.approx((L + 1) ** (L + 1) / L**L, rel=1e-15)
    assert fuss_catalan_edge(L) == pytest.approx(ref, abs=6e-6)  # THEORY §2 (rounded)


def test_fuss_catalan_moments_are_integers():
    assert [fuss_catalan_moment(k, 1) for k in range(1, 6)] == [1, 2, 5, 14, 42]  # Catalan numbers
    assert [fuss_catalan_moment(k, 2) for k in range(1, 5)] == [1, 3, 12, 55]


# ------------------------------------------------------------------------------------------------------ linear networks
@pytest.mark.parametrize("L", [1, 2, 3])
def test_linear_gaussian_is_fuss_catalan(L):
    spec = jacobian_spectrum("linear", 1.0, 0.0, L, weights="gaussian")
    edge = fuss_catalan_edge(L)
    assert spec.edge == pytest.approx(edge, rel=1e-8)
    assert spec.edge_kind == "sqrt" and spec.atoms == []
    x = np.concatenate([np.linspace(1e-3, edge * (1 - 1e-6), 300), edge * (1 - np.logspace(-5, -1, 20))])
    np.testing.assert_allclose(spec.density(x), fuss_catalan_density(x, L), rtol=1e-6, atol=1e-9)
    for k in range(1, 9):
        assert spec.moment(k) == pytest.approx(fuss_catalan_moment(k, L), rel=1e-12)
    if L == 1:
        np.testing.assert_allclose(spec.density(x), marchenko_pastur_density(x), rtol=1e-6, atol=1e-9)


def test_linear_gaussian_scales_with_sigma_w():
    sw, L = 1.3, 2
    spec = jacobian_spectrum("linear", sw, 0.0, L, weights="gaussian")
    s = sw ** (2 * L)
    assert spec.mean == pytest.approx(s, rel=1e-13)
    assert spec.edge == pytest.approx(s * fuss_catalan_edge(L), rel=1e-10)
    x = s * np.array([0.5, 1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(spec.density(x), fuss_catalan_density(x / s, L) / s, rtol=1e-7)


@pytest.mark.parametrize("L", [1, 3])
def test_linear_orthogonal_is_a_point_mass(L):
    sw = 1.1
    spec = jacobian_spectrum("linear", sw, 0.0, L, weights="orthogonal")
    loc = sw ** (2 * L)
    assert spec.atoms == [(pytest.approx(loc, rel=1e-14), pytest.approx(1.0, abs=1e-15))]
    assert spec.edge == pytest.approx(loc, rel=1e-14) and spec.edge_kind == "atom"
    assert spec.variance == pytest.approx(0.0, abs=1e-12)
    assert spec.support == (pytest.approx(loc), pytest.approx(loc))
    assert np.all(spec.density(np.array([0.5, loc, 2.0])) == 0.0)


# ------------------------------------------------------------------------------------------------------ Bernoulli D²
@pytest.mark.parametrize("L, ref", [(1, 5.828427), (2, 11.090170), (4, 21.858249)])
def test_relu_gaussian_edges(L, ref):
    spec = jacobian_spectrum("relu", SQRT2, 0.0, L, weights="gaussian")
    assert spec.edge == pytest.approx(bernoulli_edge(0.5, L, "gaussian"), rel=1e-8)
    assert spec.edge == pytest.approx(ref, abs=6e-7)  # THEORY §2
    assert spec.atoms == [(0.0, pytest.approx(0.5, abs=1e-15))]


@pytest.mark.parametrize("L", [3, 4, 6])
def test_relu_orthogonal_edges(L):
    spec = jacobian_spectrum("relu", SQRT2, 0.0, L, weights="orthogonal")
    assert spec.edge == pytest.approx(L**L / (L - 1) ** (L - 1), rel=1e-8)  # THEORY §2 (6.75, 9.481481 for L = 3, 4)
    assert spec.edge == pytest.approx(bernoulli_edge(0.5, L, "orthogonal"), rel=1e-8)
    assert spec.atoms == [(0.0, pytest.approx(0.5, abs=1e-15))]  # mass 1/2 at 0 (THEORY §2)


def test_relu_orthogonal_depth_one_is_two_atoms():
    spec = jacobian_spectrum("relu", SQRT2, 0.0, 1, weights="orthogonal")
    assert spec.atoms == [(0.0, pytest.approx(0.5)), (pytest.approx(2.0), pytest.approx(0.5))]
    assert spec.edge_kind == "atom" and spec.continuous_mass == pytest.approx(0.0, abs=1e-15)


def test_relu_gaussian_depth_one_is_marchenko_pastur_of_ratio_half():
    # D W with half the rows zero: the non-zero eigenvalues follow MP of ratio 1/2 on σ_w²(1 ± √p)² (weight p)
    sw, p = SQRT2, 0.5
    spec = jacobian_spectrum("relu", sw, 0.0, 1, weights="gaussian")
    a, b = sw**2 * (1 - math.sqrt(p)) ** 2, sw**2 * (1 + math.sqrt(p)) ** 2
    assert spec.edge == pytest.approx(b, rel=1e-10)
    cont_lo = math.exp(spec.log_mean + spec._solver["cont_lo"])
    assert cont_lo == pytest.approx(a, rel=1e-8)  # the gap (0, a) is found
    x = np.linspace(1e-3, 6.0, 400)
    inside = (x > a) & (x < b)
    ref = np.where(inside, np.sqrt(np.clip((b - x) * (x - a), 0, None)) / (2 * math.pi * sw**2 * x), 0.0)
    np.testing.assert_allclose(spec.density(x), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_hard_tanh_is_bernoulli(weights, L):
    qs = 0.5
    sw, sb = mf.critical_point("hard_tanh", qs)
    p = math.erf(1.0 / math.sqrt(2 * qs))
    assert sw**2 == pytest.approx(1.0 / p, rel=1e-12)  # criticality: σ_w² = 1/p
    spec = jacobian_spectrum("hard_tanh", sw, sb, L, weights=weights)
    assert spec.edge == pytest.approx(bernoulli_edge(p, L, weights), rel=1e-8)
    assert spec.mean == pytest.approx(1.0, rel=1e-12)
    atoms = dict(spec.atoms)
    assert atoms[0.0] == pytest.approx(1 - p, rel=1e-12)
    if weights == "orthogonal" and L * (1 - p) < 1:
        # THEORY §2: orthogonal Bernoulli with L(1 - p) < 1 has an atom at p^{-L} (the edge)
        assert spec.edge_kind == "atom"
        top = max(atoms)
        assert top == pytest.approx(p ** (-L), rel=1e-12)
        assert atoms[top] == pytest.approx(1 - L * (1 - p), rel=1e-10)
    else:
        assert len(atoms) == 1


def test_leaky_relu_orthogonal_lower_edge_by_inversion():
    # D² ∈ {a², 1}: the inverse law is the same law scaled by 1/a², so λ_- λ_+ = σ_w^{4L} a^{2L}
    sw, a = 1.2, 0.01
    for L in (2, 3):
        spec = jacobian_spectrum("leaky_relu", sw, 0.0, L, weights="orthogonal")
        assert spec.support[0] * spec.edge == pytest.approx(sw ** (4 * L) * a ** (2 * L), rel=1e-6)


# ------------------------------------------------------------------------------------------------------ smooth φ
def test_tanh_critical_reference_values(tanh_critical):
    sw, sb = tanh_critical
    assert sw**2 == pytest.approx(1.03055751, rel=1e-8)  # THEORY §2
    mom = mf.gaussian_moments("tanh", TANH_QSTAR)
    assert mom.mu1 == pytest.approx(0.97034856, rel=1e-8) and mom.mu2 == pytest.approx(0.94316701, rel=1e-8)
    spec1 = jacobian_spectrum("tanh", sw, sb, 1)
    assert spec1.mean == pytest.approx(1.0, rel=1e-10)
    assert spec1.variance == pytest.approx(1.689370e-3, rel=1e-6)  # per-layer variance (THEORY §2)
    assert jacobian_spectrum("tanh", sw, sb, 4).edge == pytest.approx(1.101789, abs=6e-7)
    assert jacobian_spectrum("tanh", sw, sb, 16).edge == pytest.approx(1.276885, abs=6e-7)
    # L = 1: JJᵀ = σ_w² D² exactly (orthogonal W), so λ_max = σ_w² max φ'² = σ_w²: a hard edge. THEORY §2 quotes
    # 1.030584, 2.6e-5 above σ_w²: min_{m>0} M_J^{-1}(m) is not attained (M_J^{-1} decreases to σ_w² as m → ∞), and a
    # minimisation over bounded m stops short of it.
    assert spec1.edge == pytest.approx(sw**2, rel=1e-13) and spec1.edge_kind == "hard"
    assert spec1.edge == pytest.approx(1.030584, rel=3e-5)


@pytest.mark.parametrize("weights, s1", [("gaussian", -1.0), ("orthogonal", 0.0)])
@pytest.mark.parametrize("phi, sw, sb", [("tanh", 1.2, 0.1), ("erf", 0.9, 0.3), ("relu", 1.3, 0.2)])
def test_mean_and_variance_formulas(phi, sw, sb, weights, s1):
    # THEORY §2: m_1 = χ_1^L, σ² = m_1² L (μ_2/μ_1² - 1 - s_1), off the critical line too
    L = 7
    spec = jacobian_spectrum(phi, sw, sb, L, weights=weights)
    mom = mf.gaussian_moments(phi, mf.q_star(phi, sw, sb))
    m1 = mf.chi1(phi, sw, sb) ** L
    assert spec.mean == pytest.approx(m1, rel=1e-11)
    assert spec.moment(1) == pytest.approx(m1, rel=1e-11)
    var = m1**2 * L * (mom.mu2 / mom.mu1**2 - 1 - s1)
    assert spec.variance == pytest.approx(var, rel=1e-9)
    assert spec.moment(2) == pytest.approx(var + m1**2, rel=1e-9)


@pytest.mark.parametrize("phi, sw, sb", [("tanh", 1.5, 0.4), ("erf", 1.1, 0.2), ("gelu", 1.4, 0.1)])
def test_depth_one_orthogonal_is_the_law_of_phi_prime_squared(phi, sw, sb):
    # JJᵀ = σ_w² D² (orthogonal, L = 1): m_k = σ_w^{2k} E_q*[φ'^{2k}] and the density is the push-forward law
    spec = jacobian_spectrum(phi, sw, sb, 1)
    q = mf.q_star(phi, sw, sb)
    act = mf.get_activation(phi)
    for k in range(1, 9):
        ref = mf.expect(lambda u, k=k: act.dphi(u) ** (2 * k), q, kinks=act.kinks).value
        assert spec.moment(k) == pytest.approx(sw ** (2 * k) * ref, rel=1e-11)
    # the S-transform solver (forced onto this case) agrees with the push-forward density inside the bulk
    law = spec._solver["laws"][0]
    t = np.linspace(law.cont_bottom, law.top, 41)[1:-1]
    ll = np.log(sw**2 * t) - spec.log_mean
    m, status = _solve_sorted(ll, spec._solver, spec._moments, 1.0)
    solver = -m.imag / (math.pi * sw**2 * t)
    direct = _pushforward_density(act, law, t) / sw**2
    np.testing.assert_allclose(solver[status == 0], direct[status == 0], rtol=1e-6, atol=1e-9)
    assert np.mean(status == 0) > 0.9


def test_depth_one_orthogonal_where_tanh_saturates():
    # q^1 = σ_w² q0 + σ_b² = 4.62 > 4.49: the law's range |u| ≤ 9√q reaches |u| ≥ 19.06, where 1 - tanh(u)² rounds to
    # 0. The continuous part of the law then ends at 0 and the support's lower end was log(0): "math domain error".
    # Closed form: JJᵀ = σ_w² D², eigenvalues λ = σ_w² sech⁴(h), h ~ N(0, q).
    from scipy.integrate import quad

    sw, sb, q0 = 2.174276351011396, 1.2320837394995563, 0.6570746688597903
    spec = jacobian_spectrum("tanh", sw, sb, 1, weights="orthogonal", q0=q0)
    q = sw**2 * q0 + sb**2
    assert spec.q[0] == pytest.approx(q, rel=1e-14)
    assert spec.edge == pytest.approx(sw**2, rel=1e-13)  # h = 0: max φ'² = 1
    assert spec.edge_kind == "hard" and spec.support == (0.0, spec.edge)
    gauss = lambda u: math.exp(-0.5 * u * u / q) / math.sqrt(2.0 * math.pi * q)  # noqa: E731
    for k in (1, 2, 3, 4):
        ref = 2.0 * quad(lambda u: math.cosh(u) ** (-4 * k) * gauss(u), 0.0, 60.0, epsabs=0.0, epsrel=1e-13,
                         limit=200)[0]
        assert spec.moment(k) == pytest.approx(sw ** (2 * k) * ref, rel=1e-10), k
    # density: push-forward of the Gaussian under u ↦ σ_w² sech⁴(u), two branches ±u, |dλ/du| = 4λ tanh|u|
    u = np.array([0.05, 0.3, 1.0, 2.0, 4.0, 8.0])
    lam = sw**2 / np.cosh(u) ** 4
    ref = 2.0 * np.array([gauss(v) for v in u]) / (4.0 * lam * np.tanh(u))
    np.testing.assert_allclose(spec.density(lam), ref, rtol=1e-9)
    assert spec.density(0.5 * spec.support[0]) == 0.0 and spec.density(1.01 * spec.edge) == 0.0


def test_law_where_phi_prime_rounds_to_zero():
    # tanh at q = 100: 1 - tanh(u)² is exactly 0 for |u| ≥ 19.06 (5.7 % of the Gaussian mass). That interval is cut off
    # and counted at 0 with its exact mass, in the real and the contour rule alike (the contour rule's weights for
    # non-zero values then sum to the real mass of the rest, as Cauchy's theorem says: a staircase of zeros in the
    # contour rule left them complex and off by 1e-3, and the density solver failed everywhere at q* ≥ 80)
    from scipy.special import ndtr

    act = mf.get_activation("tanh")
    law = _d2_law(act, 100.0)
    (a, u_s), = law.pieces  # φ'² even: one decreasing piece on u ≥ 0
    assert a == 0.0 and act.dphi(u_s) == 0.0 and act.dphi(u_s * (1.0 - 1e-14)) > 0.0
    assert u_s == pytest.approx(19.0615, abs=1e-4)
    exact = 2.0 * (ndtr(-u_s / 10.0) - ndtr(-9.0))  # the rules cover |u| ≤ 9√q
    assert law.zero_mass == pytest.approx(exact, rel=1e-12)
    nz = law.cnode_vals != 0.0
    assert abs(law.cnode_wts[nz].sum() - (1.0 - law.zero_mass)) < 1e-13
    assert np.all(np.isfinite(law.cnode_vals)) and np.max(np.abs(law.cnode_vals)) < 2.0 * law.top
    assert law.cont_bottom == 0.0 and law.bottom_positive > 0.0


@pytest.mark.parametrize("phi", ["sigmoid", "silu", "softplus", "tanh"])
def test_contour_rule_where_phi_prime_is_rounding_noise(phi):
    # at q ≈ 250 the samples of φ'² far out are rounding noise (steps of ~1e-32); the polynomial through their logs
    # swung by hundreds on the contour and exp overflowed. Such panels keep the linear interpolant: contour values stay
    # of the order of the law's values, and the law's mean is that of the real rule
    act = mf.get_activation(phi)
    for q in (100.0, 251.18864315095823, 400.0):
        law = _d2_law(act, q)
        assert np.all(np.isfinite(law.cnode_vals)) and np.max(np.abs(law.cnode_vals)) < 2.0 * law.top
        nz = law.cnode_vals != 0.0
        contour_mean = np.sum(law.cnode_wts[nz] * law.cnode_vals[nz])
        assert abs(contour_mean - law.mean) < 1e-10 * law.mean


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("q_star", [0.5, 3.0, 30.0])
def test_gelu_on_its_critical_line(q_star, weights):
    # GELU's φ' vanishes at u0 ≈ -0.7518: the law of φ'² reaches 0 with density ~ t^{-1/2}, E[1/φ'²] = ∞. It was taken
    # for "bounded away from 0" (its nodes stop at ~1e-30), and the orthogonal lower edge by inversion overflowed
    # (E[φ'^{-16}] ~ 1e300^8). The input sits at q0 = q* (GELU's length map runs away from q* when started at 1).
    from scipy.optimize import brentq

    act = mf.get_activation("gelu")
    # χ_1 = 1 at q* = 0.5 and 3 sits on GELU's unstable branch (THEORY §6): the law of φ'² is what is tested here
    sw, sb = mf.critical_point("gelu", q_star, allow_unstable=True)
    L = 2
    spec = jacobian_spectrum("gelu", sw, sb, L, weights=weights, q0=q_star)
    mu1 = np.array([mf.expect(lambda u: act.dphi(u) ** 2, q, kinks=act.kinks).value for q in spec.q])
    mu2 = np.array([mf.expect(lambda u: act.dphi(u) ** 4, q, kinks=act.kinks).value for q in spec.q])
    mean = float(np.prod(sw**2 * mu1))
    assert spec.mean == pytest.approx(mean, rel=1e-10)
    rel_var = np.sum(mu2 / mu1**2 - 1.0) + (L if weights == "gaussian" else 0.0)
    assert spec.variance == pytest.approx(mean**2 * rel_var, rel=1e-9)
    u0 = brentq(lambda u: float(act.dphi(u)), -1.0, -0.5, xtol=1e-15)
    for law in spec._solver["laws"]:
        assert law.zeros == pytest.approx((u0,), abs=1e-12)
        assert law.cont_bottom == 0.0 and law.zero_mass < 1e-3  # φ'² underflows to 0 only beyond u ≈ -27.3
    assert spec.support[0] == 0.0 and spec.support[1] == spec.edge
    if q_star == 0.5:  # the density (deformed-contour rule next to the zero of φ') against the exact moments
        m1 = integrate_spectrum(spec, lambda x: x)
        assert m1 == pytest.approx(spec.mean, rel=1e-7)


def test_erf_orthogonal_lower_edge_beyond_float64():
    # erf, q > 1/4: E[1/φ'²] = E[e^{2u²}]π/4 is infinite, finite only through the truncation |u| ≤ 9√q, and at the
    # deeper layers here beyond float64: E[φ'^{-16}] overflowed (RuntimeWarning); where E[1/φ'²] itself does, the
    # lower edge (below 1/E[1/φ'²]) underflows and the spectrum reaches 0. The inverse laws' edge is exact, so it is
    # not re-checked on the physical branch, which at λ ~ 1e-215 divided by zero.
    sw, sb = mf.critical_point("erf", 0.7196856730011522)
    for L, q0 in ((8, 0.7196856730011522), (2, 100.0)):
        spec = jacobian_spectrum("erf", sw, sb, L, weights="orthogonal", q0=q0)
        assert 0.0 <= spec.support[0] < 1e-300 * spec.mean
        assert math.isfinite(spec.edge) and spec.edge > spec.mean
        mu = [mf.expect(lambda u: 4.0 / math.pi * np.exp(-2.0 * u * u), q).value for q in spec.q]  # φ' = 2e^{-u²}/√π
        assert spec.mean == pytest.approx(float(np.prod(sw**2 * np.array(mu))), rel=1e-10)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_tanh_critical_line_sweep(weights):
    # q* from 1e-3 to 1e2 on the χ_1 = 1 line, at the fixed point and from an input q0 = 1, depths 1, 2, 8: nothing
    # raises, nothing is NaN; the density is finite and non-negative inside the support
    for q_star in np.geomspace(1e-3, 1e2, 9):
        sw, sb = mf.critical_point("tanh", float(q_star))
        for L in (1, 2, 8):
            for q0 in (None, 1.0):
                spec = jacobian_spectrum("tanh", sw, sb, L, weights=weights, q0=q0)
                vals = [spec.mean, spec.variance, spec.edge, *spec.support, spec.moment(8)]
                assert all(math.isfinite(v) for v in vals), (q_star, L, q0, vals)
                assert 0.0 <= spec.support[0] < spec.mean < spec.edge == spec.support[1]
                if q0 is None:
                    assert spec.mean == pytest.approx(1.0, rel=1e-9)
                    d = spec.density(np.array([0.05, 0.3, 0.7, 0.95]) * spec.edge)
                    assert np.all(np.isfinite(d)) and np.all(d >= 0.0) and np.any(d > 0.0)


CASES = [
    ("tanh-orth-2", ("tanh", None, None, 2, "orthogonal")),
    ("tanh-orth-16", ("tanh", None, None, 16, "orthogonal")),
    ("tanh-orth-64", ("tanh", None, None, 64, "orthogonal")),
    ("tanh-gauss-2", ("tanh", None, None, 2, "gaussian")),
    ("tanh-chaotic-gauss-3", ("tanh", 1.4, 0.3, 3, "gaussian")),
    ("tanh-ordered-orth-5", ("tanh", 0.9, 0.5, 5, "orthogonal")),
    ("erf-orth-8", ("erf", "crit0.1", None, 8, "orthogonal")),
    ("relu-gauss-1", ("relu", SQRT2, 0.0, 1, "gaussian")),
    ("relu-gauss-3", ("relu", SQRT2, 0.0, 3, "gaussian")),
    ("relu-orth-4", ("relu", SQRT2, 0.0, 4, "orthogonal")),
    ("hardtanh-orth-3", ("hard_tanh", 1.1, 0.1, 3, "orthogonal")),
    ("leaky-orth-2", ("leaky_relu", 1.2, 0.0, 2, "orthogonal")),
    ("softplus-gauss-2", ("softplus", 1.1, 0.2, 2, "gaussian")),
]


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_density_integrates_to_the_exact_moments(case, tanh_critical):
    phi, sw, sb, L, weights = case
    if sw is None:
        sw, sb = tanh_critical
    elif sw == "crit0.1":
        sw, sb = mf.critical_point(phi, 0.1)
    spec = jacobian_spectrum(phi, sw, sb, L, weights=weights)
    atoms = spec.atoms
    mass = integrate_spectrum(spec, lambda x: np.ones_like(x)) + sum(m for _, m in atoms)
    assert mass == pytest.approx(1.0, abs=1e-6)
    m1 = integrate_spectrum(spec, lambda x: x) + sum(a * m for a, m in atoms)
    assert m1 == pytest.approx(spec.mean, rel=1e-6)
    m2 = integrate_spectrum(spec, lambda x: x * x) + sum(a * a * m for a, m in atoms)
    assert m2 - m1**2 == pytest.approx(spec.variance, rel=1e-6, abs=1e-6 * spec.mean**2)


def test_density_vanishes_outside_the_support(tanh_critical):
    sw, sb = tanh_critical
    spec = jacobian_spectrum("tanh", sw, sb, 4, weights="gaussian")
    x = np.array([-1.0, 0.0, spec.edge, spec.edge * 1.0001, 50.0, 1e300])
    d = spec.density(x)
    assert np.all(d == 0.0) and not np.any(np.isnan(d))
    assert spec.density(0.5 * spec.edge) > 0.0 and isinstance(spec.density(0.5), float)
    s = np.array([0.5, 1.0])
    np.testing.assert_allclose(spec.singular_value_density(s), 2 * s * spec.density(s**2), rtol=1e-15)
    assert spec.max_singular_value == pytest.approx(math.sqrt(spec.edge), rel=1e-15)


def test_moments_are_exact_for_the_bernoulli_law():
    # Gaussian ReLU, L = 1: p·MP(ratio p) scaled by σ_w² and an atom at 0; m_k = p σ_w^{2k} Σ_j N(k, j) p^{j-1}
    # with the Narayana numbers N(k, j) = C(k, j) C(k, j-1)/k
    spec = jacobian_spectrum("relu", SQRT2, 0.0, 1, weights="gaussian")
    p, s = 0.5, 2.0
    for k in range(1, 9):
        nar = sum(math.comb(k, j) * math.comb(k, j - 1) / k * p ** (j - 1) for j in range(1, k + 1))
        assert spec.moment(k) == pytest.approx(p * s**k * nar, rel=1e-12)
    assert spec.moment(0) == 1.0


# ------------------------------------------------------------------------------------------------------ per-layer q^l
def test_q0_at_the_fixed_point_reproduces_the_default(tanh_critical):
    sw, sb = 1.1, 0.3
    q0 = input_at_fixed_point("tanh", sw, sb)
    a = jacobian_spectrum("tanh", sw, sb, 6, weights="gaussian")
    b = jacobian_spectrum("tanh", sw, sb, 6, weights="gaussian", q0=q0)
    assert b.mean == pytest.approx(a.mean, rel=1e-10)
    assert b.edge == pytest.approx(a.edge, rel=1e-8)
    x = np.linspace(0.05, a.edge * 0.99, 30)
    np.testing.assert_allclose(b.density(x), a.density(x), rtol=1e-6, atol=1e-10)


def test_q0_uses_each_layers_own_variance():
    sw, sb, L = 1.1, 0.05, 12
    spec = jacobian_spectrum("tanh", sw, sb, L, weights="orthogonal", q0=2.0)
    traj = mf.propagate("tanh", sw, sb, L, q0=2.0)
    np.testing.assert_allclose(spec.q, traj.q[1:], rtol=0)
    assert spec.mean == pytest.approx(np.prod(traj.chi[1:]), rel=1e-10)
    moms = mf.gaussian_moments("tanh", traj.q[1:])
    rel = np.sum(moms.mu2 / moms.mu1**2 - 1.0)  # orthogonal: the relative variances of the D_l² add
    assert spec.variance == pytest.approx(spec.mean**2 * rel, rel=1e-9)
    mass = integrate_spectrum(spec, lambda x: np.ones_like(x))
    assert mass == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------------ depth 10,000
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_depth_ten_thousand(weights, tanh_critical):
    sw, sb = tanh_critical
    spec = jacobian_spectrum("tanh", sw, sb, 10_000, weights=weights)
    assert spec.mean == pytest.approx(1.0, rel=1e-8)
    assert math.isfinite(spec.edge) and spec.edge > spec.mean
    rel = spec.variance / spec.mean**2
    per_layer = 1.689370e-3 + (1.0 if weights == "gaussian" else 0.0)
    assert rel == pytest.approx(10_000 * per_layer, rel=1e-6)
    x = np.exp(np.linspace(-30.0, math.log(spec.edge), 200))
    d = spec.density(x)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0) and np.any(d > 0.0)
    # chaotic and ordered networks at this depth: the scale lives in log_mean, the values saturate honestly
    hot = jacobian_spectrum("tanh", 1.5, 0.1, 10_000, weights=weights)
    assert hot.log_mean == pytest.approx(10_000 * math.log(mf.chi1("tanh", 1.5, 0.1)), rel=1e-10)
    assert hot.mean == math.inf and math.isfinite(hot.log_edge) and math.isfinite(hot.log_moment(8))
    cold = jacobian_spectrum("tanh", 0.8, 0.1, 10_000, weights=weights)
    assert cold.mean == 0.0 and cold.log_mean < -1000 and cold.density(1.0) == 0.0


# ------------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(depth=0),
        dict(depth=2.5),
        dict(weights="uniform"),
        dict(sigma_w=0.0),
        dict(sigma_w=-1.0),
        dict(sigma_b=-0.1),
        dict(q0=-1.0),
    ],
)
def test_bad_input_raises(kwargs):
    args = dict(phi="tanh", sigma_w=1.0, sigma_b=0.1, depth=3, weights="orthogonal")
    args.update(kwargs)
    with pytest.raises(InvalidParameterError):
        jacobian_spectrum(**args)


def test_bad_moment_order_and_x():
    spec = jacobian_spectrum("tanh", 1.0, 0.1, 2)
    with pytest.raises(InvalidParameterError, match="0..8"):
        spec.moment(9)
    with pytest.raises(InvalidParameterError):
        spec.moment(-1)
    with pytest.raises(InvalidParameterError):
        spec.density(np.array([0.5, np.nan]))


def test_no_fixed_point():
    with pytest.raises(mf.NoFixedPointError):
        jacobian_spectrum("softplus", 1.6, 0.1, 3)
    # positively homogeneous φ: the law of φ'² does not depend on q, so a diverging q* does not matter
    spec = jacobian_spectrum("relu", 1.6, 0.1, 3, weights="gaussian")
    assert spec.mean == pytest.approx((1.6**2 / 2) ** 3, rel=1e-12)


def test_edge_search_matches_the_closed_form_internally():
    # the real-axis edge kernel on the Bernoulli law alone (no activation): (1 + m)(1 + m/p)^L/m at its minimum
    law = _d2_law(mf.get_activation("relu"), 1.0)
    for L in (1, 2, 5):
        log_e, kind = _upper_edge_normalised([law], [L], L, True)
        assert kind == "sqrt" and math.exp(log_e) == pytest.approx(bernoulli_edge(0.5, L, "gaussian"), rel=1e-12)


# ------------------------------------------------------------------------------------------------------ Monte Carlo
# At width N the per-layer χ_l of one draw fluctuates by a few per cent (the biases and the input are drawn once), so
# tr JJᵀ/N moves by ~10% at N = 500 and depth 4: the scale is checked loosely, the shape (λ divided by each draw's
# own mean) tightly.
MC = [
    ("tanh-q1-orth", ("tanh", "crit1", 4, "orthogonal")),
    ("tanh-q1-gauss", ("tanh", "crit1", 3, "gaussian")),
    ("relu-gauss", ("relu", (SQRT2, 0.0), 2, "gaussian")),
]


def _compare_with_samples(spec, draws, atom_tol=0.05, cdf_tol=0.03):
    lam = np.concatenate(draws)
    assert np.mean(lam) == pytest.approx(spec.mean, rel=0.15)
    r = np.concatenate([d / np.mean(d) for d in draws])  # shape: each draw normalised by its own mean
    assert np.var(r) == pytest.approx(spec.variance / spec.mean**2, rel=0.1)
    zero = dict(spec.atoms).get(0.0, 0.0)
    cont = np.sort(r)
    if zero > 0.0:  # the rank deficit: eigenvalues at rounding level
        assert np.mean(r < 1e-9) == pytest.approx(zero, abs=atom_tol)
        cont = cont[cont >= 1e-9]
    # CDF of the normalised eigenvalues at the pooled quantiles of the continuous part, and a binned density
    for p in (0.1, 0.25, 0.5, 0.75, 0.9):
        xq = np.quantile(cont, p)
        assert theory_cdf(spec, xq * spec.mean) == pytest.approx(zero + (1 - zero) * p, abs=cdf_tol)
    edges = np.quantile(cont, np.linspace(0.05, 0.95, 10))
    emp = np.histogram(r, bins=edges)[0] / r.size
    th = np.diff([theory_cdf(spec, e * spec.mean) for e in edges])
    np.testing.assert_allclose(emp, th, atol=0.015)


@pytest.mark.parametrize("case", [c for _, c in MC], ids=[i for i, _ in MC])
def test_monte_carlo(case):
    phi, params, L, weights = case
    sw, sb = mf.critical_point(phi, 1.0) if params == "crit1" else params
    spec = jacobian_spectrum(phi, sw, sb, L, weights=weights)
    q0 = input_at_fixed_point(phi, sw, sb) if params == "crit1" else 1.0
    rng = np.random.default_rng(20240611)
    draws = [sample_eigenvalues(phi, sw, sb, L, 500, weights, q0, rng) for _ in range(4)]
    _compare_with_samples(spec, draws)


@pytest.mark.slow
def test_monte_carlo_per_layer_and_wider():
    # q0 far from q*: each layer's own q^l, and a wider network
    sw, sb = mf.critical_point("tanh", 0.5)
    spec = jacobian_spectrum("tanh", sw, sb, 6, weights="orthogonal", q0=3.0)
    rng = np.random.default_rng(7)
    draws = [sample_eigenvalues("tanh", sw, sb, 6, 800, "orthogonal", 3.0, rng) for _ in range(4)]
    _compare_with_samples(spec, draws, cdf_tol=0.02)


def test_law_rule_does_not_hinge_on_the_last_bits_of_q():
    """The quadrature of the law of φ'² is the same size for q and q a few ulp away: the truncation ends ±Z_MAX are
    not graded (they were, or not, depending on how U/√q rounded, which doubled the contour rule and the density's
    cost at the tanh critical point q* = 1/64), and panel widths in a ratio of 2 to rounding are not split."""
    from meanfield import spectra

    act = mf.get_activation("tanh")
    for q0 in (1.0 / 64, 0.3, 2.0):
        qs = [q0, 0.015624999999999917] if q0 == 1.0 / 64 else [q0]  # a q* the solver once returned for 1/64
        for _ in range(12):
            qs.append(float(np.nextafter(qs[-1], 0.0)))
        sizes = {spectra._d2_law(act, q).cnode_vals.size for q in qs}
        assert len(sizes) == 1


@pytest.mark.parametrize("sw", [2**0.5, 1.2])
def test_orthogonal_relu_two_layers_has_a_hard_edge_at_the_limit(sw):
    # M_J^{-1}(m) = σ_w⁴ (m + 1/2)²/(m(m + 1)) = σ_w⁴ (1 + 1/(4m(m + 1))) decreases for ever: the edge is the limit
    # σ_w⁴, where the density diverges like d^{-1/2} (ρ(edge - d)·√d tends to a constant). It was labelled "sqrt"
    # (F's rounding far out, m ~ 1e8, looked like a minimum)
    js = mf.jacobian_spectrum("relu", sw, 0.0, 2, weights="orthogonal")
    assert js.edge == pytest.approx(sw**4, rel=1e-14)
    assert js.edge_kind == "hard"
    r = [float(js.density(js.edge - d)) * math.sqrt(d) for d in (1e-4, 1e-6)]
    assert r[1] == pytest.approx(r[0], rel=1e-3) and r[0] > 0.05
