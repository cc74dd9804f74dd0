"""The Chebyshev table of the one-point moments of an activation (see :mod:`meanfield._kernels` for its layout).

For each octave ``2^(LO + j) ≤ q < 2^(LO + j + 1)`` of ``TABLE_LOG2_LO ≤ log2 q < TABLE_LOG2_HI`` and each tabulated
moment (E φ², dE φ²/dq, μ_1, μ_2), the coefficients of the degree-``TABLE_DEG`` Chebyshev interpolant in
``x = 2(log2 q - LO - j) - 1`` at the Chebyshev points ``x_i = cos(π(i + ½)/(deg + 1))``:
``c_m = (2 - δ_m0)/(deg + 1) Σ_i f(x_i) cos(π m (i + ½)/(deg + 1))``. The fifth row is the x-derivative of the μ_1
interpolant (``c'_{m-1} = c'_{m+1} + 2m c_m``), which the kernels rescale to dμ_1/dq.

The table is built in Python around the activation's compiled quadrature rule ``onepoint_rule`` (the same
specialisation the kernels' ``moments`` falls back on outside the table, so nothing is compiled for the table alone:
building it takes ~0.1 s, a compiled builder took seconds of compilation on a cold cache). Its error estimate, per
octave and moment, is measured at the midpoints between the Chebyshev points against direct quadrature:
``|interpolant - I_16| + |I_16 - I_10|`` (there) ``+ max |I_16 - I_10|`` (at the points), relative to the largest
value of that moment on the octave.
"""

from __future__ import annotations

import numpy as np

from meanfield._quad import W10, W16, X10, X16


def build_table(k):
    """``(tab, err)``: the coefficients ``tab[octave, moment, m]`` of the kernels module ``k`` and the estimated
    relative error ``err[octave, moment]`` of the first ``k.N_TABULATED`` moments."""
    lo, deg, n_mom, n_tab = k.TABLE_LOG2_LO, k.TABLE_DEG, k.N_MOMENTS, k.N_TABULATED
    n_oct = k.TABLE_LOG2_HI - lo
    i = np.arange(deg + 1)
    nodes = np.cos(np.pi * (i + 0.5) / (deg + 1))  # descending
    mids = 0.5 * (nodes[:-1] + nodes[1:])
    x = np.concatenate((nodes, mids))
    qs = 2.0 ** (lo + np.arange(n_oct)[:, None] + 0.5 * (x[None, :] + 1.0))
    v16 = np.empty(qs.shape + (n_mom,))
    v10 = np.empty(qs.shape + (n_mom,))
    rule = k.onepoint_rule
    for q, a, b in zip(qs.ravel().tolist(), v16.reshape(-1, n_mom), v10.reshape(-1, n_mom)):
        rule(q, X16, W16, a)
        rule(q, X10, W10, b)
    quad_err = np.abs(v16 - v10)[..., :n_tab]
    at_nodes = v16[:, : deg + 1, :]  # (octave, i, moment)

    cos_mi = np.cos(np.pi * np.outer(i, i + 0.5) / (deg + 1))  # [m, i]
    tab = np.einsum("mi,jik->jkm", cos_mi, at_nodes) * (2.0 / (deg + 1))
    tab[:, :, 0] *= 0.5
    c = tab[:, 2, :]  # μ_1: its x-derivative's coefficients by the backward recursion
    dc = np.zeros((n_oct, deg + 2))
    for m in range(deg, 0, -1):
        dc[:, m - 1] = dc[:, m + 1] + 2.0 * m * c[:, m]
    dc[:, 0] *= 0.5
    tab[:, 4, :] = dc[:, : deg + 1]

    cheb_mid = np.cos(np.outer(np.arccos(mids), i))  # T_m(x) at the midpoints, [x, m]
    interp = np.einsum("xm,jkm->jxk", cheb_mid, tab[:, :n_tab, :])
    mid16 = v16[:, deg + 1 :, :n_tab]
    e = np.abs(interp - mid16) + quad_err[:, deg + 1 :, :] + quad_err[:, : deg + 1, :].max(axis=1, keepdims=True)
    scale = np.abs(at_nodes[..., :n_tab]).max(axis=1)  # (octave, moment)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(scale > 0.0, e.max(axis=1) / scale, 0.0)
    return np.ascontiguousarray(tab), err
