"""Free-probability spectrum of the input-output Jacobian ``J = D_L W_L ⋯ D_1 W_1`` (THEORY §0, §2).

Sources: Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical isometry:
theory and practice" (NeurIPS: the S-transforms of WWᵀ and D², their product for JJᵀ, the mean χ_1^L and the variance of
the spectrum, Gaussian vs orthogonal weights); Pennington, Schoenholz & Ganguli 2018, "The emergence of spectral
universality in deep networks" (AISTATS: the master equations for M_{JJᵀ} with a general law of D², the moments from
the S-transform series, the Bernoulli (ReLU, hard-tanh) spectra). Atoms: Bercovici & Voiculescu 1993, Belinschi 2003.
THEORY §2 writes the equations in the form used here.

Conventions where they bite (THEORY §2, "The power-series convention ψ(z) = Σ m_k z^k gives a different-looking S: do
not mix them"):

* ``G(z) = ∫ρ(t)/(z - t) dt``, ``ρ(λ) = -Im G(λ + i0)/π``, ``M(z) = zG(z) - 1 = Σ_k m_k z^{-k}``,
  ``S(z) = (1 + z)/(z M^{-1}(z))``, and for free factors ``S_{JJᵀ} = Π_l S_{W_lW_lᵀ} S_{D_l²}``.
* ``S_{WWᵀ} = 1/(σ_w²(1 + z))`` (Gaussian) or ``σ_w^{-2}`` (orthogonal); σ_w is a standard deviation.
* ``D_l² = diag φ'(h^l)²`` with ``h^l ~ N(0, q^l)``: ``M_{D²}(y) = E_q[φ'²/(y - φ'²)]``. The law of φ'² is exact where
  φ' is piecewise constant (ReLU, hard-tanh, leaky ReLU, linear: atoms with their Gaussian masses); elsewhere it is a
  composite Gauss–Legendre rule (panels of :mod:`meanfield._quad`, split at the kinks and graded geometrically around
  the stationary points of φ'², where its law has inverse-square-root singularities) for moments and edges, and the
  same integral along a contour deformed into the complex plane for the density (see the comment above
  :data:`CONTOUR_KAPPA`). The rules cover |u| ≤ 9√q (Gaussian mass 2e-19 dropped): the law's support, hence
  ``support``, is that of the truncated Gaussian.
* ``depth`` L counts the D·W pairs (Pennington's L). Every layer sits at the fixed point q* by default; with ``q0`` the
  layers follow the length map from ``q^0 = q0`` (THEORY §1) and ``S_{JJᵀ} = Π_l S_{W_lW_lᵀ} S_{D_l²}`` with each
  layer's own law (layers whose q^l agree to 1e-13 share one).

Everything is computed for the spectrum divided by its mean ``m_1 = Π_l σ_w² μ_1(q^l)`` (``χ_1^L`` at the fixed point)
and the laws of D² divided by their means; the scale is carried as ``log_mean``, so depth 10,000 neither overflows nor
underflows (``mean``/``moment``/``edge`` themselves are ``inf`` or ``0.0`` when they leave float64's range).
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from math import comb

import numpy as np

from meanfield import _quad
from meanfield import _spectra_kernels as _k
from meanfield._validate import as_array, choice, integer, nonnegative, positive
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, InvalidParameterError, NoFixedPointError, NumericalError
from meanfield.propagation import q_star
from meanfield.results import Result

__all__ = [
    "JacobianSpectrum",
    "jacobian_spectrum",
    "fuss_catalan_moment",
    "fuss_catalan_edge",
    "fuss_catalan_density",
    "marchenko_pastur_density",
    "bernoulli_edge",
]

WEIGHTS = ("orthogonal", "gaussian")
MAX_MOMENT = 8  # exact moments m_1 … m_8 from the S-transform series
Z_MAX = _quad.Z_MAX  # the laws of φ'² are those of u = √q z with |z| ≤ Z_MAX
GRADE_MIN = 1e-4  # graded panels around stationary points of φ'² reach down to this width (in z = u/√q)
GRID = 2049  # sign scan of (φ'²)' per piece when looking for stationary points
Q_TINY = 1e-200  # below this q^l the length map is linear to rounding (moments at Q_TINY, E φ² rescaled)
Q_CLUSTER_RTOL = 1e-13  # layers whose q^l agree to this (relative) share one law; the q-table is ~1e-12 accurate
EDGE_A_MAX = 30.0  # the edge search gives up on an interior minimum beyond m = e^30 (rounding: F' ~ 1/m²)
ATOM_GAP = 1e-6  # the continuous density is not resolved this close (relative) to a non-zero atom: reported 0
STOPPED_NOISE = 1e-6  # see density(): |Im m| ≤ STOPPED_NOISE |m| where the continuation stopped above the axis
THREADS = max(1, min(8, os.cpu_count() or 1))  # threads for density() on many points
# The previous construction (the whole trajectory by propagate, with its correlation map; every law's contour rule
# built up front), kept callable for the benchmarks' baseline rows; never set by the package.
_BASELINE = False
TAIL_FLOOR = 1e-15  # see density(): below this × the mean an unresolved point is the floor of the resolved tail
H_FACTOR = 10.0  # the continuation starts at Im z = H_FACTOR × max(1, normalised edge) (THEORY §2: "from λ + 10i")
_LOG_MAX = math.log(np.finfo(float).max)
_TINY = 1.0 / np.finfo(float).max  # 1/x is finite for x above this


def _readonly(a: np.ndarray) -> np.ndarray:
    """``a`` marked read-only: the core kernels call ``_quad.add_breaks`` with read-only kinks, and Numba compiles one
    version per array mutability, so passing the same kind here reuses theirs (cold start)."""
    a.setflags(write=False)
    return a


def _exp(x: float) -> float:
    """exp without OverflowError: inf beyond float64 (the log is always available)."""
    if x > _LOG_MAX:
        return math.inf
    return math.exp(x)


# ------------------------------------------------------------------------------------------------------ law of φ'²
# The density solver needs M_D(y) for y close to the law's support (Im y → 0 inside the bulk of JJᵀ: deep in the bulk
# |m| is large and arg y ≈ arg-angle of [-1, 0] seen from m is small). A real quadrature rule then sits next to the
# pole of φ'²/(y - φ'²) and loses all accuracy. The integral over each monotone piece of φ'² is therefore taken along
# a contour deformed into the complex u-plane, on the side away from the poles of Im y > 0 (the pole u* of
# g(u) = y moves by i Im y/g'(u*): below the axis where g decreases, above where it increases), pinned at the piece's
# ends (stationary points, kinks, the truncation). By Cauchy's theorem the integral is unchanged for Im y > 0 and its
# continuation to the real axis is the boundary value M_D(y + i0). g on the contour comes from the Chebyshev
# interpolant of its real values on each panel (no complex evaluation of φ' is needed); the contour is a polygon at
# height CONTOUR_KAPPA × the smaller adjacent panel half-width, so interpolation points stay inside a Bernstein
# ellipse of parameter ≈ 1.6 and a pole on the real axis is at least that far from every Gauss–Legendre segment.
CONTOUR_KAPPA = 0.6
CONTOUR_NODES = 32  # Gauss–Legendre nodes per contour segment (error ~ 1.8^-64 for a pole on the real axis)
CONTOUR_SAMPLES = 16  # Chebyshev samples of φ'² per panel for the interpolant
LOG_RTOL = 1e-5  # log φ'² is interpolated only where that reproduces φ'² to this (relative) between the samples
CONTOUR_GROWTH = 1e3  # … and where its continuation on the contour stays below this × the panel's largest value
_XC, _WC = np.polynomial.legendre.leggauss(CONTOUR_NODES)
# Chebyshev points of the first kind (interior: a panel's ends can be kinks, where φ' takes the other side's value)
_THETA = np.pi * (np.arange(CONTOUR_SAMPLES) + 0.5) / CONTOUR_SAMPLES
_CHEB = np.cos(_THETA)
_BARY = (-1.0) ** np.arange(CONTOUR_SAMPLES) * np.sin(_THETA)
_CHEB_MID = np.cos(np.pi * np.arange(1, CONTOUR_SAMPLES) / CONTOUR_SAMPLES)  # between the samples
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class _Law:
    """Law of ``φ'(u)²``, ``u ~ N(0, q)`` truncated at |u| ≤ Z_MAX√q: atoms plus weighted node lists."""

    q: float
    atom_vals: np.ndarray  # values of φ'² on pieces where φ' is constant
    atom_mass: np.ndarray  # their exact Gaussian masses
    node_vals: np.ndarray  # continuous part, real rule: φ'(u_i)² at the nodes (moments, edges)
    node_wts: np.ndarray
    cnode_vals: np.ndarray  # continuous part, deformed contour: complex φ'² and weights (density solver)
    cnode_wts: np.ndarray
    top: float  # largest value of the (truncated) law
    bottom: float  # smallest value
    raw_moments: np.ndarray  # E[φ'^{2k}], k = 0..MAX_MOMENT
    rel_var: float  # Var(φ'²)/μ_1², computed centred
    zero_mass: float  # P(φ'² = 0): the atom at 0 plus where φ'² rounds to 0 (saturated tails, see _resolved_part)
    pieces: tuple = ()  # monotone pieces (u_a, u_b) of the continuous part (u ≥ 0 only when ``mirror``)
    mirror: bool = False  # φ'² even: only u ≥ 0 is represented, with doubled weights
    bottom_positive: float = 0.0  # smallest non-zero value (the left end of the support of M_D's poles)
    cont_bottom: float = 0.0  # smallest value of the continuous part (0 where φ' has a zero inside a piece)
    zeros: tuple = ()  # ends of monotone pieces where φ' vanishes (sign change, GELU/SiLU): φ'² = 0 there exactly

    @property
    def mean(self) -> float:
        return float(self.raw_moments[1])

    @property
    def is_point(self) -> bool:
        return self.node_vals.size == 0 and self.atom_vals.size == 1


def _g(act, u):
    return act.dphi(u) ** 2


def _gprime_sign(act, u):
    return np.sign(act.dphi(u) * act.d2phi(u))


def _stationary_points(act, a, b):
    """Zeros of (φ'²)' = 2φ'φ'' in (a, b): sign changes on GRID points, refined by bisection.

    Exact zeros of the sign are skipped when scanning (φ' rounds to 0 where φ saturates, e.g. tanh beyond |u| ≈ 19),
    so only changes between non-zero signs count; an exact zero between opposite signs is found by the bisection.
    """
    u = np.linspace(a, b, GRID)[1:-1]
    s = _gprime_sign(act, u)
    nz = np.nonzero(s)[0]
    idx = nz[:-1][s[nz[:-1]] * s[nz[1:]] < 0]
    nxt = nz[1:][s[nz[:-1]] * s[nz[1:]] < 0]
    out = []
    if idx.size:
        lo, hi = u[idx].copy(), u[nxt].copy()
        slo = s[idx]
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            sm = _gprime_sign(act, mid)
            zero = sm == 0.0
            lo = np.where(zero, mid, np.where(sm == slo, mid, lo))
            hi = np.where(zero, mid, np.where(sm == slo, hi, mid))
        out.extend(0.5 * (lo + hi))
    return sorted(out)


def _pieces(act, U):
    """Pieces of [-U, U] between kinks: list of (a, b, constant?)."""
    kinks = [k for k in act.kinks if -U < k < U]
    bounds = [-U, *kinks, U]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        t = a + (b - a) * np.array([0.03, 0.2, 0.41, 0.5, 0.67, 0.85, 0.97])
        # φ'' = 0 at every probe is not enough: where φ saturates it rounds to 0 too (tanh on [-9√q, 9√q] for q > 139:
        # every probe but u = 0, where tanh'' = 0, lies beyond |u| = 19), so φ' must also take one value
        d1 = act.dphi(t)
        const = bool(np.all(act.d2phi(t) == 0.0) and np.all(d1 == d1[0]))
        out.append((a, b, const))
    return out


def _piece_mass(a, b, sq):
    """Gaussian mass of the u-interval (a, b) for u ~ N(0, sq²), accurate in both tails."""
    from scipy import special  # imported on use: it costs ~0.2 s at import time

    za, zb = a / sq, b / sq
    if za >= 0.0:
        return float(special.ndtr(-za) - special.ndtr(-zb))
    return float(special.ndtr(zb) - special.ndtr(za))


def _is_even(act, U):
    """φ'² even (tanh, erf, hard-tanh, …): then only u ≥ 0 is integrated, with doubled weights."""
    k = np.sort(np.asarray(act.kinks, dtype=np.float64))
    if k.size and not np.array_equal(k, np.sort(-k)):
        return False
    u = U * np.linspace(0.013, 1.0, 41)
    g1, g2 = _g(act, u), _g(act, -u)
    return bool(np.all(np.abs(g1 - g2) <= 1e-15 * np.maximum(np.abs(g1), 1e-300)))


RATIO_MAX = 2.0 * (1.0 + 1e-9)


def _limit_ratio(brs):
    """Split panels until neighbouring widths differ by at most a factor 2 (the contour heights follow the widths), for
    the breakpoint lists ``brs`` of many pieces at once (panels neighbour only within a piece): flat breakpoints and
    their piece numbers."""
    v = np.concatenate([np.asarray(br, dtype=np.float64) for br in brs])
    g = np.repeat(np.arange(len(brs)), [len(br) for br in brs])
    for _ in range(60):
        w = v[1:] - v[:-1]
        ok = g[1:] == g[:-1]  # a panel of a piece (not the gap between two pieces)
        # a ratio of 2 to rounding is within the limit (halving a panel makes such ratios; deciding them by the
        # last bit made the rule's size, and the density's cost, jump between neighbouring q)
        split = np.zeros(w.size, dtype=bool)
        nb = ok[1:] & ok[:-1]  # panels i, i + 1 neighbours
        split[1:] |= nb & (w[1:] > RATIO_MAX * w[:-1])
        split[:-1] |= nb & (w[:-1] > RATIO_MAX * w[1:])
        if not np.any(split):
            break
        v = np.concatenate((v, 0.5 * (v[:-1] + v[1:])[split]))
        g = np.concatenate((g, g[:-1][split]))
        order = np.lexsort((v, g))
        v, g = v[order], g[order]
    return v, g


def _real_rule(panels):
    """Gauss–Legendre (16 nodes/panel) on z-panels (a, b), standard normal density included."""
    a, b = panels[:, 0:1], panels[:, 1:2]
    h = 0.5 * (b - a)
    z = 0.5 * (a + b) + h * _quad.X16
    w = h * _quad.W16 * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return z.ravel(), w.ravel()


def _contour_rule(act, sq, br, sigma):
    """Complex rule for one monotone piece with z-breakpoints ``br`` (ends pinned), deformed towards ``sigma``·i.

    Returns (values of φ'² on the contour, weights ``w_GL · dξ · N(ξ)``) so that Σ w F(v) ≈ ∫ F(φ'(√q z)²) dN(z) for
    F analytic away from the poles of Im y ≥ 0 (see the comment above :data:`CONTOUR_KAPPA`).
    """
    h, c, mid, half, _ = _contour_panels([br], [sigma])
    vals, wts = _contour_eval(act, np.full(h.size, sq), h, c, mid, half)
    return vals.ravel(), wts.ravel()


def _contour_panels(brs, sigmas):
    """The panels of :func:`_contour_rule` for the pieces with breakpoints ``brs`` deformed towards ``sigmas``·i
    (stacked): half-widths h, centres c, the contour segments' mid-points and half-vectors (complex), and each
    piece's number of panels."""
    v, g = _limit_ratio(brs)
    ok = g[1:] == g[:-1]
    h = 0.5 * (v[1:] - v[:-1])
    c = 0.5 * (v[:-1] + v[1:])
    s = np.zeros(v.size)
    inner = np.zeros(v.size, dtype=bool)
    inner[1:-1] = ok[:-1] & ok[1:]
    s[1:-1] = CONTOUR_KAPPA * np.minimum(h[:-1], h[1:])
    s[~inner] = 0.0
    sig = np.asarray(sigmas, dtype=np.float64)[g[:-1]]
    pa = v[:-1] + 1j * (sig * s[:-1])
    pb = v[1:] + 1j * (sig * s[1:])
    h, c, pa, pb = h[ok], c[ok], pa[ok], pb[ok]
    return h, c, 0.5 * (pa + pb), 0.5 * (pb - pa), np.bincount(g[:-1][ok], minlength=len(brs))


def _contour_eval(act, sq, h, c, mid, half):
    """Values of φ'² on the contour and the weights, (P, CONTOUR_NODES) each, for P panels (row by row: panels of
    many pieces and laws may be stacked, ``sq`` per panel).

    The barycentric terms at the fixed points _CHEB_MID are computed once; on the contour the interpolation is one
    (CONTOUR_NODES, 16) matrix per distinct standardised segment (see :func:`_contour_interp`), applied with real
    multiply-adds.
    """
    xi = mid[:, None] + half[:, None] * _XC  # (P, n) contour points (z units)
    samples = _g(act, sq[:, None] * (c[:, None] + h[:, None] * _CHEB))  # (P, n_s) real values on the panels
    # interpolate φ'² or log φ'², whichever reproduces φ'² better between the samples: log φ'² where φ'² spans decades
    # (Gaussian-like tails, e.g. erf: log φ'² is a quadratic), φ'² itself next to its zeros (GELU, SiLU).
    # log φ'² only where it is resolved (relative error ≤ LOG_RTOL between the samples): where φ' is a difference of
    # O(1) numbers that cancel to the rounding level (1 - tanh² beyond |u| ≈ 15, GELU's Φ(u) + uφ(u) and SiLU's
    # σ + uσ(1 - σ) far out, the logistic's σ(1 - σ)), the samples of φ'² are rounding noise (steps of ~1e-32, relative
    # errors 1e-4 … 1); the polynomial through the logs of such a staircase swings by hundreds on the contour and
    # exp overflows. There φ'² is not resolved either way; its linear interpolant stays within a small multiple of the
    # samples (≲ 1e-20: no weight in M_D at any y the solvers reach).
    check = _g(act, sq[:, None] * (c[:, None] + h[:, None] * _CHEB_MID))
    scale = np.maximum(np.max(np.abs(samples), axis=1), np.max(np.abs(check), axis=1))
    positive = np.all(samples > 0.0, axis=1)
    logs = np.log(np.where(samples > 0.0, samples, 1.0))
    # at _CHEB_MID by the direct barycentric sums (the same operations as ever, hence the same decisions below: where
    # err_log ≈ err_lin the two interpolants differ by up to ~1e-7 relative on the contour, so a decision flipped by
    # rounding would change the rule)
    err_lin = np.max(np.abs((_INV_MID * samples[:, None, :]).sum(axis=2) / _INV_MID_SUM - check), axis=1)
    log_mid = (_INV_MID * logs[:, None, :]).sum(axis=2) / _INV_MID_SUM
    # exp only where it cannot overflow (the log interpolant of a positive panel between its samples); else err = inf
    safe = positive & np.all(log_mid < _LOG_MAX, axis=1)
    err_log = np.full(samples.shape[0], np.inf)
    if np.any(safe):
        err_log[safe] = np.max(np.abs(np.exp(log_mid[safe]) - check[safe]), axis=1)
    use_log = safe & (err_log < err_lin) & (err_log <= LOG_RTOL * scale)
    vals = _contour_interp(samples, logs, use_log, scale, h, c, mid, half)
    wts = _WC * half[:, None] * _INV_SQRT_2PI * np.exp(-0.5 * xi * xi)
    return vals, wts


def _bary_matrix(x):
    """Barycentric (second kind) interpolation matrices L (…, k, n_s) from the Chebyshev samples at points x (…, k):
    f(x) ≈ L(x) @ f(_CHEB), L_j = (β_j/(x - x_j)) / Σ_k β_k/(x - x_k) (Berrut & Trefethen, SIAM Rev. 46 (2004),
    eq. 4.2)."""
    inv = _BARY / (x[..., None] - _CHEB)
    return inv / inv.sum(axis=-1, keepdims=True)


_INV_MID = _BARY / (_CHEB_MID[:, None] - _CHEB)  # (n_s - 1, n_s): the barycentric terms at _CHEB_MID
_INV_MID_SUM = _INV_MID.sum(axis=1)
BARY_GROUPS_MAX = 0.125  # above this many distinct segment kinds per panel: the matrices gathered per panel
BARY_ROWS = 256  # panels per product (the temporaries stay in cache)


def _bary_apply(f, B):
    """f @ B row by row as 16 multiply-adds in a fixed order (no BLAS: its rounding depends on a row's position in the
    block, so a law's rule would depend on which other laws it was stacked with). f (m, n_s); B (n_s, k) or
    (m, n_s, k)."""
    acc = f[:, 0, None] * B[..., 0, :]
    tmp = np.empty_like(acc)
    for j in range(1, CONTOUR_SAMPLES):
        acc += np.multiply(f[:, j, None], B[..., j, :], out=tmp)
    return acc


def _contour_interp(samples, logs, use_log, scale, h, c, mid, half):
    """φ'² at the contour points x = (ξ - c)/h, ξ = mid + half·_XC: exp of the interpolant of log φ'² on the panels
    ``use_log`` where that stays within CONTOUR_GROWTH × the panel's ``scale``, the interpolant of φ'² elsewhere (only
    where it is used).

    x = (mid - c)/h + (half/h)·_XC depends on the panel only through these four ratios: one interpolation matrix per
    distinct x (a few dozen kinds among thousands of panels: the contour heights are CONTOUR_KAPPA × a neighbouring
    half-width, and neighbouring widths mostly differ by factors 1 or 2), applied with real arithmetic. (Formed as
    (ξ - c)/h from the rounded ξ, as the direct sums did, x carries a rounding error of ~1e-16 |c|/h; the values
    differ from those sums' by the interpolant's own rounding on the contour, ≲ 1e-9 relative.) Each panel's values
    come from the same operations whatever it is stacked with."""
    P = h.size
    n = CONTOUR_NODES
    key = np.empty((P, 4))
    key[:, 0] = (mid.real - c) / h
    key[:, 1] = mid.imag / h
    key[:, 2] = half.real / h
    key[:, 3] = half.imag / h
    kinds, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    x = (kinds[:, 0:1] + 1j * kinds[:, 1:2]) + (kinds[:, 2:3] + 1j * kinds[:, 3:4]) * _XC  # (K, n)
    L = _bary_matrix(x)  # (K, n, n_s)
    LR = np.concatenate([L.real, L.imag], axis=1).transpose(0, 2, 1).copy()  # (K, n_s, 2n): f @ LR[k] = Re | Im
    out = np.zeros((P, 2 * n))
    if kinds.shape[0] > BARY_GROUPS_MAX * P:
        chunks = [(np.arange(lo, min(P, lo + BARY_ROWS)), None) for lo in range(0, P, BARY_ROWS)]
    else:
        order = np.argsort(inv, kind="stable")
        ends = np.searchsorted(inv[order], np.arange(1, kinds.shape[0] + 1))
        starts = np.r_[0, ends[:-1]]
        chunks = [(order[lo : min(e, lo + BARY_ROWS)], k) for k, (s0, e) in enumerate(zip(starts, ends))
                  for lo in range(s0, e, BARY_ROWS)]

    def apply(f, sel):  # out[r] = f[r] @ LR for the rows r with sel[r]
        for rows, k in chunks:
            r = rows[sel[rows]]
            if r.size:
                out[r] = _bary_apply(f[r], LR[k] if k is not None else LR[inv[r]])

    exp_rows = np.zeros(0, dtype=np.intp)
    if np.any(use_log):
        apply(logs, use_log)
        log_c = out[use_log, :n] + 1j * out[use_log, n:]
        # a resolved panel's continuation stays within a few times its values (≤ 7 measured); a larger swing on the
        # contour means the log interpolant is not the analytic continuation: keep the linear one there
        ok = np.all(log_c.real <= np.log(CONTOUR_GROWTH * scale[use_log])[:, None], axis=1)
        exp_rows = np.nonzero(use_log)[0][ok]
        exp_vals = np.exp(log_c[ok])
    lin = np.ones(P, dtype=bool)
    lin[exp_rows] = False
    apply(samples, lin)
    vals = out[:, :n] + 1j * out[:, n:]
    if exp_rows.size:
        vals[exp_rows] = exp_vals
    return vals


def _contour_laws(acts, laws):
    """The laws with their deformed-contour rules (for the density solver): :func:`_d2_law` (``contour=True``) for
    each, except that the laws of one activation without kinks, atoms or mass at 0 (the common case of a chain of
    per-layer laws) get theirs from one stacked :func:`_contour_eval` (the same panels, row by row: bitwise the rules
    of :func:`_d2_law`)."""
    out = [None] * len(laws)
    by_act: dict = {}
    for i, (a, law) in enumerate(zip(acts, laws)):
        if (not _BASELINE and not len(a.kinks) and law.q > 0.0 and law.atom_vals.size == 0 and law.zero_mass == 0.0
                and law.pieces):
            by_act.setdefault(a, []).append(i)
    buf = np.empty(_quad.MAX_BREAKS)
    empty_kinks = _readonly(np.zeros(0))
    for act, idx in by_act.items():
        if len(idx) < BATCH_MIN:
            continue
        brs, sigmas, sqs, factors, owner = [], [], [], [], []  # per (law, piece)
        for i in idx:
            law = laws[i]
            sq = math.sqrt(law.q)
            nb = _quad.add_breaks(0.0, sq, empty_kinks, buf, 0)
            for cz in sorted({e / sq for piece in law.pieces for e in piece}):
                if abs(cz) < Z_MAX * (1.0 - 1e-12) and nb < _quad.MAX_BREAKS - 1:
                    buf[nb] = cz
                    nb = _quad.add_kink_grading(cz, GRADE_MIN, buf, nb + 1)
            nb = _quad.sort_unique(buf, nb)
            br_all = buf[:nb].copy()
            for a, b in law.pieces:
                za, zb = a / sq, b / sq
                brs.append(np.concatenate(([za], br_all[(br_all > za + 1e-13 * (1 + abs(za)))
                                                         & (br_all < zb - 1e-13 * (1 + abs(zb)))], [zb])))
                sigmas.append(0.5 * (a + b))
                sqs.append(sq)
                factors.append(2.0 if law.mirror else 1.0)
                owner.append(i)
        sigma = -_gprime_sign(act, np.asarray(sigmas))  # contour moves up where φ'² decreases
        H, C, MID, HALF, counts = _contour_panels(brs, np.where(sigma != 0.0, sigma, 1.0))
        SQ = np.repeat(np.asarray(sqs), counts)
        vals = np.empty((H.size, CONTOUR_NODES), complex)
        wts = np.empty((H.size, CONTOUR_NODES), complex)
        for lo in range(0, H.size, CONTOUR_CHUNK):  # chunks: the interpolation's temporaries stay in cache
            sl = slice(lo, lo + CONTOUR_CHUNK)
            vals[sl], wts[sl] = _contour_eval(act, SQ[sl], H[sl], C[sl], MID[sl], HALF[sl])
        start = 0
        parts: dict = {}
        for cnt, factor, i in zip(counts, factors, owner):
            v = vals[start : start + cnt].ravel()
            w = factor * wts[start : start + cnt].ravel()
            start += cnt
            parts.setdefault(i, []).append((v, w))
        for i, pl in parts.items():
            out[i] = dataclasses.replace(laws[i], cnode_vals=np.concatenate([v for v, _ in pl]),
                                         cnode_wts=np.concatenate([w for _, w in pl]))
    return [law if law is not None else _d2_law(a, old.q) for law, a, old in zip(out, acts, laws)]


def _d2_law(act, q: float, contour: bool = True) -> _Law:
    """The law of φ'(u)², u ~ N(0, q), as atoms (constant pieces of φ') plus quadrature nodes (the rest).

    ``contour=False`` leaves out the deformed-contour rule (``cnode_vals``/``cnode_wts`` empty): moments and edges
    need only the real rule, and the contour takes most of the time.
    """
    empty = np.zeros(0)
    cempty = np.zeros(0, complex)
    if q == 0.0:
        # limit q → 0+: the one-sided slopes at 0, each with mass 1/2 (a kink at 0), else φ'(0)²
        left, right = float(act.dphi(-1e-300)) ** 2, float(act.dphi(1e-300)) ** 2
        vals = np.array([left, right]) if left != right else np.array([right])
        mass = np.full(vals.size, 1.0 / vals.size)
        return _law_from_parts(act, 0.0, vals, mass, empty, empty, cempty, cempty, (), False)
    sq = math.sqrt(q)
    U = Z_MAX * sq
    pieces = _pieces(act, U)
    # atoms: constant pieces, with their full-line Gaussian masses
    atoms: dict[float, float] = {}
    for i, (a, b, const) in enumerate(pieces):
        if const:
            lo = -math.inf if i == 0 else a
            hi = math.inf if i == len(pieces) - 1 else b
            v = float(act.dphi(0.5 * (a + b))) ** 2
            atoms[v] = atoms.get(v, 0.0) + _piece_mass(lo, hi, sq)
    avals = np.array(sorted(atoms), dtype=np.float64)
    amass = np.array([atoms[v] for v in avals], dtype=np.float64)
    mirror = _is_even(act, U)
    u_lo = 0.0 if mirror else -U
    nonconst = [(max(a, u_lo), b) for a, b, c in pieces if not c and b > u_lo]
    if not nonconst:
        return _law_from_parts(act, q, avals, amass, empty, empty, cempty, cempty, (), False)
    # monotone pieces: the non-constant pieces split at the stationary points of φ'²
    mono = []
    zeros = []
    rounded = []  # u-intervals where φ'² rounds to 0 (saturated tails): counted as mass at 0, not integrated
    for a, b in nonconst:
        stat = [c for c in _stationary_points(act, a, b) if a < c < b]
        cuts = [a, *stat, b]
        zeros.extend(_zeros_of_dphi(act, a, b, stat))
        for pa, pb in zip(cuts[:-1], cuts[1:]):
            kept, lost = _resolved_part(act, pa, pb)
            if kept is not None:
                mono.append(kept)
            rounded.extend(lost)
    # breakpoints in z: the Gaussian's and φ's scales (meanfield._quad), graded towards every pinned end
    buf = np.empty(_quad.MAX_BREAKS)
    n = _quad.add_breaks(0.0, sq, _readonly(np.array(act.kinks, dtype=np.float64)), buf, 0)
    # (not the truncation ends ±U: as e/√q they are ±Z_MAX only to rounding, and a grading there, where the Gaussian
    # has no mass, would only add panels; whether it did hinged on the last bit of q)
    ends = sorted({e / sq for piece in mono for e in piece})
    for cz in ends:
        if abs(cz) < Z_MAX * (1.0 - 1e-12) and n < _quad.MAX_BREAKS - 1:
            buf[n] = cz
            n = _quad.add_kink_grading(cz, GRADE_MIN, buf, n + 1)

    n = _quad.sort_unique(buf, n)
    br_all = buf[:n]
    factor = 2.0 if mirror else 1.0
    rz, rw, cz_, cw_ = [], [], [], []
    for a, b in mono:
        za, zb = a / sq, b / sq
        br = np.r_[za, br_all[(br_all > za + 1e-13 * (1 + abs(za))) & (br_all < zb - 1e-13 * (1 + abs(zb)))], zb]
        z, w = _real_rule(np.column_stack([br[:-1], br[1:]]))
        rz.append(z)
        rw.append(factor * w)
        sigma = -float(_gprime_sign(act, np.array([0.5 * (a + b)]))[0])  # contour moves up where φ'² decreases
        if contour:
            v, w = _contour_rule(act, sq, br, sigma if sigma != 0.0 else 1.0)
            cz_.append(v)
            cw_.append(factor * w)
    g = _g(act, sq * np.concatenate(rz)) if rz else np.zeros(0)
    if not np.all(np.isfinite(g)):
        raise NumericalError(f"{act.name}: φ'(u)² is not finite for |u| ≤ {U:.3g} (q = {q:.6g})")
    rw = np.concatenate(rw) if rw else np.zeros(0)
    if rounded:
        # one node at 0 with the exact Gaussian mass of the rounded intervals, in both rules (the contour is pinned at
        # their ends, so the contour rule's weights still sum to the resolved part's real mass: M_D(∞) = -1 stays
        # exact, and P(φ'² = 0) means the same for the real axis and the contour)
        lost = factor * sum(_piece_mass(ra, rb, sq) for ra, rb in rounded)
        g, rw = np.r_[g, 0.0], np.r_[rw, lost]
        if contour:
            cz_.append(np.zeros(1, complex))
            cw_.append(np.full(1, lost, complex))
    vals, inv = np.unique(g, return_inverse=True)
    wts = np.bincount(inv, weights=rw)
    cvals = np.concatenate(cz_) if cz_ else np.zeros(0, complex)
    cwts = np.concatenate(cw_) if cw_ else np.zeros(0, complex)
    return _law_from_parts(act, q, avals, amass, vals, wts, cvals, cwts, tuple(mono), mirror, tuple(zeros))


CONTOUR_CHUNK = 2048  # panels per stacked evaluation of the contour rules (_contour_laws)
BATCH_MIN = 8  # _d2_laws builds the real rules of this many laws of one activation or more together


def _d2_laws(acts, qs, contour=False):
    """The laws of φ_g'² at q_g for the groups g (real rules only unless ``contour``): :func:`_d2_law` for each, the
    real rules of many laws of one smooth activation built together (:func:`_d2_laws_batch`)."""
    out = [None] * len(qs)
    if not contour and not _BASELINE:
        by_act: dict = {}
        for i, a in enumerate(acts):
            by_act.setdefault(a, []).append(i)
        for a, idx in by_act.items():
            if len(idx) >= BATCH_MIN and not len(a.kinks):
                for i, law in zip(idx, _d2_laws_batch(a, [qs[i] for i in idx])):
                    out[i] = law
    return [law if law is not None else _d2_law(a, q, contour=contour) for law, a, q in zip(out, acts, qs)]


def _d2_laws_batch(act, qs):
    """:func:`_d2_law` (real rule) for many q of one activation without kinks, the same steps with the activation's
    evaluations and the Gauss–Legendre rules done once for all of them. A law that needs more than the common case
    — q = 0, a constant piece, a stationary point of φ'² or φ'² rounding to 0 inside the truncation — is left None
    for :func:`_d2_law`. Same nodes, weights and sums as :func:`_d2_law` (the tests check the laws agree)."""
    q = np.asarray(qs, dtype=np.float64)
    n = q.size
    out = [None] * n
    ok = q > 0.0
    sq = np.sqrt(np.where(ok, q, 1.0))
    U = Z_MAX * sq
    # _pieces: one piece [-U, U]; constant where φ'' = 0 and φ' takes one value at every probe
    probes = np.array([0.03, 0.2, 0.41, 0.5, 0.67, 0.85, 0.97])
    t = -U[:, None] + (2.0 * U)[:, None] * probes
    d1 = act.dphi(t)
    d2 = act.d2phi(t)
    const = np.all(d2 == 0.0, axis=1) & np.all(d1 == d1[:, :1], axis=1)
    ok &= ~const
    # _is_even
    u = U[:, None] * np.linspace(0.013, 1.0, 41)
    g1, g2 = _g(act, u), _g(act, -u)
    mirror = np.all(np.abs(g1 - g2) <= 1e-15 * np.maximum(np.abs(g1), 1e-300), axis=1)
    a = np.where(mirror, 0.0, -U)
    b = U
    # _stationary_points on (a, b): a sign change of (φ'²)' sends the law to _d2_law. One scan for all laws, over the
    # union of their intervals at the finest of their grid spacings ((b - a)/(GRID - 1)); a change whose bracket
    # overlaps a law's (a, b) counts for it (conservative: _d2_law then scans its own grid)
    if np.any(ok):
        lo, hi = float(a[ok].min()), float(b[ok].max())
        spacing = float(((b - a)[ok]).min()) / (GRID - 1)
        npts = int(min(max(math.ceil((hi - lo) / spacing) + 1, GRID), 64 * GRID))
        ug = np.linspace(lo, hi, npts)
        us = _gprime_sign(act, ug)
        nz = np.nonzero(us)[0]
        ch = nz[:-1][us[nz[:-1]] * us[nz[1:]] < 0]
        ch_next = nz[1:][us[nz[:-1]] * us[nz[1:]] < 0]
        if npts == 64 * GRID and (hi - lo) / (npts - 1) > spacing:
            ok[:] = False  # q spans too many decades for one scan: every law by _d2_law
        for left, right in zip(ug[ch], ug[ch_next]):
            ok &= ~((right > a) & (left < b))
    # _resolved_part: φ'² must not round to 0 at either end
    h = 1e-13 * (b - a)
    ends = _g(act, np.stack([a + h, b - h], axis=1))
    ok &= np.all(ends != 0.0, axis=1)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return out
    # breakpoints (as _d2_law) and the panels of every law, then one Gauss–Legendre rule and one evaluation of φ'²
    empty_kinks = _readonly(np.zeros(0))
    panels, owner = [], []
    buf = np.empty(_quad.MAX_BREAKS)
    for i in idx:
        nb = _quad.add_breaks(0.0, float(sq[i]), empty_kinks, buf, 0)
        for cz in sorted({float(a[i]) / sq[i], float(b[i]) / sq[i]}):
            if abs(cz) < Z_MAX * (1.0 - 1e-12) and nb < _quad.MAX_BREAKS - 1:
                buf[nb] = cz
                nb = _quad.add_kink_grading(cz, GRADE_MIN, buf, nb + 1)
        nb = _quad.sort_unique(buf, nb)
        br_all = buf[:nb]
        za, zb = a[i] / sq[i], b[i] / sq[i]
        br = np.r_[za, br_all[(br_all > za + 1e-13 * (1 + abs(za))) & (br_all < zb - 1e-13 * (1 + abs(zb)))], zb]
        panels.append(np.column_stack([br[:-1], br[1:]]))
        owner.append(np.full(br.size - 1, i))
    P = np.concatenate(panels)
    z, w = _real_rule(P)
    per = _quad.X16.size
    node_owner = np.repeat(np.concatenate(owner), per)
    g = _g(act, sq[node_owner] * z)
    w = np.where(mirror[node_owner], 2.0, 1.0) * w
    if not np.all(np.isfinite(g)):
        return out  # _d2_law raises with the law's q
    starts = np.searchsorted(node_owner, idx, side="left")
    stops = np.searchsorted(node_owner, idx, side="right")
    empty = np.zeros(0)
    cempty = np.zeros(0, complex)
    for k, i in enumerate(idx):
        gi, wi = g[starts[k] : stops[k]], w[starts[k] : stops[k]]
        vals, inv = np.unique(gi, return_inverse=True)
        wts = np.bincount(inv, weights=wi)
        out[i] = _law_from_parts(act, float(q[i]), empty, empty, vals, wts, cempty, cempty,
                                 ((float(a[i]), float(b[i])),), bool(mirror[i]), (), ends=ends[i])
    return out


def _resolved_part(act, a, b):
    """Split a monotone piece (a, b) of φ'² into the part where φ'² is resolved in float64 and the end where it rounds
    to exactly 0: returns ((a', b') or None, [rounded intervals]).

    Where φ saturates, φ' is the difference of two O(1) numbers and rounds to 0 (tanh: 1 - tanh(u)² = 0 for
    |u| ≥ 19.06, inside the truncation |u| ≤ 9√q once q > 4.5; 5.5 % of the Gaussian mass at q = 100; the logistic
    beyond u ≈ 37). Those nodes are not a piece of a continuous law one can interpolate or deform a contour through
    (every sample is 0): the interval is cut off at the first exact 0 (bisection; φ'² is monotone on the piece), and
    its mass is counted at 0 (``zero_mass``), as the real rule's zero nodes always were.
    """
    h = 1e-13 * (b - a)
    ga, gb = _g(act, np.array([a + h, b - h]))
    if ga != 0.0 and gb != 0.0:
        return (a, b), []
    if ga == 0.0 and gb == 0.0:
        return None, [(a, b)]
    zero_right = gb == 0.0
    lo, hi = a, b  # the boundary between φ'² > 0 and φ'² = 0 lies in (lo, hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if (float(_g(act, np.array([mid]))[0]) == 0.0) == zero_right:
            hi = mid
        else:
            lo = mid
    if zero_right:
        return ((a, hi), [(hi, b)]) if hi > a else (None, [(a, b)])
    return ((lo, b), [(a, lo)]) if lo < b else (None, [(a, b)])


def _zeros_of_dphi(act, a, b, stationary):
    """The stationary points of φ'² in (a, b) where φ' itself vanishes (changes sign, or is exactly 0 there).

    φ'² has a minimum of value 0 there: the law of φ'² reaches 0 with density ~ t^{-1/2} (GELU at u ≈ -0.7518, SiLU at
    u ≈ -1.2785), so it is not bounded away from 0 (E[1/φ'²] = ∞). The bisected stationary point is only located to
    rounding, where φ'² is ~1e-30 rather than 0: the sign test on either side decides.
    """
    out = []
    for c in stationary:
        d = 1e-9 * (b - a)
        lo, mid, hi = act.dphi(np.array([c - d, c, c + d]))
        if mid == 0.0 or lo * hi < 0.0:
            out.append(c)
    return out


def _law_from_parts(act, q, avals, amass, vals, wts, cvals, cwts, mono, mirror, zeros=(), ends=None) -> _Law:
    end_vals = []
    for a, b in mono:  # the ends of every monotone piece, nudged inside (one-sided values at kinks), 0 at zeros of φ'
        if ends is not None:  # one piece, its end values already evaluated (_d2_laws_batch)
            ga, gb = float(ends[0]), float(ends[1])
        else:
            h = 1e-13 * (b - a)
            ga, gb = _g(act, np.array([a + h, b - h]))
        end_vals.extend([0.0 if a in zeros else ga, 0.0 if b in zeros else gb])
    cont = np.concatenate([np.asarray(vals, dtype=np.float64), np.array(end_vals, dtype=np.float64)])
    ext = np.concatenate([np.asarray(avals, dtype=np.float64), cont])
    cont_bottom = float(cont.min()) if cont.size else math.inf
    top, bottom = float(ext.max()), float(ext.min())
    k = np.arange(MAX_MOMENT + 1)
    raw = (wts[:, None] * vals[:, None] ** k).sum(axis=0) + (amass[:, None] * avals[:, None] ** k).sum(axis=0)
    mu = raw[1]
    if not mu > 0.0:
        raise NumericalError(f"E[φ'²] = {mu!r} at q = {q!r}: the Jacobian vanishes (φ' = 0 almost everywhere)")
    rel_var = float((wts * (vals / mu - 1.0) ** 2).sum() + (amass * (avals / mu - 1.0) ** 2).sum())
    zero = float(amass[avals == 0.0].sum() + wts[vals == 0.0].sum())  # φ' rounding to 0 in saturated tails counts
    positive_min = float(ext[ext > 0.0].min()) if np.any(ext > 0.0) else 0.0
    return _Law(q, avals, amass, vals, wts, cvals, cwts, top, bottom, raw, rel_var, zero, mono, mirror, positive_min,
                cont_bottom, tuple(zeros))


# ------------------------------------------------------------------------------------------------------ power series
def _mul(a, b):
    return np.convolve(a, b)[: MAX_MOMENT + 1]


def _exp_series(x):
    """exp x for x[0] = 0."""
    out = np.zeros(MAX_MOMENT + 1)
    out[0] = 1.0
    pw = out.copy()
    for j in range(1, MAX_MOMENT + 1):
        pw = _mul(pw, x) / j
        out += pw
    return out


def _mul_rows(a, b):
    """Row-wise truncated products of the series in the rows of a and b (G, MAX_MOMENT + 1)."""
    K1 = MAX_MOMENT + 1
    c = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    for j in range(K1):
        c[:, j:] += a[:, j : j + 1] * b[:, : K1 - j]
    return c


def _log_s_transform_rows(raw):
    """Series of log S̃(m) for G laws divided by their means, ``S̃ = (1 + m) ψ^{-1}(m)/m`` with ψ(w) = Σ_k m_k w^k, from
    their raw moments E[φ'^{2k}] (rows of ``raw``, k = 0..8), each series operation vectorised over the laws (a chain
    of per-layer laws at depth 10,000 has ~900 of them). The inverse by Lagrange inversion: ``[x^n] ψ^{-1} =
    [w^{n-1}] r(w)^n / n`` with ``r(w) = w/ψ(w)``, the reciprocal of ψ(w)/w by its recurrence, and r^n by repeated
    products."""
    K = MAX_MOMENT
    G = raw.shape[0]
    mu = raw[:, 1:2]
    psi = np.zeros((G, K + 1))
    psi[:, 1:] = raw[:, 1:] / mu ** np.arange(1, K + 1)
    a = psi[:, 1:]  # ψ(w)/w
    r = np.zeros((G, K + 1))
    r[:, 0] = 1.0 / a[:, 0]
    for n in range(1, K):
        r[:, n] = -(a[:, 1 : n + 1] * r[:, n - 1 :: -1][:, :n]).sum(axis=1) / a[:, 0]
    inv = np.zeros((G, K + 1))
    pw = np.zeros((G, K + 1))
    pw[:, 0] = 1.0
    for n in range(1, K + 1):
        pw = _mul_rows(pw, r)
        inv[:, n] = pw[:, n - 1] / n
    one_p = np.zeros((1, K + 1))
    one_p[0, :2] = 1.0
    sh = np.zeros((G, K + 1))
    sh[:, :K] = inv[:, 1:]
    x = _mul_rows(one_p, sh)  # (1 + m) ψ^{-1}(m)/m
    x[:, 0] = 0.0
    out = np.zeros((G, K + 1))
    pw = np.zeros((G, K + 1))
    pw[:, 0] = 1.0
    for j in range(1, K + 1):
        pw = _mul_rows(pw, x)
        out += (-1.0) ** (j + 1) * pw / j
    return out


def _ngauss(gaussian, depth) -> float:
    """The number k of Gaussian weight matrices among the L layers, as the kernels take it (a float): a bool means all
    (L) or none (0) of them, a number is k itself."""
    if isinstance(gaussian, (bool, np.bool_)):
        return float(depth) if gaussian else 0.0
    return float(gaussian)


def _normalised_moments(laws, counts, depth, gaussian):
    """m̃_k = m_k/m_1^k, k = 1..8, by Lagrange inversion: m̃_k = [m^{k-1}] h(m)^k / k with h = (1 + m)/S̃_J(m).

    ``log h = (1 + k) log(1 + m) - Σ_g n_g log S̃_{D_g}(m)`` with k the number of Gaussian weight matrices (each
    S_{WWᵀ} = 1/(1 + m), normalised) (THEORY §2; Pennington et al. 2018, the moments from the S-transform).
    ``gaussian``: a bool (all or none of the L layers) or k.
    """
    log1p = np.zeros(MAX_MOMENT + 1)
    for j in range(1, MAX_MOMENT + 1):
        log1p[j] = (-1.0) ** (j + 1) / j
    logh = (1.0 + _ngauss(gaussian, depth)) * log1p
    raw = np.array([law.raw_moments for law in laws], dtype=np.float64)
    logh = logh - np.asarray(counts, dtype=np.float64) @ _log_s_transform_rows(raw)
    h = _exp_series(logh)
    out = np.empty(MAX_MOMENT)
    hk = np.zeros(MAX_MOMENT + 1)
    hk[0] = 1.0
    for k in range(1, MAX_MOMENT + 1):
        hk = _mul(hk, h)  # h^k = exp(k log h), truncated consistently
        out[k - 1] = hk[k - 1] / k
    return out


# ------------------------------------------------------------------------------------------------------ atoms
def _product_atoms(laws, counts, log_sw2, depth, gaussian, log_w=None):
    """Atoms of the free multiplicative convolution (Bercovici & Voiculescu 1993; Belinschi 2003).

    μ⊠ν has an atom at 0 of mass max(μ{0}, ν{0}), and one at ab ≠ 0 iff μ{a} + ν{b} > 1, of mass μ{a} + ν{b} - 1.
    A Gaussian WWᵀ (Marchenko–Pastur, ratio 1) has no atoms, so only the atom at 0 survives there; an orthogonal one
    is the point mass σ_w². ``log_w``: Σ_l log (σ_w^l)² where the layers' σ_w differ (default L log σ_w²);
    ``gaussian``: a bool or the number of Gaussian layers (any one removes every atom but 0).
    """
    zero = max(float(law.atom_mass[law.atom_vals == 0.0].sum()) for law in laws)  # genuine atoms only
    out = []
    if zero > 0.0:
        out.append((0.0, float(zero)))
    if _ngauss(gaussian, depth) > 0.0:
        return out
    choices = []  # per group: [(log a, deficit 1 - μ{a})], most massive first
    for law in laws:
        nz = [(math.log(v), 1.0 - m) for v, m in zip(law.atom_vals, law.atom_mass) if v > 0.0]
        choices.append(sorted(nz, key=lambda t: t[1]))
    found: list[tuple[float, float]] = []

    def rec(g, log_loc, deficit):
        if deficit >= 1.0 - 1e-14:
            return
        if g == len(laws):
            found.append((log_loc, 1.0 - deficit))
            return
        opts, n = choices[g], counts[g]
        if not opts:
            return

        def compose(j, left, log_loc, deficit):  # distribute the `left` layers of group g over atoms j, j+1, …
            if deficit >= 1.0 - 1e-14:
                return
            if j == len(opts) - 1:
                la, d = opts[j]
                rec(g + 1, log_loc + left * la, deficit + left * d)
                return
            la, d = opts[j]
            for kk in range(left, -1, -1):
                if deficit + kk * d >= 1.0 - 1e-14 and kk > 0:
                    continue
                compose(j + 1, left - kk, log_loc + kk * la, deficit + kk * d)

        compose(0, n, log_loc, deficit)

    rec(0, depth * log_sw2 if log_w is None else log_w, 0.0)
    for log_loc, mass in sorted(found):
        out.append((_exp(log_loc), float(mass)))
    return out


# ------------------------------------------------------------------------------------------------------ push-forward
def _pushforward_density(act, law: _Law, t):
    """Density of φ'(u)², u ~ N(0, q) (its continuous part) at t [array], by the change of variables
    ``ρ(t) = Σ_{u: φ'(u)² = t} N(u; 0, q)/|(φ'²)'(u)|`` over the monotone pieces."""
    out = np.zeros_like(t)
    sq = math.sqrt(law.q)
    for a, b in law.pieces:
        h = 1e-13 * (b - a)
        ga, gb = _g(act, np.array([a + h, b - h]))
        lo_v, hi_v = min(ga, gb), max(ga, gb)
        sel = (t > lo_v) & (t < hi_v)
        if not np.any(sel) or ga == gb:
            continue
        tt = t[sel]
        ua = np.full(tt.shape, a)
        ub = np.full(tt.shape, b)
        inc = gb > ga
        for _ in range(64):
            mid = 0.5 * (ua + ub)
            below = (_g(act, mid) < tt) == inc
            ua = np.where(below, mid, ua)
            ub = np.where(below, ub, mid)
        u = 0.5 * (ua + ub)
        gp = np.abs(2.0 * act.dphi(u) * act.d2phi(u))
        pdf = np.exp(-0.5 * (u / sq) ** 2) / (sq * math.sqrt(2.0 * math.pi))
        with np.errstate(divide="ignore"):
            out[sel] += np.where(gp > 0.0, pdf / gp, 0.0)
    return 2.0 * out if law.mirror else out


# ------------------------------------------------------------------------------------------------------ the result
@dataclass(frozen=True, eq=False)
class JacobianSpectrum(Result):
    """Spectrum of JJᵀ for ``J = D_L W_L ⋯ D_1 W_1`` in the large-width limit (THEORY §2).

    Attributes
    ----------
    activation, sigma_w, sigma_b, depth, weights : the network (σ_w, σ_b standard deviations; ``depth`` = L pairs D·W);
        for a :class:`~meanfield.Network`, :meth:`~meanfield.Network.summary` (NaN / joined names / "mixed" where the
        layers differ).
    q : q^l, l = 1..L, the pre-activation variance of each layer (all q* by default).
    log_mean : log m_1 = Σ_l log(σ_w² μ_1(q^l)) (= L log χ_1 at the fixed point); finite at any depth.
    mean : m_1 = Π_l σ_w² μ_1(q^l) = χ_1^L at the fixed point (Pennington et al. 2017); ``inf`` beyond float64.
    variance : σ²_{JJᵀ} = m_1² [Σ_l (μ_2/μ_1² - 1) + k] with k the number of Gaussian layers (L or 0 in the uniform
        call; each Gaussian W adds the Marchenko–Pastur variance 1)
        (THEORY §2; Pennington et al. 2017, 2018).
    edge : largest eigenvalue of JJᵀ: the square-root edge ``min_{m>0} M_J^{-1}(m)`` (THEORY §2), or, when that
        infimum sits at m → ∞ (orthogonal weights), σ_w^{2L} Π_l max φ'², a hard edge or an atom (``edge_kind``).
    log_edge : log of ``edge``.
    edge_kind : "sqrt", "hard" (the law of σ_w²φ'² at L = 1, orthogonal) or "atom".
    support : (lo, hi) holding the whole spectrum, atoms included: hi = ``edge``; lo = the lower edge where the
        spectrum is separated from 0 — orthogonal weights with φ'² bounded away from 0 (from the upper edge of
        (JJᵀ)^{-1}; for tanh-like φ the truncated law's tiny lower edge), or a gap found on the real axis below the
        bulk when there is no atom at 0 — else 0. The continuous part may have gaps inside: below an atom at the edge,
        or between an atom at 0 and the bulk (Gaussian ReLU at L = 1: the atom 1 - p at 0, the bulk from
        σ_w²(1 - √p)², and ``support[0]`` = 0).
    network : :meth:`~meanfield.Network.to_dict` of the network when one was given, else None.
    atoms : list of (location, mass): an atom at 0 of mass max_l P(φ'(h^l) = 0) and, for orthogonal weights, those of
        the free multiplicative convolution (orthogonal ReLU: mass 1/2 at 0; orthogonal Bernoulli(p) with
        L(1 - p) < 1: mass 1 - L(1 - p) at σ_w^{2L}).
    """

    activation: str
    sigma_w: float
    sigma_b: float
    depth: int
    weights: str
    q: np.ndarray
    log_mean: float
    mean: float
    variance: float
    edge: float
    log_edge: float
    edge_kind: str
    support: tuple
    atoms: list
    _moments: np.ndarray = field(repr=False)  # m̃_k = m_k/m_1^k, k = 1..8
    _solver: dict = field(repr=False)
    network: dict | None = None

    @property
    def max_singular_value(self) -> float:
        """Largest singular value of J: sqrt(edge)."""
        return _exp(0.5 * self.log_edge)

    @property
    def continuous_mass(self) -> float:
        """1 - Σ atom masses: the integral of :meth:`density`."""
        return 1.0 - sum(m for _, m in self.atoms)

    def log_moment(self, k: int) -> float:
        """log m_k (exact, k ≤ 8)."""
        k = integer(k, "k", 0)
        if k > MAX_MOMENT:
            raise InvalidParameterError(f"k must be an integer in 0..{MAX_MOMENT} (exact moments), got {k}")
        if k == 0:
            return 0.0
        return math.log(self._moments[k - 1]) + k * self.log_mean

    def moment(self, k: int) -> float:
        """m_k = ∫ λ^k ρ(dλ) (atoms included), exact for k ≤ 8 via the S-transform series (Lagrange inversion of
        ``M_J^{-1}``; Pennington et al. 2018). ``inf`` beyond float64."""
        return _exp(self.log_moment(k))

    def density(self, x):
        """Density of the continuous part of the spectrum of JJᵀ at x [vec]; 0 outside ``support`` (atoms: ``atoms``).

        Solves the S-transform equations (THEORY §2) by Newton in log form, continuing from z = x + iH (H = 10 × the
        normalised edge) down to the real axis and then along the sorted x (:mod:`meanfield._spectra_kernels`);
        ρ = -Im[(1 + m)/x]/π. Points the continuation from x + iH cannot bring to the real axis are solved again by
        continuation along the axis from the nearest point above them that it reached. Reported as 0: gaps (m real),
        points closer than ATOM_GAP (relative) to a non-zero atom, and, far below the bulk (x < TAIL_FLOOR ×
        ``mean``, where truncated laws of φ'² such as erf's put a thin power-law tail down to 1e-100 × the mean), every
        point at or below the highest one that neither continuation resolves. Accuracy: ~1e-10 relative in the
        bulk for piecewise-linear φ (exact laws), ~1e-8 for smooth φ (contour rule, checked against the exact moments);
        next to an edge where ρ diverges, limited by rounding (~1e-6 within 1e-12 of it). Raises ConvergenceError
        where the continuation fails elsewhere.

        A chain of 64 or more distinct laws (each layer at its own q^l, e.g. ``q0`` far from q*) is solved on the laws
        at Chebyshev nodes in q: Σ_l log y_l(m) over the layers whose q^l lie within a factor 2 (and whose laws have
        the same atoms and mass at 0) is replaced by its 12-node Chebyshev interpolant in q, with weights
        Σ_l ℓ_j(q^l). Every point checks its interpolants (last two Chebyshev coefficients of log y below
        1e-11 (1 + |c_0|)); a point that fails is solved again over every law. Against the solve over every law: ≤ 1e-8
        relative at depths of a few hundred (above 1e-3 of the largest ρ). At depth 2,000 (GELU, ELU; Gaussian and
        orthogonal), against a reference with every law's contour panels halved: ≤ 1e-8 where ρ > 1e-2 ρ_max, and up
        to 4e-6 within 1e-3 of the upper edge (ρ ~ 5e-4 ρ_max), where the solve over every law is itself off by up to
        6e-7: an error δ in Σ_l log y_l moves the square-root edge, which a point at distance d from it sees as
        ~δ·edge/2d. Halving the node laws' panels does not change these figures. Gaussian ELU at depth 10,000 is
        ill-conditioned (the solve over every law itself moves by 2e-5 when started 1e-12 higher): 1.2e-7 there where
        ρ > 1e-2 ρ_max, 4e-5 next to the edge.
        """
        xa = as_array(x, "x")
        flat = np.ascontiguousarray(xa, dtype=np.float64).reshape(-1)
        out = np.zeros(flat.shape)
        s = self._solver
        lo, hi = s["cont_lo"], s["cont_hi"]
        with np.errstate(divide="ignore"):
            logx = np.log(np.where(flat > 0.0, flat, 1.0)) - self.log_mean
        inside = (flat > 0.0) & (logx > lo) & (logx < hi)
        if s["kind"] == "point" or not np.any(inside):
            pass
        elif s["kind"] == "pushforward":
            sw2 = s["sw2"]
            out[inside] = _pushforward_density(s["acts"][0], s["laws"][0], flat[inside] / sw2) / sw2
        else:
            xs = flat[inside]
            order = np.argsort(xs, kind="stable")  # sorted: neighbours continue from each other
            ll = logx[inside][order]
            m, status = _solve_sorted(ll, s, self._moments, float(self.depth))
            m, status = _redo_along_axis(ll, m, status, s, self._moments, float(self.depth))
            # far below the bulk (λ < TAIL_FLOOR × the mean) a point neither continuation resolves (status -1, or
            # stuck with m real: status 4) marks the floor of the resolved tail: it and every point below are reported
            # as 0 (status 5), so that no zero sits between non-zero values there
            lost = ((status < 0) | (status == 4)) & (ll < math.log(TAIL_FLOOR))
            if np.any(lost):
                below = ll <= ll[lost].max()
                m = np.where(below, 0.0, m)
                status = np.where(below, 5, status)
            bad = status < 0
            if np.any(bad):
                raise ConvergenceError(
                    f"density: the S-transform continuation failed at x = {float(xs[order][bad][0])!r} "
                    f"({self.activation}, {self.weights}, depth {self.depth})"
                )
            rho = np.empty(ll.shape)
            # stopped above the axis (status > 0: a gap, next to an atom or a singular edge): an imaginary part at
            # the rounding level of |m| (huge next to an atom) is no density
            noise = ((status > 0) & (np.abs(m.imag) <= STOPPED_NOISE * np.abs(m))) | (status == 4) | (status == 5)
            for a, _ in s["poles"]:  # closer than ATOM_GAP to an atom, m ~ P/(z - a) drowns the continuous part
                noise |= (status > 0) & (np.abs(np.exp(ll) - a) <= ATOM_GAP * a)
            r = np.where(noise, 0.0, np.maximum(-m.imag / (math.pi * xs[order]), 0.0))
            # the same floor for a zero in the far tail with non-zero values below it (rounding noise at the level of
            # |m| there, not a gap the solver resolved)
            tail_zero = (r == 0.0) & (ll < math.log(TAIL_FLOOR))
            if np.any(tail_zero):
                r = np.where(ll <= ll[tail_zero].max(), 0.0, r)
            rho[order] = r
            out[inside] = rho
        out = out.reshape(xa.shape)
        return float(out) if np.ndim(x) == 0 else out

    def singular_value_density(self, s):
        """Density of the singular values of J at s [vec]: 2s ρ(s²)."""
        sa = as_array(s, "s")
        out = np.where(sa > 0.0, 2.0 * sa * self.density(np.where(sa > 0.0, sa * sa, 0.0)), 0.0)
        return float(out) if np.ndim(s) == 0 else out


# ------------------------------------------------------------------------------------------------------ solver driver
_POOL: list = []
_POOL_LOCK = threading.Lock()
CHUNK_MIN = 64  # below this many points per thread the density runs in the calling thread


def _pool():
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="meanfield-spectra"))
        return _POOL[0]


_CONTOUR_LOCK = threading.Lock()


def _contour_pack(s):
    """(values, weights, offsets) of the laws' deformed-contour rules for the density solver, built on first use (the
    construction needs only the real rules: moments and edges)."""
    with _CONTOUR_LOCK:
        got = s.get("contour")
        if got is None:
            laws = _contour_laws(s["acts"], s["laws"])
            got = s["contour"] = _pack(laws, [law.mean for law in laws], contour=True)
        return got


def _length_trajectory(act, sw, sb, depth, q0):
    """q^1 … q^L from the input's |x|²/N_0 = q0 (THEORY §1): ``q^1 = σ_w² q0 + σ_b²``, ``q^{l+1} = σ_w² E_{q^l}[φ²] +
    σ_b²``, by the length-map kernel alone (no correlation map); once a step is below 4 ulp the rest repeat."""
    sw2, sb2 = sw * sw, sb * sb
    n = depth + 2
    q = np.empty(n)
    qh, mu1, mu2 = np.empty(n), np.empty(n), np.empty(n)
    q[0] = q0
    q[1] = sw2 * q0 + sb2
    _, bad = act.kernels.length_trajectory(act.table, sw2, sb2, Q_TINY, 4.0 * np.finfo(np.float64).eps, q, qh, mu1, mu2)
    if bad or not np.all(np.isfinite(q[1 : depth + 1])):
        raise NumericalError(
            f"{act.name}: the length map overflowed (sigma_w={sw:.6g}, sigma_b={sb:.6g}, q0={q0:.6g}, depth {depth})"
        )
    return np.ascontiguousarray(q[1 : depth + 1])


# Compressed chains (many distinct laws, e.g. depth 10,000 from q0 = 1: 899 laws). The equations need the laws only
# through Σ_g n_g log y_g(m); for the laws of one smooth activation whose q lie in [q_a, q_b] (q_b ≤ COMPRESS_RATIO q_a),
# log y(m; q) is analytic in q, and its Chebyshev interpolant through COMPRESS_NODES Chebyshev–Lobatto nodes q_j gives
# Σ_g n_g log y_g ≈ Σ_j W_j log y(m; q_j) with W_j = Σ_g n_g ℓ_j(q_g) (ℓ_j the Lagrange basis): the solver runs on the
# node laws with real weights W_j in place of the groups. Each point's interpolant is checked through its Chebyshev
# coefficients (their last two below COMPRESS_TOL); a point where that fails is solved again with every law.
COMPRESS_MIN = 64  # compress chains of at least this many distinct laws
COMPRESS_NODES = 12
COMPRESS_RATIO = 2.0
COMPRESS_BLOCK = 8192  # points per solver call on the compressed chain (bounds the memory of the kept log y)
COMPRESS_TOL = 1e-11  # |c_{K-2}| + |c_{K-1}| ≤ COMPRESS_TOL (1 + |c_0|) for log y(m; q) = Σ_k c_k T_k on an interval


def _lobatto(K):
    """Chebyshev–Lobatto points t_j = cos(πj/(K-1)), their barycentric weights and the values-to-coefficients matrix."""
    j = np.arange(K)
    t = np.cos(np.pi * j / (K - 1))
    bw = (-1.0) ** j
    bw[0] *= 0.5
    bw[-1] *= 0.5
    C = np.cos(np.pi * np.outer(j, j) / (K - 1)) * (2.0 / (K - 1))
    C[:, 0] *= 0.5
    C[:, -1] *= 0.5
    C[0] *= 0.5
    C[-1] *= 0.5
    return t, bw, C


def _lagrange_sums(tq, counts, t, bw):
    """W_j = Σ_g n_g ℓ_j(t_g): the weights of the nodes t_j in the interpolated sum (barycentric form)."""
    W = np.zeros(t.size)
    for tg, n in zip(tq, counts):
        d = tg - t
        hit = np.nonzero(d == 0.0)[0]
        if hit.size:
            W[hit[0]] += n
            continue
        c = bw / d
        W += n * c / c.sum()
    return W


def _atoms_key(law):
    """What must not change along an interval of compressed laws: the atoms (values, masses) and the mass at 0."""
    return law.atom_vals.tobytes(), law.atom_mass.tobytes(), law.zero_mass


def _compress(s):
    """The compressed form of the solver's chain (see COMPRESS_NODES), built on first use; None where the chain has
    fewer than COMPRESS_MIN laws or no interval holds more laws than it would take nodes. Returns a dict with the
    pack (vals, wts, off), cnt (real weights), s1, zm, ``checks``: the column slice of each interval's nodes, and
    ``coef``: the nodes' values-to-Chebyshev-coefficients matrix."""
    with _CONTOUR_LOCK:
        if "compressed" in s:
            return s["compressed"]
    laws, acts, cnt = s["laws"], s["acts"], s["cnt"]
    out = None
    if len(laws) >= COMPRESS_MIN and s.get("compress", True):
        K = COMPRESS_NODES
        t, bw, C = _lobatto(K)
        by_act: dict = {}  # laws with a continuous part, by activation and the same atoms and mass at 0
        for i, (a, law) in enumerate(zip(acts, laws)):
            if law.q > 0.0 and law.pieces:
                by_act.setdefault((a, _atoms_key(law)), []).append(i)
        covered = np.zeros(len(laws), bool)
        node_q, node_act, node_w, spans, kinds = [], [], [], [], []
        for (a, kind), idx in by_act.items():
            idx = np.asarray(idx)
            q = np.array([laws[i].q for i in idx])
            order = np.argsort(q)
            idx, q = idx[order], q[order]
            start = 0
            while start < q.size:
                stop = int(np.searchsorted(q, COMPRESS_RATIO * q[start], side="right"))
                if stop - start > K + 4:
                    lo, hi = q[start], q[stop - 1]
                    tq = (2.0 * q[start:stop] - (lo + hi)) / (hi - lo)
                    node_q.extend(0.5 * (lo + hi) + 0.5 * (hi - lo) * t)
                    node_act.extend([a] * K)
                    node_w.append(_lagrange_sums(tq, cnt[idx[start:stop]], t, bw))
                    spans.append(idx[start:stop])
                    kinds.append(kind)
                    covered[idx[start:stop]] = True
                start = stop
        if node_w:
            nodes = _d2_laws(node_act, node_q)
            # a node law must be of the kind of the laws it stands for (a continuous part, the same atoms and mass at
            # 0: only the continuous part moves with q), else its interval keeps its laws as they are
            for r in range(len(node_w) - 1, -1, -1):
                sl = slice(K * r, K * (r + 1))
                if not all(law.pieces and _atoms_key(law) == kinds[r] for law in nodes[sl]):
                    covered[spans[r]] = False
                    del node_w[r], spans[r], kinds[r], nodes[sl], node_q[sl], node_act[sl]
        if node_w:
            keep = np.nonzero(~covered)[0]
            claws = _contour_laws([acts[i] for i in keep] + node_act, [laws[i] for i in keep] + nodes)
            first = keep.size
            out = dict(
                pack=_pack(claws, [law.mean for law in claws], contour=True),
                cnt=np.concatenate([cnt[keep], *node_w]),
                s1=np.array([-law.rel_var for law in claws]),
                zm=np.array([law.zero_mass for law in claws]),
                checks=[slice(first + K * r, first + K * (r + 1)) for r in range(len(node_w))],
                coef=C,
            )
    with _CONTOUR_LOCK:
        return s.setdefault("compressed", out)


def _solver_args(s, moments, depth):
    """The arguments of the solver kernels between the points and the outputs, over every law of the chain."""
    return (s["H"], moments, s["s1"], *_contour_pack(s), s["cnt"], s["zm"], depth, s["gauss"])


def _run_solver(ll, args, G, want_b):
    """solve_many on sorted ll; contiguous chunks in parallel threads (the kernels release the GIL)."""
    n = ll.size
    m = np.empty(n, np.complex128)
    status = np.empty(n, np.int64)
    eps = np.zeros(n)
    b = np.empty((n, G if want_b else 0), np.complex128)
    k = min(THREADS, n // CHUNK_MIN)
    if k <= 1:
        _k.solve_many(ll, *args, m, status, eps, b)
    else:
        bounds = np.linspace(0, n, k + 1).astype(int)
        futs = [
            _pool().submit(_k.solve_many, ll[a:c], *args, m[a:c], status[a:c], eps[a:c], b[a:c])
            for a, c in zip(bounds[:-1], bounds[1:])
        ]
        for f in futs:
            f.result()
    return m, status, eps, b


def _solve_sorted(ll, s, moments, depth):
    """Run the Numba solver on sorted normalised log-λ, each chunk of points continuing along its own points; on the
    compressed chain (:func:`_compress`) where there is one, the points whose interpolation check fails again with
    every law."""
    comp = _compress(s)
    if comp is None:
        m, status, eps, _ = _run_solver(ll, _solver_args(s, moments, depth), 0, False)
    else:
        args = (s["H"], moments, comp["s1"], *comp["pack"], comp["cnt"], comp["zm"], depth, s["gauss"])
        n = ll.size
        m = np.empty(n, np.complex128)
        status = np.empty(n, np.int64)
        eps = np.empty(n)
        err = np.zeros(n)
        for a in range(0, n, COMPRESS_BLOCK):  # blocks: the solutions' log y of every point are kept for the check
            sl = slice(a, min(a + COMPRESS_BLOCK, n))
            m[sl], status[sl], eps[sl], b = _run_solver(ll[sl], args, comp["cnt"].size, True)
            for cols in comp["checks"]:
                c = b[:, cols] @ comp["coef"].T  # Chebyshev coefficients of log y(m; q) on the interval, per point
                err[sl] = np.maximum(err[sl], (np.abs(c[:, -1]) + np.abs(c[:, -2])) / (1.0 + np.abs(c[:, 0])))
        redo = ~(err <= COMPRESS_TOL) | (status < 0)  # NaN coefficients (a failed point) included
        if np.any(redo):
            mr, sr, er, _ = _run_solver(np.ascontiguousarray(ll[redo]), _solver_args(s, moments, depth), 0, False)
            m[redo], status[redo], eps[redo] = mr, sr, er
    return _remove_atom_tails(m, status, eps, ll, s), status


def _redo_along_axis(ll, m, status, s, moments, depth):
    """Points the continuation from λ + iH could not bring to the axis (status -1) or left stuck with m real to GAP_TOL
    (status 4, "a gap") are solved again by continuation along the real axis from the nearest point above them that
    reached it (:func:`meanfield._spectra_kernels.solve_along`); the new solution replaces the old where that
    continuation reaches the point. Far below the bulk (erf, orthogonal, λ ~ 1e-30 × the mean) the density is small
    but not 0, and the way down from λ + iH is lost in rounding while the way along the axis is not."""
    redo = (status == -1) | (status == 4)
    good = np.nonzero(status == 0)[0]
    if not np.any(redo) or good.size == 0:
        return m, status
    m, status = m.copy(), status.copy()
    # ll ascending: the start of point i is the first good point above it
    starts = np.searchsorted(good, np.nonzero(redo)[0], side="right")
    idx = np.nonzero(redo)[0]
    args = _solver_args(s, moments, depth)
    for j in np.unique(starts):
        if j >= good.size:
            continue  # no good point above: nothing to continue from
        pts = idx[starts == j][::-1]  # descending
        mo = np.empty(pts.size, np.complex128)
        so = np.empty(pts.size, np.int64)
        _k.solve_along(float(ll[good[j]]), np.ascontiguousarray(ll[pts]), *args, mo, so)
        ok = so == 0
        m[pts[ok]] = mo[ok]
        status[pts[ok]] = 0
    return m, status


def _remove_atom_tails(m, status, eps, ll, s):
    """Remove what the atoms put into m where the continuation stopped at a height ε > 0 (status 1-3).

    An atom at a with mass p adds the pole P/(z - a), P = p a, to M_J(z). Stopped at z = λ + iε it leaves the Cauchy
    tail -Pε/(d² + ε²) in Im m (d = λ - a), extrapolated along the tangent -2Pε³/(d² + ε²)² : next to an atom both
    exceed the continuous density. They are subtracted exactly (normalised units).
    """
    poles = s["poles"]
    if not poles or not np.any(status > 0):
        return m
    lam = np.exp(ll)
    out = m.copy()
    for a, P in poles:
        d = lam - a
        e = eps
        with np.errstate(divide="ignore", invalid="ignore"):
            at_height = P / (d + 1j * e) - P / d
            extrapolated = P * (d + 2j * e) / (d + 1j * e) ** 2 - P / d
        corr = np.where(status == 2, at_height, np.where((status == 1) | (status == 3), extrapolated, 0.0))
        out = out - np.where(np.isfinite(corr), corr, 0.0)
    return out


# ------------------------------------------------------------------------------------------------------ public entry
def _cluster(q):
    """Groups of layers whose q^l agree to Q_CLUSTER_RTOL: (representative q, count) in order of first appearance."""
    order = np.argsort(q, kind="stable")
    qs = q[order]
    reps, counts = [], []
    start = 0
    for i in range(1, len(qs) + 1):
        if i == len(qs) or qs[i] - qs[start] > Q_CLUSTER_RTOL * max(abs(qs[start]), 1e-300):
            reps.append(float(qs[start]))
            counts.append(i - start)
            start = i
    return reps, counts


def _cluster_labels(q):
    """Like :func:`_cluster` on the whole chain, also naming each layer's group: (representatives, labels) with
    ``reps[labels[l]]`` the law of layer l."""
    order = np.argsort(q, kind="stable")
    qs = q[order]
    reps = []
    labels = np.empty(q.size, dtype=np.int64)
    start = 0
    for i in range(1, len(qs) + 1):
        if i == len(qs) or qs[i] - qs[start] > Q_CLUSTER_RTOL * max(abs(qs[start]), 1e-300):
            labels[order[start:i]] = len(reps)
            reps.append(float(qs[start]))
            start = i
    return reps, labels


def _layer_list(value, L, name, conv):
    """One value per layer: a sequence of L (checked) or one value repeated."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != L:
            raise InvalidParameterError(f"{name} has {len(value)} entries, the chain has {L} layers")
        return [conv(v) for v in value]
    return [conv(value)] * L


def _cluster_labels_acts(acts, q):
    """:func:`_cluster_labels` per activation: groups of layers with the same activation whose q^l agree to
    Q_CLUSTER_RTOL. Returns (representative q's, their activations, labels); one activation gives exactly
    :func:`_cluster_labels`' groups."""
    first = acts[0]
    if all(a is first for a in acts):
        reps, labels = _cluster_labels(q)
        return reps, [first] * len(reps), labels
    labels = np.empty(q.size, dtype=np.int64)
    reps, rep_acts = [], []
    distinct = []
    for a in acts:
        if not any(a is d for d in distinct):
            distinct.append(a)
    for a in distinct:
        idx = np.array([i for i, b in enumerate(acts) if b is a], dtype=np.int64)
        r, lab = _cluster_labels(np.ascontiguousarray(q[idx]))
        labels[idx] = lab + len(reps)
        reps.extend(r)
        rep_acts.extend([a] * len(r))
    return reps, rep_acts, labels


def _tail_log_edges(act, sigma_w, q, gaussian):
    """log of the upper edge of JJᵀ for every tail of one chain of layers: entry i is that of the product of the layers
    i, i + 1, …, L - 1 with pre-activation variances ``q[i:]`` (L - i pairs D·W), for i = 0 … L - 1.

    ``act`` is one activation or a sequence of L (φ_l of the pair D_l W_l, D_l = diag φ_l'(h^l)), ``sigma_w`` a float
    or a sequence of L (σ_w of W_l in the same pair), ``q`` the L pre-activation variances q^l, ``gaussian`` a bool or
    a sequence of L bools (W_l Gaussian, else orthogonal). The tail i has
    ``S = Π_{l≥i} S_{W_lW_lᵀ} S_{D_l²}`` (THEORY §2, §8) and the log-edge
    ``Σ_{l≥i} log((σ_w^l)² μ_1,l(q^l)) + log λ̃_max`` of its normalised spectrum.

    The same number as ``jacobian_spectrum(φ, σ_w, σ_b, L - i, q0=…).log_edge`` whose trajectory is ``q[i:]`` (σ_b
    enters only through the q^l), at a fraction of the cost: the laws of φ'² are built once per distinct (φ, q^l) (real
    rule only) and packed once, and each tail is the edge search over that pack with its own layer counts (groups no
    layer of the tail uses count 0 and are skipped), started from the minimum of the next shorter tail — no moments,
    atoms, lower edge or density solver.
    """
    q = np.asarray(q, dtype=np.float64)
    L = q.size
    acts = _layer_list(act, L, "act", get_activation)
    sws = _layer_list(sigma_w, L, "sigma_w", float)
    gs = _layer_list(gaussian, L, "gaussian", bool)
    reps, rep_acts, labels = _cluster_labels_acts(acts, q)
    laws = _d2_laws(rep_acts, reps)
    mus = np.array([law.mean for law in laws])
    vals, wts, off = _pack(laws, mus)
    tops = np.array([law.top for law in laws]) / mus
    log_tops = np.log(tops)
    one_sw = all(v == sws[0] for v in sws)
    log_sw2 = 2.0 * math.log(sws[0])
    log_sw2_l = 2.0 * np.log(np.asarray(sws))
    log_mu = np.log(mus)
    out = np.empty(L)
    cnt = np.zeros(len(reps))
    a_prev = math.nan
    curv = math.nan
    tc = np.full((len(reps), 3), np.nan)  # the groups' warm starts, shared by the tails' edge searches
    ng = 0.0
    log_w = 0.0
    for i in range(L - 1, -1, -1):
        cnt[labels[i]] += 1.0
        ng += 1.0 if gs[i] else 0.0
        if one_sw:
            log_mean = float(np.dot(cnt, log_sw2 + log_mu))
        else:
            log_w += float(log_sw2_l[i])
            log_mean = float(np.dot(cnt, log_mu)) + log_w
        code = 3
        if math.isfinite(a_prev):  # the minimum of the next shorter tail: one layer fewer, a nearby minimum
            log_e, a, code, curv = _k.upper_edge_near(vals, wts, off, cnt, tops, float(L - i), ng, a_prev, curv, tc)
        if code == 3:
            log_e, a, code = _k.upper_edge(vals, wts, off, cnt, tops, float(L - i), ng, EDGE_A_MAX)
            curv = math.nan
        a_prev = a if code == 0 else math.nan
        if code == 1:
            if ng > 0.0:
                raise ConvergenceError("edge: no minimum of M_J^{-1}(m) on m > 0 (Gaussian weights always have one)")
            log_e = float(np.dot(cnt, log_tops))  # infimum at m → ∞: the product of the laws' tops
        out[i] = log_mean + float(log_e)
    return out


def _tail_log_edges_each(act, sigma_w, q, gaussian):
    """log of the upper edge of JJᵀ for every tail of one chain of layers: entry i is that of the product of the layers
    i, i + 1, …, L - 1 with pre-activation variances ``q[i:]`` (L - i pairs D·W), for i = 0 … L - 1; the arguments
    as in :func:`_tail_log_edges`.

    The same number as ``jacobian_spectrum(φ, σ_w, σ_b, L - i, q0=…).log_edge`` whose trajectory is ``q[i:]`` (σ_b
    enters only through the q^l), at a fraction of the cost: the laws of φ'² are built once per distinct q^l (real rule only),
    and each tail needs just its upper edge — no moments, atoms, lower edge or density solver.

    The previous form of :func:`_tail_log_edges` (one pack and edge search per tail), kept as the benchmarks' baseline.
    """
    q = np.asarray(q, dtype=np.float64)
    L = q.size
    acts = _layer_list(act, L, "act", get_activation)
    sws = _layer_list(sigma_w, L, "sigma_w", float)
    gs = _layer_list(gaussian, L, "gaussian", bool)
    reps, rep_acts, labels = _cluster_labels_acts(acts, q)
    laws = [_d2_law(a, r, contour=False) for a, r in zip(rep_acts, reps)]
    log_mu = np.array([math.log(law.mean) for law in laws])
    one_sw = all(v == sws[0] for v in sws)
    log_sw2 = 2.0 * math.log(sws[0])
    out = np.empty(L)
    for i in range(L):
        cnt = np.bincount(labels[i:], minlength=len(reps))
        used = np.nonzero(cnt)[0]  # increasing q, as in jacobian_spectrum
        counts = [int(cnt[j]) for j in used]
        if one_sw:
            log_mean = float(sum(n * (log_sw2 + log_mu[j]) for j, n in zip(used, counts)))
        else:
            log_mean = float(sum(n * log_mu[j] for j, n in zip(used, counts))) + sum(
                2.0 * math.log(v) for v in sws[i:])
        ng = float(sum(gs[i:]))
        log_e, _ = _upper_edge_normalised([laws[j] for j in used], counts, L - i, ng)
        out[i] = log_mean + log_e
    return out


def _pack(laws, normalise, contour=False):
    """Concatenated (values/normalise, weights, offsets) of the laws; the contour rule for the density solver."""
    vals, wts, off = [], [], [0]
    for law, c in zip(laws, normalise):
        nv, nw = (law.cnode_vals, law.cnode_wts) if contour else (law.node_vals, law.node_wts)
        v = np.concatenate([law.atom_vals, nv]) / c
        w = np.concatenate([law.atom_mass, nw])
        nz = v != 0.0  # the atom at 0 enters through P(φ' = 0) (``zero_mass``), not as a node
        vals.append(v[nz])
        wts.append(w[nz])
        off.append(off[-1] + int(nz.sum()))
    dt = np.complex128 if contour else np.float64
    return np.concatenate(vals).astype(dt), np.concatenate(wts).astype(dt), np.asarray(off, dtype=np.int64)


def _upper_edge_normalised(laws, counts, depth, gaussian):
    """log of the upper edge of the normalised spectrum, and its kind: "sqrt" (a minimum of M_J^{-1}), "hard" (the
    minimum sits where m leaves the range of M_D above the law's top) or "limit" (infimum as m → ∞)."""
    mus = [law.mean for law in laws]
    vals, wts, off = _pack(laws, mus)
    tops = np.array([law.top / mu for law, mu in zip(laws, mus)])
    cnt = np.asarray(counts, dtype=np.float64)
    ng = _ngauss(gaussian, depth)
    log_e, a, code = _k.upper_edge(vals, wts, off, cnt, tops, float(depth), ng, EDGE_A_MAX)
    if code == 0:
        if ng == 0.0 and np.all(np.isfinite(tops)):
            # a "minimum" at the level of the infimum as m → ∞ is rounding in F far out (orthogonal ReLU at L = 2:
            # M_J^{-1}(m) = 4(1 + 1/(4m(m + 1))) decreases for ever, F's last digits stop at m ~ 1e8): the limit
            lim = float(np.dot(cnt, np.log(tops)))
            if abs(log_e - lim) <= 1e-12 * (1.0 + abs(lim)):
                return lim, "limit"
        return float(log_e), "sqrt"
    if code == 2:
        return float(log_e), "hard"
    if ng > 0.0:
        raise ConvergenceError("edge: no minimum of M_J^{-1}(m) on m > 0 (Gaussian weights always have one)")
    return float(np.dot(cnt, np.log(tops))), "limit"


def _inverse_law(law: _Law) -> _Law:
    """Law of 1/φ'² (no atom at 0): (JJᵀ)^{-1} is the free product of the inverses (orthogonal W^{-1} = W^T/σ_w²)."""
    avals, nvals = 1.0 / law.atom_vals, 1.0 / law.node_vals
    # raw moments E[φ'^{-2k}] in logs: a law bounded away from 0 only by the truncation (erf, ELU: φ'² ~ e^{-u²} or
    # e^{2u} at |u| = 9√q) has inverse moments far beyond float64 (inf then; only the mean is used, see the caller)
    k = np.arange(MAX_MOMENT + 1)
    logv = -np.log(np.concatenate([law.atom_vals, law.node_vals]))
    w = np.concatenate([law.atom_mass, law.node_wts])
    pos = w > 0.0
    A = np.log(w[pos])[:, None] + logv[pos][:, None] * k  # log-sum-exp over the nodes, per k
    mx = A.max(axis=0)
    log_raw = mx + np.log(np.exp(A - mx).sum(axis=0))
    raw = np.array([_exp(float(x)) for x in log_raw])
    none = np.zeros(0, complex)
    return _Law(law.q, avals, law.atom_mass, nvals, law.node_wts, none, none, 1.0 / law.bottom, 1.0 / law.top, raw,
                0.0, 0.0)


def _lower_edge_normalised(laws, counts, depth, gaussian):
    """log of the lower edge of the continuous part of the normalised spectrum, if it is separated from 0, and how it
    was found: (log edge, found, exact).

    Orthogonal weights and φ'² bounded away from 0: the upper edge of (JJᵀ)^{-1}, the free product of the inverse laws
    (exact, including the limit case where the edge is approached as m → ∞; the gap is certain, since every factor has
    a bounded inverse). Otherwise the first turning point of the real branch of M_J^{-1} below the spectrum
    (:func:`meanfield._spectra_kernels.lower_edge`), which the caller confirms on the physical branch.
    """
    ng = _ngauss(gaussian, depth)
    if ng == 0.0 and all(law.zero_mass == 0.0 and law.bottom > _TINY for law in laws):
        inv = [_inverse_law(law) for law in laws]
        if not all(math.isfinite(il.mean) for il in inv):
            # E[1/φ'²] beyond float64: only the truncation |u| ≤ 9√q keeps it finite (erf at q > 1/4: E[e^{2u²}] = ∞
            # untruncated; ELU/SELU at large q), and the lower edge ≤ 1/(mean of the inverse product) underflows
            return -math.inf, False, True
        log_inv, _ = _upper_edge_normalised(inv, counts, depth, False)
        # raw lower edge = 1/(raw edge of Π σ_w^{-2} D_l^{-2}); subtract log_mean = Σ n log(σ_w² μ) to normalise
        return -log_inv - sum(n * math.log(il.mean * law.mean) for il, law, n in zip(inv, laws, counts)), True, True
    if ng > 0.0 and all(law.zero_mass == 0.0 for law in laws):
        # a square Gaussian W_l reaches 0: σ_i(A W_l B) ≤ ‖A‖ σ_i(W_l) ‖B‖ for every i, and σ(W_l)² is
        # Marchenko–Pastur of ratio 1, with mass in every [0, ε]; the product has no atom at 0 (no layer has one), so
        # its continuous part reaches 0 (no gap: the scan below would only find none, at ~1 s for 899 laws)
        return -math.inf, False, True
    mus = [law.mean for law in laws]
    vals, wts, off = _pack(laws, mus)
    bottoms = np.array([law.bottom_positive / mu for law, mu in zip(laws, mus)])
    zmass = np.array([law.zero_mass for law in laws])
    cnt = np.asarray(counts, dtype=np.float64)
    log_lo, found = _k.lower_edge(vals, wts, off, cnt, bottoms, zmass, float(depth), ng)
    return float(log_lo), bool(found), False


EDGE_LOG_TOL = 1e-9  # slack (in log units) of the edge's moment and norm bounds


def _edge_bounds_normalised(laws, counts, mom, depth, gaussian):
    """(lower, upper) bounds on the log of the normalised upper edge that need no S-transform equation.

    Lower: for a law on [0, λ_max], ``m_k ≤ λ_max m_{k-1}``, so ``λ_max ≥ m_8/m_7`` (the exact moments; the ratios
    m_k/m_{k-1} increase towards λ_max). Upper: ``‖J‖² ≤ Π_l ‖W_l‖² max φ'(h^l)²`` with ``‖W‖² = σ_w²`` (orthogonal) or
    its large-N limit ``4σ_w²`` (Gaussian, the Marchenko–Pastur edge), divided by the mean ``Π_l σ_w² μ_1(q^l)``."""
    lower = math.log(mom[MAX_MOMENT - 1] / mom[MAX_MOMENT - 2])
    upper = sum(n * math.log(law.top / law.mean) for law, n in zip(laws, counts))
    upper += _ngauss(gaussian, depth) * math.log(4.0)
    return lower, upper


def _check_upper_edge(log_e, laws, counts, mom, depth, gaussian, name):
    """The edge must lie within :func:`_edge_bounds_normalised`, else ConvergenceError (no unproved number)."""
    lower, upper = _edge_bounds_normalised(laws, counts, mom, depth, gaussian)
    tol = EDGE_LOG_TOL * max(1.0, abs(lower), abs(upper))
    if not (math.isfinite(log_e) and lower - tol <= log_e <= upper + tol):
        raise ConvergenceError(
            f"edge of {name} (depth {depth}): log λ_max/m_1 = {log_e!r} is outside its bounds [{lower!r}, {upper!r}]"
            " from the exact moments (m_8/m_7) and the operator norms"
        )


def jacobian_spectrum(phi, sigma_w=None, sigma_b=None, depth=None, weights=None, q0=None) -> JacobianSpectrum:
    """Spectrum of JJᵀ for the input-output Jacobian of a deep random network (THEORY §2).

    Parameters
    ----------
    phi : activation (name, expression in ``x`` or :class:`~meanfield.Activation`), or a :class:`~meanfield.Network`
        (then sigma_w, sigma_b, depth and weights are the network's and must be left out; see below).
    sigma_w, sigma_b : weight and bias standard deviations (not variances).
    depth : L ≥ 1, the number of layers (pairs D_l W_l) in J.
    weights : "orthogonal" (S_{WWᵀ} = σ_w^{-2}, the default) or "gaussian" (S_{WWᵀ} = 1/(σ_w²(1 + z))).
    q0 : None (every layer at the fixed point q*; raises NoFixedPointError where q diverges, except for positively
        homogeneous φ — ReLU, leaky ReLU, linear — whose law of φ'(h)² does not depend on q) or the input's
        |x|²/N_0, in which case layer l uses its own q^l from the length map (:func:`meanfield.propagate`).

    Notes
    -----
    The S-transform of the product is ``S_{JJᵀ} = Π_l S_{W_lW_lᵀ} S_{D_l²}`` (Pennington, Schoenholz & Ganguli 2017,
    2018), hence ``M_J^{-1}(m) = σ_w^{2L} Π_l y_l · m^{L-1}(1 + m)^{1-L}`` (orthogonal) or
    ``σ_w^{2L} Π_l y_l · m^{L-1}(1 + m)`` (Gaussian) with ``M_{D_l²}(y_l) = m`` (THEORY §2).

    Cost: the object (laws of φ'², moments, edges, atoms) takes a few ms at any depth when every layer sits at q*;
    with ``q0`` it grows with the number of distinct q^l (899 for tanh at q* = 1/64 from q0 = 1: ~0.5 s), and so does
    :meth:`JacobianSpectrum.density`, whose first call also builds every law's contour rule (~1 ms a law).

    **A network whose layers differ** (:class:`~meanfield.Network`, THEORY §8): ``J = ∂x^L/∂x^0 = D_L W^L ⋯ D_1 W^1``
    with ``D_l = diag φ_l'(h^l)``, ``Var W^l_ij = (σ_w^l)²/N_{l-1}`` (the readout does not enter J), and

    ``S_{JJᵀ} = Π_l S_{W^lW^lᵀ} S_{D_l²}``,  ``S_{W^lW^lᵀ} = (σ_w^l)^{-2}`` (orthogonal) or ``1/((σ_w^l)²(1 + z))``
    (Gaussian),

    so with k Gaussian layers ``M_J^{-1}(m) = Π_l (σ_w^l)² y_l · m^{L-1}(1 + m)^{1-L+k}``, ``M_{D_l²}(y_l) = m``, where
    layer l's law is that of ``φ_l'(h)²``, h ~ N(0, q^l), on the network's length map ``q^1 = (σ_w^1)² q0 +
    (σ_b^1)²``, ``q^l = (σ_w^l)² E_{q^{l-1}}[φ_{l-1}²] + (σ_b^l)²``. The mean is ``Π_l (σ_w^l)² μ_1,l(q^l)`` with
    ``μ_1,l(q) = E_q[φ_l'²]``. ``q0`` (the input's |x|²/N_0) is required unless layers 1..L are alike (activation,
    σ_w, σ_b, weight kind), which is exactly the uniform call (and gives its numbers bitwise, at q* for q0=None).
    The free-probability law is that of square layers: N_1 = … = N_L is required; the first layer may be wider
    (N_0 ≥ N_1) when it is orthogonal (W^1W^1ᵀ = (σ_w^1)² I exactly); a Gaussian first layer needs N_0 = N_1. The
    result's scalar fields hold :meth:`~meanfield.Network.summary` and ``network`` the full description.

    Every edge is checked before it is returned: ``m_8/m_7 ≤ λ_max`` (exact moments) and ``λ_max ≤ Π_l ‖W_l‖²
    max φ'(h^l)²`` (operator norms), else ConvergenceError.

    Examples
    --------
    >>> import meanfield as mf
    >>> sw, sb = mf.critical_point("tanh", 1 / 64)
    >>> s = jacobian_spectrum("tanh", sw, sb, depth=16)   # orthogonal weights
    >>> round(s.mean, 12), round(s.edge, 6)
    (1.0, 1.276885)
    >>> net = mf.Network((64, 64, 64, 64, 10), sigma_w=[sw, 1.1 * sw, sw, 1.0], sigma_b=sb,
    ...                  activations=["tanh", "erf", "tanh"], weights="orthogonal")
    >>> s = jacobian_spectrum(net, q0=1.0)
    >>> s.depth, s.activation, s.network["activations"]
    (3, 'tanh,erf,tanh', ['tanh', 'erf', 'tanh'])
    """
    from meanfield.network import Network

    if isinstance(phi, Network):
        return _network_spectrum(phi, sigma_w, sigma_b, depth, weights, q0)
    missing = [n for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("depth", depth)) if v is None]
    if missing:
        raise InvalidParameterError(f"jacobian_spectrum needs {', '.join(missing)} (or a Network as its first argument)")
    return _uniform_spectrum(phi, sigma_w, sigma_b, depth, "orthogonal" if weights is None else weights, q0)


def _uniform_spectrum(phi, sigma_w, sigma_b, depth, weights, q0) -> JacobianSpectrum:
    """:func:`jacobian_spectrum` of a uniform network (one φ, σ_w, σ_b and weight kind for every layer)."""

    act = get_activation(phi)
    sw = float(positive(sigma_w, "sigma_w"))
    sb = float(nonnegative(sigma_b, "sigma_b"))
    L = integer(depth, "depth", 1)
    weights = choice(weights, "weights", WEIGHTS)
    gaussian = weights == "gaussian"
    if q0 is None:
        try:
            qs = np.full(L, float(q_star(act, sw, sb)))
        except NoFixedPointError:
            if not act.is_homogeneous:
                raise
            qs = np.full(L, 1.0)  # φ(au) = aφ(u): the law of φ'(h)² does not depend on q
    else:
        if _BASELINE:
            from meanfield.propagation import propagate

            qs = np.asarray(propagate(act, sw, sb, L, q0=float(positive(q0, "q0"))).q[1:], dtype=np.float64)
        else:
            qs = _length_trajectory(act, sw, sb, L, float(positive(q0, "q0")))
    reps, counts = _cluster(qs)
    laws = [_d2_law(act, q, contour=_BASELINE) for q in reps]  # the contour rules: on the density's first call
    log_sw2 = 2.0 * math.log(sw)
    log_mean = float(sum(n * (log_sw2 + math.log(law.mean)) for law, n in zip(laws, counts)))
    return _assemble(laws, [act] * len(laws), counts, L, float(L) if gaussian else 0.0, log_mean, L * log_sw2, sw * sw,
                     act.name, dict(activation=act.name, sigma_w=sw, sigma_b=sb, weights=weights, q=qs))


def _network_trajectory(acts, sws, sbs, q0):
    """q^1 … q^L of a per-layer network from q0 = |x|²/N_0 (THEORY §8): ``q^1 = (σ_w^1)² q0 + (σ_b^1)²``,
    ``q^{l+1} = (σ_w^{l+1})² E_{q^l}[φ_l²] + (σ_b^{l+1})²``, one step of each layer's length-map kernel."""
    L = len(acts)
    q = np.empty(L)
    q[0] = sws[0] ** 2 * q0 + sbs[0] ** 2
    buf, qh, mu1, mu2 = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    for l in range(L - 1):
        act = acts[l]
        buf[1] = q[l]
        _, bad = act.kernels.length_trajectory(act.table, sws[l + 1] ** 2, sbs[l + 1] ** 2, Q_TINY, 0.0, buf, qh, mu1,
                                               mu2)
        q[l + 1] = buf[2]
        if bad or not math.isfinite(q[l + 1]):
            raise NumericalError(f"the length map overflowed at layer {l + 2} ({act.name}, q^{l + 1} = {q[l]:.6g})")
    return q


def _network_spectrum(net, sigma_w, sigma_b, depth, weights, q0) -> JacobianSpectrum:
    """:func:`jacobian_spectrum` of a :class:`~meanfield.Network` (its docstring: "A network whose layers differ")."""
    given = [n for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("depth", depth), ("weights", weights))
             if v is not None]
    if given:
        one = len(given) == 1
        raise InvalidParameterError(f"{', '.join(given)} {'is' if one else 'are'} given by the network: "
                                    f"leave {'it' if one else 'them'} out when the first argument is a Network")
    L = net.depth
    w = net.widths
    for l in range(2, L + 1):
        if w[l] != w[1]:
            raise InvalidParameterError(
                f"layer {l} is {w[l - 1]} → {w[l]}: the free-probability law of J needs square hidden layers "
                f"(N_1 = … = N_L = {w[1]}), got hidden widths {list(net.hidden_widths)}"
            )
    if net.weights[0] == "orthogonal" and w[0] < w[1]:
        raise InvalidParameterError(
            f"layer 1 is orthogonal {w[0]} → {w[1]} with N_0 < N_1: W^1W^1ᵀ then has rank N_0 (not σ_w² I); "
            "the law needs N_0 ≥ N_1 for an orthogonal first layer"
        )
    if net.weights[0] == "gaussian" and w[0] != w[1]:
        raise InvalidParameterError(
            f"layer 1 is Gaussian {w[0]} → {w[1]}: W^1W^1ᵀ is Marchenko–Pastur with ratio N_1/N_0 ≠ 1, which this "
            "law does not include; a Gaussian first layer needs N_0 = N_1 (an orthogonal one may be wider)"
        )
    acts = list(net.activations)
    sws = [float(v) for v in net.sigma_w[:L]]
    sbs = [float(v) for v in net.sigma_b[:L]]
    kinds = list(net.weights[:L])
    hidden_alike = (all(a is acts[0] for a in acts) and len(set(sws)) == 1 and len(set(sbs)) == 1
                    and len(set(kinds)) == 1)
    if hidden_alike:
        # the uniform call itself (bitwise the same numbers); the readout does not enter J
        r = _uniform_spectrum(acts[0], sws[0], sbs[0], L, kinds[0], q0)
        summ = net.summary()
        return dataclasses.replace(r, activation=summ["activation"], sigma_w=summ["sigma_w"],
                                   sigma_b=summ["sigma_b"], weights=summ["weights"], network=net.to_dict())
    if q0 is None:
        raise InvalidParameterError(
            "q0 (the input's |x|²/N_0) is needed: the network's layers differ, so they have no common fixed point q*"
        )
    q0 = float(positive(q0, "q0"))
    qs = _network_trajectory(acts, sws, sbs, q0)
    reps, rep_acts, labels = _cluster_labels_acts(acts, qs)
    counts = [int(c) for c in np.bincount(labels, minlength=len(reps))]
    laws = _d2_laws(rep_acts, reps, contour=_BASELINE)
    log_sw2 = 2.0 * np.log(np.asarray(sws))
    log_w = float(log_sw2.sum())
    log_mean = log_w + float(sum(n * math.log(law.mean) for law, n in zip(laws, counts)))
    ng = float(sum(k == "gaussian" for k in kinds))
    summ = net.summary()
    fields = dict(activation=summ["activation"], sigma_w=summ["sigma_w"], sigma_b=summ["sigma_b"],
                  weights=summ["weights"], q=qs)
    return _assemble(laws, rep_acts, counts, L, ng, log_mean, log_w, sws[0] ** 2, summ["activation"], fields,
                     network=net.to_dict())


def _assemble(laws, acts, counts, L, ng, log_mean, log_w, sw2_first, name, fields, network=None) -> JacobianSpectrum:
    """The spectrum from the groups' laws (``acts[g]``'s φ'² at its q, ``counts[g]`` layers each): moments, edges,
    atoms, support and the density solver. ``ng``: the number of Gaussian weight matrices; ``log_mean`` = log m_1;
    ``log_w`` = Σ_l log (σ_w^l)²; ``sw2_first``: (σ_w^1)² (the push-forward density at L = 1)."""
    gaussian = ng
    mom = _normalised_moments(laws, counts, L, gaussian)
    rel_var = sum(n * law.rel_var for law, n in zip(laws, counts)) + ng
    atoms = _product_atoms(laws, counts, 0.0, L, gaussian, log_w=log_w)

    # upper edge
    log_e, kind = _upper_edge_normalised(laws, counts, L, gaussian)
    _check_upper_edge(log_e, laws, counts, mom, L, gaussian, name)
    log_edge = log_mean + log_e
    if kind == "limit":
        kind = "atom" if any(abs(math.log(loc) - log_edge) < 1e-12 for loc, _ in atoms if loc > 0.0) else "hard"
    point = all(law.is_point for law in laws) and ng == 0.0
    if point:
        solver_kind = "point"
    elif L == 1 and ng == 0.0:
        solver_kind = "pushforward"
    else:
        solver_kind = "newton"
    solver = dict(
        kind=solver_kind,
        act=acts[0],
        acts=list(acts),
        sw2=sw2_first,
        laws=laws,
        cnt=np.asarray(counts, dtype=np.float64),
        zm=np.array([law.zero_mass for law in laws]),
        s1=np.array([-law.rel_var for law in laws]),  # S̃_g(m) = 1 - (Var/μ²) m + …
        gauss=ng,
        H=H_FACTOR * max(1.0, _exp(log_e)),
        cont_lo=-math.inf,
        cont_hi=log_e,
        poles=[(loc / _exp(log_mean), mass * loc / _exp(log_mean)) for loc, mass in atoms if 0.0 < loc < math.inf],
    )
    if _BASELINE:
        solver["contour"] = _pack(laws, [law.mean for law in laws], contour=True)
        solver["compress"] = False
    # lower end of the continuous part (normalised log units) and the support
    if point:
        solver["cont_lo"] = log_e
    elif solver_kind == "pushforward":  # the law of σ_w²φ'² itself: its continuous part starts at its smallest value
        law = laws[0]
        if not law.node_vals.size:
            solver["cont_lo"] = log_e
        elif law.cont_bottom > 0.0:
            solver["cont_lo"] = math.log(law.cont_bottom / law.mean)
        # else: the continuous part reaches 0 (φ' has a zero inside a piece, or rounds to 0 where φ saturates: tanh's
        # 1 - tanh(u)² is exactly 0 beyond |u| ≈ 19.06, inside the truncation 9√q once q > 4.5), cont_lo stays -∞
    else:
        log_lo, found, exact = _lower_edge_normalised(laws, counts, L, gaussian)
        if found and not exact and log_lo < log_e and solver_kind == "newton":
            # the real branch below the spectrum is the physical one only if there is a gap: confirm m is real at
            # half the candidate edge by following the physical branch down from the upper half-plane (the inverse
            # laws' edge needs no confirmation; far below the bulk, where truncated laws put it — e^{-100} … e^{-48000}
            # × the mean — the continuation could not give one: λ underflows, or arg(1 + m) drowns in rounding)
            m, st = _solve_sorted(np.array([log_lo - math.log(2.0)]), solver, mom, float(L))
            found = st[0] == 1 or (st[0] == 0 and abs(m[0].imag) <= _k.REAL_TOL * (1.0 + abs(m[0])))
        if found and log_lo < log_e:
            solver["cont_lo"] = log_lo
    cont_lo = solver["cont_lo"]
    has_cont = 1.0 - sum(mass for _, mass in atoms) > 1e-14
    lo = math.inf
    if has_cont:
        lo = 0.0 if cont_lo == -math.inf else _exp(log_mean + cont_lo)
    if atoms:
        lo = min(lo, min(loc for loc, _ in atoms))
    support = (lo, _exp(log_edge))
    return JacobianSpectrum(
        activation=fields["activation"],
        sigma_w=fields["sigma_w"],
        sigma_b=fields["sigma_b"],
        depth=L,
        weights=fields["weights"],
        q=fields["q"],
        log_mean=log_mean,
        mean=_exp(log_mean),
        variance=_exp(2.0 * log_mean + math.log(rel_var)) if rel_var > 0.0 else 0.0,
        edge=_exp(log_edge),
        log_edge=log_edge,
        edge_kind=kind,
        support=support,
        atoms=atoms,
        _moments=mom,
        _solver=solver,
        network=network,
    )


# ------------------------------------------------------------------------------------------------------ closed forms
def fuss_catalan_moment(k: int, depth: int) -> float:
    """Moments of the Fuss–Catalan law, ``C((L+1)k, k)/(Lk + 1)`` (THEORY §2): JJᵀ of a linear Gaussian network at
    σ_w = 1 (L = 1: Marchenko–Pastur, the Catalan numbers)."""
    k = integer(k, "k", 0)
    L = integer(depth, "depth", 1)
    return comb((L + 1) * k, k) / (L * k + 1)


def fuss_catalan_edge(depth: int) -> float:
    """Upper edge ``(L+1)^{L+1}/L^L`` of the Fuss–Catalan law (THEORY §2: 4, 6.75, 9.48148, 12.20703 for L = 1..4)."""
    L = integer(depth, "depth", 1)
    return math.exp((L + 1) * math.log(L + 1) - L * math.log(L))


def fuss_catalan_density(x, depth):
    """Fuss–Catalan density [vec] from its parametrisation (Haagerup & Möller 2012; Neuschel 2014), s = L + 1:
    ``x(φ) = sin(sφ)^s / (sin φ sin((s-1)φ)^{s-1})``, ``ρ = sin²φ sin((s-1)φ)^{s-2} / (π sin(sφ)^{s-1})``, 0 < φ < π/s.

    Independent of the S-transform solver: the tests check :func:`jacobian_spectrum` ("linear", Gaussian, σ_w = 1)
    against it.
    """
    L = integer(depth, "depth", 1)
    xa = as_array(x, "x")
    s = L + 1.0
    flat = xa.reshape(-1)
    out = np.zeros(flat.shape)
    inside = (flat > 0.0) & (flat < fuss_catalan_edge(L))
    t = flat[inside]

    def logx(p):
        return s * np.log(np.sin(s * p)) - np.log(np.sin(p)) - (s - 1.0) * np.log(np.sin((s - 1.0) * p))

    lo = np.zeros(t.shape)  # x(φ) decreases from the edge (φ → 0) to 0 (φ → π/s)
    hi = np.full(t.shape, math.pi / s)
    lt = np.log(t)
    for _ in range(70):
        mid = 0.5 * (lo + hi)
        big = logx(mid) > lt
        lo = np.where(big, mid, lo)
        hi = np.where(big, hi, mid)
    p = 0.5 * (lo + hi)
    out[inside] = np.sin(p) ** 2 * np.sin((s - 1.0) * p) ** (s - 2.0) / (math.pi * np.sin(s * p) ** (s - 1.0))
    out = out.reshape(xa.shape)
    return float(out) if np.ndim(x) == 0 else out


def marchenko_pastur_density(x):
    """Marchenko–Pastur density with ratio 1 and unit mean, ``sqrt(x(4 - x))/(2πx)`` on (0, 4) [vec]: the L = 1
    Fuss–Catalan law (the tests assert the identity)."""
    xa = as_array(x, "x")
    inside = (xa > 0.0) & (xa < 4.0)
    safe = np.where(inside, xa, 1.0)
    out = np.where(inside, np.sqrt(safe * (4.0 - safe)) / (2.0 * math.pi * safe), 0.0)
    return float(out) if np.ndim(x) == 0 else out


def bernoulli_edge(p, depth, weights="gaussian") -> float:
    """Upper edge of JJᵀ for a Bernoulli(p) D² (ReLU: p = 1/2; hard-tanh: p = erf(1/√(2q*))) at criticality σ_w² = 1/p
    (THEORY §2; Pennington et al. 2018, the Bernoulli D² of ReLU-type networks).

    Gaussian: ``M^{-1}(m) = (1 + m)(1 + m/p)^L/m``, minimal at the root of ``L m² + (L - 1) m - p = 0``.
    Orthogonal: ``M^{-1}(m) = (p + m)^L/(p^L m (1 + m)^{L-1})``, minimal at ``m = p/(L(1 - p) - 1)`` when
    L(1 - p) > 1 (ReLU, L ≥ 3: L^L/(L - 1)^{L-1}); otherwise the edge is the atom at p^{-L}.
    """
    pv = float(positive(p, "p"))
    if pv > 1.0:
        raise InvalidParameterError(f"p must lie in (0, 1], got {pv}")
    L = integer(depth, "depth", 1)
    weights = choice(weights, "weights", WEIGHTS)
    if weights == "gaussian":
        m = (-(L - 1) + math.sqrt((L - 1) ** 2 + 4.0 * L * pv)) / (2.0 * L)
        return math.exp(math.log1p(m) + L * math.log1p(m / pv) - math.log(m))
    if L * (1.0 - pv) <= 1.0:
        return pv ** (-L)
    m = pv / (L * (1.0 - pv) - 1.0)
    return math.exp(L * math.log(pv + m) - L * math.log(pv) - math.log(m) - (L - 1) * math.log1p(m))
