"""Mehler (Hermite) series of two-point Gaussian expectations for smooth activations.

For ``u1, u2`` of variance q and correlation c, ``E φ(u1)φ(u2) = Σ_k a_k² c^k`` and ``E φ'(u1)φ'(u2) = Σ_k b_k² c^k``
(Mehler's formula) with ``a_k = E[φ(√q z) He_k(z)]/√(k!)`` and ``b_k`` the same for φ'. Once the coefficients of a
variance are known, the two-point expectations at any c are a polynomial: the Fisher layer maps
(:mod:`meanfield.fisher`) and the c* solve of :func:`meanfield.fixed_point` use them. A series is accepted only when
it reproduces E_q φ² and E_q φ'² (Parseval's identity at c = 1) to 1e-12 relative and its coefficients of φ and φ' agree
through Gaussian integration by parts (see :func:`mehler_coefficients`).
"""

from __future__ import annotations

import math
import os
import threading
import uuid

import numpy as np
from numba import njit

# Mehler series of the two-point expectations (smooth φ): Gauss–Hermite sizes tried in turn, and the accepted error
# estimate |E_q φ² - Σ_k a_k²| (and the same for φ'²) relative to E_q φ² (μ_1); see :func:`mehler_coefficients`.
HERMITE_SIZES = (32, 64, 128, 256, 512, 1024)
HERMITE_RTOL = 1e-12
# Gaussian integration by parts, E[φ'(√q z) He_k(z)] √q = E[φ(√q z) He_{k+1}(z)], i.e. b_k = a_{k+1} √((k+1)/q): a table
# is accepted only when Σ_k (b_k - a_{k+1}√((k+1)/q))² ≤ IBP_RTOL·E_q φ'². Parseval's identity cannot see aliasing that
# only moves coefficients around: an n-point rule's coefficients of sin(√q z) at q ≳ 10³ (its spectrum centred near
# degree q, beyond the rule) are aliases whose squares still sum to E_q φ², but their identity misses by O(1).
# Resolved tables meet it to ≤ 3e-13 (the sum is second order in the coefficients' errors).
IBP_RTOL = 1e-11
# Sizes below NODES_PER_Q·q are not tried for variance q: measured for tanh, the series needs n = 64 at q = 0.26, 256 at
# q = 0.87, 512 at q = 2 and 1024 at q = 4 (the coefficients of a function analytic in a strip decay like e^{-c√k/√q}).
# Skipping saves the failing attempts; a larger rule than needed is only slower, never less accurate.
NODES_PER_Q = 200.0
# Version of the cached basis files, bumped whenever _build_basis changes what it returns: other versions are rebuilt.
BASIS_VERSION = 1


_BASIS_LOCK = threading.Lock()
_BASIS: dict[int, tuple] = {}
# Products are taken in row blocks with rows·n·K below this: OpenBLAS then stays on one thread, whose hand-off to a second
# one costs milliseconds on a busy machine (these products take ~0.1 ms).
_BLOCK_WORK = 1 << 18


def _hermite_basis(n):
    """Positive Gauss–Hermite nodes z_i (n even; weight e^{-z²/2}/√(2π)) and the folded bases of even and odd degree.

    ``Be[j, i] = w_i He_{2j}(z_i)/√((2j)!)`` and ``Bo[j, i] = w_i He_{2j+1}(z_i)/√((2j+1)!)`` for the positive nodes, so that
    for any f, ``a_{2j} = Be[j]·(f(z) + f(-z))`` and ``a_{2j+1} = Bo[j]·(f(z) - f(-z))`` (the rule is symmetric).
    Cached per n, in memory and as ``hermite_basis_v{BASIS_VERSION}_{n}.npz`` in
    :func:`meanfield.activations.cache_dir` (so that a warm start does not import scipy.special).
    """
    with _BASIS_LOCK:
        got = _BASIS.get(n)
        if got is None:
            got = _BASIS[n] = _load_basis(n)
        return got


def _basis_path(n):
    from meanfield.activations import cache_dir

    return cache_dir() / f"hermite_basis_v{BASIS_VERSION}_{n}.npz"


def _load_basis(n):
    """The basis from the cache file when it is whole and of this version, else built and (atomically) written."""
    half, K = n // 2, (3 * n) // 4
    path = _basis_path(n)
    try:
        with open(path, "rb") as fh, np.load(fh) as f:  # our own handle: closed even when np.load fails
            got = f["zp"], f["Be"], f["Bo"]
            version = int(f["version"])
        shapes_ok = got[0].shape == (half,) and got[1].shape == (K // 2, half) and got[2].shape == (K // 2, half)
        if version == BASIS_VERSION and shapes_ok and all(np.isfinite(a).all() for a in got):
            return got
    except Exception:  # missing, truncated, corrupt (EOFError, BadZipFile, ...) or foreign: rebuild it
        pass
    got = _build_basis(n)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, zp=got[0], Be=got[1], Bo=got[2], version=BASIS_VERSION)
        os.replace(tmp, path)
    except OSError:  # read-only cache: rebuild next time
        pass
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return got


def _build_basis(n):
    """(zp, Be, Bo) of :func:`_hermite_basis` from scipy's Gauss–Hermite rule."""
    from scipy.special import roots_hermitenorm

    z, w = roots_hermitenorm(n)
    # Hermite functions h_j = He_j(z) e^{-z²/4}/√(j!) by their (stable, bounded) normalised recurrence
    # h_{j+1} = (z h_j - √j h_{j-1})/√(j+1); then w_i He_j(z_i)/√(j!) = h_j(z_i)·w_i e^{z_i²/4}
    h = np.empty((n, n))
    h[0] = np.exp(-0.25 * z * z)
    h[1] = z * h[0]
    for j in range(1, n - 1):
        h[j + 1] = (z * h[j] - math.sqrt(j) * h[j - 1]) / math.sqrt(j + 1)
    wt = np.zeros(n)
    pos = w > 0.0
    wt[pos] = np.exp(np.log(w[pos]) - 0.5 * math.log(2.0 * math.pi) + 0.25 * z[pos] ** 2)
    B = h * wt
    # entries this small only come from nodes far in the Gaussian tail; as subnormal numbers they would slow the
    # products down a hundredfold, and they contribute nothing
    B[np.abs(B) < 1e-200] = 0.0
    half = n // 2
    K = (3 * n) // 4  # coefficients kept (K even)
    zp = np.ascontiguousarray(z[half:])
    Be = np.ascontiguousarray(B[0:K:2, half:])
    Bo = np.ascontiguousarray(B[1:K:2, half:])
    return zp, Be, Bo


def _rows_product(X, Bt):
    """``X @ Bt.T`` in row blocks small enough for a single BLAS thread (see :data:`_BLOCK_WORK`)."""
    out = np.empty((X.shape[0], Bt.shape[0]))
    step = max(1, _BLOCK_WORK // (X.shape[1] * Bt.shape[0]))
    for i in range(0, X.shape[0], step):
        np.matmul(X[i : i + step], Bt.T, out=out[i : i + step])
    return out


@njit(cache=True, nogil=True)
def series_pair(a2, b2, n, c, out):
    """``out = [Σ_k a2[k] c^k, Σ_k b2[k] c^k]`` (Horner, k < n): E φ(u1)φ(u2) and E φ'(u1)φ'(u2) by Mehler's formula."""
    s0 = 0.0
    s1 = 0.0
    for k in range(n - 1, -1, -1):
        s0 = s0 * c + a2[k]
        s1 = s1 * c + b2[k]
    out[0] = s0
    out[1] = s1


@njit(cache=True, nogil=True)
def _square_check(A, B, odd, qs, phi2, mu1, rtol, a2, b2, ok):
    """Interleave, square and check the coefficient products of :func:`_mehler_batch` (one pass instead of a dozen
    array operations); ``ok[j]``: row j meets the Parseval check and the integration-by-parts identity
    (:data:`IBP_RTOL`) at its variance ``qs[j]``.

    ``A[j, :K/2]`` and ``B[j, :K/2]`` are the products of variance j: for odd φ, ``A`` the odd coefficients of φ (of the
    samples φ(z), so doubled here) and ``B`` the even ones of φ' (the same); otherwise ``A[j]``/``A[m + j]`` the even/odd
    coefficients of φ and ``B[j]``/``B[m + j]`` those of φ'. Fills ``a2[j, k] = a_k²`` and ``b2[j, k] = b_k²``.
    """
    m = phi2.shape[0]
    K2 = A.shape[1]
    for j in range(m):
        sa = 0.0
        sb = 0.0
        rid = 0.0  # Σ_k (b_k - a_{k+1} √((k+1)/q))²
        prev_bo = 0.0
        for k in range(K2):
            if odd:
                ae, ao, be, bo = 0.0, 2.0 * A[j, k], 2.0 * B[j, k], 0.0
            else:
                ae, ao, be, bo = A[j, k], A[m + j, k], B[j, k], B[m + j, k]
            a2[j, 2 * k] = ae * ae
            a2[j, 2 * k + 1] = ao * ao
            b2[j, 2 * k] = be * be
            b2[j, 2 * k + 1] = bo * bo
            sa += ae * ae + ao * ao
            sb += be * be + bo * bo
            if k > 0:  # b_{2k-1} against a_{2k}
                t = prev_bo - ae * math.sqrt(2.0 * k / qs[j])
                rid += t * t
            t = be - ao * math.sqrt((2.0 * k + 1.0) / qs[j])  # b_{2k} against a_{2k+1}
            rid += t * t
            prev_bo = bo
        # a non-finite coefficient makes its sum non-finite, and the comparisons false
        ok[j] = (abs(phi2[j] - sa) <= rtol * phi2[j] and abs(mu1[j] - sb) <= rtol * mu1[j]
                 and rid <= IBP_RTOL * mu1[j])


def _mehler_batch(k, n, qs, phi2, mu1, odd=False):
    """Squared coefficients a_k², b_k² (k < K = 3n/4) from the n-point rule, and whether each q meets the tolerance.

    ``odd``: φ is odd (φ' even), so φ and φ' are evaluated at the positive nodes only and the vanishing halves of the
    coefficients (even k for φ, odd k for φ') are not computed. Were φ not odd after all, the missing coefficients
    would fail the Parseval check below, and the series would be rejected, never wrong.
    """
    zp, Be, Bo = _hermite_basis(n)
    m = len(qs)
    u = np.multiply.outer(np.sqrt(qs), zp)
    if not odd:
        u = np.concatenate((u, -u))  # rows m..2m-1: the samples at -z
    f = np.empty(u.shape)
    d = np.empty(u.shape)
    k.phi_dphi_array(u.reshape(-1), f.reshape(-1), d.reshape(-1))
    if odd:  # φ(z) - φ(-z) = 2φ(z) and φ'(z) + φ'(-z) = 2φ'(z) (the factor 2 in _square_check)
        A = _rows_product(f, Bo)
        B = _rows_product(d, Be)
    else:
        fp, fm, dp, dm = f[:m], f[m:], d[:m], d[m:]
        A = np.concatenate((_rows_product(fp + fm, Be), _rows_product(fp - fm, Bo)))
        B = np.concatenate((_rows_product(dp + dm, Be), _rows_product(dp - dm, Bo)))
    K = 2 * Be.shape[0]
    a2 = np.empty((m, K))
    b2 = np.empty((m, K))
    ok = np.empty(m, dtype=bool)
    _square_check(A, B, odd, np.asarray(qs, dtype=np.float64), phi2, mu1, HERMITE_RTOL, a2, b2, ok)
    return a2, b2, ok


def mehler_coefficients(k, qs, phi2, mu1, sizes=HERMITE_SIZES, odd=False):
    """Squared Hermite coefficients of φ(√q z) and φ'(√q z) for each variance in ``qs``, packed: ``(a2, b2, nterms)``.

    Row i of the 2-D arrays ``a2``, ``b2`` holds the coefficients a_k², b_k² of ``qs[i]`` in its first ``nterms[i]``
    entries (zeros beyond); ``nterms[i] = 0`` where no rule size met the tolerance.

    Mehler's formula: for ``u1, u2`` of variance q and correlation c,
    ``E φ(u1)φ(u2) = Σ_k a_k² c^k`` and ``E φ'(u1)φ'(u2) = Σ_k b_k² c^k`` with ``a_k = E[φ(√q z) He_k(z)]/√(k!)``,
    ``b_k`` the same for φ'. The first K = 3n/4 coefficients come from an n-point Gauss–Hermite rule, and the series is
    accepted when ``|E_q φ² - Σ_{k<K} a_k²| ≤ HERMITE_RTOL·E_q φ²``, the same for φ'² against μ_1, and the coefficients
    meet Gaussian integration by parts, b_k = a_{k+1}√((k+1)/q), to :data:`IBP_RTOL` (aliasing that Parseval's identity
    cannot see: sin(√q z) beyond q ≈ 10³; the identity needs φ continuous, as every accepted φ is): at c = 1 the
    mismatch is exactly the error of the truncated, aliased series. For |c| < 1 the truncation part is smaller (all
    omitted a_k² ≥ 0, weighted by |c|^k); the aliasing errors of the kept coefficients can have either sign, so this is
    an error estimate rather than a strict bound (cross-checked against the 16-node two-dimensional rule in the tests).
    Rule sizes of ``sizes`` (default :data:`HERMITE_SIZES`) are tried in turn, each variance from the first
    ``n ≥ NODES_PER_Q·q`` on (the largest size takes every variance left), all variances of one size in one batch; the
    variances a size does not meet go on to the next. Variances where even 1024 nodes fail (tanh beyond q ≈ 6, kinked
    φ) get ``nterms = 0``: those layers use the two-dimensional quadrature. ``odd``: φ is odd
    (:attr:`meanfield.activations.Activation.is_odd`), which halves the work (see :func:`_mehler_batch`).
    """
    m = len(qs)
    found = []  # (indices into qs, a2 rows, b2 rows) of each size that met some variances
    todo = np.argsort(qs, kind="stable")  # ascending q, still without a series
    for n in sizes:
        if todo.size == 0:
            break
        # the variances this size may serve (see NODES_PER_Q; the last size takes all): a prefix, todo being ascending
        take = todo.size if n == sizes[-1] else int(np.searchsorted(NODES_PER_Q * qs[todo], n, side="right"))
        if take == 0:
            continue
        batch = todo[:take]
        a2, b2, ok = _mehler_batch(k, n, qs[batch], phi2[batch], mu1[batch], odd)
        if ok.any():
            found.append((batch[ok], a2[ok], b2[ok]))
        todo = np.concatenate((batch[~ok], todo[take:]))
    K = max((a.shape[1] for _, a, _ in found), default=0)
    a2_all = np.zeros((m, K))
    b2_all = np.zeros((m, K))
    nterms = np.zeros(m, dtype=np.int64)
    for idx, a2, b2 in found:
        a2_all[idx, : a2.shape[1]] = a2
        b2_all[idx, : b2.shape[1]] = b2
        nterms[idx] = a2.shape[1]
    return a2_all, b2_all, nterms
