"""Numba kernels of :mod:`meanfield.fisher` (jit policy ``cache=True, nogil=True``, float64 / complex128; the one
vectorised sum of the pole form, :func:`_pole_sums`, adds reassociation and the numpy error model).

They take plain arrays only (no activation dispatchers), so they compile once and are cached on disk:

* :func:`cross_series` — the covariance map through the layers with the Mehler series of
  :func:`meanfield._mehler.series_pair`;
* :func:`depth_sums` — the layer sums Θ/N for every depth at once (the backward recursion folded into the forward one);
* :func:`chain_*` — the real and complex "shooting" solutions of the subordination chain of the conditional FIM
  (Hayase & Karakida 2021), see :mod:`meanfield.fisher` for the equations.
"""

import math

import numpy as np
from numba import njit

from meanfield._mehler import series_pair

JIT = dict(cache=True, nogil=True)


# ---------------------------------------------------------------------------------------------------- depth sums
@njit(**JIT)
def depth_sums(chi, a, out):
    """``out[L] = Σ_{l=1}^{L+1} a[l] Π_{m=l}^{L} chi[m]`` for L = 0 … len(out)-1, by ``out[L] = chi[L] out[L-1] + a[L+1]``.

    ``a[l]`` is the forward factor of weight layer l and ``chi[m]`` the backward gain of hidden layer m, so ``out[L]`` is
    the layer sum of the NTK of the depth-L network (Karakida et al. 2019, §3, with the backward order parameters
    folded in). ``out[0] = a[1]``.
    """
    out[0] = a[1]
    for L in range(1, out.shape[0]):
        out[L] = chi[L] * out[L - 1] + a[L + 1]


# ------------------------------------------------------------------------------------------- discrete measure nu
@njit(**JIT)
def eta_nu(u, d, p):
    """η_ν(u) = ψ/(1+ψ), ψ = Σ p_i u d_i/(1 - u d_i), and dη/du, for the discrete measure Σ p_i δ_{d_i} (complex u)."""
    psi = 0.0 + 0.0j
    dpsi = 0.0 + 0.0j
    for i in range(d.shape[0]):
        den = 1.0 - u * d[i]
        psi += p[i] * u * d[i] / den
        dpsi += p[i] * d[i] / (den * den)
    inv = 1.0 / (1.0 + psi)
    return psi * inv, dpsi * inv * inv


@njit(**JIT)
def eta_nu_real(u, d, p):
    psi = 0.0
    dpsi = 0.0
    for i in range(d.shape[0]):
        den = 1.0 - u * d[i]
        psi += p[i] * u * d[i] / den
        dpsi += p[i] * d[i] / (den * den)
    inv = 1.0 / (1.0 + psi)
    return psi * inv, dpsi * inv * inv


@njit(**JIT)
def cross_series(q, qx, a2, b2, nterms, row, scale, sw2, sb2, l_q, stop_rtol, qhx, gx):
    """The covariance map through layers 1..L with Mehler series (layer l uses row ``row[l]`` of ``a2``, ``b2``).

    ``qx[1]`` must be set; ``scale[l]`` multiplies E φφ (the linear regime below Q_TINY). Fills ``qhx[l] = E φφ``, ``gx[l] = E φ'φ'`` and ``qx[l+1] = sw2 qhx[l] + sb2``. Stops at the
    first layer l > l_q whose step is below ``stop_rtol·q[l]`` and repeats it; returns that layer (L + 1 if none).
    """
    L = q.shape[0] - 2
    buf = np.empty(2)
    for l in range(1, L + 1):
        ql = q[l]
        c = qx[l] / ql if ql > 0.0 else 1.0
        c = -1.0 if c < -1.0 else (1.0 if c > 1.0 else c)
        j = row[l]
        series_pair(a2[j], b2[j], nterms[j], c, buf)
        qhx[l] = buf[0] * scale[l]
        gx[l] = buf[1]
        qx[l + 1] = sw2 * qhx[l] + sb2
        if l > l_q and abs(qx[l + 1] - qx[l]) <= stop_rtol * ql:
            for m in range(l + 1, L + 1):
                qhx[m] = qhx[l]
                gx[m] = gx[l]
                qx[m + 1] = qx[l + 1]
            return l
    return L + 1


@njit(**JIT)
def backward(chi, L, out):
    """``out[l] = Π_{m=l}^{L} chi[m]`` for l = 1 … L+1 (``out[L+1] = 1``; ``out[0]`` untouched)."""
    out[L + 1] = 1.0
    for l in range(L, 0, -1):
        out[l] = chi[l] * out[l + 1]


# ------------------------------------------------------------------------------------ the subordination chain
# Levels l = 1 … L+1 of the recursion G_l = a_l I + W D_{l-1} G_{l-1} D_{l-1} Wᵀ (divided by N): s[l] = a_l/N, and the
# law ν_{l-1} of σ_w² φ'(h^{l-1})² as atoms D[off[l-1]:off[l]] with masses P (levels index ν by the layer l-1 = 1 … L).
# ``gauss[l]`` (a boolean array over the levels) says whether W^l is Gaussian (else orthogonal): each level its own kind.
# For a point w_1 where the bottom level is evaluated, the chain runs upward (see meanfield.fisher):
#   H_l = 1 - (1 - H_{l-1})(1 - s_{l-1}/w_{l-1})          (η of level l-1 at 1/w_{l-1}; H_1 = 0)
#   v_l = η_ν^{-1}(H_l),  u_l = v_l (orthogonal W) or (1 - H_l) v_l (Gaussian W: ν ⊠ Marchenko–Pastur)
#   w_l = s_l + w_{l-1} H_l / u_l
# and G(w_{L+1}) = 1/((w_{L+1} - s_{L+1})(1 - H_{L+1})).
NEWTON_RTOL = 1e-14
NEWTON_MAXIT = 60
STALL_RTOL = 1e-10
CHAIN_RTOL = 1e-13
CHAIN_STALL = 1e-10
LOOSE_RTOL = 1e-9  # the inversions' step tolerance in the Newton iterations before the last (pole form)
LOOSE_SWITCH = 1e-6  # ... while the top point is farther than this (relative) from the target


@njit(**JIT)
def _invert_eta(H, v, d, p):
    """Complex Newton for η_ν(v) = H from the guess v; returns (v, η'(v), converged).

    Converged when a step is below NEWTON_RTOL·|v|, or when the steps stop shrinking below STALL_RTOL·|v| (the
    rounding floor: near ψ = -1, where |H| is large, η is computed with cancellation).
    """
    prev = math.inf
    de = 0.0 + 0.0j
    for it in range(NEWTON_MAXIT):
        e, de = eta_nu(v, d, p)
        if de == 0.0:
            return v, de, False
        step = (e - H) / de
        # damp steps that would move v by more than half its size (a pole of η lies between)
        a = abs(step)
        if a > 0.5 * abs(v) and abs(v) > 0.0:
            step *= 0.5 * abs(v) / a
            a = abs(step)
        v = v - step
        if a <= NEWTON_RTOL * abs(v) or (a >= 0.5 * prev and a <= STALL_RTOL * abs(v)):
            e, de = eta_nu(v, d, p)
            return v, de, True
        prev = a
    return v, de, False


@njit(**JIT)
def chain_up(w1, s, D, P, off, gauss, v):
    """Run the chain upward from the bottom point w_1 (complex).

    ``v[l]`` (l = 2 … L+1) holds the guesses of η_ν^{-1}(H_l) and receives the solutions. Returns
    (w_{L+1}, dw_{L+1}/dw_1, H_{L+1}, status) with status 0 = ok, 1 = an inversion failed, 2 = a level left the upper
    half-plane (not the physical branch).
    """
    top = s.shape[0] - 1
    w = w1
    dw = 1.0 + 0.0j
    H = 0.0 + 0.0j
    dH = 0.0 + 0.0j
    status = 0
    for l in range(2, top + 1):
        sp = s[l - 1]
        r = 1.0 - sp / w
        Hn = 1.0 - (1.0 - H) * r
        dHn = dH * r - (1.0 - H) * sp / (w * w) * dw
        d = D[off[l - 1] : off[l]]
        p = P[off[l - 1] : off[l]]
        vv, de, ok = _invert_eta(Hn, v[l], d, p)
        if not ok:
            return w, dw, Hn, 1
        v[l] = vv
        dv = dHn / de
        if gauss[l]:
            u = (1.0 - Hn) * vv
            du = -dHn * vv + (1.0 - Hn) * dv
        else:
            u = vv
            du = dv
        wn = s[l] + w * Hn / u
        dw = (dw * Hn + w * dHn) / u - w * Hn * du / (u * u)
        w = wn
        H = Hn
        dH = dHn
        if w.imag < 0.0:
            status = 2
    return w, dw, H, status


@njit(**JIT)
def chain_solve(target, w1, s, D, P, off, gauss, v, maxit):
    """Newton on w_1 so that the chain reaches ``target`` at the top; returns (w_1, w_{L+1}, H_{L+1}, status).

    status 0 = converged on the physical branch, 1 = no convergence, 2 = converged off the physical branch. Converged
    when the top point is within CHAIN_RTOL·scale of the target (scale = |target| + s_{L+1}), or within CHAIN_STALL·scale
    once Newton stops gaining (the rounding floor of a deep chain, whose inner inversions are each exact to ~1e-14).
    """
    vsave = v.copy()
    scale = abs(target) + s[s.shape[0] - 1]
    prev = math.inf
    for it in range(maxit):
        w, dw, H, st = chain_up(w1, s, D, P, off, gauss, v)
        if st == 1 or dw == 0.0:
            v[:] = vsave
            return w1, w, H, 1
        res = abs(w - target)
        if res <= CHAIN_RTOL * scale or (res >= 0.5 * prev and res <= CHAIN_STALL * scale):
            return w1, w, H, (0 if st == 0 else 2)
        prev = res
        step = (w - target) / dw
        # keep the bottom point in the upper half-plane and the step moderate
        a = abs(step)
        lim = 0.5 * abs(w1 - s[1])
        if a > lim:
            step *= lim / a
        w1n = w1 - step
        if w1n.imag <= 0.0:
            w1n = complex(w1n.real, 0.5 * w1.imag)
        w1 = w1n
    v[:] = vsave
    return w1, target, H, 1


@njit(**JIT)
def chain_ladder(x, y0, y_min, ratio, w1, s, D, P, off, gauss, v, maxit):
    """Continue the solution from x + i·y0 (guess w1, v) down to x + i·y_min in steps y → ratio·y.

    A failed step is retried with a smaller step in log y (down to ratio 0.9999). Returns (w_1, w_{L+1}, H_{L+1},
    status).
    """
    y = y0
    vc = v.copy()
    w1c, wt, H, st = chain_solve(complex(x, y), w1, s, D, P, off, gauss, vc, maxit)
    if st != 0:
        return w1c, wt, H, st
    r = ratio
    while y > y_min:
        yn = max(y * r, y_min)
        vt = vc.copy()
        w1t, wtt, Ht, st = chain_solve(complex(x, yn), w1c, s, D, P, off, gauss, vt, maxit)
        if st == 0:
            y = yn
            w1c = w1t
            wt = wtt
            vc = vt
            H = Ht
            r = ratio
        else:
            r = math.sqrt(r)  # a smaller step in log y
            if r > 0.9999:
                return w1c, wt, H, st
    v[:] = vc
    return w1c, wt, H, 0


# ----------------------------------------------------------------------------------------------- real axis
@njit(**JIT)
def _invert_eta_real(H, d, p, dmax):
    """The v in (0, 1/dmax) with η_ν(v) = H ∈ (0, 1): safeguarded Newton on the bracket (η_ν increases there)."""
    lo = 0.0
    hi = 1.0 / dmax
    m = 0.0
    for i in range(d.shape[0]):
        m += p[i] * d[i]
    v = H / m  # η_ν(v) ≈ m v for small v
    if not (lo < v < hi):
        v = 0.5 * hi
    for it in range(200):
        e, de = eta_nu_real(v, d, p)
        f = e - H
        if f > 0.0:
            hi = v
        else:
            lo = v
        vn = v - f / de if de > 0.0 else 0.5 * (lo + hi)
        if not (lo < vn < hi):
            vn = 0.5 * (lo + hi)
        if abs(vn - v) <= 1e-15 * v or hi - lo <= 1e-15 * v:
            return vn
        v = vn
    return v


@njit(**JIT)
def chain_up_real(w1, s, D, P, off, gauss, dmax):
    """The chain on the real axis right of every level's support: returns w_{L+1} (inf if the branch ends)."""
    top = s.shape[0] - 1
    w = w1
    H = 0.0
    for l in range(2, top + 1):
        sp = s[l - 1]
        Hn = 1.0 - (1.0 - H) * (1.0 - sp / w)
        if not (0.0 < Hn < 1.0):
            return math.inf
        d = D[off[l - 1] : off[l]]
        p = P[off[l - 1] : off[l]]
        vv = _invert_eta_real(Hn, d, p, dmax[l - 1])
        u = (1.0 - Hn) * vv if gauss[l] else vv
        w = s[l] + w * Hn / u
        H = Hn
    return w


# ------------------------------------------------------------------------------------- real axis, in logarithms
# The same real chain with every quantity carried as a logarithm and both H_l and K_l = 1 - H_l kept, each from sums
# and products of positive numbers: H_{l+1} = H_l + K_l s_l/w_l and K_{l+1} = K_l δ_l/w_l (δ_l = w_l - s_l), which
# follow from H_{l+1} = 1 - (1 - H_l)(1 - s_l/w_l). Nothing cancels, so the chain stays exact to rounding where the
# plain form loses 1 - H (a strongly contracting chain: K_l falls by δ_l/w_l ≈ χ_1 per level) or where the bottom
# point w_1 is astronomically far from s_1 (its fold sits at w_1 ~ χ_1^{-L}). The bottom is parametrised by
# t = log δ_1 = log(w_1 - s_1) over the whole real line; the chain also carries d/dt of every logarithm (forward mode),
# so the fold is a sign change of dF/dt, F = log w_{L+1}.
@njit(**JIT)
def _lae(a, b):
    """log(e^a + e^b), exact for -inf arguments."""
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@njit(**JIT)
def _log_s_nu(lv, d, p):
    """S(v) = ψ_ν(v)/v = Σ p d/(1 - v d) and v S'(v)/S(v) at v = e^lv (v < 1/max d)."""
    v = math.exp(lv)
    S = 0.0
    dS = 0.0
    for i in range(d.shape[0]):
        den = 1.0 - v * d[i]
        t = p[i] * d[i] / den
        S += t
        dS += t * d[i] / den
    return S, v * dS / S


@njit(**JIT)
def invert_psi_log(target, d, p, dmax, m_nu):
    """log v with log ψ_ν(v) = target, v in (0, 1/dmax), ψ_ν(v) = Σ p v d/(1 - v d) increasing from 0 to ∞.

    Safeguarded Newton in log v on the bracket [lo, -log dmax]: at lo = min(target - log 2m_ν, -log 2dmax) S(v) ≤ 2m_ν,
    so ψ ≤ e^target there. Returns (log v, d log ψ/d log v, ok); a target beyond what rounding can resolve next to the
    pole at 1/dmax returns the pole itself (ok) with its slope from the last resolved point.
    """
    hi = -math.log(dmax)
    lo = min(target - math.log(2.0 * m_nu), hi - math.log(2.0))
    lv = min(target - math.log(m_nu), 0.5 * (lo + hi))
    if not lo < lv < hi:
        lv = 0.5 * (lo + hi)
    g = 1.0
    for _ in range(300):
        S, r = _log_s_nu(lv, d, p)
        if not (S > 0.0 and math.isfinite(S)):
            hi = lv
            lv = 0.5 * (lo + hi)
            continue
        f = lv + math.log(S) - target
        g = 1.0 + r
        if f > 0.0:
            hi = lv
        else:
            lo = lv
        ln = lv - f / g
        if not lo < ln < hi:
            ln = 0.5 * (lo + hi)
        if abs(ln - lv) <= 1e-15 * max(1.0, abs(lv)) or hi - lo <= 1e-15 * max(1.0, abs(lv)):
            return ln, g, True
        lv = ln
    return lv, g, False


@njit(**JIT)
def chain_up_log(t, ls, D, P, off, gauss, dmax, m_nu):
    """The real chain from the bottom point w_1 = s_1 + e^t, in logarithms: returns (log w_{L+1}, d log w_{L+1}/dt,
    ok, below) with ``below`` True when every level under the top still rises with t (d log w_l/dt > 0, l ≤ L).

    ``ls[l] = log s_l`` (-inf for a zero shift). ok is False where an inversion of ψ_ν did not converge. Each level's
    physical branch is the part beyond its own fold, and the folds come in order up the chain (the subordination point
    of level l + 1 at its edge lies right of level l's edge), so ``below and d log w_{L+1}/dt > 0`` holds exactly
    beyond the top fold: a predicate monotone in t, unlike the sign of d log w_{L+1}/dt alone (other levels' folds
    leave further local minima of w_{L+1} below the physical one).
    """
    top = ls.shape[0] - 1
    lw = _lae(ls[1], t)
    dlw = math.exp(t - lw)
    ld = t
    dld = 1.0
    lH = -math.inf
    dlH = 0.0
    lK = 0.0
    dlK = 0.0
    below = True
    for l in range(2, top + 1):
        # H_l = H_{l-1} + K_{l-1} s_{l-1}/w_{l-1};  K_l = K_{l-1} δ_{l-1}/w_{l-1}
        b = lK + ls[l - 1] - lw
        db = dlK - dlw
        lHn = _lae(lH, b)
        dlHn = 0.0
        if lH > -math.inf:
            dlHn += math.exp(lH - lHn) * dlH
        if b > -math.inf:
            dlHn += math.exp(b - lHn) * db
        lKn = lK + ld - lw
        dlKn = dlK + dld - dlw
        d = D[off[l - 1] : off[l]]
        p = P[off[l - 1] : off[l]]
        lv, g, ok = invert_psi_log(lHn - lKn, d, p, dmax[l - 1], m_nu[l - 1])
        if not ok:
            return lw, dlw, False, False
        if dlw <= 0.0:
            below = False
        dlv = (dlHn - dlKn) / g
        if gauss[l]:  # u = (1 - H) v, the Marchenko–Pastur factor
            lu = lKn + lv
            dlu = dlKn + dlv
        else:
            lu = lv
            dlu = dlv
        ldn = lw + lHn - lu  # δ_l = w_{l-1} H_l/u_l
        dldn = dlw + dlHn - dlu
        lwn = _lae(ls[l], ldn)
        dlwn = math.exp(ldn - lwn) * dldn
        lw, dlw, ld, dld, lH, dlH, lK, dlK = lwn, dlwn, ldn, dldn, lHn, dlHn, lKn, dlKn
    return lw, dlw, True, below


# ------------------------------------------------------------------------- the complex chain, pole form (density)
# The same chain as chain_up/chain_solve with each law ν written by its poles: for the nodes d_i ≠ 0 of ν (masses p_i;
# nodes at 0 add nothing to ψ), c_i = 1/d_i and pc_i = p_i c_i, so that
#   ψ_ν(u) = Σ p_i u d_i/(1 - u d_i) = u Σ p_i/(c_i - u),   ψ_ν'(u) = Σ p_i c_i/(c_i - u)²
# cost one real reciprocal per node instead of two complex divisions, and the inversion returns the derivative of
# its last evaluation instead of evaluating once more. The laws are packed as the rows of one (6, n) float array R
# (Re c, Im c, Re p, Im p, Re pc, Im pc; level l in columns off[l-1]:off[l]), so that the sums over the nodes run as
# SIMD loops (_pole_sums). Used by the density and the Stieltjes transform.
VJIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})


@njit(**VJIT)
def _pole_sums(ur, ui, cr, ci, pr, pi_, qr, qi):
    """(Σ p_i/(c_i - u), Σ pc_i/(c_i - u)²) as four reals, u = ur + i·ui. Compiled with reassociation (the sums
    vectorise; they change only in rounding) and the numpy error model (a node hit exactly gives inf, which fails the
    caller's Newton, instead of an exception)."""
    s_re = 0.0
    s_im = 0.0
    t_re = 0.0
    t_im = 0.0
    for i in range(cr.shape[0]):
        zr = cr[i] - ur
        zi = ci[i] - ui
        den = 1.0 / (zr * zr + zi * zi)
        rr = zr * den  # 1/z = conj(z)/|z|²
        ri = -zi * den
        s_re += pr[i] * rr - pi_[i] * ri
        s_im += pr[i] * ri + pi_[i] * rr
        r2r = rr * rr - ri * ri
        r2i = 2.0 * rr * ri
        t_re += qr[i] * r2r - qi[i] * r2i
        t_im += qr[i] * r2i + qi[i] * r2r
    return s_re, s_im, t_re, t_im


@njit(**JIT)
def eta_poles(u, R, a, b):
    """η_ν(u) = ψ/(1+ψ) and dη/du from the pole form (columns a:b of R, see above)."""
    s_re, s_im, t_re, t_im = _pole_sums(u.real, u.imag, R[0, a:b], R[1, a:b], R[2, a:b], R[3, a:b], R[4, a:b],
                                        R[5, a:b])
    psi = u * complex(s_re, s_im)
    inv = 1.0 / (1.0 + psi)
    return psi * inv, complex(t_re, t_im) * inv * inv


@njit(**JIT)
def _invert_eta_poles(H, v, R, lo, hi, rtol):
    """Complex Newton for η_ν(v) = H from the guess v, as :func:`_invert_eta` (same steps, damping and stall rule)
    with the step tolerance ``rtol`` (NEWTON_RTOL for a chain that is to be accepted); returns (v, η' at the last
    evaluated point, converged)."""
    prev = math.inf
    de = 0.0 + 0.0j
    for it in range(NEWTON_MAXIT):
        e, de = eta_poles(v, R, lo, hi)
        if de == 0.0:
            return v, de, False
        step = (e - H) / de
        a = abs(step)
        if a > 0.5 * abs(v) and abs(v) > 0.0:
            step *= 0.5 * abs(v) / a
            a = abs(step)
        v = v - step
        if a <= rtol * abs(v) or (a >= 0.5 * prev and a <= STALL_RTOL * abs(v)):
            return v, de, True
        prev = a
    return v, de, False


@njit(**JIT)
def chain_up_poles(w1, s, R, off, gauss, v, dv, rtol):
    """:func:`chain_up` with the laws in pole form (``R``, columns packed like ``D``, ``P`` by ``off``); also
    fills ``dv[l] = dv_l/dw_1`` (the tangent of the inverse values, the predictor of a neighbouring point). ``rtol``:
    the inversions' step tolerance."""
    top = s.shape[0] - 1
    w = w1
    dw = 1.0 + 0.0j
    H = 0.0 + 0.0j
    dH = 0.0 + 0.0j
    status = 0
    for l in range(2, top + 1):
        sp = s[l - 1]
        r = 1.0 - sp / w
        Hn = 1.0 - (1.0 - H) * r
        dHn = dH * r - (1.0 - H) * sp / (w * w) * dw
        a, b = off[l - 1], off[l]
        vv, de, ok = _invert_eta_poles(Hn, v[l], R, a, b, rtol)
        if not ok:
            return w, dw, Hn, 1
        v[l] = vv
        dvl = dHn / de
        dv[l] = dvl
        if gauss[l]:
            u = (1.0 - Hn) * vv
            du = -dHn * vv + (1.0 - Hn) * dvl
        else:
            u = vv
            du = dvl
        wn = s[l] + w * Hn / u
        dw = (dw * Hn + w * dHn) / u - w * Hn * du / (u * u)
        w = wn
        H = Hn
        dH = dHn
        if w.imag < 0.0:
            status = 2
    return w, dw, H, status


@njit(**JIT)
def chain_solve_poles(target, w1, s, R, off, gauss, v, dv, maxit):
    """:func:`chain_solve` with the laws in pole form; also returns dw_{L+1}/dw_1 at the solution and leaves
    dv_l/dw_1 in ``dv`` (the predictor of the next point): (w_1, w_{L+1}, H_{L+1}, dw, status).

    Inexact Newton: while the top point is farther than LOOSE_SWITCH·scale from the target, the inversions stop at
    steps of LOOSE_RTOL (the Newton step on w_1 needs no more); the chain is accepted only from an evaluation with
    the full NEWTON_RTOL, under the same residual tests as :func:`chain_solve`."""
    vsave = v.copy()
    scale = abs(target) + s[s.shape[0] - 1]
    prev = math.inf
    tight = False
    for it in range(maxit):
        w, dw, H, st = chain_up_poles(w1, s, R, off, gauss, v, dv, NEWTON_RTOL if tight else LOOSE_RTOL)
        if st == 1 or dw == 0.0:
            v[:] = vsave
            return w1, w, H, dw, 1
        res = abs(w - target)
        if not tight:
            if res <= LOOSE_SWITCH * scale:
                tight = True
                if res <= CHAIN_RTOL * scale:
                    continue  # this point again, with the full tolerance
        elif res <= CHAIN_RTOL * scale or (res >= 0.5 * prev and res <= CHAIN_STALL * scale):
            return w1, w, H, dw, (0 if st == 0 else 2)
        else:
            prev = res
        step = (w - target) / dw
        a = abs(step)
        lim = 0.5 * abs(w1 - s[1])
        if a > lim:
            step *= lim / a
        w1n = w1 - step
        if w1n.imag <= 0.0:
            w1n = complex(w1n.real, 0.5 * w1.imag)
        w1 = w1n
    v[:] = vsave
    return w1, target, H, dw, 1
