"""Numba kernels: Gaussian expectations, the moment table, fixed points and grids, for one activation.

This file is a template. :mod:`meanfield.activations` renders it once per activation — the block between the
``ACTIVATION`` markers is replaced by that activation's φ, φ', φ'', kinks and closed forms — into the kernel cache
directory and imports it, so every activation (named or a sympy expression) gets its own compiled kernels that Numba caches
on disk (one jit policy: ``cache=True``, float64). Imported as it stands it holds the kernels of tanh.

Quantities (THEORY §1; ``E_q`` is the expectation over ``u ~ N(0, q)``):

* one-point moments ``m = [E_q φ², dE_q φ²/dq, μ_1 = E_q φ'², μ_2 = E_q φ'⁴, dμ_1/dq]``. For q ≤ 1,
  ``dE_q φ²/dq = E_q[φ'² + φφ''] + Σ_k φ(k) Δφ'(k) N(k; 0, q)`` (Gaussian integration by parts, the kinks' jumps
  Δφ' putting deltas in φ''); for q > 1 the score-function form ``E_q[φ²(u²/q - 1)]/(2q)``, which does not cancel at
  large q where E φ'² and E φφ'' nearly annihilate (tanh at q = 1e6: 1e-7 against 1e-13).
  ``dμ_1/dq = E_q[φ'²(u²/q - 1)]/(2q)`` (score function; loses digits as q → 0, used only as a Newton slope);
* two-point ``[E φ(u1)φ(u2), E φ'(u1)φ'(u2)]`` for ``(u1, u2)`` centred Gaussian with covariances ``(q11, q22, q12)``.

The moment table holds Chebyshev interpolants (degree ``TABLE_DEG``, one per octave of q) of the first four one-point
moments on ``2^TABLE_LOG2_LO ≤ q < 2^TABLE_LOG2_HI``; it is built once per activation (by :mod:`meanfield._table`, in
Python around :func:`onepoint_rule`), checked against direct quadrature between its nodes, and makes the length map
cost a few Chebyshev sums.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from meanfield._quad import X10, X16, W10, W16, MAX_BREAKS, INV_SQRT_2PI
from meanfield._quad import add_breaks, add_kink_grading, sort_unique
from meanfield._quad import Q_NONFINITE, Q_TAIL, Q_BUDGET, Z_STEP, Z_EXT, TAIL_RTOL, SPLIT_RTOL, ROUND_RTOL
from meanfield._quad import MIN_WIDTH, MAX_PANELS, Z_MAX

JIT = dict(cache=True, nogil=True)
# Cold start (the first call in a fresh process compiles): a compiled function carries a copy of the machine code of
# everything it calls, so each wrapper level between an entry point and the checked quadrature generated that
# quadrature's code once more. Thin wrappers are therefore inlined into their callers (Numba IR inlining; called from
# Python they compile as usual), and the solvers' first attempt runs table-only (``miss``, see moments), so that the
# checked rule is compiled into them only when a q outside the table needs it. Inlining whole solvers into one entry
# point was measured slower (compile time grows faster than the size of a function).
INLINE = dict(cache=True, nogil=True, inline="always")

# >>> ACTIVATION
NAME = "tanh"


@njit(**JIT)
def phi(x):
    return math.tanh(x)


@njit(**JIT)
def dphi(x):
    t = math.tanh(x)
    return 1.0 - t * t


@njit(**JIT)
def d2phi(x):
    t = math.tanh(x)
    return -2.0 * t * (1.0 - t * t)


KINKS = np.zeros(0)
JUMPS = np.zeros(0)
CLOSED_ONEPOINT = False
CLOSED_TWOPOINT = False


@njit(**JIT)
def closed_onepoint(q, out):
    pass


@njit(**JIT)
def closed_twopoint(q11, q22, q12, out):
    pass


@njit(**JIT)
def closed_qmap(q):
    return 0.0, 0.0


# <<< ACTIVATION

N_MOMENTS = 5
TABLE_LOG2_LO = -34
TABLE_LOG2_HI = 20
TABLE_DEG = 20
N_TABULATED = 4  # m[0..3] are interpolated; m[4] is the derivative of the μ_1 interpolant
# Accepted relative error (to the moment's scale, see onepoint_checked) of [E φ², dE φ²/dq, μ_1, μ_2, dμ_1/dq] where
# the table holds a row and where moments() integrates directly; beyond it the moment is NaN. The slopes (Newton
# steps, stability of a fixed point) need fewer digits than the values.
DIRECT_RTOL = np.array([1e-10, 1e-7, 1e-10, 1e-10, 1e-7])

# Solver status codes (mirrored in meanfield.results.Status)
CONVERGED = 0
MAXITER = 1
DIVERGED = 2
ZERO = 3
DEGENERATE = 4

Q_DIVERGE = 1e60  # q beyond this while still growing: no finite fixed point
Q_ZERO = 1e-40  # q below this while still shrinking: the fixed point is q* = 0
EPS = 2.220446049250313e-16
CHI1_ROUNDING = 1e-12  # χ_1 within this of 1 is critical to its accuracy: c* = 1 (ReLU at σ_w² = 2)
ODD_TOL = 1e-14  # |c-map(0)| below this (rounding of (E φ)² = 0 for odd φ, σ_b = 0): c* = 0


# ---------------------------------------------------------------------------------------------------------------- arrays
@njit(**JIT)
def phi_array(u, order):
    """φ (order 0), φ' (1) or φ'' (2) elementwise over a 1-D array (plain indexing: ``.flat`` was 3× slower)."""
    n = u.shape[0]
    out = np.empty(n)
    if order == 0:
        for i in range(n):
            out[i] = phi(u[i])
    elif order == 1:
        for i in range(n):
            out[i] = dphi(u[i])
    else:
        for i in range(n):
            out[i] = d2phi(u[i])
    return out


@njit(**JIT)
def phi_dphi_array(u, f, d):
    """``f = φ(u)``, ``d = φ'(u)`` elementwise in one pass over a 1-D array: LLVM shares the subexpressions of the two
    (tanh's φ' = 1 - tanh², one libm call for both), half the cost of two :func:`phi_array` calls."""
    for i in range(u.shape[0]):
        f[i] = phi(u[i])
        d[i] = dphi(u[i])


# ------------------------------------------------------------------------------------------------------------ one point
# The checked one-point rule (THEORY §1 "Numerical pitfalls"). Composite Gauss–Legendre in z = u/√q, 16 and 10 nodes on
# the same panels: the panels of meanfield._quad on [-Z_MAX, Z_MAX]; then panels of width Z_STEP beyond ±Z_MAX, added
# while the last one still holds more than TAIL_RTOL of a moment's scale (up to ±Z_EXT, where the Gaussian weight
# e^{-z²/2} reaches 1e-281); then every panel whose |I_16 - I_10| exceeds SPLIT_RTOL of the moment's scale is halved,
# until none does, a panel is narrower than MIN_WIDTH or there are MAX_PANELS of them. The scale of a moment is the
# rule applied to the absolute value of its integrand (its value for E φ², μ_1, μ_2). The error estimate is
# Σ_panels |I_16 - I_10| + (the last tail panel) + ROUND_RTOL·scale (summation rounding); what it does not see is flagged:
# Q_NONFINITE: φ or φ' is not finite at a node (overflow or outside φ's domain), or a sum overflows;
# Q_TAIL: the integrand has not decayed at |z| = Z_EXT: the moment is infinite or beyond float64;
# Q_BUDGET: MAX_PANELS or MIN_WIDTH reached: oscillation or a singularity the rule cannot resolve.
# (constants in meanfield._quad, shared with meanfield.gaussian.expect)


@njit(**JIT)
def _eval_panel(q, sigma, p, pa, pb, v16, v10, s16):
    """The panel ``[pa[p], pb[p]]``'s contributions to the moments by the 16-node rule (``v16[p]``, with the absolute
    integrands in ``s16[p]``) and by the 10-node rule (``v10[p]``). Returns the first u where φ or φ' is not finite
    (NaN if none). One function for both rules and every panel: a single compiled specialisation."""
    a = pa[p]
    b = pb[p]
    h = 0.5 * (b - a)
    m = 0.5 * (b + a)
    bad = math.nan
    for k in range(N_MOMENTS):
        v16[p, k] = 0.0
        v10[p, k] = 0.0
        s16[p, k] = 0.0
    for r in range(2):
        x = X16 if r == 0 else X10
        w = W16 if r == 0 else W10
        acc = v16 if r == 0 else v10
        for i in range(x.shape[0]):
            z = m + h * x[i]
            wt = h * w[i] * INV_SQRT_2PI * math.exp(-0.5 * z * z)
            u = sigma * z
            f = phi(u)
            d = dphi(u)
            d2 = d * d
            ff = f * f
            zz = z * z
            g = 0.0
            acc[p, 0] += wt * ff
            if q <= 1.0:
                g = f * d2phi(u)
                acc[p, 1] += wt * (d2 + g)
            else:
                acc[p, 1] += wt * ff * (zz - 1.0)
            acc[p, 2] += wt * d2
            acc[p, 3] += wt * d2 * d2
            acc[p, 4] += wt * d2 * (zz - 1.0)
            if r == 0:
                s16[p, 0] += wt * ff
                if q <= 1.0:
                    s16[p, 1] += wt * (d2 + abs(g))
                else:
                    s16[p, 1] += wt * ff * (zz + 1.0)
                s16[p, 2] += wt * d2
                s16[p, 3] += wt * d2 * d2
                s16[p, 4] += wt * d2 * (zz + 1.0)
                if not (math.isfinite(f) and math.isfinite(d)) and math.isnan(bad):
                    bad = u
    return bad


@njit(**JIT)
def _grow(a, cap):
    """``a`` copied into a longer array of ``cap`` entries (the panels' storage grows on demand; explicit loops: slice
    assignment would compile NumPy's broadcasting and its error messages); _grow2 for rows."""
    b = np.empty(cap)
    for i in range(a.shape[0]):
        b[i] = a[i]
    return b


@njit(**JIT)
def _grow2(a, cap):
    b = np.empty((cap, a.shape[1]))
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            b[i, k] = a[i, k]
    return b


@njit(**JIT)
def onepoint_checked(q, out, err, scale, beyond):
    """One-point moments at variance q by the checked rule; ``err`` the error estimates, ``scale`` the moments' scales,
    ``beyond`` the part of the scales from |z| > Z_MAX (what a rule truncated there, like the two-point one, misses).

    Returns ``(flags, u_bad)``: an OR of Q_NONFINITE, Q_TAIL, Q_BUDGET (0 if none) and the first u where φ or φ' was not
    finite. A moment is accurate when ``err ≤ rtol·scale`` for the caller's rtol; a non-finite value has ``err = inf``.
    """
    sigma = math.sqrt(q)
    buf = np.empty(MAX_BREAKS)
    # counts start as np.int64(0), not 0: a literal 0 passed to a jitted function makes Numba compile a specialisation
    # for the literal as well as for int64 (twice the code on a cold cache)
    nb = add_breaks(0.0, sigma, KINKS, buf, np.int64(0))
    nb = sort_unique(buf, nb)
    cap = 2 * MAX_BREAKS  # the core and tail panels fit; refinement grows the storage up to MAX_PANELS
    pa = np.empty(cap)
    pb = np.empty(cap)
    v16 = np.empty((cap, N_MOMENTS))
    v10 = np.empty((cap, N_MOMENTS))
    s16 = np.empty((cap, N_MOMENTS))
    flags = 0
    u_bad = math.nan
    n = np.int64(0)
    for i in range(nb - 1):
        pa[n] = buf[i]
        pb[n] = buf[i + 1]
        bad = _eval_panel(q, sigma, n, pa, pb, v16, v10, s16)
        if not math.isnan(bad) and math.isnan(u_bad):
            u_bad = bad
        n += 1
    tot = np.zeros(N_MOMENTS)
    for p in range(n):
        for k in range(N_MOMENTS):
            tot[k] += s16[p, k]
    tail = np.zeros(N_MOMENTS)
    for side in (1.0, -1.0):  # tails beyond ±Z_MAX, while they still count
        z0 = buf[nb - 1] if side > 0.0 else -buf[0]
        more = True
        while more:
            if not math.isnan(u_bad):
                break
            if z0 >= Z_EXT - 1e-9:
                flags |= Q_TAIL
                break
            z1 = min(z0 + Z_STEP, Z_EXT)
            pa[n] = z0 if side > 0.0 else -z1
            pb[n] = z1 if side > 0.0 else -z0
            bad = _eval_panel(q, sigma, n, pa, pb, v16, v10, s16)
            if not math.isnan(bad) and math.isnan(u_bad):
                u_bad = bad
            more = False
            for k in range(N_MOMENTS):
                tot[k] += s16[n, k]
                if not (s16[n, k] <= TAIL_RTOL * tot[k]):
                    more = True
            n += 1
            z0 = z1
        for k in range(N_MOMENTS):
            tail[k] += s16[n - 1, k]
    # refine: while the panels' |I_16 - I_10| add up to more than SPLIT_RTOL of a moment's scale, halve those above average
    split = math.isnan(u_bad)
    for k in range(N_MOMENTS):
        if not math.isfinite(tot[k]):
            split = False
    esum = np.zeros(N_MOMENTS)
    thr = np.empty(N_MOMENTS)
    while split:
        split = False
        n0 = n
        for k in range(N_MOMENTS):
            esum[k] = 0.0
        for p in range(n0):
            for k in range(N_MOMENTS):
                esum[k] += abs(v16[p, k] - v10[p, k])
        failing = False
        for k in range(N_MOMENTS):  # a moment whose panels' errors add up to more than SPLIT_RTOL of its scale ...
            thr[k] = math.inf
            if esum[k] > SPLIT_RTOL * tot[k]:
                thr[k] = esum[k] / n0  # ... gets its above-average panels halved
                failing = True
        if not failing:
            break
        for p in range(n0):
            need = False
            for k in range(N_MOMENTS):
                if abs(v16[p, k] - v10[p, k]) > thr[k]:
                    need = True
            if not need:
                continue
            if n >= cap and cap < MAX_PANELS:
                cap = min(4 * cap, MAX_PANELS)
                pa = _grow(pa, cap)
                pb = _grow(pb, cap)
                v16 = _grow2(v16, cap)
                v10 = _grow2(v10, cap)
                s16 = _grow2(s16, cap)
            if n >= cap or pb[p] - pa[p] < MIN_WIDTH * (1.0 + abs(pa[p])):
                flags |= Q_BUDGET
                continue
            mid = 0.5 * (pa[p] + pb[p])
            for k in range(N_MOMENTS):
                tot[k] -= s16[p, k]
            pa[n] = mid
            pb[n] = pb[p]
            pb[p] = mid
            _eval_panel(q, sigma, p, pa, pb, v16, v10, s16)
            _eval_panel(q, sigma, n, pa, pb, v16, v10, s16)
            for k in range(N_MOMENTS):
                tot[k] += s16[p, k] + s16[n, k]
            n += 1
            split = True
    for k in range(N_MOMENTS):
        out[k] = 0.0
        err[k] = 0.0
        scale[k] = 0.0
        beyond[k] = 0.0
    zm = buf[nb - 1]
    for p in range(n):
        far = pa[p] >= zm or pb[p] <= -zm
        for k in range(N_MOMENTS):
            out[k] += v16[p, k]
            err[k] += abs(v16[p, k] - v10[p, k])
            scale[k] += s16[p, k]
            if far:
                beyond[k] += s16[p, k]
    for k in range(N_MOMENTS):
        err[k] += tail[k] + ROUND_RTOL * scale[k]
    if q <= 1.0:
        for k in range(KINKS.shape[0]):
            kk = KINKS[k]
            delta = phi(kk) * JUMPS[k] * INV_SQRT_2PI * math.exp(-0.5 * kk * kk / q) / sigma
            out[1] += delta
            scale[1] += abs(delta)
    else:
        out[1] /= 2.0 * q
        err[1] /= 2.0 * q
        scale[1] /= 2.0 * q
        beyond[1] /= 2.0 * q
    out[4] /= 2.0 * q
    err[4] /= 2.0 * q
    scale[4] /= 2.0 * q
    beyond[4] /= 2.0 * q
    for k in range(N_MOMENTS):
        if not (math.isfinite(out[k]) and math.isfinite(scale[k])):
            err[k] = math.inf
            flags |= Q_NONFINITE
    if not math.isnan(u_bad):
        flags |= Q_NONFINITE
    return flags, u_bad


@njit(**INLINE)
def onepoint_direct(q, out, err, scale):
    """Checked one-point moments (closed forms where they exist: error = rounding, 16 ulp); returns (flags, u_bad)."""
    return onepoint_direct_tails(q, out, err, scale, np.empty(N_MOMENTS))


@njit(**INLINE)
def onepoint_direct_tails(q, out, err, scale, beyond):
    """:func:`onepoint_direct`, with the part of the scales beyond |z| = Z_MAX in ``beyond`` (zero for closed forms)."""
    if CLOSED_ONEPOINT:
        closed_onepoint(q, out)
        for k in range(N_MOMENTS):
            scale[k] = abs(out[k])
            err[k] = 16.0 * EPS * scale[k]
            beyond[k] = 0.0
        return 0, math.nan
    return onepoint_checked(q, out, err, scale, beyond)


# ---------------------------------------------------------------------------------------------------------- the table
# (built in Python around onepoint_rule, see meanfield._table; evaluated here)
@njit(**JIT)
def _clenshaw(c, x):
    b1 = 0.0
    b2 = 0.0
    x2 = 2.0 * x
    for k in range(c.shape[0] - 1, 0, -1):
        b1, b2 = x2 * b1 - b2 + c[k], b1
    return x * b1 - b2 + c[0]


@njit(**JIT)
def moments(q, tab, out, miss=None):
    """All one-point moments at q: closed form, else the table, else (beyond it, or on an octave where it holds NaN
    because the rule flagged or could not interpolate a moment) the checked direct rule; NaN for a moment that rule
    cannot bound within DIRECT_RTOL at q (infinite, beyond float64, unresolved): callers turn it into an error.

    ``miss``: None (the default) for the above. An int64 array instead gives the table-only variant: where the direct
    rule would be needed it sets ``miss[0] = 1`` and the moments to NaN, and the direct rule is not compiled into it
    (:func:`_moments_beyond_table` is chosen by the argument's type). The solvers' first attempt runs table-only; a caller that finds
    ``miss[0]`` set repeats the whole computation with ``miss=None`` (lazy compilation of the rarely needed path: a
    compiled function carries the code of all it calls, and the checked rule is most of it)."""
    if CLOSED_ONEPOINT:
        closed_onepoint(q, out)
        return
    if tab.shape[0] > 0:
        s = math.log2(q) - TABLE_LOG2_LO
        if 0.0 <= s < tab.shape[0]:
            j = int(s)
            x = 2.0 * (s - j) - 1.0
            for k in range(N_MOMENTS):
                out[k] = _clenshaw(tab[j, k], x)
            out[4] *= 2.0 / (q * math.log(2.0))
            if not (math.isnan(out[0]) or math.isnan(out[1]) or math.isnan(out[2]) or math.isnan(out[3])):
                return
    _moments_beyond_table(q, out, miss)


def _no_miss(miss):
    """True for the ``miss`` argument's type when it was not given (None): the variant with the direct rule."""
    return miss is None or isinstance(miss, (types.NoneType, types.Omitted))


def _moments_beyond_table(q, out, miss):
    """Where the table does not hold q: the checked direct rule (``miss`` None), or ``miss[0] = 1`` and NaN moments
    (``miss`` an array). Chosen by the argument's type when the caller is typed (:func:`_ol_moments_beyond_table`), so
    the table-only variant never compiles the direct rule: a branch ``if miss is None`` inside a kernel is not pruned
    by Numba for an array ``miss`` (both branches get typed, and the direct rule compiled, in either variant). Called
    as plain Python (``NUMBA_DISABLE_JIT=1``) it runs this body."""
    if miss is None:
        moments_direct(q, out)
    else:
        miss[0] = 1
        for k in range(N_MOMENTS):
            out[k] = math.nan


@overload(_moments_beyond_table, jit_options=dict(cache=True, nogil=True))
def _ol_moments_beyond_table(q, out, miss):
    if _no_miss(miss):
        def direct(q, out, miss):
            moments_direct(q, out)
        return direct

    def table_only(q, out, miss):
        miss[0] = 1
        for k in range(N_MOMENTS):
            out[k] = math.nan
    return table_only


@njit(**INLINE)
def moments_direct(q, out):
    """The checked rule where the table does not hold the moments; a moment it cannot bound within DIRECT_RTOL is
    NaN."""
    err = np.empty(N_MOMENTS)
    scale = np.empty(N_MOMENTS)
    onepoint_checked(q, out, err, scale, np.empty(N_MOMENTS))
    for k in range(N_MOMENTS):
        if not (math.isfinite(out[k]) and err[k] <= DIRECT_RTOL[k] * scale[k]):
            out[k] = math.nan


@njit(**JIT)
def length_trajectory(tab, sw2, sb2, q_tiny, stop_rtol, q, qh, mu1, mu2):
    """The length map through layers l = 1 … L (L = ``q.shape[0] - 2``) from ``q[1]``, for :mod:`meanfield.fisher`.

    Fills ``qh[l] = E_{q^l} φ²``, ``mu1[l] = μ_1(q^l)``, ``mu2[l] = μ_2(q^l)`` and ``q[l+1] = sw2·qh[l] + sb2``. Below
    ``q_tiny`` the network is linear to rounding: the moments are taken at ``q_tiny`` and E φ² rescaled by q/q_tiny
    (μ_k are constant there). Once a step satisfies ``|q^{l+1} - q^l| ≤ stop_rtol·q^l`` the remaining layers repeat
    layer l. Returns ``(l_q, bad)``: that layer (L + 1 if none) and the first layer whose q (or μ_1) is not finite (0
    if none; the arrays are then filled only up to it).
    """
    L = q.shape[0] - 2
    out = np.empty(N_MOMENTS)
    ql = q[1]
    for l in range(1, L + 1):
        if ql >= q_tiny:
            moments(ql, tab, out, None)
            f0 = out[0]
        else:
            moments(q_tiny, tab, out, None)
            f0 = out[0] * (ql / q_tiny)
        qn = sw2 * f0 + sb2
        qh[l] = f0
        mu1[l] = out[2]
        mu2[l] = out[3]
        q[l + 1] = qn
        if not (math.isfinite(qn) and math.isfinite(out[2])):
            return L + 1, l + 1
        if abs(qn - ql) <= stop_rtol * ql:
            for m in range(l + 1, L + 1):
                qh[m] = f0
                mu1[m] = out[2]
                mu2[m] = out[3]
            for m in range(l + 1, L + 2):
                q[m] = qn
            return l, 0
        ql = qn
    return L + 1, 0


# ------------------------------------------------------------------------------------------------------------ two point
@njit(**JIT)
def mean_phi(q):
    """(E_q φ, E_q φ') by the 16-node one-point rule."""
    sigma = math.sqrt(q)
    buf = np.empty(MAX_BREAKS)
    nb = add_breaks(0.0, sigma, KINKS, buf, np.int64(0))
    nb = sort_unique(buf, nb)
    s0 = 0.0
    s1 = 0.0
    for p in range(nb - 1):
        h = 0.5 * (buf[p + 1] - buf[p])
        m = 0.5 * (buf[p + 1] + buf[p])
        for i in range(X16.shape[0]):
            z = m + h * X16[i]
            wt = h * W16[i] * INV_SQRT_2PI * math.exp(-0.5 * z * z)
            s0 += wt * phi(sigma * z)
            s1 += wt * dphi(sigma * z)
    return s0, s1


@njit(**JIT)
def twopoint_rule(q11, q22, q12, x, w, out):
    """[E φ(u1)φ(u2), E φ'(u1)φ'(u2)] by nested composite Gauss–Legendre.

    ``u1 = √q11 z1``, ``u2 = a z1 + b z2`` with ``a = √q22 c``, ``b = √q22 √(1-c²)``. The outer rule is split for φ(u1)
    and for the smoothed features of the inner expectation (the kinks of φ at ``z1 = k/a``, graded down to their smoothing
    width ``b/|a|``); the inner rule is split at the kinks ``(k - a z1)/b``.
    """
    s1 = math.sqrt(q11)
    s2 = math.sqrt(q22)
    r = s1 * s2
    c = q12 / r if r > 0.0 else 0.0
    c = -1.0 if c < -1.0 else (1.0 if c > 1.0 else c)
    a = s2 * c
    b = s2 * math.sqrt(max((1.0 - c) * (1.0 + c), 0.0))
    buf = np.empty(MAX_BREAKS)
    nb = add_breaks(0.0, s1, KINKS, buf, np.int64(0))
    if abs(a) > 0.0:
        nb = add_breaks(0.0, abs(a), KINKS, buf, nb)
        for k in range(KINKS.shape[0]):
            nb = add_kink_grading(KINKS[k] / a, b / abs(a), buf, nb)
    nb = sort_unique(buf, nb)
    ibuf = np.empty(MAX_BREAKS)
    npt = x.shape[0]
    out[0] = 0.0
    out[1] = 0.0
    for p in range(nb - 1):
        h = 0.5 * (buf[p + 1] - buf[p])
        m = 0.5 * (buf[p + 1] + buf[p])
        for i in range(npt):
            z1 = m + h * x[i]
            wt = h * w[i] * INV_SQRT_2PI * math.exp(-0.5 * z1 * z1)
            mu = a * z1
            if b > 0.0:
                ni = add_breaks(mu, b, KINKS, ibuf, np.int64(0))
                ni = sort_unique(ibuf, ni)
                g0 = 0.0
                g1 = 0.0
                for pp in range(ni - 1):
                    hh = 0.5 * (ibuf[pp + 1] - ibuf[pp])
                    mm = 0.5 * (ibuf[pp + 1] + ibuf[pp])
                    for ii in range(npt):
                        z2 = mm + hh * x[ii]
                        ww = hh * w[ii] * INV_SQRT_2PI * math.exp(-0.5 * z2 * z2)
                        u2 = mu + b * z2
                        g0 += ww * phi(u2)
                        g1 += ww * dphi(u2)
            else:
                g0 = phi(mu)
                g1 = dphi(mu)
            u1 = s1 * z1
            out[0] += wt * phi(u1) * g0
            out[1] += wt * dphi(u1) * g1


@njit(**JIT)
def twopoint(q11, q22, q12, out):
    if CLOSED_TWOPOINT:
        closed_twopoint(q11, q22, q12, out)
    else:
        twopoint_rule(q11, q22, q12, X16, W16, out)


@njit(**JIT)
def twopoint_solver(q11, q22, q12, out):
    """The two-point rule inside the c* solve: 10 nodes per panel (measured relative error ≤ 5e-12, 2.6× fewer
    evaluations per dimension than the 16-node rule)."""
    if CLOSED_TWOPOINT:
        closed_twopoint(q11, q22, q12, out)
    else:
        twopoint_rule(q11, q22, q12, X10, W10, out)


@njit(**JIT)
def twopoint_direct(q11, q22, q12, out, err):
    """Two-point expectations with the error estimate |I_16 - I_10| (16 ulp of rounding for closed forms).

    The rule is truncated at |z| ≤ Z_MAX and not refined: meanfield.gaussian.two_point adds the truncation bound from the
    one-point rule's tails (Cauchy–Schwarz) and refuses what this estimate does not bound."""
    if CLOSED_TWOPOINT:
        closed_twopoint(q11, q22, q12, out)
        err[0] = 16.0 * EPS * abs(out[0])
        err[1] = 16.0 * EPS * abs(out[1])
        return
    twopoint_rule(q11, q22, q12, X16, W16, out)
    twopoint_rule(q11, q22, q12, X10, W10, err)
    err[0] = abs(err[0] - out[0])
    err[1] = abs(err[1] - out[1])


# ------------------------------------------------------------------------------------------------------------- solvers
P_QSTAR = 0  # F(q) = σ_w² E_q φ² + σ_b² - q
P_CRIT = 2  # F(q) = q - E_q φ²/μ_1(q) - σ_b²
NONFINITE = 5  # status: the moments were not finite (overflow, divergent or flagged Gaussian integral) at the q returned
UNVERIFIED = 6  # status: the independent check (q_star_proof) did not confirm the root
NONFINITE_SIGN = 2  # sign code of _qmap_signed for a non-finite residual
TAU_F = 64.0 * EPS  # |F| ≤ TAU_F·(q + g) is zero to rounding: the table is accurate to ~5e-15 relative (meanfield._table)
PROOF_DELTA_MIN = 1e-15  # smallest relative half-width of the proving bracket
Q_STEP_SWITCH = 2.0**20  # the walk for a bracket steps by 2 inside the moment table's range, by 16 beyond it
# (c* has its own loop in c_star_kernel: with it here, every length-map solve would compile the two-point quadrature)


@njit(**INLINE)
def residual(problem, x, par, tab, buf, miss):
    if problem == P_QSTAR:  # needs (E_x φ², dE_x φ²/dq) only: two table rows (inline: one compiled function fewer)
        if CLOSED_ONEPOINT:
            f0, f1 = closed_qmap(x)
        else:
            s = math.log2(x) - TABLE_LOG2_LO
            if tab.shape[0] > 0 and 0.0 <= s < tab.shape[0]:
                j = int(s)
                t = 2.0 * (s - j) - 1.0
                f0, f1 = _clenshaw(tab[j, 0], t), _clenshaw(tab[j, 1], t)
            else:
                moments(x, tab, buf, miss)
                f0, f1 = buf[0], buf[1]
        return par[0] * f0 + par[1] - x, par[0] * f1 - 1.0
    moments(x, tab, buf, miss)
    f0, f1, mu1, dmu1 = buf[0], buf[1], buf[2], buf[4]
    return x - f0 / mu1 - par[0], 1.0 - (f1 * mu1 - f0 * dmu1) / (mu1 * mu1)


@njit(**JIT)
def solve(problem, lo, flo, hi, fhi, x0, par, tab, rtol, maxiter, miss=None):
    """Safeguarded Newton on a bracket [lo, hi] with F(lo)·F(hi) < 0 (the one root finder of the package).

    Stops when a step satisfies ``|Δx| ≤ rtol·|x|`` (scale-aware). Bisection (geometric for positive brackets spanning
    more than a factor 4) replaces any Newton step that leaves the bracket. Returns (x, status, iterations, |F(x)|,
    F'(x)).
    """
    buf = np.empty(N_MOMENTS)
    x = x0 if lo <= x0 <= hi else 0.5 * (lo + hi)  # start from x0 even at an end: Newton from q0 keeps its locality
    f = 0.0
    for it in range(maxiter):
        f, df = residual(problem, x, par, tab, buf, miss)
        if f == 0.0:
            return x, CONVERGED, it + 1, 0.0, df
        if (f < 0.0) == (flo < 0.0):
            lo, flo = x, f
        else:
            hi, fhi = x, f
        xn = x - f / df if df != 0.0 else lo - 1.0
        if not (lo < xn < hi):
            xn = math.sqrt(lo * hi) if lo > 0.0 and hi > 4.0 * lo else 0.5 * (lo + hi)
        dx = xn - x
        x = xn
        if abs(dx) <= rtol * abs(x) or hi - lo <= rtol * abs(x):
            f, df = residual(problem, x, par, tab, buf, miss)
            return x, CONVERGED, it + 1, abs(f), df
    return x, MAXITER, maxiter, abs(f), 0.0


@njit(**JIT)
def _qmap_signed(x, par, tab, buf, miss):
    """(F, F', s) of the length-map residual at x with its sign s resolved against rounding: s = ±1 where
    |F| > TAU_F·(x + g) (g = F + x, both of size q), 0 within it (F is zero to rounding: no sign), NONFINITE_SIGN where
    F or F' is not finite (the moments overflowed or were flagged)."""
    f, df = residual(P_QSTAR, x, par, tab, buf, miss)
    if not (math.isfinite(f) and math.isfinite(df)):
        return f, df, NONFINITE_SIGN
    tol = TAU_F * (x + abs(f + x))
    if f > tol:
        return f, df, 1
    if f < -tol:
        return f, df, -1
    return f, df, 0


@njit(**JIT)
def q_star_kernel(sw2, sb2, q0, tab, rtol, maxiter, miss=None):
    """Fixed point of the length map reached from q0 (unverified: see :func:`q_star_proof`). Returns (q, status,
    iterations, |F(q)|).

    F(q) = σ_w² E_q φ² + σ_b² - q. From q0 the nodes q0·2^k are walked in the direction q moves (up where F(q0) > 0,
    down where F(q0) < 0; factors of 16 beyond the moment table) until F has the opposite sign beyond rounding
    (|F| > TAU_F·(q + g)); nodes where F is zero to rounding carry no sign and are stepped over, never taken as a bracket
    end, so a root at (or within rounding of) a node lies inside the final bracket whatever its last bit. The bracket
    ends are the last node of the start's sign and the first of the opposite sign; safeguarded Newton (:func:`solve`)
    refines it. A start within rounding of a root is first bracketed locally, [q0(1-δ), q0(1+δ)] with δ four Newton
    steps. Going up with no opposite sign before Q_DIVERGE (F > 0, or zero to rounding as in linear growth
    q ↦ q + σ_b² at large q) is DIVERGED, and so is a node beyond the table (q ≥ Q_STEP_SWITCH = 2^20, where φ's own
    scale is far inside the Gaussian's and E_q φ² behaves as a power of q) with F > 0 and F' ≥ 0: the map grows at
    least as fast as q there (an assumption on φ's growth; it only ever refuses an answer, never returns one); going
    down below Q_ZERO is ZERO (q* = 0); moments that are not finite on the way stop the walk with NONFINITE at that q.
    """
    par = np.array([sw2, sb2, 0.0])
    buf = np.empty(N_MOMENTS)
    f0, df0, s0 = _qmap_signed(q0, par, tab, buf, miss)
    if s0 == NONFINITE_SIGN:
        return q0, NONFINITE, 0, math.inf
    local = False  # bracketed within rounding of q0; one call of solve below serves both cases
    lo, flo, hi, fhi = q0, f0, q0, f0
    if s0 == 0:
        if CLOSED_ONEPOINT and abs(df0) <= TAU_F:  # the identity to rounding (ReLU at σ_w = √2, σ_b = 0: every q is
            return q0, CONVERGED, 0, abs(f0)      # fixed; closed forms make F exactly linear in q)
        if df0 != 0.0:
            d = 4.0 * TAU_F * (q0 + abs(f0 + q0)) / (abs(df0) * q0)
            if d < 1e-3:
                a = q0 * (1.0 - d)
                b = q0 * (1.0 + d)
                fa, _, sa = _qmap_signed(a, par, tab, buf, miss)
                fb, _, sb = _qmap_signed(b, par, tab, buf, miss)
                if (sa == 1 and sb == -1) or (sa == -1 and sb == 1):
                    local = True
                    lo, flo, hi, fhi = a, fa, b, fb
        if not local:
            s0 = 1 if f0 >= 0.0 else -1  # walk in the direction q moves; q0 is a provisional bracket end
            f0 = TAU_F * q0 if s0 == 1 else -TAU_F * q0
    if local:
        s0 = 0  # bracketed locally: no walk
    else:
        lo = q0
        hi = q0
        flo = f0
        fhi = f0
    if s0 == 1:
        while True:
            hi = hi * (2.0 if hi < Q_STEP_SWITCH else 16.0)
            if hi > Q_DIVERGE:
                return math.inf, DIVERGED, 0, math.inf
            fhi, dfhi, s = _qmap_signed(hi, par, tab, buf, miss)
            if s == NONFINITE_SIGN:
                return hi, NONFINITE, 0, math.inf
            if s == -1:
                break
            if s == 1:
                lo, flo = hi, fhi
                if hi >= Q_STEP_SWITCH and dfhi >= 0.0:  # beyond the table, F > 0 and g' ≥ 1: q keeps growing
                    return math.inf, DIVERGED, 0, math.inf
    elif s0 == -1:
        while True:
            lo = lo * (0.5 if lo > 1.0 / Q_STEP_SWITCH else 0.0625)
            if lo < Q_ZERO:
                return 0.0, ZERO, 0, 0.0
            flo, _, s = _qmap_signed(lo, par, tab, buf, miss)
            if s == NONFINITE_SIGN:
                return lo, NONFINITE, 0, math.inf
            if s == 1:
                break
            if s == -1:
                hi, fhi = lo, flo
    x, st, it, res, df = solve(P_QSTAR, lo, flo, hi, fhi, q0, par, tab, rtol, maxiter, miss)
    return x, st, it, res


@njit(**INLINE)
def qmap_direct(q, sw2, sb2, out, err):
    """(F, bound, F') of F(q) = σ_w² E_q φ² + σ_b² - q by the checked direct quadrature (:func:`onepoint_direct`,
    independent of the moment table): ``bound`` = σ_w²·(its error estimate of E φ²) + 4ε(g + q) bounds the error of F.
    F is NaN where the rule flags the moment (not finite, tails not decayed, unresolved)."""
    scale = np.empty(N_MOMENTS)
    flags, u_bad = onepoint_direct(q, out, err, scale)
    g = sw2 * out[0] + sb2
    f = g - q
    bound = sw2 * err[0] + 4.0 * EPS * (abs(g) + q)
    if flags != 0 or not math.isfinite(bound):
        f = math.nan
    return f, bound, sw2 * out[1] - 1.0


@njit(**INLINE)
def qmap_checked(q, sw2, sb2, tab, tab_err, out, err, miss=None):
    """(F, bound, F') as :func:`qmap_direct`, from the moment table plus its measured error where q is inside the table
    (``tab_err[octave, 0]`` relative to the largest E φ² on the octave, taken as twice the largest of the interpolant
    at q and at the octave's ends), else by the checked direct quadrature. F is NaN where the error is not finite."""
    if not CLOSED_ONEPOINT and tab.shape[0] > 0:
        s = math.log2(q) - TABLE_LOG2_LO
        if 0.0 <= s < tab.shape[0]:
            j = int(s)
            x = 2.0 * (s - j) - 1.0
            f0 = _clenshaw(tab[j, 0], x)
            f1 = _clenshaw(tab[j, 1], x)
            sc = max(abs(f0), abs(_clenshaw(tab[j, 0], -1.0)), abs(_clenshaw(tab[j, 0], 1.0)))
            g = sw2 * f0 + sb2
            f = g - q
            bound = sw2 * 2.0 * tab_err[j, 0] * sc + 4.0 * EPS * (abs(g) + q)
            if not math.isfinite(bound):
                f = math.nan
            return f, bound, sw2 * f1 - 1.0
    return _qmap_beyond_table(q, sw2, sb2, out, err, miss)


def _qmap_beyond_table(q, sw2, sb2, out, err, miss):
    """Where the table does not hold q: :func:`qmap_direct` (``miss`` None), or ``miss[0] = 1`` and (NaN, inf, NaN)
    (the table-only variant, see :func:`_moments_beyond_table`; this body runs as plain Python)."""
    if miss is None:
        return qmap_direct(q, sw2, sb2, out, err)
    miss[0] = 1
    return math.nan, math.inf, math.nan


@overload(_qmap_beyond_table, jit_options=dict(cache=True, nogil=True))
def _ol_qmap_beyond_table(q, sw2, sb2, out, err, miss):
    if _no_miss(miss):
        def direct(q, sw2, sb2, out, err, miss):
            return qmap_direct(q, sw2, sb2, out, err)
        return direct

    def table_only(q, sw2, sb2, out, err, miss):
        miss[0] = 1
        return math.nan, math.inf, math.nan
    return table_only


@njit(**JIT)
def q_star_proof(q, sw2, sb2, qtol, tab, tab_err, miss=None):
    """Proof that q > 0 is a fixed point of the length map to relative accuracy δ ≤ qtol, independent of the solver's
    stopping rule.

    F = q_map - id is evaluated with an error bound (:func:`qmap_checked`: the moment table plus its measured error, or
    the checked direct quadrature outside the table); the proof is a sign change beyond those bounds across
    [q(1-δ), q(1+δ)], δ starting at twice the Newton estimate (|F| + bound)/(|F'| q) and growing by 16 up to qtol.
    (F and F' zero to rounding for closed forms, which are exactly linear in q for homogeneous φ: the marginal point
    where every q is fixed, accepted with δ = 0.) Returns (status, |F(q)|, bound, slope g'(q) = 1 + F'(q), δ): status CONVERGED, UNVERIFIED (no sign
    change shown within qtol) or NONFINITE.
    """
    out = np.empty(N_MOMENTS)
    err = np.empty(N_MOMENTS)
    # one call site of qmap_checked (inlined once: one compiled function fewer on a cold cache), at q (side 0), then
    # q(1 - δ) (side -1) and q(1 + δ) (side 1) while δ grows
    f = b = df = fa = ba = 0.0
    d = qtol
    side = 0
    while True:
        x = q if side == 0 else q * (1.0 + side * d)
        fx, bx, dfx = qmap_checked(x, sw2, sb2, tab, tab_err, out, err, miss)
        if side == 0:
            f, b, df = fx, bx, dfx
            if not (math.isfinite(f) and math.isfinite(b) and math.isfinite(df)):
                return NONFINITE, abs(f), b, df + 1.0, math.inf
            if CLOSED_ONEPOINT and abs(f) <= b and abs(df) <= TAU_F:
                return CONVERGED, abs(f), b, df + 1.0, 0.0
            if df != 0.0:
                d = max(PROOF_DELTA_MIN, 2.0 * (abs(f) + b) / (abs(df) * q))
            d = min(d, qtol)
            side = -1
        elif side == -1:
            fa, ba = fx, bx
            side = 1
        else:
            fb, bb = fx, bx
            if not (math.isfinite(fa) and math.isfinite(fb)):
                return NONFINITE, abs(f), b, df + 1.0, math.inf
            if (fa > ba and fb < -bb) or (fa < -ba and fb > bb):
                return CONVERGED, abs(f), b, df + 1.0, d
            if d >= qtol:
                return UNVERIFIED, abs(f), b, df + 1.0, d
            d = min(d * 16.0, qtol)
            side = -1


@njit(**JIT)
def qmap_residuals(sw2, sb2, qs, tab, f_out, df_out):
    """F(q) = σ_w² E_q φ² + σ_b² - q and F'(q) at every q of ``qs`` (moment table; for :func:`fixed_points`)."""
    par = np.array([sw2, sb2, 0.0])
    buf = np.empty(N_MOMENTS)
    for i in range(qs.shape[0]):
        f, df = residual(P_QSTAR, qs[i], par, tab, buf, None)
        f_out[i] = f
        df_out[i] = df


@njit(**JIT)
def c_star_kernel(sw2, sb2, q, chi1, c0, rtol, maxiter):
    """Stable correlation fixed point at q = q*: 1 in the ordered phase; in the chaotic phase the root in [0, 1).

    Returns (c*, χ_c = σ_w² E[φ'(u1)φ'(u2)] at c*, status, iterations).
    """
    if chi1 <= 1.0 + CHI1_ROUNDING:
        return 1.0, chi1, CONVERGED, 0
    m0, m1 = mean_phi(q)  # at c = 0 the pair is independent: I = (E φ)², E φ'φ' = (E φ')²
    g0 = (sw2 * m0 * m0 + sb2) / q
    if g0 <= ODD_TOL:
        return 0.0, sw2 * m1 * m1, CONVERGED, 0
    # G(0) > 0 and G(1 - ε) ≈ -(χ_1 - 1) ε < 0: c* is bracketed by [0, 1) (only the sign of G(1-) is used);
    # safeguarded Newton as in solve(), with G(c) = (σ_w² I(q, q, c q) + σ_b²)/q - c and G'(c) = χ_c - 1
    buf = np.empty(2)
    lo = 0.0
    hi = 1.0
    c = c0 if 0.0 < c0 < 1.0 else 0.5
    st = MAXITER
    it = maxiter
    df = 0.0
    for i in range(maxiter):
        twopoint_solver(q, q, c * q, buf)
        f = (sw2 * buf[0] + sb2) / q - c
        df = sw2 * buf[1] - 1.0
        if f == 0.0:
            st, it = CONVERGED, i + 1
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
            twopoint_solver(q, q, c * q, buf)
            df = sw2 * buf[1] - 1.0
            st, it = CONVERGED, i + 1
            break
    if c >= 1.0 - 1e-13:
        return 1.0, chi1, st, it
    return c, df + 1.0, st, it  # F'(c*) = χ_c - 1


@njit(**JIT)
def q_star_many(sw2, sb2, q0, tab, tab_err, rtol, maxiter, qtol, q_out, chi_out, slope_out, status_out, it_out, res_out, err_out):
    """Vectorised q* with its proof: elementwise over flat arrays (the public wrappers broadcast).

    For each point: :func:`q_star_kernel`, then :func:`q_star_proof` (status UNVERIFIED where it fails), then χ_1 and
    the slope g'(q*) from the moments. ``res_out`` is |F(q*)| by direct quadrature, ``err_out`` the proven relative
    accuracy δ of q* (0 for q* = 0).
    """
    buf = np.empty(N_MOMENTS)
    for i in range(sw2.shape[0]):
        q, st, it, res = q_star_kernel(sw2[i], sb2[i], q0[i], tab, rtol, maxiter)
        slope = math.nan
        delta = math.nan
        if st == CONVERGED and q > 0.0:
            st, res, bound, slope, delta = q_star_proof(q, sw2[i], sb2[i], qtol, tab, tab_err)
        elif st == ZERO:
            delta = 0.0
        q_out[i] = q
        status_out[i] = st
        it_out[i] = it
        res_out[i] = res
        err_out[i] = delta
        if st == CONVERGED or st == ZERO:
            moments(max(q, 1e-300), tab, buf)
            chi_out[i] = sw2[i] * buf[2]
            slope_out[i] = sw2[i] * buf[1] if st == ZERO else slope
        else:
            chi_out[i] = math.nan
            slope_out[i] = slope  # the proof's slope where it failed (for the message), else NaN


GRID_UNVERIFIED = 6  # status of a grid point whose q* the sign-change check below does not confirm
GRID_PROOF_DELTA_MAX = 1e-8  # the sign change must show within q*(1 ± δ), δ ≤ this


@njit(**JIT)
def grid_root_proved(q, sw2, sb2, tab):
    """Whether F(q) = σ_w² E_q φ² + σ_b² - q changes sign across [q(1-δ), q(1+δ)] (moment table, accurate to ~5e-15;
    δ from twice the Newton step plus rounding, grown by 16 up to GRID_PROOF_DELTA_MAX), or F ≡ 0 to rounding with
    F' = 0 (homogeneous marginal point: every q fixed)."""
    par = np.array([sw2, sb2, 0.0])
    buf = np.empty(N_MOMENTS)
    f, df = residual(P_QSTAR, q, par, tab, buf, None)
    tau = 64.0 * EPS * (q + abs(f + q))
    if abs(f) <= tau and abs(df) <= 64.0 * EPS:
        return True
    if df == 0.0:
        return False
    d = max(1e-15, 2.0 * (abs(f) + tau) / (abs(df) * q))
    while True:
        d = min(d, GRID_PROOF_DELTA_MAX)
        fa, _ = residual(P_QSTAR, q * (1.0 - d), par, tab, buf, None)
        fb, _ = residual(P_QSTAR, q * (1.0 + d), par, tab, buf, None)
        ta = 64.0 * EPS * q
        if (fa > ta and fb < -ta) or (fa < -ta and fb > ta):
            return True
        if d >= GRID_PROOF_DELTA_MAX:
            return False
        d *= 16.0


@njit(parallel=True, **JIT)
def grid_kernel(sw2, sb2, q_init, tab, rtol, maxiter, q_out, chi_out, slope_out, phi2_out, status_out):
    """q*, χ_1, the length map's slope and E_{q*} φ² on sw2 × sb2 (output shape (len(sb2), len(sw2))), rows in parallel.

    Every point is solved from ``q_init`` by :func:`q_star_kernel`, as :func:`meanfield.fixed_point` does (no
    continuation from a neighbour: with several fixed points that could land in another basin).
    """
    for j in prange(sb2.shape[0]):
        buf = np.empty(N_MOMENTS)
        for i in range(sw2.shape[0]):
            q, st, it, res = q_star_kernel(sw2[i], sb2[j], q_init, tab, rtol, maxiter)
            if st == CONVERGED and q > 0.0 and not grid_root_proved(q, sw2[i], sb2[j], tab):
                st = GRID_UNVERIFIED
            status_out[j, i] = st
            if st == CONVERGED or st == ZERO:
                moments(max(q, 1e-300), tab, buf)
                q_out[j, i] = q
                chi_out[j, i] = sw2[i] * buf[2]
                slope_out[j, i] = sw2[i] * buf[1]
                phi2_out[j, i] = buf[0]
            else:
                q_out[j, i] = math.inf
                chi_out[j, i] = math.nan
                slope_out[j, i] = math.nan
                phi2_out[j, i] = math.nan


@njit(parallel=True, **JIT)
def c_star_grid(sw2, sb2, q, chi, rtol, maxiter, c_out, chic_out, status_out):
    """c* and χ_c by :func:`c_star_kernel` (two-dimensional quadrature) at flat arrays of chaotic points, in parallel:
    the phase diagram's path where the Mehler series is not accepted."""
    for i in prange(q.shape[0]):
        c, chic, st, it = c_star_kernel(sw2[i], sb2[i], q[i], chi[i], 0.5, rtol, maxiter)
        c_out[i] = c
        chic_out[i] = chic
        status_out[i] = st
