"""Numba kernels of :mod:`meanfield.spectra`: the S-transform equations of the input-output Jacobian (THEORY §2).

Conventions (THEORY §2): ``G(z) = ∫ρ(t)/(z - t) dt``, ``M(z) = zG(z) - 1``, ``S(z) = (1 + z)/(z M^{-1}(z))``. Every
kernel works with the *normalised* spectrum (JJᵀ divided by its mean ``m_1 = Π_l σ_w² μ_1(q^l)``) and with the laws of
``D_l²`` divided by their means, so nothing overflows at any depth. A law is a weighted list of non-zero values
``d_i`` (atoms of φ'², and the nodes of a quadrature rule of its continuous part; complex nodes on a deformed contour
for the density, see :mod:`meanfield.spectra`) plus its mass ``P(φ'² = 0)``, so ``G_nz(y) = Σ_i w_i/(y - d_i)`` and
``M_D(y) = y G_nz(y) - (1 - P(φ'² = 0))``. The layers come in ``G`` groups of identical laws with multiplicities
``n_g`` (``Σ n_g = L``); group g owns the slice ``off[g]:off[g + 1]`` of ``vals``/``wts``.

The equations (Pennington, Schoenholz & Ganguli 2018, "The emergence of spectral universality in deep networks", the
master equations for M_{JJᵀ}; here in THEORY §2's form): unknowns ``m = M_J(z)`` and ``y_g`` with ``M_{D_g}(y_g) = m``
and

* orthogonal: ``log z = Σ_g n_g log y_g + (L - 1)[log m - log(1 + m)]``;
* Gaussian:   ``log z = Σ_g n_g log y_g + (L - 1) log m + log(1 + m)``;
* k of the L weight matrices Gaussian, the others orthogonal (each Gaussian WWᵀ multiplies S_J by 1/(1 + m)):
  ``log z = Σ_g n_g log y_g + (L - 1) log m + (1 - L + k) log(1 + m)``. The kernels' ``gauss`` argument is k (a
  float: 0.0 all orthogonal, L all Gaussian, where the two forms above are used exactly).

For Im z > 0 on the physical branch Im m < 0 and Im y_g > 0 (a Stieltjes transform maps the upper half-plane to the
lower one), and Im(1 + m) = Im m, so the principal logarithms are continuous and the identity holds exactly (it does
as z → ∞, where m ~ 1/z and y ~ 1/m). Newton works in log form with unknowns ``ω = log(1 + m - a0)`` (a0 = P(λ = 0),
the largest of the layers' P(φ'² = 0)) and ``b_g = log y_g``; the layer equations are written through
``y G_nz(y) + P_g(0) - a0 = 1 + m - a0``, which stays well conditioned where λ → 0 (then m → a0 - 1 and, for the layers
with P_g(0) = a0, y → 0), where ``log m`` could not resolve 1 + m. The logarithms (:func:`log_lower`) move the branch
cut onto the imaginary axis so that the equations stay analytic on and near the real axis, where the solution becomes
real in gaps and beyond the edges.
"""

import cmath
import math

import numpy as np
from numba import njit

JIT = dict(cache=True, nogil=True)
# The solver's small helpers and single-call-site functions are inlined into their callers (Numba IR inlining): each
# separately compiled function costs a pipeline run, an object file and a cache entry on a cold cache, and its
# callers link a copy of its code. Called from Python they compile as usual. (Inlining the edge search's y_of_m and
# law_m_real, called at several sites, made the first edge search slower to compile: they stay separate; its
# single-site _refine_edge is inlined.)
INLINE = dict(cache=True, nogil=True, inline="always")

NEWTON_TOL = 1e-13  # |Δω|, |Δ log y| at convergence (log variables: a relative tolerance)
RES_TOL = 1e-14  # ... or a residual below RES_TOL·(1 + |log m| + |log z|) together with a step below RES_STEP
RES_STEP = 1e-6
STALL_TOL = 1e-6  # ... or one iteration after a step below STALL_TOL (see :func:`newton`)
NOISE_STEP = 1e-4  # ... or, from the third iteration, a step below NOISE_STEP that stops shrinking (rounding noise)
REAL_TOL = 1e-10  # |Im m| below REAL_TOL·(1 + |m|): m is real (a gap); the real-axis continuation keeps m real ...
TANGENT_TOL = 0.2  # ... or, elsewhere, when Newton corrects the tangent predictor by less than this fraction
ARG_TOL = 1e-9  # slack on Im ω ≤ 0, Im log y ≥ 0 when checking that a solution is on the physical branch
MAX_STEP = 0.5  # Newton steps in the log variables are cut to this length (keeps the iterate on its branch)
JUMP_RATIO = 0.1  # try the real axis once the predicted change of m is below this fraction of |Im m|
EPS_ACCEPT = 1e-6  # a continuation stuck below Im z = EPS_ACCEPT·λ returns its last solution (status 2)
MAX_STEPS = 2000  # continuation steps per point
GAP_TOL = 1e-8  # a continuation stuck with |Im m| ≤ GAP_TOL |m| is in a gap (status 4, density 0)
LAM_TINY = 1e-30  # see :func:`continue_down` (status 3)
NEAR_A_TOL = 1e-9  # upper_edge_near: bracket width (relative) at which a minimum of F is located (F to ~δa²)
Y_RES_TOL = 4e-15  # y_of_m: |log M_D(y) - log m| at which y is converged (the rounding level of log M)
EPS_MIN = 1e-15  # the continuation stops at Im z = EPS_MIN·|z| (the density there differs by O(EPS_MIN))


# ------------------------------------------------------------------------------------------------------ branches
@njit(**INLINE)
def log_lower(w):
    """log w, equal to the principal log on the closed lower half-plane and continuous across the negative axis."""
    if w.real >= 0.0:
        return cmath.log(w)
    return cmath.log(-w) - 1j * math.pi


@njit(**INLINE)
def cexpm1(c):
    """e^c - 1 without cancellation for small |c| (complex)."""
    x, y = c.real, c.imag
    em = math.expm1(x)
    s = math.sin(0.5 * y)
    return complex(em * math.cos(y) - 2.0 * s * s, math.exp(x) * math.sin(y))


# ------------------------------------------------------------------------------------------------------ one law
@njit(**INLINE)
def law_g(b, vals, wts, lo, hi):
    """``G_D(y) = Σ w/(y - d)`` and its derivative at y = e^b (complex b; complex or real nodes).

    An atom at d = 0 contributes w e^{-b} (exact even where e^b underflows, x → 0).
    """
    y = cmath.exp(b)
    yinv = cmath.exp(-b)
    G = 0j
    dG = 0j
    for i in range(lo, hi):
        if vals[i] == 0.0:
            t = yinv
        else:
            t = 1.0 / (y - vals[i])
        G += wts[i] * t
        dG -= wts[i] * t * t
    return G, dG


@njit(**JIT)
def law_m_real(y, vals, wts, lo, hi):
    """Real ``M_D(y) = Σ w d/(y - d)`` and its derivative (y outside the law's support)."""
    M = 0.0
    dM = 0.0
    for i in range(lo, hi):
        t = 1.0 / (y - vals[i])
        wd = wts[i] * vals[i]
        M += wd * t
        dM -= wd * t * t
    return M, dM


# ------------------------------------------------------------------------------------------------------ complex Newton
@njit(**JIT)
def m_of(om, a0):
    """m from ω = log(1 + m - a0), a0 the mass of JJᵀ at 0."""
    if a0 == 0.0:
        return cexpm1(om)
    return (a0 - 1.0) + cmath.exp(om)


@njit(**INLINE)
def zero_mass(zm):
    """Mass of JJᵀ at 0: the largest of the layers' P(φ' = 0) (rank of a product of free factors)."""
    a0 = 0.0
    for g in range(zm.shape[0]):
        a0 = max(a0, zm[g])
    return a0


@njit(**INLINE)
def _residual(om, b, lz, vals, wts, off, cnt, zm, L, gauss, E, kap):
    """Residuals E_g (in E), E_0 (returned), κ_g = ∂E_g/∂b_g (in kap) and A = ∂E_0/∂ω.

    ω = log(1 + m - a0) with a0 = P(λ = 0); ``y G_g(y) - a0 = 1 + m - a0`` is written with the non-zero part of the
    law, ``y G_nz(y) + P_g(0) - a0``, which tends to 0 like y as λ → 0 for the layers with P_g(0) = a0: there the
    equation reads ``E_g = log y + log G_nz(y) - ω`` and stays well conditioned (so does ω = log(1 + m) when a0 = 0).
    """
    G = cnt.shape[0]
    a0 = zero_mass(zm)
    w = cmath.exp(om)
    m = m_of(om, a0)
    s = 0j
    for g in range(G):
        Gg, dG = law_g(b[g], vals, wts, off[g], off[g + 1])
        y = cmath.exp(b[g])
        if zm[g] == a0:
            E[g] = b[g] + log_lower(Gg) - om
            kap[g] = 1.0 + y * dG / Gg
        else:
            v = y * Gg + (zm[g] - a0)
            E[g] = log_lower(v) - om
            kap[g] = y * (Gg + y * dG) / v
        s += cnt[g] * b[g]
    onep = w + a0  # 1 + m, exactly (m itself rounds to -1 as λ → 0)
    lm = log_lower(m)
    l1m = om if a0 == 0.0 else log_lower(onep)
    dlm = w / m  # d log m/dω
    dl1m = w / onep  # d log(1 + m)/dω
    if gauss != 0.0:
        # k = gauss Gaussian layers: (1 - L + k) log(1 + m); at k = L this is the all-Gaussian form exactly (c = 1)
        c1 = 1.0 - L + gauss
        E0 = (s + (L - 1.0) * lm + c1 * l1m - lz) / L
        A = ((L - 1.0) * dlm + c1 * dl1m) / L
    else:
        E0 = (s + (L - 1.0) * (lm - l1m) - lz) / L
        A = (L - 1.0) * (dlm - dl1m) / L
    return E0, A


@njit(**INLINE)
def _schur(A, kap, cnt, L):
    D = A
    for g in range(cnt.shape[0]):
        D += cnt[g] / (L * kap[g])
    return D


@njit(**JIT)
def newton(c, b, lz, vals, wts, off, cnt, zm, L, gauss, maxit, E, kap, db):
    """Newton on the log-form equations at fixed log z in (ω, b), b in place; returns (ω, iterations, converged, D).

    The linear system is solved by eliminating δb_g = (δc - E_g)/κ_g (block-arrow structure, O(G) per step);
    D = ∂E_0/∂ω + Σ_g n_g/(L κ_g) is the Schur complement, so dω/d log z = 1/(L D) (the continuation's tangent).
    Callers pass ``maxit`` as ``np.int64(k)``: a literal k would compile one specialisation per distinct value.
    """
    D = 1.0 + 0j
    prev = math.inf
    done = False
    # one call site of the residual (inlined once): the pass after convergence only evaluates E, κ and D at the
    # solution
    for it in range(1, maxit + 2):
        if it > maxit and not done:
            break
        E0, A = _residual(c, b, lz, vals, wts, off, cnt, zm, L, gauss, E, kap)
        D = _schur(A, kap, cnt, L)
        if done:
            return c, it - 1, True, D
        rhs = -E0
        res = abs(E0)
        for g in range(cnt.shape[0]):
            rhs += cnt[g] * E[g] / (L * kap[g])
            res = max(res, abs(E[g]))
        # near an edge the Jacobian is nearly singular and the step stalls above NEWTON_TOL: a residual at rounding
        # level (the log-form residuals are O(1 + |c| + |log z|)) with a small step is converged too
        res_ok = res < RES_TOL * (1.0 + abs(c) + abs(lz))
        dc = rhs / D
        step = abs(dc)
        for g in range(cnt.shape[0]):
            db[g] = (dc - E[g]) / kap[g]
            step = max(step, abs(db[g]))
        if not math.isfinite(step):
            return c, it, False, D
        scale = 1.0
        if step > MAX_STEP:
            scale = MAX_STEP / step
        c += scale * dc
        for g in range(cnt.shape[0]):
            b[g] += scale * db[g]
        # one more iteration after a step below STALL_TOL: quadratic convergence has then reached ~STALL_TOL², and
        # where the problem is ill conditioned (next to an edge, m → ∞) the steps stall at the rounding floor
        # (steps below NOISE_STEP that stop shrinking: without quadratic convergence they are rounding noise)
        stalled = prev < STALL_TOL or (it >= 3 and step < NOISE_STEP and step > 0.25 * prev)
        prev = step
        if step < NEWTON_TOL or (res_ok and step < RES_STEP) or stalled:
            done = True
    return c, maxit, False, D


@njit(**JIT)
def _physical(c, b):
    """Im(1 + m - a0) = Im m ≤ 0 and Im y_g ≥ 0 (up to ARG_TOL in the arguments)."""
    if c.imag > ARG_TOL or c.imag < -math.pi - ARG_TOL:
        return False
    for g in range(b.shape[0]):
        if b[g].imag < -ARG_TOL or b[g].imag > math.pi + ARG_TOL:
            return False
    return True


@njit(**INLINE)
def _start(lam, H, mom, s1, a0, a_b):
    """Initial (ω, b) at z = λ + iH from the moment series m = Σ m_k z^-k and y_g ≈ (1 + m)/(m S_g(m))."""
    z = complex(lam, H)
    m0 = 0j
    zi = 1.0 / z
    p = zi
    for k in range(mom.shape[0]):
        m0 += mom[k] * p
        p *= zi
    for g in range(a_b.shape[0]):
        a_b[g] = cmath.log((1.0 + m0) / (m0 * (1.0 + s1[g] * m0)))
    return cmath.log((1.0 - a0) + m0)


@njit(**INLINE)
def continue_down(lam, H, a, b, kap, D, vals, wts, off, cnt, zm, L, gauss, E, kt, db, bt):
    """From the solution (a = ω, b) at z = λ + iH, follow the physical branch down to the real axis.

    Predictor (tangent dω/d log z = 1/(L·D), d log y_g = dω/κ_g) and Newton corrector at each height ε; the step ratio
    adapts (×0.1, squared down to ×1e-4 while Newton converges fast, its square root on failure). Once the predicted
    change of m down to the real axis is below JUMP_RATIO·|Im m|, the real axis is tried directly (accepted only if
    Newton converges there, on the physical branch, close to the prediction). On return (b, kap) hold the solution.
    Returns (ω, D, status, ε): status 0 on the real axis; 1 stopped at Im z = EPS_MIN·λ and extrapolated along the
    tangent to the axis (a gap, or a density below the resolution of the jump test); 2 stuck at a height
    ε ≤ EPS_ACCEPT·λ (rounding next to a singular edge, m → ∞); 3 stuck at ε ≤ λ < LAM_TINY, extrapolated along the
    tangent; 4 stuck with m real to GAP_TOL (a gap); -1 failure.
    """
    G = cnt.shape[0]
    a0 = zero_mass(zm)
    lz_real = complex(math.log(lam), 0.0)
    ratio = 0.1
    eps = H
    eps_min = max(EPS_MIN * lam, 1e-300)
    for _ in range(MAX_STEPS):
        lz = cmath.log(complex(lam, eps))
        m = m_of(a, a0)
        # 1) jump to the real axis?
        da = (lz_real - lz) / (L * D)
        if abs(m * da) <= JUMP_RATIO * abs(m.imag):
            at = a + da
            for g in range(G):
                bt[g] = b[g] + da / kap[g]
            at, it, ok, Dt = newton(at, bt, lz_real, vals, wts, off, cnt, zm, L, gauss, np.int64(8), E, kt, db)
            if ok and _physical(at, bt) and abs(m_of(at, a0) - m) <= 2.0 * JUMP_RATIO * abs(m.imag):
                for g in range(G):
                    b[g] = bt[g]
                    kap[g] = kt[g]
                return at, Dt, 0, 0.0
        if eps <= eps_min:
            # first-order extrapolation to the axis (m is real analytic across a gap: Im m(λ + iε) ≈ ε Re m'(λ))
            return a + da, D, 1, eps
        # 2) one continuation step ε → ratio·ε (predictor-corrector)
        eps_new = max(eps * ratio, eps_min)
        lzn = cmath.log(complex(lam, eps_new))
        da = (lzn - lz) / (L * D)
        at = a + da
        for g in range(G):
            bt[g] = b[g] + da / kap[g]
        at, it, ok, Dt = newton(at, bt, lzn, vals, wts, off, cnt, zm, L, gauss, np.int64(10), E, kt, db)
        # a short move, or a long one along the tangent (log(1 + m) ~ log z for λ ≪ ε, e.g. x → 0)
        if ok and _physical(at, bt) and (abs(at - a) < 1.0 or abs(at - (a + da)) <= TANGENT_TOL * abs(da)):
            a = at
            for g in range(G):
                b[g] = bt[g]
                kap[g] = kt[g]
            D = Dt
            eps = eps_new
            if it <= 4:
                ratio = max(ratio * ratio, 1e-4)
        else:
            ratio = math.sqrt(ratio)
            if ratio > 0.999:
                break
    # stuck above the axis (ill-conditioned next to a singular edge, m → ∞): the solution at height ε is the density
    # smoothed by a Cauchy kernel of width ε, accepted when ε is negligible
    if eps <= EPS_ACCEPT * lam:
        return a, D, 2, eps
    if lam < LAM_TINY and eps <= lam:
        # far below the bulk (λ < 1e-30 × the mean) the density of activations whose φ'² has a power-law law near 0
        # (erf, tanh at large q*) decays like λ^{-1} × logs and arg(1 + m) → 0 drowns in rounding: the smoothed
        # solution, extrapolated along the tangent to the axis
        return a + (complex(math.log(lam), 0.0) - cmath.log(complex(lam, eps))) / (L * D), D, 3, eps
    m = m_of(a, a0)
    if abs(m.imag) <= GAP_TOL * abs(m):
        # stuck with m real to GAP_TOL at height ε: the density averaged over a window ε is below GAP_TOL |m|/(πλ)
        return a, D, 4, eps
    return a, D, -1, eps


@njit(**JIT)
def solve_many(loglam, H, mom, s1, vals, wts, off, cnt, zm, L, gauss, m_out, status_out, eps_out, b_out):
    """m = M_J(λ + i0) of the normalised spectrum for every λ = exp(loglam[i]), loglam sorted ascending.

    Each point first tries the previous point's real-axis solution as the start (horizontal continuation: one Newton
    solve), accepted only where the predicted and the actual change of m stay below a fraction of |Im m| — inside the
    bulk, away from the edges, where the branch cannot switch — or where Newton barely corrects the tangent predictor
    and m stays real (a gap) or complex (the bulk): at an edge the tangent turns vertical and the test fails.
    Otherwise it starts afresh at z = λ + iH (H ≥ 10 × the normalised edge, where the moment series converges) and
    continues down (:func:`continue_down`). status_out: the codes of :func:`continue_down` (0 on the real axis);
    eps_out: the height where the continuation stopped (0 on the axis). b_out: (points, G) receives the b_g = log y_g
    of each point's solution (NaN where it failed), or has 0 columns when they are not wanted.
    """
    G = cnt.shape[0]
    keep_b = b_out.shape[1] == G
    E = np.empty(G, np.complex128)
    kap = np.empty(G, np.complex128)
    kt = np.empty(G, np.complex128)
    db = np.empty(G, np.complex128)
    b = np.empty(G, np.complex128)
    bt = np.empty(G, np.complex128)
    a0 = zero_mass(zm)
    have_prev = False
    a = 0j
    D = 1.0 + 0j
    lz_prev = 0.0
    for i in range(loglam.shape[0]):
        lam = math.exp(loglam[i])
        lz = loglam[i]
        done = False
        if have_prev:
            m = m_of(a, a0)
            da = (lz - lz_prev) / (L * D)
            real = abs(m.imag) <= REAL_TOL * (1.0 + abs(m))
            safe = abs(m * da) <= JUMP_RATIO * abs(m.imag)  # small against |Im m|: the branch cannot switch
            if safe or abs(da) <= MAX_STEP:
                at = a + da
                for g in range(G):
                    bt[g] = b[g] + da / kap[g]
                at, it, ok, Dt = newton(at, bt, complex(lz, 0.0), vals, wts, off, cnt, zm, L, gauss, np.int64(8),
                                        E, kt, db)
                mt = m_of(at, a0)
                if safe:
                    ok = ok and abs(mt - m) <= 4.0 * JUMP_RATIO * abs(m.imag)
                else:
                    # the tangent predicted the solution (no edge in between: there the tangent turns vertical), and m
                    # stays real along a gap or complex in the bulk
                    ok = ok and abs(at - (a + da)) <= TANGENT_TOL * abs(da) + 1e-12
                    ok = ok and (abs(mt.imag) <= REAL_TOL * (1.0 + abs(mt))) == real
                if ok and _physical(at, bt):
                    a = at
                    D = Dt
                    for g in range(G):
                        b[g] = bt[g]
                        kap[g] = kt[g]
                    done = True
                    status_out[i] = 0
                    eps_out[i] = 0.0
        if not done:
            a = _start(lam, H, mom, s1, a0, b)
            a, it, ok, D = newton(a, b, cmath.log(complex(lam, H)), vals, wts, off, cnt, zm, L, gauss, np.int64(60),
                                  E, kap, db)
            if not ok or not _physical(a, b):
                status_out[i] = -1
                eps_out[i] = H
                m_out[i] = complex(np.nan, np.nan)
                if keep_b:
                    for g in range(G):
                        b_out[i, g] = complex(np.nan, np.nan)
                have_prev = False
                continue
            a, D, st, eps = continue_down(lam, H, a, b, kap, D, vals, wts, off, cnt, zm, L, gauss, E, kt, db, bt)
            status_out[i] = st
            eps_out[i] = eps
        m_out[i] = m_of(a, a0)
        if keep_b:
            for g in range(G):
                b_out[i, g] = b[g]
        have_prev = status_out[i] == 0
        lz_prev = lz


# ------------------------------------------------------------------------------------------------------ real axis, edge
@njit(**JIT)
def y_of_m(m, vals, wts, lo, hi, top, t_guess=math.nan):
    """Real y > top (the law's largest value) with M_D(y) = m > 0, and κ = y M'(y)/M(y).

    Newton on ``log M(top + e^t) = log m`` in t (exactly linear for an atom at the top) with bisection safeguards,
    from ``t_guess`` when it lies in the bracket (the neighbouring law's solution: consecutive groups of a chain have
    nearby laws). Returns (y, κ, ok); ok is False when y - top would be below rounding (m beyond what the law can
    reach).
    """
    t_lo = math.log(max(top, 1e-300) * 4.4e-16)
    t_hi = math.log(1.0 / m + 1.0) + 1.0  # M(y) ≤ 1/(y - top) < m there (normalised law, mean ≤ 1)
    lm = math.log(m)
    t_floor = t_lo
    checked = False
    t = math.nan
    if t_lo < t_guess < t_hi:
        # a warm start (the same group's last solution, or a prediction from it): where it is already at the
        # solution, one pass over the law; else Newton goes on from it. The reachability test below is needed only
        # where no residual at the rounding level is reached (M decreases in y: M(top + e^t_lo) > M(y) = m then)
        e = math.exp(t_guess)
        y = top + e
        M, dM = law_m_real(y, vals, wts, lo, hi)
        f = math.log(M) - lm
        fp = e * dM / M
        if fp < 0.0 and abs(f) <= Y_RES_TOL * max(1.0, abs(lm)):
            return top + math.exp(t_guess - f / fp), y * dM / M, True
        if f > 0.0:
            t_lo = t_guess
        else:
            t_hi = t_guess
        if fp < 0.0 and t_lo < t_guess - f / fp < t_hi:
            t = t_guess - f / fp
    if not (t_lo < t < t_hi):
        y = top + math.exp(t_floor)
        M, dM = law_m_real(y, vals, wts, lo, hi)
        if M < m:
            return y, y * dM / M, False
        checked = True
        t = t_guess
        if not (t_lo < t < t_hi):
            t = math.log(max(1.0 / m - top, 1.0 / m))
        if not (t_lo < t < t_hi):
            t = 0.5 * (t_lo + t_hi)
    converged = False
    for _ in range(200):
        e = math.exp(t)
        y = top + e
        M, dM = law_m_real(y, vals, wts, lo, hi)
        f = math.log(M) - lm
        if f > 0.0:
            t_lo = t
        else:
            t_hi = t
        fp = e * dM / M
        if fp < 0.0 and abs(f) <= Y_RES_TOL * max(1.0, abs(lm)):
            # a residual at the rounding level of log M (a sum of positive terms: ~1e-16 relative): converged, with
            # the last Newton correction (below, the steps would stall in rounding noise and only the bracket would
            # end the loop, after ~30-50 further passes over the law)
            t = t - f / fp
            converged = True
            break
        tn = t - f / fp if fp < 0.0 else 0.5 * (t_lo + t_hi)
        if not (t_lo < tn < t_hi):
            tn = 0.5 * (t_lo + t_hi)
        if abs(tn - t) < 1e-15 * max(1.0, abs(t)) or t_hi - t_lo < 1e-15 * max(1.0, abs(t)):
            t = tn
            break
        t = tn
    if not converged and not checked:
        y = top + math.exp(t_floor)
        M, dM = law_m_real(y, vals, wts, lo, hi)
        if M < m:
            return y, y * dM / M, False
    y = top + math.exp(t)
    M, dM = law_m_real(y, vals, wts, lo, hi)
    return y, y * dM / M, True


@njit(**JIT)
def edge_objective(a, vals, wts, off, cnt, tops, L, gauss):
    """F(a) = log M_J^{-1}(e^a)/L on the real axis (m = e^a > 0) and F'(a); ok False beyond the laws' reach."""
    m = math.exp(a)
    F = 0.0
    dF = 0.0
    t_prev = math.nan
    for g in range(cnt.shape[0]):
        if cnt[g] == 0.0:  # a group no layer of this product uses (the tails of one chain share one pack)
            continue
        y, kap, ok = y_of_m(m, vals, wts, off[g], off[g + 1], tops[g], t_prev)
        if not ok:
            return F, dF, False
        F += cnt[g] * math.log(y)
        dF += cnt[g] / kap
        t_prev = math.log(y - tops[g]) if y > tops[g] else math.nan
    l1m = math.log1p(m)
    if gauss != 0.0:
        c1 = 1.0 - L + gauss  # k = gauss Gaussian layers (1.0 exactly when all are)
        F += (L - 1.0) * a + c1 * l1m
        dF += (L - 1.0) + c1 * (m / (1.0 + m))
    else:
        F += (L - 1.0) * (a - l1m)
        dF += (L - 1.0) / (1.0 + m)
    return F / L, dF / L, True


@njit(**INLINE)
def _refine_edge(a_lo, d_lo, a_hi, d_hi, vals, wts, off, cnt, tops, L, gauss):
    """The edge's stationary point inside a bracket [a_lo, a_hi] where the objective's derivative changes sign
    (d_lo ≤ 0 < d_hi): regula falsi with the Illinois halving, to 1e-13 relative; returns (L·F, a, 0)."""
    side = 0
    a = a_lo
    for _ in range(200):
        a = (a_lo * d_hi - a_hi * d_lo) / (d_hi - d_lo)
        if not (a_lo < a < a_hi):
            a = 0.5 * (a_lo + a_hi)
        F, d, ok = edge_objective(a, vals, wts, off, cnt, tops, L, gauss)
        if d > 0.0:
            a_hi, d_hi = a, d
            if side == 1:
                d_lo *= 0.5
            side = 1
        else:
            a_lo, d_lo = a, d
            if side == -1:
                d_hi *= 0.5
            side = -1
        if a_hi - a_lo < 1e-13 * max(1.0, abs(a)) or d == 0.0:
            break
    F, d, ok = edge_objective(a, vals, wts, off, cnt, tops, L, gauss)
    return L * F, a, 0


@njit(**JIT)
def upper_edge(vals, wts, off, cnt, tops, L, gauss, a_max):
    """Square-root edge ``λ_max = min_{m>0} M_J^{-1}(m)`` (THEORY §2) of the normalised spectrum, as log λ_max.

    F'(a) < 0 as m → 0; scan upwards in steps of 1 for the first sign change (the first local minimum: the laws' top
    values only create spurious ones at m ~ 1/rounding) and refine by safeguarded secant (Illinois). Returns
    (log λ_max, a*, code): code 0 a minimum (square-root edge); 1 F decreases all the way to a_max (orthogonal weights,
    infimum at m → ∞: a hard edge or an atom at Π top_g^{n_g}, which the caller supplies); 2 F decreases until m
    leaves the range of M_D on (top, ∞) (a law with vanishing density at its top, e.g. reached only in the Gaussian
    tail): the edge is F there, y = top.
    """
    a_lo = 0.0
    F, d_lo, ok = edge_objective(a_lo, vals, wts, off, cnt, tops, L, gauss)
    # down to where F decreases and every law reaches m (m = 1 can be beyond the reach of a law whose top carries next
    # to no mass, e.g. GELU's maximum of φ' far in the Gaussian tail at small q: then F there is not defined)
    while d_lo >= 0.0 or not ok:
        a_lo -= 2.0
        F, d_lo, ok = edge_objective(a_lo, vals, wts, off, cnt, tops, L, gauss)
        if a_lo < -700.0:
            return math.nan, a_lo, 1
    a_hi = a_lo
    while True:
        a_hi += 1.0
        if a_hi > a_max:
            return math.nan, a_hi, 1
        F, d_hi, ok = edge_objective(a_hi, vals, wts, off, cnt, tops, L, gauss)
        if not ok:
            # the boundary of the reachable m, by bisection on feasibility
            for _ in range(100):
                a = 0.5 * (a_lo + a_hi)
                F, d, ok = edge_objective(a, vals, wts, off, cnt, tops, L, gauss)
                if ok and d > 0.0:  # a minimum after all, before the boundary
                    a_hi, d_hi = a, d
                    break
                if ok:
                    a_lo, d_lo = a, d
                else:
                    a_hi = a
                if a_hi - a_lo < 1e-14 * max(1.0, abs(a_lo)):
                    F, d, ok = edge_objective(a_lo, vals, wts, off, cnt, tops, L, gauss)
                    return L * F, a_lo, 2
            else:
                F, d, ok = edge_objective(a_lo, vals, wts, off, cnt, tops, L, gauss)
                return L * F, a_lo, 2
            break
        if d_hi > 0.0:
            break
        a_lo, d_lo = a_hi, d_hi
    return _refine_edge(a_lo, d_lo, a_hi, d_hi, vals, wts, off, cnt, tops, L, gauss)


# ------------------------------------------------------------------------------------------------------ lower edge
@njit(**JIT)
def y_below(m, vals, wts, lo, hi, bottom, zmass, s_guess=0.0):
    """Real y left of the law's support with ``M_D(y) = m < 0``, and d log y/dm = 1/(y M'(y)).

    M_D decreases on (-∞, 0) from 0 to -(1 - P(D = 0)) and on (0, bottom) from there to -∞, so y lies in (0, bottom)
    when m < -(1 - P(D = 0)) and in (-∞, 0) otherwise. Newton in a variable that maps the interval onto the real line
    (logit of y/bottom, or log(-y)) with bisection safeguards, from ``s_guess`` (0, or the neighbouring law's solution:
    consecutive groups of a chain have nearby laws). Returns (y, d log y/dm, ok, s).
    """
    inside = m < -(1.0 - zmass)
    s_lo, s_hi = -700.0, 700.0
    s = s_guess if -700.0 < s_guess < 700.0 else 0.0
    y = 0.0
    dM = -1.0
    for _ in range(300):
        if inside:
            y = min(bottom / (1.0 + math.exp(-s)), bottom * (1.0 - 2.3e-16))
            dyds = y * (1.0 - y / bottom)
        else:
            y = -math.exp(s)
            dyds = y
        M, dM = law_m_real(y, vals, wts, lo, hi)
        f = M - m
        # f decreases in y; y increases in s inside (0, bottom) and decreases in s on (-∞, 0)
        if (f > 0.0) == inside:
            s_lo = s
        else:
            s_hi = s
        fp = dM * dyds
        sn = s - f / fp if fp != 0.0 else 0.5 * (s_lo + s_hi)
        if not (s_lo < sn < s_hi):
            sn = 0.5 * (s_lo + s_hi)
        if abs(sn - s) < 1e-14 * max(1.0, abs(s)) or s_hi - s_lo < 1e-14 * max(1.0, abs(s)):
            break
        s = sn
    if y == 0.0 or dM == 0.0 or not math.isfinite(y):
        return y, 0.0, False, 0.0
    return y, 1.0 / (y * dM), True, s


@njit(**JIT)
def lower_objective(tau, m0, vals, wts, off, cnt, bottoms, zmass, L, gauss):
    """log x and d log x/dτ along the real branch m = m0 - e^τ below the spectrum (ok False: x ≤ 0 or unsolvable)."""
    e = math.exp(tau)
    m = m0 - e
    lx = 0.0
    dl = 0.0
    neg = 0
    s_prev = 0.0  # the first group starts from 0; the next from the previous group's solution (same side: same zmass)
    z_prev = -1.0
    for g in range(cnt.shape[0]):
        if cnt[g] == 0.0:
            continue
        y, dly, ok, s_g = y_below(m, vals, wts, off[g], off[g + 1], bottoms[g], zmass[g],
                                  s_prev if zmass[g] == z_prev else 0.0)
        if not ok:
            return 0.0, 0.0, False
        s_prev, z_prev = s_g, zmass[g]
        lx += cnt[g] * math.log(abs(y))
        dl += cnt[g] * dly
        if y < 0.0 and cnt[g] % 2 == 1:
            neg += 1
    p = 1.0 + m
    if p == 0.0:
        return 0.0, 0.0, False
    lx += (L - 1.0) * math.log(abs(m))
    dl += (L - 1.0) / m
    if m < 0.0 and (L - 1.0) % 2 == 1:
        neg += 1
    k = 1.0 - L + gauss  # the power of (1 + m): 1 (all Gaussian), 1 - L (all orthogonal)
    lx += k * math.log(abs(p))
    dl += k / p
    if p < 0.0 and k % 2 != 0:
        neg += 1
    if neg % 2 == 1:
        return 0.0, 0.0, False
    return lx, -e * dl, True


@njit(**JIT)
def lower_edge(vals, wts, off, cnt, bottoms, zmass, L, gauss):
    """Lower edge λ_- > 0 of the continuous part of the normalised spectrum, when it is separated from 0.

    Below the spectrum m = M_J(x) is real and runs from m0 = -(1 - P(λ = 0)) at x = 0+ downwards; along that real
    branch x = M_J^{-1}(m) rises from 0 to its first local maximum, the lower (square-root) edge, where the branch turns
    complex. Scan τ = log(m0 - m) upwards from m - m0 = -1e-12 and refine the first sign change of d log x/dτ.
    Returns (log λ_-, found); found is False when x is not positive next to m0 or never turns (no gap at 0).
    """
    a0 = 0.0
    for g in range(cnt.shape[0]):
        a0 = max(a0, zmass[g])
    m0 = -(1.0 - a0)
    tau = math.log(1e-12 * max(abs(m0), 1e-3))
    F, d_lo, ok = lower_objective(tau, m0, vals, wts, off, cnt, bottoms, zmass, L, gauss)
    if not ok or d_lo <= 0.0:
        return 0.0, False
    t_lo = tau
    t_hi = tau
    d_hi = d_lo
    while True:
        t_hi += 0.5
        if t_hi > 40.0:
            return 0.0, False
        F, d_hi, ok = lower_objective(t_hi, m0, vals, wts, off, cnt, bottoms, zmass, L, gauss)
        if not ok:
            return 0.0, False
        if d_hi <= 0.0:
            break
        t_lo, d_lo = t_hi, d_hi
    t = t_lo
    for _ in range(200):
        t = 0.5 * (t_lo + t_hi)
        F, d, ok = lower_objective(t, m0, vals, wts, off, cnt, bottoms, zmass, L, gauss)
        if not ok:
            return 0.0, False
        if d > 0.0:
            t_lo = t
        else:
            t_hi = t
        if t_hi - t_lo < 1e-13 * max(1.0, abs(t)):
            break
    F, d, ok = lower_objective(t, m0, vals, wts, off, cnt, bottoms, zmass, L, gauss)
    return F, ok


# ------------------------------------------------------------------------------------------------------ along the axis
H_STEP = 0.25  # largest step in log λ of the continuation along the real axis
H_STEP_MIN = 1e-7  # ... and the smallest before it gives up


@njit(**JIT)
def solve_along(l_start, loglam, H, mom, s1, vals, wts, off, cnt, zm, L, gauss, m_out, status_out):
    """m = M_J(λ + i0) at the points ``loglam`` (sorted descending, all below ``l_start``) by continuation along the
    real axis from the solution at λ = e^l_start (found as in :func:`solve_many`, from z = λ + iH down to the axis).

    Each step in log λ (at most H_STEP, halved on failure down to H_STEP_MIN) is a tangent predictor and a Newton
    corrector on the real axis, accepted where Newton converges on the physical branch and corrects the predictor by
    less than TANGENT_TOL of its move (no edge in between: there the tangent turns vertical). This reaches far below
    the bulk, where the continuation down from λ + iH is lost in rounding (m → -1: arg(1 + m) is well resolved in
    ω = log(1 + m), but not along the way down). status_out 0 on the axis, -1 where a step failed (that point and every
    one below it).
    """
    G = cnt.shape[0]
    E = np.empty(G, np.complex128)
    kap = np.empty(G, np.complex128)
    kt = np.empty(G, np.complex128)
    db = np.empty(G, np.complex128)
    b = np.empty(G, np.complex128)
    bt = np.empty(G, np.complex128)
    a0 = zero_mass(zm)
    for i in range(loglam.shape[0]):
        status_out[i] = -1
        m_out[i] = complex(np.nan, np.nan)
    lam = math.exp(l_start)
    a = _start(lam, H, mom, s1, a0, b)
    a, it, ok, D = newton(a, b, cmath.log(complex(lam, H)), vals, wts, off, cnt, zm, L, gauss, np.int64(60),
                          E, kap, db)
    if not ok or not _physical(a, b):
        return
    a, D, st, eps = continue_down(lam, H, a, b, kap, D, vals, wts, off, cnt, zm, L, gauss, E, kt, db, bt)
    if st != 0:
        return
    l = l_start
    h = H_STEP
    for i in range(loglam.shape[0]):
        target = loglam[i]
        while l > target:
            step = min(h, l - target)
            ln = l - step
            da = -step / (L * D)
            at = a + da
            for g in range(G):
                bt[g] = b[g] + da / kap[g]
            at, it, ok, Dt = newton(at, bt, complex(ln, 0.0), vals, wts, off, cnt, zm, L, gauss, np.int64(12),
                                    E, kt, db)
            if ok and _physical(at, bt) and abs(at - (a + da)) <= TANGENT_TOL * abs(da) + 1e-12:
                a = at
                D = Dt
                for g in range(G):
                    b[g] = bt[g]
                    kap[g] = kt[g]
                l = ln
                if it <= 4:
                    h = min(2.0 * h, H_STEP)
            else:
                h *= 0.5
                if h < H_STEP_MIN:
                    return
        m_out[i] = m_of(a, a0)
        status_out[i] = 0


@njit(**JIT)
def edge_objective_warm(a, vals, wts, off, cnt, tops, L, gauss, tc):
    """:func:`edge_objective` with a warm start per group: ``tc[g]`` holds (log(y_g - top_g), a, dt/da) of the group's
    last solution (NaN: none yet, then the previous group's solution, as there), from which the new t is predicted to
    first order; updated. Successive evaluations of a search (and the
    tails of one chain, which share the groups) move m little, so each y_g takes one or two Newton steps."""
    m = math.exp(a)
    F = 0.0
    dF = 0.0
    t_prev = math.nan
    for g in range(cnt.shape[0]):
        if cnt[g] == 0.0:
            continue
        # first-order prediction from the group's last solution (t, a, dt/da there): log M = a, so dt/da = 1/(d log M/dt)
        guess = tc[g, 0] + (a - tc[g, 1]) * tc[g, 2] if math.isfinite(tc[g, 0]) else t_prev
        y, kap, ok = y_of_m(m, vals, wts, off[g], off[g + 1], tops[g], guess)
        if not ok:
            return F, dF, False
        F += cnt[g] * math.log(y)
        dF += cnt[g] / kap
        t_prev = math.log(y - tops[g]) if y > tops[g] else math.nan
        tc[g, 0] = t_prev
        tc[g, 1] = a
        # d log M/dt = κ (y - top)/y with κ = d log M/d log y
        slope = kap * (y - tops[g]) / y
        tc[g, 2] = 1.0 / slope if slope < 0.0 and math.isfinite(t_prev) else 0.0
    l1m = math.log1p(m)
    if gauss != 0.0:
        c1 = 1.0 - L + gauss
        F += (L - 1.0) * a + c1 * l1m
        dF += (L - 1.0) + c1 * (m / (1.0 + m))
    else:
        F += (L - 1.0) * (a - l1m)
        dF += (L - 1.0) / (1.0 + m)
    return F / L, dF / L, True


@njit(**JIT)
def upper_edge_near(vals, wts, off, cnt, tops, L, gauss, a0, curv, tc):
    """:func:`upper_edge` warm-started at a0 (the minimum of a neighbouring product, e.g. the next shorter tail of one
    chain), with the groups' warm starts ``tc`` (see :func:`edge_objective_warm`).

    F'(a) is bracketed from a0: where ``curv`` (an estimate of F'' from the neighbouring search; NaN if none) is
    positive, first at the Newton prediction a0 - F'(a0)/curv overshot by half (a tight bracket when the estimate
    is good), then by steps doubling from there (unit steps without an estimate); the sign change is refined by
    secant steps safeguarded by the bracket until a step is below NEAR_A_TOL (relative): F is stationary there, so its
    value, the log-edge, is off by ½F''·δa² ≲ 1e-18 F''. Returns (log λ_max, a*, code, F'' estimate
    from the last two evaluations) with code 0, or code 3 where the steps leave the laws' reach or pass a0 ± 40 (the
    caller then runs the full :func:`upper_edge`).
    """
    F, d, ok = edge_objective_warm(a0, vals, wts, off, cnt, tops, L, gauss, tc)
    if not ok:
        return math.nan, a0, 3, math.nan
    if d == 0.0:
        return L * F, a0, 0, curv
    direction = -1.0 if d > 0.0 else 1.0
    step = 1.0
    if curv > 0.0 and math.isfinite(curv):
        step = min(max(1.5 * abs(d) / curv, 1e-12 * max(1.0, abs(a0))), 1.0)
    a_near, d_near = a0, d
    a_far = a0
    d_far = d
    while True:
        a_far = a_near + direction * step
        if abs(a_far - a0) > 40.0:
            return math.nan, a0, 3, math.nan
        F, d_far, ok = edge_objective_warm(a_far, vals, wts, off, cnt, tops, L, gauss, tc)
        if not ok:
            return math.nan, a0, 3, math.nan
        if (d_far > 0.0) != (d_near > 0.0):
            break
        a_near, d_near = a_far, d_far
        step *= 2.0
    if direction > 0.0:
        a_lo, d_lo, a_hi, d_hi = a_near, d_near, a_far, d_far
    else:
        a_lo, d_lo, a_hi, d_hi = a_far, d_far, a_near, d_near
    # secant steps through the last two evaluations, kept inside the bracket (else regula falsi on the bracket, else
    # its midpoint), until a step is below NEAR_A_TOL: the error of the secant after a step δ is O(δ^1.6)
    a_p, d_p = a_far, d_far
    a_q, d_q = a_near, d_near
    a = a_p
    for _ in range(200):
        a_new = a_p - d_p * (a_p - a_q) / (d_p - d_q) if d_p != d_q else math.nan
        if not (a_lo < a_new < a_hi):
            a_new = (a_lo * d_hi - a_hi * d_lo) / (d_hi - d_lo)
            if not (a_lo < a_new < a_hi):
                a_new = 0.5 * (a_lo + a_hi)
        F, d, ok = edge_objective_warm(a_new, vals, wts, off, cnt, tops, L, gauss, tc)
        if not ok:
            return math.nan, a0, 3, math.nan
        step = abs(a_new - a_p)
        a = a_new
        a_q, d_q = a_p, d_p
        a_p, d_p = a, d
        if d > 0.0:
            a_hi, d_hi = a, d
        else:
            a_lo, d_lo = a, d
        if step < NEAR_A_TOL * max(1.0, abs(a)) or a_hi - a_lo < NEAR_A_TOL * max(1.0, abs(a)) or d == 0.0:
            break
    c = (d_p - d_q) / (a_p - a_q) if a_p != a_q else math.nan
    return L * F, a, 0, c  # F of the last evaluation, at a
