"""A user's own model: mf.Network, read_network, the per-layer theory, initialize_ and describe.

References: the uniform theory of meanfield (fisher_statistics, jacobian_spectrum, critical_point), itself tested
against THEORY's reference values; THEORY §8 for the estimators' standard errors; THEORY §2's tanh q* = 1/64 row
(σ_w = 1.0151637852, σ_b = 2.1566949868e-3)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import empirical as emp
import meanfield as mf
from empirical.experiments import correlated_inputs
from empirical.describe import measured_records
from empirical.reading import layer_theory
from meanfield.errors import InvalidParameterError, NoCriticalPointError


def _mlp(depth, width, act=nn.Tanh, n0=None, out=1, bias=True):
    layers = [nn.Linear(n0 or width, width, bias=bias)]
    for _ in range(depth - 1):
        layers += [act(), nn.Linear(width, width, bias=bias)]
    layers += [act(), nn.Linear(width, out, bias=bias)]
    return nn.Sequential(*layers).double()


# ------------------------------------------------------------------------------------------------------- mf.Network
def test_network_validates_and_broadcasts():
    n = mf.Network((10, 20, 30, 2), (1.1, 1.2, 0.9), 0.1, ["tanh", "relu"], "orthogonal")
    assert n.depth == 2 and n.hidden_widths == (20, 30) and n.output_width == 2
    assert n.sigma_b == (0.1, 0.1, 0.1) and n.weights == ("orthogonal",) * 3
    assert n.activations == (mf.get_activation("tanh"), mf.get_activation("relu"))
    assert not n.is_uniform and "φ=relu" in repr(n)
    u = mf.Network.uniform("tanh", 1.0, 0.05, 4, 100, output_width=3)
    assert u.is_uniform and u.widths == (100, 100, 100, 100, 100, 3)
    assert "Network.uniform('tanh'" in repr(u)
    with pytest.raises(AttributeError):
        u.sigma_w = (1.0,)  # frozen
    with pytest.raises(InvalidParameterError, match="sigma_w has 2 entries"):
        mf.Network((3, 4, 5, 1), (1.0, 1.0), 0.0, "tanh")
    with pytest.raises(InvalidParameterError, match="sigma_b"):
        mf.Network((3, 4, 1), 1.0, -0.1, "tanh")
    with pytest.raises(InvalidParameterError, match="weights"):
        mf.Network((3, 4, 1), 1.0, 0.1, "tanh", "uniform")
    with pytest.raises(InvalidParameterError, match="no bias"):
        mf.Network((3, 4, 1), 1.0, 0.1, "tanh", biases=False)


# --------------------------------------------------------------------------------------------- per-layer theory
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_layer_theory_of_a_uniform_network_is_the_uniform_theory(weights):
    """The per-layer sums reduce to meanfield.fisher_statistics / jacobian_spectrum for equal layers."""
    n = mf.Network.uniform("tanh", 1.3, 0.2, 4, 100, input_width=50, output_width=2, weights=weights)
    lt = layer_theory(n, input_norm=0.7, input_correlation=0.3, n_samples=8)
    fs = mf.fisher_statistics("tanh", 1.3, 0.2, 4, 100, 8, n_outputs=2, input_width=50, input_norm=0.7,
                              input_correlation=0.3, weights=weights)
    assert lt.n_parameters == fs.n_parameters
    for a, b in ((lt.lambda_max, fs.lambda_max), (lt.mean_eigenvalue, fs.mean_eigenvalue),
                 (lt.bulk_eigenvalue, fs.bulk_eigenvalue)):
        assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(lt.q, fs.q[1:5], rtol=1e-12)
    js = mf.jacobian_spectrum("tanh", 1.3, 0.2, 4, weights=weights, q0=0.7)
    assert lt.jacobian_mean == pytest.approx(js.mean, rel=1e-12)


def test_layer_theory_per_layer_sigma():
    """Different σ per layer: q^l by hand from meanfield.q_map, gain product by hand (THEORY §8)."""
    n = mf.Network((6, 8, 9, 1), (0.9, 1.4, 1.0), (0.1, 0.3, 0.0), ["tanh", "erf"])
    lt = layer_theory(n, input_norm=2.0)
    q1 = 0.81 * 2.0 + 0.01
    q2 = float(mf.q_map("tanh", q1, 1.4, 0.3))
    np.testing.assert_allclose(lt.q, [q1, q2], rtol=1e-14)
    mu_a = float(mf.gaussian_moments("tanh", q1).mu1)
    mu_b = 4 / math.pi / math.sqrt(1 + 4 * q2)  # erf: μ_1 closed form (THEORY §1 table)
    assert lt.jacobian_mean == pytest.approx(0.81 * mu_a * 1.96 * mu_b, rel=1e-10)


# --------------------------------------------------------------------------------------------------- read_network
def test_read_network_of_a_random_mlp():
    net = emp.RandomMLP(200, 300, 3, 5, "tanh", 1.3, 0.2, weights="gaussian", generator=0)
    nw = emp.read_network(net)
    assert nw.widths == (200, 300, 300, 300, 5) and nw.weights[:-1] == ("gaussian",) * 3
    # estimates within 4 of their standard errors, errors as THEORY §8 says: σ_w/√(2 N_l N_{l-1}), σ_b/√(2 N_l)
    for l in range(3):
        assert abs(nw.sigma_w[l] - 1.3) <= 4 * nw.sigma_w_error[l]
        assert nw.sigma_w_error[l] == pytest.approx(1.3 / math.sqrt(2 * 300 * net.widths[l]), rel=0.15)
        assert abs(nw.sigma_b[l] - 0.2) <= 4 * nw.sigma_b_error[l]
        assert nw.sigma_b_error[l] == pytest.approx(0.2 / math.sqrt(2 * 300), rel=0.2)
    orth = emp.read_network(emp.RandomMLP(64, (96, 48), 2, 3, "relu", 1.2, 0.0, weights="orthogonal", generator=1))
    assert orth.weights == ("orthogonal",) * 3
    np.testing.assert_allclose(orth.sigma_w, 1.2, rtol=1e-12)  # exact: W Wᵀ ∝ I
    assert orth.sigma_w_error == (0.0, 0.0, 0.0) and orth.sigma_b == (0.0, 0.0, 0.0)


def test_read_network_of_pytorch_default_init():
    """kaiming_uniform_(a=√5): W ~ U(±1/√fan_in), so σ_w² = fan_in·E[W²] = 1/3; bias U(±1/√fan_in): σ_b² = 1/(3 fan_in)."""
    torch.manual_seed(3)
    model = _mlp(3, 400, n0=300)
    nw = emp.read_network(model)
    assert nw.activations == (mf.get_activation("tanh"),) * 3 and nw.biases == (True,) * 4
    for l in range(3):
        assert abs(nw.sigma_w[l] - math.sqrt(1 / 3)) <= 4 * nw.sigma_w_error[l]
        fan_in = nw.widths[l]
        assert abs(nw.sigma_b[l] - math.sqrt(1 / (3 * fan_in))) <= 4 * nw.sigma_b_error[l]
    assert nw.weights[:-1] == ("gaussian",) * 3  # i.i.d., not orthogonal (the name of the non-orthogonal kind)


# --------------------------------------------------------------------------------------------------- initialize_
def test_initialize_tanh_default_is_the_dynamical_isometry_point():
    model = _mlp(3, 64)
    rep = emp.initialize_(model, generator=0)
    assert rep.q_star == 1 / 64
    # THEORY §2 / §1: the tanh critical point at q* = 1/64
    assert rep.network.sigma_w[1] == pytest.approx(1.0151637852, rel=1e-9)
    assert rep.network.sigma_b[1] == pytest.approx(2.1566949868e-3, rel=1e-8)
    assert rep.network.sigma_w[0] == pytest.approx(math.sqrt((1 / 64 - 2.1566949868e-3 ** 2) / 1.0), rel=1e-9)
    nw = emp.read_network(model)
    assert nw.weights == ("orthogonal",) * 4
    np.testing.assert_allclose(nw.sigma_w, rep.network.sigma_w, rtol=1e-12)
    np.testing.assert_allclose(rep.chi1[1:], 1.0, rtol=1e-9)
    # reproducible with a seed
    w = model[2].weight.detach().clone()
    emp.initialize_(model, generator=0)
    assert torch.equal(w, model[2].weight)


def test_initialize_depth_64_tanh_holds_q_star_and_isometry():
    """Acceptance: after initialize_, a depth-64 tanh model's layer variances hold q* and the mean squared singular
    value of J = ∂x^L/∂x^0 is 1 within statistical tolerance for inputs at the fixed point, and the reported
    σ_w,1²/σ_w²·χ_1^L for inputs of another norm."""
    L, N, T = 64, 128, 8
    model = _mlp(L, N)
    gen = torch.Generator().manual_seed(5)
    X = correlated_inputs(T, N, 1.0, 0.0, gen)
    rep = emp.initialize_(model, generator=7, inputs=X)
    sw, sb = rep.network.sigma_w[1], rep.network.sigma_b[1]
    s = emp.layer_statistics(model, X)
    q = s.q.mean(axis=1)
    # per-draw relative fluctuation of q^l ~ √(2/N) averaged over T inputs (THEORY §8), 4 standard errors
    assert np.all(np.abs(q / rep.q_star - 1) <= 4 * math.sqrt(2 / N) / math.sqrt(T) + 2 / N), q / rep.q_star
    # the Jacobian: every per-input mean within 4 standard errors of the theory (spread over inputs) + 0.1 L/N
    # (the orthogonal finite-width bias measured in empirical.experiments.jacobian)
    for inputs, target in ((X, rep.jacobian_mean), (X * math.sqrt((rep.q_star - sb * sb) / (sw * sw)), 1.0)):
        if target == 1.0:
            emp.initialize_(model, generator=7, inputs=inputs)  # now σ_w,1 = σ_w: the fixed-point case
            assert emp.read_network(model).sigma_w[0] == pytest.approx(sw, rel=1e-9)
        sv = emp.jacobian_singular_values(model, inputs[:4])
        m = (sv ** 2).mean(axis=1)
        tol = 4 * m.std(ddof=1) / math.sqrt(m.size) + 0.1 * L / N
        assert abs(m.mean() - target) <= tol * target, (m, target)
    assert rep.jacobian_mean == pytest.approx((rep.network.sigma_w[0] / sw) ** 2, rel=1e-8)


@pytest.mark.parametrize("act, sigma_w", [(nn.ReLU, math.sqrt(2.0)), (lambda: nn.LeakyReLU(0.2), math.sqrt(2 / 1.04))])
def test_initialize_homogeneous_is_he(act, sigma_w):
    model = _mlp(2, 32, act=act)
    rep = emp.initialize_(model, weights="gaussian", generator=0)
    assert all(s == pytest.approx(sigma_w, rel=1e-12) for s in rep.network.sigma_w)
    assert rep.network.sigma_b == (0.0, 0.0, 0.0)
    assert any("homogeneous" in n for n in rep.notes)


def test_initialize_without_a_stable_point_says_so():
    gelu = _mlp(2, 16, act=nn.GELU)
    with pytest.raises(NoCriticalPointError, match="nearest stable one is q\\* = "):
        emp.initialize_(gelu, q_star=1 / 64)
    rep = emp.initialize_(gelu, generator=0)
    assert rep.q_star > 1 and any("no stable critical point" in n for n in rep.notes)
    fp = mf.fixed_point("gelu", rep.network.sigma_w[1], rep.network.sigma_b[1], q_init=rep.q_star)
    assert fp.q_star == pytest.approx(rep.q_star, rel=1e-6) and fp.chi1 == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(NoCriticalPointError, match="no edge-of-chaos initialisation"):
        emp.initialize_(_mlp(2, 16, act=nn.Softplus))


# ----------------------------------------------------------------------------------------------------- describe
def test_describe_pytorch_default_and_initialised():
    torch.manual_seed(1)
    model = _mlp(6, 192)
    X = correlated_inputs(16, 192, 1.0, 0.5, torch.Generator().manual_seed(2))
    d = emp.describe(model)
    assert d.measured is None and not d.edge_of_chaos
    assert all(r["phase"] in ("ordered", "input layer") for r in d.layers)  # σ_w² = 1/3: deep in the ordered phase
    d = emp.describe(model, X)
    assert d.passed, d.records.failures().to_markdown()
    assert "FIM λ_max" in d.to_markdown() and "measured" in repr(d)
    emp.initialize_(model, generator=3, inputs=X)
    d = emp.describe(model, X)
    assert d.edge_of_chaos and d.passed, d.records.failures().to_markdown()
    assert d.learning_rate_bound == pytest.approx(2 / d.fisher_lambda_max)
    fig = d.plot()
    assert len(fig.axes) >= 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_initialize_mixed_activations_names_an_impossible_layer():
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.ELU(), nn.Linear(8, 1)).double()
    with pytest.raises(NoCriticalPointError, match=r"layer 2 \(elu after tanh\) would need σ_b² = .* < 0"):
        emp.initialize_(model)


# ------------------------------------------------------------------------------- describe's edge-of-chaos verdict
@pytest.mark.parametrize("act, depth, weights", [(nn.Tanh, 64, "orthogonal"), (nn.GELU, 64, "gaussian"),
                                                 (nn.SiLU, 32, "orthogonal"), (nn.ELU, 16, "gaussian")])
def test_describe_says_edge_of_chaos_right_after_initialize(act, depth, weights):
    """A model initialize_ just put on the stable edge of chaos is judged critical against its depth (ξ_c ≥ L along
    the inputs' trajectory), although σ̂_b read from N = 128 biases is ~6 % off and (GELU, SiLU at q* ≈ 3.7, 15) each
    layer's own fixed point lies far from q*."""
    model = _mlp(depth, 128, act=act)
    rep = emp.initialize_(model, generator=4, weights=weights)
    d = emp.describe(model)
    assert d.edge_of_chaos and d.xi_c >= depth, (d.xi_c, repr(d))
    assert "edge of chaos" in d.to_markdown() and "yes" in repr(d).splitlines()[1]
    # the per-layer gains on the trajectory are 1 to the σ̂'s sampling error (Gaussian σ̂_w²: √2/N; σ̂_b: 1/√(2N))
    np.testing.assert_allclose([r["chi1"] for r in d.layers[1:]], 1.0, atol=0.05)
    assert rep.q_star == pytest.approx(d.layers[-1]["q"], rel=0.1)


@pytest.mark.parametrize("sigma_w, phase", [(2.0, "chaotic"), (0.6, "ordered")])
def test_describe_says_no_for_a_chaotic_or_ordered_model(sigma_w, phase):
    """tanh, σ_b = 0.1: σ_w = 2 is chaotic (χ_1 = 1.36 at q*, ξ_c = 7.7 at c* = 0.04), 0.6 ordered (χ_1 ≈ 0.36,
    ξ_c ≈ 1): both far below L = 16."""
    model = _mlp(16, 128)
    net = emp.RandomMLP(128, 128, 16, 1, "tanh", sigma_w, 0.1, generator=0)
    with torch.no_grad():
        for l, lin in enumerate(m for m in model if isinstance(m, nn.Linear)):
            lin.weight.copy_(net.W[l])
            lin.bias.copy_(net.b[l])
    d = emp.describe(model)
    assert not d.edge_of_chaos and d.xi_c < 8, d.xi_c
    assert "no" in repr(d).splitlines()[1]
    assert sum(r["phase"] == phase for r in d.layers[1:]) >= 13


def _tanh_mean(f, q):
    """E[f(√q z)], z ~ N(0, 1), by scipy quadrature (reference independent of meanfield's Gauss–Hermite)."""
    from scipy.integrate import quad

    return quad(lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), -12, 12,
                epsabs=1e-14, epsrel=1e-13)[0]


def test_correlation_depth_scale_against_quadrature():
    """A uniform ordered tanh network at its fixed point: ξ_c = −1/ln χ_1 with χ_1 = σ_w² E[sech⁴(h)] (Schoenholz et
    al. 2017, §3; THEORY §1: ξ_c = −1/ln χ_c with c* = 1), q* by iterating the length map with scipy quadrature."""
    from empirical.describe import correlation_depth_scale

    sw, sb = 0.9, 0.05
    q = 1.0
    for _ in range(400):
        q = sw * sw * _tanh_mean(lambda h: math.tanh(h) ** 2, q) + sb * sb
    chi = sw * sw * _tanh_mean(lambda h: 1 / math.cosh(h) ** 4, q)
    n = mf.Network.uniform("tanh", sw, sb, 8, 100)
    lt = layer_theory(n, input_norm=(q - sb * sb) / (sw * sw))  # inputs at the fixed point
    assert correlation_depth_scale(n, lt) == pytest.approx(-1 / math.log(chi), rel=1e-8)
    # a single hidden layer: its own gain
    one = mf.Network.uniform("tanh", sw, sb, 1, 100)
    assert correlation_depth_scale(one, layer_theory(one, input_norm=(q - sb * sb) / (sw * sw))) == pytest.approx(
        -1 / math.log(chi), rel=1e-8)


def _gelu(u):
    return 0.5 * u * (1 + math.erf(u / math.sqrt(2)))


def _dgelu(u):
    return 0.5 * (1 + math.erf(u / math.sqrt(2))) + u * math.exp(-u * u / 2) / math.sqrt(2 * math.pi)


def _pair_mean(f, g, q, qx):
    """E[f(u) g(v)], (u, v) centred Gaussian with variances q and covariance qx, by scipy's dblquad over z1, z2."""
    from scipy.integrate import dblquad

    c = qx / q
    s = math.sqrt(q)
    w = math.sqrt(max(1 - c * c, 0.0))
    val = dblquad(lambda z2, z1: f(s * z1) * g(s * (c * z1 + w * z2)) * math.exp(-(z1 * z1 + z2 * z2) / 2)
                  / (2 * math.pi), -9, 9, -9, 9, epsabs=1e-13, epsrel=1e-12)[0]
    return val


def test_layer_theory_fisher_of_a_non_uniform_gelu_network_against_quadrature():
    """The per-layer NTK sums (Jacot et al. 2018 in the standard parameterisation, THEORY §3/§8) for a GELU network
    with a first layer, hidden layers and readout of different σ_w, σ_b, widths and one layer without bias, written
    out here with scipy quadrature: Θ = Σ_{l=1}^{L+1} (N_{l−1} q̂^{l−1} + β_l) P^l, P^l = σ_{w,l+1}² E[φ'φ'] P^{l+1}
    (diagonal with the same input, cross with the correlated one), λ_max = [Θ_d + (T−1)Θ_×]/T, mean C Θ_d/P."""
    widths = (6, 11, 7, 9, 2)
    sw, sb = (0.8, 1.45, 1.3, 1.1), (0.3, 0.0, 0.5, 0.2)
    biases = (True, False, True, True)
    n = mf.Network(widths, sw, sb, "gelu", "gaussian", biases)
    q0, c0, T = 1.7, 0.35, 12
    lt = layer_theory(n, input_norm=q0, input_correlation=c0, n_samples=T)
    L = 3
    q, qx = sw[0] ** 2 * q0 + sb[0] ** 2, sw[0] ** 2 * c0 * q0 + sb[0] ** 2
    qh, qhx, mu1, dd = [q0], [c0 * q0], [], []
    for l in range(L):
        qh.append(_tanh_mean(lambda u: _gelu(u) ** 2, q))
        qhx.append(_pair_mean(_gelu, _gelu, q, qx))
        mu1.append(_tanh_mean(lambda u: _dgelu(u) ** 2, q))
        dd.append(_pair_mean(_dgelu, _dgelu, q, qx))
        assert lt.q[l] == pytest.approx(q, rel=1e-10) and lt.q_cross[l] == pytest.approx(qx, rel=1e-9)
        q, qx = sw[l + 1] ** 2 * qh[-1] + sb[l + 1] ** 2, sw[l + 1] ** 2 * qhx[-1] + sb[l + 1] ** 2
    p, px = [1.0], [1.0]
    for l in range(L - 1, -1, -1):
        p.insert(0, sw[l + 1] ** 2 * mu1[l] * p[0])
        px.insert(0, sw[l + 1] ** 2 * dd[l] * px[0])
    beta = [1.0 if b else 0.0 for b in biases]
    theta_d = sum((widths[l] * qh[l] + beta[l]) * p[l] for l in range(L + 1))
    theta_x = sum((widths[l] * qhx[l] + beta[l]) * px[l] for l in range(L + 1))
    n_par = sum(a * b for a, b in zip(widths[:-1], widths[1:])) + sum(w for w, b in zip(widths[1:], biases) if b)
    assert lt.n_parameters == n_par == 66 + 77 + 63 + 18 + 11 + 9 + 2
    assert lt.theta_diag == pytest.approx(theta_d, rel=1e-9)
    assert lt.theta_cross == pytest.approx(theta_x, rel=1e-9)
    assert lt.lambda_max == pytest.approx((theta_d + (T - 1) * theta_x) / T, rel=1e-9)
    assert lt.mean_eigenvalue == pytest.approx(2 * theta_d / n_par, rel=1e-9)
    np.testing.assert_allclose(lt.gain, [sw[l] ** 2 * mu1[l] for l in range(L)], rtol=1e-9)


def test_layer_theory_is_the_meanfield_calls_for_a_non_uniform_network():
    """layer_theory reads the theory's public Network calls and adds no equation of its own: every field equals
    mf.propagate / mf.fisher_statistics / mf.gaussian_moments of a network whose widths, σ_w, σ_b, activations, weight
    kinds and bias flags differ per layer (to 1e-12), for T = 1 (cross fields from T = 2) and T = 12."""
    widths = (12, 20, 16, 24, 3)
    sw, sb = (0.9, 1.4, 1.1, 1.2), (0.2, 0.0, 0.3, 0.1)
    n = mf.Network(widths, sw, sb, ["tanh", "gelu", "erf"], ["orthogonal", "gaussian", "orthogonal", "gaussian"],
                   (True, False, True, True))
    q0, c0, L = 1.3, 0.4, 3
    tr = mf.propagate(n, q0=q0, c0=c0)
    fx = mf.fisher_statistics(n, n_samples=12, input_norm=q0, input_correlation=c0)
    for T in (1, 12):
        lt = layer_theory(n, input_norm=q0, input_correlation=c0, n_samples=T)
        fs = mf.fisher_statistics(n, n_samples=T, input_norm=q0, input_correlation=c0)
        np.testing.assert_allclose(lt.q, tr.q[1:], rtol=1e-12)
        np.testing.assert_allclose(lt.q_cross, tr.c[1:] * tr.q[1:], rtol=1e-12)
        np.testing.assert_allclose(lt.gain, tr.chi[1:], rtol=1e-12)
        assert lt.jacobian_mean == pytest.approx(float(np.prod(tr.chi[1:])), rel=1e-12)
        np.testing.assert_allclose(lt.q_hat, fs.q_hat[: L + 1], rtol=1e-12)
        np.testing.assert_allclose(lt.q_hat_cross, fx.q_hat_cross[: L + 1], rtol=1e-12)
        np.testing.assert_allclose(lt.p, fs.q_tilde[1 : L + 2], rtol=1e-12)
        np.testing.assert_allclose(lt.p_cross, fx.q_tilde_cross[1 : L + 2], rtol=1e-12)
        mom = [mf.gaussian_moments(a, q) for a, q in zip(n.activations, tr.q[1:])]
        np.testing.assert_allclose(lt.mu1, [m.mu1 for m in mom], rtol=1e-12)
        np.testing.assert_allclose(lt.mu2, [m.mu2 for m in mom], rtol=1e-12)
        assert lt.theta_diag == pytest.approx(fs.trace / 3, rel=1e-12)
        assert lt.theta_cross == pytest.approx(fx.kappa2 * fx.alpha * 20, rel=1e-12)
        assert lt.n_parameters == fs.n_parameters == 12 * 20 + 20 * 16 + 16 * 24 + 24 * 3 + 20 + 24 + 3
        for a, b in ((lt.lambda_max, fs.lambda_max), (lt.mean_eigenvalue, fs.mean_eigenvalue),
                     (lt.bulk_eigenvalue, fs.bulk_eigenvalue), (lt.learning_rate_bound, fs.learning_rate_bound)):
            assert a == pytest.approx(b, rel=1e-12)
    # v is the relative variance of the JJᵀ law (THEORY §2): mf.jacobian_spectrum of a square per-layer network
    sq = mf.Network((16,) * 5, sw, sb, ["tanh", "gelu", "erf"], ["orthogonal", "gaussian", "orthogonal", "gaussian"])
    lt = layer_theory(sq, input_norm=q0)
    js = mf.jacobian_spectrum(sq, q0=q0)
    assert lt.jacobian_mean == pytest.approx(js.mean, rel=1e-12)
    assert lt.finite_width_variance == pytest.approx(js.variance / js.mean**2, rel=1e-10)


def test_layer_theory_lambda_max_is_the_bulk_when_inputs_anticorrelate():
    """Odd φ, σ_b = 0 and negatively correlated inputs give Θ(x, x') < 0: the FIM's largest eigenvalue is then the
    bulk (Θ_d − Θ_×)/T, not the top (Θ_d + (T−1)Θ_×)/T. Reference: Θ_d, Θ_× by scipy quadrature (the sums of
    THEORY §3/§8 written out) and the eigenvalues of the T × T matrix Θ_d I + Θ_× (11ᵀ − I) by numpy, divided by T."""
    widths, sw = (5, 7, 6, 1), (1.1, 1.3, 0.9)
    n = mf.Network(widths, sw, 0.0, "tanh", "gaussian", biases=False)
    q0, c0, T, L = 0.8, -0.1, 8, 2
    dtanh = lambda u: 1 / math.cosh(u) ** 2  # noqa: E731
    q, qx = sw[0] ** 2 * q0, sw[0] ** 2 * c0 * q0
    qh, qhx, mu1, dd = [q0], [c0 * q0], [], []
    for l in range(L):
        qh.append(_tanh_mean(lambda u: math.tanh(u) ** 2, q))
        qhx.append(_pair_mean(math.tanh, math.tanh, q, qx))
        mu1.append(_tanh_mean(lambda u: dtanh(u) ** 2, q))
        dd.append(_pair_mean(dtanh, dtanh, q, qx))
        q, qx = sw[l + 1] ** 2 * qh[-1], sw[l + 1] ** 2 * qhx[-1]
    p, px = [1.0], [1.0]
    for l in range(L - 1, -1, -1):
        p.insert(0, sw[l + 1] ** 2 * mu1[l] * p[0])
        px.insert(0, sw[l + 1] ** 2 * dd[l] * px[0])
    theta_d = sum(widths[l] * qh[l] * p[l] for l in range(L + 1))
    theta_x = sum(widths[l] * qhx[l] * px[l] for l in range(L + 1))
    assert theta_x < 0
    gram = theta_d * np.eye(T) + theta_x * (np.ones((T, T)) - np.eye(T))
    ref = np.linalg.eigvalsh(gram)[-1] / T
    assert ref > (theta_d + (T - 1) * theta_x) / T  # the top formula alone would be wrong here
    lt = layer_theory(n, input_norm=q0, input_correlation=c0, n_samples=T)
    assert lt.theta_cross == pytest.approx(theta_x, rel=1e-9)
    assert lt.lambda_max == pytest.approx(ref, rel=1e-9)
    assert lt.bulk_eigenvalue == pytest.approx(ref, rel=1e-9)


def test_layer_theory_biases_not_trained():
    """biases=False: a uniform network takes the uniform call's biases=False; a network without biases is unchanged;
    a per-layer network with biases cannot express untrained biases and is refused."""
    u = mf.Network.uniform("tanh", 1.2, 0.3, 3, 40, input_width=10, output_width=2)
    lt = layer_theory(u, input_norm=0.9, input_correlation=0.2, n_samples=4, biases=False)
    fs = mf.fisher_statistics("tanh", 1.2, 0.3, 3, 40, 4, n_outputs=2, input_width=10, input_norm=0.9,
                              input_correlation=0.2, biases=False)
    assert lt.n_parameters == 10 * 40 + 2 * 40 * 40 + 40 * 2
    assert lt.lambda_max == pytest.approx(fs.lambda_max, rel=1e-14)
    nb = mf.Network((10, 40, 30, 2), 1.2, 0.0, "tanh", biases=False)
    assert layer_theory(nb, biases=False).lambda_max == layer_theory(nb).lambda_max
    with pytest.raises(InvalidParameterError, match="biases=False"):
        layer_theory(mf.Network((10, 40, 30, 2), 1.2, 0.3, "tanh"), biases=False)


def test_describe_spectral_predictions_from_meanfield_or_not_applicable():
    """describe's JJᵀ edge, conditional FIM λ_max and Sokol–Park bound are those of mf.jacobian_spectrum,
    mf.conditional_fisher_spectrum and mf.sokol_park_bound of the read network where its shape allows, else
    "n/a (rectangular)" — exactly where the meanfield functions refuse the shape."""
    from empirical.describe import conditional_law_applies, jacobian_law_applies

    torch.manual_seed(4)
    square = _mlp(3, 32, out=32)
    emp.initialize_(square, generator=5, q_star=0.5)
    d = emp.describe(square, input_norm=1.0)
    nw = d.network
    assert d.jacobian_edge == mf.jacobian_spectrum(nw, q0=1.0).edge
    assert d.conditional_fisher_lambda_max == mf.conditional_fisher_spectrum(nw, input_norm=1.0).lambda_max
    assert d.sokol_park_bound == mf.sokol_park_bound(nw, input_norm=1.0).bound
    assert d.sokol_park_bound >= d.conditional_fisher_lambda_max > 0 and not d.unavailable
    assert "n/a" not in d.to_markdown() and "Sokol–Park bound" in repr(d)
    # hidden layers square, readout not: the Jacobian edge only
    d = emp.describe(_mlp(3, 32, out=2), input_norm=1.0)
    assert d.jacobian_edge == mf.jacobian_spectrum(d.network, q0=1.0).edge
    assert d.conditional_fisher_lambda_max is None and d.sokol_park_bound is None
    assert d.unavailable == {"conditional_fisher_lambda_max": "n/a (rectangular)",
                             "sokol_park_bound": "n/a (rectangular)"}
    # rectangular hidden layers: none, said so in both renderings
    rect = _rect(nn.Tanh, (24, 32, 40, 2))
    d = emp.describe(rect)
    assert d.jacobian_edge is None and d.unavailable["jacobian_edge"] == "n/a (rectangular)"
    assert "| JJᵀ spectral edge | n/a (rectangular) |" in d.to_markdown()
    assert "JJᵀ spectral edge: n/a (rectangular)" in repr(d)
    # the predicates agree with the functions' own refusals
    for widths, kind in (((24, 32, 40, 2), "gaussian"), ((48, 32, 32, 2), "orthogonal"), ((48, 32, 32, 2), "gaussian"),
                         ((32, 32, 32, 32), "gaussian"), ((16, 32, 32, 32), "orthogonal")):
        net = mf.Network(widths, 1.1, 0.1, "tanh", kind)
        for applies, call in ((jacobian_law_applies, lambda: mf.jacobian_spectrum(net, q0=1.0)),
                              (conditional_law_applies, lambda: mf.sokol_park_bound(net, input_norm=1.0))):
            if applies(net):
                call()
            else:
                with pytest.raises(InvalidParameterError):
                    call()


def _rect(act, widths, bias=True, seed=0):
    torch.manual_seed(seed)  # PyTorch's default init draws from the global RNG
    layers = []
    for l, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if l < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("act, bias, init", [(nn.GELU, False, "default"), (nn.ReLU, True, "orthogonal"),
                                             (nn.SiLU, True, "initialize_gaussian"), (nn.ELU, False, "initialize_"),
                                             (lambda: nn.LeakyReLU(0.1), True, "default")])
def test_describe_predictions_within_tolerance_on_user_models(act, bias, init):
    """Acceptance: describe's predictions (q^l, mean σ²(J), FIM mean and λ_max) lie within the statistically sized
    tolerances of the measurements on user-built nn.Sequential models of several activations, with and without bias,
    rectangular layers, PyTorch-default, orthogonal and initialize_'d weights."""
    widths = (96, 160, 224, 192, 176, 2)
    model = _rect(act, widths, bias=bias)
    X = correlated_inputs(16, 96, 1.0, 0.3, torch.Generator().manual_seed(9))
    if init == "orthogonal":
        _gen = torch.Generator().manual_seed(1)
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2.0), generator=_gen)
                nn.init.normal_(m.bias, 0.0, 0.05, generator=_gen)
    elif init.startswith("initialize_"):
        emp.initialize_(model, generator=2, inputs=X, weights="gaussian" if init.endswith("gaussian") else "orthogonal")
    d = emp.describe(model, X)
    assert d.passed, d.records.failures().to_markdown()
    assert len(d.records) == 4 + 3 and d.network.widths == widths
    assert d.network.biases == (bias,) * 5
    # the same tolerances reject a theory whose σ_w is 10 % off
    _, wrong = measured_records(model, X, d.network, theory_sigma_w_scale=1.1)
    assert len(wrong.failures()) >= 1


def test_init_comparison_figure_and_numbers_are_committed():
    """Acceptance: the AnyInit comparison (benchmarks/bench_init.py) has its figure in docs/figures and its numbers in
    benchmarks/init_comparison.md: a diagnostics row for every activation, depth and init, and the training sweep."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    png = root / "docs" / "figures" / "init_comparison.png"
    assert png.is_file() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (root / "benchmarks" / "init_comparison.md").read_text(encoding="utf-8")
    for act in ("tanh", "gelu", "silu", "relu"):
        for depth in (16, 64):
            for init in ("initialize_", "anyinit", "pytorch default", "kaiming"):
                assert f"| {act} | {depth} | {init} |" in text, (act, depth, init)
        for init in ("initialize_", "anyinit", "pytorch default", "kaiming"):
            assert text.count(f"| {act} | {init} |") == 2, (act, init)  # the Adam and the SGD table
    assert "best rate" in text and "AnyInit is not installed" not in text
