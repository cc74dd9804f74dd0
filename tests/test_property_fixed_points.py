"""Property tests of the fixed-point solvers against references written here (THEORY §1, §6).

Strategies mix round values (powers of 2 and 10, integers, simple fractions, exact outputs of ``critical_point``),
boundaries (σ_b = 0, tiny and huge σ, q_init near 1e-8 and 1e4) and random points. References: E_q[φ²] by
scipy.integrate.quad of φ(√q z)² against the standard normal density (split at φ's kinks); the two-point
E[φ(u1)φ(u2)] by a composite Gauss–Legendre product rule on [-12, 12]² written here (smooth φ only).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, special

import meanfield as mf

SQ2 = math.sqrt(2.0)
PHI = {  # φ written out for the references, with its kinks
    "tanh": (np.tanh, ()),
    "relu": (lambda x: np.maximum(x, 0.0), (0.0,)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), (0.0,)),
    "erf": (special.erf, ()),
    "linear": (lambda x: x, ()),
    "hard_tanh": (lambda x: np.clip(x, -1.0, 1.0), (-1.0, 1.0)),
    "sigmoid": (special.expit, ()),
    "softplus": (lambda x: np.logaddexp(0.0, x), ()),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))), (0.0,)),
    "selu": (
        lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0))),
        (0.0,),
    ),
    "gelu": (lambda x: 0.5 * x * (1.0 + special.erf(x / SQ2)), ()),
    "silu": (lambda x: x * special.expit(x), ()),
    "x*tanh(x)": (lambda x: x * np.tanh(x), ()),
    "atan(x)": (np.arctan, ()),
    "x*exp(-x**2/4)": (lambda x: x * np.exp(-x * x / 4.0), ()),
}
NAMED = list(mf.available_activations())
EXPRESSIONS = ["x*tanh(x)", "atan(x)", "x*exp(-x**2/4)"]


def ref_phi2(name, q):
    f, kinks = PHI[name]
    s = math.sqrt(q)
    # |z| ≤ 12 holds all but 4e-33 of the Gaussian mass (φ² grows at most like u² for these φ); graded cuts on φ's
    # own scale 1/√q help the adaptive rule at large q
    grade = [g / s for g in (0.5, 2.0, 8.0) if g / s < 4.0]  # (not in the far tail: relative 1e-13 of ~0 is noise)
    cuts = sorted({-12.0, 12.0, 0.0, *grade, *[-g for g in grade], *[k / s for k in kinks if abs(k / s) < 12.0]})

    def g(z):
        return float(f(s * z)) ** 2 * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    pieces = list(zip(cuts[:-1], cuts[1:]))
    rough = sum(integrate.quad(g, a, b, epsrel=1e-6, limit=100)[0] for a, b in pieces)
    tol = 1e-16 * abs(rough) + 1e-300  # absolute floor: pieces where φ² vanishes (GELU's left tail) have no relative
    return sum(integrate.quad(g, a, b, epsabs=tol, epsrel=1e-13, limit=400)[0] for a, b in pieces)


def ref_F(name, q, sw, sb):
    return sw * sw * ref_phi2(name, q) + sb * sb - q


_X, _W = np.polynomial.legendre.leggauss(12)
_EDGES = np.linspace(-12.0, 12.0, 161)
_Z = (0.5 * (_EDGES[1:] - _EDGES[:-1])[:, None] * _X + 0.5 * (_EDGES[1:] + _EDGES[:-1])[:, None]).ravel()
_WZ = ((0.5 * (_EDGES[1:] - _EDGES[:-1]))[:, None] * _W).ravel() * np.exp(-0.5 * _Z**2) / math.sqrt(2 * math.pi)


def ref_c_map(name, c, q, sw, sb):
    """[σ_w² E φ(u1)φ(u2) + σ_b²]/q with u1 = √q z1, u2 = √q(c z1 + √(1-c²) z2): product Gauss–Legendre."""
    f = PHI[name][0]
    s = math.sqrt(q)
    f1 = f(s * _Z)
    inner = (f(s * (c * _Z[:, None] + math.sqrt(1.0 - c * c) * _Z[None, :])) * _WZ[None, :]).sum(axis=1)
    return (sw * sw * float(np.dot(_WZ * f1, inner)) + sb * sb) / q


ROUND_SW = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 10.0, SQ2, 1 / 3, 0.75, 1.25]
ROUND_SB = [0.0, 1e-8, 1e-4, 0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 10.0, 1 / 3]
ROUND_Q = [1e-8, 1e-4, 0.01, 0.25, 1.0, 2.0, 16.0, 100.0, 1e4]
sigma_w = st.one_of(st.sampled_from(ROUND_SW), st.floats(0.05, 12.0))
sigma_b = st.one_of(st.sampled_from(ROUND_SB), st.floats(0.0, 5.0))
q_init = st.one_of(st.sampled_from(ROUND_Q), st.floats(1e-8, 1e4))

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def check_root(name, q, slope, sw, sb, error):
    """q* against the reference: a sign change across q*(1 ± ε), ε = 10× the proven accuracy (at least 1e-10), where
    the reference resolves it, else the residual."""
    assert error <= mf.propagation.Q_TOL
    eps = max(10.0 * error, 1e-10)
    resolvable = abs(1.0 - slope) * eps * q > 1e-12 * (q + sw * sw + sb * sb)
    if resolvable:
        assert ref_F(name, q * (1 - eps), sw, sb) * ref_F(name, q * (1 + eps), sw, sb) < 0.0, (name, q, sw, sb)
    else:
        assert abs(ref_F(name, q, sw, sb)) <= 1e-11 * (q + sw * sw + sb * sb)


@pytest.mark.parametrize("name", NAMED + EXPRESSIONS)
@settings(max_examples=6, **SETTINGS)
@given(sw=sigma_w, sb=sigma_b, qi=q_init)
def test_q_star_is_a_fixed_point_of_the_reference_map(name, sw, sb, qi):
    try:
        q = mf.q_star(name, sw, sb, q_init=qi)
    except mf.NoFixedPointError:
        # q grows: then q_map(q) > q at q_init by the reference too (or it is zero to rounding: linear growth)
        assert ref_F(name, qi, sw, sb) > -1e-12 * (qi + sw * sw + sb * sb)
        return
    if q == 0.0:
        # reported as 0 below 1e-40 (q* ≥ σ_b², so σ_b² is below that too), and small q shrink by the reference
        assert sb * sb < 1e-40 and ref_F(name, 1e-6, sw, sb) < 0.0
        return
    # its slope and stability, as fixed_points lists it (q_star is one of its stable points)
    fps = mf.fixed_points(name, sw, sb)
    if fps.every_q_fixed:
        return
    (p,) = [p for p in fps if p.q == pytest.approx(q, rel=1e-9)]
    assert p.stable
    check_root(name, q, p.slope, sw, sb, p.error)
    # stability from a finite-difference slope of the reference
    h = 1e-4
    fd = (ref_F(name, q * (1 + h), sw, sb) - ref_F(name, q * (1 - h), sw, sb)) / (2 * h * q) + 1.0
    assert p.slope == pytest.approx(fd, abs=1e-5 + 1e-4 * abs(fd))
    if abs(abs(fd) - 1.0) > 1e-4:
        assert abs(fd) < 1.0


@pytest.mark.parametrize("name", ["tanh", "erf", "hard_tanh", "elu", "selu", "gelu", "silu"])
@settings(max_examples=8, **SETTINGS)
@given(k=st.integers(-6, 6))
def test_critical_points_are_fixed_points(name, k):
    """Exact outputs of critical_point(φ, 2^k) as inputs: q_star from there returns 2^k."""
    q = 2.0**k
    try:
        sw, sb = mf.critical_point(name, q)
    except mf.MeanFieldError:
        assume(False)
    try:
        got = mf.q_star(name, sw, sb, q_init=q)
    except mf.ConvergenceError:  # ill-conditioned (hard_tanh at small q: φ linear up to e^{-1/(2q)}, g' = 1 to rounding)
        (p,) = [p for p in mf.fixed_points(name, sw, sb) if abs(p.q - q) <= p.error * p.q]
        assert p.error > mf.propagation.Q_TOL and abs(p.slope - 1.0) < 1e-6
        return
    assert got == pytest.approx(q, rel=10 * mf.propagation.Q_TOL)
    fp = mf.fixed_point(name, sw, sb, q_init=q)
    check_root(name, got, fp.slope_q, sw, sb, fp.q_star_error)


# smooth φ with a chaotic phase at a finite stable q* ≤ 40 (GELU, SiLU, softplus: none, they grow linearly; sigmoid:
# only beyond q* ≈ 40), σ_w ranges
CHAOTIC = {"tanh": (1.2, 3.0), "erf": (1.0, 3.0), "atan(x)": (1.2, 3.0),
           "x*exp(-x**2/4)": (1.5, 4.0)}


@pytest.mark.parametrize("name", sorted(CHAOTIC))
@settings(max_examples=6, **SETTINGS)
@given(data=st.data(), sb=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0]))
def test_c_star_is_a_fixed_point_of_the_reference_c_map(name, data, sb):
    lo, hi = CHAOTIC[name]
    sw = data.draw(st.one_of(st.sampled_from([lo, hi, 0.5 * (lo + hi)]), st.floats(lo, hi)))
    try:
        fp = mf.fixed_point(name, sw, sb)
    except mf.NoFixedPointError:
        assume(False)
    assume(fp.phase == "chaotic" and fp.q_star <= 40.0 and 0.0 < fp.c_star < 1.0)
    c, q = fp.c_star, fp.q_star
    eps = max(10 * fp.c_star_error, 1e-7)  # the proven accuracy of c* (typically 1e-14 … 1e-11)
    lo, hi = ref_c_map(name, c - eps, q, sw, sb) - (c - eps), ref_c_map(name, c + eps, q, sw, sb) - (c + eps)
    assert lo > 0.0 > hi, (name, sw, sb, c)


@pytest.mark.parametrize("name", NAMED + EXPRESSIONS)
@settings(max_examples=3, **SETTINGS)
@given(sw=st.sampled_from([0.5, 1.0, 1.5, 2.0]), sb=st.sampled_from([0.0, 0.1, 0.5]))
def test_fixed_points_are_roots_of_the_reference_with_its_stability(name, sw, sb):
    fps = mf.fixed_points(name, sw, sb)
    for p in fps:
        if 1e-6 < p.q < 1e6:
            check_root(name, p.q, p.slope, sw, sb, p.error)
    # q_star from 1 is one of them (stable), or q diverges / goes to 0, as fixed_points says about that side
    try:
        q = mf.q_star(name, sw, sb)
    except mf.NoFixedPointError:
        assert fps.diverges
        return
    if q == 0.0:
        assert fps.zero_is_fixed
    elif not fps.every_q_fixed:
        assert any(p.stable and p.q == pytest.approx(q, rel=1e-9) for p in fps)
