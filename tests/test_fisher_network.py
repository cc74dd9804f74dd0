"""Fisher information of a network whose layers differ (THEORY §3–5, §8): ``fisher_statistics``,
``conditional_fisher_spectrum`` and ``sokol_park_bound`` with a :class:`meanfield.Network`.

References written here: a per-layer loop with numpy Gauss–Hermite rules (smooth φ) and the arc-cosine closed forms
(ReLU, Cho & Saul 2009) for the order parameters; the Fuss–Catalan edge (THEORY §2) for products of Gaussian matrices;
sampled networks (PyTorch models measured by ``empirical.fisher_eigenvalues``, and the conditional FIM's recursion
``G_l = a_l I + W^l D_{l-1} G_{l-1} D_{l-1} W^{lᵀ}`` sampled in numpy) with tolerances sized to their fluctuations.
"""

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import InvalidParameterError
from meanfield.fisher import ConditionalFisherSpectrum, FisherStatistics, SokolParkBound

SQRT2 = math.sqrt(2.0)
TANH_CRIT_1_2 = tuple(float(v) for v in mf.critical_point("tanh", 0.5))

# ============================================================================================ the reference
_Z, _WZ = np.polynomial.hermite_e.hermegauss(160)
_WZ = _WZ / math.sqrt(2.0 * math.pi)  # E f(z), z ~ N(0, 1) (probabilists' Hermite weight e^{-z²/2})


def _dtanh(h):
    return 1.0 - np.tanh(h) ** 2


SMOOTH = {"tanh": (np.tanh, _dtanh), "linear": (lambda h: h, lambda h: np.ones_like(h))}


def _relu_one(q):
    return q / 2.0, 0.5, 0.5  # E φ², μ_1, μ_2 (THEORY §1 closed forms)


def _relu_two(q, qx):
    # c = 1 to rounding is c = 1: the φ'-correlation has a √(1 - c) cusp there, which would turn 1e-16 into 1e-8
    c = 1.0 if abs(qx - q) <= 1e-14 * q else max(-1.0, min(1.0, qx / q))
    th = math.acos(c)
    return q / (2 * math.pi) * (math.sin(th) + (math.pi - th) * c), (math.pi - th) / (2 * math.pi)


def _one(name, q):
    """E_q φ², μ_1 = E_q φ'², μ_2 = E_q φ'⁴."""
    if name == "relu":
        return _relu_one(q)
    f, df = SMOOTH[name]
    h = math.sqrt(q) * _Z
    d2 = df(h) ** 2
    return float(_WZ @ f(h) ** 2), float(_WZ @ d2), float(_WZ @ d2**2)


def _two(name, q, qx):
    """E φ(u)φ(u'), E φ'(u)φ'(u') at covariances (q, q, qx): tensor Gauss–Hermite."""
    if name == "relu":
        return _relu_two(q, qx)
    f, df = SMOOTH[name]
    c = max(-1.0, min(1.0, qx / q))
    z1, z2 = np.meshgrid(_Z, _Z, indexing="ij")
    w = np.outer(_WZ, _WZ)
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    return float(np.sum(w * f(u1) * f(u2))), float(np.sum(w * df(u1) * df(u2)))


def _reference_ntk(widths, sw, sb, acts, bias, q_in, rho):
    """Θ(x, x), Θ(x, x') (one output) of THEORY §3/§8 by a per-layer loop: q^l, q̂^l forward, P^l backward through the
    next layer's σ_w."""
    L = len(acts)
    q, qx = sw[0] ** 2 * q_in + sb[0] ** 2, sw[0] ** 2 * rho * q_in + sb[0] ** 2
    qh, qhx, mu1, dd, qs = [q_in], [rho * q_in], [], [], [q]
    for l in range(L):
        e2, m1, _ = _one(acts[l], q)
        exy, dxy = _two(acts[l], q, qx)
        qh.append(e2)
        qhx.append(exy)
        mu1.append(m1)
        dd.append(dxy)
        q, qx = sw[l + 1] ** 2 * e2 + sb[l + 1] ** 2, sw[l + 1] ** 2 * exy + sb[l + 1] ** 2
        qs.append(q)
    P, Px = [1.0], [1.0]  # P^{L+1}, then P^L, …, P^1
    for l in range(L, 0, -1):
        P.insert(0, sw[l] ** 2 * mu1[l - 1] * P[0])
        Px.insert(0, sw[l] ** 2 * dd[l - 1] * Px[0])
    beta = [1.0 if b else 0.0 for b in bias]
    th = sum((widths[l] * qh[l] + beta[l]) * P[l] for l in range(L + 1))
    thx = sum((widths[l] * qhx[l] + beta[l]) * Px[l] for l in range(L + 1))
    return th, thx, np.array(qs)


MIXED = dict(
    widths=(12, 20, 16, 24, 3),
    sigma_w=[1.3, 1.1, 1.6, 0.9],
    sigma_b=[0.2, 0.0, 0.3, 0.1],
    activations=["tanh", "relu", "tanh"],
    biases=[True, False, True, True],
)


def _net(d, **over):
    d = {**d, **over}
    return mf.Network(d["widths"], d["sigma_w"], d["sigma_b"], d["activations"], d.get("weights", "gaussian"),
                      d["biases"])


# ================================================================================== uniform networks: bitwise
FIELDS = ("kappa1", "kappa2", "alpha", "trace", "n_parameters", "mean_eigenvalue", "second_moment", "lambda_max",
          "lambda_max_multiplicity", "bulk_eigenvalue", "learning_rate_bound", "q", "q_cross", "q_tilde",
          "q_tilde_cross", "layer_share")


def _same(a, b, fields):
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), f


@pytest.mark.parametrize("phi", ["tanh", "relu", "erf", "gelu"])
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_fisher_statistics_uniform_network_is_the_uniform_call(phi, weights):
    sw, sb, L, N, N0, C, T = 1.3, 0.2, 4, 64, 40, 3, 6
    ref = mf.fisher_statistics(phi, sw, sb, L, N, T, n_outputs=C, input_width=N0, input_norm=0.7,
                               input_correlation=0.25, weights=weights)
    nets = [
        mf.Network.uniform(phi, sw, sb, L, N, input_width=N0, output_width=C, weights=weights),
        # the same network built layer by layer
        mf.Network((N0,) + (N,) * L + (C,), [sw] * (L + 1), [sb] * (L + 1), [phi] * L, [weights] * (L + 1)),
    ]
    for net in nets:
        r = mf.fisher_statistics(net, n_samples=T, input_norm=0.7, input_correlation=0.25)
        _same(r, ref, FIELDS)
        assert (r.activation, r.sigma_w, r.sigma_b, r.weights, r.width, r.input_width) == (
            ref.activation, sw, sb, weights, N, N0)
        assert r.network == net.to_dict() and ref.network is None
    # without biases: no bias parameters (the uniform call's biases=False with σ_b = 0)
    net = mf.Network.uniform(phi, sw, 0.0, L, N, output_width=C, weights=weights, biases=False)
    _same(mf.fisher_statistics(net, n_samples=T),
          mf.fisher_statistics(phi, sw, 0.0, L, N, T, n_outputs=C, biases=False, weights=weights), FIELDS)


@pytest.mark.parametrize("phi", ["tanh", "relu", "erf"])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_conditional_and_bound_uniform_network_are_the_uniform_calls(phi, weights):
    sw, sb, L, N = 1.2, 0.1, 3, 128
    net = mf.Network((N,) * (L + 2), [sw] * (L + 1), [sb] * (L + 1), [phi] * L, [weights] * (L + 1))
    assert net.is_uniform
    a = mf.conditional_fisher_spectrum(net, input_norm=0.8)
    b = mf.conditional_fisher_spectrum(phi, sw, sb, L, N, weights=weights, input_norm=0.8)
    _same(a, b, ("mean", "variance", "lambda_max", "atoms", "layer_mean", "layer_variance", "shift", "q"))
    xs = np.linspace(b.shift[-1], b.lambda_max, 7)[1:-1]
    assert np.array_equal(a.density(xs), b.density(xs))
    assert a.network == net.to_dict() and b.network is None
    c = mf.sokol_park_bound(net, input_norm=0.8, hessian_max=0.5)
    d = mf.sokol_park_bound(phi, sw, sb, L, N, weights=weights, input_norm=0.8, hessian_max=0.5)
    _same(c, d, ("bound", "jacobian_norms", "terms", "shift"))
    assert c.network == net.to_dict()


# ============================================================================ per-layer: references in the test
@pytest.mark.parametrize("rho,T", [(0.3, 5), (0.0, 1), (1.0, 4), (-0.2, 4)])
def test_fisher_statistics_per_layer_vs_reference(rho, T):
    """Rectangular layers, tanh and ReLU, per-layer σ's, a layer without bias: Θ from the per-layer loop above."""
    net = _net(MIXED)
    r = mf.fisher_statistics(net, n_samples=T, input_norm=0.8, input_correlation=rho)
    th, thx, qs = _reference_ntk(MIXED["widths"], MIXED["sigma_w"], MIXED["sigma_b"], MIXED["activations"],
                                 MIXED["biases"], 0.8, rho)
    Ns, C = MIXED["widths"], 3
    P = sum(a * b for a, b in zip(Ns[:-1], Ns[1:])) + sum(n for n, b in zip(Ns[1:], MIXED["biases"]) if b)
    assert r.n_parameters == P == 12 * 20 + 20 * 16 + 16 * 24 + 24 * 3 + 20 + 24 + 3
    np.testing.assert_allclose(r.q[1:], qs, rtol=1e-11)
    assert r.trace == pytest.approx(C * th, rel=1e-10)
    assert r.mean_eigenvalue == pytest.approx(C * th / P, rel=1e-10)
    if T == 1:
        assert r.lambda_max == pytest.approx(th, rel=1e-10)
        assert r.lambda_max_multiplicity == C
        return
    top, bulk = (th + (T - 1) * thx) / T, (th - thx) / T
    assert r.lambda_max == pytest.approx(max(top, bulk), rel=1e-9)
    assert r.bulk_eigenvalue == pytest.approx(bulk, rel=1e-9, abs=1e-12 * th)
    assert r.lambda_max_multiplicity == (C if top > bulk * (1 + 1e-9) else (C * T if rho == 1.0 else C * (T - 1)))
    assert r.second_moment == pytest.approx(C * (th**2 + (T - 1) * thx**2) / (T * P), rel=1e-9)
    assert r.learning_rate_bound == pytest.approx(2.0 / max(top, bulk), rel=1e-9)
    # κ's in units of the reference width N = N_1
    alpha = (12 * 20 + 20 * 16 + 16 * 24) / 20**2
    assert r.width == 20 and r.alpha == pytest.approx(alpha, rel=1e-15)
    assert r.kappa1 == pytest.approx(th / (alpha * 20), rel=1e-10)
    assert r.layer_share[1:].sum() == pytest.approx(1.0, rel=1e-12)


def test_fisher_statistics_linear_layers_closed_form():
    """Linear hidden layers: q̂^l = q^l, P^l = Π_{m>l} (σ_w^m)², so Θ(x, x) is a sum of products written out."""
    Ns, sw, sb = (5, 7, 9, 2), [1.5, 0.8, 1.2], [0.0, 0.5, 0.3]
    net = mf.Network(Ns, sw, sb, ["linear", "linear"], biases=[False, True, True])
    r = mf.fisher_statistics(net, n_samples=1, input_norm=2.0)
    q1 = 1.5**2 * 2.0
    q2 = 0.8**2 * q1 + 0.25
    th = (5 * 2.0) * (0.8**2 * 1.2**2) + (7 * q1 + 1) * 1.2**2 + (9 * q2 + 1)
    assert r.lambda_max == pytest.approx(th, rel=1e-13)
    assert r.q[3] == pytest.approx(1.2**2 * q2 + 0.09, rel=1e-13)


def test_conditional_mean_is_the_ntk_diagonal_per_layer():
    """Tr Φ/N² = Θ(x, x)/N with C = N outputs, for a square network whose layers differ: the conditional mean is
    fisher_statistics' trace/(C N)."""
    N = 96
    net = mf.Network((N,) * 5, [1.1, 1.3, 0.9, 1.2], [0.2, 0.0, 0.1, 0.3], ["tanh", "relu", "tanh"], "orthogonal",
                     [True, False, True, True])
    c = mf.conditional_fisher_spectrum(net, input_norm=0.6)
    s = mf.fisher_statistics(net, n_samples=1, input_norm=0.6)
    assert c.mean == pytest.approx(s.trace / N**2, rel=1e-12)


MIXED_KINDS = ["orthogonal", "gaussian", "orthogonal", "orthogonal", "gaussian"]


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian", MIXED_KINDS])
def test_conditional_moments_per_layer_recursion(weights):
    """e_l = a_l/N + (σ_w^l)² μ_1,l-1 e_{l-1}; v_l = (σ_w^l)⁴[μ_1² v_{l-1} + (μ_2 - μ_1²) e_{l-1}²] (+ (σ_w^l)⁴ μ_1²
    e_{l-1}² for Gaussian W^l, level by level), ν_{l-1} of φ_{l-1} at q^{l-1} (THEORY §4, §8), written out with
    Gauss–Hermite."""
    N, q_in = 200, 0.9
    sw, sb, acts, bias = [1.2, 1.4, 0.95, 1.1, 1.05], [0.1, 0.2, 0.0, 0.05, 0.1], ["tanh", "relu", "tanh", "tanh"], \
        [True, True, False, True, True]
    r = mf.conditional_fisher_spectrum(mf.Network((N,) * 6, sw, sb, acts, weights, bias), input_norm=q_in)
    L = len(acts)
    q, qh, m = sw[0] ** 2 * q_in + sb[0] ** 2, [q_in], []
    for l in range(L):
        e2, m1, m2 = _one(acts[l], q)
        qh.append(e2)
        m.append((m1, m2))
        q = sw[l + 1] ** 2 * e2 + sb[l + 1] ** 2
    a = [qh[l] + (1.0 / N if bias[l] else 0.0) for l in range(L + 1)]  # a_{l+1}/N
    e, v = a[0], 0.0
    for l in range(2, L + 2):
        m1, m2 = m[l - 2]
        s4 = sw[l - 1] ** 4
        kind = weights if isinstance(weights, str) else weights[l - 1]
        v = s4 * (m1 * m1 * v + (m2 - m1 * m1) * e * e) + (s4 * m1 * m1 * e * e if kind == "gaussian" else 0.0)
        e = a[l - 1] + sw[l - 1] ** 2 * m1 * e
    assert r.mean == pytest.approx(e, rel=1e-10)
    # the package's moments hold 1e-10 (DIRECT_RTOL); μ_2 - μ_1² cancels ~20× of that for tanh at these q
    assert r.variance == pytest.approx(v, rel=1e-8)
    np.testing.assert_allclose(r.shift[1:], a, rtol=1e-11)
    # the law has an atom where φ'² vanishes with positive probability: ReLU in layer 2 feeds level 3 only, whose
    # atom is smeared by the levels above; none at the top
    mass, mean, var = _density_moments(r)
    assert mass == pytest.approx(1.0, abs=2e-3)
    assert mean == pytest.approx(r.mean, rel=2e-3)
    assert var == pytest.approx(r.variance, rel=1e-2)


def _support_grid(r, n):
    lo, hi = r.shift[-1], r.lambda_max
    t = (np.arange(n) + 0.5) / n
    x = lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.pi * t))
    w = (hi - lo) * 0.5 * np.pi * np.sin(np.pi * t) / n
    return x, w


def _density_moments(r, n=1500):
    xs, w = _support_grid(r, n)
    rho = r.density(xs) * w
    mass = rho.sum() + sum(m for _, m in r.atoms)
    m1 = (xs * rho).sum() + sum(a * m for a, m in r.atoms)
    m2 = (xs**2 * rho).sum() + sum(a * a * m for a, m in r.atoms)
    return mass, m1, m2 - m1 * m1


# ==================================================================================== Sokol–Park: closed forms
def _fuss_catalan_edge(k):
    """Upper edge of (G_1⋯G_k)(G_1⋯G_k)ᵀ for k square Gaussian matrices of variance 1/N (THEORY §2); 1 for k = 0."""
    return 1.0 if k == 0 else (k + 1) ** (k + 1) / k**k


def test_sokol_park_linear_network_mixed_weight_kinds():
    """Linear layers: J_l = W^{L+1}⋯W^{l+1}; orthogonal factors are σ_w·O (norm σ_w²), Gaussian ones free
    Marchenko–Pastur factors: ‖J_l‖² = Π_{m>l} (σ_w^m)² × the Fuss–Catalan edge of the Gaussian count."""
    N, sw = 64, [1.1, 0.9, 1.3, 0.8, 1.2]
    kinds = ["orthogonal", "gaussian", "orthogonal", "gaussian", "gaussian"]
    net = mf.Network((N,) * 6, sw, 0.0, "linear", kinds, biases=False)
    r = mf.sokol_park_bound(net, input_norm=1.5)
    L = 4
    for l in range(1, L + 1):
        scale = np.prod([s * s for s in sw[l:]])
        k = sum(w == "gaussian" for w in kinds[l:])
        assert r.jacobian_norms[l] == pytest.approx(scale * _fuss_catalan_edge(k), rel=1e-9), l
    q = 1.5
    for l in range(1, L + 2):  # a_l/N = q̂^{l-1} = q^{l-1} (no biases)
        assert r.shift[l] == pytest.approx(q, rel=1e-13)
        q *= sw[l - 1] ** 2
    assert r.bound == pytest.approx(float(np.sum(r.shift[1:] * r.jacobian_norms[1:])), rel=1e-14)


# ============================================================================================ sampled networks
torch = pytest.importorskip("torch")


def _torch_model(net, generator):
    """An nn.Sequential with the per-layer scales of ``net``: Gaussian W ~ N(0, σ²/fan_in) or σ·√(max/fan_in)·O."""
    nn = torch.nn
    mods = []
    acts = {"tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity}
    for i in range(net.depth + 1):
        fi, fo = net.widths[i], net.widths[i + 1]
        lin = nn.Linear(fi, fo, bias=net.biases[i], dtype=torch.float64)
        with torch.no_grad():
            if net.weights[i] == "gaussian":
                lin.weight.copy_(torch.randn(fo, fi, generator=generator, dtype=torch.float64) * net.sigma_w[i]
                                 / math.sqrt(fi))
            else:
                a = torch.randn(max(fo, fi), min(fo, fi), generator=generator, dtype=torch.float64)
                Q, R = torch.linalg.qr(a)
                Q = Q * torch.sign(torch.diagonal(R))
                O = Q if fo >= fi else Q.T
                lin.weight.copy_(O * net.sigma_w[i] * math.sqrt(max(fo, fi) / fi))
            if net.biases[i]:
                lin.bias.copy_(torch.randn(fo, generator=generator, dtype=torch.float64) * net.sigma_b[i])
        mods.append(lin)
        if i < net.depth:
            mods.append(acts[net.activations[i].name]())
    return nn.Sequential(*mods)


def _inputs(T, N0, rho, gen):
    """T inputs with |x|² = N0 and pairwise correlation ≈ rho (a shared direction plus independent ones)."""
    g = torch.randn(T + 1, N0, generator=gen, dtype=torch.float64)
    x = math.sqrt(rho) * g[:1] + math.sqrt(1 - rho) * g[1:]
    return x * math.sqrt(N0) / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_fisher_statistics_per_layer_vs_sampled_networks(weights):
    """The mean of the top C eigenvalues (THEORY §3: compare the top C) and the trace of the exact FIM of sampled
    rectangular networks (``empirical.fisher_eigenvalues`` on PyTorch models), C = 4, 8 seeds. Measured over 24 seeds:
    seed-to-seed spread 5.5 % (top C) and 2.8 % (trace; the readout rows scale every δ^l), means 1.01–1.02 and
    0.996–0.998 of the theory: the mean of 8 is compared within 8 % and 4 % (≥ 4 standard errors)."""
    import empirical as emp

    net = mf.Network((256, 384, 320, 448, 4), [1.4, 1.2, 1.5, 1.0], [0.3, 0.1, 0.0, 0.2], ["tanh", "relu", "tanh"],
                     weights, [True, True, False, True])
    T, rho, C = 8, 0.2, 4
    r = mf.fisher_statistics(net, n_samples=T, input_norm=1.0, input_correlation=rho)
    assert r.lambda_max_multiplicity == C
    tops, traces = [], []
    for seed in range(8):
        gen = torch.Generator().manual_seed(1000 + seed)
        model = _torch_model(net, gen)
        X = _inputs(T, 256, rho, gen)
        ev = emp.fisher_eigenvalues(model, X)
        tops.append(ev[:C].mean())
        traces.append(ev.sum())
    assert np.mean(tops) == pytest.approx(r.lambda_max, rel=0.08)
    assert np.mean(traces) == pytest.approx(r.trace, rel=0.04)


def _sampled_conditional(rng, net, q_in):
    """Eigenvalues of Φ/N of one sampled square network (numpy): G_1 = a_1 I, G_l = a_l I + W^l D_{l-1} G D W^{lᵀ}."""
    N, L = net.widths[0], net.depth
    x = rng.standard_normal(N)
    x *= math.sqrt(q_in * N) / np.linalg.norm(x)
    Ws = []
    for i in range(L + 1):
        s = net.sigma_w[i]
        if net.weights[i] == "orthogonal":
            Q, R = np.linalg.qr(rng.standard_normal((N, N)))
            Ws.append(s * Q * np.sign(np.diag(R)))
        else:
            Ws.append(s * rng.standard_normal((N, N)) / math.sqrt(N))
    xs, ds = [x], []
    for l in range(L):
        f, df = SMOOTH[net.activations[l].name] if net.activations[l].name != "relu" else (
            lambda h: np.maximum(h, 0), lambda h: (h > 0).astype(float))
        h = Ws[l] @ xs[-1] + net.sigma_b[l] * rng.standard_normal(N)
        ds.append(df(h))
        xs.append(f(h))
    beta = [1.0 if b else 0.0 for b in net.biases]
    G = (xs[0] @ xs[0] + beta[0]) * np.eye(N)
    for l in range(2, L + 2):
        M = Ws[l - 1] * ds[l - 2]
        G = (xs[l - 1] @ xs[l - 1] + beta[l - 1]) * np.eye(N) + M @ G @ M.T
    return np.linalg.eigvalsh(G / N), Ws, ds


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian", ["gaussian", "gaussian", "orthogonal", "gaussian"]])
def test_conditional_spectrum_per_layer_vs_sampled_networks(weights):
    """N = 320, 6 networks: mean, variance, edge (mean top eigenvalue) and the CDF at the quantiles, for three
    hidden layers with their own σ's and activations; and the Sokol–Park bound above every sampled λ_max with the
    sampled partial Jacobians' norms near the bound's. Measured over 16 networks (orthogonal / Gaussian): seed-to-seed
    spread of the mean 3.2 / 6.0 %, of the variance 4.7 / 10 %, of the top eigenvalue 2.0 / 5.9 % (ReLU's sparse D make
    every a_l fluctuate: |x^l|²/N of one input varies by O(N^{-1/2})), and the top eigenvalue 2 / 5 % below the
    limiting edge (finite N); tolerances ≥ 3 standard errors of the mean of 16 plus that offset."""
    N, q_in = 320, 1.0
    net = mf.Network((N,) * 5, [1.1, 1.45, 0.95, 1.15], [0.2, 0.1, 0.3, 0.0], ["tanh", "relu", "tanh"], weights,
                     [True, True, True, False])
    r = mf.conditional_fisher_spectrum(net, input_norm=q_in)
    rng = np.random.default_rng(21)
    runs = [_sampled_conditional(rng, net, q_in) for _ in range(16)]
    evs = [e for e, _, _ in runs]
    ev = np.concatenate(evs)
    orth = weights == "orthogonal"  # Gaussian or mixed kinds: the Gaussian tolerances
    assert ev.mean() == pytest.approx(r.mean, rel=0.04 if orth else 0.05)
    assert ev.var() == pytest.approx(r.variance, rel=0.06 if orth else 0.1)
    assert np.mean([e.max() for e in evs]) == pytest.approx(r.lambda_max, rel=0.04 if orth else 0.1)
    xs, w = _support_grid(r, 800)
    cdf = np.cumsum(r.density(xs) * w)
    for loc, mass in r.atoms:
        cdf = cdf + mass * (xs >= loc)
    for p in (0.1, 0.25, 0.5, 0.75, 0.9) if orth else (0.25, 0.5, 0.75, 0.9):
        assert np.interp(np.quantile(ev, p), xs, cdf) == pytest.approx(p, abs=0.04), p
    # Sokol–Park: an upper bound on every sampled λ_max; ‖J_l‖² of the sampled J_l = W^{L+1} D_L ⋯ W^{l+1} D_l
    b = mf.sokol_park_bound(net, input_norm=q_in)
    assert b.bound >= r.lambda_max
    assert all(e.max() <= b.bound for e in evs)
    # (measured over 6 networks: sampled/theory 0.98–1.00 ± 1.4 % orthogonal, 0.94–0.98 ± 7.5 % Gaussian, whose finite-N
    # top singular values sit below the limiting edge); the mean over the 16 networks
    L = net.depth
    tops = np.zeros(L + 1)
    for e, Ws, ds in runs:
        J = np.eye(N)
        for l in range(L, 0, -1):
            J = J @ (Ws[l] * ds[l - 1])
            tops[l] += np.linalg.norm(J, 2) ** 2 / len(runs)
    for l in range(1, L + 1):
        assert tops[l] == pytest.approx(b.jacobian_norms[l], rel=0.04 if orth else 0.12), l


# ================================================================================================ refusals, records
def test_arguments_given_by_the_network_are_refused():
    net = _net(MIXED)
    with pytest.raises(InvalidParameterError, match="sigma_w is given by the network"):
        mf.fisher_statistics(net, 8)  # n_samples is a keyword for a network
    with pytest.raises(InvalidParameterError, match="width, n_outputs are given by the network"):
        mf.fisher_statistics(net, n_samples=8, width=20, n_outputs=3)
    with pytest.raises(InvalidParameterError, match="n_samples"):
        mf.fisher_statistics(net)
    sq = mf.Network((32,) * 4, 1.1, 0.1, "tanh", "orthogonal")
    for fn in (mf.conditional_fisher_spectrum, mf.sokol_park_bound):
        with pytest.raises(InvalidParameterError, match="weights is given by the network"):
            fn(sq, weights="gaussian")
        with pytest.raises(InvalidParameterError, match="depth, width are given by the network"):
            fn(sq, depth=2, width=32)
    with pytest.raises(InvalidParameterError, match="width, n_samples missing"):
        mf.fisher_statistics("tanh", 1.0, 0.1, 3)
    with pytest.raises(InvalidParameterError, match="width missing"):
        mf.conditional_fisher_spectrum("tanh", 1.0, 0.1, 3)


@pytest.mark.parametrize("fn", [mf.conditional_fisher_spectrum, mf.sokol_park_bound])
def test_non_square_networks_are_refused(fn):
    with pytest.raises(InvalidParameterError, match="layer 2's width N_2 = 48 differs from N_0 = 64"):
        fn(mf.Network((64, 64, 48, 64), 1.0, 0.1, "tanh"))
    with pytest.raises(InvalidParameterError, match="the output width C = 10 differs"):
        fn(mf.Network((64, 64, 64, 10), 1.0, 0.1, "tanh"))
    with pytest.raises(InvalidParameterError, match="square layers"):
        fn(mf.Network.uniform("tanh", 1.0, 0.1, 3, 64, input_width=32, output_width=64))


def test_conditional_first_layer_weight_kind_does_not_matter():
    """W^1 enters only through q^1 (the same for both kinds): its kind does not change the conditional spectrum."""
    N = 64
    a = mf.conditional_fisher_spectrum(mf.Network((N,) * 4, [1.1, 1.0, 1.2], 0.1, "tanh", ["gaussian", "orthogonal",
                                                                                             "orthogonal"]))
    b = mf.conditional_fisher_spectrum(mf.Network((N,) * 4, [1.1, 1.0, 1.2], 0.1, "tanh", "orthogonal"))
    assert (a.mean, a.variance, a.lambda_max) == (b.mean, b.variance, b.lambda_max)
    xs = np.linspace(b.shift[-1], b.lambda_max, 9)[1:-1]
    assert np.array_equal(a.density(xs), b.density(xs))


def test_results_record_the_network_and_survive_json():
    net = _net(MIXED)
    r = mf.fisher_statistics(net, n_samples=3, input_correlation=0.1)
    assert r.activation == "tanh,relu,tanh" and math.isnan(r.sigma_w) and r.weights == "gaussian"
    back = FisherStatistics.from_json(r.to_json())
    assert back.network == net.to_dict() and mf.Network.from_dict(back.network) == net
    assert back.lambda_max == r.lambda_max
    sq = mf.Network((48,) * 4, [1.0, 1.2, 0.9], 0.1, ["tanh", "relu"], ["gaussian", "orthogonal", "orthogonal"])
    c = mf.conditional_fisher_spectrum(sq)
    assert c.to_dict()["network"] == sq.to_dict() and c.weights == "mixed" and c.activation == "tanh,relu"
    assert isinstance(c, ConditionalFisherSpectrum)
    b = mf.sokol_park_bound(sq)
    assert isinstance(b, SokolParkBound)
    assert mf.Network.from_dict(SokolParkBound.from_json(b.to_json()).network) == sq
