"""The fast paths of issue 14 agree with the previous ones, which stay callable for the benchmarks' baselines.

* ``meanfield.fisher._BASELINE``: the Sokol–Park bound with one full edge search per partial Jacobian
  (``_tail_log_edges_each``) instead of the warm-started searches over one pack of laws (``_tail_log_edges``): every
  norm and the bound to 1e-10 relative.
* ``meanfield.spectra._BASELINE``: the per-layer trajectory by ``propagate`` and every law's contour rule built up
  front, instead of the length-map kernel and contour rules on the density's first call: edges to 1e-10, densities to
  1e-8 relative where ρ is not tiny (above 1e-6 of its largest value on the grid).
* Gaussian products whose laws have no atom at 0 are reported without a gap (no lower edge): checked against the
  closed form of the linear Gaussian network (Fuss–Catalan, whose support is [0, (L+1)^{L+1}/L^L]) and against the
  density, which is positive down to the smallest λ.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield import fisher, spectra
from meanfield.spectra import _tail_log_edges, _tail_log_edges_each, jacobian_spectrum


class _flag:
    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.module._BASELINE = True

    def __exit__(self, *exc):
        self.module._BASELINE = False


CASES = [
    ("tanh", "crit", 1.0),
    ("tanh", (1.5, 0.3), 1.0),
    ("erf", (1.2, 0.1), 2.0),
    ("relu", (math.sqrt(2.0), 0.0), 1.0),
    ("gelu", (1.5, 0.1), 1.0),
    ("softplus", (1.1, 0.2), 0.5),
]


@pytest.mark.parametrize("phi, params, norm", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_sokol_park_matches_one_search_per_tail(phi, params, norm, weights):
    sw, sb = mf.critical_point("tanh", 1.0 / 64) if params == "crit" else params
    new = fisher.sokol_park_bound(phi, sw, sb, 24, 400, weights=weights, input_norm=norm)
    with _flag(fisher):
        old = fisher.sokol_park_bound(phi, sw, sb, 24, 400, weights=weights, input_norm=norm)
    np.testing.assert_allclose(new.jacobian_norms[1:], old.jacobian_norms[1:], rtol=1e-10)
    assert new.bound == pytest.approx(old.bound, rel=1e-10)


def test_tail_log_edges_match_one_search_per_tail_at_depth_64():
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    act = mf.get_activation("tanh")
    for q0 in (1.0, 0.01):
        q = jacobian_spectrum("tanh", sw, sb, 64, q0=q0).q
        for g in (False, True):
            np.testing.assert_allclose(_tail_log_edges(act, sw, q, g), _tail_log_edges_each(act, sw, q, g),
                                       rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_per_layer_laws_match_the_previous_construction(weights):
    # depth 300 from q0 = 1: every layer its own q^l (~100 distinct laws), as at depth 10,000 but in a second
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    new = jacobian_spectrum("tanh", sw, sb, 300, weights=weights, q0=1.0)
    with _flag(spectra):
        old = jacobian_spectrum("tanh", sw, sb, 300, weights=weights, q0=1.0)
    assert len(new._solver["laws"]) > 50
    np.testing.assert_allclose(new.q, old.q, rtol=1e-12)
    assert new.edge == pytest.approx(old.edge, rel=1e-10)
    assert new.mean == pytest.approx(old.mean, rel=1e-10)
    assert new.support[0] == pytest.approx(old.support[0], rel=1e-10)
    x = np.linspace(0.0, new.edge, 62)[1:-1]
    dn, do = new.density(x), old.density(x)
    big = do > 1e-6 * do.max()
    np.testing.assert_allclose(dn[big], do[big], rtol=1e-8)


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_gaussian_without_atoms_has_no_gap(L):
    s = jacobian_spectrum("linear", 1.0, 0.0, L, weights="gaussian")
    assert s.support[0] == 0.0
    assert s.edge == pytest.approx(spectra.fuss_catalan_edge(L), rel=1e-10)
    x = spectra.fuss_catalan_edge(L) * np.array([1e-6, 1e-3, 0.1])
    np.testing.assert_allclose(s.density(x), spectra.fuss_catalan_density(x, L), rtol=1e-6)
    # tanh, Gaussian: positive density down to 1e-8 × the mean
    sw, sb = mf.critical_point("tanh", 0.5)
    t = jacobian_spectrum("tanh", sw, sb, L, weights="gaussian", q0=2.0)
    assert t.support[0] == 0.0
    assert np.all(t.density(t.mean * np.array([1e-8, 1e-4, 1e-2])) > 0.0)


@pytest.mark.parametrize("phi", ["tanh", "erf", "softplus", "gelu", "sigmoid", "elu"])
def test_batched_laws_are_the_single_laws(phi):
    """_d2_laws builds the real rules of many laws of one smooth activation together, and _contour_laws their contour
    rules: the same nodes, weights, moments and ends as _d2_law one by one (bitwise), over six decades of q and where
    φ'² rounds to 0 (tanh q > 4.5)."""
    act = mf.get_activation(phi)
    rng = np.random.default_rng(3)
    qs = [float(v) for v in np.exp(rng.uniform(math.log(1e-4), math.log(300.0), 24))] + [1.0 / 64, 1.0, 4.5, 100.0]
    for a, b in zip(spectra._d2_laws([act] * len(qs), qs), [spectra._d2_law(act, q, contour=False) for q in qs]):
        for f in ("atom_vals", "atom_mass", "node_vals", "node_wts", "raw_moments"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        for f in ("q", "top", "bottom", "rel_var", "zero_mass", "pieces", "mirror", "bottom_positive", "cont_bottom",
                  "zeros"):
            assert getattr(a, f) == getattr(b, f)
    # the contour rules of the density solver, stacked for all laws: bitwise those of _d2_law(contour=True)
    laws = spectra._d2_laws([act] * len(qs), qs)
    for a, q in zip(spectra._contour_laws([act] * len(qs), laws), qs):
        b = spectra._d2_law(act, q, contour=True)
        np.testing.assert_array_equal(a.cnode_vals, b.cnode_vals)
        np.testing.assert_array_equal(a.cnode_wts, b.cnode_wts)


def test_tail_log_edges_per_layer_match_one_search_per_tail():
    acts = ["tanh", "erf", "tanh", "erf", "tanh", "softplus"] * 3
    sws = [1.3, 0.9, 1.5, 1.1, 1.2, 1.0] * 3
    gs = [True, False, False, True, False, True] * 3
    q = np.exp(np.linspace(math.log(2.0), math.log(0.05), len(acts)))
    np.testing.assert_allclose(_tail_log_edges(acts, sws, q, gs), _tail_log_edges_each(acts, sws, q, gs),
                               rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------------ compressed chains
def _every_law(s):
    """The same spectrum with the density solved over every law (no compression)."""
    solver = {k: v for k, v in s._solver.items() if k != "compressed"}
    solver["compress"] = False
    return dataclasses.replace(s, _solver=solver)


COMPRESS_CASES = [  # (φ, q*, q0, depth, the smallest ρ/ρ_max compared)
    ("tanh", 1.0 / 64, 1.0, 400, 1e-6),
    ("erf", 1.0 / 64, 1.0, 300, 1e-6),
    ("tanh", 0.25, 16.0, 300, 1e-6),
    ("erf", 0.25, 16.0, 300, 1e-6),
    ("gelu", 4.0, 1.0, 300, 1e-6),
    # a kink at 0 and an atom (φ' = 1 on u > 0, mass 1/2 at every q): compressed too; within ~1e-3 of the upper edge's
    # scale the laws' own rule errors (~1e-10), which the solve over every law averages, reach ~1e-8
    ("elu", 0.25, 16.0, 300, 1e-3),
    ("selu", 0.25, 4.0, 300, 1e-3),
]


@pytest.mark.parametrize("phi, qs, q0, L, floor", COMPRESS_CASES, ids=[f"{c[0]}-{c[1]:g}" for c in COMPRESS_CASES])
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_compressed_chain_matches_every_law(phi, qs, q0, L, floor, weights):
    # a chain of ≥ 64 distinct laws (critical point at q* = qs, entered from q0) is solved on Chebyshev node laws in q;
    # the density agrees with the solve over every law to 1e-8 relative where ρ is not tiny (above ``floor`` of its
    # largest value on the grid)
    sw, sb = mf.critical_point(phi, qs)
    s = jacobian_spectrum(phi, sw, sb, L, weights=weights, q0=q0)
    x = np.linspace(0.0, s.edge, 82)[1:-1]
    d = s.density(x)
    comp = s._solver["compressed"]
    n_laws = len(s._solver["laws"])
    assert n_laws >= spectra.COMPRESS_MIN and comp is not None
    assert comp["cnt"].size < n_laws / 2
    # the weights of the nodes and the layers kept as they are sum to the depth (interpolation reproduces constants)
    assert comp["cnt"].sum() == pytest.approx(L, rel=1e-12)
    ref = _every_law(s).density(x)
    big = ref > floor * ref.max()
    assert big.sum() > 40
    np.testing.assert_allclose(d[big], ref[big], rtol=1e-8)


def test_compressed_chain_of_a_network_with_two_activations():
    # alternating tanh and erf layers, each with its own q^l: compressed per activation
    L = 300
    acts = ["tanh", "erf"] * (L // 2)
    sw = [1.02, 0.9] * (L // 2) + [1.0]  # near tanh's and erf's critical σ_w at small q*: slow convergence of q^l
    net = mf.Network([500] * (L + 1) + [10], sw, 0.002, acts)
    s = jacobian_spectrum(net, q0=4.0)
    comp = s._solver.get("compressed") or spectra._compress(s._solver)
    assert comp is not None and comp["cnt"].size < len(s._solver["laws"]) / 2
    x = np.linspace(0.0, s.edge, 62)[1:-1]
    d, ref = s.density(x), _every_law(s).density(x)
    big = ref > 1e-6 * ref.max()
    np.testing.assert_allclose(d[big], ref[big], rtol=1e-8)


def test_failed_interpolation_check_solves_with_every_law(monkeypatch):
    # with a tolerance no interpolant meets, every point is solved again over every law: exactly the full solve
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    s = jacobian_spectrum("tanh", sw, sb, 400, weights="orthogonal", q0=1.0)
    x = np.linspace(0.0, s.edge, 42)[1:-1]
    ref = _every_law(s).density(x)
    monkeypatch.setattr(spectra, "COMPRESS_TOL", -1.0)
    assert np.array_equal(s.density(x), ref)


@pytest.mark.parametrize("K", [5, 12, 16])
def test_node_weights_and_coefficients_reproduce_polynomials(K):
    # Σ_j W_j p(t_j) = Σ_g n_g p(t_g) for every polynomial of degree < K, and the coefficient matrix gives the Chebyshev
    # coefficients of values at the Lobatto points (numpy's chebval as the reference)
    rng = np.random.default_rng(K)
    t, bw, C = spectra._lobatto(K)
    tg = np.concatenate([rng.uniform(-1.0, 1.0, 50), [1.0, -1.0, t[1]]])
    n = rng.integers(1, 30, tg.size).astype(float)
    W = spectra._lagrange_sums(tg, n, t, bw)
    for _ in range(5):
        a = rng.normal(size=K)
        p = lambda u: np.polynomial.chebyshev.chebval(u, a)  # noqa: E731
        assert W @ p(t) == pytest.approx(n @ p(tg), rel=1e-12, abs=1e-12 * n.sum())
        np.testing.assert_allclose(C @ p(t), a, atol=1e-13 * np.abs(a).sum())


def test_interval_whose_node_laws_differ_in_kind_keeps_its_laws(monkeypatch):
    # a node law with mass at 0 (not of the kind of the continuous laws it would stand for) leaves its interval
    # uncompressed: here the only interval, so the chain is solved over every law
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    s = jacobian_spectrum("tanh", sw, sb, 400, weights="orthogonal", q0=1.0)
    build = spectra._d2_laws
    monkeypatch.setattr(spectra, "_d2_laws", lambda acts, qs, contour=False: [
        dataclasses.replace(law, zero_mass=0.25) for law in build(acts, qs, contour)])
    x = np.linspace(0.0, s.edge, 22)[1:-1]
    d = s.density(x)
    assert s._solver["compressed"] is None
    np.testing.assert_array_equal(d, _every_law(s).density(x))


def test_compressed_chain_in_blocks_of_points(monkeypatch):
    # the points go to the solver in blocks of COMPRESS_BLOCK (each block starts its own continuation): the same
    # density as the solve over every law
    sw, sb = mf.critical_point("tanh", 1.0 / 64)
    s = jacobian_spectrum("tanh", sw, sb, 400, weights="gaussian", q0=1.0)
    x = np.linspace(0.0, s.edge, 52)[1:-1]
    monkeypatch.setattr(spectra, "COMPRESS_BLOCK", 7)
    d = s.density(x)
    assert s._solver["compressed"] is not None
    ref = _every_law(s).density(x)
    big = ref > 1e-6 * ref.max()
    np.testing.assert_allclose(d[big], ref[big], rtol=1e-8)


@pytest.mark.slow
def test_compressed_chain_at_depth_2000_near_the_edge():
    # GELU from q0 = 1 to q* = 4 at depth 2,000 (2,000 distinct laws, one interval of 12 node laws): the stated accuracy
    # of the compressed solve against the solve over every law, 1e-8 where ρ > 1e-2 ρ_max and a few 1e-6 within 1e-3
    # of the upper edge (measured: 6e-9 and 2.5e-6; the solve over every law is itself off by 4e-7 there)
    sw, sb = mf.critical_point("gelu", 4.0)
    s = jacobian_spectrum("gelu", sw, sb, 2000, weights="gaussian", q0=1.0)
    x = s.edge * np.concatenate([np.linspace(0.02, 0.9, 12), 1.0 - np.geomspace(0.1, 1e-3, 12)])
    d = s.density(x)
    assert s._solver["compressed"]["cnt"].size == spectra.COMPRESS_NODES
    ref = _every_law(s).density(x)
    bulk = ref > 1e-2 * ref.max()
    assert bulk.sum() >= 8
    np.testing.assert_allclose(d[bulk], ref[bulk], rtol=1e-8)
    np.testing.assert_allclose(d, ref, rtol=5e-6)
