"""Signal propagation: length and correlation maps, their fixed points, χ_1, χ_c and depth scales (THEORY §1).

Conventions (THEORY §0): σ_w, σ_b are standard deviations; ``W_ij ~ N(0, σ_w²/N)``, ``b_i ~ N(0, σ_b²)``. Sources: Poole
et al. 2016, "Exponential expressivity in deep neural networks through transient chaos" (length map eq. 3, correlation map
eq. 5, χ_1 eq. 8); Schoenholz et al. 2017, "Deep information propagation" (depth scales ξ_q eq. 4, ξ_c eq. 9); several
fixed points and their stability: THEORY §6.

Every returned fixed point is proven before it is returned: q_map(q) - q changes sign beyond its error bound across
q*(1 ± δ) with δ ≤ Q_TOL (and c-map(c) - c across c* ± δ, δ ≤ C_TOL); the proven δ is reported
(``FixedPoint.q_star_error``, ``c_star_error``). Otherwise ConvergenceError; q that grows without bound, or moments
that overflow on the way, are NoFixedPointError. ``q_init`` is where the length-map iteration starts; ``q0`` is the
input's |x|²/N_0 (in :func:`propagate`) and, as a keyword of the fixed-point functions, a deprecated name of q_init.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from meanfield._validate import (
    as_array,
    broadcast,
    correlation,
    integer,
    is_scalar,
    nonnegative,
    positive,
    scalar_or_array,
)
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, InvalidParameterError, NoFixedPointError, NumericalError
from meanfield.gaussian import checked_twopoint
from meanfield.results import STATUS, FixedPoint, FixedPoints, Trajectory

__all__ = [
    "q_map", "c_map", "q_star", "chi1", "c_star", "fixed_point", "fixed_points", "propagate", "CRITICAL_TOL", "Q_TOL",
    "C_TOL",
]

RTOL = 1e-14  # Newton stopping tolerance |Δx| ≤ RTOL |x| (quadratic convergence: the result is at rounding level)
MAXITER = 100
# Largest proven relative accuracy δ of a returned q* (sign change of q_map(q) - q across q*(1 ± δ)); the δ proven is
# reported (typically 1e-14 … 1e-11). It is this loose because q* is ill-conditioned where g'(q*) → 1: on the tanh
# critical line at q* = 1e-6, 1 - g' = 2e-6 turns the moments' 1e-14 into δ ≈ 2e-8.
Q_TOL = 1e-6
C_TOL = 1e-6  # the same for c* (absolute: c-map(c) - c changes sign across c* ± C_TOL); as loose as Q_TOL because c*
# is ill-conditioned where χ_c → 1 (ELU at σ_w² = 1.0256, σ_b² = 1e-8: 1 - χ_c = 1e-4, δ = 1e-7 proven)
EPS = 2.220446049250313e-16
CRITICAL_TOL = 1e-9  # |χ_1 - 1| below this is reported as phase "critical" (χ_1 itself is accurate to ~1e-12)


def _table_error(act):
    """The moment table's measured relative errors per octave, ``(n_octaves, 4)`` C-contiguous float64 (NaN on
    octaves the table does not hold), for the kernels' proofs (:func:`meanfield._kernels.q_star_proof`)."""
    got = act._state.get("table_error_by_octave")
    if got is None:
        tab = act.table
        err = act._state.get("table_errors")
        if err is None or np.ndim(err) != 2:
            err = np.asarray(act.table_error, dtype=np.float64)
            err = err if err.ndim == 2 else np.tile(err.reshape(1, -1), (tab.shape[0], 1))
        got = act._state["table_error_by_octave"] = np.ascontiguousarray(err, dtype=np.float64)
    return got


def _moments(act, q):
    k = act.kernels
    out = np.empty(k.N_MOMENTS)
    miss = np.zeros(1, dtype=np.int64)
    k.moments(q, act.table, out, miss)  # the table-only variant first (meanfield._kernels.moments) ...
    if miss[0]:
        k.moments(q, act.table, out)  # ... the checked direct rule where the table does not hold q
    return out


def _q_star_kernel(act, sw2, sb2, qi):
    """``q_star_kernel`` (q, status, iterations, residual): its table-only variant first, repeated with the checked
    direct rule when the table did not hold a q it needed (the same computation: on the table both are identical)."""
    k = act.kernels
    miss = np.zeros(1, dtype=np.int64)
    got = k.q_star_kernel(sw2, sb2, qi, act.table, RTOL, MAXITER, miss)
    return got if not miss[0] else k.q_star_kernel(sw2, sb2, qi, act.table, RTOL, MAXITER)


def _q_star_proof(act, q, sw2, sb2):
    """``q_star_proof`` (status, |F|, bound, slope, δ) as :func:`_q_star_kernel`: table-only first."""
    k = act.kernels
    miss = np.zeros(1, dtype=np.int64)
    got = k.q_star_proof(q, sw2, sb2, Q_TOL, act.table, _table_error(act), miss)
    return got if not miss[0] else k.q_star_proof(q, sw2, sb2, Q_TOL, act.table, _table_error(act))


def q_map(phi, q, sigma_w, sigma_b):
    """One layer of the length map: ``σ_w² E_q[φ²] + σ_b²`` [vec] (Poole et al. 2016 eq. 3)."""
    act = get_activation(phi)
    qa = positive(q, "q")
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    qb, swb, sbb = broadcast(q=qa, sigma_w=sw, sigma_b=sb)
    out = np.empty(qb.shape)
    for idx in np.ndindex(qb.shape):
        out[idx] = swb[idx] ** 2 * _moments(act, float(qb[idx]))[0] + sbb[idx] ** 2
    return scalar_or_array(out, is_scalar(q, sigma_w, sigma_b))


def c_map(phi, c, q, sigma_w, sigma_b):
    """One layer of the correlation map for two inputs of length q [vec] (Poole et al. 2016 eq. 5).

    ``c' = [σ_w² I_φ(q, q, c q) + σ_b²] / [σ_w² E_q φ² + σ_b²]``; at q = q* the denominator is q* (THEORY §1). I_φ is
    refused (NumericalError) where the two-point rule's error estimate exceeds :data:`meanfield.gaussian.MAP_RTOL` of
    its scale.
    """
    act = get_activation(phi)
    ca = correlation(c, "c")
    qa = positive(q, "q")
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    cb, qb, swb, sbb = broadcast(c=ca, q=qa, sigma_w=sw, sigma_b=sb)
    k = act.kernels
    buf = np.empty(2)
    out = np.empty(cb.shape)
    for idx in np.ndindex(cb.shape):
        qq = float(qb[idx])
        mom = _moments(act, qq)
        checked_twopoint(act, qq, float(cb[idx]) * qq, buf, "c_map", need=(0,), moments=mom)
        sw2, sb2 = swb[idx] ** 2, sbb[idx] ** 2
        out[idx] = (sw2 * buf[0] + sb2) / (sw2 * mom[0] + sb2)
    return scalar_or_array(out, is_scalar(c, q, sigma_w, sigma_b))


def _init_keyword(q_init, q0, func):
    """The iteration's start: ``q_init``, or the deprecated ``q0`` (which elsewhere is the input's |x|²/N_0)."""
    if q0 is None:
        return q_init
    if not (isinstance(q_init, float) and q_init == 1.0):
        raise InvalidParameterError(f"{func}: give q_init only (q0 is its deprecated name), got both")
    warnings.warn(
        f"{func}(q0=...) is deprecated: q0 is the input's |x|²/N0 elsewhere (propagate, jacobian_spectrum); "
        "use q_init for the start of the iteration",
        DeprecationWarning,
        stacklevel=3,
    )
    return q0


def _status_error(act, k, st, q, sw2, sb2, qi, res=math.nan, slope=math.nan):
    """The exception for a q* solve that ended with status ``st`` (a kernel code) at one point."""
    at = f"sigma_w={math.sqrt(sw2):.6g}, sigma_b={math.sqrt(sb2):.6g} (variance sigma_b²={sb2:.6g}), q_init={qi:.6g}"
    if st == k.DIVERGED:
        return NoFixedPointError(
            f"{act.name}: the length map has no finite fixed point reached from q_init at {at}: q grows without bound"
            " (q_map(q) > q, or q_map(q) = q + o(q) to rounding, up to q = 1e60)"
        )
    if st == k.NONFINITE:
        if q > qi:
            return NoFixedPointError(
                f"{act.name}: no finite fixed point at {at}: q grows from q_init and E_q[φ²] is not finite at"
                f" q = {q:.6g} (φ² overflows, or its Gaussian integral diverges or is not resolved there)"
            )
        return NumericalError(
            f"{act.name}: E_q[φ²] is not finite at q = {q:.6g} ({at}): φ² overflows, or its Gaussian integral diverges"
            " or is not resolved there"
        )
    if st == k.UNVERIFIED:
        return ConvergenceError(
            f"{act.name}: the length map's root q* = {q:.17g} at {at} failed its independent check: |q_map(q*) - q*| ="
            f" {res:.3g} by direct quadrature, slope {slope:.6g}, and q_map(q) - q does not change sign within a relative"
            f" {Q_TOL:g} of q*"
        )
    return ConvergenceError(f"{act.name}: q* did not converge ({STATUS.get(int(st), st)}) at {at}")


# Why a point of a vectorised call has no value (``return_status=True``), as in meanfield.critical: the error a scalar
# call would raise there, by its class.
_REASONS = ((NoFixedPointError, "none"), (NumericalError, "nonfinite"), (ConvergenceError, "unproven"))


def _reason(exc):
    return next(r for cls, r in _REASONS if isinstance(exc, cls))


def _solve_q_star(act, sigma_w, sigma_b, q_init, lenient=False):
    """Flat arrays in; (q*, χ_1, slope, status, iterations, residual, error) out, each q* proven by
    ``q_star_proof``; raises at the first point that has no proven finite fixed point, or, with ``lenient``, puts NaN
    there and appends the array of reasons ("ok", "none", "nonfinite", "unproven")."""
    # fresh C-contiguous copies: views from np.broadcast_arrays (or reflected lists) are not what the kernels should see
    sw2 = np.array(sigma_w, dtype=np.float64, copy=True).reshape(-1) ** 2
    sb2 = np.array(sigma_b, dtype=np.float64, copy=True).reshape(-1) ** 2
    qi = np.array(q_init, dtype=np.float64, copy=True).reshape(-1)
    n = sw2.size
    q, chi, slope, res, err = (np.empty(n) for _ in range(5))
    status = np.empty(n, dtype=np.int64)
    it = np.empty(n, dtype=np.int64)
    k = act.kernels
    k.q_star_many(sw2, sb2, qi, act.table, _table_error(act), RTOL, MAXITER, Q_TOL, q, chi, slope, status, it, res, err)
    reasons = np.full(n, "ok", dtype="<U9")

    def fail(i, exc):
        if not lenient:
            raise exc
        reasons[i] = _reason(exc)
        q[i] = chi[i] = slope[i] = math.nan

    for i in np.flatnonzero((status != k.CONVERGED) & (status != k.ZERO)):
        fail(i, _status_error(act, k, status[i], q[i], sw2[i], sb2[i], qi[i], res[i], slope[i]))
    for i in np.flatnonzero((reasons == "ok") & ~(np.isfinite(q) & np.isfinite(chi) & np.isfinite(slope))):
        fail(i, NumericalError(
            f"{act.name}: μ_1 or the slope is not finite at q* = {q[i]:.6g} (sigma_w={math.sqrt(sw2[i]):.6g},"
            f" sigma_b={math.sqrt(sb2[i]):.6g}): φ' overflows or its Gaussian integral is not resolved there"
        ))
    out = (q, chi, slope, status, it, res, err)
    return out + (reasons,) if lenient else out


def _vectorised_result(values, reasons, shape, scalar, return_status):
    """The public [vec] return: an array (NaN where a scalar call would raise), plus the reasons if asked for."""
    out = scalar_or_array(values.reshape(shape), scalar)
    if return_status:
        return out, (str(reasons[0]) if scalar else reasons.reshape(shape))
    return out


def _is_plain(*values):
    return all(type(v) is float or type(v) is int for v in values)


def _scalar_q_star(phi, sigma_w, sigma_b, q_init):
    """Fast path for plain Python numbers: (act, q*, χ_1, slope, iterations, residual, error); None on bad input or any
    failure (the validated array path then raises its specific error)."""
    sw, sb, qi = float(sigma_w), float(sigma_b), float(q_init)
    if not (0.0 < sw < math.inf and 0.0 <= sb < math.inf and 0.0 < qi < math.inf):
        return None
    act = get_activation(phi)
    k = act.kernels
    sw2, sb2 = sw * sw, sb * sb
    q, st, it, res = _q_star_kernel(act, sw2, sb2, qi)
    if st == k.ZERO:
        m = _moments(act, 1e-300)
        slope, err = sw2 * m[1], 0.0
    elif st == k.CONVERGED:
        st, res, _, slope, err = _q_star_proof(act, q, sw2, sb2)
        if st != k.CONVERGED:
            return None
        m = _moments(act, q)
    else:
        return None
    chi = sw2 * m[2]
    if not (math.isfinite(chi) and math.isfinite(slope)):
        return None
    return act, q, chi, slope, int(it), float(res), float(err)


def _prepare(phi, sigma_w, sigma_b, q_init):
    act = get_activation(phi)
    sw = positive(sigma_w, "sigma_w")
    sb = nonnegative(sigma_b, "sigma_b")
    qi = positive(q_init, "q_init")
    sw, sb, qi = broadcast(sigma_w=sw, sigma_b=sb, q_init=qi)
    return act, sw, sb, qi


def q_star(phi, sigma_w, sigma_b, q_init=1.0, *, q0=None, return_status=False):
    """Stable fixed point q* of the length map ``g(q) = σ_w² E_q[φ²] + σ_b²`` reached from ``q_init`` [vec]
    (Poole et al. 2016 eq. 3; THEORY §1, §6).

    q* is the first root of F(q) = g(q) - q in the direction the map moves from q_init (up where g(q_init) > q_init,
    down otherwise), which is where iterating g from q_init ends for increasing g; there F crosses from the start's
    sign to the other, so g'(q*) ≤ 1: the fixed point is stable (:func:`fixed_points` lists all of them, unstable ones
    included). For the marginal homogeneous case, ReLU with σ_w² = 2 and σ_b = 0, every q is fixed and q_init is
    returned. Found by bracketing (nodes q_init·2^k; nodes where F is zero to rounding never end a bracket, so a root at
    a node is found whatever its last bit), then safeguarded Newton to rounding level; fixed points below 1e-40 are
    reported as 0.

    Every q* > 0 is proven before it is returned: F, evaluated with an error bound (the moment table plus the error
    measured octave by octave against the checked direct quadrature when it was built; the checked direct quadrature
    outside the table), must change sign beyond that bound across [q*(1 - δ), q*(1 + δ)] with δ ≤ :data:`Q_TOL`
    (``FixedPoint.q_star_error`` reports δ). This does not rely on the solver's stopping rule, and the acceptance sweep
    (benchmarks/sweep_correctness.py) checks the returned q* against an independent quadrature.

    ``q0`` is the deprecated name of ``q_init`` (``q0`` is the input's |x|²/N_0 in :func:`propagate`).

    Array input (as in :mod:`meanfield.critical`): NaN where a scalar call would raise; ``return_status=True`` also
    returns the reasons ("ok", "none": no finite fixed point, "nonfinite", "unproven"), e.g.
    ``q_star("relu", [1.0, 2.0], 0.1, return_status=True)`` → ``([0.02, nan], ["ok", "none"])``. A scalar call raises.

    Raises
    ------
    NoFixedPointError
        q grows without bound (e.g. ReLU with σ_w² ≥ 2 and σ_b > 0; linear with σ_w ≥ 1 and σ_b > 0; x·tanh x with
        σ_w = 1, σ_b > 0, where g(q) - q → σ_b² - 0 is below rounding at large q) or E_q[φ²] overflows on the way up.
    NumericalError
        the moments are not finite at the start (overflow, a divergent or unresolved Gaussian integral).
    ConvergenceError
        the root could not be proven to relative accuracy Q_TOL (g'(q*) within ~1e-8 of 1).
    """
    q_init = _init_keyword(q_init, q0, "q_star")
    if _is_plain(sigma_w, sigma_b, q_init):
        fast = _scalar_q_star(phi, sigma_w, sigma_b, q_init)
        if fast is not None:
            return (fast[1], "ok") if return_status else fast[1]
    act, sw, sb, qi = _prepare(phi, sigma_w, sigma_b, q_init)
    scalar = is_scalar(sigma_w, sigma_b, q_init)
    got = _solve_q_star(act, sw, sb, qi, lenient=not scalar)
    return _vectorised_result(got[0], got[-1] if not scalar else np.array(["ok"]), sw.shape, scalar, return_status)


def chi1(phi, sigma_w, sigma_b, q_init=1.0, *, q0=None, return_status=False):
    """χ_1 = σ_w² E_{q*}[φ'(u)²] at the q* of :func:`q_star` [vec] (Poole et al. 2016 eq. 8): ordered < 1 < chaotic.
    Array input: NaN where a scalar call would raise (``return_status`` as in :func:`q_star`)."""
    q_init = _init_keyword(q_init, q0, "chi1")
    if _is_plain(sigma_w, sigma_b, q_init):
        fast = _scalar_q_star(phi, sigma_w, sigma_b, q_init)
        if fast is not None:
            return (float(fast[2]), "ok") if return_status else float(fast[2])
    act, sw, sb, qi = _prepare(phi, sigma_w, sigma_b, q_init)
    scalar = is_scalar(sigma_w, sigma_b, q_init)
    got = _solve_q_star(act, sw, sb, qi, lenient=not scalar)
    return _vectorised_result(got[1], got[-1] if not scalar else np.array(["ok"]), sw.shape, scalar, return_status)


# c* of smooth φ by the Mehler series (False: always the kernel's two-dimensional quadrature, e.g. as a benchmark
# baseline). The series tries the first two Gauss–Hermite sizes n ≥ NODES_PER_Q·q (meanfield._mehler); beyond
# 1024 nodes (q ≳ 5) and wherever the series is not accepted, the quadrature is used.
C_STAR_SERIES = True


def _c_star_series(act, sw2, sb2, q):
    """(c*, χ_c, δ) in the chaotic phase from the Mehler series at q (smooth φ without closed two-point forms), or
    None where the series is not accepted or does not prove its root.

    With ``I(c) = Σ_k a_k² c^k = E φ(u1)φ(u2)`` and ``B(c) = Σ_k b_k² c^k = E φ'(u1)φ'(u2)`` (u1, u2 of variance q and
    correlation c; :func:`meanfield._mehler.mehler_coefficients`), c* is the root in [0, 1) of
    ``G(c) = (σ_w² I(c) + σ_b²)/q - c``, ``G'(c) = σ_w² B(c) - 1 = χ_c - 1`` (Price's theorem, dI/dc = q B), found by
    safeguarded Newton on the bracket [0, 1) as in the quadrature kernel. The series is accepted only when its
    coefficients reproduce E_q φ² and E_q φ'² to 1e-12 relative (the error of the truncated, aliased series at c = 1;
    an estimate for |c| < 1), the accuracy of the quadrature rule it replaces; a polynomial in place of a
    two-dimensional quadrature per Newton step makes ``fixed_point`` 11–23× faster for tanh (benchmarks/RESULTS.md).
    The root is proven by a sign change of G across c* ± δ (δ ≤ C_TOL) beyond the series' accepted error
    HERMITE_RTOL·σ_w² E φ²/q (the truncation error is largest at c = 1, where it was checked).
    """
    from meanfield._mehler import HERMITE_RTOL, HERMITE_SIZES, NODES_PER_Q, mehler_coefficients, series_pair

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
        return 0.0, float(sw2 * b2[0]), 0.0
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
    chic = float(sw2 * buf[1])
    # proof: G changes sign across x ± δ beyond the series' accepted error (HERMITE_RTOL of E φ², its maximum at c = 1)
    bound = (sw2 * HERMITE_RTOL * m[0] + 4.0 * EPS * (sw2 * m[0] + sb2)) / q + 4.0 * EPS
    slope = abs(1.0 - chic)
    d = max(1e-14, 2.0 * bound / slope) if slope > 0.0 else C_TOL
    while True:
        d = min(d, C_TOL, 0.5 * (1.0 - x))
        series_pair(a2, b2, n, x - d, buf)
        ga = (sw2 * buf[0] + sb2) / q - (x - d)
        series_pair(a2, b2, n, x + d, buf)
        gb = (sw2 * buf[0] + sb2) / q - (x + d)
        if ga > bound and gb < -bound:
            return float(x), chic, d
        if d >= C_TOL or d >= 0.5 * (1.0 - x):
            return None  # not proven by the series: the quadrature path decides
        d *= 16.0


def _c_map_direct(k, sw2, sb2, q, c, out, err):
    """(G, bound) of G(c) = (σ_w² I_φ(q, q, c q) + σ_b²)/q - c by the 16-node two-point rule with its error estimate."""
    k.twopoint_direct(q, q, c * q, out, err)
    g = (sw2 * out[0] + sb2) / q
    return g - c, (sw2 * err[0] + 4.0 * EPS * (abs(sw2 * out[0]) + sb2)) / q + 4.0 * EPS


def _c_star_proof(act, sw2, sb2, q, c, chic):
    """δ such that G(c) = c-map(c) - c changes sign beyond its error bound across [c - δ, c + δ] (two-point quadrature
    independent of the solver's path), δ ≤ C_TOL; raises ConvergenceError otherwise. c* = 1 (always a fixed point) and
    c* = 0 with |G(0)| within its bound (odd φ, σ_b = 0) need no bracket: δ = 0."""
    if c == 1.0:
        return 0.0
    k = act.kernels
    out, err = np.empty(2), np.empty(2)
    if c == 0.0:
        g0, b0 = _c_map_direct(k, sw2, sb2, q, 0.0, out, err)
        if abs(g0) <= b0 + k.ODD_TOL:
            return 0.0
        raise ConvergenceError(
            f"{act.name}: c* = 0 failed its check: c-map(0) = {g0:.3g} at sigma_w²={sw2:.6g}, sigma_b²={sb2:.6g}"
        )
    slope = abs(1.0 - chic) if math.isfinite(chic) else 0.0
    d = max(1e-14, 1e-11 / slope) if slope > 0.0 else C_TOL
    while True:
        d = min(d, C_TOL)
        lo, hi = max(c - d, 0.0), min(c + d, 1.0)
        ga, ba = _c_map_direct(k, sw2, sb2, q, lo, out, err)
        gb, bb = _c_map_direct(k, sw2, sb2, q, hi, out, err)
        if (ga > ba and gb < -bb) or (ga < -ba and gb > bb):
            return d
        if d >= C_TOL:
            raise ConvergenceError(
                f"{act.name}: c* = {c:.17g} at sigma_w²={sw2:.6g}, sigma_b²={sb2:.6g} (q* = {q:.6g}) failed its"
                f" independent check: c-map(c) - c does not change sign within ±{C_TOL:g} of it"
            )
        d *= 16.0


def _c_star_one(act, sw2, sb2, q, chi):
    """(c*, χ_c, δ): the stable correlation fixed point at q*, proven to ±δ (:func:`_c_star_proof`)."""
    k = act.kernels
    if C_STAR_SERIES and not k.CLOSED_TWOPOINT and len(act.kinks) == 0 and chi > 1.0 + k.CHI1_ROUNDING:
        got = _c_star_series(act, sw2, sb2, q)
        if got is not None:
            return got
    c, chic, st, it = k.c_star_kernel(sw2, sb2, q, chi, 0.5, RTOL, MAXITER)
    if st != 0:
        raise ConvergenceError(f"{act.name}: c* did not converge ({STATUS[int(st)]}) at σ_w²={sw2:.6g}, σ_b²={sb2:.6g}")
    c, chic = float(c), float(chic)
    if not (math.isfinite(c) and math.isfinite(chic)):
        raise NumericalError(f"{act.name}: c* or χ_c is not finite at σ_w²={sw2:.6g}, σ_b²={sb2:.6g} (q* = {q:.6g})")
    return c, chic, _c_star_proof(act, sw2, sb2, q, c, chic)


def c_star(phi, sigma_w, sigma_b, q_init=1.0, *, q0=None, return_status=False):
    """Stable fixed point c* of the correlation map at q* [vec]: 1 in the ordered phase, < 1 in the chaotic phase
    (Poole et al. 2016 eq. 5; THEORY §1). Each c* < 1 is proven: c-map(c) - c changes sign across c* ± δ, δ ≤ C_TOL,
    by two-point quadrature with its error bound. Array input: NaN where a scalar call would raise (``return_status``
    as in :func:`q_star`)."""
    q_init = _init_keyword(q_init, q0, "c_star")
    act, sw, sb, qi = _prepare(phi, sigma_w, sigma_b, q_init)
    scalar = is_scalar(sigma_w, sigma_b, q_init)
    got = _solve_q_star(act, sw, sb, qi, lenient=not scalar)
    q, chi = got[:2]
    reasons = got[-1] if not scalar else np.array(["ok"])
    out = np.full(q.size, math.nan)
    for i in range(q.size):
        if reasons[i] != "ok":
            continue
        sw2, sb2 = float(sw.flat[i]) ** 2, float(sb.flat[i]) ** 2
        if q[i] == 0.0:
            out[i] = 1.0 if chi[i] <= 1.0 else 0.0
            continue
        try:
            out[i] = _c_star_one(act, sw2, sb2, float(q[i]), float(chi[i]))[0]
        except (ConvergenceError, NumericalError) as exc:
            if scalar:
                raise
            reasons[i] = _reason(exc)
    return _vectorised_result(out, reasons, sw.shape, scalar, return_status)


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


def fixed_point(phi, sigma_w, sigma_b, q_init=1.0, *, q0=None) -> FixedPoint:
    """q*, c*, χ_1, χ_c, the length map's slope and stability, ξ_q, ξ_c and the phase at (σ_w, σ_b) (scalars); see
    :class:`meanfield.results.FixedPoint`.

    q* as in :func:`q_star` (the stable fixed point reached from ``q_init``, proven to relative δ ≤ Q_TOL); c* in the
    chaotic phase as the root of ``(σ_w² I_φ(q*, q*, c q*) + σ_b²)/q* = c`` with the two-point expectations from closed
    forms where they exist, else the Mehler series (smooth φ, q* ≲ 5, accepted when it reproduces E φ² and E φ'² to
    1e-12: :func:`_c_star_series`), else composite Gauss–Legendre in two dimensions (≤ 5e-12), then proven by a sign
    change across c* ± δ, δ ≤ C_TOL (16-node two-point rule with its error estimate). The error of c* is that of the
    map divided by 1 - χ_c (it grows towards the critical line, where c* → 1). ``slope_q`` = g'(q*) = σ_w² dE_q[φ²]/dq
    at q* (THEORY §6); ``stable`` is |g'(q*)| < 1. ξ_q = -1/ln g'(q*), ξ_c = -1/ln χ_c (Schoenholz et al. 2017 eqs. 4,
    9). ``q0`` is the deprecated name of ``q_init``.
    """
    q_init = _init_keyword(q_init, q0, "fixed_point")
    fast = _scalar_q_star(phi, sigma_w, sigma_b, q_init) if _is_plain(sigma_w, sigma_b, q_init) else None
    if fast is not None:
        act, q, chi, slope, it, res, qerr = fast
        sw, sb = float(sigma_w), float(sigma_b)
    else:  # validated array path: its specific errors
        act, sw, sb, qi = _prepare(phi, sigma_w, sigma_b, q_init)
        if sw.ndim:
            raise InvalidParameterError(
                "fixed_point takes scalar sigma_w, sigma_b, q_init; use q_star/chi1/c_star or phase_diagram for arrays"
            )
        q, chi, slope, status, it, res, qerr = (np.ravel(a)[0] for a in _solve_q_star(act, sw, sb, qi))
    q, chi, slope, it, res, qerr = float(q), float(chi), float(slope), int(it), float(res), float(qerr)
    sw2, sb2 = float(sw) ** 2, float(sb) ** 2
    if q == 0.0:
        c, chic, cerr = (1.0, chi, 0.0) if chi <= 1.0 else (0.0, chi, 0.0)
    else:
        c, chic, cerr = _c_star_one(act, sw2, sb2, q, chi)
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
        iterations=it,
        residual=res,
        stable=bool(abs(slope) < 1.0) or (q == 0.0 and slope <= 1.0),
        q_star_error=qerr,
        c_star_error=float(cerr),
        activation=act.name,
    )


# fixed_points scans q on a geometric grid over [max(FP_Q_LO, σ_b²), FP_Q_HI], FP_NODES_PER_OCTAVE nodes per factor 2
FP_Q_LO = 1e-30  # below this a fixed point is indistinguishable from 0 (zero_is_fixed / zero_attracts report 0)
FP_Q_HI = 1e30
FP_NODES_PER_OCTAVE = 4


def _fp_residuals(k, tab, sw2, sb2, qs):
    f, df = np.empty(qs.size), np.empty(qs.size)
    k.qmap_residuals(sw2, sb2, np.ascontiguousarray(qs, dtype=np.float64), tab, f, df)
    return f, df


def _fp_sign(k, q, f):
    tol = k.TAU_F * (q + np.abs(f + q))
    return np.where(f > tol, 1, np.where(f < -tol, -1, 0))


def _bisection_proof(act, sw2, sb2, a, b):
    """(x, δ): bisection of [a, b] on the sign of F = q_map - id beyond its error bound (``qmap_checked``) while that
    sign is resolved; the root lies in [x(1 - δ), x(1 + δ)]. None if the ends' signs are not opposite beyond it."""
    k, tab, te = act.kernels, act.table, _table_error(act)
    out, err = np.empty(k.N_MOMENTS), np.empty(k.N_MOMENTS)

    def sign(q):
        f, bound, _ = k.qmap_checked(q, sw2, sb2, tab, te, out, err)
        return 1 if f > bound else (-1 if f < -bound else 0)

    sa, sb_ = sign(a), sign(b)
    if sa == 0 or sb_ != -sa:
        return None
    for _ in range(200):
        m = math.sqrt(a * b)
        if not a < m < b:
            break
        sm = sign(m)
        if sm == 0:
            break
        if sm == sa:
            a = m
        else:
            b = m
    x = math.sqrt(a * b)
    return x, max(b - x, x - a) / x


def fixed_points(phi, sigma_w, sigma_b) -> FixedPoints:
    """Every fixed point of the length map ``g(q) = σ_w² E_q[φ²] + σ_b²`` in (0, ∞), with its slope
    ``g'(q*) = σ_w² dE_q[φ²]/dq`` and stability |g'(q*)| < 1 (THEORY §6), ascending.

    Method. F(q) = g(q) - q is evaluated (moment table, as the solvers) at the nodes of a geometric grid with
    FP_NODES_PER_OCTAVE nodes per factor 2 over [max(FP_Q_LO, σ_b²), FP_Q_HI] (no root lies below σ_b², since
    g ≥ σ_b²), up to the first q where the moments are not finite. A node whose |F| is below its rounding level
    TAU_F·(q + g) has no sign and never ends a bracket. Every sign change between consecutive signed nodes brackets a
    root, refined by safeguarded Newton and proven like :func:`q_star`'s (sign change of F beyond its error bound across
    q*(1 ± δ), δ ≤ Q_TOL). Where that fails (g' within rounding of 1 over a range of q, e.g. hard-tanh at small q, where
    φ is linear up to e^{-1/(2q)}), the bracket is bisected while the sign of F is resolved and the root is reported
    with that proven relative accuracy ``error`` (> Q_TOL); ConvergenceError only if not even the bracket is proven.

    Why none is missed: two roots between signed nodes of the same sign (or a double root) need an extremum of F
    between them, pointing towards zero: for F > 0 at both ends a minimum, so F' < 0 at the left end and F' > 0 at the
    right end or F' changes sign an even number of times more. Every cell where F' has opposite signs at its ends and
    the extremum points towards zero is searched: the extremum is located by bisection on the sign of F' and F is
    evaluated there; a sign opposite to the ends splits the cell into two brackets, a value zero to rounding is a double
    root (reported with error 0: F touches zero, a sign change cannot be shown). What is not searched is a cell
    (a factor 2^(1/4) in q) in which F' changes sign three or more times, i.e. g' = 1 + F' crosses 1 thrice within 19 %
    of q; for the activations of this package g' varies on the scale of q itself (``test_fixed_points`` checks the
    scan against a grid 16 times finer).

    Returns a :class:`meanfield.results.FixedPoints` (also: whether 0 is fixed and attracts, whether q diverges beyond
    the largest fixed point). σ_w, σ_b are scalars (standard deviations).
    """
    act = get_activation(phi)
    if np.ndim(sigma_w) or np.ndim(sigma_b):
        raise InvalidParameterError("fixed_points takes scalar sigma_w, sigma_b (standard deviations)")
    sw = float(positive(sigma_w, "sigma_w"))
    sb = float(nonnegative(sigma_b, "sigma_b"))
    sw2, sb2 = sw * sw, sb * sb
    k, tab = act.kernels, act.table
    q_lo = max(FP_Q_LO, sb2)
    n = int(math.ceil(math.log2(FP_Q_HI / q_lo) * FP_NODES_PER_OCTAVE)) + 1
    qs = q_lo * 2.0 ** (np.arange(n) / FP_NODES_PER_OCTAVE)
    f, df = _fp_residuals(k, tab, sw2, sb2, qs)
    ok = np.isfinite(f) & np.isfinite(df)
    nonfinite_from = math.inf
    if not ok.all():
        cut = int(np.argmin(ok))
        nonfinite_from = float(qs[cut])
        qs, f, df = qs[:cut], f[:cut], df[:cut]
    s = _fp_sign(k, qs, f)
    signed = np.flatnonzero(s != 0)
    par = np.array([sw2, sb2, 0.0])
    brackets, doubles = [], []

    def one(q):
        fq, dq = _fp_residuals(k, tab, sw2, sb2, np.array([q]))
        return float(fq[0]), float(dq[0]), int(_fp_sign(k, np.array([q]), fq)[0])

    for i, j in zip(signed[:-1], signed[1:]):
        a, b = float(qs[i]), float(qs[j])
        if s[i] != s[j]:
            brackets.append((a, float(f[i]), b, float(f[j])))
            continue
        # same sign at both ends: an extremum towards zero inside? (F > 0: a minimum, F' from - to +; F < 0: a maximum)
        if not (s[i] * df[i] < 0.0 < s[i] * df[j]):
            continue
        lo, hi = a, b
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            if not lo < mid < hi:
                break
            _, dm, _ = one(mid)
            if s[i] * dm < 0.0:
                lo = mid
            else:
                hi = mid
        qe = math.sqrt(lo * hi)
        fe, _, se = one(qe)
        if se == -s[i]:
            brackets.append((a, float(f[i]), qe, fe))
            brackets.append((qe, fe, b, float(f[j])))
        elif se == 0:
            doubles.append(qe)
    roots = []
    for a, fa, b, fb in brackets:
        x, st, it, res, _ = k.solve(k.P_QSTAR, a, fa, b, fb, math.sqrt(a * b), par, tab, RTOL, MAXITER)
        if st == k.CONVERGED:
            st, res, _, slope, err = k.q_star_proof(x, sw2, sb2, Q_TOL, tab, _table_error(act))
        if st != k.CONVERGED:  # ill-conditioned (g' within rounding of 1 over a range): the widest proof there is
            got = _bisection_proof(act, sw2, sb2, a, b)
            if got is None:
                raise _status_error(act, k, k.UNVERIFIED, x, sw2, sb2, a, res)
            x, err = got
            slope = sw2 * _moments(act, x)[1]
        roots.append((x, slope, err))
    for x in doubles:
        m = _moments(act, x)
        roots.append((x, sw2 * m[1], 0.0))
    roots.sort()
    chi = [sw2 * _moments(act, x)[2] for x, _, _ in roots]
    clear = s[signed]
    zero_is_fixed = sb2 == 0.0 and act.phi0 == 0.0
    return FixedPoints(
        activation=act.name,
        sigma_w=sw,
        sigma_b=sb,
        q=np.array([r[0] for r in roots], dtype=float),
        slope=np.array([r[1] for r in roots], dtype=float),
        stable=np.array([abs(r[1]) < 1.0 for r in roots], dtype=bool),
        chi1=np.array(chi, dtype=float),
        error=np.array([r[2] for r in roots], dtype=float),
        zero_is_fixed=bool(zero_is_fixed),
        zero_attracts=bool(zero_is_fixed and clear.size > 0 and clear[0] == -1),
        diverges=bool(clear.size > 0 and clear[-1] == 1),
        every_q_fixed=bool(clear.size == 0 and qs.size > 0),
        q_range=(float(q_lo), float(qs[-1]) if qs.size else float(q_lo)),
        nonfinite_from=nonfinite_from,
    )


def propagate(phi, sigma_w=None, sigma_b=None, depth=None, q0=1.0, c0=0.5) -> Trajectory:
    """q^l and c^l through ``depth`` layers for two inputs with |x|²/N_0 = q0 and correlation c0 (THEORY §1).

    ``q^1 = σ_w² q0 + σ_b²``, ``c^1 = (σ_w² q0 c0 + σ_b²)/q^1``; then ``q^l = σ_w² E_{q^{l-1}}[φ²] + σ_b²`` and
    ``c^l = [σ_w² I_φ(q^{l-1}, q^{l-1}, c^{l-1} q^{l-1}) + σ_b²]/q^l``; ``χ_l = σ_w² μ_1(q^l) = σ_w² E_{q^l}[φ'²]``.
    Each I_φ is the two-point rule's, refused (NumericalError naming the layer) where its error estimate exceeds
    :data:`meanfield.gaussian.MAP_RTOL` of √(E φ² E φ²): oscillating φ at large q (sin(x) from q ≈ 20 near c = 1).

    **A network whose layers differ** (THEORY §8): ``propagate(net, q0=1.0, c0=0.5)`` with a
    :class:`~meanfield.Network` of L hidden layers (σ_w, σ_b and depth are the network's and must be left out). Layer
    l = 1..L has weight scale σ_w^l, bias scale σ_b^l and activation φ_l:

    * ``q^1 = (σ_w^1)² q0 + (σ_b^1)²`` (the first layer is scaled to the data), ``c^1 = ((σ_w^1)² q0 c0 + (σ_b^1)²)/q^1``;
    * ``q^l = (σ_w^l)² E_{q^{l-1}}[φ_{l-1}²] + (σ_b^l)²`` and
      ``c^l = [(σ_w^l)² I_{φ_{l-1}}(q^{l-1}, q^{l-1}, c^{l-1} q^{l-1}) + (σ_b^l)²]/q^l`` for l = 2..L;
    * ``χ_l = (σ_w^l)² E_{q^l}[φ_l'²]``: the gain of the pair D_l W^l (the weight that makes h^l and the derivative of
      φ_l taken at h^l), the per-layer form of the uniform χ_l. Then, with ``J = ∂x^L/∂x^0 = D_L W^L ⋯ D_1 W^1`` (of
      shape N_L × N_0), ``E tr(J Jᵀ)/N_L = Π_{l=1}^L χ_l``: the product of ``chi[1:]`` is the mean squared singular
      value of the input-output Jacobian, as ``χ_1^L`` is for a uniform network at its fixed point.

    The widths and the weight kinds do not enter these maps; the readout (layer L + 1) is not part of the trajectory,
    as in the uniform call. A uniform network gives the uniform call's numbers bitwise. The result's ``sigma_w``,
    ``sigma_b`` and ``activation`` are ``net.summary()``'s (NaN or the joined names where layers differ) and
    ``network`` holds ``net.to_dict()``.

    >>> net = mf.Network((4, 8, 8, 1), [2**0.5, 1.0, 1.0], 0.0, ["relu", "linear"])
    >>> tr = mf.propagate(net, q0=1.0)
    >>> np.round(tr.q, 12), np.round(tr.chi[1:], 12)   # q^1 = 2, q^2 = 1·E_2[relu²] = 1; χ_l = (2·½, 1·1)
    (array([1., 2., 1.]), array([1., 1.]))
    """
    from meanfield.network import Network

    if isinstance(phi, Network):
        given = [n for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("depth", depth)) if v is not None]
        if given:
            raise InvalidParameterError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} given by the network: call propagate(net, "
                "q0=..., c0=...)"
            )
        net = phi
        L = net.depth
        acts = list(net.activations)
        sws = list(net.sigma_w[:L])
        sbs = list(net.sigma_b[:L])
        summary = net.summary()
        name, sw_rec, sb_rec, record = summary["activation"], summary["sigma_w"], summary["sigma_b"], net.to_dict()
    else:
        missing = [n for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("depth", depth)) if v is None]
        if missing:
            raise InvalidParameterError(
                f"propagate(phi, sigma_w, sigma_b, depth, q0, c0): {', '.join(missing)} missing (or pass a Network)"
            )
        act = get_activation(phi)
        sw = float(positive(sigma_w, "sigma_w"))
        sb = float(nonnegative(sigma_b, "sigma_b"))
        L = integer(depth, "depth", 1)
        acts, sws, sbs = [act] * L, [sw] * L, [sb] * L
        name, sw_rec, sb_rec, record = act.name, sw, sb, None
    q0v = float(positive(q0, "q0"))
    c0v = float(correlation(c0, "c0"))
    q, c, chi = _trajectory(acts, sws, sbs, L, q0v, c0v)
    return Trajectory(q=q, c=c, chi=chi, sigma_w=sw_rec, sigma_b=sb_rec, activation=name, network=record)


def _trajectory(acts, sws, sbs, L, q0v, c0v):
    """The maps of :func:`propagate` layer by layer; layer l (1-based) uses ``acts[l-1]``, ``sws[l-1]``,
    ``sbs[l-1]``. One code path for uniform and per-layer networks."""
    q = np.empty(L + 1)
    c = np.empty(L + 1)
    chi = np.full(L + 1, np.nan)
    q[0], c[0] = q0v, c0v
    sw2, sb2 = sws[0] * sws[0], sbs[0] * sbs[0]
    q[1] = sw2 * q0v + sb2
    c[1] = (sw2 * q0v * c0v + sb2) / q[1]
    buf = np.empty(2)
    for l in range(1, L + 1):
        act = acts[l - 1]
        k = act.kernels
        out = _moments(act, q[l])
        sw2 = sws[l - 1] * sws[l - 1]
        chi[l] = sw2 * out[2]
        if l == L:
            break
        sw2n, sb2n = sws[l] * sws[l], sbs[l] * sbs[l]
        q_next = sw2n * float(out[0]) + sb2n  # Python floats: an overflow is inf here, checked next, not a warning
        if not math.isfinite(q_next) or q_next <= 0.0:
            raise NumericalError(
                f"{act.name}: q overflowed at layer {l + 1} (σ_w={sws[l]}, σ_b={sbs[l]})"
            )
        q[l + 1] = q_next
        checked_twopoint(act, q[l], c[l] * q[l], buf, f"propagate, the correlation map into layer {l + 1}", need=(0,),
                         moments=out)
        c[l + 1] = min(1.0, max(-1.0, (sw2n * buf[0] + sb2n) / q[l + 1]))
    return q, c, chi
