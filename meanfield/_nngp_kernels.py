"""Numba kernels of :mod:`meanfield.infinite_width` (``mf.kernels``): one layer of the NNGP/NTK recursions over a whole kernel matrix.

Every kernel applies, entry by entry and in place, one layer of THEORY §7 in the common form

    T ← α K̂ + β + γ K̇ T,        K ← γ K̂ + σ_b²,

with ``(K̂, K̇) = (E φ(u)φ(v), E φ'(u)φ'(v))`` for (u, v) centred Gaussian with covariances ``(qa[i], qb[j], K[i, j])``
and ``γ = σ_w²`` of the next layer (``α = γ, β = σ_b²`` in the NTK parameterisation; ``α = N_l/N, β = 1/N`` in the standard
one). They differ in how (K̂, K̇) is evaluated: closed forms (:func:`closed_layer`) or the Mehler series with a rigorous
truncation bound (:func:`series_layer`). ``sym``: the matrix is K(X, X), only its upper triangle (j ≥ i) is updated
(:func:`mirror` fills the lower one at the end). One jit policy: ``cache=True``, float64.
"""

import math

import numpy as np
from numba import njit, prange

from meanfield._closed import erf_twopoint, leaky_relu_twopoint

JIT = dict(cache=True, nogil=True)

CLOSED_LEAKY_RELU = 1  # leaky ReLU of slope ``param`` (ReLU: 0, linear: 1)
CLOSED_ERF = 2


@njit(**JIT)
def _rows(n, sym, k):
    """Row of the k-th iteration: for a triangle, rows are taken in pairs (i, n-1-i) so that a static split of the
    iterations between threads gives each the same number of entries."""
    kk = np.int64(k)  # prange indices are unsigned: mixed with signed ones they would become floats
    if not sym:
        return kk
    h = kk // 2
    return h if kk % 2 == 0 else n - 1 - h


@njit(parallel=True, **JIT)
def closed_layer(code, param, qa, qb, fa, da, K, T, gamma, sb2, alpha, beta):
    """One layer with the closed-form two-point expectations of THEORY §1 (``code``: CLOSED_LEAKY_RELU or CLOSED_ERF).

    ``fa, da``: E_q φ², E_q φ'² of the inputs, the exact diagonal of K(X, X) (an arc-cosine at a correlation that
    rounding left a few ulp below 1 would be off by ~1e-8 there)."""
    n1, n2 = K.shape
    sym = qb.shape[0] == 0
    if sym:
        qb = qa
    for k in prange(n1):
        i = _rows(n1, sym, k)
        out = np.empty(2)
        j0 = i if sym else 0
        for j in range(j0, n2):
            if sym and j == i:
                out[0] = fa[i]
                out[1] = da[i]
            elif code == CLOSED_ERF:
                erf_twopoint(qa[i], qb[j], K[i, j], out)
            else:
                leaky_relu_twopoint(qa[i], qb[j], K[i, j], param, out)
            T[i, j] = alpha * out[0] + beta + gamma * out[1] * T[i, j]
            K[i, j] = gamma * out[0] + sb2


@njit(**JIT)
def _series_entry(A, B, SA, SB, i, j, nt, rho, tol, out):
    """Normalised Mehler sums ``Σ_k Â_k(i) Â_k(j) ρ^k`` (and the same for B) to a truncation bound ≤ tol.

    ``A[i, k] = a_k(q_i)/√(E_{q_i} φ²)`` and ``SA[i, m] = √(Σ_{k≥m} A[i, k]² + r_i)`` (``r_i`` the Parseval residual of the
    stored coefficients); by Cauchy–Schwarz the omitted terms from m on are at most ``|ρ|^m SA[i, m] SA[j, m]``. Returns
    False when ``nt`` terms do not reach the bound (the caller then integrates the entry directly).
    """
    s0 = 0.0
    s1 = 0.0
    p = 1.0
    for k in range(nt):
        s0 += A[i, k] * A[j, k] * p
        s1 += B[i, k] * B[j, k] * p
        p *= rho
        pa = abs(p)
        if pa * SA[i, k + 1] * SA[j, k + 1] <= tol and pa * SB[i, k + 1] * SB[j, k + 1] <= tol:
            out[0] = s0
            out[1] = s1
            return True
    return False


@njit(parallel=True, **JIT)
def series_layer(qa, qb, A, B, SA, SB, NA, NB, nta, ntb, fa, da, fb, db, K, T, gamma, sb2, alpha, beta, tol, fails):
    """One layer by the Mehler series of THEORY §7, ``E φ(u)φ(v) = Σ_k a_k(q_i) a_k(q_j) ρ^k`` (and φ' alike).

    Rows ``0..n1-1`` of the coefficient arrays belong to ``qa``, rows ``n1..`` to ``qb`` (none when ``sym``); ``NA``/``NB``
    hold √(E_q φ²), √(E_q φ'²) of each row (the normalisation of A, B), ``nta``/``ntb`` the number of stored terms
    (0: no accepted series). ``fa, da`` (``fb, db``) are E_q φ², E_q φ'² of each input: the exact diagonal of K(X, X).
    Entries whose series does not reach ``tol`` are left untouched and counted in ``fails[i]``.
    """
    n1, n2 = K.shape
    sym = qb.shape[0] == 0
    for k in prange(n1):
        i = _rows(n1, sym, k)
        out = np.empty(2)
        nf = 0
        j0 = i if sym else 0
        for j in range(j0, n2):
            if sym and j == i:
                h0 = fa[i]
                h1 = da[i]
            else:
                jj = j if sym else n1 + j
                q2 = qa[j] if sym else qb[j]
                nt = min(nta[i], ntb[j] if not sym else nta[j])
                if nt == 0:
                    nf += 1
                    continue
                rr = math.sqrt(qa[i] * q2)
                rho = K[i, j] / rr if rr > 0.0 else 0.0
                rho = -1.0 if rho < -1.0 else (1.0 if rho > 1.0 else rho)
                if not _series_entry(A, B, SA, SB, i, jj, nt, rho, tol, out):
                    nf += 1
                    continue
                h0 = out[0] * NA[i] * NA[jj]
                h1 = out[1] * NB[i] * NB[jj]
            T[i, j] = alpha * h0 + beta + gamma * h1 * T[i, j]
            K[i, j] = gamma * h0 + sb2
        fails[i] = nf


@njit(**JIT)
def series_row_failures(i, qa, qb, A, B, SA, SB, nta, ntb, K, tol):
    """Columns j of row i that :func:`series_layer` could not evaluate (same test, nothing updated)."""
    n1, n2 = K.shape
    sym = qb.shape[0] == 0
    out = np.empty(2)
    bad = np.empty(n2, dtype=np.int64)
    m = 0
    j0 = i if sym else 0
    for j in range(j0, n2):
        if sym and j == i:
            continue
        jj = j if sym else n1 + j
        q2 = qa[j] if sym else qb[j]
        nt = min(nta[i], ntb[j] if not sym else nta[j])
        if nt == 0:
            bad[m] = j
            m += 1
            continue
        rr = math.sqrt(qa[i] * q2)
        rho = K[i, j] / rr if rr > 0.0 else 0.0
        rho = -1.0 if rho < -1.0 else (1.0 if rho > 1.0 else rho)
        if not _series_entry(A, B, SA, SB, i, jj, nt, rho, tol, out):
            bad[m] = j
            m += 1
    return bad[:m]


@njit(parallel=True, **JIT)
def mirror(M):
    """Copy the upper triangle of a square matrix into its lower one, in tiles (cache-friendly transpose)."""
    n = M.shape[0]
    b = 64
    nb = (n + b - 1) // b
    for bi in prange(nb):
        i0 = bi * b
        i1 = min(n, i0 + b)
        for bj in range(bi + 1):
            j0 = bj * b
            j1 = min(n, j0 + b)
            for i in range(i0, i1):
                for j in range(j0, min(j1, i)):
                    M[i, j] = M[j, i]
