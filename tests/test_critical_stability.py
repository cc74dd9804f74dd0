"""Stability of critical points (THEORY §6), complete root search, vectorised behaviour, phase diagrams that agree with
fixed_point at the same start, and the Mehler-series c* path of the phase diagram.

References are computed here by scipy quadrature (``_E``), never by the library's moment table.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special

import meanfield as mf
from meanfield import critical

SQRT2PI = math.sqrt(2.0 * math.pi)

# φ, φ', φ'' of the activations of THEORY §6 (GELU = x Φ(x), SiLU = x σ(x), x·tanh x)
PHI = {
    "gelu": (
        lambda u: u * special.ndtr(u),
        lambda u: special.ndtr(u) + u * np.exp(-u * u / 2) / SQRT2PI,
        lambda u: (2 - u * u) * np.exp(-u * u / 2) / SQRT2PI,
    ),
    "silu": (
        lambda u: u * special.expit(u),
        lambda u: special.expit(u) * (1 + u * (1 - special.expit(u))),
        lambda u: special.expit(u) * (1 - special.expit(u)) * (2 + u * (1 - 2 * special.expit(u))),
    ),
    "x*tanh(x)": (
        lambda u: u * np.tanh(u),
        lambda u: np.tanh(u) + u * (1 - np.tanh(u) ** 2),
        lambda u: 2 * (1 - np.tanh(u) ** 2) * (1 - u * np.tanh(u)),
    ),
}


def _E(f, q):
    """E_q f by scipy.integrate.quad over z ∈ (-∞, ∞) split at 0."""
    s = math.sqrt(q)
    g = lambda z: f(s * z) * math.exp(-z * z / 2) / SQRT2PI  # noqa: E731
    halves = ((-np.inf, 0), (0, np.inf))
    return sum(integrate.quad(g, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0] for a, b in halves)


def _reference(name, q):
    """(σ_w², σ_b², slope g'(q*)) of the critical point with fixed point q (THEORY §1, §6), by scipy quadrature."""
    f, d, d2 = PHI[name]
    mu1 = _E(lambda u: d(u) ** 2, q)
    sw2 = 1 / mu1
    return sw2, q - _E(lambda u: f(u) ** 2, q) / mu1, sw2 * _E(lambda u: d(u) ** 2 + f(u) * d2(u), q)


# ------------------------------------------------------------------------------------------------ unstable branches
def test_gelu_issue_reproduction_is_unstable():
    """Issue 12: critical_sigma_w("gelu", √0.05) was 1.5174 with q* = 0.722 and slope 1.085 (unstable)."""
    with pytest.raises(critical.UnstableCriticalPointError, match="unstable") as info:
        mf.critical_sigma_w("gelu", 0.05**0.5)
    assert isinstance(info.value, mf.NoCriticalPointError)
    (sw, sb, q, slope, stable), = info.value.points
    sw2, sb2, ref_slope = _reference("gelu", q)
    assert sw**2 == pytest.approx(sw2, rel=1e-10) and sb**2 == pytest.approx(0.05, rel=1e-12)
    assert q == pytest.approx(0.72204, rel=1e-4) and not stable
    assert slope == pytest.approx(ref_slope, rel=1e-9) and ref_slope == pytest.approx(1.085, abs=1e-3)
    assert mf.critical_sigma_w("gelu", 0.05**0.5, allow_unstable=True) == pytest.approx(1.5174, abs=1e-4)


@pytest.mark.parametrize(
    "name, q_unstable, q_stable", [("gelu", 2.0, 8.0), ("silu", 8.0, 16.0), ("x*tanh(x)", 2.0, 8.0)]
)
def test_critical_point_stability_matches_scipy_slope(name, q_unstable, q_stable):
    """Along the q* parametrisation the slope g'(q*) crosses 1 (GELU near q* ≈ 3.7, SiLU ≈ 12, x·tanh x ≈ 3.8):
    below it critical_point raises by default, above it returns the point; both agree with scipy quadrature."""
    sw2, sb2, slope = _reference(name, q_unstable)
    assert slope > 1
    with pytest.raises(critical.UnstableCriticalPointError):
        mf.critical_point(name, q_unstable)
    w, b = mf.critical_point(name, q_unstable, allow_unstable=True)
    assert (w**2, b**2) == pytest.approx((sw2, sb2), rel=1e-9)
    sw2, sb2, slope = _reference(name, q_stable)
    assert slope < 1
    w, b = mf.critical_point(name, q_stable)
    assert (w**2, b**2) == pytest.approx((sw2, sb2), rel=1e-9)
    line = mf.critical_line(name, [q_unstable, q_stable])
    np.testing.assert_array_equal(line.stable, [False, True])
    np.testing.assert_allclose(line.slope_q[1], slope, rtol=1e-9)


@pytest.mark.parametrize("name", ["gelu", "silu", "x*tanh(x)"])
def test_critical_sigma_w_returns_the_stable_branch(name):
    """σ_b² = 1: the only critical point is stable; χ_1 = 1 there and q* is reached by iteration from near it."""
    sw = mf.critical_sigma_w(name, 1.0)
    q = mf.q_star(name, sw, 1.0, 20.0)
    sw2, sb2, slope = _reference(name, q)
    assert sw**2 == pytest.approx(sw2, rel=1e-9) and sb2 == pytest.approx(1.0, rel=1e-9) and slope < 1


def test_elu_critical_line_is_stable_everywhere():
    for q in (1e-3, 0.1, 1.0, 10.0, 100.0):
        w, b = mf.critical_point("elu", q)  # no UnstableCriticalPointError
    line = mf.critical_line("elu", np.geomspace(1e-4, 1e4, 33))
    assert line.stable.all() and np.all(line.slope_q < 1)


def test_gelu_without_bias_only_unstable_zero_point():
    """GELU at σ_b = 0: χ_1 = 1 only at q* = 0 with σ_w = 1/φ'(0) = 2, and q grows away from 0 (σ_w² E_q φ² > q)."""
    with pytest.raises(critical.UnstableCriticalPointError):
        mf.critical_sigma_w("gelu", 0.0)
    assert mf.critical_sigma_w("gelu", 0.0, allow_unstable=True) == 2.0
    assert mf.critical_sigma_w("tanh", 0.0) == 1.0  # tanh: q shrinks to 0, stable


# ------------------------------------------------------------------------------------------------ complete root search
def test_xtanh_two_roots_in_one_cell_issue_reproduction():
    """Issue 12: critical_sigma_b("x*tanh(x)", critical_sigma_w("x*tanh(x)", √0.5)) raised NoCriticalPointError."""
    sw = mf.critical_sigma_w("x*tanh(x)", 0.5**0.5)
    assert mf.critical_sigma_b("x*tanh(x)", sw) == pytest.approx(0.5**0.5, rel=1e-9)


def test_xtanh_sigma_w_near_the_minimum_of_the_line():
    """σ_w² = 1/μ_1(q) has a minimum (x·tanh x: σ_w² ≈ 0.9676 near q* ≈ 10): just above it the two roots of
    μ_1(q) = 1/σ_w² are close together; both are found, and the stable one is returned."""
    qs = np.geomspace(5, 20, 301)
    line = mf.critical_line("x*tanh(x)", qs)
    i = int(np.argmin(line.sigma_w))
    sw = line.sigma_w[i] * (1 + 1e-7)
    sb = mf.critical_sigma_b("x*tanh(x)", sw)
    got = critical._points_for_sigma_w(mf.get_activation("x*tanh(x)"), sw)
    assert len(got) == 2 and got[0][2] < qs[i] < got[1][2]
    for _, b, q, slope, stable in got:
        sw2, sb2, ref = _reference("x*tanh(x)", q)
        assert sw2 == pytest.approx(sw**2, rel=1e-9) and b**2 == pytest.approx(sb2, rel=1e-8)
    assert sb == got[0][1]


# ------------------------------------------------------------------------------------------------ homogeneous φ
def test_max_expression_behaves_like_relu():
    w, b = mf.critical_point("Max(0,x)", 3.0)
    assert b == 0.0 and w == pytest.approx(math.sqrt(2), rel=1e-14)
    assert mf.critical_sigma_w("Max(0,x)", 0.0) == pytest.approx(math.sqrt(2), rel=1e-14)
    with pytest.raises(mf.NoCriticalPointError, match="homogeneous"):
        mf.critical_sigma_w("Max(0,x)", 0.1)
    assert mf.critical_sigma_b("Max(0,x)", mf.critical_sigma_w("relu", 0.0)) == 0.0


# ------------------------------------------------------------------------------------------------ vectorised
def test_vectorised_keeps_valid_elements():
    got, status = mf.critical_sigma_w("relu", [0.0, 0.1], return_status=True)
    assert got[0] == pytest.approx(math.sqrt(2), rel=1e-14) and math.isnan(got[1])
    assert list(status) == ["ok", "none"]
    got = mf.critical_sigma_w("gelu", np.array([0.05**0.5, 1.0]))
    assert math.isnan(got[0]) and got[1] == pytest.approx(mf.critical_sigma_w("gelu", 1.0), rel=1e-15)
    with pytest.raises(mf.NoCriticalPointError):
        mf.critical_sigma_w("relu", 0.1)  # a scalar raises
    w, b, st = mf.critical_point("gelu", [1.0, 8.0], return_status=True)
    assert list(st) == ["unstable", "ok"] and math.isnan(w[0]) and math.isnan(b[0]) and w[1] > 0
    b, st = mf.critical_sigma_b("tanh", [0.5, 1.2], return_status=True)
    assert list(st) == ["none", "ok"] and b[1] == pytest.approx(mf.critical_sigma_b("tanh", 1.2), rel=1e-15)


def test_scalar_and_array_agree():
    a = mf.critical_sigma_w("tanh", 0.3)
    assert type(a) is float
    assert mf.critical_sigma_w("tanh", [0.3])[0] == a and mf.critical_sigma_w("tanh", np.array(0.3)) == a


# ------------------------------------------------------------------------------------------------ phase diagram
@pytest.mark.parametrize("name", ["gelu", "silu", "x*tanh(x)"])
@pytest.mark.parametrize("q_init", [0.5, 1.0])
def test_phase_diagram_equals_fixed_point_at_the_same_start(name, q_init):
    """Issue 12: the phase diagram continued from the previous point's q*, so with several fixed points it differed
    from fixed_point(..., q_init) at the same point (GELU, SiLU, x·tanh x at σ_b = 0.05)."""
    sw = np.linspace(1.0, 2.0, 11)
    pd = mf.phase_diagram(name, sw, [0.05], q_init=q_init, correlations=False)
    for i, w in enumerate(sw):
        try:
            q = mf.q_star(name, float(w), 0.05, q_init)
        except mf.NoFixedPointError:
            assert pd.diverges[i, 0]
            continue
        assert pd.q_star[i, 0] == pytest.approx(q, rel=1e-12)


def test_silu_finite_stable_fixed_point_is_not_diverged():
    """Issue 12: SiLU at σ_w = 1.5, σ_b² = 0.2 has q* ≈ 1.00816 (q_map(q) - q changes sign in [1.0, 1.1])."""
    pd = mf.phase_diagram("silu", [1.5], [0.4472136], correlations=False)
    assert not pd.diverges[0, 0]
    q = pd.q_star[0, 0]
    f = PHI["silu"][0]
    assert 2.25 * _E(lambda u: f(u) ** 2, q) + 0.4472136**2 == pytest.approx(q, rel=1e-11)
    assert q == pytest.approx(1.00816, abs=1e-5) and pd.slope_q[0, 0] < 1


def test_phase_diagram_bad_grids():
    with pytest.raises(mf.InvalidParameterError, match="sigma_b_grid"):
        mf.phase_diagram("tanh", [1.0, 1.5], [])
    with pytest.raises(mf.InvalidParameterError, match="sigma_w_grid"):
        mf.phase_diagram("tanh", [], [0.1])
    with pytest.warns(DeprecationWarning, match="q_init"):
        a = mf.phase_diagram("tanh", [1.5], [0.1], q0=2.0, correlations=False)
    assert a.q_star[0, 0] == mf.phase_diagram("tanh", [1.5], [0.1], q_init=2.0, correlations=False).q_star[0, 0]


def test_phase_diagram_series_c_star_against_quadrature():
    """c* by the Mehler series against the two-dimensional quadrature path (the method before): ≤ 1e-10 where
    1 - χ_c ≥ 0.01 (both paths have map errors ~1e-12; c* inherits them divided by 1 - χ_c)."""
    sw = np.sqrt(np.arange(1, 300, 20) * 0.01)
    sb = np.sqrt(np.arange(1, 250, 25) * 0.001)
    a = mf.phase_diagram("tanh", sw, sb)
    assert a.meta["c_star_paths"]["series"] > 30 and a.meta["c_star_paths"]["quadrature"] == 0
    critical.PHASE_C_SERIES = False
    try:
        b = mf.phase_diagram("tanh", sw, sb)
    finally:
        critical.PHASE_C_SERIES = True
    assert b.meta["c_star_paths"]["series"] == 0
    far = b.chi_c < 0.99
    assert far.sum() > 20
    np.testing.assert_allclose(a.c_star[far], b.c_star[far], rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.chi_c, b.chi_c, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(a.c_star[~np.isfinite(b.c_star)], b.c_star[~np.isfinite(b.c_star)])


def test_phase_diagram_c_star_near_criticality_against_gauss_hermite():
    """Near the critical line (tanh σ_w² = 1.21, σ_b² = 0.001, 1 - χ_c ≈ 0.0024) the series' c* solves the c-map to
    rounding by an independent 160 × 160 Gauss–Hermite rule (the quadrature path is off by 9e-10 there)."""
    pd = mf.phase_diagram("tanh", [1.1], [math.sqrt(0.001)])
    q, c = pd.q_star[0, 0], pd.c_star[0, 0]
    z, w = special.roots_hermitenorm(160)
    w = w / SQRT2PI
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    s = math.sqrt(q)
    I = np.sum(np.outer(w, w) * np.tanh(s * Z1) * np.tanh(s * (c * Z1 + math.sqrt(1 - c * c) * Z2)))
    assert (1.21 * I + 0.001) / q - c == pytest.approx(0.0, abs=2e-14)
    assert 0.99 < pd.chi_c[0, 0] < 1


@pytest.mark.parametrize("name, path", [("erf", "quadrature"), ("hard_tanh", "quadrature"), ("atan(x)", "series")])
def test_phase_diagram_c_star_paths_agree_with_fixed_point(name, path):
    """Closed two-point forms (erf) and kinks (hard-tanh) take the quadrature path, smooth expressions the series;
    each agrees with fixed_point at the same point (c* to the map's error over 1 - χ_c) and reports its slope."""
    sw = np.sqrt(np.linspace(1.4, 3.5, 6))
    sb = np.sqrt([0.01, 0.2])
    pd = mf.phase_diagram(name, sw, sb)
    assert pd.meta["c_star_paths"][path] > 0
    for i, w in enumerate(sw):
        for j, b in enumerate(sb):
            fp = mf.fixed_point(name, float(w), float(b))
            assert pd.q_star[i, j] == pytest.approx(fp.q_star, rel=1e-12)
            assert pd.slope_q[i, j] == pytest.approx(fp.slope_q, rel=1e-9)
            assert pd.c_star[i, j] == pytest.approx(fp.c_star, abs=1e-10 / (1 - min(fp.chi_c, 0.999)))
            assert pd.chi_c[i, j] == pytest.approx(fp.chi_c, abs=1e-9)
    assert not pd.no_fixed_point.any()


def _points_or_none(find, act, x):
    try:
        return find(act, x)
    except mf.NoCriticalPointError:
        return []


@pytest.mark.parametrize("name", ["gelu", "silu", "x*tanh(x)", "elu", "tanh", "sigmoid"])
def test_line_scan_finds_the_same_roots_on_a_four_times_finer_grid(name, monkeypatch):
    """The root search is complete up to two extrema inside one scan cell (a factor 2^(1/16) in q): on a grid four times
    finer (2^(1/64)) it finds the same critical points, for σ_b and σ_w alike (scan up to q = 2^20, the moment
    table's range, to keep the test fast)."""
    act = mf.get_activation(name)
    sbs = [0.0, 0.05, 0.3, 0.7, 1.0, 3.0]
    sws = [0.98, 1.0, 1.3, 1.41, 1.45, 2.0, 4.5, 6.0]
    monkeypatch.setattr(critical, "Q_SCAN_HI", 2.0**20)

    def scan():
        act._state.pop("critical_line_samples", None)
        got = [_points_or_none(critical._points_for_sigma_b, act, b) for b in sbs]
        return got + [_points_or_none(critical._points_for_sigma_w, act, w) for w in sws]

    try:
        coarse = scan()
        monkeypatch.setattr(critical, "SCAN_PER_OCTAVE", 64)
        fine = scan()
    finally:
        act._state.pop("critical_line_samples", None)
    assert sum(len(c) for c in coarse) >= 3
    for c, f in zip(coarse, fine):
        assert len(c) == len(f)
        for pc, pf in zip(c, f):
            assert pc[2] == pytest.approx(pf[2], rel=1e-12, abs=1e-300) and pc[4] == pf[4]


@pytest.mark.slow
def test_sin_critical_point_from_closed_forms():
    """sin: E_q sin² = (1 - e^{-2q})/2, μ_1 = E_q cos² = (1 + e^{-2q})/2 (closed forms), so on the critical line
    σ_w² = 2/(1 + e^{-2q*}) and σ_b² = q* - tanh(q*). The scan once bisected the rounding-level flips of μ_1's
    derivative beyond q ≈ 15 as extrema (minutes for one call)."""
    sb = 2**0.5
    sw = mf.critical_sigma_w("sin(x)", sb)
    e = 2.0 / sw**2 - 1.0  # e^{-2q*}
    q = -0.5 * math.log(e)
    assert q - math.tanh(q) == pytest.approx(sb**2, rel=1e-9)
    sw32, sb32 = mf.critical_point("sin(x)", 32.0)
    assert sw32**2 == pytest.approx(2.0 / (1.0 + math.exp(-64.0)), rel=1e-12)
    assert sb32**2 == pytest.approx(32.0 - math.tanh(32.0), rel=1e-12)


def test_infinite_moments_on_the_critical_line_are_a_numerical_error():
    """E[exp(2u²)] diverges for q ≥ 1/4: no critical point can be claimed there, and no warning escapes."""
    with pytest.raises(mf.NumericalError, match="not finite"):
        mf.critical_point("exp(x**2)", 0.3)
