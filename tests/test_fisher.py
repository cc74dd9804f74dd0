"""Fisher information: Karakida statistics, conditional FIM spectrum, Sokol–Park bound (THEORY §3–5).

Three-way checks: THEORY reference values; identities and hand computations (ReLU closed forms, written out here
independently); a per-layer reference built from the package's quadrature (``mf.two_point``); and small independent
numpy simulations (NTK Gram matrices of sampled networks, the conditional-FIM recursion with sampled Haar/Gaussian
weights) with tolerances sized to their fluctuations.
"""

import importlib.util
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.fisher import (
    ConditionalFisherSpectrum,
    FisherStatistics,
    conditional_fisher_spectrum,
    fisher_statistics,
    sokol_park_bound,
)

SQRT2 = math.sqrt(2.0)
# The conditional spectrum takes the law of φ'² from meanfield.spectra (and the bound its Jacobian edges): if that
# module is not in this checkout, those tests skip, saying why.
requires_spectra = pytest.mark.skipif(
    importlib.util.find_spec("meanfield.spectra") is None,
    reason="meanfield.spectra (law of φ'², jacobian_spectrum) is not in this checkout yet",
)
TANH_CRIT_1_64 = (1.0151637852, 2.1566949868e-3)  # THEORY §1: tanh critical point with q* = 1/64
TANH_CRIT_1_2 = tuple(float(v) for v in mf.critical_point("tanh", 0.5))

relu = lambda h: np.maximum(h, 0.0)  # noqa: E731
drelu = lambda h: (h > 0.0).astype(float)  # noqa: E731
dtanh = lambda h: 1.0 - np.tanh(h) ** 2  # noqa: E731
ACT = {"relu": (relu, drelu), "tanh": (np.tanh, dtanh)}


# ======================================================================================== reference values (§3)
def test_theory_reference_relu_kappas():
    """THEORY §3 reference: ReLU σ_w² = 2, σ_b = 0, depth 2, C = 1, N_0 = N, biases=False."""
    r = fisher_statistics("relu", SQRT2, 0.0, 2, 1000, 100, biases=False)
    assert isinstance(r, FisherStatistics)
    assert r.alpha == 2.0
    assert r.kappa1 == pytest.approx(1.5, rel=1e-12)
    assert r.kappa2 == pytest.approx(0.342854, abs=1e-6)
    assert r.lambda_max == pytest.approx(708.85, abs=0.01)
    assert r.lambda_max_multiplicity == 1
    # m_λ ≈ κ_1 C/N and s_λ ≈ αC[(T-1)/T κ_2² + κ_1²/T] are leading order in P ≈ αN²; we divide by the exact P
    # (which includes the readout's N weights), a relative difference of 1/(αN) = 5e-4
    assert r.mean_eigenvalue == pytest.approx(0.0015, rel=1e-3)
    assert r.second_moment == pytest.approx(0.2777, rel=1e-3)
    assert r.n_parameters == 2 * 1000 * 1000 + 1000
    assert r.learning_rate_bound == pytest.approx(2.0 / 708.85, rel=1e-5)


def test_theory_reference_relu_small():
    """THEORY §3: N = 400, T = 40: λ_max 297.43, bulk 23.14 (the mean-field values the simulation is compared to)."""
    r = fisher_statistics("relu", SQRT2, 0.0, 2, 400, 40, biases=False)
    assert r.lambda_max == pytest.approx(297.43, abs=0.01)
    assert r.bulk_eigenvalue == pytest.approx(23.14, abs=0.01)
    assert r.bulk_multiplicity == 39


def _relu_reference(sw, sb, depth, N, N0, T, q_in, rho, biases):
    """κ_1, κ_2 of a ReLU network from the arc-cosine closed forms, written out by hand (Cho & Saul 2009)."""
    sw2, sb2 = sw * sw, sb * sb
    qh, qhx = [q_in], [rho * q_in]  # forward q̂^l, q̂^l_×
    chi, chix = [None], [None]
    q, qx = sw2 * q_in + sb2, sw2 * rho * q_in + sb2
    for _ in range(depth):
        c = max(-1.0, min(1.0, qx / q))
        th = math.acos(c)
        qh.append(q / 2.0)
        qhx.append(q / (2 * math.pi) * (math.sin(th) + (math.pi - th) * c))
        chi.append(sw2 / 2.0)
        chix.append(sw2 * (math.pi - th) / (2 * math.pi))
        q, qx = sw2 * qh[-1] + sb2, sw2 * qhx[-1] + sb2
    b = (1.0 if biases else 0.0) / N
    a = [None, N0 / N * qh[0] + b] + [qh[l - 1] + b for l in range(2, depth + 2)]
    ax = [None, N0 / N * qhx[0] + b] + [qhx[l - 1] + b for l in range(2, depth + 2)]

    def total(aa, cc):
        s = 0.0
        for l in range(1, depth + 2):
            prod = 1.0
            for m in range(l, depth + 1):
                prod *= cc[m]
            s += aa[l] * prod
        return s

    alpha = N0 / N + depth - 1
    return total(a, chi) / alpha, total(ax, chix) / alpha


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("rho", [0.0, 0.35, -0.02])
def test_relu_kappas_vs_hand_computation(biases, rho):
    sw, sb, depth, N, N0, T, q_in = 1.3, 0.4, 4, 300, 150, 20, 1.7
    k1, k2 = _relu_reference(sw, sb, depth, N, N0, T, q_in, rho, biases)
    r = fisher_statistics("relu", sw, sb, depth, N, T, input_width=N0, input_norm=q_in, input_correlation=rho,
                          biases=biases)
    assert r.alpha == N0 / N + depth - 1
    assert r.kappa1 == pytest.approx(k1, rel=1e-12)
    assert r.kappa2 == pytest.approx(k2, rel=1e-12)


# ================================================================================================== identities
@pytest.mark.parametrize("phi", ["tanh", "erf", "linear"])
def test_kappa2_vanishes_for_odd_phi(phi):
    """Odd φ, σ_b = 0, orthogonal inputs: the cross covariance stays 0 (E φ = 0), so κ_2 = 0 (THEORY §3). Only for the
    weights: trained biases add Σ_l q̃^l_×/N, which does not vanish (E φ'φ' = (E φ')² > 0)."""
    r = fisher_statistics(phi, 0.9, 0.0, 5, 200, 10, biases=False)
    with_biases = fisher_statistics(phi, 0.9, 0.0, 5, 200, 10, biases=True)
    assert 0.0 < with_biases.kappa2 < 0.05 * with_biases.kappa1
    assert abs(r.kappa2) <= 1e-14 * r.kappa1
    assert r.lambda_max == pytest.approx(r.bulk_eigenvalue, rel=1e-12)
    assert r.lambda_max_multiplicity == r.n_outputs * r.n_samples  # top and bulk coincide


def test_kappa2_positive_for_relu_and_with_bias():
    assert fisher_statistics("relu", SQRT2, 0.0, 3, 100, 5).kappa2 > 0.1
    assert fisher_statistics("tanh", 1.3, 0.3, 3, 100, 5).kappa2 > 0.01


@pytest.mark.parametrize("phi,sw,sb", [("tanh", 1.4, 0.2), ("relu", 1.2, 0.3), ("gelu", 1.5, 0.1)])
@pytest.mark.parametrize("C,T", [(1, 1), (3, 17)])
def test_trace_and_eigenvalue_identities(phi, sw, sb, C, T):
    r = fisher_statistics(phi, sw, sb, 6, 128, T, n_outputs=C, input_width=64, input_correlation=0.3)
    N, N0, L = 128, 64, 6
    assert r.n_parameters == N0 * N + (L - 1) * N * N + N * C + L * N + C
    assert r.mean_eigenvalue * r.n_parameters == pytest.approx(r.trace, rel=1e-14)
    assert r.trace == pytest.approx(C * N * r.alpha * r.kappa1, rel=1e-14)
    # the non-zero eigenvalues (C at the top, C(T-1) in the bulk) carry the whole trace ...
    total = C * r.lambda_max + C * (T - 1) * r.bulk_eigenvalue
    assert total == pytest.approx(r.trace, rel=1e-13)
    # ... and their squares the second moment
    squares = C * r.lambda_max**2 + C * (T - 1) * r.bulk_eigenvalue**2
    assert squares / r.n_parameters == pytest.approx(r.second_moment, rel=1e-13)
    assert r.learning_rate_bound == 2.0 / r.lambda_max


def test_identical_inputs_have_kappa2_equal_kappa1():
    r = fisher_statistics("tanh", 1.2, 0.1, 4, 100, 5, input_correlation=1.0)
    assert r.kappa2 == pytest.approx(r.kappa1, rel=1e-15)
    assert r.lambda_max == pytest.approx(100 * r.alpha * r.kappa1, rel=1e-14)  # rank one in the inputs


def test_negative_correlation_puts_the_bulk_on_top():
    r = fisher_statistics("tanh", 1.2, 0.0, 2, 100, 5, input_correlation=-0.2)
    assert r.kappa2 < 0
    assert r.lambda_max == r.bulk_eigenvalue
    assert r.lambda_max_multiplicity == 4


def test_bias_contribution():
    """Biases add q̃^l/N per layer: Θ_biases - Θ_weights = Σ_l q̃^l (THEORY §3)."""
    kw = dict(phi="tanh", sigma_w=1.1, sigma_b=0.2, depth=5, width=500, n_samples=8)
    w = fisher_statistics(**kw, biases=False)
    b = fisher_statistics(**kw, biases=True)
    extra = np.nansum(w.q_tilde[1:])
    assert (b.kappa1 - w.kappa1) * b.alpha * 500 == pytest.approx(extra, rel=1e-12)
    assert 0.0 < (b.kappa1 - w.kappa1) / w.kappa1 < 0.05
    assert b.n_parameters - w.n_parameters == 5 * 500 + 1


def test_orthogonal_weights_share_the_statistics():
    kw = dict(phi="tanh", sigma_w=1.1, sigma_b=0.2, depth=5, width=300, n_samples=8)
    g = fisher_statistics(**kw, weights="gaussian")
    o = fisher_statistics(**kw, weights="orthogonal")
    assert (o.kappa1, o.kappa2, o.lambda_max) == (g.kappa1, g.kappa2, g.lambda_max)
    assert o.weights == "orthogonal"


def test_per_layer_order_parameters():
    r = fisher_statistics("relu", SQRT2, 0.0, 3, 100, 4, biases=False)
    L = 3
    assert r.q.shape == r.q_hat.shape == r.q_tilde.shape == r.layer_share.shape == (L + 2,)
    assert r.q[0] == 1.0 and r.q_hat[0] == 1.0 and np.isnan(r.q_hat[L + 1])
    assert np.isnan(r.q_tilde[0]) and r.q_tilde[L + 1] == 1.0
    np.testing.assert_allclose(r.q_tilde[1:], 1.0)  # critical ReLU: χ = 1
    np.testing.assert_allclose(r.layer_share[1:], 1.0 / (L + 1))  # every layer contributes the same
    assert np.nansum(r.layer_share) == pytest.approx(1.0)


# ================================================================================ two-point paths vs quadrature
def _quadrature_reference(phi, sw, sb, depth, q_in, rho):
    """κ sums Θ/N (biases off, N_0 = N) with every layer's expectations from mf.gaussian_moments / mf.two_point."""
    sw2, sb2 = sw * sw, sb * sb
    q, qx = sw2 * q_in + sb2, sw2 * rho * q_in + sb2
    qh, qhx, chi, chix = [q_in], [rho * q_in], [None], [None]
    for _ in range(depth):
        m = mf.gaussian_moments(phi, q)
        t = mf.two_point(phi, q, q, qx)
        qh.append(m.phi2)
        qhx.append(t.phi_phi)
        chi.append(sw2 * m.mu1)
        chix.append(sw2 * t.dphi_dphi)
        q, qx = sw2 * m.phi2 + sb2, sw2 * t.phi_phi + sb2
    S = Sx = 0.0
    for l in range(1, depth + 2):
        S = (chi[l - 1] * S if l > 1 else 0.0) + qh[l - 1]
        Sx = (chix[l - 1] * Sx if l > 1 else 0.0) + qhx[l - 1]
    return S, Sx, np.array(qhx)


@pytest.mark.parametrize(
    "phi,sw,sb,rho",
    [
        ("tanh", 1.5, 0.3, 0.0),  # chaotic, q* ≈ 1: Mehler series with 256 nodes
        ("tanh", 1.0151637852, 2.1566949868e-3, 0.5),  # critical, q* = 1/64
        ("tanh", 2.3287072899, 2.0088803794, 0.2),  # critical, q* = 8: too large for the series, quadrature
        ("gelu", 1.4, 0.2, 0.1),
        ("hard_tanh", 1.2, 0.1, 0.3),  # kinked, no closed two-point form: quadrature
        ("erf", 1.3, 0.2, -0.3),  # closed form
    ],
)
def test_layer_sums_vs_quadrature_reference(phi, sw, sb, rho):
    depth = 12
    S, Sx, qhx = _quadrature_reference(phi, sw, sb, depth, 1.0, rho)
    r = fisher_statistics(phi, sw, sb, depth, 200, 4, input_correlation=rho, biases=False)
    assert r.kappa1 * r.alpha == pytest.approx(S, rel=1e-11)
    assert r.kappa2 * r.alpha == pytest.approx(Sx, rel=1e-10, abs=1e-12 * S)
    np.testing.assert_allclose(r.q_hat_cross[: depth + 1], qhx, rtol=1e-10, atol=1e-12)


def test_mehler_series_is_used_and_quadrature_fallback_reported():
    assert fisher_statistics("tanh", 1.5, 0.3, 5, 100, 3).cross_method == "Mehler series"
    assert fisher_statistics("relu", 1.5, 0.3, 5, 100, 3).cross_method == "closed form"
    assert fisher_statistics("hard_tanh", 1.5, 0.3, 5, 100, 3).cross_method == "quadrature"


# ================================================================================================ vectorised depth
@pytest.mark.parametrize("phi,sw,sb", [("tanh", 0.9, 0.1), ("tanh", 1.5, 0.3), ("relu", 1.3, 0.2)])
def test_depth_array_matches_scalar_calls(phi, sw, sb):
    depths = np.array([[1, 2, 7], [30, 150, 400]])
    r = fisher_statistics(phi, sw, sb, depths, 300, 9, input_correlation=0.2)
    assert r.kappa1.shape == depths.shape and r.n_parameters.shape == depths.shape
    for idx in np.ndindex(depths.shape):
        s = fisher_statistics(phi, sw, sb, int(depths[idx]), 300, 9, input_correlation=0.2)
        for name in ("kappa1", "kappa2", "lambda_max", "bulk_eigenvalue", "mean_eigenvalue", "second_moment"):
            assert getattr(r, name)[idx] == pytest.approx(getattr(s, name), rel=1e-12), name
        assert r.n_parameters[idx] == s.n_parameters
    assert isinstance(s.kappa1, float) and isinstance(s.n_parameters, int)


def test_early_stop_at_the_fixed_point():
    """Ordered tanh: q and the cross covariance reach their fixed point to rounding and the iteration stops there; the
    deeper layers repeat it."""
    r = fisher_statistics("tanh", 0.9, 0.1, 600, 100, 3)
    assert r.converged_layer < 300
    L = r.converged_layer
    assert np.all(r.q_hat_cross[L:601] == r.q_hat_cross[L])
    # the stop changes nothing visible: a direct (unstopped) iteration of the maps agrees
    sw2, sb2 = 0.81, 0.01
    q, qx = sw2 + sb2, sb2
    for _ in range(599):
        t = mf.two_point("tanh", q, q, qx)
        q, qx = sw2 * mf.gaussian_moments("tanh", q).phi2 + sb2, sw2 * t.phi_phi + sb2
    assert r.q[600] == pytest.approx(q, rel=1e-13)
    assert r.q_cross[600] == pytest.approx(qx, rel=1e-12)


# ================================================================================================= Monte Carlo
def _ntk_gram(rng, phi, dphi, sw, sb, depth, N, N0, T, C, biases):
    """Θ (T·C × T·C, output-major) of a sampled MLP by the exact layerwise identity (THEORY §3), in numpy."""
    X = rng.standard_normal((T, N0))  # iid N(0, 1) entries: |x|²/N_0 ≈ 1, pairwise correlations ≈ 0
    widths = [N0] + [N] * depth + [C]
    xs, hs = [X], []
    Ws = []
    for l in range(1, depth + 2):
        W = rng.standard_normal((widths[l], widths[l - 1])) * sw / math.sqrt(widths[l - 1])
        b = rng.standard_normal(widths[l]) * sb
        Ws.append(W)
        h = xs[-1] @ W.T + b
        hs.append(h)
        if l <= depth:
            xs.append(phi(h))
    theta = np.zeros((C, T, C, T))
    for k in range(C):
        for kk in range(C):
            dk = np.zeros((T, C))
            dk[:, k] = 1.0
            dkk = np.zeros((T, C))
            dkk[:, kk] = 1.0
            for l in range(depth + 1, 0, -1):  # weight layer l, input x^{l-1}
                gram_x = xs[l - 1] @ xs[l - 1].T + (1.0 if biases else 0.0)
                theta[k, :, kk, :] += (dk @ dkk.T) * gram_x
                if l > 1:
                    dk = (dk @ Ws[l - 1]) * dphi(hs[l - 2])
                    dkk = (dkk @ Ws[l - 1]) * dphi(hs[l - 2])
    return theta.reshape(C * T, C * T)


def test_monte_carlo_relu_theory_reference():
    """THEORY §3: N = 400, T = 40, 6 seeds: λ_max 297.43 ± 10 %, bulk mean 23.14 ± 5 %."""
    rng = np.random.default_rng(20261123)
    tops, bulks = [], []
    for _ in range(6):
        theta = _ntk_gram(rng, relu, drelu, SQRT2, 0.0, 2, 400, 400, 40, 1, biases=False)
        ev = np.linalg.eigvalsh(theta / 40)[::-1]
        tops.append(ev[0])
        bulks.append(ev[1:].mean())
    r = fisher_statistics("relu", SQRT2, 0.0, 2, 400, 40, biases=False)
    assert np.mean(tops) == pytest.approx(r.lambda_max, rel=0.10)
    assert np.mean(bulks) == pytest.approx(r.bulk_eigenvalue, rel=0.05)


def test_monte_carlo_tanh_with_biases_and_outputs():
    """tanh with biases, C = 2 outputs, N_0 ≠ N: the mean of the top C eigenvalues (THEORY §3: compare the top C) and the
    trace. The readout's C rows scale every δ^l of their output, so the trace fluctuates by ~√(2/(NC)) per network:
    16 networks bring the mean to ±1.5 %."""
    rng = np.random.default_rng(7)
    sw, sb, depth, N, N0, T, C = 1.3, 0.3, 3, 300, 200, 12, 2
    tops, traces = [], []
    for _ in range(16):
        theta = _ntk_gram(rng, np.tanh, dtanh, sw, sb, depth, N, N0, T, C, biases=True)
        ev = np.linalg.eigvalsh(theta / T)[::-1]
        tops.append(ev[:C].mean())
        traces.append(np.trace(theta) / T)
    r = fisher_statistics("tanh", sw, sb, depth, N, T, n_outputs=C, input_width=N0)
    assert np.mean(traces) == pytest.approx(r.trace, rel=0.05)
    assert np.mean(tops) == pytest.approx(r.lambda_max, rel=0.08)


# ================================================================================================== bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(width=0), "width"),
        (dict(width=2.5), "width"),
        (dict(depth=0), "depth"),
        (dict(depth=[3, 0]), "depth"),
        (dict(depth=[]), "depth"),
        (dict(n_outputs=0), "n_outputs"),
        (dict(input_width=0), "input_width"),
        (dict(input_correlation=1.5), "input_correlation"),
        (dict(input_correlation=-0.5), "-1/\\(T-1\\)"),
        (dict(input_norm=0.0), "input_norm"),
        (dict(sigma_w=0.0), "sigma_w"),
        (dict(sigma_b=-0.1), "sigma_b"),
        (dict(sigma_w=[1.0, 2.0]), "sigma_w"),
        (dict(weights="uniform"), "weights"),
        (dict(biases="yes"), "biases"),
    ],
)
def test_bad_input_raises(kwargs, match):
    base = dict(phi="tanh", sigma_w=1.0, sigma_b=0.1, depth=3, width=100, n_samples=10)
    base.update(kwargs)
    with pytest.raises(mf.InvalidParameterError, match=match):
        fisher_statistics(**base)
    assert issubclass(mf.InvalidParameterError, ValueError)


def test_overflow_is_reported():
    with pytest.raises(mf.NumericalError, match="overflow"):
        fisher_statistics("relu", 3.0, 0.0, 2000, 100, 3)


# ====================================================================================== conditional FIM (§4)
@requires_spectra
def test_theory_check_value_mean_growth_at_criticality():
    """THEORY §4: at criticality the mean of Φ/N grows by q̂* + 1/N per layer once q^l has reached q* (tanh,
    q* = 1/64, N = 500: 0.017157). Starting the input at q̂* puts every layer at q*."""
    sw, sb = TANH_CRIT_1_64
    q_hat_star = (1.0 / 64 - sb * sb) / (sw * sw)
    r = conditional_fisher_spectrum("tanh", sw, sb, 6, 500, input_norm=q_hat_star)
    steps = np.diff(r.layer_mean[1:])
    np.testing.assert_allclose(steps, 0.017157, atol=5e-7)
    assert r.layer_mean[1] == pytest.approx(0.017157, abs=5e-7)


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_conditional_moments_vs_recursion_written_out(weights):
    phi, (sw, sb), L, N, q_in = "tanh", TANH_CRIT_1_2, 5, 300, 0.8
    sw2 = sw * sw
    q = sw2 * q_in + sb * sb
    e, v, x2 = q_in + 1.0 / N, 0.0, None
    for _ in range(L):
        m = mf.gaussian_moments(phi, q)
        x2 = m.phi2
        v = sw2**2 * (m.mu1**2 * v + (m.mu2 - m.mu1**2) * e**2 + (m.mu1**2 * e**2 if weights == "gaussian" else 0.0))
        e = x2 + 1.0 / N + sw2 * m.mu1 * e
        q = sw2 * x2 + sb * sb
    r = conditional_fisher_spectrum(phi, sw, sb, L, N, weights=weights, input_norm=q_in)
    assert isinstance(r, ConditionalFisherSpectrum)
    assert r.mean == pytest.approx(e, rel=1e-12)
    assert r.variance == pytest.approx(v, rel=1e-11)


@requires_spectra
def test_conditional_mean_is_the_ntk_diagonal():
    """Tr Φ/N² = Θ(x, x)/N with C = N outputs: the conditional mean equals fisher_statistics' trace/(C N)."""
    sw, sb = 1.2, 0.3
    c = conditional_fisher_spectrum("tanh", sw, sb, 7, 256, input_norm=0.6)
    s = fisher_statistics("tanh", sw, sb, 7, 256, 1, n_outputs=256, input_norm=0.6)
    assert c.mean == pytest.approx(s.trace / 256**2, rel=1e-13)


def _support_grid(r, n):
    """Points on [a_{L+1}/N, λ_max] clustered at both ends like Chebyshev points (x'(t) ∝ sin πt), so that the
    trapezoid rule in t handles the inverse-square-root edges (Gaussian weights' hard edge at a_{L+1}/N, the depth-1
    law's top); returns (x, dx/dt·Δt) for ∫ f dx ≈ Σ f(x) w."""
    lo, hi = r.shift[-1], r.lambda_max
    t = (np.arange(n) + 0.5) / n
    x = lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.pi * t))
    w = (hi - lo) * 0.5 * np.pi * np.sin(np.pi * t) / n
    return x, w


def _density_moments(r, n=2000):
    """Mass, mean, variance of the computed law: the density integrated on its support plus the atoms."""
    xs, w = _support_grid(r, n)
    rho = r.density(xs) * w
    mass = rho.sum() + sum(m for _, m in r.atoms)
    m1 = (xs * rho).sum() + sum(a * m for a, m in r.atoms)
    m2 = (xs**2 * rho).sum() + sum(a * a * m for a, m in r.atoms)
    return mass, m1, m2 - m1 * m1


@requires_spectra
@pytest.mark.parametrize(
    "phi,sw,sb,L,weights,q_in",
    [
        ("tanh", *TANH_CRIT_1_2, 3, "orthogonal", 1.0),
        ("tanh", *TANH_CRIT_1_2, 3, "gaussian", 1.0),
        ("tanh", *TANH_CRIT_1_64, 8, "orthogonal", 1.0),
        ("relu", SQRT2, 0.0, 3, "gaussian", 1.0),  # an atom of mass 1/2 at a_{L+1}/N, a hard edge next to it
        # three atoms: at a_4/N (φ' = 0 in layer 3), and two more where the masses of the atoms of ν and of the level
        # below add up to more than one (Belinschi's rule for ⊠)
        ("hard_tanh", 1.1, 0.1, 3, "orthogonal", 1.0),
    ],
)
def test_density_integrates_to_the_exact_moments(phi, sw, sb, L, weights, q_in):
    r = conditional_fisher_spectrum(phi, sw, sb, L, 400, weights=weights, input_norm=q_in)
    if phi == "hard_tanh":
        assert len(r.atoms) == 3
    mass, mean, var = _density_moments(r)
    assert mass == pytest.approx(1.0, abs=1e-3)
    assert mean == pytest.approx(r.mean, rel=1e-3)
    assert var == pytest.approx(r.variance, rel=3e-3)
    assert r.density(r.lambda_max * 1.01) == 0.0
    assert r.density(r.shift[-1] * 0.99) == 0.0


@requires_spectra
def test_density_near_the_lower_end_vs_simulation():
    """Orthogonal weights: a thin tail reaches down to a_{L+1}/N (small φ'² from the Gaussian tails of h), which a
    discretised law of φ'² misses; the contour rule gets it (mass of the lowest 2–20 % of the range vs simulation)."""
    sw, sb = TANH_CRIT_1_2
    r = conditional_fisher_spectrum("tanh", sw, sb, 3, 400)
    rng = np.random.default_rng(5)
    ev = np.concatenate([_conditional_fim_eigenvalues(rng, np.tanh, dtanh, sw, sb, 3, 400, "orthogonal", 1.0)
                         for _ in range(6)])
    s_top = r.shift[-1]
    for frac, tol in ((0.05, 0.008), (0.2, 0.015)):
        xs = s_top + np.linspace(0.0, 1.0, 2001) ** 2 * frac * s_top
        assert np.trapezoid(r.density(xs), xs) == pytest.approx(np.mean(ev < s_top * (1 + frac)), abs=tol)


def _haar(N, rng):
    Q, R = np.linalg.qr(rng.standard_normal((N, N)))
    return Q * np.sign(np.diag(R))


def _conditional_fim_eigenvalues(rng, phi, dphi, sw, sb, L, N, weights, q_in):
    """Eigenvalues of Φ/N of one sampled network, by the recursion G_l = a_l I + W D G D Wᵀ (THEORY §4), in numpy."""
    x = rng.standard_normal(N)
    x *= math.sqrt(q_in * N) / np.linalg.norm(x)

    def draw():
        return sw * (_haar(N, rng) if weights == "orthogonal" else rng.standard_normal((N, N)) / math.sqrt(N))

    Ws = [draw() for _ in range(L + 1)]
    xs, ds = [x], []
    for l in range(L):
        h = Ws[l] @ xs[-1] + sb * rng.standard_normal(N)
        ds.append(dphi(h))
        xs.append(phi(h))
    G = (xs[0] @ xs[0] + 1.0) * np.eye(N)
    for l in range(2, L + 2):
        M = Ws[l - 1] * ds[l - 2]  # W^l D_{l-1}
        G = (xs[l - 1] @ xs[l - 1] + 1.0) * np.eye(N) + M @ G @ M.T
    return np.linalg.eigvalsh(G / N)


def _compare_with_simulation(phi, sw, sb, L, weights, q_in, seeds, N=400, edge_rtol=0.03, cdf_atol=0.03, mean_rtol=0.02,
                             probs=(0.1, 0.25, 0.5, 0.75, 0.9)):
    """Mean, variance, edge (mean over networks of the top eigenvalue) and CDF at the empirical quantiles ``probs``.

    Gaussian weights: the lowest quantiles sit on the hard edge at a_{L+1}/N, which at finite N moves with |x^L|²/N
    (O(N^{-1/2})) while the CDF rises steeply there: those are compared from p = 0.25 on."""
    rng = np.random.default_rng(11)
    f, df = ACT[phi]
    evs = [_conditional_fim_eigenvalues(rng, f, df, sw, sb, L, N, weights, q_in) for _ in range(seeds)]
    ev = np.concatenate(evs)
    r = conditional_fisher_spectrum(phi, sw, sb, L, N, weights=weights, input_norm=q_in)
    assert ev.mean() == pytest.approx(r.mean, rel=mean_rtol)
    assert ev.var() == pytest.approx(r.variance, rel=0.08)
    assert np.mean([e.max() for e in evs]) == pytest.approx(r.lambda_max, rel=edge_rtol)
    # distribution: the theory CDF (density integrated + atoms) against the empirical CDF at its quantiles
    xs, w = _support_grid(r, 800)
    cdf = np.cumsum(r.density(xs) * w)
    for loc, mass in r.atoms:
        cdf = cdf + mass * (xs >= loc)
    for p in probs:
        xq = np.quantile(ev, p)
        assert np.interp(xq, xs, cdf) == pytest.approx(p, abs=cdf_atol), p
    return r, ev


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_conditional_spectrum_vs_simulation_two_hidden_layers(weights):
    """The two-hidden-layer case (three levels: two free multiplicative convolutions), tanh on the critical line at
    q* = 1/2 from an input of norm 1."""
    orth = weights == "orthogonal"
    _compare_with_simulation("tanh", *TANH_CRIT_1_2, 2, weights, 1.0, seeds=4, edge_rtol=0.03 if orth else 0.08,
                             probs=(0.1, 0.25, 0.5, 0.75, 0.9) if orth else (0.25, 0.5, 0.75, 0.9))


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_conditional_spectrum_vs_simulation_deeper(weights):
    orth = weights == "orthogonal"
    _compare_with_simulation("tanh", *TANH_CRIT_1_64, 5, weights, 1.0, seeds=3, edge_rtol=0.03 if orth else 0.08,
                             probs=(0.1, 0.25, 0.5, 0.75, 0.9) if orth else (0.25, 0.5, 0.75, 0.9))


@requires_spectra
def test_relu_atom_vs_simulation():
    """ReLU: half of the D's vanish, so Φ/N has an atom of mass 1/2 at a_{L+1}/N (the readout's own shift)."""
    # ReLU's sparse D's make every a_l = |x^{l-1}|² + 1 fluctuate more: wider tolerances on the moments and the edge
    r, ev = _compare_with_simulation("relu", SQRT2, 0.0, 2, "gaussian", 1.0, seeds=4, edge_rtol=0.1, mean_rtol=0.05,
                                     probs=(0.6, 0.75, 0.9))  # the atom holds the lowest half
    (loc, mass), = r.atoms
    assert loc == pytest.approx(r.shift[-1]) and mass == pytest.approx(0.5)
    # in a sampled network the atom is exact: a_{L+1}/N (its smallest eigenvalue) repeated once per zero of D_L
    rng = np.random.default_rng(4)
    ev = _conditional_fim_eigenvalues(rng, relu, drelu, SQRT2, 0.0, 2, 400, "gaussian", 1.0)
    assert np.mean(ev <= ev.min() * (1 + 1e-9)) == pytest.approx(0.5, abs=0.06)
    assert ev.min() == pytest.approx(loc, rel=0.3)


@requires_spectra
def test_depth_one_orthogonal_is_a_pushforward():
    """Depth 1, orthogonal: Φ/N = a_2/N + (a_1/N) σ_w² W D² Wᵀ has the spectrum of σ_w² φ'(h)² itself."""
    sw, sb = TANH_CRIT_1_2
    r = conditional_fisher_spectrum("tanh", sw, sb, 1, 400)
    assert r.lambda_max == pytest.approx(r.shift[2] + r.shift[1] * sw * sw, rel=1e-12)  # φ'(0)² = 1 at h = 0
    mass, mean, var = _density_moments(r)
    assert mass == pytest.approx(1.0, abs=2e-3)
    assert mean == pytest.approx(r.mean, rel=2e-3)
    assert var == pytest.approx(r.variance, rel=1e-2)
    rng = np.random.default_rng(2)
    ev = _conditional_fim_eigenvalues(rng, np.tanh, dtanh, sw, sb, 1, 400, "orthogonal", 1.0)
    xs, w = _support_grid(r, 2000)
    cdf = np.cumsum(r.density(xs) * w)
    for p in (0.25, 0.5, 0.75):
        assert np.interp(np.quantile(ev, p), xs, cdf) == pytest.approx(p, abs=0.05)


@requires_spectra
@pytest.mark.parametrize(
    "phi,sw,sb,L,weights",
    [
        ("tanh", *TANH_CRIT_1_64, 24, "orthogonal"),
        ("tanh", *TANH_CRIT_1_64, 24, "gaussian"),
        ("tanh", *TANH_CRIT_1_2, 4, "gaussian"),
        ("relu", SQRT2, 0.0, 3, "gaussian"),  # an atom at a_{L+1}/N, a hard edge next to it
        ("hard_tanh", 1.1, 0.1, 3, "orthogonal"),  # three atoms
        ("sigmoid", 0.9, 0.3, 12, "gaussian"),  # a chain contracting ×20 per level (issue 12)
    ],
)
def test_density_continuation_agrees_with_the_previous_path(phi, sw, sb, L, weights, monkeypatch):
    """Issue 14 item 2: the density by continuation along x (pole form of the laws, tangent predictors, inexact inner
    Newton before the last evaluation, two runs of points at once) equals the previous path (every point started from
    the previous solution, the full-tolerance chain of ``chain_solve``; ``meanfield.fisher._BASELINE``) to 1e-8
    relative wherever the density exceeds 1e-6 of its maximum, and integrates to the mass left by the atoms; the
    Stieltjes transform likewise at complex points."""
    import meanfield.fisher as F

    r = conditional_fisher_spectrum(phi, sw, sb, L, 400, weights=weights)
    xs, w = _support_grid(r, 300)
    new = r.density(xs)
    with monkeypatch.context() as m:
        m.setattr(F, "_BASELINE", True)
        old = r.density(xs)
        z = np.array([r.mean + 0.01j, r.lambda_max * 0.9 + 1e-3j, r.shift[-1] * 1.01 + 0.1j])
        g_old = r.stieltjes(z)
    big = old > 1e-6 * old.max()
    assert big.sum() > 150
    # (plus 1e-11 of the maximum absolutely: next to an atom at loc the density is what is left after subtracting the
    # atom's pole mass/(w - loc) from G, so each path's chain tolerance (~1e-13 in w) leaves ~1e-12 there, and the two
    # paths reach such a point from different starts)
    np.testing.assert_allclose(new[big], old[big], rtol=1e-8, atol=1e-11 * old.max())
    # negligible parts too, absolutely: within ~1e-5 of the edges (the grid's end points) the fold makes w_1 ill
    # determined (dw_{L+1}/dw_1 → 0), so both paths' converged chains leave ~1e-8 of the maximum there
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-7 * old.max())
    assert (new * w).sum() == pytest.approx(1.0 - sum(mass for _, mass in r.atoms), abs=2e-3)
    np.testing.assert_allclose(r.stieltjes(z), g_old, rtol=1e-10)


@requires_spectra
def test_conditional_density_of_a_per_layer_network_by_both_paths(monkeypatch):
    """The per-layer chain (levels with their own laws and shifts) by the continuation and by the previous path."""
    import meanfield.fisher as F

    net = mf.Network((200,) * 5, [1.1, 1.3, 0.9, 1.2], [0.2, 0.0, 0.1, 0.3], ["tanh", "relu", "erf"], "gaussian",
                     [True, False, True, True])
    r = conditional_fisher_spectrum(net, input_norm=0.7)
    xs, _ = _support_grid(r, 150)
    new = r.density(xs)
    with monkeypatch.context() as m:
        m.setattr(F, "_BASELINE", True)
        old = r.density(xs)
    big = old > 1e-6 * old.max()
    np.testing.assert_allclose(new[big], old[big], rtol=1e-8)


@requires_spectra
def test_pole_form_of_the_laws_against_the_direct_sum():
    """The density's vectorised pole sums (packed (6, n) rows, reassociated) give η_ν(u) = ψ/(1 + ψ),
    ψ(u) = Σ_i p_i u d_i/(1 - u d_i) over the contour rule's nodes (d_i, p_i), and its derivative
    dη/du = ψ'/(1 + ψ)², ψ'(u) = Σ_i p_i d_i/(1 - u d_i)², to rounding: the sums written out here in numpy at random
    points with Im 1/u > 0 (where the chain evaluates them), every level of a depth-200 chain of distinct laws, whose
    contour rules come on two threads (the same rules as one law at a time)."""
    import meanfield.fisher as F
    from meanfield import _fisher_kernels as fk
    from meanfield.spectra import _d2_law

    r = conditional_fisher_spectrum("tanh", *TANH_CRIT_1_64, 200, 400)
    lev = r._levels
    assert len(set(lev["law_keys"])) >= 2 * F.CONTOUR_SPLIT  # the two-thread build
    D, P, off_c = F._complex_levels(lev)
    R, off = F._pole_levels(lev)
    rng = np.random.default_rng(14)
    for l in (1, 2, 57, 150, 200):
        d, p = D[off_c[l] : off_c[l + 1]], P[off_c[l] : off_c[l + 1]]
        act, q, sw2 = lev["law_keys"][l - 1]
        law = _d2_law(act, q)
        np.testing.assert_array_equal(d, sw2 * law.cnode_vals)
        np.testing.assert_array_equal(p, law.cnode_wts)
        for _ in range(4):
            u = 1.0 / complex(rng.uniform(0.1, 1.2) * sw2, 10.0 ** rng.uniform(-7, 0))
            psi = np.sum(p * u * d / (1.0 - u * d))
            dpsi = np.sum(p * d / (1.0 - u * d) ** 2)
            eta, deta = fk.eta_poles(u, R, off[l], off[l + 1])
            assert abs(eta - psi / (1.0 + psi)) <= 1e-12 * abs(eta)
            assert abs(deta - dpsi / (1.0 + psi) ** 2) <= 1e-12 * abs(deta)


def _direct_contour_values(act, sq, h, c, mid, half):
    """The contour values by the direct barycentric sums (second form, Berrut & Trefethen, SIAM Rev. 46 (2004),
    eq. 4.2) of φ'² and of log φ'² through 16 Chebyshev points of each panel, at (ξ - c)/h for the Gauss–Legendre
    points ξ of each contour segment, with the rule's choice (log where positive, better between the samples and within
    LOG_RTOL there, and at most CONTOUR_GROWTH × the panel's largest value on the contour) written out."""
    from meanfield import spectra as S

    n_s = 16
    theta = np.pi * (np.arange(n_s) + 0.5) / n_s
    xk, beta = np.cos(theta), (-1.0) ** np.arange(n_s) * np.sin(theta)
    between = np.cos(np.pi * np.arange(1, n_s) / n_s)
    xg, _ = np.polynomial.legendre.leggauss(32)

    def bary(f, x):
        t = beta / (x[..., None] - xk)
        return (t * f[:, None, :]).sum(axis=-1) / t.sum(axis=-1)

    g = lambda u: act.dphi(u) ** 2  # noqa: E731
    f = g(sq[:, None] * (c[:, None] + h[:, None] * xk))
    chk = g(sq[:, None] * (c[:, None] + h[:, None] * between))
    scale = np.maximum(np.abs(f).max(axis=1), np.abs(chk).max(axis=1))
    logs = np.log(np.where(f > 0.0, f, 1.0))
    err_lin = np.abs(bary(f, np.broadcast_to(between, chk.shape)) - chk).max(axis=1)
    with np.errstate(over="ignore"):
        err_log = np.abs(np.exp(bary(logs, np.broadcast_to(between, chk.shape))) - chk).max(axis=1)
    err_log[~np.all(f > 0.0, axis=1) | ~np.isfinite(err_log)] = np.inf
    x = ((mid[:, None] + half[:, None] * xg) - c[:, None]) / h[:, None]
    lin, lg = bary(f, x), bary(logs, x)
    with np.errstate(divide="ignore"):  # panels where φ'² rounds to 0 throughout: scale 0, the linear interpolant
        grow = np.all(lg.real <= np.log(S.CONTOUR_GROWTH * scale)[:, None], axis=1)
    use = (err_log < err_lin) & (err_log <= S.LOG_RTOL * scale) & grow
    return np.where(use[:, None], np.exp(np.where(use[:, None], lg, 0.0)), lin), use


@requires_spectra
@pytest.mark.parametrize("phi", ["tanh", "erf", "gelu", "softplus", "sigmoid"])
def test_contour_values_are_the_direct_barycentric_sums(phi):
    """The contour rules' values of φ'² (one interpolation matrix per kind of contour segment, applied as real
    multiply-adds) against the direct barycentric sums written out here, on the panels of a piece graded down to
    1e-4 and of a whole stacked depth-200 chain: the same choice of interpolant on every panel, values within 1e-8
    relative (the sums' own rounding on the contour, where the interpolant is continued off the real axis, is ~1e-10;
    the log interpolant ≳ |log φ'²| × that); the weights are not touched (bitwise those of the panels)."""
    from meanfield import spectra as S

    act = mf.get_activation(phi)
    grade = 1e-4 * 2.0 ** np.arange(0, 15)
    br = np.unique(np.r_[-9.0, -3.0 - grade[::-1], -3.0, -3.0 + grade[:12], 0.25, 1.0, 2.5, 9.0])
    cases = [(br, 1.0, 1.0), (br, -1.0, 1.0 / 64), (br, 1.0, 30.0)]
    for b, sigma, q in cases:
        h, c, mid, half, counts = S._contour_panels([b], [sigma])
        assert counts.tolist() == [h.size]
        sq = np.full(h.size, math.sqrt(q))
        vals, wts = S._contour_eval(act, sq, h, c, mid, half)
        ref, use = _direct_contour_values(act, sq, h, c, mid, half)
        big = np.abs(ref) > 1e-12 * np.abs(ref).max()
        np.testing.assert_allclose(vals[big], ref[big], rtol=1e-8)
        assert np.all(np.abs(vals[~big]) <= 1e-10 * np.abs(ref).max())
        xi = mid[:, None] + half[:, None] * np.polynomial.legendre.leggauss(32)[0]
        w_ref = np.polynomial.legendre.leggauss(32)[1] * half[:, None] * np.exp(-0.5 * xi * xi) / math.sqrt(2 * math.pi)
        np.testing.assert_allclose(wts, w_ref, rtol=1e-14)
        if phi == "tanh":
            assert use.any()  # the log interpolant is exercised
    if phi == "tanh":  # a chain's laws, stacked: every law's rule against the direct sums on its own panels
        r = conditional_fisher_spectrum("tanh", *TANH_CRIT_1_64, 200, 400)
        import meanfield.fisher as F

        D, _, off_c = F._complex_levels(r._levels)
        for l in (1, 100, 200):
            a, q, sw2 = r._levels["law_keys"][l - 1]
            law = S._d2_law(a, q)
            np.testing.assert_array_equal(D[off_c[l] : off_c[l + 1]], sw2 * law.cnode_vals)


@requires_spectra
def test_conditional_spectrum_bad_input():
    with pytest.raises(mf.InvalidParameterError, match="weights"):
        conditional_fisher_spectrum("tanh", 1.0, 0.1, 2, 100, weights="haar")
    with pytest.raises(mf.InvalidParameterError, match="width"):
        conditional_fisher_spectrum("tanh", 1.0, 0.1, 2, 0)
    with pytest.raises(mf.InvalidParameterError, match="Im z"):
        conditional_fisher_spectrum("tanh", 1.0, 0.1, 2, 100).stieltjes(1.0)


# ============================================================================================== Sokol–Park (§5)
@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("q_star,L", [(1.0 / 64, 2), (1.0 / 64, 8), (0.5, 4)])
def test_sokol_park_bound_bounds_the_conditional_spectrum(weights, q_star, L):
    sw, sb = mf.critical_point("tanh", q_star)
    q_hat = (q_star - sb * sb) / (sw * sw)  # inputs at the fixed point: every layer at q*
    b = sokol_park_bound("tanh", sw, sb, L, 400, weights=weights, input_norm=q_hat)
    c = conditional_fisher_spectrum("tanh", sw, sb, L, 400, weights=weights, input_norm=q_hat)
    assert b.bound >= c.lambda_max * (1 - 1e-9)
    assert b.bound == pytest.approx(np.sum(b.terms[1:]))
    np.testing.assert_allclose(b.shift, c.shift)
    if weights == "orthogonal" and q_star < 0.1 and L == 2:
        assert b.bound <= 1.01 * c.lambda_max  # isometric: every J_l is nearly orthogonal, the bound is tight


@requires_spectra
def test_sokol_park_jacobian_norms():
    import meanfield.spectra as spectra

    sw, sb = TANH_CRIT_1_2
    b = sokol_park_bound("tanh", sw, sb, 3, 300, weights="gaussian", input_norm=0.7, hessian_max=0.5)
    assert b.jacobian_norms[4] == 1.0
    ref = spectra.jacobian_spectrum("tanh", sw, sb, 2, weights="gaussian", q0=float(b.shift[2] - 1.0 / 300)).edge
    assert b.jacobian_norms[2] == pytest.approx(ref, rel=1e-12)
    assert b.terms[1] == pytest.approx(0.5 * b.shift[1] * b.jacobian_norms[1])


@requires_spectra
def test_sokol_park_bound_vs_simulation():
    """The bound holds for sampled networks too (finite-N top eigenvalues stay below it, up to O(N^{-2/3}))."""
    sw, sb = TANH_CRIT_1_64
    rng = np.random.default_rng(3)
    tops = [_conditional_fim_eigenvalues(rng, np.tanh, dtanh, sw, sb, 4, 300, "orthogonal", 1.0).max()
            for _ in range(2)]
    b = sokol_park_bound("tanh", sw, sb, 4, 300)
    assert max(tops) <= b.bound * 1.02


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_chain_edge_reproduces_jacobian_spectrum_edges(weights):
    """Two free-probability codes, one answer: the conditional-FIM chain with a unit shift at the bottom and none above
    is the law of J_lJ_lᵀ, so its real-axis fold must give jacobian_spectrum's edge of the same partial product."""
    import meanfield.fisher as F

    sw, sb = TANH_CRIT_1_2
    L = 4
    r = conditional_fisher_spectrum("tanh", sw, sb, L, 300, weights=weights, input_norm=0.7)
    b = sokol_park_bound("tanh", sw, sb, L, 300, weights=weights, input_norm=0.7)
    lev = r._levels
    for l in range(1, L):  # J_l: the layers l … L (l = L is the "hard" depth-1 edge for orthogonal weights)
        k = L + 1 - l
        sub = slice(lev["off_real"][l], lev["off_real"][L + 1])
        off = lev["off_real"][l : L + 2] - lev["off_real"][l]
        s = np.r_[np.nan, 1.0, np.zeros(k)]
        dmax = np.r_[np.nan, lev["dmax"][l : L + 1], np.nan]
        chain = dict(s=s, D_real=lev["D_real"][sub], P_real=lev["P_real"][sub], off_real=np.r_[0, off],
                     gauss=lev["gauss"], dmax=dmax)
        assert F._edge(chain) == pytest.approx(b.jacobian_norms[l], rel=1e-6), l


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_sokol_park_bound_along_the_tanh_critical_line(weights):
    """q* from 1e-3 to 1e2, depths 1, 2, 8: finite everywhere. At large q* the layers' laws of φ'² reach the
    saturated tails where 1 - tanh² rounds to 0, and the depth-1 partial Jacobian's edge took log(0)."""
    for q_star in np.geomspace(1e-3, 1e2, 9):
        sw, sb = mf.critical_point("tanh", float(q_star))
        for L in (1, 2, 8):
            b = sokol_park_bound("tanh", sw, sb, L, 200, weights=weights)
            assert math.isfinite(b.bound) and np.all(np.isfinite(b.jacobian_norms[1:])), (q_star, L)
            assert b.bound == pytest.approx(np.sum(b.terms[1:]), rel=1e-14)
            if weights == "orthogonal":
                # J_L J_Lᵀ = σ_w² D_L² (one layer): its norm is σ_w² max φ'² = σ_w² (h = 0)
                assert b.jacobian_norms[L] == pytest.approx(sw * sw, rel=1e-13)


@requires_spectra
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("q_star, input_norm", [(1.0 / 64, 1.0), (0.5, 0.7), (10.0, 3.0)])
def test_sokol_park_norms_are_the_partial_jacobian_edges(weights, q_star, input_norm):
    """The one-pass tail edges equal the definition, one jacobian_spectrum per partial product J_l (layers l … L,
    started from q0 = q̂^{l-1})."""
    import meanfield.spectra as spectra

    sw, sb = mf.critical_point("tanh", q_star)
    L = 5
    b = sokol_park_bound("tanh", sw, sb, L, 300, weights=weights, input_norm=input_norm)
    q_hat = np.r_[input_norm, b.shift[2:L + 1] - 1.0 / 300]
    for l in range(1, L + 1):
        ref = spectra.jacobian_spectrum("tanh", sw, sb, L + 1 - l, weights=weights, q0=float(q_hat[l - 1])).edge
        assert b.jacobian_norms[l] == pytest.approx(ref, rel=1e-8), l
    assert b.jacobian_norms[L + 1] == 1.0


@requires_spectra
def test_sokol_park_bound_is_fast_at_depth_64():
    """All L partial products from one set of laws (was ~5 s: one jacobian_spectrum per l); generous for busy CI."""
    import time

    sw, sb = TANH_CRIT_1_64
    sokol_park_bound("tanh", sw, sb, 4, 300)  # compile / warm up
    best = math.inf
    for weights in ("orthogonal", "gaussian"):
        t = time.perf_counter()
        b = sokol_park_bound("tanh", sw, sb, 64, 300, weights=weights)
        best = min(best, time.perf_counter() - t)
        assert math.isfinite(b.bound)
    assert best < 1.0
