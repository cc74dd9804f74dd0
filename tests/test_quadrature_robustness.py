"""Gaussian expectations that know when they fail (issue 12 item 3): overflow, tails that do not decay, oscillation,
moments that do not exist; the error estimate bounds the true error against closed forms.

Closed forms (u ~ N(0, q); E cos(k u) = e^{-k²q/2}, E e^{t u} = e^{t²q/2}, E u² e^{t u} = (q + t²q²) e^{t²q/2},
E e^{s u²} = (1 - 2 s q)^{-1/2} for 2 s q < 1, infinite beyond):

* sin: E sin² = (1 - e^{-2q})/2 = -expm1(-2q)/2, μ_1 = E cos² = (1 + e^{-2q})/2, μ_2 = E cos⁴ = 3/8 + e^{-2q}/2 + e^{-8q}/8;
* cos: E cos² = (1 + e^{-2q})/2, μ_1 = E sin² = -expm1(-2q)/2;
* exp: E e^{2u} = μ_1 = e^{2q}, μ_2 = E e^{4u} = e^{8q};
* x·exp(x/2): E φ² = E u² e^{u} = (q + q²) e^{q/2};
* exp(x²/8): E φ² = E e^{u²/4} = (1 - q/2)^{-1/2} (μ_2 ∝ E u⁴ e^{u²/2} is infinite from q = 1 on);  exp(x²): E φ² = (1 - 4q)^{-1/2} (q < 1/4), E φ'⁴ finite only for q < 1/8.
"""

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.gaussian import RTOL


def _sin(q):
    e2 = math.exp(-2 * q)
    return -math.expm1(-2 * q) / 2, (1 + e2) / 2, 3 / 8 + e2 / 2 + math.exp(-8 * q) / 8


def _cos(q):
    e2 = math.exp(-2 * q)
    return (1 + e2) / 2, -math.expm1(-2 * q) / 2, None


def _exp(q):
    return math.exp(2 * q), math.exp(2 * q), math.exp(8 * q)


CLOSED = {
    "sin(x)": (_sin, [2.0**-20, 2.0**-3, 0.5, 1.0, 8.0, 64.0, 1000.0, 1e4]),
    "cos(x)": (_cos, [2.0**-20, 0.5, 1.0, 64.0, 1000.0]),
    "exp(x)": (_exp, [2.0**-20, 0.5, 1.0, 2.0, 4.0]),  # (at q = 8, μ_2 = e^64 is 1.1e-14 off by rounding, estimate 8e-15)
    "x*exp(x/2)": (lambda q: ((q + q * q) * math.exp(q / 2), None, None), [2.0**-10, 1.0, 10.0, 100.0]),
    "exp(x**2/8)": (lambda q: ((1 - q / 2) ** -0.5, None, None), [2.0**-10, 0.25, 0.5, 0.75]),  # μ_2 = ∞ at q ≥ 1
}
RANDOM_Q = {name: sorted(10.0 ** np.random.default_rng(12).uniform(-6, math.log10(qs[-1]), 4)) for name, (_, qs) in
            CLOSED.items()}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_error_estimate_bounds_the_true_error_against_closed_forms(name):
    exact_fn, qs = CLOSED[name]
    for q in list(qs) + list(RANDOM_Q[name]):
        m = mf.gaussian_moments(name, q)
        for j, (got, exact) in enumerate(zip((m.phi2, m.mu1, m.mu2), exact_fn(q))):
            if exact is None:
                continue
            err = m.error[(0, 2, 3)[j]]
            assert abs(got - exact) <= err, (name, q, j, got, exact, err)
            assert err <= RTOL[(0, 2, 3)[j]] * abs(exact), (name, q, j, err)  # the documented accuracy


def test_slope_dphi2_dq_within_its_estimate():
    """dE φ²/dq of sin: e^{-2q}; of exp: 2 e^{2q}."""
    for q in (0.25, 1.0, 3.0, 64.0):
        m = mf.gaussian_moments("sin(x)", q)
        assert abs(m.dphi2_dq - math.exp(-2 * q)) <= m.error[1]
    for q in (0.25, 1.0, 3.0):
        m = mf.gaussian_moments("exp(x)", q)
        assert abs(m.dphi2_dq - 2 * math.exp(2 * q)) <= m.error[1] <= 1e-7 * 2 * math.exp(2 * q)


def test_oscillation_resolved_where_it_was_wrong():
    """Issue 12: sin at q = 64 was 1.3e-6 off, at q = 1000 7e-3 off (exact -expm1(-2q)/2)."""
    for q in (64.0, 1000.0):
        got = mf.gaussian_moments("sin(x)", q).phi2
        assert got == pytest.approx(-math.expm1(-2 * q) / 2, rel=1e-13, abs=0)


def test_exp_at_q_10_was_off_by_four_tenths_of_a_percent():
    m = mf.gaussian_moments("exp(x)", 10.0)
    assert m.phi2 == pytest.approx(math.exp(20.0), rel=1e-13)
    assert m.error[0] <= 1e-10 * math.exp(20.0)


@pytest.mark.parametrize("q", [0.25, 0.3, 0.5, 1.0, 3.13])
def test_divergent_moment_raises(q):
    """E exp(x²)² = E e^{2u²} diverges for q ≥ 1/4: no number, an error naming the moment and the cause."""
    with pytest.raises(mf.NumericalError, match=r"E_q φ².*exp\(x\*\*2\).*(diverges|overflow|not finite)"):
        mf.gaussian_moments("exp(x**2)", q)


def test_moment_that_diverges_alone_is_named():
    """At q = 0.2, E φ² = 1/√0.2 is finite but μ_2 = E (2u e^{u²})⁴ diverges (8q ≥ 1)."""
    with pytest.raises(mf.NumericalError, match=r"μ_2.*decayed"):
        mf.gaussian_moments("exp(x**2)", 0.2)
    m = mf.gaussian_moments("exp(x**2)", 0.1)
    assert abs(m.phi2 - 0.6**-0.5) <= m.error[0] <= 1e-10 * 0.6**-0.5


@pytest.mark.parametrize("q", [400.0, 1000.0, 1e4])
def test_overflow_raises(q):
    with pytest.raises(mf.NumericalError, match="exp\\(x\\)"):
        mf.gaussian_moments("exp(x)", q)


def test_unresolvable_oscillation_raises():
    """sin(50 x) at q = 1e4 has ~1.4e5 periods within |u| ≤ 9√q: more than the rule's 16384 panels resolve."""
    with pytest.raises(mf.NumericalError, match="resolve"):
        mf.gaussian_moments("sin(50*x)", 1e4)


def test_singularity_between_probe_points_raises():
    """1/(x - 0.3001) passes the domain probe (not on its grid) but E φ² = ∞: the refinement runs out."""
    with pytest.raises(mf.NumericalError, match="resolve"):
        mf.gaussian_moments("1/(x - 0.3001)", 1.0)


@pytest.mark.parametrize(
    "expr, match",
    [("sqrt(x)", "undefined at x = -"), ("log(x)", "undefined"), ("1/x", "singular at x = 0"),
     ("log(abs(x))", "undefined at x = 0"), ("abs(x)**0.5", "φ' is singular at x = 0"), ("x**(1/3)", "not a real")],
)
def test_activation_undefined_on_the_real_line_is_rejected(expr, match):
    with pytest.raises(mf.InvalidParameterError, match=match):
        mf.get_activation(expr)


def test_table_never_interpolates_what_the_quadrature_flags():
    """exp(x²): E φ² diverges at q ≥ 1/4, μ_2 at q ≥ 1/8. The table holds numbers only below; above, moments() asks the
    checked direct rule, which gives NaN where the moment is infinite."""
    act = mf.get_activation("exp(x**2)")
    k, tab = act.kernels, act.table
    lo, hi = act.moment_range(0)
    assert lo == 2.0**k.TABLE_LOG2_LO and hi <= 0.25
    assert act.moment_range(3)[1] <= 0.125
    out = np.empty(k.N_MOMENTS)
    for q in (0.25, 0.3, 1.0, 3.13, 1e3, 1e7):
        k.moments(q, tab, out)
        assert np.isnan(out[0]), q
    for q in (1e-3, 0.05, 0.1):
        k.moments(q, tab, out)
        assert out[0] == pytest.approx((1 - 4 * q) ** -0.5, rel=1e-10)
    assert np.all(act.table_error[np.isfinite(act.table_error)] <= 1e-7)


def test_table_of_exp_stops_where_float64_or_accuracy_does():
    act = mf.get_activation("exp(x)")
    k, tab = act.kernels, act.table
    out = np.empty(k.N_MOMENTS)
    k.moments(1e3, tab, out)  # e^{2000}: beyond float64
    assert np.isnan(out[0])
    k.moments(2.0**25, tab, out)  # beyond the table: the checked direct rule, NaN as well
    assert np.isnan(out[0])
    k.moments(1.5, tab, out)
    assert out[0] == pytest.approx(math.exp(3.0), rel=1e-10)
    # on an octave the table cannot interpolate to 1e-10 (e^{2q} from e^16 to e^32) the direct rule answers
    lo, hi = act.moment_range(0)
    assert hi <= 16.0
    k.moments(12.0, tab, out)
    assert out[0] == pytest.approx(math.exp(24.0), rel=1e-10)


def test_table_of_oscillatory_activation_is_valid_and_right():
    act = mf.get_activation("sin(x)")
    k, tab = act.kernels, act.table
    assert act.table_valid.all()
    out = np.empty(k.N_MOMENTS)
    for q in 2.0 ** np.random.default_rng(3).uniform(-30, 19, 20):
        k.moments(q, tab, out)
        assert out[0] == pytest.approx(-math.expm1(-2 * q) / 2, rel=1e-12)
        assert out[2] == pytest.approx((1 + math.exp(-2 * q)) / 2, rel=1e-12)


def test_named_tables_are_valid_everywhere():
    for name in ("tanh", "gelu", "softplus"):
        assert mf.get_activation(name).table_valid.all()


def test_two_point_flags_what_it_does_not_resolve():
    with pytest.raises(mf.NumericalError, match="two-point"):
        mf.two_point("sin(x)", 64.0, 64.0, 10.0)
    with pytest.raises(mf.NumericalError, match="two-point"):  # its truncation at |z| ≤ 9 misses exp's tail at q = 10
        mf.two_point("exp(x)", 10.0, 10.0, 3.0)
    with pytest.raises(mf.NumericalError, match="E_q φ²"):  # the one-point moments must exist first
        mf.two_point("exp(x**2)", 0.3, 0.1, 0.0)


def test_two_point_estimate_bounds_error_against_closed_forms():
    """E[sin u1 sin u2] = e^{-(q11+q22)/2} sinh(q12); E[e^{u1} e^{u2}] = e^{(q11+q22)/2 + q12}."""
    for q11, q22, q12 in [(0.5, 1.0, 0.3), (2.0, 1.0, -1.2), (2.0, 2.0, 1.0)]:
        tp = mf.two_point("sin(x)", q11, q22, q12)
        exact = math.exp(-(q11 + q22) / 2) * math.sinh(q12)
        assert abs(tp.phi_phi - exact) <= tp.error[0] <= 1e-10
    for q11, q22, q12 in [(0.5, 0.25, 0.3), (0.125, 0.25, -0.1), (0.5, 0.5, 0.5)]:  # (tails within |z| ≤ 9)
        tp = mf.two_point("exp(x)", q11, q22, q12)
        exact = math.exp((q11 + q22) / 2 + q12)
        assert abs(tp.phi_phi - exact) <= tp.error[0] <= 1e-10 * exact


def test_expect_checks_like_gaussian_moments():
    est = mf.expect(lambda u: np.exp(2 * u), 10.0)
    assert abs(est.value - math.exp(20.0)) <= est.error <= 1e-10 * math.exp(20.0)
    est = mf.expect(lambda u: np.sin(u) ** 2, 1000.0)
    assert abs(est.value - 0.5) <= est.error
    with pytest.raises(mf.NumericalError, match="diverges|not finite"):
        mf.expect(lambda u: np.exp(u * u), 0.5)
    with pytest.raises(mf.NumericalError, match="not finite at u"):
        mf.expect(lambda u: np.sqrt(u), 1.0)
