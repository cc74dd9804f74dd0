"""Infinite-width NNGP and NTK kernels of a data set (mf.kernels and mf.predict, THEORY §7).

References are written here, independently of the package: the two-point Gaussian expectations by nested composite
Gauss–Legendre quadrature of numpy's 48-node rule on panels of width ≤ 1 over [-12, 12], split at the kinks (the
package uses 16-node panels with other breakpoints), with the inner expectation in closed form for the piecewise linear
activations (E[clip(μ + bZ)] and P(|μ + bZ| < 1) through the normal CDF), checked against scipy's adaptive dblquad
(QUADPACK) below; and the recursions of THEORY §7 summed backwards (Lee et al. 2018 eq. 4; Jacot et al. 2018 Theorem 1)
for single pairs of inputs.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special

import meanfield as mf
from meanfield.infinite_width import kernels, predict

EDGE = 12.0  # Gaussian mass beyond ±12: 3.6e-33
_X48, _W48 = np.polynomial.legendre.leggauss(48)


def _pdf(z):
    return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


def _cdf(z):
    return 0.5 * special.erfc(-np.asarray(z) / math.sqrt(2.0))


def _rule(breaks=()):
    """Nodes and weights (the normal density included) of the composite rule on [-EDGE, EDGE] split at ``breaks``."""
    edges = np.unique(np.concatenate([np.linspace(-EDGE, EDGE, 25), [b for b in breaks if -EDGE < b < EDGE]]))
    h = 0.5 * np.diff(edges)[:, None]
    m = 0.5 * (edges[1:] + edges[:-1])[:, None]
    z = (m + h * _X48).ravel()
    return z, (h * _W48).ravel() * _pdf(z)


class Smooth:
    """φ, φ' as numpy functions; the inner Gaussian expectation by the same rule."""

    def __init__(self, f, df):
        self.f, self.df = f, df

    def inner(self, mu, b, g):
        z, w = _rule()
        return g(mu[:, None] + b * z[None, :]) @ w

    def breaks(self, s):
        return ()


class HardTanh:
    f = staticmethod(lambda u: np.clip(u, -1.0, 1.0))
    df = staticmethod(lambda u: ((u > -1.0) & (u < 1.0)).astype(float))

    def inner(self, mu, b, g):
        lo, hi = (-1.0 - mu) / b, (1.0 - mu) / b
        p_in = _cdf(hi) - _cdf(lo)
        if g is self.df:
            return p_in
        return mu * p_in + b * (_pdf(lo) - _pdf(hi)) + (1.0 - _cdf(hi)) - _cdf(lo)

    def breaks(self, s):
        return (1.0 / s, -1.0 / s)


class Relu:
    f = staticmethod(lambda u: np.maximum(u, 0.0))
    df = staticmethod(lambda u: (u > 0.0).astype(float))

    def inner(self, mu, b, g):
        t = mu / b
        if g is self.df:
            return _cdf(t)
        return mu * _cdf(t) + b * _pdf(t)

    def breaks(self, s):
        return (0.0,)


def _one(phi, q):
    z, w = _rule(phi.breaks(math.sqrt(q)))
    u = math.sqrt(q) * z
    return float(phi.f(u) ** 2 @ w), float(phi.df(u) ** 2 @ w)


def _two(phi, q1, q2, q12):
    """(E φ(u)φ(v), E φ'(u)φ'(v)) with u = √q1 z1, v = a z1 + b z2 (|c| < 1)."""
    s1 = math.sqrt(q1)
    c = q12 / math.sqrt(q1 * q2)
    a, b = math.sqrt(q2) * c, math.sqrt(q2) * math.sqrt(1.0 - c * c)
    br = tuple(phi.breaks(s1)) + (tuple(k / a * s1 for k in phi.breaks(s1)) if a != 0 else ())
    z, w = _rule(br)
    return tuple(float((g(s1 * z) * phi.inner(a * z, b, g)) @ w) for g in (phi.f, phi.df))


def reference_pair(phi, sw, sb, depth, x, y, width=None):
    """(K^{L+1}, Θ_ntk^{L+1}, Θ_std/N at N → ∞, Θ_std/N at N = width) of one pair by the recursions of THEORY §7, the
    standard NTK as the backward sum Σ_l (N_{l-1} K̂^{l-1} + 1) P^l / N (N_0 K̂^0 = x·y)."""
    n0 = len(x)
    k11, k22, k12 = (sw**2 * float(u @ v) / n0 + sb**2 for u, v in ((x, x), (y, y), (x, y)))
    theta = k12
    hats, dots = [float(x @ y)], []
    same = np.array_equal(x, y)
    for _ in range(depth):
        h12, d12 = _one(phi, k11) if same else _two(phi, k11, k22, k12)
        hats.append(h12)
        dots.append(d12)
        k12 = sw**2 * h12 + sb**2
        theta = k12 + sw**2 * d12 * theta
        k11 = sw**2 * _one(phi, k11)[0] + sb**2
        k22 = sw**2 * _one(phi, k22)[0] + sb**2
    std = [0.0, 0.0]
    for l in range(1, depth + 2):  # P^l = Π_{m=l}^{L} σ_w² K̇^m
        P = math.prod(sw**2 * dots[m - 1] for m in range(l, depth + 1))
        std[0] += (0.0 if l == 1 else hats[l - 1]) * P
        if width is not None:
            std[1] += ((hats[0] + 1.0) / width if l == 1 else hats[l - 1] + 1.0 / width) * P
    return k12, theta, std[0], std[1]


ACTS = {
    "tanh": Smooth(np.tanh, lambda u: 1.0 - np.tanh(u) ** 2),
    "erf": Smooth(special.erf, lambda u: 2.0 / math.sqrt(math.pi) * np.exp(-u * u)),
    "gelu": Smooth(lambda u: u * _cdf(u), lambda u: _cdf(u) + u * _pdf(u)),
    "hard_tanh": HardTanh(),
    "relu": Relu(),
    "Max(0, x)": Relu(),
}


def test_reference_rule_itself():
    """The reference rule against QUADPACK's adaptive dblquad (smooth tanh), THEORY §1's hard-tanh E_q φ² values and the
    arc-cosine kernel of ReLU (Cho & Saul 2009, written out here)."""
    q1, q2, q12 = 1.7, 0.6, -0.55
    s1, c = math.sqrt(q1), q12 / math.sqrt(q1 * q2)
    a, b = math.sqrt(q2) * c, math.sqrt(q2 * (1.0 - c * c))
    want = integrate.dblquad(
        lambda z2, z1: _pdf(z1) * _pdf(z2) * math.tanh(s1 * z1) * math.tanh(a * z1 + b * z2), -EDGE, EDGE, -EDGE, EDGE,
        epsabs=1e-13, epsrel=1e-11,
    )[0]
    assert _two(ACTS["tanh"], q1, q2, q12)[0] == pytest.approx(want, rel=1e-9)
    assert _one(ACTS["hard_tanh"], 0.5)[0] == pytest.approx(0.3710958548, abs=1e-10)  # THEORY §1 reference values
    assert _one(ACTS["hard_tanh"], 1.0)[0] == pytest.approx(0.5160585510, abs=1e-10)
    theta = math.acos(c)
    arccos = math.sqrt(q1 * q2) * (math.sin(theta) + (math.pi - theta) * c) / (2 * math.pi)
    got = _two(ACTS["relu"], q1, q2, q12)
    assert got[0] == pytest.approx(arccos, rel=1e-13)
    assert got[1] == pytest.approx((math.pi - theta) / (2 * math.pi), rel=1e-13)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5, 6))
    X[1] *= 2.0  # different norms
    X[3] *= 0.3
    X[4] = -0.8 * X[0] + 0.1 * X[4]  # strongly anti-correlated with row 0
    return X


@pytest.mark.parametrize(
    "phi, sw, sb, depth",
    [
        ("tanh", 1.5, 0.3, 3),
        ("tanh", 1.0, 0.05, 2),
        ("erf", 1.3, 0.2, 3),
        ("gelu", 1.4, 0.1, 2),
        ("hard_tanh", 1.2, 0.25, 2),
        ("relu", 2.0**0.5, 0.1, 3),
        ("Max(0, x)", 2.0**0.5, 0.1, 2),
    ],
)
def test_kernels_against_quadrature_reference(data, phi, sw, sb, depth):
    r = kernels(phi, sw, sb, depth, data)
    rs = kernels(phi, sw, sb, depth, data, parameterization="standard")
    rw = kernels(phi, sw, sb, depth, data, parameterization="standard", width=64)
    for i, j in [(0, 1), (0, 4), (1, 3), (2, 2)]:
        k, t, s, sn = reference_pair(ACTS[phi], sw, sb, depth, data[i], data[j], width=64)
        assert r.nngp[i, j] == pytest.approx(k, rel=1e-10, abs=0)
        assert r.ntk[i, j] == pytest.approx(t, rel=1e-10, abs=0)
        assert rs.ntk[i, j] == pytest.approx(s, rel=1e-10, abs=0)
        assert rs.nngp[i, j] == r.nngp[i, j]
        assert rw.ntk[i, j] == pytest.approx(sn, rel=1e-10, abs=0)


def test_relu_closed_form_equals_expression_route(data):
    """ReLU by the arc-cosine closed form and "Max(0, x)" by quadrature agree (two routes, one kernel)."""
    a = kernels("relu", 1.3, 0.2, 4, data)
    b = kernels("Max(0, x)", 1.3, 0.2, 4, data)
    assert a.entries["closed"] > 0 and b.entries["closed"] == 0
    np.testing.assert_allclose(b.nngp, a.nngp, rtol=1e-12, atol=0)
    np.testing.assert_allclose(b.ntk, a.ntk, rtol=1e-12, atol=0)


def test_linear_network_in_closed_form(data):
    """φ = x: K^{l+1} = σ_w² K^l + σ_b², Θ^{l+1} = K^{l+1} + σ_w² Θ^l, by hand for depth 2."""
    sw, sb = 0.9, 0.4
    G = data @ data.T / data.shape[1]
    K1 = sw**2 * G + sb**2
    K2 = sw**2 * K1 + sb**2
    K3 = sw**2 * K2 + sb**2
    T3 = K3 + sw**2 * (K2 + sw**2 * K1)
    r = kernels("linear", sw, sb, 2, data)
    np.testing.assert_allclose(r.nngp, K3, rtol=1e-14)
    np.testing.assert_allclose(r.ntk, T3, rtol=1e-14)


def test_diagonal_is_the_length_map():
    """K^{L+1}(x, x) = q^{L+1} of mf.propagate, and K(x, x')/q = c^{L+1} for two inputs of equal norm."""
    x = np.array([1.0, 0.0, 1.0, 0.0])
    y = np.array([1.0, 1.0, 0.0, 0.0])  # |x|² = |y|² = 2, x·y = 1: q0 = 1/2, c0 = 1/2
    tr = mf.propagate("tanh", 1.7, 0.2, 4, q0=0.5, c0=0.5)
    r = kernels("tanh", 1.7, 0.2, 3, np.stack([x, y]))
    assert r.nngp[0, 0] == pytest.approx(tr.q[4], rel=1e-13)
    assert r.nngp[0, 1] / r.nngp[0, 0] == pytest.approx(tr.c[4], rel=1e-11)


def test_cross_kernel_is_a_block_of_the_joint_kernel(rng):
    X = rng.normal(size=(7, 3))
    Y = rng.normal(size=(4, 3)) * 1.5
    joint = kernels("tanh", 1.2, 0.1, 3, np.vstack([X, Y]))
    cross = kernels("tanh", 1.2, 0.1, 3, X, Y)
    np.testing.assert_allclose(cross.nngp, joint.nngp[:7, 7:], rtol=1e-13)
    np.testing.assert_allclose(cross.ntk, joint.ntk[:7, 7:], rtol=1e-13)
    assert cross.nngp.shape == (7, 4)
    # symmetric to the last bit, positive semi-definite
    assert np.array_equal(joint.ntk, joint.ntk.T)
    assert np.linalg.eigvalsh(joint.nngp).min() > -1e-12


def test_large_variance_rows_stay_accurate(rng):
    """Inputs of large norm (tanh at q ≈ 15, where no Mehler table meets Parseval to 1e-13): entries of small |ρ| by the
    relaxed table, the nearly parallel pair (ρ ≈ 1) by quadrature; all accurate."""
    X = rng.normal(size=(3, 4))
    X[0] *= 3.0
    X[2] = 1.01 * X[0]
    r = kernels("tanh", 1.3, 0.1, 2, X)
    assert r.entries["quadrature"] > 0 and r.entries["series"] > 3
    for i, j in [(0, 1), (0, 2)]:
        k, t, _, _ = reference_pair(ACTS["tanh"], 1.3, 0.1, 2, X[i], X[j])
        assert r.nngp[i, j] == pytest.approx(k, rel=1e-10, abs=0)
        assert r.ntk[i, j] == pytest.approx(t, rel=1e-10, abs=0)


def test_result_records_its_inputs(data):
    r = kernels("erf", 1.1, 0.0, 2, data, parameterization="standard", width=100)
    assert (r.activation, r.sigma_w, r.sigma_b, r.depth, r.width, r.parameterization) == ("erf", 1.1, 0.0, 2, 100.0,
                                                                                          "standard")
    assert r.error == 0.0 and r.entries["closed"] == 2 * 15


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma_w=-1.0), "sigma_w"),
        (dict(sigma_b=-0.1), "sigma_b"),
        (dict(depth=-1), "depth"),
        (dict(parameterization="mup"), "parameterization"),
        (dict(X=np.zeros((0, 3))), "X"),
        (dict(X2=np.ones((2, 4))), "X2"),
        (dict(X=np.array([[np.nan, 1.0, 0.0]])), "X"),
        (dict(X=np.zeros((2, 3)), sigma_b=0.0), "zero"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(phi="tanh", sigma_w=1.0, sigma_b=0.1, depth=2, X=np.ones((2, 3)))
    args.update(kwargs)
    with pytest.raises(mf.InvalidParameterError, match=match):
        kernels(**args)


# ---------------------------------------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(11)
    Xtr = rng.normal(size=(9, 4))
    Xte = rng.normal(size=(5, 4))
    y = np.sin(Xtr[:, :2])  # two outputs
    args = ("erf", 1.4, 0.2, 2)
    return (kernels(*args, Xtr), kernels(*args, Xte, Xtr), kernels(*args, Xte), y)


def _direct(Kdd, Ktd, Ktt, Tdd, Ttd, y, t, reg):
    """Lee et al. 2019 eqs. 13–16 with explicit inverses and matrix exponentials (scipy.linalg.expm), m = y.size."""
    from scipy.linalg import expm

    m = y.size
    n = Kdd.shape[0]
    Kr = Kdd + reg * np.trace(Kdd) / n * np.eye(n)
    Tr = Tdd + reg * np.trace(Tdd) / n * np.eye(n)
    Ki, Ti = np.linalg.inv(Kr), np.linalg.inv(Tr)
    if t is None:
        Ek = Et = E2 = np.eye(n)
    else:
        Ek = np.eye(n) - expm(-Kr * t / m)
        Et = np.eye(n) - expm(-Tr * t / m)
        E2 = np.eye(n) - expm(-2 * Kr * t / m)
    A = Ttd @ Ti @ Et
    return (
        Ktd @ Ki @ Ek @ y,
        A @ y,
        Ktt - Ktd @ Ki @ E2 @ Ktd.T,
        Ktt + A @ Kdd @ A.T - A @ Ktd.T - Ktd @ A.T,
    )


@pytest.mark.parametrize("t, reg", [(None, 0.0), (None, 1e-3), (0.5, 0.0), (64.0, 1e-2), (0.0, 0.0)])
def test_predict_against_direct_formulas(regression, t, reg):
    kdd, ktd, ktt, y = regression
    got = predict(kdd, ktd, y, t=t, diag_reg=reg, k_test_test=ktt)
    want = _direct(kdd.nngp, ktd.nngp, ktt.nngp, kdd.ntk, ktd.ntk, y, t, reg)
    for g, w in zip((got.nngp_mean, got.ntk_mean, got.nngp_covariance, got.ntk_covariance), want):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10 * np.abs(w).max())


def test_predict_times_and_limits(regression):
    kdd, ktd, ktt, y = regression
    ts = np.array([0.0, 1.0, 8.0, 1e9])
    got = predict(kdd, ktd, y, t=ts, k_test_test=ktt, learning_rate=0.5)
    inf = predict(kdd, ktd, y, k_test_test=ktt)
    assert got.ntk_mean.shape == (4, 5, 2) and got.ntk_covariance.shape == (4, 5, 5)
    np.testing.assert_array_equal(got.ntk_mean[0], 0.0)  # nothing learnt at t = 0: the prior
    np.testing.assert_allclose(got.nngp_covariance[0], ktt.nngp, rtol=1e-14)
    np.testing.assert_allclose(got.ntk_mean[-1], inf.ntk_mean, rtol=1e-7)  # t → ∞
    np.testing.assert_allclose(got.nngp_covariance[-1], inf.nngp_covariance, atol=1e-8)
    one = predict(kdd, ktd, y, t=4.0)  # time is scaled by the learning rate: 8 × 0.5
    np.testing.assert_allclose(got.ntk_mean[2], one.ntk_mean, rtol=1e-13)
    # training inputs are interpolated at t = ∞
    np.testing.assert_allclose(predict(kdd, kdd, y).ntk_mean, y, atol=1e-9)


def test_predict_rejects_singular_kernels():
    X = np.ones((3, 2))  # three equal inputs: a rank-one kernel
    k = kernels("erf", 1.0, 0.1, 1, X)
    with pytest.raises(mf.NumericalError, match="diag_reg"):
        predict(k, k, np.arange(3.0))
    got = predict(k, k, np.arange(3.0), diag_reg=1e-6)
    assert np.all(np.isfinite(got.ntk_mean))


def test_public_names_and_network(data):
    """mf.kernels / mf.predict resolve (lazily) to the functions; a uniform mf.Network gives the same kernels."""
    assert callable(mf.kernels) and callable(mf.predict)
    assert mf.Kernels is mf.kernels("erf", 1.0, 0.1, 1, data).__class__
    net = mf.Network.uniform("tanh", 1.3, 0.2, 3, width=50, input_width=data.shape[1])
    a = mf.kernels("tanh", 1.3, 0.2, 3, data, parameterization="standard", width=50)
    b = mf.kernels(net, data, parameterization="standard")
    np.testing.assert_array_equal(a.nngp, b.nngp)
    np.testing.assert_array_equal(a.ntk, b.ntk)


def test_network_with_layers_that_differ(data):
    """Per-layer σ_w, σ_b, activations: the recursion of THEORY §7 with layer l's own parameters (THEORY §8), here
    erf then linear, so that the reference is closed form: K^2 = σ_2² (2/π) asin(2K^1/√((1+2q)(1+2q'))) + σ_b2², …"""
    net = mf.Network((data.shape[1], 30, 60, 1), (0.7, 1.5, 0.9), (0.1, 0.3, 0.0), ("erf", "linear"))
    r = mf.kernels(net, data)
    G = data @ data.T / data.shape[1]
    K1 = 0.49 * G + 0.01
    d = np.sqrt(1 + 2 * np.diag(K1))
    K1h = 2 / np.pi * np.arcsin(np.clip(2 * K1 / np.outer(d, d), -1, 1))
    K1d = 4 / np.pi / np.sqrt(np.outer(d, d) ** 2 - 4 * K1**2 + np.eye(len(d)) * 0)
    np.fill_diagonal(K1d, 4 / np.pi / np.sqrt(1 + 4 * np.diag(K1)))
    K2 = 2.25 * K1h + 0.09
    K3 = 0.81 * K2
    T2 = K2 + 2.25 * K1d * K1
    T3 = K3 + 0.81 * T2
    np.testing.assert_allclose(r.nngp, K3, rtol=1e-13)
    np.testing.assert_allclose(r.ntk, T3, rtol=1e-13)
    assert r.sigma_w == (0.7, 1.5, 0.9) and r.activation == "erf/linear"


def test_predict_with_plain_arrays_and_bad_input(regression):
    """A 2-D array is one kernel, used for both means (no NTK covariance); shapes and times are checked."""
    kdd, ktd, ktt, y = regression
    got = predict(kdd.ntk, ktd.ntk, y[:, 0], t=3.0, k_test_test=ktt.nngp)
    want = predict(kdd, ktd, y[:, 0], t=3.0)
    np.testing.assert_allclose(got.ntk_mean, want.ntk_mean, rtol=1e-12)
    np.testing.assert_array_equal(got.nngp_mean, got.ntk_mean)
    assert got.ntk_covariance is None and got.nngp_covariance.shape == (5, 5)
    with pytest.raises(mf.InvalidParameterError, match="t must"):
        predict(kdd, ktd, y, t=-1.0)
    with pytest.raises(mf.InvalidParameterError, match="y_train"):
        predict(kdd, ktd, y[:-1])
    with pytest.raises(mf.InvalidParameterError, match="k_test_train"):
        predict(kdd, ktd.nngp.T, y)


def _sin_pair(q1, q2, q12):
    """E sin(u) sin(v) and E cos(u) cos(v) for the centred Gaussian pair (closed forms: E e^{i(u ± v)})."""
    lo, hi = math.exp(-0.5 * (q1 + q2 - 2.0 * q12)), math.exp(-0.5 * (q1 + q2 + 2.0 * q12))
    return 0.5 * (lo - hi), 0.5 * (lo + hi)


@pytest.mark.parametrize("q, rho", [(1.0, 0.5), (16.0, 0.9), (100.0, 0.99), (100.0, -0.3)])
def test_sin_kernel_matches_the_closed_form(q, rho):
    # depth 1, σ_w = 1, σ_b = 0, N_0 = 2: q = |x|²/2; K = E sin u sin v, the NTK adds K̇ q12 with K̇ = E cos u cos v
    a = math.sqrt(2.0 * q)
    X = np.array([[a, 0.0]])
    X2 = np.array([[a * rho, a * math.sqrt(1.0 - rho * rho)]])
    k = mf.kernels("sin(x)", 1.0, 0.0, depth=1, X=X, X2=X2)
    ss, cc = _sin_pair(q, q, rho * q)
    assert k.nngp[0, 0] == pytest.approx(ss, abs=1e-12)
    assert k.ntk[0, 0] == pytest.approx(ss + cc * rho * q, abs=1e-11 * max(1.0, q))


@pytest.mark.parametrize("q, rho", [(2000.0, 0.999), (1e5, 0.99), (1500.0, 0.5)])
def test_sin_kernel_at_large_q_raises_instead_of_aliasing(q, rho):
    # sin(√q z) has its Hermite spectrum near degree q, beyond the largest Gauss–Hermite table: the tables' aliased
    # coefficients still met Parseval's identity (their squares sum to E sin² = 1/2), and kernels returned e.g. 0.34469
    # for 0.067668 (q = 2000, ρ = 0.999) with error 1e-13. Integration by parts now rejects them; the quadrature cannot
    # resolve the oscillation either, so the call raises
    a = math.sqrt(2.0 * q)
    X = np.array([[a, 0.0]])
    X2 = np.array([[a * rho, a * math.sqrt(1.0 - rho * rho)]])
    with pytest.raises(mf.NumericalError):
        mf.kernels("sin(x)", 1.0, 0.0, depth=1, X=X, X2=X2)


def test_aliased_hermite_tables_are_rejected():
    from meanfield import _mehler
    from meanfield.activations import get_activation

    act = get_activation("sin(x)")
    qs = np.array([100.0, 2000.0, 1e5])
    phi2 = 0.5 * (1.0 - np.exp(-2.0 * qs))  # E sin²(√q z), E cos²(√q z)
    mu1 = 0.5 * (1.0 + np.exp(-2.0 * qs))
    _, _, nterms = _mehler.mehler_coefficients(act.kernels, qs, phi2, mu1)
    assert nterms[0] > 0 and nterms[1] == 0 and nterms[2] == 0


@pytest.mark.parametrize("phi", ["relu", "hard_tanh", "Max(0, x)"])
def test_a_test_input_that_repeats_a_training_input(phi):
    # X2 holding inputs of X: ρ = 1 exactly for those pairs; the Gram product and the norms used to round differently,
    # and through the layers a kinked φ turned that ulp of ρ into 1e-8 of the NTK entry (error reported 6e-11)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 10))
    X2 = np.vstack([X[::-1], rng.standard_normal(10)])
    k = kernels(phi, 1.4, 0.1, 3, X, X2)
    for i in range(20):
        ref = reference_pair(ACTS[phi], 1.4, 0.1, 3, X[i], X2[19 - i])
        assert k.nngp[i, 19 - i] == pytest.approx(ref[0], rel=1e-12)
        assert k.ntk[i, 19 - i] == pytest.approx(ref[1], rel=1e-12)
