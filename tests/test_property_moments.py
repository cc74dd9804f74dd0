"""Property tests of the Gaussian moments (issue 12 item 5) against references written here, not the library's internals.

References: scipy.integrate.quad of f(√q z) N(z) on |z| ≤ 12 (the Gaussian mass beyond is 2e-33), split at 0, at the
kinks and at the points where u = √q z is ±2^j (the activation's own unit scale), to 1e-13 relative; and the closed forms of
THEORY §1 (erf, ReLU, hard-tanh, linear), with hard-tanh's p = erf(1/√(2q)).
Strategies mix round values (powers of 2 and 10), the boundaries q = 1e-8 and 1e4 and random q (log-uniform).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, special

import meanfield as mf
from meanfield.gaussian import RTOL

ROUND_Q = [2.0**k for k in range(-26, 14)] + [10.0**k for k in range(-8, 5)] + [0.5, 0.25, 3.0, 1.5]
BOUNDARY_Q = [1e-8, 1.0000001e-8, 2e-8, 9999.0, 1e4]
Q = st.one_of(
    st.sampled_from(ROUND_Q),
    st.sampled_from(BOUNDARY_Q),
    st.floats(min_value=-8.0, max_value=4.0).map(lambda e: 10.0**e),
)
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_s = special.expit
SMOOTH = {  # φ, φ' written here (numpy)
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "sigmoid": (_s, lambda u: _s(u) * _s(-u)),
    "softplus": (lambda u: np.logaddexp(0.0, u), _s),
    "gelu": (lambda u: u * special.ndtr(u), lambda u: special.ndtr(u) + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)),
    "silu": (lambda u: u * _s(u), lambda u: _s(u) + u * _s(u) * _s(-u)),
    "x*tanh(x)": (lambda u: u * np.tanh(u), lambda u: np.tanh(u) + u * (1 - np.tanh(u) ** 2)),
    "sin(x) + x/2": (lambda u: np.sin(u) + u / 2, lambda u: np.cos(u) + 0.5),
}
KINKED = {  # φ, φ', kinks
    "elu": (lambda u: np.where(u > 0, u, np.expm1(np.minimum(u, 0))), lambda u: np.where(u > 0, 1.0, np.exp(np.minimum(u, 0))),
            (0.0,)),
    "selu": (lambda u: 1.0507009873554805 * np.where(u > 0, u, 1.6732632423543772 * np.expm1(np.minimum(u, 0))),
             lambda u: 1.0507009873554805 * np.where(u > 0, 1.0, 1.6732632423543772 * np.exp(np.minimum(u, 0))), (0.0,)),
    "x/(1 + abs(x))": (lambda u: u / (1 + np.abs(u)), lambda u: 1 / (1 + np.abs(u)) ** 2, (0.0,)),
    "Max(-1, Min(1, x)) + 0.1*sin(x)": (lambda u: np.clip(u, -1, 1) + 0.1 * np.sin(u),
                                        lambda u: (np.abs(u) < 1) + 0.1 * np.cos(u), (-1.0, 1.0)),
}


def reference(f, q, kinks=()):
    """∫ f(√q z) N(z) dz by scipy quad on |z| ≤ 12, split at 0, kinks/√q and ±2^j/√q."""
    s = math.sqrt(q)
    pts = {0.0, -12.0, 12.0}
    for j in range(-3, 12):
        for sign in (1, -1):
            z = sign * 2.0**j / s
            if abs(z) < 12:
                pts.add(z)
    pts.update(k / s for k in kinks if abs(k / s) < 12)
    pts = sorted(pts)
    g = lambda z: float(f(np.asarray(s * z))) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    pieces = list(zip(pts[:-1], pts[1:]))
    rough = sum(integrate.quad(g, a, b, epsabs=1e-30, epsrel=1e-6, limit=200)[0] for a, b in pieces)
    # then to 1e-13 of the rough total (pieces that hold next to nothing need no relative accuracy of their own)
    return sum(integrate.quad(g, a, b, epsabs=1e-15 * abs(rough), epsrel=1e-13, limit=500)[0] for a, b in pieces)


def _check(name, f, d, q, kinks=()):
    m = mf.gaussian_moments(name, q)
    refs = (reference(lambda u: f(u) ** 2, q, kinks), reference(lambda u: d(u) ** 2, q, kinks),
            reference(lambda u: d(u) ** 4, q, kinks))
    for got, ref, j in zip((m.phi2, m.mu1, m.mu2), refs, (0, 2, 3)):
        err = m.error[j]
        assert err <= RTOL[j] * abs(got)  # the documented accuracy
        # the estimate bounds the error (up to the reference's own 1e-13)
        assert abs(got - ref) <= err + 1e-13 * abs(ref), (name, q, j, got, ref, err)


@pytest.mark.parametrize("name", sorted(SMOOTH))
@SETTINGS
@given(q=Q)
def test_smooth_moments_vs_scipy(name, q):
    f, d = SMOOTH[name]
    _check(name, f, d, q)


@pytest.mark.parametrize("name", sorted(KINKED))
@SETTINGS
@given(q=Q)
def test_kinked_moments_vs_scipy(name, q):
    f, d, kinks = KINKED[name]
    _check(name, f, d, q, kinks)


def closed_erf(q):
    return (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)), (4 / math.pi) / math.sqrt(1 + 4 * q)


def closed_hard_tanh(q):
    p = math.erf(1 / math.sqrt(2 * q))
    return q * p - math.sqrt(2 * q / math.pi) * math.exp(-1 / (2 * q)) + math.erfc(1 / math.sqrt(2 * q)), p


def closed_tolerance(name, q):
    """Rounding of the closed form itself: hard-tanh's E φ² cancels q·p against √(2q/π) e^{-1/(2q)} (80 at q = 1e4)."""
    if "hard" in name or "Min(1" in name:
        return 4e-16 * (q * math.erf(1 / math.sqrt(2 * q)) + 1)
    return 0.0


CLOSED = {  # THEORY §1 table: (E φ², μ_1); named activations use their closed forms, expressions the quadrature
    "erf": closed_erf, "erf(x)": closed_erf,
    "hard_tanh": closed_hard_tanh, "Max(-1, Min(1, x))": closed_hard_tanh,
    "relu": lambda q: (q / 2, 0.5), "Max(0, x)": lambda q: (q / 2, 0.5), "x*Heaviside(x)": lambda q: (q / 2, 0.5),
    "linear": lambda q: (q, 1.0), "x": lambda q: (q, 1.0),
    "leaky_relu": lambda q: (q * (1 + 1e-4) / 2, (1 + 1e-4) / 2),
}


@pytest.mark.parametrize("name", sorted(CLOSED))
@settings(max_examples=25, deadline=None)
@given(q=Q)
def test_closed_forms(name, q):
    m = mf.gaussian_moments(name, q)
    phi2, mu1 = CLOSED[name](q)
    tol = 4e-16 * phi2 + closed_tolerance(name, q)
    assert abs(m.phi2 - phi2) <= m.error[0] + tol and m.error[0] <= RTOL[0] * phi2
    assert abs(m.mu1 - mu1) <= m.error[2] + 4e-16 * mu1 and m.error[2] <= RTOL[2] * mu1


@pytest.mark.parametrize("name", ["tanh", "relu", "erf", "gelu", "x*tanh(x)", "hard_tanh"])
@settings(max_examples=8, deadline=None)
@given(q=Q)
def test_scalar_0d_list_and_array_inputs_agree(name, q):
    a = mf.gaussian_moments(name, q)
    b = mf.gaussian_moments(name, np.float64(q))
    c = mf.gaussian_moments(name, np.array(q))
    d = mf.gaussian_moments(name, [q, q])
    e = mf.gaussian_moments(name, np.array([[q], [q]]))
    assert isinstance(a.phi2, float) and isinstance(c.phi2, float)
    for field in ("phi2", "dphi2_dq", "mu1", "mu2"):
        v = getattr(a, field)
        assert getattr(b, field) == v and getattr(c, field) == v
        assert np.all(getattr(d, field) == v) and getattr(d, field).shape == (2,)
        assert np.all(getattr(e, field) == v) and getattr(e, field).shape == (2, 1)
    np.testing.assert_array_equal(d.error, np.stack([a.error, a.error]))
    t1 = mf.two_point(name, q, 2 * q, 0.5 * q)
    t2 = mf.two_point(name, [q], np.array(2 * q), [0.5 * q])
    assert isinstance(t1.phi_phi, float) and t2.phi_phi.shape == (1,)
    assert t2.phi_phi[0] == t1.phi_phi and t2.dphi_dphi[0] == t1.dphi_dphi
