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
