"""Gaussian expectations with error control (THEORY §0–1).

``E_q[f] = ∫Dz f(√q z)`` (Dz the standard normal measure) and the two-point ``E[f(u1) g(u2)]`` for a centred Gaussian pair
with covariances ``(q11, q22, q12)``. All use composite Gauss–Legendre in z (16 nodes per panel, the 10-node rule on the
same panels for the error estimate), on the panels of :mod:`meanfield._quad` (split at the kinks and at the
activation's own scale); the one-point rule (``gaussian_moments``, ``expect``) is also checked:

* tails: panels beyond |z| = 9 are added while they still count, up to |z| = 36 (where e^{-z²/2} is 1e-281): an
  integrand that has not decayed there (``exp(x**2)`` at q ≥ 1/4: E φ² = (1 - 4q)^{-1/2} diverges) is flagged;
* resolution: while the panels' |I_16 - I_10| add up to more than 1e-14 of the moment's scale, those above the
  average are halved (``sin(x)`` at q = 1e4:
  ~2000 panels), up to 16384 panels or a width of 1e-9 (a singularity): beyond, flagged;
* overflow: a non-finite φ, φ' or sum is flagged.

The error estimate is the sum of the panels' |I_16 - I_10|, the last tail panel and a rounding bound (4e-15 of
the scale: the sum's and a few ulp of φ's; fast-growing φ amplify their argument's rounding beyond it, e.g.
exp(x)'s μ_2 = E e^{4u} at q = 8 is 1.1e-14 off with an estimate of 8e-15). The scale of a moment is the rule applied to the absolute value of its integrand (the value
itself for E φ², μ_1, μ_2). A result is returned only where the estimate is at most ``RTOL`` of the scale (1e-10; 1e-7
for the slope dE φ²/dq); anything flagged or less accurate raises :class:`NumericalError` naming the cause, never a
number. Measured, the returned values are within ~1e-15 relative of 30-digit references and within their estimate
(``tests/test_gaussian.py``, ``tests/test_quadrature_robustness.py``). Closed forms (THEORY §1 table) replace the
quadrature where they exist, with an error estimate of 16 ulp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meanfield import _quad
from meanfield._validate import as_array, broadcast, is_scalar, nonnegative, positive, scalar_or_array
from meanfield.activations import get_activation
from meanfield.errors import InvalidParameterError, NumericalError
from meanfield.results import Estimate, GaussianMoments, Result

__all__ = ["gaussian_moments", "two_point", "TwoPoint", "expect", "expect2"]

TWO_POINT_RTOL = 1e-10  # accepted error estimate of a two-point expectation relative to its Cauchy–Schwarz scale
# The same for the maps built on it (c_map, propagate's correlations, the Fisher statistics' cross-covariances): the
# estimate |I_16 - I_10| is the 10-node rule's error and far above the 16-node value's where the integrand oscillates
# (sin(x) at q = 2.26, c → 1: 5.9e-11 of the scale for a value exact to 1e-16), so the maps certify 1e-8
MAP_RTOL = 1e-8
EXPECT_RTOL = 1e-10  # accepted error estimate of expect relative to ∫Dz |f|
_GAUSS_TAIL = 2.3e-19  # 2Φ(-9): Gaussian mass beyond the two-point rule's truncation |z| = 9


RTOL = (1e-10, 1e-7, 1e-10, 1e-10)  # accepted error estimate of [E φ², dE φ²/dq, μ_1, μ_2] relative to their scale
_MOMENT_NAMES = ("E_q φ²", "dE_q φ²/dq", "μ_1 = E_q φ'²", "μ_2 = E_q φ'⁴")
_Q_NONFINITE, _Q_TAIL, _Q_BUDGET = 1, 2, 4  # flags of the kernels' onepoint_checked


def _causes(flags, u_bad, n_max):
    out = []
    if flags & _Q_NONFINITE:
        if u_bad == u_bad:  # not NaN
            out.append(f"φ or φ' is not finite at u = {u_bad:.6g} (overflow, or outside φ's domain)")
        else:
            out.append("its quadrature sum overflows float64 (φ grows too fast at this q)")
    if flags & _Q_TAIL:
        out.append("its integrand has not decayed at |u| = 36√q: the Gaussian integral diverges or exceeds float64")
    if flags & _Q_BUDGET:
        out.append(
            f"the rule could not resolve it with {n_max} panels (oscillation faster than the panels, or a singularity)"
        )
    return out


def _onepoint(act, q, vals, errs, scales, beyond=None):
    """The checked one-point moments at q into ``vals``, ``errs``, ``scales`` (and ``beyond``, the scales' part from
    |z| > 9); raise NumericalError naming the moment and the cause unless each estimate is within RTOL of its scale."""
    k = act.kernels
    if beyond is None:
        flags, u_bad = k.onepoint_direct(q, vals, errs, scales)
    else:
        flags, u_bad = k.onepoint_direct_tails(q, vals, errs, scales, beyond)
    bad = [j for j in range(4) if not (np.isfinite(vals[j]) and errs[j] <= RTOL[j] * scales[j])]
    if not bad:
        return
    what = ", ".join(_MOMENT_NAMES[j] for j in bad)
    causes = _causes(flags, u_bad, k.MAX_PANELS) or [
        f"its error estimate {errs[bad[0]]:.3g} exceeds {RTOL[bad[0]]:g} of its scale {scales[bad[0]]:.3g}"
    ]
    raise NumericalError(f"{what} of activation {act.name!r} at q={q:.6g}: " + "; ".join(causes))


def gaussian_moments(phi, q) -> GaussianMoments:
    """E_q φ², dE_q φ²/dq, μ_1 = E_q φ'², μ_2 = E_q φ'⁴ at variance q [vec], by the checked quadrature with error
    estimates (THEORY §1; the rule and its checks: module docstring).

    ``dE_q φ²/dq = E_q[φ'² + φφ'']`` plus the kinks' delta terms (Gaussian integration by parts), or the score form
    ``E_q[φ²(u²/q - 1)]/(2q)`` for q > 1; the slope of the length map is σ_w² times it. ``error`` bounds
    |value - exact| and is at most :data:`RTOL` of the moment's scale.

    Raises
    ------
    NumericalError
        a moment is infinite, beyond float64 or not resolved at this q (the message names the moment and the cause).
    """
    act = get_activation(phi)
    qa = positive(q, "q")
    k = act.kernels
    flat = np.ascontiguousarray(qa, dtype=np.float64).reshape(-1)
    vals = np.empty((flat.size, k.N_MOMENTS))
    errs = np.empty((flat.size, k.N_MOMENTS))
    scales = np.empty(k.N_MOMENTS)
    for i, qi in enumerate(flat.tolist()):
        _onepoint(act, qi, vals[i], errs[i], scales)
    shape = qa.shape
    scal = qa.ndim == 0

    def col(j):
        return scalar_or_array(vals[:, j].reshape(shape), scal)

    return GaussianMoments(
        q=scalar_or_array(qa, scal),
        phi2=col(0),
        dphi2_dq=col(1),
        mu1=col(2),
        mu2=col(3),
        error=errs[:, :4].reshape(shape + (4,)),
        activation=act.name,
    )


_WHAT = ("E φ(u1)φ(u2)", "E φ'(u1)φ'(u2)")  # the two two-point expectations, as error messages name them


def checked_twopoint(act, q: float, q12: float, out: np.ndarray, where: str, need=(0, 1), moments=None,
                     rtol: float = MAP_RTOL) -> None:
    """``out[:] = (E φ(u1)φ(u2), E φ'(u1)φ'(u2))`` for u1, u2 of variance q and covariance q12 by the two-point rule,
    refused (NumericalError naming ``where``) where its error estimate |I_16 - I_10| exceeds ``rtol`` (default
    :data:`MAP_RTOL`) of the Cauchy–Schwarz scale E_q φ² (μ_1(q) for φ'φ'), or a value is not finite. ``need``: which
    of the two the caller uses (0: E φφ, 1: E φ'φ'), the only ones checked; ``moments``: the one-point moments at q
    (``act.kernels.moments``) where the caller has them, else computed. The maps built on the two-point expectation
    (c_map, propagate's correlations, the Fisher statistics' cross-covariances) call it, so that none of them returns
    what :func:`two_point` refuses (sin(x) at q ≈ 200 and c ≈ 1: an error of 2e-3)."""
    k = act.kernels
    err = np.empty(2)
    k.twopoint_direct(q, q, q12, out, err)
    for j in need:
        if not np.isfinite(out[j]):
            raise NumericalError(
                f"{where}: {_WHAT[j]} of activation {act.name!r} at (q, q12) = ({q:.6g}, {q12:.6g}) is not finite: it "
                "overflows float64"
            )
    if k.CLOSED_TWOPOINT:
        return
    if moments is None:
        moments = np.empty(k.N_MOMENTS)
        k.moments(q, act.table, moments)
    for j in need:
        scale = abs(float(moments[(0, 2)[j]]))
        if not err[j] <= rtol * scale:
            raise NumericalError(
                f"{where}: {_WHAT[j]} of activation {act.name!r} at (q, q12) = ({q:.6g}, {q12:.6g}): the two-point "
                f"rule's error estimate {err[j]:.3g} exceeds {rtol:g} of its scale {scale:.3g} (oscillation it does "
                "not resolve)"
            )


@dataclass(frozen=True)
class TwoPoint(Result):
    """E[φ(u1)φ(u2)] and E[φ'(u1)φ'(u2)] with error estimates (shape (..., 2))."""

    phi_phi: float | np.ndarray
    dphi_dphi: float | np.ndarray
    error: np.ndarray


def two_point(phi, q11, q22, q12) -> TwoPoint:
    """Two-point expectations of φ and φ' for the centred Gaussian pair with covariances (q11, q22, q12) [vec].

    Needs ``q12² ≤ q11 q22`` (a valid covariance). ``E φφ`` is ``I_φ`` of THEORY §1; ``E φ'φ'`` gives χ_c.
    """
    act = get_activation(phi)
    a, b = positive(q11, "q11"), positive(q22, "q22")
    c = as_array(q12, "q12")
    a, b, c = broadcast(q11=a, q22=b, q12=c)
    if np.any(np.abs(c) > np.sqrt(a) * np.sqrt(b) * (1 + 5e-13)):  # q12² ≤ q11 q22 without overflowing q11 q22
        raise InvalidParameterError("q12 must satisfy q12² ≤ q11·q22 (a covariance matrix)")
    k = act.kernels
    shape = a.shape
    fa, fb, fc = (np.ascontiguousarray(v, dtype=np.float64).reshape(-1) for v in (a, b, c))
    vals = np.empty((fa.size, 2))
    errs = np.empty((fa.size, 2))
    m1, m2, e1, e2, s1, s2, t1, t2 = (np.empty(k.N_MOMENTS) for _ in range(8))
    for i in range(fa.size):
        # The one-point moments at q11 and q22 must exist and be resolved; they bound the pair (Cauchy–Schwarz):
        # |E φ(u1)φ(u2)| ≤ √(E φ²(q11) E φ²(q22)). What the rule's truncation (|z1|, |z2| ≤ 9) misses is estimated by
        # |φ(u1)φ(u2)| ≤ (φ(u1)² + φ(u2)²)/2 over the dropped region: the one-point tails T beyond |z| = 9 and the
        # Gaussian mass 2Φ(-9) = 2.3e-19 times the other's moment, for each truncation.
        _onepoint(act, float(fa[i]), m1, e1, s1, t1)
        _onepoint(act, float(fb[i]), m2, e2, s2, t2)
        k.twopoint_direct(fa[i], fb[i], fc[i], vals[i], errs[i])
        for j, mom in ((0, 0), (1, 2)):
            scale = np.sqrt(s1[mom]) * np.sqrt(s2[mom])  # (the product of the scales may overflow)
            errs[i, j] += t1[mom] + t2[mom] + _GAUSS_TAIL * (s1[mom] + s2[mom])
            if not (np.isfinite(vals[i, j]) and errs[i, j] <= TWO_POINT_RTOL * scale):
                raise NumericalError(
                    f"{_WHAT[j]} of activation {act.name!r} at (q11, q22, q12) = ({fa[i]:.6g}, {fb[i]:.6g}, {fc[i]:.6g}):"
                    f" the two-point rule's error estimate {errs[i, j]:.3g} exceeds {TWO_POINT_RTOL:g} of its scale"
                    f" √(E φ²(q11) E φ²(q22)) = {scale:.3g} (oscillation it does not resolve, or tails beyond |z| = 9)"
                )
    scal = is_scalar(q11, q22, q12)
    return TwoPoint(
        phi_phi=scalar_or_array(vals[:, 0].reshape(shape), scal),
        dphi_dphi=scalar_or_array(vals[:, 1].reshape(shape), scal),
        error=errs.reshape(shape + (2,)),
    )


def _panel_sums(f, s, a, b):
    """Per panel [a_i, b_i] (in z): the 16-node sums of f(s z) φ(z), the 10-node sums, and the 16-node sums of |f|."""
    out = []
    for x, w in ((_quad.X16, _quad.W16), (_quad.X10, _quad.W10)):
        h = 0.5 * (b - a)
        m = 0.5 * (b + a)
        z = m[:, None] + h[:, None] * x[None, :]
        wt = h[:, None] * w[None, :] * _quad.INV_SQRT_2PI * np.exp(-0.5 * z * z)
        u = s * z.ravel()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            fz = np.broadcast_to(np.asarray(f(u), dtype=np.float64), u.shape).reshape(z.shape)
        if not np.all(np.isfinite(fz)):
            bad = float(u[~np.isfinite(fz.ravel())][0])
            raise NumericalError(f"E_q[f] at q={s * s:.6g}: f is not finite at u = {bad:.6g} (overflow, or outside f's domain)")
        with np.errstate(over="ignore", invalid="ignore"):
            out.append(((wt * fz).sum(axis=1), (wt * np.abs(fz)).sum(axis=1)))
    return out[0][0], out[1][0], out[0][1]


def _callable(f, name):
    if not callable(f):
        raise InvalidParameterError(
            f"{name} must be a vectorised function of a numpy array (e.g. np.tanh or lambda u: u**2), got {f!r}"
        )


def _scalars(**named):
    """The validated arguments as floats, or one error naming every one that is an array (one expectation per call)."""
    arrays = {k: np.shape(v) for k, v in named.items() if np.ndim(v)}
    if arrays:
        raise InvalidParameterError(
            f"{', '.join(named)} must be scalars here (one expectation per call), got shapes "
            + ", ".join(f"{k} {v}" for k, v in arrays.items())
        )
    return [float(v) for v in named.values()]


def expect(f, q, kinks=()) -> Estimate:
    """E_q[f] = ∫Dz f(√q z) for a vectorised numpy function f; split the rule at ``kinks`` (points in u).

    The checked rule of the module docstring (tails beyond |z| = 9 while they count, panels halved until their
    |I_16 - I_10| add up to at most 1e-14 of ∫Dz |f|, flags for what it cannot do). Returns an
    :class:`Estimate` (value, error estimate that bounds the error, at most 1e-10 of ∫Dz |f(√q z)|); raises
    NumericalError naming the cause otherwise.
    """
    _callable(f, "f")
    (qv,) = _scalars(q=positive(q, "q"))
    s = np.sqrt(qv)
    buf = np.empty(_quad.MAX_BREAKS)
    n = _quad.add_breaks(0.0, s, np.asarray(kinks, dtype=np.float64), buf, 0)
    n = _quad.sort_unique(buf, n)
    a, b = buf[: n - 1].copy(), buf[1:n].copy()
    v16, v10, s16 = _panel_sums(f, s, a, b)
    flags = 0
    tail = 0.0
    for side in (1.0, -1.0):  # tails beyond ±Z_MAX while they still count
        z0 = _quad.Z_MAX
        while True:
            if z0 >= _quad.Z_EXT - 1e-9:
                flags |= _quad.Q_TAIL
                break
            z1 = min(z0 + _quad.Z_STEP, _quad.Z_EXT)
            pa, pb = (np.array([z0]), np.array([z1])) if side > 0 else (np.array([-z1]), np.array([-z0]))
            t16, t10, ts = _panel_sums(f, s, pa, pb)
            a, b = np.concatenate((a, pa)), np.concatenate((b, pb))
            v16, v10, s16 = np.concatenate((v16, t16)), np.concatenate((v10, t10)), np.concatenate((s16, ts))
            z0 = z1
            if not ts[0] > _quad.TAIL_RTOL * s16.sum():
                break
        tail += float(s16[-1])
    while True:  # while the panels' |I_16 - I_10| add up to more than SPLIT_RTOL of the scale, halve those above average
        e = np.abs(v16 - v10)
        if not e.sum() > _quad.SPLIT_RTOL * s16.sum():
            break
        need = e > e.mean()
        if a.size + need.sum() > _quad.MAX_PANELS or np.any((b - a)[need] < _quad.MIN_WIDTH * (1 + np.abs(a[need]))):
            flags |= _quad.Q_BUDGET
            break
        mid = 0.5 * (a[need] + b[need])
        na = np.concatenate((a[~need], a[need], mid))
        nb = np.concatenate((b[~need], mid, b[need]))
        n16, n10, ns = _panel_sums(f, s, np.concatenate((a[need], mid)), np.concatenate((mid, b[need])))
        v16 = np.concatenate((v16[~need], n16))
        v10 = np.concatenate((v10[~need], n10))
        s16 = np.concatenate((s16[~need], ns))
        a, b = na, nb
    value = float(v16.sum())
    scale = float(s16.sum())
    err = float(np.abs(v16 - v10).sum()) + tail + _quad.ROUND_RTOL * scale
    if not (np.isfinite(value) and np.isfinite(scale)):
        flags |= _quad.Q_NONFINITE
        err = np.inf
    if not err <= EXPECT_RTOL * scale:
        causes = _causes(flags, np.nan, _quad.MAX_PANELS) or [
            f"its error estimate {err:.3g} exceeds {EXPECT_RTOL:g} of its scale {scale:.3g}"
        ]
        raise NumericalError(f"E_q[f] at q={qv:.6g}: " + "; ".join(causes).replace("φ", "f"))
    return Estimate(value, err)


def expect2(f, g, q11, q22, q12, kinks_f=(), kinks_g=()) -> Estimate:
    """E[f(u1) g(u2)] for the centred Gaussian pair with covariances (q11, q22, q12); f, g vectorised numpy functions.

    Nested composite rules: the outer over u1 split at f's kinks and the smoothed kinks of the inner expectation, the
    inner (u2 given u1) split at g's kinks. Returns an :class:`Estimate`.
    """
    _callable(f, "f")
    _callable(g, "g")
    a, b, c12 = _scalars(q11=positive(q11, "q11"), q22=positive(q22, "q22"), q12=as_array(q12, "q12"))
    nonnegative(a * b - c12 * c12 + 1e-12 * a * b, "q11·q22 - q12²")
    s1, s2 = np.sqrt(a), np.sqrt(b)
    c = float(np.clip(c12 / (s1 * s2), -1.0, 1.0))
    slope = s2 * c
    width = s2 * np.sqrt(max((1 - c) * (1 + c), 0.0))
    kf = np.asarray(kinks_f, dtype=np.float64)
    kg = np.asarray(kinks_g, dtype=np.float64)
    results = []
    scale = 0.0
    for x, w in ((_quad.X16, _quad.W16), (_quad.X10, _quad.W10)):
        buf = np.empty(_quad.MAX_BREAKS)
        n = _quad.add_breaks(0.0, s1, kf, buf, 0)
        if slope != 0.0:
            n = _quad.add_breaks(0.0, abs(slope), kg, buf, n)
            for kk in kg:
                n = _quad.add_kink_grading(kk / slope, width / abs(slope), buf, n)
        n = _quad.sort_unique(buf, n)
        z1, w1 = _quad.panel_rule(buf, n, x, w)
        total = 0.0
        for zi, wi in zip(z1, w1):
            mu = slope * zi
            with np.errstate(over="ignore", invalid="ignore"):
                if width > 0.0:
                    z2, w2 = _quad.gaussian_rule(mu, width, kg, x, w)
                    gz = np.asarray(g(mu + width * z2), dtype=np.float64)
                    inner, inner_abs = float(np.dot(w2, gz)), float(np.dot(w2, np.abs(gz)))
                else:
                    inner = float(g(np.asarray([mu]))[0])
                    inner_abs = abs(inner)
                fz = float(f(np.asarray([s1 * zi]))[0])
                total += wi * fz * inner
                if x is _quad.X16:
                    scale += wi * abs(fz) * inner_abs
        results.append(total)
    if not (np.isfinite(results[0]) and np.isfinite(scale)):
        raise NumericalError("E[f(u1) g(u2)] is not finite (f or g overflows, or is outside its domain)")
    err = abs(results[0] - results[1]) + _quad.ROUND_RTOL * scale
    if not err <= EXPECT_RTOL * scale:
        raise NumericalError(
            f"E[f(u1) g(u2)]: the nested rule's error estimate {err:.3g} exceeds {EXPECT_RTOL:g} of its scale"
            f" {scale:.3g} (oscillation it does not resolve)"
        )
    return Estimate(results[0], err)
