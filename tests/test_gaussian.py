"""Gaussian expectations: quadrature vs 30-digit references, closed forms vs quadrature, error estimates.

References: THEORY §1 table and reference values; mpmath quadrature at 30 digits, split at the kinks and the
activation's scale (computed here, independently of the package's rule).
"""

import mpmath as mp
import numpy as np
import pytest

import meanfield as mf
from meanfield import _closed

mp.mp.dps = 30
QS = [1e-8, 1e-3, 0.5, 8.0, 1e2, 1e4]


def mp_expect(f, q, kinks=()):
    s = mp.sqrt(q)
    pts = {mp.mpf(0), mp.mpf(-12), mp.mpf(12)}
    for j in range(-2, 16):
        for sign in (1, -1):
            z = sign * mp.mpf(2) ** j / s
            if abs(z) < 12:
                pts.add(z)
    for k in kinks:
        if abs(k / s) < 12:
            pts.add(mp.mpf(k) / s)
    pts = [-mp.inf] + sorted(pts) + [mp.inf]
    return mp.quad(lambda z: f(s * z) * mp.exp(-z * z / 2), pts) / mp.sqrt(2 * mp.pi)


SMOOTH = {
    "tanh": (lambda u: mp.tanh(u), lambda u: 1 - mp.tanh(u) ** 2),
    "gelu": (lambda u: u * mp.ncdf(u), lambda u: mp.ncdf(u) + u * mp.npdf(u)),
    "softplus": (lambda u: mp.log1p(mp.exp(u)), lambda u: 1 / (1 + mp.exp(-u))),
    "sigmoid": (lambda u: 1 / (1 + mp.exp(-u)), lambda u: mp.exp(-u) / (1 + mp.exp(-u)) ** 2),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
@pytest.mark.parametrize("q", QS)
def test_smooth_moments_vs_30_digit_reference(name, q):
    f, d = SMOOTH[name]
    m = mf.gaussian_moments(name, q)
    refs = [mp_expect(lambda u: f(u) ** 2, q), mp_expect(lambda u: d(u) ** 2, q), mp_expect(lambda u: d(u) ** 4, q)]
    for got, ref, err in zip((m.phi2, m.mu1, m.mu2), refs, m.error[[0, 2, 3]]):
        true_err = abs(got - float(ref))
        assert true_err <= 1e-12 * abs(float(ref))
        assert true_err <= err + 2e-15 * abs(float(ref))  # the estimate bounds the error (up to summation rounding)


@pytest.mark.parametrize("q", QS)
def test_kinked_quadrature_vs_closed_forms(q):
    """Expressions with no closed form go through the kink-split quadrature; compare with the closed forms."""
    out = np.empty(5)
    for expr, closed in [("Max(0, x)", _closed.relu_onepoint), ("Max(-1, Min(1, x))", _closed.hard_tanh_onepoint)]:
        m = mf.gaussian_moments(expr, q)
        closed(q, out)
        np.testing.assert_allclose([m.phi2, m.dphi2_dq, m.mu1, m.mu2], out[:4], rtol=1e-12, atol=1e-300)


def test_erf_quadrature_vs_closed_form():
    out = np.empty(5)
    for q in QS:
        m = mf.gaussian_moments("erf(x)", q)
        _closed.erf_onepoint(q, out)
        np.testing.assert_allclose([m.phi2, m.dphi2_dq, m.mu1, m.mu2], out[:4], rtol=1e-12)


def test_theory_reference_values():
    # THEORY §1 reference values
    assert mf.gaussian_moments("hard_tanh", 0.5).phi2 == pytest.approx(0.3710958548, rel=1e-10)
    assert mf.gaussian_moments("hard_tanh", 1.0).phi2 == pytest.approx(0.5160585510, rel=1e-10)
    assert mf.gaussian_moments("Max(-1, Min(1, x))", 0.5).phi2 == pytest.approx(0.3710958548, rel=1e-10)
    assert mf.gaussian_moments("erf", 1.0).phi2 == pytest.approx(0.4645590544, rel=1e-10)
    assert mf.two_point("erf", 0.7, 1.3, 0.4).phi_phi == pytest.approx(0.1754796561, rel=1e-10)
    assert mf.two_point("erf(x)", 0.7, 1.3, 0.4).phi_phi == pytest.approx(0.1754796561, rel=1e-10)


def test_closed_form_special_cases_are_one_formula():
    """ReLU and linear are leaky ReLU with slope 0 and 1 (STYLE §6)."""
    a, b = np.empty(5), np.empty(5)
    _closed.relu_onepoint(0.7, a)
    _closed.leaky_relu_onepoint(0.7, 0.0, b)
    np.testing.assert_array_equal(a, b)
    t1, t2 = np.empty(2), np.empty(2)
    _closed.linear_twopoint(0.7, 1.1, 0.3, t1)
    assert t1 == pytest.approx([0.3, 1.0], rel=1e-15)
    _closed.leaky_relu_twopoint(0.7, 1.1, 0.3, 0.2, t2)
    # leaky ReLU two-point from its definition φ = a u + (1-a) relu(u)
    mixed = mf.expect2(lambda u: 0.2 * u + 0.8 * np.maximum(u, 0), lambda u: 0.2 * u + 0.8 * np.maximum(u, 0),
                       0.7, 1.1, 0.3, kinks_f=(0.0,), kinks_g=(0.0,))
    assert t2[0] == pytest.approx(mixed.value, rel=1e-12)


TWO_POINT_CASES = [(1.0, 1.0, 0.0), (0.7, 1.3, 0.4), (2.0, 0.5, -0.9), (1.0, 1.0, 0.999999), (1.0, 1.0, 1.0), (30.0, 30.0, 12.0)]


@pytest.mark.parametrize("q11, q22, q12", TWO_POINT_CASES)
def test_two_point_relu_quadrature_vs_arccos_kernel(q11, q22, q12):
    out = np.empty(2)
    _closed.relu_twopoint(q11, q22, q12, out)
    tp = mf.two_point("Max(0, x)", q11, q22, q12)
    assert tp.phi_phi == pytest.approx(out[0], rel=1e-11, abs=1e-14)
    assert tp.dphi_dphi == pytest.approx(out[1], rel=1e-6 if q12 * q12 > 0.99 * q11 * q22 else 1e-11)


@pytest.mark.parametrize("q11, q22, q12", TWO_POINT_CASES)
def test_two_point_erf_quadrature_vs_closed_form(q11, q22, q12):
    out = np.empty(2)
    _closed.erf_twopoint(q11, q22, q12, out)
    tp = mf.two_point("erf(x)", q11, q22, q12)
    np.testing.assert_allclose([tp.phi_phi, tp.dphi_dphi], out, rtol=1e-12, atol=1e-15)


def test_two_point_at_c_one_is_one_point():
    tp = mf.two_point("tanh", 0.8, 0.8, 0.8)
    m = mf.gaussian_moments("tanh", 0.8)
    assert tp.phi_phi == pytest.approx(m.phi2, rel=1e-13)
    assert tp.dphi_dphi == pytest.approx(m.mu1, rel=1e-13)


def test_expect_user_function_and_error_estimate():
    est = mf.expect(lambda u: np.cos(u), 2.0)
    assert est.value == pytest.approx(np.exp(-1.0), rel=1e-14)  # E cos(√q z) = e^{-q/2}
    assert est.error < 1e-10
    est = mf.expect(lambda u: np.abs(u), 3.0, kinks=(0.0,))
    assert est.value == pytest.approx(np.sqrt(2 * 3.0 / np.pi), rel=1e-14)


def test_vectorised_moments_shape():
    m = mf.gaussian_moments("tanh", np.array([[0.1, 1.0], [2.0, 3.0]]))
    assert m.phi2.shape == (2, 2) and m.error.shape == (2, 2, 4)
    assert isinstance(mf.gaussian_moments("tanh", 0.3).phi2, float)


def test_bad_input():
    with pytest.raises(ValueError, match="q must be > 0"):
        mf.gaussian_moments("tanh", -1.0)
    with pytest.raises(ValueError, match="finite"):
        mf.gaussian_moments("tanh", np.nan)
    with pytest.raises(ValueError, match="covariance"):
        mf.two_point("tanh", 1.0, 1.0, 1.5)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "elu", "selu", "gelu", "silu"])
def test_moment_table_vs_direct_quadrature(name):
    """The Chebyshev table (meanfield._table) that the fixed-point solvers read reproduces direct quadrature at random
    variances over its whole range (2^-34 ≤ q < 2^20), far inside its own conservative error estimate."""
    act = mf.get_activation(name)
    k, tab = act.kernels, act.table
    assert tab.shape == (k.TABLE_LOG2_HI - k.TABLE_LOG2_LO, k.N_MOMENTS, k.TABLE_DEG + 1)
    est = act.table_error
    assert np.all(est[[0, 2, 3]] <= 1e-10) and est[1] <= 1e-7  # E φ², μ_1, μ_2; the Newton slope dE φ²/dq
    out = np.empty(k.N_MOMENTS)
    worst = np.zeros(4)
    for q in 2.0 ** np.random.default_rng(7).uniform(k.TABLE_LOG2_LO, k.TABLE_LOG2_HI, 60):
        k.moments(q, tab, out)
        m = mf.gaussian_moments(name, q)
        ref = np.array([m.phi2, m.dphi2_dq, m.mu1, m.mu2])
        worst = np.maximum(worst, np.abs(out[:4] - ref) / np.abs(ref))
    assert np.all(worst[[0, 2, 3]] <= 2e-14) and worst[1] <= 1e-12
    # the estimate is relative to each moment's scale: the value itself for E φ², μ_1, μ_2 (dE φ²/dq can cancel)
    assert np.all(worst[[0, 2, 3]] <= est[[0, 2, 3]])
