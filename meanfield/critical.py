"""The order-to-chaos critical line χ_1 = 1 and phase diagrams (THEORY §1).

Parametrised by q* (Pennington et al. 2017, "Resurrecting the sigmoid", §2; Schoenholz et al. 2017 §3):
``σ_w² = 1/μ_1(q*)``, ``σ_b² = q* - E_{q*}[φ²]/μ_1(q*)`` where σ_b² ≥ 0.
"""

from __future__ import annotations

import math

import numpy as np

from meanfield._validate import as_array, is_scalar, nonnegative, positive, scalar_or_array
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, NoCriticalPointError
from meanfield.propagation import MAXITER, RTOL
from meanfield.results import PhaseDiagram

__all__ = ["critical_point", "critical_sigma_w", "critical_sigma_b", "phase_diagram"]

Q_SCAN_LO = 2.0**-34  # the critical-line scans start here (the moment table's lower end) ...
Q_SCAN_HI = 1e12  # ... and give up here: no critical point with q* below this
NEG_TOL = 1e-13  # σ_b² in [-NEG_TOL·q*, 0) is rounding of 0 (the point σ_b = 0), below that σ_b² < 0 is no solution


def _moments(act, q):
    k = act.kernels
    out = np.empty(k.N_MOMENTS)
    k.moments(q, act.table, out)
    return out


def _point_from_q(act, q):
    m = _moments(act, q)
    sw2 = 1.0 / m[2]
    sb2 = q - m[0] / m[2]
    if sb2 < 0.0:
        if sb2 < -NEG_TOL * q:
            raise NoCriticalPointError(
                f"{act.name}: no critical point with q* = {q:.6g}: it would need σ_b² = {sb2:.6g} < 0"
            )
        sb2 = 0.0
    return math.sqrt(sw2), math.sqrt(sb2)


def critical_point(phi, q_star):
    """(σ_w, σ_b) on the critical line whose fixed point is ``q_star`` [vec] (σ_w² = 1/μ_1(q*), σ_b² = q* - E φ²/μ_1).

    Raises NoCriticalPointError where that would need σ_b² < 0.
    """
    act = get_activation(phi)
    qa = positive(q_star, "q_star")
    sw = np.empty(qa.shape)
    sb = np.empty(qa.shape)
    for idx in np.ndindex(qa.shape):
        sw[idx], sb[idx] = _point_from_q(act, float(qa[idx]))
    scal = qa.ndim == 0
    return scalar_or_array(sw, scal), scalar_or_array(sb, scal)


def _homogeneous_sigma_w(act):
    return 1.0 / math.sqrt(_moments(act, 1.0)[2])


def _critical_q_for_sigma_b(act, sb):
    """q* on the critical line with bias σ_b (the smallest, if several)."""
    sb2 = sb * sb
    if act.is_homogeneous:
        if sb > 0.0:
            raise NoCriticalPointError(
                f"{act.name} is positively homogeneous: χ_1 does not depend on q*, and with sigma_b={sb:.6g} > 0 the"
                f" length map has no finite fixed point at the critical sigma_w={_homogeneous_sigma_w(act):.6g};"
                " the only critical point is sigma_b = 0"
            )
        return math.nan
    if sb == 0.0 and act.phi0 == 0.0:
        return 0.0
    q, st, it = act.kernels.critical_scan(sb2, act.table, Q_SCAN_LO, Q_SCAN_HI, RTOL, MAXITER)
    if st == 2:
        raise NoCriticalPointError(f"{act.name}: no critical point with sigma_b={sb:.6g} (searched q* ≤ {Q_SCAN_HI:g})")
    if st == 4:
        raise NoCriticalPointError(
            f"{act.name}: sigma_b={sb:.6g} is below the critical line's range (q - E φ²/μ_1 > σ_b² already at"
            f" q = {Q_SCAN_LO:.3g})"
        )
    if st != 0:
        raise ConvergenceError(f"{act.name}: critical q* for sigma_b={sb:.6g} did not converge")
    return q


def critical_sigma_w(phi, sigma_b):
    """σ_w on the critical line χ_1 = 1 for bias σ_b [vec] (the branch with the smallest q* if several).

    Raises NoCriticalPointError where none exists (ReLU, leaky ReLU and linear with σ_b > 0).
    """
    act = get_activation(phi)
    sb = nonnegative(sigma_b, "sigma_b")
    out = np.empty(sb.shape)
    for idx in np.ndindex(sb.shape):
        q = _critical_q_for_sigma_b(act, float(sb[idx]))
        if math.isnan(q):
            out[idx] = _homogeneous_sigma_w(act)
        elif q == 0.0:
            d = act.dphi0
            if d == 0.0:
                raise NoCriticalPointError(f"{act.name}: φ'(0) = 0, so χ_1 → 0 as q* → 0: no critical point at σ_b = 0")
            out[idx] = 1.0 / abs(d)
        else:
            out[idx] = 1.0 / math.sqrt(_moments(act, q)[2])
    return scalar_or_array(out, sb.ndim == 0)


def critical_sigma_b(phi, sigma_w):
    """σ_b on the critical line for weight scale σ_w [vec]: solve σ_w² μ_1(q*) = 1, then σ_b² = q* - E φ²/μ_1.

    Raises NoCriticalPointError where μ_1(q) never equals 1/σ_w² with σ_b² ≥ 0 (tanh needs σ_w ≥ 1).
    """
    act = get_activation(phi)
    sw = positive(sigma_w, "sigma_w")
    out = np.empty(sw.shape)
    for idx in np.ndindex(sw.shape):
        s = float(sw[idx])
        if act.is_homogeneous:
            s0 = _homogeneous_sigma_w(act)
            if abs(s - s0) > 1e-12 * s0:
                raise NoCriticalPointError(
                    f"{act.name}: χ_1 = σ_w² μ_1 does not depend on q*; only sigma_w={s0:.12g} is critical, got {s}"
                )
            out[idx] = 0.0
            continue
        out[idx] = _sigma_b_for_sigma_w(act, s)
    return scalar_or_array(out, sw.ndim == 0)


def _sigma_b_for_sigma_w(act, s):
    target = 1.0 / (s * s)
    qs = np.geomspace(Q_SCAN_LO, 1e8, 300)
    mu = np.array([_moments(act, q)[2] for q in qs])
    f = mu - target
    roots = []
    if act.phi0 == 0.0 and abs(act.dphi0) > 0 and abs(act.dphi0 ** 2 - target) <= 1e-14 * target:
        roots.append(0.0)
    for i in np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) < 0):
        lo, hi = qs[i], qs[i + 1]
        for _ in range(200):  # bisection in log q to rounding level (cheap: table lookups)
            mid = math.sqrt(lo * hi)
            if (_moments(act, mid)[2] - target) * (_moments(act, lo)[2] - target) <= 0:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-15 * hi:
                break
        roots.append(0.5 * (lo + hi))
    for q in roots:
        if q == 0.0:
            return 0.0
        m = _moments(act, q)
        sb2 = q - m[0] / m[2]
        if sb2 >= -NEG_TOL * q:
            return math.sqrt(max(sb2, 0.0))
    raise NoCriticalPointError(
        f"{act.name}: no critical point with sigma_w={s:.6g} and σ_b² ≥ 0 (μ_1(q*) = 1/σ_w² has no admissible root;"
        f" for tanh sigma_w must be ≥ 1)"
    )


def _progress_bar(done, total, label="phase diagram"):
    import sys

    n = int(30 * done / total)
    sys.stderr.write(f"\r{label} [{'#' * n}{'.' * (30 - n)}] {done}/{total} rows")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def phase_diagram(phi, sigma_w_grid, sigma_b_grid, q0=1.0, correlations=True, progress=False) -> PhaseDiagram:
    """q*, χ_1, c*, χ_c, ξ_c on the grid σ_w × σ_b (arrays of shape (len(σ_w), len(σ_b))), Numba-parallel over σ_b.

    Along each σ_b row the fixed points are continued from the previous σ_w. ``correlations=False`` skips c* and χ_c
    (two-dimensional quadrature, ~100× the cost of q* and χ_1). Points where q diverges have q* = inf, NaN elsewhere and
    ``status == 2`` (see :attr:`PhaseDiagram.diverges`). ``progress=True`` draws a progress bar on stderr (the grid is
    then computed in blocks of σ_b rows).
    """
    act = get_activation(phi)
    sw = np.atleast_1d(positive(sigma_w_grid, "sigma_w_grid")).astype(np.float64).reshape(-1)
    sb = np.atleast_1d(nonnegative(sigma_b_grid, "sigma_b_grid")).astype(np.float64).reshape(-1)
    q0v = float(positive(q0, "q0"))
    nb, nw = sb.size, sw.size
    q = np.empty((nb, nw))
    chi = np.empty((nb, nw))
    c = np.full((nb, nw), np.nan)
    chic = np.full((nb, nw), np.nan)
    status = np.empty((nb, nw), dtype=np.int64)
    step = max(1, nb // 20) if progress else nb
    for start in range(0, nb, step):
        rows = slice(start, min(nb, start + step))
        act.kernels.grid_kernel(
            sw**2, sb[rows] ** 2, q0v, act.table, bool(correlations), RTOL, MAXITER,
            q[rows], chi[rows], c[rows], chic[rows], status[rows],
        )
        if progress:
            _progress_bar(rows.stop, nb)
    if np.any(status == 1):
        raise ConvergenceError(f"{act.name}: {int(np.sum(status == 1))} grid points did not converge")
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(chic >= 1.0, np.inf, -1.0 / np.log(np.where(chic > 0, chic, np.nan)))
    return PhaseDiagram(
        activation=act.name,
        sigma_w=sw,
        sigma_b=sb,
        q_star=q.T.copy(),
        chi1=chi.T.copy(),
        c_star=c.T.copy(),
        chi_c=chic.T.copy(),
        xi_c=xi.T.copy(),
        status=status.T.copy(),
        meta=dict(q0=q0v, correlations=bool(correlations)),
    )
