"""propagate(network): per-layer length and correlation maps and per-layer χ_l (THEORY §8; issue 13 item 2).

References are written here: a per-layer loop with numpy Gauss–Hermite for tanh (q ≤ 0.7, where 120 nodes are
accurate to ~1e-13: tanh's poles sit at ±iπ/2), the closed forms of THEORY §1's table for erf, ReLU and linear, and
sampled networks for the meaning of Π χ_l.
"""

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import NumericalError

Z, W = np.polynomial.hermite_e.hermegauss(120)
W = W / math.sqrt(2.0 * math.pi)  # E over a standard Gaussian


def _tanh_e2(q):
    return float(W @ np.tanh(math.sqrt(q) * Z) ** 2)


def _tanh_mu1(q):
    return float(W @ (1.0 - np.tanh(math.sqrt(q) * Z) ** 2) ** 2)


def _tanh_i(q, c):
    s = math.sqrt(q)
    u1 = s * Z[:, None]
    u2 = s * (c * Z[:, None] + math.sqrt(1.0 - c * c) * Z[None, :])
    return float(W @ (np.tanh(u1) * np.tanh(u2)) @ W)


# THEORY §1, table of closed forms: E_q[φ²], μ_1(q) = E_q[φ'²], I_φ(q, q, c q)
REF = {
    "tanh": (_tanh_e2, _tanh_mu1, _tanh_i),
    "erf": (lambda q: 2 / math.pi * math.asin(2 * q / (1 + 2 * q)),
            lambda q: 4 / math.pi / math.sqrt(1 + 4 * q),
            lambda q, c: 2 / math.pi * math.asin(2 * c * q / (1 + 2 * q))),
    "relu": (lambda q: q / 2, lambda q: 0.5,
             lambda q, c: q / (2 * math.pi) * (math.sin(math.acos(c)) + (math.pi - math.acos(c)) * c)),
    "linear": (lambda q: q, lambda q: 1.0, lambda q, c: c * q),
}


def reference_trajectory(names, sw, sb, q0, c0):
    """THEORY §8 written out: q^1 = (σ_w^1)² q0 + (σ_b^1)², q^l = (σ_w^l)² E_{q^{l-1}}[φ_{l-1}²] + (σ_b^l)²,
    c likewise with I_φ, χ_l = (σ_w^l)² μ_1,l(q^l)."""
    L = len(names)
    q, c, chi = [q0], [c0], [math.nan]
    q.append(sw[0] ** 2 * q0 + sb[0] ** 2)
    c.append((sw[0] ** 2 * q0 * c0 + sb[0] ** 2) / q[1])
    for l in range(1, L + 1):
        e2, mu1, two = REF[names[l - 1]]
        chi.append(sw[l - 1] ** 2 * mu1(q[l]))
        if l == L:
            break
        q.append(sw[l] ** 2 * e2(q[l]) + sb[l] ** 2)
        c.append(min(1.0, (sw[l] ** 2 * two(q[l], c[l]) + sb[l] ** 2) / q[l + 1]))
    return np.array(q), np.array(c), np.array(chi)


NAMES = ["tanh", "erf", "relu", "tanh", "linear"]
SW = [1.0, 1.5, 1.3, 1.2, 0.9, 1.1]
SB = [0.2, 0.1, 0.0, 0.3, 0.05, 0.0]
NET = mf.Network((7, 30, 20, 40, 10, 25, 3), SW, SB, NAMES,
                 ["gaussian", "orthogonal", "gaussian", "orthogonal", "gaussian", "gaussian"],
                 [True, True, False, True, True, False])


@pytest.mark.parametrize("q0, c0", [(0.5, 0.5), (0.25, -0.25), (0.5, 0.0), (0.125, 1.0)])
def test_per_layer_network_against_a_written_out_loop(q0, c0):
    tr = mf.propagate(NET, q0=q0, c0=c0)
    q, c, chi = reference_trajectory(NAMES, SW, SB, q0, c0)
    assert tr.depth == 5 and len(tr.q) == 6
    assert max(q) < 0.75  # the Gauss–Hermite reference's range
    np.testing.assert_allclose(tr.q, q, rtol=1e-12, atol=0)
    np.testing.assert_allclose(tr.c, c, rtol=0, atol=1e-12)
    assert math.isnan(tr.chi[0])
    np.testing.assert_allclose(tr.chi[1:], chi[1:], rtol=1e-12, atol=0)


def test_first_layer_is_scaled_to_the_data_and_the_readout_is_not_in_the_trajectory():
    # q^1 = (σ_w^1)² q0 + (σ_b^1)² exactly; changing the readout's σ_w, σ_b changes nothing
    tr = mf.propagate(NET, q0=2.0, c0=0.25)
    assert tr.q[1] == 1.0 * 2.0 + 0.2**2
    assert tr.c[1] == pytest.approx((2.0 * 0.25 + 0.04) / 2.04, rel=1e-15)
    other = mf.Network(NET.widths, SW[:-1] + [3.0], SB[:-1] + [0.0], NAMES, biases=[True] * 5 + [False])
    assert np.array_equal(mf.propagate(other, q0=2.0, c0=0.25).q, tr.q)


def test_result_records_the_network():
    tr = mf.propagate(NET, q0=0.5)
    assert tr.activation == "tanh,erf,relu,tanh,linear"
    assert math.isnan(tr.sigma_w) and math.isnan(tr.sigma_b)
    assert tr.network == NET.to_dict()
    assert mf.Network.from_dict(tr.network) == NET
    back = mf.Trajectory.from_json(tr.to_json())
    assert back.network == NET.to_dict() and np.array_equal(back.q, tr.q)
    assert mf.propagate("tanh", 1.2, 0.1, 3).network is None


@pytest.mark.parametrize("phi", ["tanh", "erf", "relu", "gelu", "selu", "linear"])
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_uniform_network_is_the_uniform_call_bitwise(phi, weights):
    sw, sb, L = 1.375, 0.25, 7
    ref = mf.propagate(phi, sw, sb, L, q0=0.75, c0=0.375)
    for net in (mf.Network.uniform(phi, sw, sb, L, 64, input_width=16, weights=weights),
                mf.Network((16,) + (64,) * L + (1,), [sw] * (L + 1), [sb] * (L + 1), [phi] * L, weights)):
        tr = mf.propagate(net, q0=0.75, c0=0.375)
        for f in ("q", "c", "chi"):
            assert np.array_equal(getattr(tr, f), getattr(ref, f), equal_nan=True), f
        assert (tr.sigma_w, tr.sigma_b, tr.activation) == (ref.sigma_w, ref.sigma_b, ref.activation)
        assert tr.network == net.to_dict()


def test_chi_product_is_the_mean_squared_singular_value_of_sampled_jacobians():
    """E tr(JJᵀ)/N_L = Π_l χ_l for J = ∂x^L/∂x^0 of sampled networks with rectangular, Gaussian and orthogonal layers
    (seeded; tolerance 4 standard errors of the mean over draws plus an O(1/N) finite-width allowance)."""
    names = ["tanh", "erf", "tanh"]
    sw, sb = [1.2, 1.6, 1.1, 1.0], [0.1, 0.2, 0.0, 0.0]
    widths = (200, 300, 240, 360, 1)
    kinds = ["gaussian", "orthogonal", "gaussian", "gaussian"]
    net = mf.Network(widths, sw, sb, names, kinds, [True, True, False, False])
    q0 = 0.5
    expected = float(np.prod(mf.propagate(net, q0=q0).chi[1:]))
    rng = np.random.default_rng(20261206)
    fns = {"tanh": (np.tanh, lambda h: 1 - np.tanh(h) ** 2),
           "erf": (lambda h: np.asarray([math.erf(v) for v in h]), lambda h: 2 / math.sqrt(math.pi) * np.exp(-h * h))}
    values = []
    for _ in range(24):
        x = rng.standard_normal(widths[0])
        x *= math.sqrt(q0 * widths[0]) / np.linalg.norm(x)
        J = np.eye(widths[0])
        for l in range(3):
            n_in, n_out = widths[l], widths[l + 1]
            if kinds[l] == "gaussian":
                Wl = rng.standard_normal((n_out, n_in)) * sw[l] / math.sqrt(n_in)
            else:
                a = rng.standard_normal((max(n_out, n_in), min(n_out, n_in)))
                Q, _ = np.linalg.qr(a)
                O = Q if n_out >= n_in else Q.T
                Wl = sw[l] * math.sqrt(max(n_out, n_in) / n_in) * O
            h = Wl @ x + sb[l] * rng.standard_normal(n_out)
            f, df = fns[names[l]]
            x = f(h)
            J = df(h)[:, None] * (Wl @ J)
        values.append(np.sum(J * J) / widths[3])
    values = np.array(values)
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean() - expected) <= 4 * se + 3.0 / min(widths[:4]) * expected, (values.mean(), expected, se)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma_w=1.0), "sigma_w is given by the network"),
    (dict(sigma_b=0.1), "sigma_b is given by the network"),
    (dict(depth=3), "depth is given by the network"),
    (dict(sigma_w=1.0, depth=3), "sigma_w, depth are given by the network"),
])
def test_network_parameters_cannot_be_given_twice(kwargs, match):
    with pytest.raises(mf.InvalidParameterError, match=match):
        mf.propagate(NET, **kwargs)


def test_uniform_call_names_what_is_missing():
    with pytest.raises(mf.InvalidParameterError, match="depth missing"):
        mf.propagate("tanh", 1.0, 0.1)
    with pytest.raises(mf.InvalidParameterError, match="sigma_w, sigma_b, depth missing"):
        mf.propagate("tanh")
    with pytest.raises(mf.InvalidParameterError, match="q0 must be > 0"):
        mf.propagate(NET, q0=0.0)


def test_overflow_is_a_numerical_error_not_a_warning():
    """ReLU at σ_w = 2 doubles q per layer: 2^1100 overflows float64 near layer 1024 (warnings are errors in pytest)."""
    with pytest.raises(NumericalError, match="overflowed at layer"):
        mf.propagate("relu", 2.0, 0.1, 1100)
