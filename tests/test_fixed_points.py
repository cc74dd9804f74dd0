"""Fixed points that prove themselves (THEORY §1, §6): reproductions of wrong answers, every fixed point with its
stability, the q_init keyword, input types.

References are written here: E_q[φ²] by scipy.integrate.quad of φ(√q z)² against the standard normal density
(φ written out below, not taken from the library), and outputs of other API calls (critical_point's q*).
"""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special

import meanfield as mf

PHI = {  # φ written out for the references (THEORY §1, §6)
    "tanh": np.tanh,
    "silu": lambda x: x * special.expit(x),
    "gelu": lambda x: 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0))),
    "x*tanh(x)": lambda x: x * np.tanh(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "sigmoid": special.expit,
    "erf": special.erf,
}


def ref_phi2(name, q):
    """E_q[φ²] = ∫ φ(√q z)² e^{-z²/2}/√(2π) dz by adaptive quadrature (split at 0, where ELU has its kink)."""
    f = PHI[name]
    s = math.sqrt(q)

    def g(z):
        return float(f(s * z)) ** 2 * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    lo = integrate.quad(g, -40.0, 0.0, epsabs=0.0, epsrel=1e-13, limit=400)[0]
    hi = integrate.quad(g, 0.0, 40.0, epsabs=0.0, epsrel=1e-13, limit=400)[0]
    return lo + hi


def ref_F(name, q, sw, sb):
    return sw * sw * ref_phi2(name, q) + sb * sb - q


# ---------------------------------------------------------------------------------------------------- reproductions
def test_issue_tanh_critical_point_at_q4_is_found_not_the_bracket_end():
    """Issue 12: q* = 4 sits on a bracket node q0·4^k; the old solver returned 16 'converged' with 0 iterations."""
    sw, sb = mf.critical_point("tanh", 4.0)
    fp = mf.fixed_point("tanh", sw, sb)
    assert fp.q_star == pytest.approx(4.0, rel=1e-9)
    assert fp.converged and fp.iterations > 0
    assert fp.q_star_error <= mf.propagation.Q_TOL and fp.residual <= 1e-12
    assert abs(ref_F("tanh", fp.q_star, sw, sb)) <= 1e-10  # independent: scipy quad
    assert fp.stable and fp.slope_q < 1.0


@pytest.mark.parametrize("name, q", [("tanh", 4.0), ("tanh", 64.0), ("selu", 4.0), ("selu", 16.0), ("elu", 64.0)])
def test_issue_roots_on_bracket_nodes(name, q):
    sw, sb = mf.critical_point(name, q)
    assert mf.q_star(name, sw, sb) == pytest.approx(q, rel=1e-9)
    assert mf.q_star(name, sw, sb, q_init=q) == pytest.approx(q, rel=1e-9)  # start exactly at the root


@pytest.mark.parametrize("name", mf.available_activations())
def test_q_star_of_critical_points_over_powers_of_two(name):
    """q_star(*critical_point(φ, q)) = q for q = 2^-6 … 2^8 wherever that critical point exists and is stable."""
    act = mf.get_activation(name)
    checked = 0
    for k in range(-6, 9):
        q = 2.0**k
        try:
            sw, sb = mf.critical_point(name, q)
        except mf.MeanFieldError:  # none (σ_b² < 0), or on an unstable branch
            continue
        if act.is_homogeneous:  # marginal: every q is fixed, q_init is returned
            assert mf.q_star(name, sw, sb, q_init=q) == pytest.approx(q, rel=1e-12)
            continue
        fps = mf.fixed_points(name, sw, sb)
        hit = [p for p in fps if abs(p.q - q) <= max(1e-8, p.error) * q]
        assert len(hit) == 1, (name, q, list(fps))
        if hit[0].error > mf.propagation.Q_TOL:  # ill-conditioned (hard_tanh at small q): q_star refuses it
            with pytest.raises(mf.ConvergenceError, match="independent check"):
                mf.q_star(name, sw, sb, q_init=q)
        elif hit[0].stable:
            assert mf.q_star(name, sw, sb, q_init=q) == pytest.approx(q, rel=1e-9)
            # from q_init = 1 the first root in the direction q moves: q itself unless another fixed point lies between
            between = [p for p in fps if min(1.0, q) < p.q < max(1.0, q) and abs(p.q - q) > 1e-8 * q]
            if not between:
                assert mf.q_star(name, sw, sb) == pytest.approx(q, rel=1e-9)
        checked += 1
    assert checked > 0 or act.is_homogeneous or name in ("softplus", "sigmoid")  # no σ_b² ≥ 0 on these q


def test_issue_silu_false_no_fixed_point():
    fp = mf.fixed_point("silu", 1.5, 0.4472136)
    assert fp.q_star == pytest.approx(1.00816, rel=1e-5)
    assert ref_F("silu", 1.0, 1.5, 0.4472136) > 0.0 > ref_F("silu", 1.1, 1.5, 0.4472136)  # the sign change (issue)
    assert abs(ref_F("silu", fp.q_star, 1.5, 0.4472136)) <= 1e-11
    assert fp.stable


def test_issue_gelu_false_no_fixed_point_from_small_start():
    sb = math.sqrt(0.05)
    q = mf.q_star("gelu", 1.53, sb, q_init=0.01)
    assert abs(ref_F("gelu", q, 1.53, sb)) <= 1e-11 * max(q, 1.0)
    # the sign change that proves it, by the reference
    assert ref_F("gelu", q * (1 - 1e-6), 1.53, sb) > 0.0 > ref_F("gelu", q * (1 + 1e-6), 1.53, sb)


def test_issue_spurious_huge_fixed_point_is_linear_growth():
    """x·tanh x with σ_w = 1: q_map(q) - q → σ_b² - E[u² sech² u] > 0, below rounding at large q: no fixed point."""
    with pytest.raises(mf.NoFixedPointError, match="grows without bound"):
        mf.q_star("x*tanh(x)", 1.0, 0.5, q_init=100.0)
    assert ref_F("x*tanh(x)", 1e4, 1.0, 0.5) > 0.2  # independent: the map still moves q up by ≈ σ_b² at q = 1e4


@pytest.mark.parametrize("expr", ["exp(x)", "exp(x**2)"])
def test_issue_overflow_is_an_error_not_a_fixed_point(expr):
    with pytest.raises((mf.NoFixedPointError, mf.NumericalError), match="not finite"):
        mf.fixed_point(expr, 1.0, 0.1)
    q, why = mf.q_star(expr, np.array([1.0, 0.5]), 0.1, return_status=True)  # arrays: NaN and the reason
    assert np.isnan(q[0]) and why[0] in ("none", "nonfinite")


def test_vectorised_calls_keep_the_valid_points():
    """One array convention everywhere (as the critical functions): NaN where a scalar call would raise, reasons on
    request. ReLU: q* = σ_b²/(1 - σ_w²/2) for σ_w² < 2 (THEORY §1), none for σ_w² ≥ 2 with σ_b > 0."""
    sw = np.array([1.0, 2.0, 1.2])
    q, why = mf.q_star("relu", sw, 0.1, return_status=True)
    assert q[0] == pytest.approx(0.01 / 0.5, rel=1e-12) and q[2] == pytest.approx(0.01 / (1 - 0.72), rel=1e-12)
    assert np.isnan(q[1]) and list(why) == ["ok", "none", "ok"]
    chi = mf.chi1("relu", sw, 0.1)
    assert chi[0] == pytest.approx(0.5) and np.isnan(chi[1])
    c = mf.c_star("relu", sw, 0.1)
    assert c[0] == 1.0 and np.isnan(c[1])
    with pytest.raises(mf.NoFixedPointError):
        mf.q_star("relu", 2.0, 0.1)


def test_no_finite_fixed_point_messages_speak_of_variance_correctly():
    with pytest.raises(mf.NoFixedPointError) as info:
        mf.q_star("relu", 2.0, 0.5)
    assert "standard deviation" not in str(info.value) and "q_init" in str(info.value)


# ------------------------------------------------------------------------------------------------ what was proven
@pytest.mark.parametrize("name, sw, sb", [("tanh", 1.5, 0.2), ("erf", 0.9, 0.3), ("gelu", 1.2, 0.1), ("softplus", 1.1, 0.4)])
def test_fixed_point_reports_what_happened(name, sw, sb):
    fp = mf.fixed_point(name, sw, sb)
    assert fp.converged and fp.iterations >= 1 and fp.activation == name
    assert 0.0 <= fp.q_star_error <= mf.propagation.Q_TOL
    assert fp.residual <= 1e-13 * max(1.0, fp.q_star)
    # slope of the length map against a central difference of the reference
    h = 1e-4
    fd = (ref_F(name, fp.q_star * (1 + h), sw, sb) - ref_F(name, fp.q_star * (1 - h), sw, sb)) / (2 * h * fp.q_star) + 1
    assert fp.slope_q == pytest.approx(fd, abs=1e-6)
    assert fp.stable == (abs(fd) < 1.0)


def test_c_star_is_proven():
    fp = mf.fixed_point("tanh", math.sqrt(2.5), math.sqrt(0.05))  # THEORY §1: c* = 0.446804
    assert fp.c_star == pytest.approx(0.446804, rel=1e-5)
    assert 0.0 < fp.c_star_error <= mf.propagation.C_TOL
    fp = mf.fixed_point("elu", 1.4, 0.1)  # kinked: the quadrature path, proven by the 16-node rule
    assert 0.0 < fp.c_star < 1.0 and 0.0 < fp.c_star_error <= mf.propagation.C_TOL
    assert mf.fixed_point("tanh", 1.0, 0.2).c_star_error == 0.0  # ordered: c* = 1 is always fixed


def test_unproven_root_raises(monkeypatch):
    """A root that fails its independent check raises ConvergenceError (here: an impossible tolerance)."""
    monkeypatch.setattr(mf.propagation, "Q_TOL", 0.0)
    with pytest.raises(mf.ConvergenceError, match="independent check"):
        mf.q_star("tanh", np.float64(1.5), 0.2)
    q, why = mf.q_star("tanh", np.array([1.5]), 0.2, return_status=True)  # an array: NaN and the reason
    assert np.isnan(q[0]) and why[0] == "unproven"


# ---------------------------------------------------------------------------------------------- every fixed point
def test_fixed_points_gelu_stable_and_unstable():
    """THEORY §6: GELU, σ_b² = 0.05, σ_w = 1.5174: a stable q* = 0.1864 and an unstable one at 0.72204 (g' = 1.085)."""
    fps = mf.fixed_points("gelu", 1.5174, math.sqrt(0.05))
    assert len(fps) == 2 and fps.diverges and not fps.zero_is_fixed
    lo, hi = fps
    assert lo.q == pytest.approx(0.1864, rel=1e-3) and lo.stable and lo.slope < 1
    assert hi.q == pytest.approx(0.72204, rel=1e-4) and not hi.stable and hi.slope == pytest.approx(1.085, abs=1e-3)
    for p in fps:
        assert ref_F("gelu", p.q * (1 - 1e-7), 1.5174, math.sqrt(0.05)) * ref_F(
            "gelu", p.q * (1 + 1e-7), 1.5174, math.sqrt(0.05)
        ) < 0.0
    assert mf.q_star("gelu", 1.5174, math.sqrt(0.05), q_init=0.5) == pytest.approx(lo.q, rel=1e-12)
    with pytest.raises(mf.NoFixedPointError):  # above the unstable point q grows without bound
        mf.q_star("gelu", 1.5174, math.sqrt(0.05), q_init=1.0)
    assert fps.stable_points == (lo,)


def test_fixed_points_special_cases():
    fps = mf.fixed_points("tanh", 1.5, 0.0)  # odd, σ_b = 0: 0 is fixed (and repels), one positive fixed point
    assert fps.zero_is_fixed and not fps.zero_attracts and len(fps) == 1 and not fps.diverges
    assert fps[0].q == pytest.approx(mf.q_star("tanh", 1.5, 0.0), rel=1e-12)
    fps = mf.fixed_points("tanh", 0.8, 0.0)
    assert fps.zero_attracts and len(fps) == 0
    fps = mf.fixed_points("relu", 2.0, 0.5)  # σ_w² > 2: q grows without bound (THEORY §1)
    assert len(fps) == 0 and fps.diverges
    fps = mf.fixed_points("relu", math.sqrt(2.0), 0.0)
    assert fps.every_q_fixed and len(fps) == 0
    fps = mf.fixed_points("relu", 1.2, 0.3)
    assert len(fps) == 1 and fps[0].q == pytest.approx(0.09 / (1 - 0.72), rel=1e-13)  # σ_b²/(1 - σ_w²/2)
    assert fps[0].slope == pytest.approx(0.72, rel=1e-13) and fps[0].stable


@pytest.mark.parametrize(
    "name, sw, sb",
    [("gelu", 1.5174, math.sqrt(0.05)), ("silu", 1.5, 0.4472136), ("silu", 1.7, 0.3), ("x*tanh(x)", 1.2, 0.5),
     ("elu", 1.6, 0.1), ("softplus", 1.3, 0.2), ("tanh", 2.0, 0.5)],
)
def test_fixed_points_none_missed_against_a_finer_grid(name, sw, sb):
    """Sign changes of q_map(q) - q on a grid 16 times finer than the scan's (64 nodes per octave, q ∈ [1e-3, 1e3])
    are exactly the fixed points reported in that range."""
    fps = mf.fixed_points(name, sw, sb)
    qs = np.geomspace(1e-3, 1e3, 64 * 20 + 1)
    f = mf.q_map(name, qs, sw, sb) - qs
    changes = int(np.sum(np.sign(f[1:]) * np.sign(f[:-1]) < 0))
    inside = [p for p in fps if 1e-3 < p.q < 1e3]
    assert changes == len(inside)
    for p in inside:  # each with the slope of the reference (central difference) and its stability
        h = 1e-4
        fd = (ref_F(name, p.q * (1 + h), sw, sb) - ref_F(name, p.q * (1 - h), sw, sb)) / (2 * h * p.q) + 1
        assert p.slope == pytest.approx(fd, abs=1e-6) and p.stable == (abs(fd) < 1)


def test_q_star_is_a_stable_fixed_point_of_fixed_points():
    for name, sw, sb, qi in [("silu", 1.5, 0.4472136, 1.0), ("gelu", 1.53, math.sqrt(0.05), 0.01), ("tanh", 1.3, 0.3, 5.0)]:
        q = mf.q_star(name, sw, sb, q_init=qi)
        assert any(p.stable and p.q == pytest.approx(q, rel=1e-12) for p in mf.fixed_points(name, sw, sb))


# ------------------------------------------------------------------------------------------------------ keywords
@pytest.mark.parametrize("func", [mf.q_star, mf.chi1, mf.c_star, mf.fixed_point])
def test_q0_is_deprecated_for_the_start_of_the_iteration(func):
    new = func("tanh", 1.5, 0.2, q_init=3.0)
    with pytest.warns(DeprecationWarning, match="use q_init"):
        old = func("tanh", 1.5, 0.2, q0=3.0)
    assert old == new
    with pytest.raises(mf.InvalidParameterError, match="q_init only"):
        func("tanh", 1.5, 0.2, q_init=3.0, q0=3.0)


def test_propagate_keeps_q0_as_the_input_length():
    tr = mf.propagate("tanh", 1.5, 0.2, 3, q0=2.0)
    assert tr.q[0] == 2.0 and tr.q[1] == pytest.approx(1.5**2 * 2.0 + 0.04, rel=1e-15)


# --------------------------------------------------------------------------------------------------- input types
@pytest.mark.parametrize("func", [mf.q_star, mf.chi1, mf.c_star])
def test_scalar_zero_d_list_and_array_inputs_agree_without_warnings(func):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = func("tanh", 1.3, 0.2)
        b = func("tanh", np.float64(1.3), np.array(0.2))
        c = func("tanh", [1.3], [0.2])
        d = func("tanh", np.array([1.3, 1.3]), 0.2)
        e = func("tanh", (1.3,), 0.2)
    assert type(a) is float and type(b) is float
    assert isinstance(c, np.ndarray) and c.shape == (1,) and d.shape == (2,)
    assert a == b == c[0] == d[0] == d[1] == e[0]


def test_c_star_near_chi_c_one_is_proven_to_its_conditioning():
    """ELU just above the critical line: χ_c = 0.9999, so c-map(c) - c changes by only 1e-4·δ across c* ± δ; the check
    once refused this correct c* (a ±1e-8 window). Reference written here: for u2 = m + s·z given u1, E elu(u2) =
    m Φ(m/s) + s ϕ(m/s) + e^{m + s²/2} Φ(-m/s - s) - Φ(-m/s) (closed form), then Gauss–Legendre over z1 split at the
    kink 0."""
    from scipy.special import ndtr

    sw, sb = 1.01269324610826, 0.0001
    fp = mf.fixed_point("elu", sw, sb)
    assert 0.999 < fp.chi_c < 1.0
    assert 0.0 < fp.c_star_error <= 1e-6
    q = fp.q_star
    x, w = np.polynomial.legendre.leggauss(120)
    z = np.concatenate((6.0 * (x - 1.0), 6.0 * (x + 1.0)))  # [-12, 0] and [0, 12]
    wz = np.concatenate((6.0 * w, 6.0 * w)) * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)

    def cmap(c):
        u1 = np.sqrt(q) * z
        m, s = c * u1, np.sqrt(q * (1.0 - c * c))
        inner = (m * ndtr(m / s) + s * np.exp(-0.5 * (m / s) ** 2) / np.sqrt(2 * np.pi)
                 + np.exp(m + 0.5 * s * s) * ndtr(-m / s - s) - ndtr(-m / s))
        outer = np.where(u1 > 0, u1, np.expm1(np.minimum(u1, 0.0)))
        return (sw**2 * np.sum(wz * outer * inner) + sb**2) / q

    d = 10 * fp.c_star_error
    assert cmap(fp.c_star - d) - (fp.c_star - d) > 0 > cmap(fp.c_star + d) - (fp.c_star + d)
