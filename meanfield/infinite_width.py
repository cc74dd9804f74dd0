"""Infinite-width kernels of a data set: NNGP and NTK (THEORY §7), and kernel-regression predictions.

Network (THEORY §0): ``depth`` L hidden layers of width N, ``h^l = W^l x^{l-1} + b^l``, ``x^l = φ(h^l)``, a scalar readout
``f = W^{L+1} x^L + b^{L+1}``; σ_w, σ_b are standard deviations.

NNGP (Lee et al. 2018, eq. 4; Matthews et al. 2018): ``K^1(x, x') = σ_w² x·x'/N_0 + σ_b²`` and
``K^{l+1} = σ_w² K̂^l + σ_b²`` with ``K̂^l = E φ(u)φ(v)``, (u, v) centred Gaussian with covariances
``[[K^l(x,x), K^l(x,x')], [K^l(x,x'), K^l(x',x')]]``; the output kernel is K^{L+1} (THEORY §7).

NTK (Jacot et al. 2018, Theorem 1; THEORY §7), with ``K̇^l = E φ'(u)φ'(v)``:

* ``parameterization="ntk"`` (``h = σ_w W x/√N + σ_b b``, W, b standard normal; neural-tangents' default):
  ``Θ^1 = K^1``, ``Θ^{l+1} = K^{l+1} + σ_w² K̇^l Θ^l``, output Θ^{L+1}.
* ``parameterization="standard"`` (W ~ N(0, σ_w²/N), our networks and PyTorch's): the empirical NTK
  ``Θ = Σ_{l=1}^{L+1} (x^{l-1}·x'^{l-1} + 1) δ^l·δ'^l`` grows like N. ``.ntk`` is **Θ/N**, the object of THEORY §3:
  ``Σ_{l=1}^{L+1} (N_{l-1} K̂^{l-1} + 1) P^l / N`` with ``P^{L+1} = 1``, ``P^l = σ_w² K̇^l P^{l+1}`` and
  ``N_0 K̂^0 = x·x'`` (the first layer's and the biases' terms are O(1/N)). Give ``width=N`` for that finite-N expectation
  (compare with ``emp.ntk(net, X) / N``); ``width=None`` is its N → ∞ limit ``Σ_{l=2}^{L+1} K̂^{l-1} P^l``.

Both NTKs are summed forward, ``T^{l+1} = α K̂^l + β + σ_w² K̇^l T^l`` (``α = σ_w², β = σ_b²`` for the NTK
parameterisation; ``α = 1, β = 1/N`` for the standard one), in place over the matrix, one layer at a time.

How (K̂, K̇) is evaluated per entry:

* closed forms for ReLU, leaky ReLU, linear (arc-cosine kernel, Cho & Saul 2009) and erf (Williams 1997), THEORY §1;
* otherwise the Mehler series ``E φ(u)φ(v) = Σ_k a_k(q) a_k(q') ρ^k`` (THEORY §7), ``a_k(q) = E[φ(√q z) He_k(z)]/√(k!)``
  from one coefficient table per input (its own variance q; Gauss–Hermite rules of 32–1024 nodes), accepted when
  Parseval's identity ``Σ_k a_k² = E_q φ²`` holds to :data:`PARSEVAL_RTOL` (and the same for φ'), and integration by
  parts ``b_k = a_{k+1}√((k+1)/q)`` (b_k those of φ') to ``meanfield._mehler.IBP_RTOL`` — the check that rejects
  aliased tables whose squares still sum right (sin at q ≳ 10³); each entry is summed
  until the Cauchy–Schwarz bound of the omitted terms, ``|ρ|^m (Σ_{k≥m} a_k(q)²)^{1/2} (Σ_{k≥m} a_k(q')²)^{1/2}``
  (the tables' Parseval residuals included), is below :data:`SERIES_TOL` of ``(E_q φ² E_{q'} φ²)^{1/2}``; entries go in
  blocks of 64 columns that share one term count, vectorised;
* entries the series does not reach (kinked φ such as hard-tanh or ``"Max(0, x)"``, whose coefficients decay
  algebraically; nearly parallel inputs of large q) by the activation's two-dimensional panelled Gauss–Legendre rule,
  whose error estimate |I_16 - I_10| must be below ``rtol`` (else :class:`~meanfield.errors.NumericalError`). That route
  costs 0.1–2 ms per entry and layer: kinked activations are for data sets of hundreds of inputs, not thousands.

The diagonal of K(X, X) is the length map (the one-point moments E_q φ², E_q φ'²) exactly. Memory: the two output
matrices (n = 20,000: 6.4 GB), for the series four coefficient tables of n × K (K ≤ 768), and a byte mask of the entries
that need the quadrature (allocated lazily: only its touched pages cost memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meanfield import _nngp_kernels as _nk
from meanfield._validate import as_array, choice, integer, nonnegative, positive
from meanfield.activations import get_activation
from meanfield.errors import InvalidParameterError, NumericalError
from meanfield.results import Result

__all__ = ["kernels", "Kernels", "predict", "Prediction"]

# Truncation bound of each entry's Mehler series, relative to the Cauchy–Schwarz scale √(E_q φ² E_q' φ²) of the entry.
SERIES_TOL = 1e-13
# Parseval acceptance of a coefficient table: |E_q φ² - Σ_k a_k²| ≤ PARSEVAL_RTOL·E_q φ² (and the same for φ').
PARSEVAL_RTOL = 1e-13
# Largest Parseval residual of the largest rule still used (large q, where no rule meets PARSEVAL_RTOL): the entries of
# small |ρ| still meet SERIES_TOL through the factor |ρ|^m of the bound.
RELAXED_RTOL = 1e-4
_CLOSED = {"relu": (_nk.CLOSED_LEAKY_RELU, 0.0), "linear": (_nk.CLOSED_LEAKY_RELU, 1.0), "erf": (_nk.CLOSED_ERF, 0.0)}


@dataclass(frozen=True)
class Kernels(Result):
    """NNGP and NTK matrices of a data set (THEORY §7), with the inputs that define them.

    Attributes
    ----------
    nngp : (n1, n2) array, the output NNGP kernel K^{L+1}(X, X2).
    ntk : (n1, n2) array, the NTK: Θ^{L+1} in the NTK parameterisation; Θ/N (N = ``width``, or its N → ∞ limit when
        ``width`` is None) in the standard parameterisation (module docstring).
    parameterization : "ntk" or "standard".
    activation, sigma_w, sigma_b, depth, width : the network (σ's standard deviations; tuples per layer, the readout
        last, when the layers differ).
    error : estimated largest error of one layer's two-point expectation, relative to the entry's Cauchy–Schwarz scale
        (0 for closed forms; the series bound :data:`SERIES_TOL`; the quadrature's |I_16 - I_10|).
    entries : number of (entry, layer) evaluations by each route: ``{"closed": …, "series": …, "quadrature": …}``.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    parameterization: str
    activation: str
    sigma_w: float | tuple
    sigma_b: float | tuple
    depth: int
    width: float | None
    error: float
    entries: dict = field(default_factory=dict)


def _as_inputs(X, name):
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a 2-D array of real inputs (one per row), got {type(X).__name__}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameterError(f"{name} must be a non-empty 2-D array (n_inputs, input_width), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be finite; row {int(np.argmax(~np.isfinite(arr).all(1)))} is not")
    return np.ascontiguousarray(arr)


def _moments(act, q):
    """(E_q φ², E_q φ'²) for each variance in q (the activation's table, closed form or direct quadrature)."""
    k = act.kernels
    tab = act.table
    out = np.empty(k.N_MOMENTS)
    f = np.empty(q.size)
    d = np.empty(q.size)
    uq, inv = np.unique(q, return_inverse=True)
    fu = np.empty(uq.size)
    du = np.empty(uq.size)
    for i, qi in enumerate(uq):
        k.moments(qi, tab, out)
        fu[i] = out[0]
        du[i] = out[2]
    f[:] = fu[inv]
    d[:] = du[inv]
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(d))):
        raise NumericalError(f"E_q φ² of activation {act.name!r} is not finite at some q (overflow at large q?)")
    return f, d


def _coefficients(act, q, f, d):
    """Signed, normalised Mehler coefficient tables of every variance in q (see :func:`_nk.series_layer`).

    Returns (A, B, SA, SB, NA, NB): ``A[i, k] = a_k(q_i)/√f_i``, ``B[i, k] = b_k(q_i)/√d_i`` (b_k those of φ'),
    ``SA[i, m] = (Σ_{k≥m} A[i, k]² + |1 - Σ_k A[i, k]²|)^{1/2}`` (likewise SB), ``NA = √f``, ``NB = √d``. Each variance
    takes the first Gauss–Hermite size of :data:`meanfield._mehler.HERMITE_SIZES` whose coefficients meet Parseval's
    identity to :data:`PARSEVAL_RTOL` and integration by parts (b_k = a_{k+1}√((k+1)/q), to
    :data:`meanfield._mehler.IBP_RTOL`: aliasing that Parseval's identity cannot see); failing all, the largest size's as they are when within :data:`RELAXED_RTOL`
    (their residual then enters every tail bound, so that only entries of small enough |ρ| pass), else none (zero
    coefficients, tail bounds +inf: every entry of that input goes to the quadrature). The residual of an n-point rule
    is the tail beyond K = 3n/4 plus the aliasing of the kept coefficients, which comes from components of degree
    ≥ 2n - K and is far smaller.
    """
    from meanfield._mehler import HERMITE_SIZES, IBP_RTOL, NODES_PER_Q, _hermite_basis

    m = q.size
    k = act.kernels
    odd = act.is_odd  # half the samples and products; were φ not odd, Parseval's identity would reject the table
    found = []
    todo = np.argsort(q, kind="stable")
    for n in HERMITE_SIZES:
        if todo.size == 0:
            break
        take = todo.size if n == HERMITE_SIZES[-1] else int(np.searchsorted(NODES_PER_Q * q[todo], n, side="right"))
        if take == 0:
            continue
        batch = todo[:take]
        zp, Be, Bo = _hermite_basis(n)
        u = np.multiply.outer(np.sqrt(q[batch]), zp)
        if not odd:  # rows b..2b-1: the samples at -z
            u = np.concatenate((u, -u))
        fv = np.empty(u.shape)
        dv = np.empty(u.shape)
        k.phi_dphi_array(u.reshape(-1), fv.reshape(-1), dv.reshape(-1))
        b = batch.size
        K = 2 * Be.shape[0]
        A = np.empty((b, K))
        B = np.empty((b, K))
        if odd:  # φ odd, φ' even: a_{2j} = b_{2j+1} = 0, and f(z) - f(-z) = 2 f(z), d(z) + d(-z) = 2 d(z)
            A[:, 0::2] = 0.0
            A[:, 1::2] = (2.0 * fv) @ Bo.T
            B[:, 0::2] = (2.0 * dv) @ Be.T
            B[:, 1::2] = 0.0
        else:
            A[:, 0::2] = (fv[:b] + fv[b:]) @ Be.T
            A[:, 1::2] = (fv[:b] - fv[b:]) @ Bo.T
            B[:, 0::2] = (dv[:b] + dv[b:]) @ Be.T
            B[:, 1::2] = (dv[:b] - dv[b:]) @ Bo.T
        with np.errstate(invalid="ignore", over="ignore"):
            ra = np.abs(f[batch] - np.sum(A * A, axis=1))
            rb = np.abs(d[batch] - np.sum(B * B, axis=1))
            # Gaussian integration by parts, b_k = a_{k+1} √((k+1)/q) (see meanfield._mehler.IBP_RTOL): Parseval's
            # identity cannot see aliasing that only moves coefficients around (sin(√q z) at q ≳ 10³)
            kk = np.arange(1, K)
            rid = np.sum((B[:, :-1] - A[:, 1:] * np.sqrt(kk[None, :] / q[batch][:, None])) ** 2, axis=1)
            ok = (ra <= PARSEVAL_RTOL * f[batch]) & (rb <= PARSEVAL_RTOL * d[batch]) & (rid <= IBP_RTOL * d[batch])
        if n == HERMITE_SIZES[-1]:  # the largest rule: kept as it is, its Parseval residual in the tail bounds
            ok = (ra <= RELAXED_RTOL * f[batch]) & (rb <= RELAXED_RTOL * d[batch]) & (rid <= RELAXED_RTOL * d[batch])
        if ok.any():
            found.append((batch[ok], A[ok], B[ok]))
        todo = np.concatenate((batch[~ok], todo[take:]))
    Kmax = max((a.shape[1] for _, a, _ in found), default=1)
    A = np.zeros((m, Kmax))
    B = np.zeros((m, Kmax))
    has = np.zeros(m, dtype=bool)
    for idx, a, b in found:
        A[idx, : a.shape[1]] = a
        B[idx, : b.shape[1]] = b
        has[idx] = True
    NA = np.sqrt(f)
    NB = np.sqrt(d)
    A /= np.where(NA > 0, NA, 1.0)[:, None]
    B /= np.where(NB > 0, NB, 1.0)[:, None]
    SA, SB = _tails(A), _tails(B)
    SA[~has] = np.inf  # no coefficients at all: no bound holds (every entry of that input goes to the quadrature)
    SB[~has] = np.inf
    return A, B, SA, SB, NA, NB


def _tails(A):
    """``S[i, m] = (Σ_{k≥m} A[i, k]² + |1 - Σ_k A[i, k]²|)^{1/2}`` for m = 0..K (the tail bounds of the series)."""
    sq = A * A
    S = np.empty((A.shape[0], A.shape[1] + 1))
    S[:, :-1] = np.cumsum(sq[:, ::-1], axis=1)[:, ::-1]
    S[:, -1] = 0.0
    S += np.abs(1.0 - S[:, :1])
    return np.sqrt(S)


class _Layer:
    """Applies one layer to (K, T) in place for one activation, choosing the route per entry."""

    def __init__(self, act, rtol):
        self.act = act
        self.rtol = rtol
        self.mask = None
        self.closed = _CLOSED.get(act.closed_form)
        if act.closed_form == "leaky_relu":
            self.closed = (_nk.CLOSED_LEAKY_RELU, float(act.params.get("negative_slope", 0.01)))

    def __call__(self, K, T, qa, qb, fa, da, fb, db, gamma, sb2, alpha, beta, counts):
        sym = qb.size == 0
        n1, n2 = K.shape
        total = n1 * (n1 + 1) // 2 if sym else n1 * n2
        if self.closed is not None:
            _nk.closed_layer(self.closed[0], self.closed[1], qa, qb, fa, da, K, T, gamma, sb2, alpha, beta)
            counts["closed"] += total
            return 0.0
        q = qa if sym else np.concatenate((qa, qb))
        f = fa if sym else np.concatenate((fa, fb))
        d = da if sym else np.concatenate((da, db))
        A, B, SA, SB, NA, NB = _coefficients(self.act, q, f, d)
        c = slice(0, n1) if sym else slice(n1, None)
        Ac, Bc = np.ascontiguousarray(A[c].T), np.ascontiguousarray(B[c].T)
        SAb, SBb = _block_max(SA[c]), _block_max(SB[c])
        fails = np.zeros(n1, dtype=np.int64)
        if self.mask is None or self.mask.shape != K.shape:
            self.mask = np.zeros(K.shape, dtype=np.uint8)  # pages untouched (never written) cost no memory
        _nk.series_layer(qa, qb, A[:n1], B[:n1], SA[:n1], SB[:n1], NA[:n1], NB[:n1], Ac, Bc, SA[c], SB[c], SAb, SBb,
                         NA[c], NB[c], fa, da, K, T, gamma, sb2, alpha, beta, SERIES_TOL, fails, self.mask,
                         self.act.is_odd)
        nfail = int(fails.sum())
        counts["series"] += total - nfail
        if nfail == 0:
            return SERIES_TOL
        counts["quadrature"] += nfail
        err = self._quadrature(K, T, qa, qb, fa, da, fb, db, gamma, sb2, alpha, beta, fails)
        return max(err, SERIES_TOL)

    def _quadrature(self, K, T, qa, qb, fa, da, fb, db, gamma, sb2, alpha, beta, fails):
        sym = qb.size == 0
        qb_, fb_, db_ = (qa, fa, da) if sym else (qb, fb, db)
        kern = self.act.kernels
        out = np.empty(2)
        err = np.empty(2)
        worst = 0.0
        for i in np.flatnonzero(fails):
            cols = np.flatnonzero(self.mask[i])
            self.mask[i, cols] = 0
            for j in cols:
                kern.twopoint_direct(qa[i], qb_[j], K[i, j], out, err)
                e0 = err[0] / math.sqrt(fa[i] * fb_[j])
                e1 = err[1] / math.sqrt(da[i] * db_[j])
                e = max(e0, e1)
                if not (e <= self.rtol and np.isfinite(out).all()):
                    raise NumericalError(
                        f"two-point expectation of {self.act.name!r} at covariances ({qa[i]:.6g}, {qb_[j]:.6g}, "
                        f"{K[i, j]:.6g}): quadrature error estimate {e:.2e} exceeds rtol = {self.rtol:g}"
                    )
                worst = max(worst, e)
                T[i, j] = alpha * out[0] + beta + gamma * out[1] * T[i, j]
                K[i, j] = gamma * out[0] + sb2
        return worst


def _block_max(S):
    """Largest tail bound of each block of :data:`_nk.BLOCK` consecutive inputs (rows of S)."""
    n, w = S.shape
    nb = -(-n // _nk.BLOCK)
    pad = np.zeros((nb * _nk.BLOCK, w))
    pad[:n] = S
    return np.ascontiguousarray(pad.reshape(nb, _nk.BLOCK, w).max(axis=1))


def kernels(
    phi,
    sigma_w=None,
    sigma_b=None,
    depth=None,
    X=None,
    X2=None,
    parameterization="ntk",
    width=None,
    rtol=1e-10,
) -> Kernels:
    """NNGP and NTK kernels K(X, X2), Θ(X, X2) of a fully connected network at infinite width (THEORY §7).

    Parameters
    ----------
    phi : activation (name, expression in x or :class:`~meanfield.Activation`), or a :class:`~meanfield.Network` with
        per-layer σ_w, σ_b, activations and widths: then call ``kernels(net, X, X2=None, …)`` (THEORY §8).
    sigma_w, sigma_b : weight and bias standard deviations (every layer, the readout included).
    depth : number of hidden layers L (0: the readout alone).
    X, X2 : inputs, one per row, (n1, N_0) and (n2, N_0); X2 None means X (the symmetric K(X, X)).
    parameterization : "ntk" (neural-tangents' default) or "standard" (PyTorch's; ``.ntk`` is Θ/N, module docstring).
    width : hidden width N for the standard parameterisation's Θ/N (None: the N → ∞ limit; for a Network, default
        its first hidden width, hidden layer l then entering with N_l/N); ignored for "ntk".
    rtol : largest accepted error estimate of a quadrature-evaluated entry (relative to its Cauchy–Schwarz scale).

    Returns
    -------
    Kernels with ``.nngp`` and ``.ntk`` (n1, n2) float64 arrays; the estimated per-layer error in ``.error``.

    Raises
    ------
    InvalidParameterError for bad inputs; NumericalError when a kernel entry is not finite or its quadrature misses rtol.
    """
    from meanfield.network import Network

    param = choice(parameterization, "parameterization", ("ntk", "standard"))
    rtol = float(positive(rtol, "rtol", kind=""))
    if isinstance(phi, Network):
        if depth is not None or X is not None:
            raise InvalidParameterError("with a Network, call kernels(net, X, X2=None, ...): σ_w, σ_b and depth are "
                                        "the network's")
        net, X, X2 = phi, sigma_w, sigma_b
        if X is None:
            raise InvalidParameterError("kernels(net, X): the inputs X are missing")
        acts, sws, sbs = list(net.activations), list(net.sigma_w), list(net.sigma_b)
        hidden = net.hidden_widths
        N = None
        if param == "standard":
            N = float(positive(width, "width", kind="")) if width is not None else float(hidden[0])
        alphas = [h / N if N is not None else 1.0 for h in hidden]
        name = acts[0].name if len(set(acts)) == 1 else "/".join(a.name for a in acts)
    else:
        if sigma_w is None or sigma_b is None or depth is None or X is None:
            raise InvalidParameterError("kernels(phi, sigma_w, sigma_b, depth, X): an argument is missing")
        act = get_activation(phi)
        sw = float(positive(sigma_w, "sigma_w"))
        sb = float(nonnegative(sigma_b, "sigma_b"))
        L = integer(depth, "depth", minimum=0)
        N = None
        if width is not None and param == "standard":
            N = float(positive(width, "width", kind=""))
        acts, sws, sbs, alphas, name = [act] * L, [sw] * (L + 1), [sb] * (L + 1), [1.0] * L, act.name
    Xa = _as_inputs(X, "X")
    sym = X2 is None
    Xb = Xa if sym else _as_inputs(X2, "X2")
    if Xb.shape[1] != Xa.shape[1]:
        raise InvalidParameterError(f"X2 must have the input width of X ({Xa.shape[1]}), got {Xb.shape[1]}")
    if isinstance(phi, Network) and Xa.shape[1] != phi.input_width:
        raise InvalidParameterError(f"X must have the network's input width {phi.input_width}, got {Xa.shape[1]}")
    K, T, error, counts = _compute(acts, sws, sbs, alphas, Xa, None if sym else Xb, param, N, rtol)
    return Kernels(
        nngp=K,
        ntk=T,
        parameterization=param,
        activation=name,
        sigma_w=sws[0] if len(set(sws)) == 1 else tuple(sws),
        sigma_b=sbs[0] if len(set(sbs)) == 1 else tuple(sbs),
        depth=len(acts),
        width=N,
        error=error,
        entries=counts,
    )


def _identical_pairs(Xa, Xb):
    """(rows of Xa, rows of Xb) of the pairs of identical inputs (bytewise), or (None, None) when there are none."""
    index: dict = {}
    for i, row in enumerate(np.ascontiguousarray(Xa)):
        index.setdefault(row.tobytes(), []).append(i)
    ia, ib = [], []
    for j, row in enumerate(np.ascontiguousarray(Xb)):
        for i in index.get(row.tobytes(), ()):
            ia.append(i)
            ib.append(j)
    if not ia:
        return None, None
    return np.asarray(ia, dtype=np.intp), np.asarray(ib, dtype=np.intp)


def _compute(acts, sws, sbs, alphas, Xa, Xb, param, N, rtol):
    L = len(acts)
    sym = Xb is None
    N0 = Xa.shape[1]
    G = Xa @ (Xa if sym else Xb).T
    na = np.einsum("ij,ij->i", Xa, Xa)
    nb = np.zeros(0) if sym else np.einsum("ij,ij->i", Xb, Xb)
    w2, b2 = sws[0] ** 2, sbs[0] ** 2
    qa = w2 / N0 * na + b2
    qb = w2 / N0 * nb + b2
    # an input of Xb that repeats one of Xa (a test point that is also a training point) has ρ = 1 exactly; the product
    # G and the norms round differently, and through the layers a kinked φ turns that ulp of ρ into ~1e-8 of K̇ (its
    # √(1 - ρ) singularity). Such pairs get the diagonal's length map exactly, layer by layer, as the symmetric call does
    ia, ib = (None, None) if sym else _identical_pairs(Xa, Xb)
    if ia is not None:
        G[ia, ib] = na[ia]
    # two (n1, n2) matrices alive at any time (n = 20,000: 6.4 GB): K is G scaled in place
    if param == "standard":
        T = (G + 1.0) / N if N is not None else np.zeros_like(G)
    K = G
    K *= w2 / N0
    K += b2
    if param == "ntk":
        T = K.copy()
    counts = {"closed": 0, "series": 0, "quadrature": 0}
    error = 0.0
    layers = {}
    for l in range(L):
        act = acts[l]
        if np.any(qa <= 0.0) or np.any(qb <= 0.0):
            raise InvalidParameterError(
                "an input has zero pre-activation variance (a zero row with sigma_b = 0): its kernel is degenerate"
            )
        gamma, sb2 = sws[l + 1] ** 2, sbs[l + 1] ** 2
        if param == "ntk":
            alpha, beta = gamma, sb2
        else:
            alpha, beta = alphas[l], (0.0 if N is None else 1.0 / N)
        fa, da = _moments(act, qa)
        fb, db = _moments(act, qb) if not sym else (qb, qb)
        layer = layers.get(id(act))
        if layer is None:
            layer = layers[id(act)] = _Layer(act, rtol)
        t_same = T[ia, ib].copy() if ia is not None else None
        error = max(error, layer(K, T, qa, qb, fa, da, fb, db, gamma, sb2, alpha, beta, counts))
        if ia is not None:  # the repeated inputs' entries: the length map of the row, E φ² and E φ'² at its q
            K[ia, ib] = gamma * fa[ia] + sb2
            T[ia, ib] = alpha * fa[ia] + beta + gamma * da[ia] * t_same
        qa = gamma * fa + sb2
        qb = gamma * fb + sb2 if not sym else qb
    if sym:
        _nk.mirror(K)
        _nk.mirror(T)
    if not (np.isfinite(K).all() and np.isfinite(T).all()):
        raise NumericalError("a kernel entry is not finite (overflow through the layers: σ_w too large for this depth?)")
    return K, T, error, counts


# ================================================================================================= kernel regression
@dataclass(frozen=True)
class Prediction(Result):
    """Kernel-regression predictions on test inputs (Lee et al. 2019, THEORY §7), neural-tangents' conventions.

    Attributes
    ----------
    nngp_mean, ntk_mean : (n_test, …) mean outputs of the NNGP (Bayesian posterior at t = ∞; gradient flow on the readout
        at finite t) and of the NTK (gradient flow of the whole infinite-width network), with a leading time axis when
        ``t`` is an array.
    nngp_covariance, ntk_covariance : (n_test, n_test) covariances (leading time axis as above); None unless
        ``k_test_test`` was given (the NTK covariance also needs both kernels, i.e. :class:`Kernels` inputs).
    t : the times (None: t = ∞); learning_rate, diag_reg : as given.
    """

    nngp_mean: np.ndarray
    ntk_mean: np.ndarray
    nngp_covariance: np.ndarray | None
    ntk_covariance: np.ndarray | None
    t: float | np.ndarray | None
    learning_rate: float
    diag_reg: float


def _kernel_pair(k, name):
    if isinstance(k, Kernels):
        return k.nngp, k.ntk
    try:
        arr = np.asarray(k, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a Kernels result or a 2-D array, got {type(k).__name__}") from None
    if arr.ndim != 2 or not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be a finite 2-D array, got shape {arr.shape}")
    return arr, arr


def _regularised(K, diag_reg, absolute):
    n = K.shape[0]
    reg = diag_reg if absolute else diag_reg * np.trace(K) / n
    return K + reg * np.eye(n)


class _Solver:
    """(K + reg I)^{-1} applied by Cholesky (t = ∞) and functions of K applied in its eigenbasis (finite t); no explicit
    inverse. The Cholesky solve is checked against its equation: ‖(K + reg)x - b‖ ≤ 1e-8 ‖K + reg‖‖x‖ + ‖b‖·1e-12."""

    def __init__(self, K, diag_reg, absolute, what):
        self.K = _regularised(K, diag_reg, absolute)
        self.what = what
        self._cho = None
        self._eig = None

    def solve(self, b):
        from scipy import linalg

        if self._cho is None:
            try:
                self._cho = linalg.cho_factor(self.K, lower=True, check_finite=False)
            except linalg.LinAlgError:
                raise NumericalError(
                    f"the train-train {self.what} kernel (+ diag_reg) is not positive definite to rounding: give "
                    "diag_reg > 0 (e.g. 1e-10, relative to its mean diagonal)"
                ) from None
        x = linalg.cho_solve(self._cho, b, check_finite=False)
        res = np.linalg.norm(self.K @ x - b)
        scale = np.linalg.norm(self.K, 2 if self.K.shape[0] <= 512 else "fro") * np.linalg.norm(x) * 1e-8
        if not (np.isfinite(res) and res <= scale + 1e-12 * np.linalg.norm(b)):
            raise NumericalError(f"the {self.what} kernel solve misses its equation (residual {res:.3e}): the train-train "
                                 "kernel is singular to rounding; give diag_reg > 0")
        return x

    def flow(self, b, t, m):
        """``V diag((1 - e^{-λ t/m})/λ) Vᵀ b`` for each time in t (λ clipped at 0; the λ → 0 limit t/m)."""
        if self._eig is None:
            self._eig = np.linalg.eigh(self.K)
        lam, V = self._eig
        lam = np.maximum(lam, 0.0)
        Vb = V.T @ b.reshape(b.shape[0], -1)
        out = []
        for tt in np.ravel(t):
            if np.isinf(tt):  # the pseudo-inverse
                g = np.divide(1.0, lam, out=np.zeros_like(lam), where=lam > 0)
            else:
                x = lam * (tt / m)
                small = x <= 1e-8
                g = np.where(small, 1.0 - 0.5 * x, -np.expm1(-x) / np.where(small, 1.0, x)) * (tt / m)
            out.append((V @ (g[:, None] * Vb)).reshape(b.shape))
        return out


def predict(
    k_train_train,
    k_test_train,
    y_train,
    t=None,
    diag_reg=0.0,
    k_test_test=None,
    learning_rate=1.0,
    diag_reg_absolute_scale=False,
) -> Prediction:
    """NNGP posterior and NTK gradient-descent predictions (Lee et al. 2019, eqs. 13–16; THEORY §7).

    With K the NNGP and Θ the NTK (train-train ``K, Θ``, test-train ``K_*, Θ_*``, test-test ``K_**``), m = y_train.size
    and the loss ``|f(X) - Y|²/(2m)`` trained by gradient flow at learning rate η for time t:

    * mean ``Θ_* Θ^{-1}(I - e^{-η Θ t/m}) Y`` (likewise with K for the NNGP), at t = ∞ ``Θ_* Θ^{-1} Y``;
    * NNGP covariance ``K_** - K_* K^{-1}(I - e^{-2η K t/m}) K_*ᵀ``, at t = ∞ the GP posterior ``K_** - K_* K^{-1} K_*ᵀ``;
    * NTK covariance ``K_** + A K Aᵀ - (A K_*ᵀ + K_* Aᵀ)`` with ``A = Θ_* Θ^{-1}(I - e^{-η Θ t/m})``.

    These are the conventions of neural-tangents' ``predict.gradient_descent_mse_ensemble`` (times scaled by
    ``learning_rate``; ``diag_reg`` relative to the mean diagonal of the train-train kernel unless
    ``diag_reg_absolute_scale``), computed by Cholesky (t = ∞, checked residual) or the eigendecomposition of the
    regularised train-train kernel (finite t; negative eigenvalues from rounding clipped to 0), never by an inverse.

    Parameters
    ----------
    k_train_train, k_test_train : :class:`Kernels` of ``kernels(..., X_train)`` and ``kernels(..., X_test, X_train)``, or
        2-D arrays (one kernel, then used for both means; no NTK covariance).
    y_train : (n_train,) or (n_train, C) targets.
    t : None (t = ∞), a time, or an array of times (a leading axis of the outputs).
    k_test_test : Kernels or array of ``kernels(..., X_test)``: gives the covariances.
    """
    Kdd, Tdd = _kernel_pair(k_train_train, "k_train_train")
    Ktd, Ttd = _kernel_pair(k_test_train, "k_test_train")
    n = Kdd.shape[0]
    if Kdd.shape != (n, n):
        raise InvalidParameterError(f"k_train_train must be square, got shape {Kdd.shape}")
    if Ktd.shape[1] != n:
        raise InvalidParameterError(f"k_test_train must have {n} columns (one per training input), got {Ktd.shape}")
    y = as_array(y_train, "y_train")
    if y.ndim not in (1, 2) or y.shape[0] != n or not np.all(np.isfinite(y)):
        raise InvalidParameterError(f"y_train must be finite of shape ({n},) or ({n}, C), got {y.shape}")
    diag_reg = float(nonnegative(diag_reg, "diag_reg", kind=""))
    eta = float(positive(learning_rate, "learning_rate", kind=""))
    Ktt = None
    if k_test_test is not None:
        Ktt, _ = _kernel_pair(k_test_test, "k_test_test")
        if Ktt.shape != (Ktd.shape[0], Ktd.shape[0]):
            raise InvalidParameterError(f"k_test_test must be ({Ktd.shape[0]}, {Ktd.shape[0]}), got {Ktt.shape}")
    times = None
    if t is not None:
        times = as_array(t, "t")
        if not np.all(times >= 0):
            raise InvalidParameterError(f"t must be ≥ 0 (or None for t = ∞), got {t!r}")
    same = Tdd is Kdd
    absolute = bool(diag_reg_absolute_scale)
    sk = _Solver(Kdd, diag_reg, absolute, "NNGP")
    st = sk if same else _Solver(Tdd, diag_reg, absolute, "NTK")
    m = y.size
    both = isinstance(k_train_train, Kernels) and isinstance(k_test_train, Kernels)

    if times is None or np.all(np.isinf(times)) and times.ndim == 0:
        ak = sk.solve(y)
        nngp_mean = Ktd @ ak
        ntk_mean = nngp_mean if same else Ttd @ st.solve(y)
        nc = tc = None
        if Ktt is not None:
            nc = Ktt - Ktd @ sk.solve(Ktd.T)
            if both:
                A = st.solve(Ttd.T).T  # Θ_* Θ^{-1}
                AK = A @ Ktd.T
                tc = Ktt + A @ Kdd @ A.T - AK - AK.T
        return Prediction(nngp_mean, ntk_mean, nc, tc, None, eta, diag_reg)

    tt = eta * times
    nm = [Ktd @ g for g in sk.flow(y, tt, m)]
    tm = nm if same else [Ttd @ g for g in st.flow(y, tt, m)]
    nc = tc = None
    if Ktt is not None:
        nc = [Ktt - Ktd @ g for g in sk.flow(Ktd.T, 2.0 * tt, m)]
        if both:
            tc = []
            for g in st.flow(Ttd.T, tt, m):
                A = g.T
                AK = A @ Ktd.T
                tc.append(Ktt + A @ Kdd @ A.T - AK - AK.T)
    shape = times.shape

    def stack(v):
        if v is None:
            return None
        arr = np.stack(v)
        return arr.reshape(shape + arr.shape[1:])

    return Prediction(stack(nm), stack(tm), stack(nc), stack(tc), t if np.ndim(t) == 0 else times, eta, diag_reg)
