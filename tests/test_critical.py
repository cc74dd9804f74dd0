"""Critical line and phase diagram: THEORY §1 reference values, round trips, properties, errors."""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meanfield as mf

# THEORY §1, tanh critical line: σ_b² -> σ_w² (quoted to 7 significant digits)
TANH_LINE = [(1e-4, 1.086026), (0.05, 1.760955), (0.3, 2.505127), (1.0, 3.443210)]


@pytest.mark.parametrize("sb2, sw2", TANH_LINE)
def test_tanh_critical_line_reference(sb2, sw2):
    assert mf.critical_sigma_w("tanh", math.sqrt(sb2)) ** 2 == pytest.approx(sw2, rel=5e-7)


def test_tanh_critical_line_against_mpmath():
    """σ_b² = 2.0: THEORY quotes 4.266355 (q* = 4.830554), but at that q* σ_b² = 1.99998; 30-digit quadrature gives
    the reference used here (σ_w² = 4.2663961..., q* = 4.8305862...)."""
    mp.mp.dps = 30

    def e(f, q):
        s = mp.sqrt(q)
        return mp.quad(lambda z: f(s * z) * mp.exp(-z * z / 2), [-mp.inf, -3, -1, 0, 1, 3, mp.inf]) / mp.sqrt(2 * mp.pi)

    def mu1(q):
        return e(lambda u: (1 - mp.tanh(u) ** 2) ** 2, q)

    qs = mp.findroot(lambda q: q - e(lambda u: mp.tanh(u) ** 2, q) / mu1(q) - 2, 4.83)
    ref = float(1 / mu1(qs))
    assert mf.critical_sigma_w("tanh", math.sqrt(2.0)) ** 2 == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize(
    "phi, q, sw, sb",
    [
        ("tanh", 1 / 64, 1.0151637852, 2.1566949868e-3),  # THEORY §1
        ("tanh", 8.0, 2.3287072899, 2.0088803794),  # THEORY §1
    ],
)
def test_critical_point_from_q_star(phi, q, sw, sb):
    got_w, got_b = mf.critical_point(phi, q)
    assert got_w == pytest.approx(sw, rel=1e-9)
    assert got_b == pytest.approx(sb, rel=1e-9)


@pytest.mark.parametrize("phi, sw2, sb2", [("erf", 1.360350, 0.046550), ("hard_tanh", 1.1866608, 0.0596351)])
def test_critical_point_erf_hard_tanh(phi, sw2, sb2):
    sw, sb = mf.critical_point(phi, 0.5)  # THEORY §1
    assert sw**2 == pytest.approx(sw2, rel=5e-7)
    assert sb**2 == pytest.approx(sb2, rel=5e-6)


def test_tanh_no_bias_critical_point():
    assert mf.critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, rel=1e-15)


def test_critical_sigma_b_inverts_critical_sigma_w():
    sb = np.array([0.05, 0.3, 1.0])
    sw = mf.critical_sigma_w("tanh", sb)
    np.testing.assert_allclose(mf.critical_sigma_b("tanh", sw), sb, rtol=1e-9)


def test_relu_has_no_critical_point_with_bias():
    with pytest.raises(mf.NoCriticalPointError, match="sigma_b"):
        mf.critical_sigma_w("relu", 0.1)
    assert mf.critical_sigma_w("relu", 0.0) == pytest.approx(math.sqrt(2), rel=1e-15)
    with pytest.raises(mf.NoCriticalPointError):
        mf.critical_sigma_b("relu", 1.2)
    assert mf.critical_sigma_b("relu", math.sqrt(2)) == 0.0


def test_tanh_sigma_w_below_one_has_no_critical_point():
    with pytest.raises(mf.NoCriticalPointError, match="sigma_w"):
        mf.critical_sigma_b("tanh", 0.9)


def test_critical_point_negative_bias_raises():
    # erf: E φ²/μ_1 > q at large q? check a q where σ_b² would be negative for a sub-linear activation
    with pytest.raises(ValueError, match="q_star must be > 0"):
        mf.critical_point("tanh", 0.0)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["tanh", "erf", "hard_tanh", "sigmoid"]), sb=st.floats(0.01, 2.0))
def test_property_chi1_on_critical_line_is_one(name, sb):
    try:
        sw = mf.critical_sigma_w(name, sb)
    except mf.NoCriticalPointError:
        return
    assert mf.chi1(name, sw, sb) == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["tanh", "erf", "hard_tanh"]), logq=st.floats(-6, 3))
def test_property_critical_point_round_trip(name, logq):
    if name == "hard_tanh":  # linear for |u| < 1: below q ~ 0.2 its critical σ_b² is exponentially small (~e^{-1/2q})
        logq = max(logq, -0.7)
    q = 10.0**logq
    sw, sb = mf.critical_point(name, q)
    assert mf.q_star(name, sw, sb) == pytest.approx(q, rel=1e-8)
    assert mf.chi1(name, sw, sb) == pytest.approx(1.0, abs=1e-10)


def test_phase_diagram_matches_pointwise_solvers():
    sw = np.array([0.8, 1.2, 1.6, 2.2])
    sb = np.array([0.05, 0.3, 0.7])
    pd = mf.phase_diagram("tanh", sw, sb)
    assert pd.q_star.shape == (4, 3)
    for i, w in enumerate(sw):
        for j, b in enumerate(sb):
            fp = mf.fixed_point("tanh", w, b)
            assert pd.q_star[i, j] == pytest.approx(fp.q_star, rel=1e-12)
            assert pd.chi1[i, j] == pytest.approx(fp.chi1, rel=1e-12)
            assert pd.c_star[i, j] == pytest.approx(fp.c_star, rel=1e-9)
            assert pd.xi_c[i, j] == pytest.approx(fp.xi_c, rel=1e-8)
    assert len(pd.to_records()) == 12


def test_phase_diagram_marks_divergence():
    pd = mf.phase_diagram("relu", np.array([1.0, 1.5]), np.array([0.0, 0.1]), correlations=False)
    assert pd.diverges[1, 1] and np.isinf(pd.q_star[1, 1]) and np.isnan(pd.chi1[1, 1])
    assert pd.q_star[0, 1] == pytest.approx(0.01 / (1 - 0.5), rel=1e-14)
    assert not pd.diverges[0, 0]


def test_phase_diagram_progress_blocks_give_the_same_grid(capsys):
    sw, sb = np.linspace(0.5, 2.0, 9), np.linspace(0.0, 1.0, 23)
    a = mf.phase_diagram("tanh", sw, sb, progress=True)
    assert "23/23 rows" in capsys.readouterr().err
    b = mf.phase_diagram("tanh", sw, sb)
    np.testing.assert_array_equal(a.q_star, b.q_star)
    np.testing.assert_array_equal(a.c_star, b.c_star)


def test_no_critical_sigma_b_message_names_the_activations_own_limit():
    # the message used to end "for tanh sigma_w must be ≥ 1" whatever the activation; erf's limit is √(π/4)
    with pytest.raises(mf.NoCriticalPointError) as e:
        mf.critical_sigma_b("erf", 0.5)
    assert "tanh" not in str(e.value) and f"{math.sqrt(math.pi / 4):.6g}" in str(e.value)
