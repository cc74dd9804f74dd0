"""The order-to-chaos critical line χ_1 = 1, its stable part (the edge of chaos), and phase diagrams (THEORY §1, §6).

Parametrised by q* (Pennington et al. 2017, "Resurrecting the sigmoid", §2; Schoenholz et al. 2017 §3):
``σ_w² = 1/μ_1(q*)``, ``σ_b² = q* - E_{q*}[φ²]/μ_1(q*)`` where σ_b² ≥ 0. A point of that line is an edge of chaos
only where its q* is a stable fixed point of the length map, i.e. where the map's slope ``g'(q*) = σ_w² dE_q[φ²]/dq``
is below 1 (THEORY §6): for activations that are not odd (GELU, SiLU, x·tanh x) part of the line has ``g'(q*) > 1``
and no network ever sits there. The functions below say so (:class:`UnstableCriticalPointError`) unless asked for such points.

Vectorised calls (array input) never lose the valid elements: an element without a critical point (or whose χ_1 = 1
point is unstable) is NaN, and ``return_status=True`` adds an array of the reasons (:data:`CRITICAL_STATUS`); a scalar
input raises instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from meanfield._validate import nonnegative, positive
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, NoCriticalPointError, NumericalError
from meanfield.propagation import MAXITER, RTOL, _moments, _q_star_kernel
from meanfield.results import PhaseDiagram

__all__ = [
    "critical_point",
    "critical_sigma_w",
    "critical_sigma_b",
    "critical_line",
    "phase_diagram",
    "UnstableCriticalPointError",
    "CRITICAL_STATUS",
]


class UnstableCriticalPointError(NoCriticalPointError):
    """χ_1 = 1 holds only at an unstable fixed point q* of the length map (slope g'(q*) > 1, THEORY §6): not an edge of
    chaos. Pass ``allow_unstable=True`` to get such points anyway. ``.points`` lists them as tuples
    (σ_w, σ_b, q*, slope g'(q*), stable)."""

    def __init__(self, message, points=()):
        super().__init__(message)
        self.points = tuple(points)


# Reasons reported by ``return_status=True`` for each element of a vectorised call.
CRITICAL_STATUS = ("ok", "none", "unstable")

# Scan of the critical line: q on 2^(k/SCAN_PER_OCTAVE) from Q_SCAN_LO to Q_SCAN_HI (the moment table covers
# [2^-34, 2^20); above it the moments come from direct quadrature).
Q_SCAN_LO = 2.0**-34
Q_SCAN_HI = 2.0**40  # ≈ 1.1e12: no critical point with q* beyond this is found
SCAN_PER_OCTAVE = 16
DERIV_FLAT = 1e-10  # |d|·q below this times the function's size: the score-function derivative's rounding (sin: 3e-12)
NEG_TOL = 1e-13  # σ_b² in [-NEG_TOL·q*, 0) is rounding of 0 (the point σ_b = 0), below that σ_b² < 0 is no solution
# Slope of the length map within this of 1 is marginal (ReLU-like: every q fixed at σ_b = 0), not unstable; the slope
# itself is accurate to ~1e-12 (moment table).
SLOPE_TOL = 1e-9
# Re-check of every returned critical point by direct quadrature (not the moment table): |χ_1 - 1| and
# |q_map(q*) - q*|/q* must be below this (q* re-solved from 1.001·q* must agree to 1e-9 + 1e-13/|1 - g'(q*)|).
CHECK_RTOL = 1e-10
# Probe of the fixed point q* = 0 (σ_b = 0, σ_w = 1/|φ'(0)|): the sign of σ_w² E_q φ² - q at this q tells whether q
# shrinks towards 0 (stable) or grows away from it (unstable, e.g. GELU, SiLU).
Q_ZERO_PROBE = 2.0**-20




# ------------------------------------------------------------------------------------------------ line samples
class _Line:
    """The critical line sampled on the scan grid (once per activation): σ_b²(q) = q - E φ²/μ_1, μ_1(q), their
    q-derivatives, and the slope of the length map g'(q) = (dE φ²/dq)/μ_1; with every extremum of σ_b²(q) and of μ_1(q)
    located between grid nodes (sign changes of the derivative, refined by bisection)."""

    def __init__(self, act):
        self.act = act
        k = np.arange(round(math.log2(Q_SCAN_LO) * SCAN_PER_OCTAVE), round(math.log2(Q_SCAN_HI) * SCAN_PER_OCTAVE) + 1)
        qs = np.exp2(k / SCAN_PER_OCTAVE)
        m = np.array([_moments(act, float(q)) for q in qs])
        self.q = qs
        sb2, dsb2 = self._sb2(qs, m)
        self.sb2 = self._breaks(self.sb2_at, sb2, dsb2)  # (breaks, values there)
        self.mu1 = self._breaks(self.mu1_at, m[:, 2], m[:, 4])

    @staticmethod
    def _sb2(q, m):
        f0, f1, mu1, dmu1 = m[..., 0], m[..., 1], m[..., 2], m[..., 4]
        return q - f0 / mu1, 1.0 - (f1 * mu1 - f0 * dmu1) / (mu1 * mu1)

    def sb2_at(self, q):
        """(σ_b²(q), dσ_b²/dq) along the line."""
        return self._sb2(q, _moments(self.act, q))

    def mu1_at(self, q):
        m = _moments(self.act, q)
        return m[2], m[4]

    def _breaks(self, fun, v, d):
        """The scan nodes with the extrema (sign changes of the derivative ``d``) inserted, sorted, and ``fun``'s
        values there: between two consecutive breaks the function is monotone, unless its derivative changes sign twice
        inside one scan cell (two extrema within a factor 2^(1/16) of q)."""
        extra_q, extra_v = [], []
        # A derivative at rounding level of the function it differentiates (|d|·q ≤ DERIV_FLAT·|v|: sin's μ_1 = (1 +
        # e^{-2q})/2 beyond q ≈ 15) has no sign: its flips would be spurious extrema, each a bisection. Extrema are the
        # sign changes between consecutive nodes whose derivative has one (a flat run between them is bisected whole).
        signed = np.flatnonzero(np.abs(d) * self.q > DERIV_FLAT * np.maximum(np.abs(v), np.finfo(float).tiny))
        for a, b in zip(signed[:-1], signed[1:]):
            if np.sign(d[a]) == np.sign(d[b]):
                continue
            lo, hi = float(self.q[a]), float(self.q[b])
            dlo = float(d[a])
            for _ in range(60):
                mid = math.sqrt(lo * hi)
                dm = fun(mid)[1]
                if dm == 0.0:
                    lo = hi = mid
                    break
                if (dm < 0.0) == (dlo < 0.0):
                    lo, dlo = mid, dm
                else:
                    hi = mid
                if hi - lo <= 1e-15 * hi:
                    break
            x = math.sqrt(lo * hi)
            extra_q.append(x)
            extra_v.append(fun(x)[0])
        q = np.concatenate((self.q, extra_q))
        order = np.argsort(q, kind="stable")
        return q[order], np.concatenate((v, extra_v))[order]


def _line(act) -> _Line:
    got = act._state.get("critical_line_samples")
    if got is None:
        got = act._state["critical_line_samples"] = _Line(act)
    return got


def _roots(fun, breaks, values, target, tol):
    """Every q in the scan range with fun(q) = target, given the sorted ``breaks`` between which ``fun`` is monotone and
    ``values`` = fun(breaks): one root per piece whose ends bracket the target, refined by bisection in log q to
    rounding. Values within ``tol`` (rounding; scalar or per break) of the target count as equal: a run of them is one
    root at its first node, except a run from the lower end of the scan (the root q* = 0, handled by the caller)."""
    vals = values - target
    sgn = np.where(np.abs(vals) <= tol, 0, np.sign(vals))
    roots = []
    zero_starts = np.flatnonzero((sgn[1:-1] == 0) & (sgn[:-2] != 0)) + 1  # equal to rounding from this node on
    crossings = np.flatnonzero(sgn[:-1] * sgn[1:] < 0)
    for i in np.union1d(zero_starts, crossings):
        if sgn[i] == 0:
            roots.append(float(breaks[i]))
            continue
        lo, hi, flo = float(breaks[i]), float(breaks[i + 1]), float(vals[i])
        for _ in range(80):
            mid = math.sqrt(lo * hi)
            fm = fun(mid) - target
            if fm == 0.0:
                lo = hi = mid
                break
            if (fm < 0.0) == (flo < 0.0):
                lo, flo = mid, fm
            else:
                hi = mid
            if hi - lo <= 4e-16 * hi:
                break
        roots.append(0.5 * (lo + hi))
    return roots


# ------------------------------------------------------------------------------------------------ points of the line
def _point_at(act, q):
    """(σ_w, σ_b, q*, slope g'(q*), stable) of the line's point with fixed point q > 0; None where σ_b² < 0."""
    m = _moments(act, q)
    if not (np.all(np.isfinite(m[:3])) and m[2] > 0.0):
        raise NumericalError(
            f"{act.name}: the Gaussian moments at q* = {q:.6g} are not finite and resolved (E φ² = {m[0]:.6g},"
            f" μ_1 = E φ'² = {m[2]:.6g}): φ grows too fast, or q* lies beyond the range the quadrature can resolve"
        )
    sw2 = 1.0 / m[2]
    sb2 = q - m[0] / m[2]
    if sb2 < 0.0:
        if sb2 < -NEG_TOL * q:
            return None
        sb2 = 0.0
    slope = m[1] / m[2]
    return math.sqrt(sw2), math.sqrt(sb2), q, slope, bool(slope <= 1.0 + SLOPE_TOL)


def _zero_point(act):
    """The point with q* = 0 (σ_b = 0, σ_w = 1/|φ'(0)|; needs φ(0) = 0 ≠ φ'(0)). The slope there is 1; whether q
    shrinks towards 0 (stable: tanh, ELU) or grows away from it (GELU, SiLU) is the sign of σ_w² E_q φ² - q just above
    0 (at :data:`Q_ZERO_PROBE`; equal to rounding: linear near 0, marginal like ReLU)."""
    d = act.dphi0
    sw2 = 1.0 / (d * d)
    r = sw2 * _moments(act, Q_ZERO_PROBE)[0] / Q_ZERO_PROBE - 1.0
    return 1.0 / abs(d), 0.0, 0.0, 1.0, bool(r <= 1e-12)


def _homogeneous_sigma_w(act):
    return 1.0 / math.sqrt(_moments(act, 1.0)[2])


def _describe(points):
    return "; ".join(f"sigma_w={p[0]:.10g}, sigma_b={p[1]:.6g} (q*={p[2]:.6g}, slope {p[3]:.6g})" for p in points)


def _pick(act, points, request, allow_unstable):
    """The stable point with the smallest q* (points sorted by q*); else, with ``allow_unstable``, the first point;
    else the error naming what exists."""
    for p in points:
        if p[4]:
            return p
    if points and allow_unstable:
        return points[0]
    if points:
        raise UnstableCriticalPointError(
            f"{act.name}: χ_1 = 1 with {request} only at an unstable fixed point of the length map (slope g'(q*) > 1:"
            f" any network's q^l leaves it, so it is not an edge of chaos): {_describe(points)}."
            " Pass allow_unstable=True to get it anyway.",
            points,
        )
    raise NoCriticalPointError(f"{act.name}: no critical point with {request}")


def _direct_moments(act, q):
    """(E_q φ², μ_1 = E_q φ'²) by composite Gauss–Legendre (32 nodes per panel) over z ∈ [-12, 12], panels split at
    unit steps, at φ's kinks and at ±2^k/√q (the scale of φ(√q z) near 0 for large q): a rule written here, independent
    of the kernels' moment table and quadrature, for :func:`_verify`."""
    x, w = np.polynomial.legendre.leggauss(32)
    r = math.sqrt(q)
    br = [float(v) for v in np.arange(-12.0, 12.5, 1.0)]
    br += [s * 2.0**k / r for k in range(-2, 8) for s in (-1.0, 1.0)]
    br += [float(kk) / r for kk in act.kinks]
    br = np.unique(np.clip(br, -12.0, 12.0))
    a, b = br[:-1, None], br[1:, None]
    z = (0.5 * (b - a) * x + 0.5 * (a + b)).ravel()
    wz = (0.5 * (b - a) * w).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    u = r * z
    f = np.asarray(act.phi(u), dtype=np.float64)
    d = np.asarray(act.dphi(u), dtype=np.float64)
    return float(wz @ (f * f)), float(wz @ (d * d))


def _verify(act, p):
    """Re-check a critical point (σ_w, σ_b, q*, slope, stable) independently of the moment table: χ_1 = σ_w² μ_1(q*) = 1
    and σ_w² E_{q*} φ² + σ_b² = q* by a quadrature written here (:func:`_direct_moments`), and, for a stable q* > 0 of
    a non-homogeneous φ, q* re-solved from 1.001·q* by the solver of :func:`meanfield.q_star` (its kernel: the
    tolerance is widened by the conditioning 1/|1 - g'(q*)|, which the proof of the public function does not allow near
    marginal points such as tanh at q* = 1e-5); else ConvergenceError."""

    sw, sb, q, slope, stable = p
    if q == 0.0:
        chi = sw * sw * act.dphi0**2
        if abs(chi - 1.0) > CHECK_RTOL:
            raise ConvergenceError(f"{act.name}: critical point at q* = 0 fails χ_1 = 1 (χ_1 = {chi!r})")
        return
    phi2, mu1 = _direct_moments(act, q)
    chi = sw * sw * mu1
    qm = sw * sw * phi2 + sb * sb
    if not (abs(chi - 1.0) <= CHECK_RTOL and abs(qm - q) <= CHECK_RTOL * q):
        raise ConvergenceError(
            f"{act.name}: critical point sigma_w={sw!r}, sigma_b={sb!r} fails its check by direct quadrature:"
            f" χ_1 = {chi!r}, q_map(q*) - q* = {qm - q:.3g} at q* = {q!r}"
        )
    if stable and not act.is_homogeneous:
        k = act.kernels
        q2, st, _, _ = _q_star_kernel(act, sw * sw, sb * sb, q * 1.001)
        tol = 1e-9 + 1e-13 / max(abs(1.0 - slope), 1e-300)
        if st != k.CONVERGED or not abs(q2 - q) <= tol * q:
            raise ConvergenceError(
                f"{act.name}: critical point sigma_w={sw!r}, sigma_b={sb!r}: q* re-solved from 1.001·q* is {q2!r},"
                f" not {q!r}"
            )


# ------------------------------------------------------------------------------------------------ vectorisation
def _each(values, one, n_out, return_status):
    """Apply ``one(float) -> tuple of n_out floats`` elementwise. Scalar input: the tuple (errors raise). Array input:
    arrays, NaN where ``one`` raised NoCriticalPointError (status "none") or UnstableCriticalPointError ("unstable")."""
    if values.ndim == 0:
        got = one(float(values))
        return (*got, "ok") if return_status else got
    outs = [np.full(values.shape, np.nan) for _ in range(n_out)]
    status = np.full(values.shape, "ok", dtype="<U8")
    for idx in np.ndindex(values.shape):
        try:
            got = one(float(values[idx]))
        except UnstableCriticalPointError:
            status[idx] = "unstable"
            continue
        except NoCriticalPointError:
            status[idx] = "none"
            continue
        for o, g in zip(outs, got):
            o[idx] = g
    return (*outs, status) if return_status else tuple(outs)


def _unpack(got, n_out, return_status):
    return got if (return_status or n_out > 1) else got[0]


# ------------------------------------------------------------------------------------------------ public functions
def critical_point(phi, q_star, allow_unstable=False, return_status=False):
    """(σ_w, σ_b) on the critical line whose fixed point is ``q_star`` [vec]: σ_w² = 1/μ_1(q*), σ_b² = q* - E φ²/μ_1
    (THEORY §1; Pennington et al. 2017 §2).

    Raises NoCriticalPointError where that would need σ_b² < 0, and :class:`UnstableCriticalPointError` where q* is an
    unstable fixed point of the length map (slope g'(q*) = σ_w² dE_q[φ²]/dq > 1, THEORY §6: e.g. GELU below q* ≈ 3.7,
    SiLU below q* ≈ 12) unless ``allow_unstable=True``. Positively homogeneous φ (ReLU, ``"Max(0,x)"``, linear): every
    q* is the marginal point σ_w² = 1/μ_1, σ_b = 0 exactly.

    Array input: NaN where a scalar would raise; ``return_status=True`` appends an array of reasons ("ok", "none",
    "unstable"; a scalar input gets "ok"). Every point is re-checked by direct quadrature (ConvergenceError otherwise).

    >>> critical_point("tanh", 8.0)
    (2.328707289..., 2.008880379...)
    """
    act = get_activation(phi)
    qa = positive(q_star, "q_star")

    def one(q):
        if act.is_homogeneous:
            p = (_homogeneous_sigma_w(act), 0.0, q, 1.0, True)
        else:
            p = _point_at(act, q)
            if p is None:
                m = _moments(act, q)
                raise NoCriticalPointError(
                    f"{act.name}: no critical point with q* = {q:.6g}: it would need σ_b² = {q - m[0] / m[2]:.6g} < 0"
                )
            if not p[4] and not allow_unstable:
                raise UnstableCriticalPointError(
                    f"{act.name}: q* = {q:.6g} is an unstable fixed point on the critical line (slope g'(q*) ="
                    f" {p[3]:.6g} > 1; {_describe([p])}): not an edge of chaos. Pass allow_unstable=True to get it.",
                    [p],
                )
        _verify(act, p)
        return p[0], p[1]

    return _each(qa, one, 2, return_status)


def critical_sigma_w(phi, sigma_b, allow_unstable=False, return_status=False):
    """σ_w on the critical line χ_1 = 1 for bias σ_b [vec] (THEORY §1, §6): the stable branch.

    Solves σ_b² = q* - E_{q*}φ²/μ_1(q*) for q* over every branch (the scan of :class:`_Line`: all extrema of σ_b²(q)
    are located, so each monotone piece holds at most one root) and returns σ_w = μ_1(q*)^{-1/2} of the root with a
    stable fixed point (the smallest such q* if several). Where χ_1 = 1 only at unstable fixed points (GELU with
    σ_b² ≲ 0.173, SiLU with σ_b² ≲ 0.555: docs/edge_of_chaos.md) it raises :class:`UnstableCriticalPointError` naming them, unless
    ``allow_unstable=True`` (then the smallest q*). Raises NoCriticalPointError where none exists (ReLU, leaky ReLU
    and linear with σ_b > 0).

    Array input: NaN where a scalar would raise; ``return_status=True`` appends the reasons ("ok", "none",
    "unstable"), e.g. ``critical_sigma_w("relu", [0, 0.1], return_status=True)`` → ``([√2, nan], ["ok", "none"])``.
    """
    act = get_activation(phi)
    sba = nonnegative(sigma_b, "sigma_b")

    def one(sb):
        if act.is_homogeneous:
            if sb > 0.0:
                raise NoCriticalPointError(
                    f"{act.name} is positively homogeneous: χ_1 does not depend on q*, and with sigma_b={sb:.6g} > 0"
                    f" the length map has no finite fixed point at the critical sigma_w={_homogeneous_sigma_w(act):.6g};"
                    " the only critical point is sigma_b = 0"
                )
            p = (_homogeneous_sigma_w(act), 0.0, 1.0, 1.0, True)
        else:
            p = _pick(act, _points_for_sigma_b(act, sb), f"sigma_b={sb:.6g}", allow_unstable)
        _verify(act, p)
        return (p[0],)

    return _unpack(_each(sba, one, 1, return_status), 1, return_status)


def _points_for_sigma_b(act, sb):
    sb2 = sb * sb
    points = []
    if sb == 0.0 and act.phi0 == 0.0 and act.dphi0 != 0.0:
        points.append(_zero_point(act))
    line = _line(act)
    breaks, vals = line.sb2
    tol = NEG_TOL * np.maximum(breaks, sb2)
    for q in _roots(lambda x: line.sb2_at(x)[0], breaks, vals, sb2, tol):
        p = _point_at(act, q)
        if p is not None:
            points.append((p[0], sb, *p[2:]))
    if not points and sb == 0.0 and act.phi0 == 0.0 and act.dphi0 == 0.0:
        raise NoCriticalPointError(f"{act.name}: φ'(0) = 0, so χ_1 → 0 as q* → 0: no critical point at σ_b = 0")
    return points


def critical_sigma_b(phi, sigma_w, allow_unstable=False, return_status=False):
    """σ_b on the critical line for weight scale σ_w [vec] (THEORY §1, §6): solve σ_w² μ_1(q*) = 1 over every branch
    (all extrema of μ_1(q) are located, so each monotone piece holds at most one root), keep the roots with
    σ_b² = q* - E φ²/μ_1 ≥ 0, and return σ_b of the stable one (the smallest q* if several).

    Raises NoCriticalPointError where none exists (tanh needs σ_w ≥ 1), :class:`UnstableCriticalPointError` where the
    only ones are unstable fixed points, unless ``allow_unstable=True``. Array input and ``return_status`` as in
    :func:`critical_sigma_w`.
    """
    act = get_activation(phi)
    swa = positive(sigma_w, "sigma_w")

    def one(s):
        if act.is_homogeneous:
            s0 = _homogeneous_sigma_w(act)
            if abs(s - s0) > 1e-12 * s0:
                raise NoCriticalPointError(
                    f"{act.name}: χ_1 = σ_w² μ_1 does not depend on q*; only sigma_w={s0:.12g} is critical, got {s}"
                )
            p = (s, 0.0, 1.0, 1.0, True)
        else:
            points = _points_for_sigma_w(act, s)
            if not points:
                hint = ""
                if act.phi0 == 0.0 and act.dphi0 != 0.0:
                    hint = f"; as σ_b → 0 the critical σ_w tends to 1/|φ'(0)| = {1.0 / abs(act.dphi0):.6g}"
                raise NoCriticalPointError(
                    f"{act.name}: no critical point with sigma_w={s:.6g} and σ_b² ≥ 0 (μ_1(q*) = 1/σ_w² has no"
                    f" admissible root{hint}; mf.critical_line shows the σ_w that have one)"
                )
            p = _pick(act, points, f"sigma_w={s:.6g}", allow_unstable)
        _verify(act, p)
        return (p[1],)

    return _unpack(_each(swa, one, 1, return_status), 1, return_status)


def _points_for_sigma_w(act, s):
    target = 1.0 / (s * s)
    points = []
    d = act.dphi0
    if act.phi0 == 0.0 and d != 0.0 and abs(d * d - target) <= 1e-14 * target:
        points.append((s, 0.0, 0.0, 1.0, _zero_point(act)[4]))
    line = _line(act)
    breaks, vals = line.mu1
    for q in _roots(lambda x: line.mu1_at(x)[0], breaks, vals, target, 1e-14 * target):
        p = _point_at(act, q)
        if p is not None:
            points.append((s, *p[1:]))
    return points


def critical_line(phi, q_star):
    """The critical line parametrised by q* [vec] with the stability of each point (THEORY §1, §6): a
    :class:`meanfield.results.CriticalLine` with σ_w, σ_b (NaN where σ_b² < 0), the slope g'(q*) = σ_w² dE_q φ²/dq of
    the length map and ``stable`` (g' ≤ 1): the edge of chaos is the stable part."""
    from meanfield.results import CriticalLine

    act = get_activation(phi)
    qa = np.atleast_1d(positive(q_star, "q_star")).astype(np.float64).reshape(-1)
    sw = np.full(qa.shape, np.nan)
    sb = np.full(qa.shape, np.nan)
    slope = np.full(qa.shape, np.nan)
    stable = np.zeros(qa.shape, dtype=bool)
    for i, q in enumerate(qa):
        p = (_homogeneous_sigma_w(act), 0.0, q, 1.0, True) if act.is_homogeneous else _point_at(act, float(q))
        if p is not None:
            sw[i], sb[i], _, slope[i], stable[i] = p
    return CriticalLine(activation=act.name, q_star=qa, sigma_w=sw, sigma_b=sb, slope_q=slope, stable=stable)


# ------------------------------------------------------------------------------------------------ phase diagram
# c* of the phase diagram by the Mehler series wherever it is accepted (False: the two-dimensional quadrature at every
# chaotic point, the method before; kept as the benchmark's baseline and the tests' reference).
PHASE_C_SERIES = True
_SERIES_BLOCK = 2048  # chaotic points per batch of Mehler coefficients (bounds the memory: 2 × block × 768 floats)
SERIES_THREADS = 2  # batches of the series path computed at once


def _series_c_star(a2, b2, nterms, q, sw2, sb2, row, rtol, maxiter, c_out, chic_out, ok_out):
    """c* = root in [0, 1) of G(c) = (σ_w² Σ_k a_k² c^k + σ_b²)/q - c for each point (Mehler series; THEORY §1,
    Poole et al. 2016 eq. 5), safeguarded Newton continued from the previous point of the same σ_b row.

    In the chaotic phase G(0) ≥ 0, G(1) = 0 (c = 1 is fixed at q = q*) and G is convex (a_k² ≥ 0), with G'(1) = χ_1 - 1
    > 0: the root in [0, 1) is unique. Each root is proved by a sign change of G across [c - h, c + h] (h at the
    rounding level of the polynomial); ``ok_out[i]`` is False where that or the Newton iteration fails (the caller then
    uses the two-dimensional quadrature)."""
    cprev = 0.5
    for i in range(q.shape[0]):
        if i > 0 and row[i] != row[i - 1]:
            cprev = 0.5
        n = nterms[i]
        ok_out[i] = False
        if n == 0:
            continue
        g0 = (sw2[i] * a2[i, 0] + sb2[i]) / q[i]
        if g0 <= 1e-14:  # odd φ, σ_b = 0: c-map(0) = 0 to rounding
            c_out[i] = 0.0
            chic_out[i] = sw2[i] * b2[i, 0]
            ok_out[i] = True
            continue
        lo, hi = 0.0, 1.0
        c = cprev if 0.0 < cprev < 1.0 else 0.5
        s0, s1 = 0.0, 0.0
        done = False
        for _ in range(maxiter):
            s0, s1 = 0.0, 0.0
            for k in range(n - 1, -1, -1):
                s0 = s0 * c + a2[i, k]
                s1 = s1 * c + b2[i, k]
            f = (sw2[i] * s0 + sb2[i]) / q[i] - c
            df = sw2[i] * s1 - 1.0  # dI/dc = q Σ b_k² c^k (Price), so G'(c) = σ_w² Σ b_k² c^k - 1
            if f == 0.0:
                done = True
                break
            if f > 0.0:
                lo = c
            else:
                hi = c
            cn = c - f / df if df != 0.0 else 0.5 * (lo + hi)
            if not (lo < cn < hi):
                cn = 0.5 * (lo + hi)
            dc = cn - c
            c = cn
            if abs(dc) <= rtol * abs(c) or hi - lo <= rtol * abs(c):
                done = True
                break
        if not done or c >= 1.0 - 1e-13:
            continue
        s1 = 0.0
        for k in range(n - 1, -1, -1):
            s1 = s1 * c + b2[i, k]
        slope = sw2[i] * s1 - 1.0
        h = max(1e-13 * c, 4e-16 / max(abs(slope), 1e-300))
        gl, gh = 0.0, 0.0
        for k in range(n - 1, -1, -1):
            gl = gl * (c - h) + a2[i, k]
            gh = gh * (c + h) + a2[i, k]
        gl = (sw2[i] * gl + sb2[i]) / q[i] - (c - h)
        gh = (sw2[i] * gh + sb2[i]) / q[i] - (c + h)
        if not (gl >= 0.0 >= gh) or c + h >= 1.0:
            continue
        c_out[i] = c
        chic_out[i] = slope + 1.0
        ok_out[i] = True
        cprev = c


_series_c_star_jit = None


def _series_kernel():
    global _series_c_star_jit
    if _series_c_star_jit is None:
        from numba import njit

        _series_c_star_jit = njit(cache=True, nogil=True)(_series_c_star)
    return _series_c_star_jit


def _c_star_by_series(act, sw2, sb2, q, phi2, mu1, row):
    """(c*, χ_c, ok) at chaotic points by the Mehler series (coefficients in batches, see :mod:`meanfield._mehler`);
    batches run on :data:`SERIES_THREADS` threads (the products, φ evaluations and the Newton kernel release the GIL)."""
    from meanfield._mehler import mehler_coefficients

    n = q.size
    c = np.full(n, np.nan)
    chic = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    kern = _series_kernel()
    odd = act.is_odd

    def block(s):
        sl = slice(s, min(n, s + _SERIES_BLOCK))
        a2, b2, nterms = mehler_coefficients(act.kernels, q[sl], phi2[sl], mu1[sl], odd=odd)
        if a2.shape[1]:
            kern(a2, b2, nterms, q[sl], sw2[sl], sb2[sl], row[sl], RTOL, MAXITER, c[sl], chic[sl], ok[sl])

    starts = range(0, n, _SERIES_BLOCK)
    if SERIES_THREADS > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(SERIES_THREADS) as ex:
            list(ex.map(block, starts))
    else:
        for s in starts:
            block(s)
    return c, chic, ok


def phase_diagram(
    phi, sigma_w_grid, sigma_b_grid, q_init=1.0, correlations=True, progress=False, *, q0=None
) -> PhaseDiagram:
    """q*, χ_1, the length map's slope, c*, χ_c, ξ_c on the grid σ_w × σ_b (arrays of shape (len(σ_w), len(σ_b)))
    (THEORY §1; Poole et al. 2016, Schoenholz et al. 2017).

    Every point's q* is the fixed point that iterating the length map from ``q_init`` reaches, the same as
    ``fixed_point(phi, σ_w, σ_b, q_init)`` there (with several fixed points, GELU, SiLU, x·tanh x, the basin matters);
    points are computed in parallel over σ_b rows. Where q grows without bound q* is inf, the other fields NaN and
    ``status == 2`` (:attr:`PhaseDiagram.diverges`).

    c* (``correlations=True``, the default): 1 in the ordered phase; in the chaotic phase the root of the correlation
    map by the Mehler series (smooth φ, accepted where its coefficients reproduce E φ² and E φ'² to 1e-12; Newton
    continued along each σ_b row, each root proved by a sign change), else by two-dimensional quadrature (kinked φ,
    large q*, closed two-point forms). ``meta["c_star_paths"]`` counts the points of each path. ``progress=True``
    draws a progress bar on stderr. ``q0`` is the former name of ``q_init`` (deprecated).
    """
    from meanfield._validate import nonempty

    if q0 is not None:
        warnings.warn(
            "phase_diagram(q0=...) is deprecated: q0 is the input's |x|²/N0 elsewhere; use q_init", DeprecationWarning,
            stacklevel=2,
        )
        q_init = q0
    act = get_activation(phi)
    sw = np.atleast_1d(positive(sigma_w_grid, "sigma_w_grid")).astype(np.float64).reshape(-1)
    sb = np.atleast_1d(nonnegative(sigma_b_grid, "sigma_b_grid")).astype(np.float64).reshape(-1)
    nonempty(sw, "sigma_w_grid")
    nonempty(sb, "sigma_b_grid")
    qi = float(positive(q_init, "q_init"))
    k = act.kernels
    nb, nw = sb.size, sw.size
    sw2, sb2 = sw**2, sb**2
    q = np.empty((nb, nw))
    chi = np.empty((nb, nw))
    slope = np.empty((nb, nw))
    phi2 = np.empty((nb, nw))
    status = np.empty((nb, nw), dtype=np.int64)
    step = max(1, nb // 20) if progress else nb
    for start in range(0, nb, step):
        rows = slice(start, min(nb, start + step))
        k.grid_kernel(sw2, sb2[rows], qi, act.table, RTOL, MAXITER, q[rows], chi[rows], slope[rows], phi2[rows],
                      status[rows])
        if progress:
            _progress_bar(rows.stop, nb)
    if np.any(status == k.MAXITER):
        raise ConvergenceError(f"{act.name}: {int(np.sum(status == k.MAXITER))} grid points did not converge")
    c = np.full((nb, nw), np.nan)
    chic = np.full((nb, nw), np.nan)
    paths = dict(ordered=0, series=0, quadrature=0)
    if correlations:
        found = (status == k.CONVERGED) | (status == k.ZERO)
        chaotic = found & (q > 0.0) & (chi > 1.0 + k.CHI1_ROUNDING)
        simple = found & ~chaotic
        c[simple] = np.where((q[simple] > 0.0) | (chi[simple] <= 1.0), 1.0, 0.0)
        chic[simple] = chi[simple]
        paths["ordered"] = int(simple.sum())
        jj, ii = np.nonzero(chaotic)  # row-major: along σ_w within each σ_b row (the continuation order)
        W2, B2 = sw2[ii], sb2[jj]
        qc, chc = q[jj, ii], chi[jj, ii]
        cc = np.full(qc.size, np.nan)
        xc = np.full(qc.size, np.nan)
        done = np.zeros(qc.size, dtype=bool)
        if PHASE_C_SERIES and not k.CLOSED_TWOPOINT and len(act.kinks) == 0 and qc.size:
            cc, xc, done = _c_star_by_series(act, W2, B2, qc, phi2[jj, ii], chc / W2, jj)
        paths["series"] = int(done.sum())
        rest = np.flatnonzero(~done)
        if rest.size:
            st = np.empty(rest.size, dtype=np.int64)
            c1, x1 = np.empty(rest.size), np.empty(rest.size)
            k.c_star_grid(W2[rest], B2[rest], qc[rest], chc[rest], RTOL, MAXITER, c1, x1, st)
            if np.any(st != k.CONVERGED):
                n_bad = int(np.sum(st != k.CONVERGED))
                raise ConvergenceError(f"{act.name}: c* did not converge at {n_bad} grid points")
            cc[rest], xc[rest] = c1, x1
        paths["quadrature"] = int(rest.size)
        c[jj, ii] = cc
        chic[jj, ii] = xc
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
        slope_q=slope.T.copy(),
        meta=dict(q_init=qi, correlations=bool(correlations), c_star_paths=paths),
    )


def _progress_bar(done, total, label="phase diagram"):
    import sys

    n = int(30 * done / total)
    sys.stderr.write(f"\r{label} [{'#' * n}{'.' * (30 - n)}] {done}/{total} rows")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
