"""Measurements that the theory predicts, on a :class:`~empirical.networks.RandomMLP` or an ordinary PyTorch model of
Linear layers and elementwise activations (read by :func:`empirical.models.as_mlp`: the same code runs on the model's
own weight tensors; a Linear layer without bias has no bias parameter in θ).

* :func:`layer_statistics` — q^l and c^l per layer and input (THEORY §1);
* :func:`input_output_jacobian`, :func:`jacobian_singular_values` — ``J = ∂x^L/∂x^0 = D_L W_L ⋯ D_1 W_1`` by the explicit
  chain of D·W products, or its top singular values matrix-free by Lanczos (THEORY §2);
* :func:`fisher_gram`, :func:`fisher_eigenvalues` — the exact non-zero spectrum of the Fisher information
  ``F = (1/T) Σ_t Σ_k ∇_θ f_k(x_t) ∇_θ f_k(x_t)ᵀ`` (unit-variance Gaussian likelihood) through the layerwise Gram identity
  (THEORY §3; Karakida, Akaho & Amari 2019, "Universal statistics of Fisher information in deep neural networks: mean
  field approach", AISTATS):
  one forward pass, one backward recursion ``δ^l = D_l W^{l+1ᵀ} δ^{l+1}`` batched over all inputs and outputs, and
  ``Θ = Σ_l (Δ_l Δ_lᵀ) ∘ (A_l + β)`` with ``Δ_l`` the (T·C, N_l) stack of δ^l and ``A_l = X^{l-1} X^{l-1 ᵀ}``;
  per-sample gradients are never formed;
* :func:`conditional_fisher_eigenvalues` — the spectrum of ``F(θ|x) = J_θᵀJ_θ`` through the C×C matrix
  ``Φ = Σ_l a_l J_l J_lᵀ`` (THEORY §4; Hayase & Karakida 2021, "The spectrum of Fisher information of deep networks
  achieving dynamical isometry", AISTATS);
* :func:`sokol_park_bound` — ``λ_max(F) ≤ (1/T) Σ_t Σ_l (|x^{l-1}_t|² + 1) ‖J_l(x_t)‖₂²`` (THEORY §5; Sokol & Park 2020,
  "Information geometry of orthogonal initializations and training", ICLR; H = I for the MSE loss).

Conventions: inputs are rows (``X`` of shape ``(T, N_0)``; a 1-D ``x`` is one input). The FIM Gram is indexed by
``(t, k) → t·C + k`` (input-major). ``biases=True`` counts the bias parameters in θ (the ``+1`` in ``a_l``);
``biases=False`` leaves them out of θ, while the network keeps its σ_b biases. Results are NumPy float64 arrays (moved to
the CPU), eigen- and singular values sorted in descending order.

Every measurement runs under ``torch.no_grad()`` with TF32 matmuls disabled on CUDA for its duration (restored
afterwards); nothing is switched globally at import. A non-finite value — a deep chaotic or exploding network — raises
:class:`~meanfield.errors.NumericalError` naming the layer where it appeared.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla
import torch

from meanfield.errors import InvalidParameterError, NumericalError

from empirical.networks import LinearChain, _check_finite
from empirical.threads import with_threads

__all__ = [
    "LayerStatistics",
    "SokolParkBound",
    "layer_statistics",
    "input_output_jacobian",
    "jacobian_singular_values",
    "fisher_gram",
    "fisher_eigenvalues",
    "conditional_fisher_eigenvalues",
    "sokol_park_bound",
]

METHODS = ("auto", "dense", "lanczos")
# method="auto" uses Lanczos only for a few eigenvalues of a large matrix: below this size a dense eigensolve takes
# milliseconds, and Lanczos pays off when k is a small fraction of n (ARPACK needs about 2k+20 Krylov vectors).
LANCZOS_MIN_SIZE = 512
LANCZOS_MAX_FRACTION = 0.1
# The Jacobian's matrix-free route streams all L weight matrices from memory twice per Lanczos step, and the top of a
# near-isometric spectrum is clustered (~250 steps to machine precision): measured on 2 CPU cores at N = 2048, L = 8,
# dense 2.8 s vs Lanczos 22 s. "auto" therefore keeps the dense product until it is itself prohibitive (2LN³ flops and
# N² memory per product): from this width on.
JACOBIAN_LANCZOS_MIN_WIDTH = 8192
# Fixed start vector seed: ARPACK otherwise starts from a random vector and results vary in the last digits.
_LANCZOS_SEED = 0


# ------------------------------------------------------------------------------------- work, for the thread policy
# Each measurement tells empirical.threads the multiply-adds of its largest parallel region (a matrix product), so
# that "auto" gives a second thread only to products big enough to repay the risk of waiting for it (GRAIN there).
def _count_inputs(X) -> int:
    shape = X.shape if hasattr(X, "shape") else torch.as_tensor(X).shape
    return 1 if len(shape) <= 1 else int(shape[0])


def _estimate(fn):
    """``fn(net, X, ...)`` → multiply-adds, or None when the arguments are not usable (the measurement then raises
    its own error)."""

    def work(net, X=None, *args, **kwargs):
        try:
            chain = _as_net(net)
            t = _count_inputs(X) if X is not None else 1
            w = fn(chain, t, *args, **kwargs)
        except (InvalidParameterError, TypeError, ValueError, RuntimeError, AttributeError, IndexError):
            return None
        return w * (0.5 if chain.dtype == torch.float32 else 1.0)

    return work


def _layer_products(net: LinearChain) -> int:
    """The largest N_l·N_{l-1} over the weight layers."""
    ws = net.widths
    return max(a * b for a, b in zip(ws[:-1], ws[1:]))


@_estimate
def _work_forward(net, t, *args, **kwargs):
    """layer statistics: the forward products (T, N_{l-1}) × (N_{l-1}, N_l) and the Grams (T, N_l) × (N_l, T)."""
    return max(t * _layer_products(net), t * t * max(net.widths))


@_estimate
def _work_jacobian(net, t, top_k=None, method="auto", *args, **kwargs):
    """The Jacobian chain: one (N_l, N_{l-1}) product per layer for a batch of inputs and N_0 (or N_L) columns each;
    Lanczos: one matrix-vector product per layer."""
    n = min(net.input_width, net.hidden_widths[-1])
    if method == "lanczos" or (
        method == "auto" and top_k is not None and n >= JACOBIAN_LANCZOS_MIN_WIDTH and top_k <= LANCZOS_MAX_FRACTION * n
    ):
        return _layer_products(net)
    batch = max(1, JACOBIAN_BATCH_ENTRIES // _jacobian_entries_per_input(net))
    return min(t, batch) * min(net.input_width, net.hidden_widths[-1]) * _layer_products(net)


@_estimate
def _work_fisher(net, t, *args, chunk_size=None, **kwargs):
    """The FIM Gram: the backward products (T·C, N_l) × (N_l, N_{l-1}), the Gram blocks (chunk·C, N_l) × (N_l, chunk·C)
    and the dense eigensolver of the (T·C)² Gram (~(T·C)³/3)."""
    c = net.output_width
    chunk = t if chunk_size is None or not isinstance(chunk_size, int) or chunk_size < 1 else min(chunk_size, t)
    tc = t * c
    return max(tc * _layer_products(net), (chunk * c) ** 2 * max(net.widths), tc**3 // 3)


# ------------------------------------------------------------------------------------------------------------ helpers
@contextmanager
def _measuring():
    """No autograd, and no TF32 in CUDA matmuls (float32 networks are measured in true float32), for one measurement."""
    cuda = torch.cuda.is_available()
    if cuda:
        prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            yield
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = prev


def _as_net(net) -> LinearChain:
    """A :class:`~empirical.RandomMLP` as it is; an ordinary PyTorch model as the view of its Linear layers and
    activations (:func:`empirical.models.as_mlp`, which raises naming any layer the theory does not describe)."""
    from empirical.models import as_mlp

    return as_mlp(net)


def _betas(net: LinearChain, biases: bool) -> list[float]:
    """β_l of the layerwise identity for l = 1..L+1: 1 where layer l has a bias that belongs to θ, else 0."""
    return [1.0 if (biases and has) else 0.0 for has in net.has_bias]


def _check_method(method, top_k, n, min_size=LANCZOS_MIN_SIZE):
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {METHODS}, got {method!r}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InvalidParameterError(f"top_k must be a positive integer or None, got {top_k!r}")
    if method == "lanczos":
        if top_k is None:
            raise InvalidParameterError("method='lanczos' needs top_k (the number of leading eigenvalues)")
        if top_k >= n:
            raise InvalidParameterError(f"method='lanczos' needs top_k < {n} (the matrix size), got top_k={top_k}")
        return "lanczos"
    if method == "dense" or top_k is None:
        return "dense"
    return "lanczos" if (n >= min_size and top_k <= LANCZOS_MAX_FRACTION * n) else "dense"


def _top_eigenvalues_dense(m: torch.Tensor, k: int) -> np.ndarray:
    """The k largest eigenvalues of the symmetric matrix m, descending, in float64."""
    ev = torch.linalg.eigvalsh(m.to(torch.float64))
    return ev.flip(0)[:k].cpu().numpy()


def _lanczos(matvec, n: int, k: int, tol: float = 0.0) -> np.ndarray:
    """k largest eigenvalues (descending) of a symmetric positive semi-definite operator by implicitly restarted Lanczos
    (ARPACK through scipy's eigsh; ``tol`` is ARPACK's relative accuracy of the Ritz values, 0 = machine precision)."""
    op = spla.LinearOperator((n, n), matvec=matvec, matmat=matvec, dtype=np.float64)
    v0 = np.random.default_rng(_LANCZOS_SEED).standard_normal(n)
    ev = spla.eigsh(op, k=k, which="LA", v0=v0, tol=tol, return_eigenvectors=False)
    return np.sort(ev)[::-1].copy()


def _deltas(net: LinearChain, derivs):
    """Yield ``(l, Δ_l)`` for l = L, …, 1 with ``Δ_l[t, k] = δ^l_k(x_t) = ∂f_k/∂h^l`` of shape (T, C, N_l).

    Backward recursion ``δ^L = D_L W^{L+1ᵀ} e_k``, ``δ^{l-1} = D_{l-1} W^{lᵀ} δ^l``, one (T·C, N_l)×(N_l, N_{l-1}) matmul per
    layer for all inputs and outputs at once. Consumes ``derivs`` (a list it owns): each φ'(h^l) is released once used.
    """
    L = net.depth
    delta = net.W[L].unsqueeze(0) * derivs[L - 1].unsqueeze(1)
    derivs[L - 1] = None
    for l in range(L, 0, -1):
        _check_finite(delta, f"the backward pass ∂f/∂h^{l} (hidden layer {l} of {L})")
        yield l, delta
        if l > 1:
            t, c, n = delta.shape
            delta = torch.mm(delta.reshape(t * c, n), net.W[l - 1]).reshape(t, c, -1)
            delta.mul_(derivs[l - 2].unsqueeze(1))
            derivs[l - 2] = None


def _forward_grams(net: LinearChain, X, betas: list[float]):
    """One forward pass keeping only what the Gram needs: ``A_l = X^{l-1} X^{l-1ᵀ} + β_l`` (T×T) for l = 1..L+1 and the
    φ'(h^l) (T×N_l) — not the activations themselves, which halves the memory of a stored forward pass."""
    x = net.as_input(X)
    L = net.depth
    grams, ders = [], []
    for l in range(L):
        grams.append(torch.mm(x, x.T).add_(betas[l]))
        h = torch.addmm(net.b[l], x, net.W[l].T)
        _check_finite(h, f"pre-activation h^{l + 1} (hidden layer {l + 1} of {L})")
        x, d = net.phis[l].phi_and_dphi(h)
        ders.append(d)
    grams.append(torch.mm(x, x.T).add_(betas[L]))
    return grams, ders


def _blocks(t: int, chunk: int):
    return [(i, min(i + chunk, t)) for i in range(0, t, chunk)]


def _check_chunk(chunk_size, t):
    if chunk_size is None:
        return t
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return min(int(chunk_size), t)


def _gram(net: LinearChain, X, biases: bool, chunk_size, norms: bool = False):
    """Θ (T, C, T, C) — not yet divided by T — and, with ``norms``, per-layer ``a_l(x_t)`` and ``‖J_l(x_t)‖₂²``.

    ``Θ_{(s,k),(t,k')} = Σ_{l=1}^{L+1} (δ^l_k(x_s)·δ^l_{k'}(x_t)) (x^{l-1}(x_s)·x^{l-1}(x_t) + β_l)``, β_l = 1 with biases
    (where layer l has one).
    The readout layer (δ^{L+1}_k = e_k) contributes ``(A_{L+1} + β) ⊗ I_C``. Blocks of ``chunk_size`` inputs: only the
    blocks on and above the diagonal are computed (the Gram is symmetric) and the temporaries are (chunk·C)² in size.
    """
    grams, ds = _forward_grams(net, X, _betas(net, biases))
    T = grams[0].shape[0]
    C = net.output_width
    chunk = _check_chunk(chunk_size, T)
    blocks = _blocks(T, chunk)
    theta = torch.zeros(T, C, T, C, dtype=net.dtype, device=net.device)
    # readout layer: (x^L·x^L' + β) δ_{kk'}
    a = grams[-1]
    theta.diagonal(dim1=1, dim2=3).add_(a.unsqueeze(-1))
    a_layers, jnorms = [], []
    if norms:
        a_layers.append(torch.diagonal(a).clone())
        jnorms.append(torch.ones(T, dtype=net.dtype, device=net.device))
    for l, delta in _deltas(net, ds):
        a = grams[l - 1]
        flat = delta.reshape(T * C, -1)
        if len(blocks) == 1:
            g = torch.mm(flat, flat.T).view(T, C, T, C)
            g.mul_(a[:, None, :, None])
            theta.add_(g)
        else:
            for i, (i0, i1) in enumerate(blocks):
                for j0, j1 in blocks[i:]:
                    g = torch.mm(flat[i0 * C : i1 * C], flat[j0 * C : j1 * C].T).view(i1 - i0, C, j1 - j0, C)
                    g.mul_(a[i0:i1, None, j0:j1, None])
                    theta[i0:i1, :, j0:j1, :].add_(g)
        if norms:
            a_layers.append(torch.diagonal(a).clone())
            jnorms.append(_spectral_norms_squared(delta))
    if len(blocks) > 1:  # fill the blocks below the diagonal from those above
        for i, (i0, i1) in enumerate(blocks):
            for j0, j1 in blocks[i + 1 :]:
                theta[j0:j1, :, i0:i1, :] = theta[i0:i1, :, j0:j1, :].permute(2, 3, 0, 1)
    _check_finite(theta, "the Fisher Gram matrix Θ")
    if norms:
        # layers were visited L+1, L, ..., 1: reverse to l = 1..L+1
        return theta, torch.stack(a_layers[::-1]), torch.stack(jnorms[::-1])
    return theta


def _spectral_norms_squared(delta: torch.Tensor) -> torch.Tensor:
    """‖Δ[t]‖₂² for each t of a (T, C, N) stack: the largest eigenvalue of the smaller of Δ Δᵀ and Δᵀ Δ."""
    t, c, n = delta.shape
    if c == 1:
        return delta.square().sum(dim=(1, 2))
    m = torch.bmm(delta, delta.transpose(1, 2)) if c <= n else torch.bmm(delta.transpose(1, 2), delta)
    return torch.linalg.eigvalsh(m.to(torch.float64))[:, -1].to(delta.dtype)


# --------------------------------------------------------------------------------------------------- layer statistics
@dataclass(frozen=True)
class LayerStatistics:
    """Per-layer signal statistics of T inputs through a network (THEORY §1), NumPy float64.

    Attributes
    ----------
    q : (L, T) — ``q^l(x_t) = |h^l(x_t)|²/N_l``, the mean squared pre-activation of hidden layer l = 1..L (row l-1).
    c : (L, T, T) — pre-activation correlations ``c^l_{st} = h^l_s·h^l_t / (|h^l_s| |h^l_t|)`` (ones on the diagonal);
        for two inputs use :attr:`c12`, the (L,) series THEORY §1's c-map iterates.
    q_input : (T,) — ``|x^0_t|²/N_0``.
    c_input : (T, T) — input correlations ``x^0_s·x^0_t / (|x^0_s| |x^0_t|)``.
    q_hat : (L, T) — ``|x^l(x_t)|²/N_l``, the mean squared post-activation (the q̂^l of THEORY §3).
    """

    q: np.ndarray
    c: np.ndarray
    q_input: np.ndarray
    c_input: np.ndarray
    q_hat: np.ndarray

    @property
    def depth(self) -> int:
        return self.q.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.q.shape[1]

    @property
    def c12(self) -> np.ndarray:
        """(L,) correlation of the first two inputs per layer, ``c[:, 0, 1]`` (needs T ≥ 2)."""
        if self.n_inputs < 2:
            raise InvalidParameterError(f"c12 needs at least two inputs, these statistics have {self.n_inputs}")
        return self.c[:, 0, 1]


def _gram_to_stats(g: torch.Tensor, n: int):
    """(q, c) from a Gram matrix of rows: q_t = g_tt/n, c_st = g_st/√(g_ss g_tt) (0 where a norm vanishes)."""
    d = torch.diagonal(g, dim1=-2, dim2=-1)
    s = torch.sqrt(d)
    denom = s.unsqueeze(-1) * s.unsqueeze(-2)
    c = torch.where(denom > 0, g / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    c = c.clamp(-1.0, 1.0)
    c.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    return d / n, c


@with_threads(work=_work_forward)
def layer_statistics(net: LinearChain, X) -> LayerStatistics:
    """q^l, c^l of the inputs ``X`` (``(T, N_0)``, or one input ``(N_0,)``) through ``net``: see :class:`LayerStatistics`."""
    net = _as_net(net)
    with _measuring():
        fp = net.forward_all(X, pre=True, derivatives=False, check_finite=True)
        x0 = fp.post[0]
        q_in, c_in = _gram_to_stats(torch.mm(x0, x0.T), net.input_width)
        hs = torch.stack([torch.mm(h, h.T) for h in fp.pre])  # (L, T, T)
        n = torch.tensor(net.hidden_widths, dtype=net.dtype, device=net.device)[:, None]
        q, c = _gram_to_stats(hs, n)
        q_hat = torch.stack([y.square().sum(dim=1) for y in fp.post[1:]]) / n
    as_np = lambda t: t.to(torch.float64).cpu().numpy()  # noqa: E731
    return LayerStatistics(q=as_np(q), c=as_np(c), q_input=as_np(q_in), c_input=as_np(c_in), q_hat=as_np(q_hat))


# ------------------------------------------------------------------------------------------ input-output Jacobian
def _single_input(net, x):
    t = net.as_input(x, "x")
    if t.shape[0] != 1:
        raise InvalidParameterError(f"x must be one input of shape ({net.input_width},), got {t.shape[0]} inputs")
    return t


def _jacobian_inputs(net, x):
    """(the inputs as a (T, N_0) tensor, whether ``x`` was one 1-D input)."""
    single = torch.as_tensor(x).ndim == 1
    return net.as_input(x, "x"), single


def _forward_derivatives(net: LinearChain, x0: torch.Tensor) -> tuple:
    """φ'(h^l) (T, N_l) for l = 1..L (a non-finite pre-activation raises, naming its layer)."""
    return net.forward_all(x0, pre=False, derivatives=True, check_finite=True).derivatives


def _jacobian(net: LinearChain, x0: torch.Tensor, check: bool = False) -> torch.Tensor:
    """``J = D_L W_L ⋯ D_1 W_1`` at T inputs ``x0`` (T, N_0) at once, ``(T, N_L, N_0)`` (a view, not necessarily
    contiguous), with ``D_l = diag φ'(h^l)``.

    One GEMM per layer for all T inputs (each W_l read once per batch), written into two preallocated ping-pong buffers
    (no allocation per layer), each in the operand layout MKL multiplies fastest: ``A·Bᵀ`` with A and B row-major
    (float64 at 512²: 35 against 39 ms for 8 products of the other layouts; float32 alike in every layout):

    * ``N_0 ≤ N_L`` and row-major weights (``nn.Linear``'s, and :class:`RandomMLP`'s), forward, on ``P = Jᵀ``:
      ``P ← W_1ᵀ D_1``, then ``P ← (P W_lᵀ) D_l`` for l = 2, …, L, P of shape (T·N_0, N_l): the GEMM
      ``(T·N_0, N_{l-1}) × W_lᵀ``. Running in the forward direction, it takes the forward pass along: the T rows
      ``x^{l-1}`` ride below P in the same GEMM, which so also gives ``h^l - b^l`` (a separate forward pass streams
      every weight matrix once more: 32 matrix-vector products, ~3 % of the products' time at N = 512, L = 32);
    * otherwise (``N_0 > N_L``, fewer columns this way; or column-major weights), backward after a forward pass:
      ``M ← D_L W_L``, then ``M ← (M D_l) W_l`` for l = L-1, …, 1, M of shape (T·N_L, N_l).

    A non-finite pre-activation raises, naming its layer. Finiteness of the products is checked once, on the result (an
    overflow never turns finite again in later products); with ``check`` after every product, which names the layer —
    :func:`_checked_jacobian` reruns with it on failure.
    """
    L = net.depth
    T = x0.shape[0]
    w = net.widths  # N_0, N_1, …, N_L, C
    n0, nl = w[0], w[L]
    what = "the Jacobian product D_{} W_{} ⋯ D_{} W_{} (hidden layer {} of {})"
    if n0 <= nl and all(net.W[l].is_contiguous() for l in range(L)):
        # buffer rows: T·N_0 rows of P (input t's Jᵀ at rows t·N_0 …), then the T post-activations x^{l-1}, so that ONE
        # product gives both P W_lᵀ and x^{l-1} W_lᵀ = h^l - b^l (no matrix-vector product reading W_l once more)
        rows = T * n0 + T
        size = rows * max(w[1 : L + 1])
        bufs = [torch.empty(size, dtype=net.dtype, device=net.device) for _ in range(2)]
        p = None
        for l in range(1, L + 1):
            wl = net.W[l - 1]
            out = bufs[(l - 1) % 2][: rows * w[l]].view(rows, w[l])
            if p is None:
                h = torch.addmm(net.b[0], x0, wl.T)
            else:
                torch.mm(p, wl.T, out=out)
                h = out[T * n0 :].add_(net.b[l - 1])
            _check_finite(h, f"pre-activation h^{l} (hidden layer {l} of {L})")
            x, d = net.phis[l - 1].phi_and_dphi(h)
            pt = out[: T * n0].view(T, n0, w[l])
            if p is None:  # W_1ᵀ D_1
                torch.mul(wl.T.unsqueeze(0), d.unsqueeze(1), out=pt)
            else:  # (P W_lᵀ) D_l
                pt.mul_(d.unsqueeze(1))
            out[T * n0 :] = x
            p = out
            if check:
                _check_finite(pt, what.format(l, l, 1, 1, l, L))
        return p[: T * n0].view(T, n0, nl).mT
    ds = _forward_derivatives(net, x0)
    size = T * nl * max(w[:L])
    bufs = [torch.empty(size, dtype=net.dtype, device=net.device) for _ in range(2 if L > 1 else 1)]
    m = bufs[0][: T * nl * w[L - 1]].view(T, nl, w[L - 1])
    torch.mul(net.W[L - 1].unsqueeze(0), ds[L - 1].unsqueeze(2), out=m)  # D_L W_L
    for l in range(L - 1, 0, -1):  # M ← (M D_l) W_l
        m.mul_(ds[l - 1].unsqueeze(1))
        out = bufs[(L - l) % 2][: T * nl * w[l - 1]].view(T * nl, w[l - 1])
        torch.mm(m.view(T * nl, w[l]), net.W[l - 1], out=out)
        m = out.view(T, nl, w[l - 1])
        if check:
            _check_finite(m, what.format(L, L, l, l, l, L))
    return m


def _checked_jacobian(net: LinearChain, x0: torch.Tensor) -> torch.Tensor:
    j = _jacobian(net, x0)
    try:
        _check_finite(j, f"the Jacobian D_{net.depth} W_{net.depth} ⋯ D_1 W_1")
    except NumericalError:
        _jacobian(net, x0, check=True)  # raises, naming the first layer whose product is not finite
        raise
    return j


def _jacobian_entries_per_input(net: LinearChain) -> int:
    """Entries of one product buffer of :func:`_jacobian` per input."""
    w = net.widths
    L = net.depth
    return (w[0] + 1) * max(w[1 : L + 1]) if w[0] <= w[L] else w[L] * max(w[:L])  # (the first route, or the second)


@with_threads(work=_work_jacobian)
def input_output_jacobian(net: LinearChain, x) -> torch.Tensor:
    """The dense ``J = ∂x^L/∂x^0 = D_L W_L ⋯ D_1 W_1`` as a torch tensor on the network's device, by the explicit chain
    of D·W products (L-1 matrix products, no autograd): shape ``(N_L, N_0)`` for one input ``x`` (1-D), ``(T, N_L, N_0)``
    for T inputs ``x`` of shape ``(T, N_0)`` (one GEMM per layer for all of them)."""
    net = _as_net(net)
    x0, single = _jacobian_inputs(net, x)
    with _measuring():
        j = _checked_jacobian(net, x0)
    if not j.is_contiguous() or j.untyped_storage().nbytes() > j.numel() * j.element_size():
        j = j.contiguous() if not j.is_contiguous() else j.clone()  # not a view that keeps the larger buffer alive
    return j[0] if single else j


JACOBIAN_METHODS = ("auto", "dense", "gram", "svd", "lanczos")
# The Gram route (eigvalsh of the smaller of JJᵀ, JᵀJ, then square roots) has an absolute error of a few u·σ_max² in
# σ_i², hence ~u·σ_max²/σ_i in σ_i (u the unit roundoff): as accurate as svdvals (~u·σ_max) only while σ_i is not much
# below σ_max, and sqrt(u)·σ_max ≈ 1e-8·σ_max of noise for σ_i → 0. method="dense" therefore keeps the Gram route for
# an input only when its smallest eigenvalue of the Gram is at least this fraction of the largest (σ_min/σ_max ≥ 0.03:
# error ≤ ~30 u σ_max), and takes svdvals for the others (deep Gaussian or ReLU networks, rank-deficient J).
GRAM_MIN_RATIO = 1e-3
# The same for a float32 network, whose Gram is formed in float32 (u₃₂ ≈ 6e-8): σ_min/σ_max ≥ 0.1, error ≤ ~10 u₃₂
# σ_max, the order of the rounding the float32 J already carries (2e-7 σ_max at N = 512, L = 32).
GRAM_MIN_RATIO_FLOAT32 = 1e-2
# Inputs per batch of the dense route are chosen so that one (T, N_L, N) product buffer holds at most this many
# entries (64 MiB in float64; two buffers and the Gram are alive at once).
JACOBIAN_BATCH_ENTRIES = 2**23


def _gram_eigenvalues(j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, descending, of the smaller Gram of each J of a (T, N_L, N_0) stack; the scale s per input with
    σ_i = s·sqrt(λ_i)), float64. The Gram is formed in J's dtype, the eigenvalues always in float64: for a float32 J
    a float32 eigensolver would be ~40 % faster (7 against 12 ms at 512²) but 3–5× less accurate (7e-7–1.4e-6 σ_max
    against the float64 network at N = 512, L = 32, where the float32 J itself is off by 2.2–2.7e-7), while the float32
    Gram costs no accuracy there (2.5e-7).

    The Gram of J itself (s = 1) when its largest diagonal entry (= its largest eigenvalue within a factor min(N_L,
    N_0)) lies in [2^-600, 2^600] (float64; [2^-60, 2^60] in float32), where neither it overflows nor its entries that
    matter underflow; otherwise (deep ordered networks, σ_max below 1e-154; huge J) the Gram of J divided by its largest
    entry, s = that entry (an all-zero J keeps s = 1). The first case saves two passes over J (its maximum, a scaled
    copy), which the products' ~3 % floor margin at N = 512 cannot spare."""
    lim = 2.0**600 if j.dtype == torch.float64 else 2.0**60
    g = _lower_gram(j)
    dmax = torch.diagonal(g, dim1=-2, dim2=-1).amax(dim=-1)
    if bool(((dmax >= 1.0 / lim) & (dmax <= lim)).all()):
        scale = torch.ones(j.shape[0], dtype=j.dtype, device=j.device)
    else:
        scale = j.abs().amax(dim=(1, 2))
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        g = _lower_gram(j / scale[:, None, None])
    return torch.linalg.eigvalsh(g.to(torch.float64), UPLO="L").flip(-1), scale.to(torch.float64)


def _lower_gram(j: torch.Tensor) -> torch.Tensor:
    """The smaller Gram (J Jᵀ or Jᵀ J; for a square J the one whose factors are row-major — same eigenvalues) of each J
    of a (T, a, b) stack, its lower triangle only (the upper off-diagonal block is zero): the eigensolver reads no more. Two products, ``G[:, :h] = K K[:h]ᵀ`` and ``G[h:, h:] = K[h:] K[h:]ᵀ``
    (K = J or Jᵀ, h = half the size), 3/4 of the multiply-adds of the full Gram (torch has no symmetric rank-k
    product)."""
    k = j if j.shape[1] < j.shape[2] or (j.shape[1] == j.shape[2] and not j.mT.is_contiguous()) else j.mT
    n = k.shape[1]
    h = n // 2
    g = torch.empty(k.shape[0], n, n, dtype=k.dtype, device=k.device)
    g[:, :, :h] = torch.matmul(k, k[:, :h].mT)
    g[:, h:, h:] = torch.matmul(k[:, h:], k[:, h:].mT)
    g[:, :h, h:] = 0.0
    return g


def _dense_singular_values(j: torch.Tensor, how: str) -> torch.Tensor:
    """Descending singular values (T, min(N_L, N_0)), float64, of a (T, N_L, N_0) stack: ``how`` = "svd" (svdvals),
    "gram" (eigvalsh of the smaller Gram) or "dense" (Gram where well conditioned, svdvals for the other inputs).

    The Gram is formed in J's dtype (:func:`_gram_eigenvalues`), its eigenvalues in float64; for a float32 network,
    whose Gram carries float32 rounding (~u₃₂·σ_max² in σ²), "dense" keeps the Gram route only where
    ``λ_min ≥ GRAM_MIN_RATIO_FLOAT32·λ_max`` (error ≲ 10 u₃₂·σ_max, the order of the float32 J's own rounding), else
    svdvals of J in float64."""
    if how == "svd":
        return torch.linalg.svdvals(j.to(torch.float64))
    ev, scale = _gram_eigenvalues(j)
    ratio = GRAM_MIN_RATIO if j.dtype == torch.float64 else GRAM_MIN_RATIO_FLOAT32
    ill = ev[:, -1] < ratio * ev[:, 0]  # (before the square roots below, which work in place)
    sv = ev.clamp_(min=0.0).sqrt_().mul_(scale[:, None])
    if how == "dense" and bool(ill.any()):
        sv[ill] = torch.linalg.svdvals(j[ill].to(torch.float64))
    return sv


@with_threads(work=_work_jacobian)
def jacobian_singular_values(
    net: LinearChain, x, top_k: int | None = None, method: str = "auto", tol: float = 0.0
) -> np.ndarray:
    """Singular values of ``J = ∂x^L/∂x^0`` (THEORY §0, §2: input to the last hidden layer's post-activations, the
    readout excluded), descending, NumPy float64: shape ``(k,)`` for one input ``x`` (1-D), ``(T, k)`` for T inputs
    ``x`` of shape ``(T, N_0)`` (their Jacobians are formed together, one GEMM per layer for the whole batch).

    THEORY §2 compares the square case (``input_width == width``), where the squares are the eigenvalues of JJᵀ; other
    shapes give the min(N_0, N_L) singular values of the rectangular J.

    Parameters
    ----------
    top_k : None for all singular values; k for the k largest.
    method :
        * ``"dense"`` — J by the explicit chain of D·W products (:func:`input_output_jacobian`), then the square roots
          of the eigenvalues of the smaller Gram (JJᵀ or JᵀJ, ~2× faster than an SVD) for inputs whose Gram has
          ``λ_min ≥ GRAM_MIN_RATIO·λ_max``, and ``svdvals`` of J for the others — so the result is always as accurate
          as ``svdvals`` (absolute error ~u·σ_max; see :data:`GRAM_MIN_RATIO`). A float32 network's Gram is formed in
          float32 and kept where ``λ_min ≥ GRAM_MIN_RATIO_FLOAT32·λ_max`` (error ≲ 10 u₃₂·σ_max, the order of the
          float32 J's own rounding); eigenvalues and svdvals are always float64;
        * ``"svd"`` — the same J, always ``svdvals``;
        * ``"gram"`` — the same J, always the Gram route: fastest; exact to ~u·σ_max² in the squares σ², the
          eigenvalues of JJᵀ that THEORY §2 predicts, but singular values far below σ_max lose digits
          (σ_i → 0 comes back as ~1e-8·σ_max);
        * ``"lanczos"`` — never forms J: ARPACK Lanczos on ``JᵀJ`` (or ``JJᵀ``, the smaller), applied as a chain of
          D·W and Wᵀ·D products through the stored φ'(h^l) — 2L matrix-vector products per iteration, for widths where
          the dense product is too big (one input at a time);
        * ``"auto"`` — Lanczos when ``top_k`` is given, is at most 10 % of the singular values and the width is at
          least :data:`JACOBIAN_LANCZOS_MIN_WIDTH` (below it the dense route is faster on a CPU), else ``"dense"``.
    tol : Lanczos only — ARPACK's relative accuracy of the eigenvalues of JᵀJ (0 = machine precision); 1e-8 roughly
        halves the iterations.
    """
    net = _as_net(net)
    if method not in JACOBIAN_METHODS:
        raise InvalidParameterError(f"method must be one of {JACOBIAN_METHODS}, got {method!r}")
    n = min(net.input_width, net.hidden_widths[-1])
    how = _check_method("dense" if method in ("gram", "svd") else method, top_k, n, min_size=JACOBIAN_LANCZOS_MIN_WIDTH)
    if how == "dense" and method != "auto":
        how = method  # "dense", "gram" or "svd"
    if not (isinstance(tol, (int, float)) and 0.0 <= tol < 1.0):
        raise InvalidParameterError(f"tol must be a number in [0, 1), got {tol!r}")
    k = n if top_k is None else min(int(top_k), n)
    x0, single = _jacobian_inputs(net, x)
    with _measuring():
        if how == "lanczos":
            out = np.stack([_jacobian_lanczos(net, x0[t : t + 1], k, float(tol)) for t in range(x0.shape[0])])
        else:
            T = x0.shape[0]
            batch = max(1, JACOBIAN_BATCH_ENTRIES // _jacobian_entries_per_input(net))
            parts = []
            for t0 in range(0, T, batch):
                j = _checked_jacobian(net, x0[t0 : t0 + batch])
                parts.append(_dense_singular_values(j, how)[:, :k].cpu().numpy())
                del j
            out = np.concatenate(parts)
    return out[0] if single else out


def _jacobian_lanczos(net: LinearChain, x0: torch.Tensor, k: int, tol: float) -> np.ndarray:
    """The k largest singular values of J at one input (1, N_0), matrix-free (ARPACK on the smaller Gram)."""
    ds = [d[0] for d in _forward_derivatives(net, x0)]
    dev, dt = net.device, net.dtype

    def jv(v):  # J v, v (N_0, m)
        for l in range(net.depth):
            v = torch.mm(net.W[l], v).mul_(ds[l].unsqueeze(1))
        return v

    def jtv(u):  # Jᵀ u, u (N_L, m)
        for l in range(net.depth - 1, -1, -1):
            u = torch.mm(net.W[l].T, u * ds[l].unsqueeze(1))
        return u

    left = net.input_width <= net.hidden_widths[-1]  # JᵀJ is the smaller Gram
    n = min(net.input_width, net.hidden_widths[-1])

    def matvec(v):
        v = np.asarray(v, dtype=np.float64)
        vt = torch.as_tensor(v.reshape(v.shape[0], -1), device=dev).to(dt)
        out = jtv(jv(vt)) if left else jv(jtv(vt))
        return out.to(torch.float64).cpu().numpy().reshape(v.shape)

    ev = _lanczos(matvec, n, k, tol)
    return np.sqrt(np.clip(ev, 0.0, None))


# ------------------------------------------------------------------------------------------------------------- Fisher
@with_threads(work=_work_fisher)
def fisher_gram(net: LinearChain, X, biases: bool = True, chunk_size: int | None = None) -> torch.Tensor:
    """The dual Gram ``Θ/T`` of the FIM (the empirical NTK over T), a (T·C, T·C) tensor indexed ``(t, k) → t·C + k``.

    Its eigenvalues are the non-zero eigenvalues of ``F = (1/T) Σ_t Σ_k ∇_θ f_k(x_t) ∇_θ f_k(x_t)ᵀ`` (THEORY §3). See
    :func:`fisher_eigenvalues` for the arguments.
    """
    net = _as_net(net)
    with _measuring():
        theta = _gram(net, X, bool(biases), chunk_size)
        T, C = theta.shape[:2]
        return theta.reshape(T * C, T * C).div_(T)


@with_threads(work=_work_fisher)
def fisher_eigenvalues(
    net: LinearChain,
    X,
    top_k: int | None = None,
    biases: bool = True,
    chunk_size: int | None = None,
    method: str = "auto",
) -> np.ndarray:
    """Exact non-zero eigenvalues of the Fisher information of ``net`` over the inputs ``X``, descending (NumPy float64).

    ``F = (1/T) Σ_t Σ_k ∇_θ f_k(x_t) ∇_θ f_k(x_t)ᵀ`` for the unit-variance Gaussian likelihood (the MSE loss), θ all weights
    and — with ``biases=True`` — all biases, the readout included. Computed as the eigenvalues of the dual Gram Θ/T
    (:func:`fisher_gram`, THEORY §3's layerwise identity), never through per-sample gradients.

    Parameters
    ----------
    X : ``(T, N_0)`` inputs (or one input ``(N_0,)``).
    top_k : None → all min(T·C, P) eigenvalues of the Gram (P the number of parameters; when T·C ≤ P these include the
        zero eigenvalues of a rank-deficient Gram, e.g. dead ReLU units, as values at rounding level); k → the k largest.
    biases : whether the bias parameters belong to θ (the ``+1`` in THEORY §3's identity).
    chunk_size : inputs per block of the Gram product: bounds its temporaries to (chunk·C)², computes only the blocks
        on and above the diagonal; None → one block.
    method : ``"dense"`` (``eigvalsh`` of the Gram), ``"lanczos"`` (ARPACK on the Gram, for the top ``top_k`` of a large
        Gram) or ``"auto"`` (Lanczos when ``top_k`` is at most 10 % of a Gram of size ≥ 512).

    Raises
    ------
    NumericalError : a forward, backward or Gram value is not finite (the message names the layer).
    """
    net = _as_net(net)
    T = net.as_input(X).shape[0]
    n = min(T * net.output_width, net.num_parameters(biases))
    how = _check_method(method, top_k, T * net.output_width)
    k = n if top_k is None else min(int(top_k), n)
    with _measuring():
        g = fisher_gram(net, X, biases=biases, chunk_size=chunk_size)
        if how == "dense":
            return _top_eigenvalues_dense(g, k)
        gn = g.to(torch.float64).cpu().numpy()
        return _lanczos(lambda v: gn @ v, gn.shape[0], k)


@with_threads(work=_work_fisher)
def conditional_fisher_eigenvalues(
    net: LinearChain, x, biases: bool = True, normalize: bool | float = False
) -> np.ndarray:
    """Non-zero spectrum of the conditional FIM ``F(θ|x) = J_θ(x)ᵀ J_θ(x)`` at one input (THEORY §4), descending.

    Computed as the eigenvalues of the C×C matrix ``Φ = Σ_{l=1}^{L+1} a_l J_l J_lᵀ`` with ``a_l = |x^{l-1}|² + 1`` (``+0``
    with ``biases=False``) and ``J_l = ∂f/∂h^l`` — the T = 1 case of :func:`fisher_gram`. A continuous spectrum needs
    C ∝ N (THEORY §4 takes C = N).

    ``normalize``: False → eigenvalues of Φ; True → of Φ/N, N the hidden width (THEORY §4 reports Φ/N, whose eigenvalues
    are O(1); needs equal hidden widths); a positive number → of Φ divided by it.
    """
    net = _as_net(net)
    x1 = _single_input(net, x)
    if normalize is True:
        scale = float(net.width)
    elif normalize is False or normalize is None:
        scale = 1.0
    elif isinstance(normalize, (int, float)) and np.isfinite(normalize) and normalize > 0:
        scale = float(normalize)
    else:
        raise InvalidParameterError(f"normalize must be True, False or a positive number, got {normalize!r}")
    ev = fisher_eigenvalues(net, x1, biases=biases, method="dense")
    return ev / scale


@dataclass(frozen=True)
class SokolParkBound:
    """Sokol & Park's bound on the largest FIM eigenvalue by the partial Jacobians (THEORY §5), MSE loss (H = I).

    Attributes
    ----------
    bound : ``(1/T) Σ_t Σ_{l=1}^{L+1} a_l(x_t) ‖J_l(x_t)‖₂²`` with ``a_l = |x^{l-1}|² + 1`` (``+0`` without biases).
    lambda_max : the actual largest eigenvalue of the FIM over the same inputs (:func:`fisher_eigenvalues`).
    layer_terms : (L+1,) — ``(1/T) Σ_t a_l(x_t) ‖J_l(x_t)‖₂²`` for l = 1..L+1 (they sum to ``bound``).
    jacobian_norms : (L+1, T) — ``‖J_l(x_t)‖₂² = ‖∂f/∂h^l‖₂²`` (the readout's is 1).
    a : (L+1, T) — ``a_l(x_t)``.
    """

    bound: float
    lambda_max: float
    layer_terms: np.ndarray
    jacobian_norms: np.ndarray
    a: np.ndarray

    @property
    def ratio(self) -> float:
        """λ_max / bound ∈ (0, 1]: how tight the bound is."""
        return self.lambda_max / self.bound


@with_threads(work=_work_fisher)
def sokol_park_bound(net: LinearChain, X, biases: bool = True, chunk_size: int | None = None) -> SokolParkBound:
    """The empirical inequality ``λ_max(F) ≤ (1/T) Σ_t Σ_l (|x^{l-1}(x_t)|² + 1) ‖J_l(x_t)‖₂²`` (THEORY §5), both sides
    from one forward and one backward pass; see :class:`SokolParkBound`."""
    net = _as_net(net)
    with _measuring():
        theta, a, jn = _gram(net, X, bool(biases), chunk_size, norms=True)
        T, C = theta.shape[:2]
        g = theta.reshape(T * C, T * C).div_(T)
        if _check_method("auto", 1, T * C) == "dense":
            lam = float(_top_eigenvalues_dense(g, 1)[0])
        else:
            gn = g.to(torch.float64).cpu().numpy()
            lam = float(_lanczos(lambda v: gn @ v, gn.shape[0], 1)[0])
        a64 = a.to(torch.float64).cpu().numpy()
        jn64 = jn.to(torch.float64).cpu().numpy()
    terms = (a64 * jn64).mean(axis=1)
    return SokolParkBound(bound=float(terms.sum()), lambda_max=lam, layer_terms=terms, jacobian_norms=jn64, a=a64)
