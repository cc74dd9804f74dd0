"""``jacobian_spectrum`` of a per-layer :class:`meanfield.Network` (THEORY §2, §8; issue 13 item 2).

References written here: the length map and the moments μ_k = E_q[φ'^{2k}] by scipy quadrature; the mean
of JJᵀ, ``Π_l (σ_w^l)² μ_1,l(q^l)`` (THEORY §8), and its normalised variance, which adds over free factors: the
S-transform of a law divided by its mean is ``1 - v m + O(m²)`` with v its normalised variance, S-transforms multiply,
so ``Var(JJᵀ)/m_1² = Σ_l (μ_2,l/μ_1,l² - 1) + k`` with k the number of Gaussian W (each W Wᵀ/σ² is Marchenko–Pastur of
ratio 1, normalised variance 1) (Pennington, Schoenholz & Ganguli 2018, eq. for the variance from S_1); sampled
networks J = D_L W^L ⋯ D_1 W^1 of width 500 with statistically sized tolerances (seeded; passed on 4 seeds).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import InvalidParameterError
from meanfield.spectra import _tail_log_edges, jacobian_spectrum

def gauss_expect(f, q):
    """E f(h), h ~ N(0, q), by adaptive quadrature (scipy ``quad``, 1e-13 relative) over |h| ≤ 12√q in z = h/√q
    (Gauss–Hermite converges too slowly here: tanh's poles at ±iπ/2 cost it 2e-10 at q = 3.4 with 240 nodes)."""
    from scipy import integrate

    sq = math.sqrt(q)
    g = lambda z: float(f(np.array([sq * z]))[0]) * math.exp(-0.5 * z * z)  # noqa: E731
    parts = [integrate.quad(g, a, b, epsabs=0.0, epsrel=1e-13, limit=200)[0] for a, b in ((-12, 0), (0, 12))]
    return sum(parts) / math.sqrt(2.0 * math.pi)


def reference_trajectory(acts, sws, sbs, q0):
    """q^1 = (σ_w^1)² q0 + (σ_b^1)², q^{l+1} = (σ_w^{l+1})² E_{q^l}[φ_l²] + (σ_b^{l+1})² (THEORY §8)."""
    q = [sws[0] ** 2 * q0 + sbs[0] ** 2]
    for l in range(len(acts) - 1):
        a = mf.get_activation(acts[l])
        q.append(sws[l + 1] ** 2 * gauss_expect(lambda u: a.phi(u) ** 2, q[-1]) + sbs[l + 1] ** 2)
    return np.array(q)


def reference_mean_and_rel_var(acts, sws, sbs, kinds, q0):
    q = reference_trajectory(acts, sws, sbs, q0)
    mean, rv = 1.0, 0.0
    for a, sw, ql, k in zip(acts, sws, q, kinds):
        act = mf.get_activation(a)
        mu1 = gauss_expect(lambda u: act.dphi(u) ** 2, ql)
        mu2 = gauss_expect(lambda u: act.dphi(u) ** 4, ql)
        mean *= sw**2 * mu1
        rv += mu2 / mu1**2 - 1.0 + (1.0 if k == "gaussian" else 0.0)
    return q, mean, rv


SW, SB = 1.3, 0.1  # round values; per-layer multiples below


# ------------------------------------------------------------------------------------------------ uniform networks
@pytest.mark.parametrize("phi", ["tanh", "relu", "erf", "gelu"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_uniform_network_is_the_uniform_call_bitwise(phi, weights):
    sw, sb = (math.sqrt(2.0), 0.0) if phi == "relu" else (1.25, 0.125)
    L = 5
    ref = jacobian_spectrum(phi, sw, sb, L, weights=weights, q0=0.75)
    ref_star = jacobian_spectrum(phi, sw, sb, L, weights=weights) if phi != "gelu" else None
    nets = [
        mf.Network.uniform(phi, sw, sb, L, 200, output_width=10, weights=weights),
        # built per layer, all layers equal
        mf.Network((200,) * (L + 1) + (10,), [sw] * (L + 1), [sb] * (L + 1), [phi] * L, [weights] * (L + 1)),
    ]
    if weights == "orthogonal":  # a wider orthogonal first layer: W^1 W^1ᵀ = σ_w² I exactly, the same law
        nets.append(mf.Network.uniform(phi, sw, sb, L, 200, input_width=300, output_width=10, weights=weights))
    x = np.linspace(0.0, ref.edge, 23)[1:-1]
    for net in nets:
        s = jacobian_spectrum(net, q0=0.75)
        assert s.network == net.to_dict()
        assert (s.activation, s.sigma_w, s.sigma_b, s.depth, s.weights) == (ref.activation, sw, sb, L, weights)
        np.testing.assert_array_equal(s.q, ref.q)
        assert (s.mean, s.edge, s.variance, s.support, s.atoms) == (ref.mean, ref.edge, ref.variance, ref.support,
                                                                    ref.atoms)
        assert [s.moment(k) for k in range(1, 9)] == [ref.moment(k) for k in range(1, 9)]
        np.testing.assert_array_equal(s.density(x), ref.density(x))
        if ref_star is not None:
            t = jacobian_spectrum(net)  # q0=None: the uniform call at q*
            assert (t.mean, t.edge, t.variance) == (ref_star.mean, ref_star.edge, ref_star.variance)
            np.testing.assert_array_equal(t.q, ref_star.q)


def test_a_different_readout_does_not_enter_J():
    net = mf.Network((100,) * 4 + (3,), [1.2, 1.2, 1.2, 0.5], [0.1, 0.1, 0.1, 0.0], "tanh", "orthogonal",
                     biases=[True, True, True, False])
    ref = jacobian_spectrum("tanh", 1.2, 0.1, 3, q0=2.0)
    s = jacobian_spectrum(net, q0=2.0)
    assert (s.mean, s.edge, s.variance) == (ref.mean, ref.edge, ref.variance)
    assert math.isnan(s.sigma_w) and math.isnan(s.sigma_b)  # the summary: the readout's σ differ
    assert s.network["sigma_w"] == [1.2, 1.2, 1.2, 0.5]


def test_network_result_round_trips_through_json():
    net = mf.Network((64,) * 4 + (10,), [SW, 0.9 * SW, 1.1 * SW, 1.0], SB, ["tanh", "erf", "tanh"],
                     ["orthogonal", "gaussian", "orthogonal", "gaussian"])
    s = jacobian_spectrum(net, q0=1.0)
    data = json.loads(s.to_json())
    assert data["network"] == net.to_dict()
    assert mf.Network.from_dict(data["network"]) == net
    assert data["weights"] == "mixed" and data["activation"] == "tanh,erf,tanh"


# ------------------------------------------------------------------------------------------------ per-layer laws
PER_LAYER = [
    ("tanh-erf-orth", ["tanh", "erf", "tanh", "erf"], [1.3, 0.9, 1.5, 1.1], [0.1, 0.2, 0.0, 0.05], ["orthogonal"] * 4),
    ("tanh-erf-gauss", ["tanh", "erf", "tanh", "erf"], [1.3, 0.9, 1.5, 1.1], [0.1, 0.2, 0.0, 0.05], ["gaussian"] * 4),
    ("mixed-kinds", ["tanh", "tanh", "erf"], [1.0, 1.6, 1.2], [0.0, 0.1, 0.3], ["gaussian", "orthogonal", "gaussian"]),
    ("sigma-w-only", ["tanh"] * 5, [1.0, 1.25, 1.5, 1.75, 2.0], [0.1] * 5, ["orthogonal"] * 5),
    ("softplus-relu", ["softplus", "relu", "softplus"], [1.1, 1.4, 0.8], [0.2, 0.0, 0.1], ["orthogonal"] * 3),
]


def _net(acts, sws, sbs, kinds, n=128, readout=0.7):
    L = len(acts)
    return mf.Network((n,) * (L + 1) + (10,), list(sws) + [readout], list(sbs) + [0.0], acts, list(kinds) + ["gaussian"],
                      biases=[b > 0.0 for b in sbs] + [False])


@pytest.mark.parametrize("case", [c[1:] for c in PER_LAYER], ids=[c[0] for c in PER_LAYER])
@pytest.mark.parametrize("q0", [0.25, 2.0])
def test_mean_and_variance_are_the_free_product(case, q0):
    acts, sws, sbs, kinds = case
    s = jacobian_spectrum(_net(acts, sws, sbs, kinds), q0=q0)
    q, mean, rv = reference_mean_and_rel_var(acts, sws, sbs, kinds, q0)
    np.testing.assert_allclose(s.q, q, rtol=1e-11)
    assert s.mean == pytest.approx(mean, rel=1e-10)
    assert s.variance == pytest.approx(rv * mean**2, rel=1e-9)
    assert s.moment(2) == pytest.approx(mean**2 * (1.0 + rv), rel=1e-10)
    # the moments bound the edge from below (m_k ≤ λ_max m_{k-1}), and the operator norms from above
    assert s.moment(8) / s.moment(7) <= s.edge * (1 + 1e-9)
    top = 1.0
    for a, sw, k in zip(acts, sws, kinds):
        d = mf.get_activation(a).dphi(np.linspace(-50, 50, 200001)) ** 2
        top *= sw**2 * d.max() * (4.0 if k == "gaussian" else 1.0)
    assert s.edge <= top * (1 + 1e-9)


def test_two_laws_mean_is_the_product_of_the_layers():
    # a two-layer network whose layers differ in everything: m_1 = (σ_w^1)² μ_1,tanh(q^1) (σ_w^2)² μ_1,erf(q^2)
    net = mf.Network((50, 50, 50, 1), [2.0, 0.5, 1.0], [0.25, 0.5, 0.0], ["tanh", "erf"], ["orthogonal", "gaussian",
                                                                                          "gaussian"],
                     biases=[True, True, False])
    s = jacobian_spectrum(net, q0=0.5)
    q1 = 4.0 * 0.5 + 0.0625
    q2 = 0.25 * gauss_expect(lambda u: np.tanh(u) ** 2, q1) + 0.25
    m = 4.0 * gauss_expect(lambda u: (1 - np.tanh(u) ** 2) ** 2, q1) * 0.25 * gauss_expect(
        lambda u: 4.0 / math.pi * np.exp(-2.0 * u * u), q2)
    assert s.mean == pytest.approx(m, rel=1e-11)
    assert s.weights == "mixed" and s.activation == "tanh,erf"


@pytest.mark.parametrize("kinds", [["orthogonal"] * 3, ["gaussian"] * 3, ["gaussian", "orthogonal", "orthogonal"]])
def test_density_integrates_to_the_moments(kinds):
    acts, sws, sbs = ["tanh", "erf", "tanh"], [1.3, 0.9, 1.5], [0.1, 0.2, 0.0]
    s = jacobian_spectrum(_net(acts, sws, sbs, kinds), q0=1.0)
    # substitution x = edge·u^p resolves the x^{-L/(L+1)} pile-up at 0 of Gaussian products; Gauss–Legendre in u
    p = 8.0
    u, w = np.polynomial.legendre.leggauss(400)
    u, w = 0.5 * (u + 1.0), 0.5 * w
    cuts = np.linspace(0.0, 1.0, 9)
    uu = np.concatenate([a + (b - a) * u for a, b in zip(cuts[:-1], cuts[1:])])
    ww = np.concatenate([(b - a) * w for a, b in zip(cuts[:-1], cuts[1:])])
    x = s.edge * uu**p
    dx = s.edge * p * uu ** (p - 1.0) * ww
    rho = s.density(x)
    assert np.all(np.isfinite(rho)) and np.all(rho >= 0.0)
    atoms = s.atoms
    assert np.sum(rho * dx) + sum(m for _, m in atoms) == pytest.approx(1.0, abs=2e-4)
    assert np.sum(x * rho * dx) + sum(a * m for a, m in atoms) == pytest.approx(s.mean, rel=2e-4)
    assert np.sum(x * x * rho * dx) + sum(a * a * m for a, m in atoms) == pytest.approx(s.moment(2), rel=2e-4)


# ------------------------------------------------------------------------------------------------ sampled networks
def sample_network_eigenvalues(acts, sws, sbs, kinds, widths, q0, rng):
    """Eigenvalues of JJᵀ for one draw of the per-layer network (THEORY §0, §8), input with |x|²/N_0 = q0."""
    n0 = widths[0]
    x = rng.standard_normal(n0)
    x *= math.sqrt(q0 * n0) / np.linalg.norm(x)
    J = np.eye(n0)
    for l, (a, sw, sb, k) in enumerate(zip(acts, sws, sbs, kinds)):
        act = mf.get_activation(a)
        n_in, n_out = widths[l], widths[l + 1]
        if k == "gaussian":
            W = rng.normal(0.0, sw / math.sqrt(n_in), (n_out, n_in))
        else:
            Q, R = np.linalg.qr(rng.standard_normal((max(n_in, n_out), min(n_in, n_out))))
            Q = Q * np.sign(np.diag(R))
            O = Q.T if n_in > n_out else Q
            W = sw * math.sqrt(max(n_in, n_out) / n_in) * O
        h = W @ x + rng.normal(0.0, sb, n_out)
        J = act.dphi(h)[:, None] * (W @ J)
        x = act.phi(h)
    return np.linalg.svd(J, compute_uv=False) ** 2


def theory_cdf(s, xs):
    """P(λ ≤ x) from the density (trapezoid in u, x = edge·u^p) plus the atoms."""
    p = 2.0 * (s.depth + 1)
    u = np.linspace(0.0, 1.0, 6001)
    grid = s.edge * u**p
    dens = s.density(grid) * s.edge * p * u ** (p - 1.0)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(u))])
    return np.interp(xs, grid, cum) + sum(m for loc, m in s.atoms if loc <= 0.0)


SAMPLED = [
    # alternating activations and σ_w, orthogonal, a wider orthogonal first layer
    ("tanh-erf-orth", ["tanh", "erf", "tanh", "erf"], [1.3, 0.9, 1.5, 1.1], [0.1, 0.2, 0.0, 0.05],
     ["orthogonal"] * 4, 750),
    # mixed weight kinds
    ("tanh-erf-mixed", ["tanh", "erf", "tanh"], [1.2, 1.0, 1.4], [0.1, 0.2, 0.1],
     ["gaussian", "orthogonal", "gaussian"], 500),
]


@pytest.mark.parametrize("case", [c[1:] for c in SAMPLED], ids=[c[0] for c in SAMPLED])
def test_sampled_networks(case):
    acts, sws, sbs, kinds, n0 = case
    n, L = 500, len(acts)
    widths = (n0,) + (n,) * L + (10,)
    net = mf.Network(widths, sws + [1.0], sbs + [0.0], acts, kinds + ["gaussian"], biases=[True] * L + [False])
    s = jacobian_spectrum(net, q0=1.0)
    rng = np.random.default_rng(20261206)
    draws = [sample_network_eigenvalues(acts, sws, sbs, kinds, widths, 1.0, rng) for _ in range(4)]
    lam = np.concatenate(draws)
    # the scale: tr JJᵀ/N of one draw moves by ~4 % (measured over seeds at N = 600: the biases and the input are
    # drawn once, and φ'² of a saturating unit varies a lot), so the mean of 4 draws by ~2-3 % (N = 500): loose
    assert np.mean(lam) == pytest.approx(s.mean, rel=0.12)
    # the shape, each draw divided by its own mean: quantiles through the theory's CDF
    r = np.concatenate([d / np.mean(d) for d in draws])
    for p in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert theory_cdf(s, np.quantile(r, p) * s.mean) == pytest.approx(p, abs=0.03)
    assert np.var(r) == pytest.approx(s.variance / s.mean**2, rel=0.1)
    # the edge: the largest eigenvalue of a draw sits within N^{-2/3}-size fluctuations of it (the mean of the largest
    # normalised eigenvalues over 4 draws)
    top = np.mean([d.max() / np.mean(d) for d in draws])
    assert top == pytest.approx(s.edge / s.mean, rel=0.08)


# ------------------------------------------------------------------------------------------------ refusals
def test_network_parameters_may_not_be_given_twice():
    net = _net(["tanh", "erf"], [1.2, 1.1], [0.1, 0.1], ["orthogonal"] * 2)
    with pytest.raises(InvalidParameterError, match="sigma_w is given by the network"):
        jacobian_spectrum(net, 1.2, q0=1.0)
    with pytest.raises(InvalidParameterError, match="depth, weights are given by the network"):
        jacobian_spectrum(net, depth=2, weights="gaussian", q0=1.0)
    with pytest.raises(InvalidParameterError, match="q0"):
        jacobian_spectrum(net)  # the layers differ: no common q*
    with pytest.raises(InvalidParameterError, match="sigma_b, depth"):
        jacobian_spectrum("tanh", 1.0)


def test_shapes_the_law_does_not_describe_are_refused():
    with pytest.raises(InvalidParameterError, match="layer 3 .*square hidden layers"):
        jacobian_spectrum(mf.Network((64, 64, 64, 32, 1), 1.2, 0.1, "tanh", "orthogonal"), q0=1.0)
    with pytest.raises(InvalidParameterError, match="layer 1 is Gaussian 128 → 64"):
        jacobian_spectrum(mf.Network((128, 64, 64, 1), 1.2, 0.1, "tanh", "gaussian"), q0=1.0)
    with pytest.raises(InvalidParameterError, match="layer 1 is orthogonal 32 → 64"):
        jacobian_spectrum(mf.Network((32, 64, 64, 1), 1.2, 0.1, "tanh", "orthogonal"), q0=1.0)
    # the readout's shape and kind do not matter
    s = jacobian_spectrum(mf.Network((64, 64, 64, 3), 1.2, 0.1, "tanh", ["orthogonal"] * 2 + ["gaussian"]), q0=1.0)
    assert s.depth == 2


# ------------------------------------------------------------------------------------------------ tails of a chain
def test_tail_log_edges_per_layer():
    """Tail i of a per-layer chain is the spectrum of the network made of layers i..L, whose first layer is fed the
    q0 that reproduces q^i: (σ_w^i)² q0 + (σ_b^i)² = q^i."""
    acts = ["tanh", "erf", "tanh", "erf", "tanh"]
    sws = [1.3, 0.9, 1.5, 1.1, 1.2]
    sbs = [0.1, 0.2, 0.0, 0.05, 0.1]
    kinds = ["gaussian", "orthogonal", "orthogonal", "gaussian", "orthogonal"]
    full = jacobian_spectrum(_net(acts, sws, sbs, kinds), q0=1.0)
    tails = _tail_log_edges(acts, sws, full.q, [k == "gaussian" for k in kinds])
    for i in range(len(acts)):
        q0 = (full.q[i] - sbs[i] ** 2) / sws[i] ** 2
        sub = _net(acts[i:], sws[i:], sbs[i:], kinds[i:])
        ref = jacobian_spectrum(sub, q0=q0) if len(acts) - i > 1 else None
        if ref is None:  # one layer: uniform, the uniform call
            ref = jacobian_spectrum(acts[i], sws[i], sbs[i], 1, weights=kinds[i], q0=q0)
        assert tails[i] == pytest.approx(ref.log_edge, rel=1e-10, abs=1e-12)


def test_tail_log_edges_scalar_and_sequence_forms_agree():
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    q = jacobian_spectrum("tanh", sw, sb, 12, q0=1.0).q
    act = mf.get_activation("tanh")
    for g in (False, True):
        a = _tail_log_edges(act, sw, q, g)
        b = _tail_log_edges(["tanh"] * 12, [sw] * 12, q, [g] * 12)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidParameterError, match="sigma_w has 3 entries"):
        _tail_log_edges(act, [sw] * 3, q, False)


def test_edge_where_a_law_cannot_reach_m_equal_1():
    # alternating tanh and GELU layers entered at q0 = 3: the GELU laws at small q carry next to no mass at their top
    # (the maximum of φ' lies ~7 standard deviations out), so m = 1, where the edge search starts, is beyond their reach.
    # The search used to take that point as a hard edge (log λ_max/m_1 = 61, refused by the moment bounds); it now
    # steps down to where every law reaches m. Checked against sampled networks (N = 500, 3 draws, Haar weights): the
    # mean within 5 %, the second moment within 10 %, the largest eigenvalue between 0.85 and 1.05 of the edge (a finite
    # sample's largest sits below the edge)
    from scipy.stats import norm, ortho_group

    L, N = 12, 500
    acts = ["tanh", "gelu"] * (L // 2)
    sws = [1.02 if a == "tanh" else 1.3 for a in acts]
    s = mf.jacobian_spectrum(mf.Network([N] * (L + 1) + [10], sws + [1.0], 0.05, acts, weights="orthogonal"), q0=3.0)
    rng = np.random.default_rng(7)
    top, means, m2 = [], [], []
    for _ in range(3):
        x = rng.standard_normal(N)
        x *= np.sqrt(3.0 * N) / np.linalg.norm(x)
        J = np.eye(N)
        for a, sw in zip(acts, sws):
            W = sw * ortho_group.rvs(N, random_state=rng)
            h = W @ x + 0.05 * rng.standard_normal(N)
            d = 1.0 - np.tanh(h) ** 2 if a == "tanh" else norm.cdf(h) + h * norm.pdf(h)
            x = np.tanh(h) if a == "tanh" else h * norm.cdf(h)
            J = (d[:, None] * W) @ J
        ev = np.linalg.eigvalsh(J @ J.T)
        top.append(ev[-1])
        means.append(ev.mean())
        m2.append(np.mean(ev**2))
    assert np.mean(means) == pytest.approx(s.mean, rel=0.05)
    assert np.mean(m2) == pytest.approx(s.moment(2), rel=0.10)
    assert 0.85 * s.edge <= max(top) <= 1.05 * s.edge
    assert s.density(0.5 * s.edge) > 0.0
