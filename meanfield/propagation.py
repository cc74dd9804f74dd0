"""Signal propagation: length and correlation maps, their fixed points, χ_1, χ_c and depth scales (THEORY §1).

Conventions (THEORY §0): σ_w, σ_b are standard deviations; ``W_ij ~ N(0, σ_w²/N)``, ``b_i ~ N(0, σ_b²)``. Sources: Poole
et al. 2016, "Exponential expressivity in deep neural networks through transient chaos" (length map eq. 3, correlation map
eq. 5, χ_1 eq. 8); Schoenholz et al. 2017, "Deep information propagation" (depth scales ξ_q eq. 4, ξ_c eq. 9).
"""

from __future__ import annotations

import math

import numpy as np

from meanfield._validate import (
    as_array,
    correlation,
    integer,
    is_scalar,
    nonnegative,
    positive,
    scalar_or_array,
)
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, NoFixedPointError, NumericalError
from meanfield.results import STATUS, FixedPoint, Trajectory

__all__ = ["q_map", "c_map", "q_star", "chi1", "c_star", "fixed_point", "propagate", "CRITICAL_TOL"]

RTOL = 1e-14  # Newton stopping tolerance |Δx| ≤ RTOL |x| (quadratic convergence: the result is at rounding level)
MAXITER = 100
CRITICAL_TOL = 1e-9  # |χ_1 - 1| below this is reported as phase "critical" (χ_1 itself is accurate to ~1e-12)


def _moments(act, q):
    k = act.kernels
    out = np.empty(k.N_MOMENTS)
    k.moments(q, act.table, out)
    return out


def q_map(phi, q, sigma_w, sigma_b):
    """One layer of the length map: ``σ_w² E_q[φ²] + σ_b²`` [vec] (Poole et al. 2016 eq. 3)."""
    act = get_activation(phi)
    qa = positive(q, "q")
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    qb, swb, sbb = np.broadcast_arrays(qa, sw, sb)
    out = np.empty(qb.shape)
    for idx in np.ndindex(qb.shape):
        out[idx] = swb[idx] ** 2 * _moments(act, float(qb[idx]))[0] + sbb[idx] ** 2
    return scalar_or_array(out, is_scalar(q, sigma_w, sigma_b))


def c_map(phi, c, q, sigma_w, sigma_b):
    """One layer of the correlation map for two inputs of length q [vec] (Poole et al. 2016 eq. 5).

    ``c' = [σ_w² I_φ(q, q, c q) + σ_b²] / [σ_w² E_q φ² + σ_b²]``; at q = q* the denominator is q* (THEORY §1).
    """
    act = get_activation(phi)
    ca = correlation(c, "c")
    qa = positive(q, "q")
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    cb, qb, swb, sbb = np.broadcast_arrays(ca, qa, sw, sb)
    k = act.kernels
    buf = np.empty(2)
    out = np.empty(cb.shape)
    for idx in np.ndindex(cb.shape):
        qq = float(qb[idx])
        k.twopoint(qq, qq, float(cb[idx]) * qq, buf)
        sw2, sb2 = swb[idx] ** 2, sbb[idx] ** 2
        out[idx] = (sw2 * buf[0] + sb2) / (sw2 * _moments(act, qq)[0] + sb2)
    return scalar_or_array(out, is_scalar(c, q, sigma_w, sigma_b))


def _solve_q_star(act, sigma_w, sigma_b, q0):
    """Flat arrays in, (q*, χ_1, slope_q, status) out; raises NoFixedPointError where q diverges."""
    sw2 = np.ascontiguousarray(sigma_w, dtype=np.float64).reshape(-1) ** 2
    sb2 = np.ascontiguousarray(sigma_b, dtype=np.float64).reshape(-1) ** 2
    q0a = np.ascontiguousarray(q0, dtype=np.float64).reshape(-1)
    n = sw2.size
    q = np.empty(n)
    chi = np.empty(n)
    slope = np.empty(n)
    status = np.empty(n, dtype=np.int64)
    act.kernels.q_star_many(sw2, sb2, q0a, act.table, RTOL, MAXITER, q, chi, slope, status)
    bad = np.flatnonzero(status == 2)
    if bad.size:
        i = bad[0]
        raise NoFixedPointError(
            f"{act.name}: the length map has no finite fixed point at sigma_w={math.sqrt(sw2[i]):.6g},"
            f" sigma_b={math.sqrt(sb2[i]):.6g} (q grows without bound from q0={q0a[i]:.6g})"
        )
    bad = np.flatnonzero(status == 1)
    if bad.size:
        i = bad[0]
        raise ConvergenceError(
            f"{act.name}: q* did not converge at sigma_w={math.sqrt(sw2[i]):.6g}, sigma_b={math.sqrt(sb2[i]):.6g}"
        )
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(chi))):
        raise NumericalError(f"{act.name}: non-finite q* or χ_1 (overflow of φ?)")
    return q, chi, slope, status


def _is_plain(*values):
    return all(type(v) is float or type(v) is int for v in values)


def _scalar_q_star(phi, sigma_w, sigma_b, q0):
    """Fast path for plain Python numbers: (act, q*, χ_1, slope); falls back to the validated array path on bad input."""
    sw, sb, q0 = float(sigma_w), float(sigma_b), float(q0)
    if not (0.0 < sw < math.inf and 0.0 <= sb < math.inf and 0.0 < q0 < math.inf):
        return None
    act = get_activation(phi)
    k = act.kernels
    sw2 = sw * sw
    q, st, _, _ = k.q_star_kernel(sw2, sb * sb, q0, act.table, RTOL, MAXITER)
    if st != k.CONVERGED and st != k.ZERO:
        return None  # let the general path raise its specific error
    m = _moments(act, max(q, 1e-300))
    return act, q, sw2 * m[2], sw2 * m[1]


def _prepare(phi, sigma_w, sigma_b, q0):
    act = get_activation(phi)
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    q0a = positive(q0, "q0")
    sw, sb, q0a = np.broadcast_arrays(sw, sb, q0a)
    return act, sw, sb, q0a


def q_star(phi, sigma_w, sigma_b, q0=1.0):
    """Stable fixed point q* of the length map ``q ↦ σ_w² E_q[φ²] + σ_b²`` [vec].

    q* is the fixed point that iterating the map from ``q0`` reaches (it is unique for the usual activations; for the
    marginal homogeneous case, ReLU with σ_w² = 2 and σ_b = 0, every q is fixed and q0 is returned). Found by bracketing
    in the direction the map moves, then safeguarded Newton to rounding level; fixed points below 1e-40 are reported as 0.

    Raises
    ------
    NoFixedPointError
        q grows without bound (e.g. ReLU with σ_w² ≥ 2 and σ_b > 0; linear with σ_w ≥ 1 and σ_b > 0).
    """
    if _is_plain(sigma_w, sigma_b, q0):
        fast = _scalar_q_star(phi, sigma_w, sigma_b, q0)
        if fast is not None:
            return fast[1]
    act, sw, sb, q0a = _prepare(phi, sigma_w, sigma_b, q0)
    q, _, _, _ = _solve_q_star(act, sw, sb, q0a)
    return scalar_or_array(q.reshape(sw.shape), is_scalar(sigma_w, sigma_b, q0))


def chi1(phi, sigma_w, sigma_b, q0=1.0):
    """χ_1 = σ_w² E_{q*}[φ'(u)²] [vec] (Poole et al. 2016 eq. 8): ordered < 1 < chaotic."""
    if _is_plain(sigma_w, sigma_b, q0):
        fast = _scalar_q_star(phi, sigma_w, sigma_b, q0)
        if fast is not None:
            return fast[2]
    act, sw, sb, q0a = _prepare(phi, sigma_w, sigma_b, q0)
    _, chi, _, _ = _solve_q_star(act, sw, sb, q0a)
    return scalar_or_array(chi.reshape(sw.shape), is_scalar(sigma_w, sigma_b, q0))


# c* of smooth φ by the Mehler series (False: always the kernel's two-dimensional quadrature, e.g. as a benchmark
# baseline). The series tries the first two Gauss–Hermite sizes n ≥ NODES_PER_Q·q (meanfield._mehler); beyond
# 1024 nodes (q ≳ 5) and wherever the series is not accepted, the quadrature is used.
C_STAR_SERIES = True


def _c_star_series(act, sw2, sb2, q):
    """(c*, χ_c) in the chaotic phase from the Mehler series at q (smooth φ without closed two-point forms), or None.

    With ``I(c) = Σ_k a_k² c^k = E φ(u1)φ(u2)`` and ``B(c) = Σ_k b_k² c^k = E φ'(u1)φ'(u2)`` (u1, u2 of variance q and
    correlation c; :func:`meanfield._mehler.mehler_coefficients`), c* is the root in [0, 1) of
    ``G(c) = (σ_w² I(c) + σ_b²)/q - c``, ``G'(c) = σ_w² B(c) - 1 = χ_c - 1`` (Price's theorem, dI/dc = q B), found by
    safeguarded Newton on the bracket [0, 1) as in the quadrature kernel. The series is accepted only when its
    coefficients reproduce E_q φ² and E_q φ'² to 1e-12 relative (the error of the truncated, aliased series at c = 1;
    an estimate for |c| < 1), the accuracy of the quadrature rule it replaces; a polynomial in place of a
    two-dimensional quadrature per Newton step makes ``fixed_point`` 11–23× faster for tanh (benchmarks/RESULTS.md).
    """
    from meanfield._mehler import HERMITE_SIZES, NODES_PER_Q, mehler_coefficients, series_pair

    sizes = tuple(n for n in HERMITE_SIZES if n >= NODES_PER_Q * q)[:2]
    if not sizes:
        return None
    k = act.kernels
    m = _moments(act, q)
    a2, b2, nterms = mehler_coefficients(k, np.array([q]), np.array([m[0]]), np.array([m[2]]), sizes, act.is_odd)
    n = int(nterms[0])
    if n == 0:
        return None
    a2, b2 = a2[0], b2[0]
    g0 = (sw2 * a2[0] + sb2) / q
    if g0 <= k.ODD_TOL:
        return 0.0, float(sw2 * b2[0])
    buf = np.empty(2)
    lo, hi, x = 0.0, 1.0, 0.5
    for _ in range(MAXITER):
        series_pair(a2, b2, n, x, buf)
        f = (sw2 * buf[0] + sb2) / q - x
        df = sw2 * buf[1] - 1.0
        if f == 0.0:
            break
        if f > 0.0:
            lo = x
        else:
            hi = x
        xn = x - f / df if df != 0.0 else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        dx, x = xn - x, xn
        if abs(dx) <= RTOL * abs(x) or hi - lo <= RTOL * abs(x):
            break
    else:
        return None
    if x >= 1.0 - 1e-13:
        return None  # at the edge of the chaotic phase: the kernel's own rule decides
    series_pair(a2, b2, n, x, buf)
    return float(x), float(sw2 * buf[1])


def _c_star_one(act, sw2, sb2, q, chi):
    k = act.kernels
    if C_STAR_SERIES and not k.CLOSED_TWOPOINT and len(act.kinks) == 0 and chi > 1.0 + k.CHI1_ROUNDING:
        got = _c_star_series(act, sw2, sb2, q)
        if got is not None:
            return got
    c, chic, st, it = k.c_star_kernel(sw2, sb2, q, chi, 0.5, RTOL, MAXITER)
    if st != 0:
        raise ConvergenceError(f"{act.name}: c* did not converge ({STATUS[int(st)]}) at σ_w²={sw2:.6g}, σ_b²={sb2:.6g}")
    return c, chic


def c_star(phi, sigma_w, sigma_b, q0=1.0):
    """Stable fixed point c* of the correlation map at q* [vec]: 1 in the ordered phase, < 1 in the chaotic phase."""
    act, sw, sb, q0a = _prepare(phi, sigma_w, sigma_b, q0)
    q, chi, _, _ = _solve_q_star(act, sw, sb, q0a)
    out = np.empty(q.size)
    for i in range(q.size):
        sw2, sb2 = float(sw.flat[i]) ** 2, float(sb.flat[i]) ** 2
        if q[i] == 0.0:
            out[i] = 1.0 if chi[i] <= 1.0 else 0.0
        else:
            out[i] = _c_star_one(act, sw2, sb2, float(q[i]), float(chi[i]))[0]
    return scalar_or_array(out.reshape(sw.shape), is_scalar(sigma_w, sigma_b, q0))


def _depth_scale(slope):
    if slope <= 0.0:
        return 0.0
    if slope >= 1.0:
        return math.inf
    return -1.0 / math.log(slope)


def _phase(chi):
    if abs(chi - 1.0) <= CRITICAL_TOL:
        return "critical"
    return "ordered" if chi < 1.0 else "chaotic"


def fixed_point(phi, sigma_w, sigma_b, q0=1.0) -> FixedPoint:
    """q*, c*, χ_1, χ_c, ξ_q, ξ_c and the phase at (σ_w, σ_b) (scalars); see :class:`meanfield.results.FixedPoint`.

    q* by safeguarded Newton on the length map (one-point quadrature, relative error ≤ 1e-12); c* in the chaotic phase
    as the root of ``(σ_w² I_φ(q*, q*, c q*) + σ_b²)/q* = c`` with the two-point expectations from closed forms where
    they exist, else the Mehler series (smooth φ, q* ≲ 5, accepted when it reproduces E φ² and E φ'² to 1e-12:
    :func:`_c_star_series`), else composite Gauss–Legendre in two dimensions (≤ 5e-12). (:func:`phase_diagram` uses
    the two-dimensional rule throughout; the two agree to ~1e-11/(1 - χ_c).) The error of c* is that of the map divided by
    1 - χ_c (it grows towards the critical line, where c* → 1). ξ_q = -1/ln(slope of the length map at q*),
    ξ_c = -1/ln χ_c (Schoenholz et al. 2017 eqs. 4, 9).
    """
    fast = _scalar_q_star(phi, sigma_w, sigma_b, q0) if _is_plain(sigma_w, sigma_b, q0) else None
    if fast is not None and math.isfinite(fast[1]) and math.isfinite(fast[2]):
        act, q, chi, slope = fast
        sw, sb = float(sigma_w), float(sigma_b)
    else:  # validated array path: its specific errors
        act, sw, sb, q0a = _prepare(phi, sigma_w, sigma_b, q0)
        if sw.ndim:
            raise ValueError(
                "fixed_point takes scalar sigma_w, sigma_b; use q_star/chi1/c_star or phase_diagram for arrays"
            )
        q, chi, slope, status = _solve_q_star(act, sw, sb, q0a)
    q, chi, slope = float(np.ravel(q)[0]), float(np.ravel(chi)[0]), float(np.ravel(slope)[0])
    sw2, sb2 = float(sw) ** 2, float(sb) ** 2
    if q == 0.0:
        c, chic = (1.0, chi) if chi <= 1.0 else (0.0, chi)
    else:
        c, chic = _c_star_one(act, sw2, sb2, q, chi)
    return FixedPoint(
        q_star=q,
        c_star=float(c),
        chi1=chi,
        chi_c=float(chic),
        slope_q=slope,
        xi_q=_depth_scale(slope),
        xi_c=_depth_scale(float(chic)),
        phase=_phase(chi),
        sigma_w=float(sw),
        sigma_b=float(sb),
        converged=True,
    )


def propagate(phi, sigma_w, sigma_b, depth, q0=1.0, c0=0.5) -> Trajectory:
    """q^l and c^l through ``depth`` layers for two inputs with |x|²/N_0 = q0 and correlation c0 (THEORY §1).

    ``q^1 = σ_w² q0 + σ_b²``, ``c^1 = (σ_w² q0 c0 + σ_b²)/q^1``; then ``q^l = σ_w² E_{q^{l-1}}[φ²] + σ_b²`` and
    ``c^l = [σ_w² I_φ(q^{l-1}, q^{l-1}, c^{l-1} q^{l-1}) + σ_b²]/q^l``.
    """
    act = get_activation(phi)
    sw = float(positive(sigma_w, "sigma_w"))
    sb = float(nonnegative(sigma_b, "sigma_b"))
    L = integer(depth, "depth", 1)
    q0v = float(positive(q0, "q0"))
    c0v = float(correlation(c0, "c0"))
    sw2, sb2 = sw * sw, sb * sb
    k = act.kernels
    tab = act.table
    q = np.empty(L + 1)
    c = np.empty(L + 1)
    chi = np.full(L + 1, np.nan)
    q[0], c[0] = q0v, c0v
    q[1] = sw2 * q0v + sb2
    c[1] = (sw2 * q0v * c0v + sb2) / q[1]
    out = np.empty(k.N_MOMENTS)
    buf = np.empty(2)
    for l in range(1, L + 1):
        k.moments(q[l], tab, out)
        chi[l] = sw2 * out[2]
        if l == L:
            break
        q[l + 1] = sw2 * out[0] + sb2
        k.twopoint(q[l], q[l], c[l] * q[l], buf)
        c[l + 1] = min(1.0, max(-1.0, (sw2 * buf[0] + sb2) / q[l + 1]))
        if not math.isfinite(q[l + 1]) or q[l + 1] <= 0.0:
            raise NumericalError(f"{act.name}: q overflowed at layer {l + 1} (σ_w={sw}, σ_b={sb})")
    return Trajectory(q=q, c=c, chi=chi, sigma_w=sw, sigma_b=sb)
