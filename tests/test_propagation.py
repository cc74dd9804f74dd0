"""Length/correlation maps, fixed points and depth scales: THEORY §1 reference values, closed forms, properties."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import meanfield as mf

SMOOTH = ["tanh", "erf", "gelu", "softplus"]


def test_tanh_depth_scales_ordered():
    # THEORY §1: tanh, σ_b² = 0.05, σ_w² = 1.0
    fp = mf.fixed_point("tanh", 1.0, math.sqrt(0.05))
    assert fp.q_star == pytest.approx(0.193593, rel=1e-5)
    assert fp.chi1 == pytest.approx(0.759032, rel=1e-5)
    assert fp.xi_q == pytest.approx(1.7476, rel=1e-4)
    assert fp.c_star == 1.0
    assert fp.xi_c == pytest.approx(3.627, rel=1e-3)
    assert fp.phase == "ordered"


def test_tanh_depth_scales_chaotic():
    # THEORY §1: tanh, σ_b² = 0.05, σ_w² = 2.5
    fp = mf.fixed_point("tanh", math.sqrt(2.5), math.sqrt(0.05))
    assert fp.q_star == pytest.approx(1.063958, rel=1e-5)
    assert fp.chi1 == pytest.approx(1.133516, rel=1e-5)
    assert fp.xi_q == pytest.approx(1.1799, rel=1e-4)
    assert fp.c_star == pytest.approx(0.446804, rel=1e-5)
    assert fp.chi_c == pytest.approx(0.918717, rel=1e-5)
    assert fp.xi_c == pytest.approx(11.796, rel=1e-4)
    assert fp.phase == "chaotic"


def test_relu_closed_forms():
    sw, sb = 1.2, 0.3
    assert mf.q_star("relu", sw, sb) == pytest.approx(sb**2 / (1 - sw**2 / 2), rel=1e-14)
    assert mf.chi1("relu", sw, sb) == pytest.approx(sw**2 / 2, rel=1e-14)
    # ReLU c-map at criticality (THEORY §1): c = 0, 0.5, 0.9
    got = mf.c_map("relu", np.array([0.0, 0.5, 0.9]), 1.0, math.sqrt(2), 0.0)
    np.testing.assert_allclose(got, [0.3183099, 0.6089978, 0.9095384], rtol=2e-7)
    assert mf.c_map("relu", 0.0, 1.0, math.sqrt(2), 0.0) == pytest.approx(1 / math.pi, rel=1e-14)


def test_relu_marginal_point_returns_input_length():
    fp = mf.fixed_point("relu", math.sqrt(2), 0.0, q_init=0.7)
    assert fp.q_star == pytest.approx(0.7, rel=1e-14)
    assert fp.chi1 == pytest.approx(1.0, rel=1e-14) and fp.phase == "critical"
    assert fp.xi_c == math.inf


@pytest.mark.parametrize("phi, sw, sb", [("relu", math.sqrt(2.0), 0.1), ("relu", 2.0, 0.5), ("linear", 1.0, 0.1), ("linear", 1.5, 0.2)])
def test_no_finite_fixed_point_raises(phi, sw, sb):
    with pytest.raises(mf.NoFixedPointError, match="no finite fixed point"):
        mf.q_star(phi, sw, sb)
    with pytest.raises(mf.NoFixedPointError):
        mf.fixed_point(phi, sw, sb)


def test_linear_fixed_point():
    assert mf.q_star("linear", 0.8, 0.3) == pytest.approx(0.09 / (1 - 0.64), rel=1e-14)


def test_zero_fixed_point_odd_activation_no_bias():
    fp = mf.fixed_point("tanh", 0.9, 0.0)
    assert fp.q_star == 0.0 and fp.chi1 == pytest.approx(0.81, rel=1e-12)
    fp = mf.fixed_point("tanh", 1.3, 0.0)  # chaotic, odd, σ_b = 0: c* = 0
    assert fp.q_star > 0 and fp.c_star == 0.0


def test_vectorised_q_star_broadcasts():
    sw = np.array([0.8, 1.0, 1.5])
    q = mf.q_star("tanh", sw[:, None], np.array([0.1, 0.3])[None, :])
    assert q.shape == (3, 2)
    assert q[1, 0] == pytest.approx(mf.q_star("tanh", 1.0, 0.1), rel=1e-15)
    assert isinstance(mf.chi1("tanh", 1.0, 0.1), float)


def test_propagate_converges_to_fixed_point_and_matches_maps():
    tr = mf.propagate("tanh", 1.5, 0.2, 400, q0=2.0, c0=0.3)
    fp = mf.fixed_point("tanh", 1.5, 0.2)
    assert tr.q[0] == 2.0 and tr.q[1] == pytest.approx(1.5**2 * 2.0 + 0.04, rel=1e-15)
    assert tr.q[-1] == pytest.approx(fp.q_star, rel=1e-12)
    assert tr.c[-1] == pytest.approx(fp.c_star, rel=1e-9)
    assert tr.q[5] == pytest.approx(mf.q_map("tanh", tr.q[4], 1.5, 0.2), rel=1e-14)
    assert tr.chi[-1] == pytest.approx(fp.chi1, rel=1e-12)
    assert tr.depth == 400


def test_propagate_ordered_correlations_go_to_one():
    tr = mf.propagate("tanh", 0.9, 0.3, 200, q0=1.0, c0=0.1)
    assert tr.c[-1] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma_w=0.0), "sigma_w must be > 0"),
        (dict(sigma_w=-1.0), "sigma_w must be > 0"),
        (dict(sigma_b=-0.1), "sigma_b must be ≥ 0"),
        (dict(sigma_w=math.nan), "sigma_w must be finite"),
        (dict(sigma_b=math.inf), "sigma_b must be finite"),
        (dict(depth=0), "depth must be an integer ≥ 1"),
        (dict(depth=2.5), "depth must be an integer"),
        (dict(q0=0.0), "q0 must be > 0"),
        (dict(c0=1.5), r"c0 must lie in \[-1, 1\]"),
        (dict(phi="tanhh"), "did you mean"),
    ],
)
def test_bad_input_names_the_value(kwargs, match):
    args = dict(phi="tanh", sigma_w=1.0, sigma_b=0.1, depth=3, q0=1.0, c0=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mf.propagate(**args)


def test_bad_input_fixed_point():
    with pytest.raises(ValueError, match="sigma_w must be > 0 .*got -2"):
        mf.q_star("tanh", -2.0, 0.1)
    with pytest.raises(ValueError, match="q_init must be > 0"):
        mf.q_star("tanh", 1.0, 0.1, q_init=-1.0)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(SMOOTH + ["hard_tanh", "x*tanh(x) + 0.1*x"]),
    sw=st.floats(0.3, 3.0),
    sb=st.floats(0.01, 1.5),
)
def test_property_q_star_is_fixed(name, sw, sb):
    try:
        q = mf.q_star(name, sw, sb)
    except mf.NoFixedPointError:
        return
    assert mf.q_map(name, q, sw, sb) == pytest.approx(q, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(["tanh", "erf", "gelu", "x*tanh(x) + 0.1*x"]), sw=st.floats(0.5, 2.5), sb=st.floats(0.05, 1.0))
def test_property_chi1_is_slope_of_c_map_at_one(name, sw, sb):
    """Smooth φ only: for kinked φ the c-map has a (1-c)^{3/2} term at c = 1, so finite differences converge as √h."""
    try:
        q = mf.q_star(name, sw, sb)
    except mf.NoFixedPointError:  # GELU grows linearly: σ_w² > 2 has no finite q*
        assume(False)
    h = 1e-5  # at large q* the c-map bends on a scale ~1/q* near c = 1 (φ looks kinked at scale √q*)
    f0, f1, f2 = (mf.c_map(name, 1.0 - k * h, q, sw, sb) for k in range(3))
    slope = (3 * f0 - 4 * f1 + f2) / (2 * h)  # second-order one-sided difference
    assert slope == pytest.approx(mf.chi1(name, sw, sb), rel=1e-6)


# c* by the Mehler series (smooth φ, q* ≲ 5) against the two-dimensional quadrature it replaces
@pytest.mark.parametrize(
    "phi,sw,sb",
    [("tanh", 1.2, 0.05), ("tanh", 1.5, 0.2), ("tanh", 1.8, 0.1), ("tanh", 2.5, 0.3), ("atan(x)", 1.5, 0.05),
     ("atan(x)", 2.0, 0.1), ("sin(x)", 1.5, 0.1), ("x*exp(-x**2/4)", 2.5, 0.2)],
)
def test_c_star_series_matches_quadrature(phi, sw, sb):
    from meanfield import propagation as prop

    act = mf.get_activation(phi)
    fp = mf.fixed_point(phi, sw, sb)
    assert fp.phase == "chaotic" and 0.0 < fp.c_star < 1.0
    got = prop._c_star_series(act, sw * sw, sb * sb, fp.q_star)
    assert got is not None  # the series path was taken
    assert (fp.c_star, fp.chi_c) == (float(got[0]), float(got[1]))
    # G(c*) = 0 under the 16-node rule (error estimate |I_16 - I_10| attached), to rounding
    out, err = np.empty(2), np.empty(2)
    act.kernels.twopoint_direct(fp.q_star, fp.q_star, fp.c_star * fp.q_star, out, err)
    g = (sw * sw * out[0] + sb * sb) / fp.q_star - fp.c_star
    assert abs(g) <= 1e-14 + sw * sw * err[0] / fp.q_star
    assert fp.chi_c == pytest.approx(sw * sw * out[1], rel=1e-11)
    # the quadrature kernel (10-node rule inside Newton) agrees within its own accuracy, amplified by 1/(1 - χ_c)
    c_q, chic_q, st, _ = act.kernels.c_star_kernel(sw * sw, sb * sb, fp.q_star, fp.chi1, 0.5, prop.RTOL, prop.MAXITER)
    assert st == 0
    assert abs(fp.c_star - c_q) <= 1e-11 / (1.0 - fp.chi_c)  # G is accurate to ~5e-12 absolute in the kernel
    assert fp.chi_c == pytest.approx(chic_q, rel=1e-10)


def test_c_star_series_not_used_beyond_its_range():
    """tanh at q* ≈ 6.3 would need more than 1024 Gauss–Hermite nodes: the quadrature kernel answers."""
    from meanfield import propagation as prop

    act = mf.get_activation("tanh")
    q = mf.q_star("tanh", 3.0, 0.0)
    assert q > 5.12 and prop._c_star_series(act, 9.0, 0.0, q) is None
    assert mf.fixed_point("tanh", 3.0, 0.0).c_star == 0.0  # odd φ, σ_b = 0


def test_hermite_basis_disk_cache_round_trip(tmp_path, monkeypatch):
    """The Gauss–Hermite basis of the Mehler series is saved once and reloaded bit for bit (warm starts skip scipy)."""
    from meanfield import _mehler

    monkeypatch.setenv("MEANFIELD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_mehler, "_BASIS", {})
    _build = _mehler._build_basis
    built = _mehler._hermite_basis(64)
    path = _mehler._basis_path(64)
    assert path.parent == tmp_path and path.exists() and not list(tmp_path.glob("*.tmp.npz"))
    monkeypatch.setattr(_mehler, "_BASIS", {})
    monkeypatch.setattr(_mehler, "_build_basis", lambda n: pytest.fail("rebuilt instead of loaded"))
    loaded = _mehler._hermite_basis(64)
    for a, b in zip(built, loaded):
        assert np.array_equal(a, b)
    # a truncated, an empty or a foreign file is rebuilt, not fatal
    monkeypatch.setattr(_mehler, "_build_basis", _build)
    for junk in (path.read_bytes()[:100], b"", b"not a zip file"):
        path.write_bytes(junk)
        monkeypatch.setattr(_mehler, "_BASIS", {})
        for a, b in zip(built, _mehler._hermite_basis(64)):
            assert np.array_equal(a, b)
    # Parseval: the folded basis reproduces E φ² for φ = tanh at q = 0.25 to the series' accepted accuracy
    act = mf.get_activation("tanh")
    m = mf.gaussian_moments("tanh", 0.25)
    a2, b2, nterms = _mehler.mehler_coefficients(
        act.kernels, np.array([0.25]), np.array([m.phi2]), np.array([m.mu1]), (64,)
    )
    assert nterms[0] == 48 and abs(a2[0].sum() - m.phi2) <= 1e-12 * m.phi2


def test_mehler_coefficients_each_variance_from_its_own_rule_size():
    """Every variance starts at the first size n ≥ NODES_PER_Q·q; rows are packed (zeros beyond nterms) and each row
    reproduces the two-dimensional quadrature at c = 0.6."""
    from meanfield import _mehler

    act = mf.get_activation("tanh")
    qs = np.array([2.0, 0.1, 0.9])
    m = [mf.gaussian_moments("tanh", q) for q in qs]
    phi2, mu1 = np.array([x.phi2 for x in m]), np.array([x.mu1 for x in m])
    calls = []
    batch = _mehler._mehler_batch

    def spy(k, n, q, *rest):
        calls.append((n, sorted(q)))
        return batch(k, n, q, *rest)

    try:
        _mehler._mehler_batch = spy
        a2, b2, nterms = _mehler.mehler_coefficients(act.kernels, qs, phi2, mu1, odd=True)
    finally:
        _mehler._mehler_batch = batch
    assert calls[0] == (32, [0.1])  # 0.9 and 2.0 are not tried on rules below 180 and 400 nodes
    assert all(n >= _mehler.NODES_PER_Q * min(q) for n, q in calls)
    assert nterms[0] == 384 and 0 < nterms[1] < nterms[2] <= nterms[0] and a2.shape == (3, 384)
    for i, q in enumerate(qs):
        assert not a2[i, nterms[i] :].any() and not b2[i, nterms[i] :].any()
        tp = mf.two_point("tanh", q, q, 0.6 * q)
        c = 0.6 ** np.arange(a2.shape[1])
        assert abs(a2[i] @ c - tp.phi_phi) <= 1e-12 * phi2[i]
        assert abs(b2[i] @ c - tp.dphi_dphi) <= 1e-12 * mu1[i]


@pytest.mark.parametrize("phi", ["tanh", "atan(x)", "sin(x)"])
def test_mehler_odd_path_matches_the_general_one(phi):
    """For odd φ the series evaluates φ, φ' at the positive nodes only: same coefficients to rounding."""
    from meanfield import _mehler

    act = mf.get_activation(phi)
    assert act.is_odd
    qs = np.array([0.05, 0.3, 0.9])
    m = [mf.gaussian_moments(phi, q) for q in qs]
    phi2, mu1 = np.array([x.phi2 for x in m]), np.array([x.mu1 for x in m])
    a, b, ok = _mehler._mehler_batch(act.kernels, 256, qs, phi2, mu1, False)
    a1, b1, ok1 = _mehler._mehler_batch(act.kernels, 256, qs, phi2, mu1, True)
    assert ok.all() and ok1.all()
    assert np.max(np.abs(a1 - a)) <= 1e-15 * phi2.max() and np.max(np.abs(b1 - b)) <= 1e-15 * mu1.max()
    assert not a1[:, 0::2].any() and not b1[:, 1::2].any()


def test_mehler_odd_flag_on_a_non_odd_activation_is_rejected_not_wrong():
    from meanfield import _mehler

    act = mf.get_activation("softplus")
    assert not act.is_odd
    m = mf.gaussian_moments("softplus", 0.5)
    args = (act.kernels, 256, np.array([0.5]), np.array([m.phi2]), np.array([m.mu1]))
    assert _mehler._mehler_batch(*args, False)[2][0] and not _mehler._mehler_batch(*args, True)[2][0]


def _sin_sin(q, c):
    """E sin(u1) sin(u2), u1, u2 of variance q and correlation c (closed form: E e^{i(u1 ± u2)})."""
    return 0.5 * (math.exp(-q * (1.0 - c)) - math.exp(-q * (1.0 + c)))


def test_sin_correlation_map_matches_the_closed_form_where_resolved():
    tr = mf.propagate("sin(x)", 1.5, 0.1, depth=4, q0=1.0, c0=0.5)
    for l in range(1, 4):
        q, c = tr.q[l], tr.c[l]
        ref = (2.25 * _sin_sin(q, c) + 0.01) / tr.q[l + 1]
        assert tr.c[l + 1] == pytest.approx(ref, abs=1e-12)


def test_unresolved_correlation_map_raises_instead_of_returning():
    # sin(x) at q = 200, c = 0.999: the two-point rule's value was off by 2e-3 (c² = 0.81669 for 0.81873) and
    # propagate returned it; it now refuses it as two_point does, naming the layer
    with pytest.raises(mf.NumericalError, match="layer 2"):
        mf.propagate("sin(x)", 1.0, 0.0, depth=2, q0=200.0, c0=0.999)
    with pytest.raises(mf.NumericalError, match="c_map"):
        mf.c_map("sin(x)", 0.999, 200.0, 1.0, 0.0)


def test_relu_two_point_closed_form_beyond_1e154():
    # √(q11 q22) overflowed for q ≳ 1.34e154 (the c-map then read c = 1 whatever the correlation)
    q = 1e200
    tp = mf.two_point("relu", q, q, 0.5 * q)
    theta = math.acos(0.5)
    assert tp.phi_phi == pytest.approx(q * (math.sin(theta) + (math.pi - theta) * 0.5) / (2 * math.pi), rel=1e-14)
    assert mf.c_map("relu", 0.5, q, 2**0.5, 0.0) == pytest.approx(
        (math.sin(theta) + (math.pi - theta) * 0.5) / math.pi, rel=1e-14)
