"""The Chebyshev table of the one-point moments of an activation (see :mod:`meanfield._kernels` for its layout).

For each octave ``2^(LO + j) ≤ q < 2^(LO + j + 1)`` of ``TABLE_LOG2_LO ≤ log2 q < TABLE_LOG2_HI`` and each tabulated
moment (E φ², dE φ²/dq, μ_1, μ_2), the coefficients of the degree-``TABLE_DEG`` Chebyshev interpolant in
``x = 2(log2 q - LO - j) - 1`` at the Chebyshev points ``x_i = cos(π(i + ½)/(deg + 1))``:
``c_m = (2 - δ_m0)/(deg + 1) Σ_i f(x_i) cos(π m (i + ½)/(deg + 1))``. The fifth row is the x-derivative of the μ_1
interpolant (``c'_{m-1} = c'_{m+1} + 2m c_m``), which the kernels rescale to dμ_1/dq.

The table is built in Python around the activation's compiled checked rule ``onepoint_checked`` (the same
specialisation the kernels' ``moments`` falls back on outside the table, so nothing is compiled for the table alone).
Its error estimate, per octave and moment, is measured at the midpoints between the Chebyshev points against direct
quadrature: ``|interpolant - I| + err(there) + max err(at the points)``, relative to the largest scale of that moment on
the octave (the rule applied to the absolute integrand: the value itself for E φ², μ_1, μ_2).

Where the rule flags a moment (not finite, tails not decayed, not resolved: see ``onepoint_checked``) at any point of an
octave, or the octave's error exceeds the kernels' ``DIRECT_RTOL``, that octave's row of that moment is NaN: the
table never interpolates what the quadrature could not bound. ``moments`` then integrates directly with the checked
rule at that q and returns NaN for a moment it cannot bound (the solvers turn a non-finite moment into an error).
``valid[octave, moment]`` records which rows hold numbers.
"""

from __future__ import annotations

import numpy as np

VERSION = 2  # bumped whenever the table's contents change meaning (cached tables of another version are rebuilt)


def build_table(k):
    """``(tab, err, valid)``: the coefficients ``tab[octave, moment, m]`` of the kernels module ``k``, the estimated
    relative error ``err[octave, moment]`` of the first ``k.N_TABULATED`` moments (NaN where not valid) and
    ``valid[octave, moment]``."""
    lo, deg, n_mom, n_tab = k.TABLE_LOG2_LO, k.TABLE_DEG, k.N_MOMENTS, k.N_TABULATED
    n_oct = k.TABLE_LOG2_HI - lo
    i = np.arange(deg + 1)
    nodes = np.cos(np.pi * (i + 0.5) / (deg + 1))  # descending
    mids = 0.5 * (nodes[:-1] + nodes[1:])
    x = np.concatenate((nodes, mids))
    qs = 2.0 ** (lo + np.arange(n_oct)[:, None] + 0.5 * (x[None, :] + 1.0))
    val = np.empty(qs.shape + (n_mom,))
    qerr = np.empty(qs.shape + (n_mom,))
    scale = np.empty(qs.shape + (n_mom,))
    rule = k.onepoint_checked
    beyond = np.empty(n_mom)
    for q, a, b, c in zip(qs.ravel().tolist(), val.reshape(-1, n_mom), qerr.reshape(-1, n_mom), scale.reshape(-1, n_mom)):
        rule(q, a, b, c, beyond)
    rtol = np.asarray(k.DIRECT_RTOL)[:n_tab]
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(val[..., :n_tab]) & (qerr[..., :n_tab] <= rtol * scale[..., :n_tab])
        ok_points = ok.all(axis=1)  # (octave, moment)
    at_nodes = np.where(np.isfinite(val), val, 0.0)[:, : deg + 1, :]  # (octave, i, moment)

    cos_mi = np.cos(np.pi * np.outer(i, i + 0.5) / (deg + 1))  # [m, i]
    tab = np.einsum("mi,jik->jkm", cos_mi, at_nodes) * (2.0 / (deg + 1))
    tab[:, :, 0] *= 0.5

    cheb_mid = np.cos(np.outer(np.arccos(mids), i))  # T_m(x) at the midpoints, [x, m]
    interp = np.einsum("xm,jkm->jxk", cheb_mid, tab[:, :n_tab, :])
    mid = np.where(np.isfinite(val), val, 0.0)[:, deg + 1 :, :n_tab]
    e = np.abs(interp - mid) + qerr[:, deg + 1 :, :n_tab] + qerr[:, : deg + 1, :n_tab].max(axis=1, keepdims=True)
    sc = scale[..., :n_tab].max(axis=1)  # (octave, moment)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        err = np.where(sc > 0.0, e.max(axis=1) / sc, 0.0)
        valid = ok_points & (err <= rtol) & np.isfinite(sc)
    err = np.where(valid, err, np.nan)
    tab[:, :n_tab, :][~valid] = np.nan
    c = tab[:, 2, :]  # μ_1: its x-derivative's coefficients by the backward recursion (NaN where μ_1 is)
    dc = np.zeros((n_oct, deg + 2))
    for m in range(deg, 0, -1):
        dc[:, m - 1] = dc[:, m + 1] + 2.0 * m * c[:, m]
    dc[:, 0] *= 0.5
    tab[:, 4, :] = dc[:, : deg + 1]
    return np.ascontiguousarray(tab), err, valid


def write_shipped_tables() -> list:
    """Build the tables of the named activations that have no closed forms and write them to
    ``meanfield/tables/<key>.npz`` (``make tables``; the key: :func:`meanfield.activations.shipped_table_key`),
    removing the tables of other keys. Returns the files written."""
    from meanfield.activations import REGISTRY, SHIPPED_TABLES, get_activation, shipped_table_path

    SHIPPED_TABLES.mkdir(exist_ok=True)
    for old in SHIPPED_TABLES.glob("*.npz"):
        old.unlink()
    written = []
    for name in REGISTRY:
        k = get_activation(name).kernels
        if k.CLOSED_ONEPOINT:
            continue
        tab, err, valid = build_table(k)
        path = shipped_table_path(k)
        np.savez_compressed(path, tab=tab, err=err, valid=valid, version=VERSION, name=name)
        written.append(path)
    return written
