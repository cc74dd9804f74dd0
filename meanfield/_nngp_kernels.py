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


BLOCK = 64  # columns summed together: one term count per block, the inner loop over columns vectorised


@njit(**JIT)
def _series_entry(Ar, Br, SAr, SBr, Ac, Bc, SAc, SBc, i, j, rho, tol, out):
    """Normalised Mehler sums ``Σ_k Â_k(i) Â_k(j) ρ^k`` (and the same for B) to a truncation bound ≤ tol.

    ``Ar[i, k] = a_k(q_i)/√(E_{q_i} φ²)`` (rows), ``Ac[k, j]`` the same for the columns' inputs (transposed), and
    ``SAr[i, m] = √(Σ_{k≥m} Ar[i, k]² + r_i)`` (``r_i`` the Parseval residual of the stored coefficients; ``SAc`` alike):
    by Cauchy–Schwarz the omitted terms from m on are at most ``|ρ|^m SAr[i, m] SAc[j, m]``. Returns False when the
    stored terms do not reach the bound (the caller then integrates the entry directly).
    """
    s0 = 0.0
    s1 = 0.0
    p = 1.0
    for k in range(Ar.shape[1]):
        s0 += Ar[i, k] * Ac[k, j] * p
        s1 += Br[i, k] * Bc[k, j] * p
        p *= rho
        pa = abs(p)
        if pa * SAr[i, k + 1] * SAc[j, k + 1] <= tol and pa * SBr[i, k + 1] * SBc[j, k + 1] <= tol:
            out[0] = s0
            out[1] = s1
            return True
    return False


@njit(**JIT)
def _block_terms(SAr, SBr, SAb, SBb, i, b, rmax, tol):
    """Terms m after which the bound ``rmax^m SAr[i, m] SAb[b, m] ≤ tol`` (and B alike) holds for every column of block
    b (``SAb[b, m]`` the largest ``SAc[j, m]`` of the block, ``rmax`` its largest |ρ|); -1 when no stored m reaches it."""
    p = 1.0
    for m in range(1, SAr.shape[1]):
        p *= rmax
        if p * SAr[i, m] * SAb[b, m] <= tol and p * SBr[i, m] * SBb[b, m] <= tol:
            return m
    return -1


@njit(parallel=True, **JIT)
def series_layer(qa, qb, Ar, Br, SAr, SBr, NAr, NBr, Ac, Bc, SAc, SBc, SAb, SBb, NAc, NBc, fa, da,
                 K, T, gamma, sb2, alpha, beta, tol, fails, mask, odd):
    """One layer by the Mehler series of THEORY §7, ``E φ(u)φ(v) = Σ_k a_k(q_i) a_k(q_j) ρ^k`` (and φ' alike).

    Row side ``Ar, Br`` (n1, K), column side transposed ``Ac, Bc`` (K, n2), their tail bounds ``SAr`` … (n, K + 1), the
    blocks' largest column tails ``SAb, SBb`` (n2 / BLOCK, K + 1) and the normalisations ``NA = √(E_q φ²)``,
    ``NB = √(E_q φ'²)`` (see :func:`_series_entry`). Columns go in blocks of :data:`BLOCK`: one term count from the
    block's largest |ρ| and tails, the sum vectorised over the block; a block whose bound is not reached goes entry by
    entry. ``fa, da``: E_q φ², E_q φ'² of the inputs, the exact diagonal of K(X, X). Entries whose series does not
    reach ``tol`` are left untouched, marked in ``mask`` and counted in ``fails[i]`` (each entry's verdict is its own
    bound's: a block passes only where each of its entries would). ``odd``: φ is odd, so that only the odd a_k and the
    even b_k are non-zero (the block sums skip the zero halves; an even count m is rounded up, which only adds a term).
    """
    n1, n2 = K.shape
    sym = qb.shape[0] == 0
    qc = qa if sym else qb
    nb = (n2 + BLOCK - 1) // BLOCK
    for k in prange(n1):
        i = _rows(n1, sym, k)
        out = np.empty(2)
        rho = np.empty(BLOCK)
        p = np.empty(BLOCK)
        s0 = np.empty(BLOCK)
        s1 = np.empty(BLOCK)
        r2 = np.empty(BLOCK)
        nf = 0
        if sym:
            T[i, i] = alpha * fa[i] + beta + gamma * da[i] * T[i, i]
            K[i, i] = gamma * fa[i] + sb2
        b0 = (i + 1) // BLOCK if sym else 0
        for b in range(b0, nb):
            j0 = b * BLOCK
            if sym and j0 <= i:
                j0 = i + 1
            j1 = min(n2, (b + 1) * BLOCK)
            w = j1 - j0
            if w <= 0:
                continue
            rmax = 0.0
            for jj in range(w):
                j = j0 + jj
                rr = math.sqrt(qa[i] * qc[j])
                r = K[i, j] / rr if rr > 0.0 else 0.0
                r = -1.0 if r < -1.0 else (1.0 if r > 1.0 else r)
                rho[jj] = r
                rmax = max(rmax, abs(r))
            m = _block_terms(SAr, SBr, SAb, SBb, i, b, rmax, tol)
            if m >= 0:
                for jj in range(w):
                    s0[jj] = 0.0
                    s1[jj] = 0.0
                    p[jj] = 1.0
                if odd:  # a_k = 0 for even k, b_k = 0 for odd k: the pairs (b_t, a_{t+1}), with ρ² steps
                    for jj in range(w):
                        r2[jj] = rho[jj] * rho[jj]
                    for t in range(0, m, 2):
                        c = Br[i, t]
                        a = Ar[i, t + 1] if t + 1 < Ar.shape[1] else 0.0
                        for jj in range(w):
                            s1[jj] += c * Bc[t, j0 + jj] * p[jj]
                            s0[jj] += a * Ac[t + 1, j0 + jj] * (p[jj] * rho[jj])
                            p[jj] *= r2[jj]
                else:
                    for t in range(m):
                        a = Ar[i, t]
                        c = Br[i, t]
                        for jj in range(w):
                            s0[jj] += a * Ac[t, j0 + jj] * p[jj]
                            s1[jj] += c * Bc[t, j0 + jj] * p[jj]
                            p[jj] *= rho[jj]
                for jj in range(w):
                    j = j0 + jj
                    h0 = s0[jj] * NAr[i] * NAc[j]
                    h1 = s1[jj] * NBr[i] * NBc[j]
                    T[i, j] = alpha * h0 + beta + gamma * h1 * T[i, j]
                    K[i, j] = gamma * h0 + sb2
            else:
                for jj in range(w):
                    j = j0 + jj
                    if not _series_entry(Ar, Br, SAr, SBr, Ac, Bc, SAc, SBc, i, j, rho[jj], tol, out):
                        nf += 1
                        mask[i, j] = 1
                        continue
                    h0 = out[0] * NAr[i] * NAc[j]
                    h1 = out[1] * NBr[i] * NBc[j]
                    T[i, j] = alpha * h0 + beta + gamma * h1 * T[i, j]
                    K[i, j] = gamma * h0 + sb2
        fails[i] = nf


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
