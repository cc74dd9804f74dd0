"""Fisher information of deep networks at initialisation, in the mean-field limit (THEORY §3–5).

Network and conventions (THEORY §0): ``depth`` L hidden layers ``h^l = W^l x^{l-1} + b^l``, ``x^l = φ(h^l)`` of width N
(``width``), input ``x^0`` of width N_0 (``input_width``), and a readout ``f = W^{L+1} x^L + b^{L+1}`` with C outputs
(``n_outputs``) drawn like the hidden layers: the model has L + 1 weight layers, so Karakida's "L" is our ``depth + 1``.
``W_ij ~ N(0, σ_w²/N_{l-1})``, ``b_i ~ N(0, σ_b²)``; σ_w and σ_b are standard deviations (papers often quote σ_w², σ_b²).
The Fisher information is that of a Gaussian likelihood with unit variance (squared loss),
``F = (1/T) Σ_t Σ_k ∇_θ f_k(x_t) ∇_θ f_k(x_t)ᵀ`` over T inputs (``n_samples``) and C outputs.

* :func:`fisher_statistics` — Karakida, Akaho & Amari 2019, "Universal statistics of Fisher information in deep neural
  networks: mean field approach" (AISTATS; the theorem on m_λ, s_λ, λ_max and its order parameters κ_1, κ_2): the mean m_λ, second moment s_λ and largest
  eigenvalue λ_max of the FIM, with the order parameters of every layer.
* :func:`conditional_fisher_spectrum` — Hayase & Karakida 2021, "The spectrum of Fisher information of deep networks
  achieving dynamical isometry" (AISTATS): the spectrum of the conditional FIM ``F(θ|x)`` for C = N outputs, divided by N:
  exact mean and variance by recursion, density and edge by free probability (subordination).
* :func:`sokol_park_bound` — Sokol & Park 2020, "Information geometry of orthogonal initializations and training"
  (ICLR): ``λ_max(FIM) ≤ λ_max(H) Σ_l (|x^{l-1}|² + 1) ‖J_l‖₂²`` with the partial Jacobians' edges from
  :func:`meanfield.spectra.jacobian_spectrum`.

Finite depth: every trajectory starts from the inputs (``q̂^0 = |x|²/N_0 = input_norm``,
``q̂^0_× = x·x'/N_0 = input_correlation·input_norm``), not from the fixed point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meanfield import _fisher_kernels as _fk
from meanfield._mehler import mehler_coefficients as _mehler_coefficients
from meanfield._mehler import series_pair as _series_pair
from meanfield._validate import as_array, choice, correlation, integer, nonnegative, positive
from meanfield.activations import get_activation
from meanfield.errors import ConvergenceError, InvalidParameterError, NumericalError
from meanfield.gaussian import checked_twopoint
from meanfield.network import Network
from meanfield.results import Result

__all__ = [
    "fisher_statistics",
    "conditional_fisher_spectrum",
    "sokol_park_bound",
    "FisherStatistics",
    "ConditionalFisherSpectrum",
    "SokolParkBound",
]

WEIGHTS = ("gaussian", "orthogonal")

# A layer-map step |Δ| ≤ STOP_RTOL·q is a fixed point to rounding: the remaining layers repeat the last one. With a
# contraction rate r the neglected drift is at most STOP_RTOL·r/(1 - r) relative (below 1e-12 for r ≤ 0.999).
STOP_RTOL = 4.0 * np.finfo(np.float64).eps
# Below this variance the network is linear to rounding (E φ² = φ'(0)² q + O(q²)): moments are taken at Q_TINY and
# rescaled, which avoids evaluating the rules at variances that underflow.
Q_TINY = 1e-200


# ======================================================================================================= layer maps
def _nans(n):
    """``np.full(n, np.nan)`` at a fraction of its cost (a dozen of these per call of the sub-millisecond functions)."""
    a = np.empty(n)
    a.fill(np.nan)
    return a


@dataclass(frozen=True)
class _Layers:
    """Forward order parameters of layers 0..L+1 (index = layer; L+1 is the readout) for one (φ, σ_w, σ_b, inputs)."""

    q: np.ndarray  # pre-activation variance q^l (q[0] = input_norm)
    q_cross: np.ndarray  # pre-activation covariance of the two inputs (q_cross[0] = input covariance)
    q_hat: np.ndarray  # E φ(h^l)² (q_hat[0] = input_norm), NaN at L+1
    q_hat_cross: np.ndarray  # E φ(h^l)φ(h'^l)
    mu1: np.ndarray  # E φ'(h^l)²
    mu2: np.ndarray  # E φ'(h^l)⁴
    dphi_cross: np.ndarray  # E φ'(h^l)φ'(h'^l)
    converged_layer: int  # first layer from which (q, q_cross) repeat to rounding (L + 1 if they never do)
    cross_method: str


def _forward(act, sw, sb, q_in, qx_in, L, cross=True):
    """Forward maps from the inputs through L hidden layers (THEORY §1, last bullet; Karakida et al. 2019's q̂^l, q̂^l_×).

    ``q^1 = σ_w² q̂^0 + σ_b²``, ``q̂^l = E_{q^l} φ²``, ``q^{l+1} = σ_w² q̂^l + σ_b²``; the cross terms the same with
    ``q̂^l_× = E φ(u)φ(u')`` at covariances (q^l, q^l, q^l_×). Iteration stops once both maps are at a fixed point to
    rounding (:data:`STOP_RTOL`) and the remaining layers repeat the last. Two-point expectations: closed forms where the
    activation has them, else Mehler series (:func:`meanfield._mehler.mehler_coefficients`) for smooth φ, else the package's
    two-dimensional quadrature (~1 ms a layer: slow, but it too stops at convergence).
    """
    k = act.kernels
    tab = act.table
    sw2, sb2 = sw * sw, sb * sb
    n = L + 2
    q = np.empty(n)
    qh = _nans(n)
    mu1 = _nans(n)
    mu2 = _nans(n)
    q[0] = qh[0] = q_in
    q[1] = sw2 * q_in + sb2
    l_q, bad = k.length_trajectory(tab, sw2, sb2, Q_TINY, STOP_RTOL, q, qh, mu1, mu2)
    if bad:
        raise NumericalError(
            f"{act.name}: the length map overflowed at layer {bad} (sigma_w={sw:.6g}, sigma_b={sb:.6g}); the"
            " network is too deep for its chaotic growth to be represented"
        )
    if not cross:
        nan = _nans(n)
        return _Layers(q, nan, qh, nan, mu1, mu2, nan, l_q, "none")

    qx = np.empty(n)
    qhx = _nans(n)
    gx = _nans(n)
    qx[0] = qhx[0] = qx_in
    qx[1] = sw2 * qx_in + sb2
    if qx_in == q_in:  # identical inputs: the cross terms are the diagonal ones
        qx[:] = q
        qhx[:] = qh
        gx[:] = mu1
        return _Layers(q, qx, qh, qhx, mu1, mu2, gx, l_q, "identical inputs")

    if k.CLOSED_TWOPOINT:
        method = "closed form"
        series = None
    elif len(act.kinks) == 0:
        top = min(l_q, L)
        qs = np.maximum(q[1 : top + 1], Q_TINY)
        phi2 = qh[1 : top + 1].copy()
        small = q[1 : top + 1] < Q_TINY
        if small.any():  # their series are those at Q_TINY (the linear regime), rescaled by q/Q_TINY below
            out = np.empty(k.N_MOMENTS)
            k.moments(Q_TINY, tab, out)
            phi2[small] = out[0]
        a2, b2, nterms = _mehler_coefficients(k, qs, phi2, mu1[1 : top + 1], odd=act.is_odd)
        n_ok = int(np.count_nonzero(nterms))
        method = "Mehler series" if n_ok == top else ("quadrature" if n_ok == 0 else "Mehler series + quadrature")
        series = (a2, b2, nterms)
    else:
        method = "quadrature"
        series = None

    qeff = np.maximum(q, Q_TINY)
    scale = q / qeff
    if method == "Mehler series":
        row = np.minimum(np.arange(L + 2), l_q) - 1
        l_x = _fk.cross_series(q, qx, a2, b2, nterms, row, scale, sw2, sb2, l_q, STOP_RTOL, qhx, gx)
        if not np.all(np.isfinite(qx)):
            raise NumericalError(f"{act.name}: the covariance map overflowed")
        return _Layers(q, qx, qh, qhx, mu1, mu2, gx, l_x, method)

    buf = np.empty(2)
    l_x = L + 1
    for l in range(1, L + 1):
        ql = float(q[l])
        qe = float(qeff[l])
        c = min(1.0, max(-1.0, float(qx[l]) / ql)) if ql > 0.0 else 1.0
        j = min(l, l_q) - 1
        if series is not None and nterms[j] > 0:
            _series_pair(a2[j], b2[j], nterms[j], c, buf)
        else:
            checked_twopoint(act, qe, c * qe, buf, f"the cross-covariance map at layer {l}")
        qhx[l] = buf[0] * scale[l]
        gx[l] = buf[1]
        qx[l + 1] = sw2 * qhx[l] + sb2
        if not math.isfinite(qx[l + 1]):
            raise NumericalError(f"{act.name}: the covariance map overflowed at layer {l + 1}")
        if l > l_q and abs(qx[l + 1] - qx[l]) <= STOP_RTOL * ql:
            l_x = l
            qhx[l + 1 : L + 1] = qhx[l]
            gx[l + 1 : L + 1] = gx[l]
            qx[l + 1 :] = qx[l + 1]
            break
    return _Layers(q, qx, qh, qhx, mu1, mu2, gx, l_x, method)


# ============================================================================================== Karakida statistics
DEGENERATE_RTOL = 1e-12  # |κ_2| T ≤ this·κ_1: the top and bulk eigenvalues coincide (odd φ, σ_b = 0, orthogonal inputs)


@dataclass(frozen=True)
class FisherStatistics(Result):
    """Mean-field statistics of the FIM eigenvalues (Karakida, Akaho & Amari 2019; THEORY §3).

    Scalars for a scalar ``depth``; arrays of the shape of ``depth`` for an array of depths [vec]. ``Θ`` is the NTK
    (dual Gram) of one output; its non-zero eigenvalues divided by T are those of the FIM.

    Attributes
    ----------
    kappa1 : ``Θ(x, x)/(αN) = Σ_{l=1}^{L+1} α_{l-1} q̃^l q̂^{l-1}/α`` (+ ``Σ_l q̃^l/(αN)`` with ``biases``).
    kappa2 : the same for two inputs, with the cross order parameters (``Θ(x, x')/(αN)``).
    alpha : ``Σ_{l=1}^{L} α_l α_{l-1} = N_0/N + L - 1`` with ``α_l = N_l/N``: hidden weight matrices in units of N²
        (the readout is excluded, as in Karakida et al., where P ≈ αN²).
    trace : ``Tr F = C·Θ(x, x)``.
    n_parameters : number P of parameters in θ: ``N_0 N + (L-1) N² + N C`` weights, plus ``L N + C`` biases when
        ``biases``.
    mean_eigenvalue : ``m_λ = Tr F / P`` (leading order ``κ_1 C/N``).
    second_moment : ``s_λ = Tr F² / P = C N² [κ_1² + (T-1) κ_2²] α²/(T P)`` (leading order
        ``αC[(T-1)/T κ_2² + κ_1²/T]``).
    lambda_max : ``αN[(T-1)/T κ_2 + κ_1/T]``, or the bulk value if that is larger (κ_2 < 0).
    lambda_max_multiplicity : C (one per output); C(T-1) if the bulk is on top; CT when they coincide (κ_2 = 0).
    bulk_eigenvalue : ``αN(κ_1 - κ_2)/T``, multiplicity ``bulk_multiplicity = C(T-1)`` (none for T = 1): where the
        other eigenvalues sit (Karakida et al.: the spectrum is pathologically concentrated near zero, these C(T-1)
        eigenvalues and the C outliers carrying the whole trace).
    learning_rate_bound : ``2/λ_max``: gradient descent on the squared loss ``(1/2T) Σ_t |f(x_t) - y_t|²`` decreases
        the loss monotonically for learning rates below it (Karakida et al. 2019 §5); between this and ~3× it the loss
        can spike, then settle.

    Per-layer order parameters (arrays indexed by the layer number l = 0 … L+1 of the deepest network, L + 1 being the
    readout; NaN where a quantity is not defined, and the cross ones for T = 1, which needs none):
    q, q_cross : pre-activation variance q^l and covariance of two inputs (``q[0] = input_norm``,
        ``q_cross[0] = input_correlation·input_norm``, ``q[L+1]`` the readout's).
    q_hat, q_hat_cross : forward ``q̂^l = E φ(h^l)²``, ``q̂^l_× = E φ(h^l)φ(h'^l)`` (index 0: the inputs; L+1: NaN).
    q_tilde, q_tilde_cross : backward ``q̃^l = |∂f_k/∂h^l|²``, ``q̃^{L+1} = 1``,
        ``q̃^l = (σ_w^{l+1})² μ_1,l(q^l) q̃^{l+1}``; cross with ``(σ_w^{l+1})² E φ_l'(h^l)φ_l'(h'^l)`` (index 0: NaN).
    chi, chi_cross : the backward gains ``(σ_w^{l+1})² E φ_l'²`` and ``(σ_w^{l+1})² E φ_l'φ_l'`` of hidden layer l: the
        weights of the *next* layer, through which the error signal ``δ^l = D_l W^{l+1ᵀ} δ^{l+1}`` passes. For a uniform
        network this is χ_1 at q^l; for a :class:`~meanfield.Network` it differs from :func:`meanfield.propagate`'s
        forward ``chi[l] = (σ_w^l)² E φ_l'²`` (the gain of the pair D_l W^l of the input-output Jacobian).
    layer_share : fraction of ``Θ(x, x)`` contributed by the weights (and biases) of layer l = 1 … L+1: which layers
        dominate the curvature.
    converged_layer : first layer from which the forward maps repeat to rounding (the iteration stopped there;
        L + 1 if it did not).
    cross_method : how the two-point expectations were computed ("closed form", "Mehler series", "quadrature", …).
    network : ``Network.to_dict()`` of a call with a :class:`~meanfield.Network` (None for the uniform call); its
        scalar fields are then ``net.summary()``'s (NaN, joined names or "mixed" where layers differ), ``width`` is
        N_1 and ``biases`` says whether any layer has a bias.
    """

    activation: str
    sigma_w: float
    sigma_b: float
    depth: int | np.ndarray
    width: int
    input_width: int
    n_samples: int
    n_outputs: int
    input_norm: float
    input_correlation: float
    biases: bool
    weights: str
    alpha: float | np.ndarray
    kappa1: float | np.ndarray
    kappa2: float | np.ndarray
    trace: float | np.ndarray
    n_parameters: int | np.ndarray
    mean_eigenvalue: float | np.ndarray
    second_moment: float | np.ndarray
    lambda_max: float | np.ndarray
    lambda_max_multiplicity: int | np.ndarray
    bulk_eigenvalue: float | np.ndarray
    bulk_multiplicity: int | np.ndarray
    learning_rate_bound: float | np.ndarray
    q: np.ndarray = field(repr=False)
    q_cross: np.ndarray = field(repr=False)
    q_hat: np.ndarray = field(repr=False)
    q_hat_cross: np.ndarray = field(repr=False)
    q_tilde: np.ndarray = field(repr=False)
    q_tilde_cross: np.ndarray = field(repr=False)
    chi: np.ndarray = field(repr=False)
    chi_cross: np.ndarray = field(repr=False)
    layer_share: np.ndarray = field(repr=False)
    converged_layer: int = 0
    cross_method: str = ""
    network: dict | None = None


def _depths(depth):
    """``depth`` as an int (scalar input) or an int array (each ≥ 1); returns (array, is_scalar)."""
    if np.ndim(depth) == 0:
        return np.asarray(integer(depth, "depth", 1)), True
    arr = np.asarray(depth)
    if arr.size == 0:
        raise InvalidParameterError("depth must be a positive integer or a non-empty array of them")
    flat = [integer(v.item() if isinstance(v, np.generic) else v, "depth", 1) for v in arr.reshape(-1)]
    return np.asarray(flat, dtype=np.int64).reshape(arr.shape), False


def _scalar(arr, name):
    if np.ndim(arr) != 0:
        raise InvalidParameterError(f"{name} must be a scalar (only depth is vectorised), got shape {np.shape(arr)}")
    return float(arr)


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _backward(chi, L):
    """``q̃^l = Π_{m=l}^{L} chi[m]`` for l = 1 … L+1 (index 0 NaN), by the backward recursion."""
    qt = _nans(L + 2)
    _fk.backward(chi, L, qt)
    return qt


def _out(arr, scalar, kind=float):
    return kind(arr) if scalar else arr


def _spectrum_statistics(S, Sx, T, C, N, n_par):
    """The FIM's statistics from the NTK sums S = Σ_l a_l q̃^l and Sx (its cross term), elementwise over depths (numpy
    arrays, 0-d for one depth): Θ/N = (S - Sx) I_T + Sx 11ᵀ (⊗ I_C) has the eigenvalue N(S + (T-1)Sx)/T (C-fold, the
    top) and N(S - Sx)/T (C(T-1)-fold, the bulk); returns (trace, λ_max, its multiplicity, bulk, second moment).
    A tie (|Sx|·T ≤ DEGENERATE_RTOL·S) merges them into one CT-fold eigenvalue; with Sx < 0 the bulk is λ_max."""
    trace = C * N * S
    top = N * (S + (T - 1) * Sx) / T
    bulk = N * (S - Sx) / T
    if T == 1:
        lam = top
        mult = np.full(np.shape(S), C)
    else:
        tie = np.abs(Sx) * T <= DEGENERATE_RTOL * S
        lam = np.where(tie | (top >= bulk), top, bulk)
        mult = np.where(tie, C * T, np.where(top > bulk, C, C * (T - 1)))
    second = C * N * N * (S**2 + (T - 1) * Sx**2) / (T * n_par)
    return trace, lam, mult, bulk, second


def _layer_orders(a, chi, chix, S_total, L, T):
    """Per-layer backward order parameters of the deepest network (L hidden layers; arrays indexed 0 … L+1, NaN where
    undefined): q̃ and q̃_× by the backward recursion over the gains ``chi`` (``chix``, T > 1 only), each layer's share
    a_l q̃^l / S of the NTK sum, and the gains themselves for l = 1 … L."""
    qt = _backward(chi, L)
    qtx = _backward(chix, L) if T > 1 else _nans(L + 2)
    share = _nans(L + 2)
    share[1:] = a[1:] * qt[1:] / S_total
    chi_out = _nans(L + 2)
    chi_out[1 : L + 1] = chi[1 : L + 1]
    chix_out = _nans(L + 2)
    if T > 1:
        chix_out[1 : L + 1] = chix[1 : L + 1]
    return qt, qtx, share, chi_out, chix_out


def fisher_statistics(
    phi,
    sigma_w=None,
    sigma_b=None,
    depth=None,
    width=None,
    n_samples=None,
    n_outputs=None,
    input_width=None,
    input_norm=1.0,
    input_correlation=0.0,
    biases=None,
    weights=None,
) -> FisherStatistics:
    """Mean-field statistics of the Fisher information of a random MLP (Karakida, Akaho & Amari 2019; THEORY §3).

    Parameters
    ----------
    phi : activation (name, expression in ``x`` or :class:`~meanfield.Activation`).
    sigma_w, sigma_b : weight and bias standard deviations (``W_ij ~ N(0, σ_w²/N_{l-1})``, ``b_i ~ N(0, σ_b²)``).
    depth : number L of hidden layers (≥ 1), or an array of them [vec]: the layer maps are iterated once to the largest
        depth and every depth's sums are read off the same trajectory. The model has L + 1 weight layers (Karakida's
        "L" is ``depth + 1``).
    width : hidden width N.
    n_samples : number T of inputs in the FIM's average.
    n_outputs : number C of outputs (readout rows).
    input_width : N_0 (default ``width``); ``α_0 = N_0/N``.
    input_norm : ``|x|²/N_0`` of every input (``q̂^0``).
    input_correlation : ``x·x'/|x|²`` of every pair of inputs (``q̂^0_× = input_correlation·input_norm``); T inputs can
        only have a common pairwise correlation ≥ -1/(T-1).
    biases : include the bias parameters in θ (they add ``q̃^l/N`` per layer to κ: O(1/N) but 10% at N = 500). With
        False the network still has its σ_b biases; they are just not trained.
    weights : "gaussian" or "orthogonal". The statistics are the same to leading order: the order parameters only need
        ``E|Wx|² = σ_w²|x|² N_l/N_{l-1}`` and its transpose, which both ensembles share (orthogonal rows make it exact
        for every x). What differs lies beyond this theory: finite-width fluctuations (smaller for orthogonal weights),
        the O(1/√N) corrections of the top eigenvalue, and the shape of the bulk beyond its first two moments
        (see :func:`conditional_fisher_spectrum`).

    Returns
    -------
    FisherStatistics
        κ_1, κ_2, m_λ, s_λ, λ_max (multiplicity C), the bulk eigenvalue, 2/λ_max and the per-layer order parameters.

    Notes
    -----
    The NTK of an MLP is exactly ``Θ(x, x') = Σ_{l=1}^{L+1} (δ^l·δ'^l)(x^{l-1}·x'^{l-1} + 1)`` with
    ``δ^l = ∂f_k/∂h^l`` (the +1 for the biases). In the mean-field limit ``x^{l-1}·x'^{l-1} → N_{l-1} q̂^{l-1}_×`` and
    ``δ^l·δ'^l → q̃^l_×`` (Karakida et al. 2019, §3; the gradient independence assumption for the backward
    pass), hence ``Θ ≈ N[(ακ_1 - ακ_2) I_T + ακ_2 11ᵀ] ⊗ I_C`` whose eigenvalues give every statistic above.
    Every depth L's sum follows from L - 1's as ``S_L = χ_L S_{L-1} + q̂^L + b/N`` (b = 1 with biases).

    **A network whose layers differ** (THEORY §3, §8): ``fisher_statistics(net, n_samples=T, input_norm=…,
    input_correlation=…)`` (keywords: the positions after ``phi`` are the uniform call's) with a :class:`~meanfield.Network` ``net`` (its widths N_0 … N_L, C, per-layer σ_w^l, σ_b^l,
    φ_l, weight kinds and bias flags, the readout's own σ_w^{L+1}, σ_b^{L+1}; the arguments it describes must be left
    out). Layer l = 1 … L+1 takes ``q^1 = (σ_w^1)² q̂^0 + (σ_b^1)²``, ``q^l = (σ_w^l)² q̂^{l-1} + (σ_b^l)²`` with
    ``q̂^l = E_{q^l}[φ_l²]`` (cross terms alike with ``q̂^l_× = E φ_l(u)φ_l(u')``), and the backward gains go through
    the *next* layer's weights: ``P^{L+1} = 1``, ``P^l = (σ_w^{l+1})² μ_1,l(q^l) P^{l+1}`` with
    ``μ_1,l(q) = E_q[φ_l'²]`` (``δ^l = D_l W^{l+1ᵀ} δ^{l+1}``; cross with ``E φ_l'(u)φ_l'(u')``). Then

    ``Θ(x, x') ≈ Σ_{l=1}^{L+1} (N_{l-1} q̂^{l-1}_× + β_l) P^l_×``

    (β_l = 1 where layer l has a bias, which is then trained), ``P = Σ_l N_{l-1}N_l + Σ_l β_l N_l``, and the statistics
    follow from Θ as above with the reference width N = N_1 (``width``; ``α = Σ_{l=1}^L N_lN_{l-1}/N²``). One depth,
    the network's. A uniform network (``net.is_uniform``) takes the uniform path: identical numbers. The result's
    ``activation``, ``sigma_w``, ``sigma_b``, ``weights`` are ``net.summary()``'s, ``biases`` is True where any layer
    has a bias, and ``network`` holds ``net.to_dict()``.

    >>> net = mf.Network((8, 16, 12, 1), [1.5, 1.2, 1.0], [0.1, 0.0, 0.0], ["tanh", "relu"], biases=[True, False, False])
    >>> r = mf.fisher_statistics(net, n_samples=4, input_norm=1.0, input_correlation=0.5)
    >>> r.n_parameters, r.width   # 8·16 + 16·12 + 12·1 weights and the first layer's 16 biases
    (348, 16)
    """
    if isinstance(phi, Network):
        _given_by_network(
            "fisher_statistics",
            dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width, n_outputs=n_outputs,
                 input_width=input_width, biases=biases, weights=weights),
            "n_samples=..., input_norm=..., input_correlation=...",
        )
        net = phi
        T, q_in, rho = _fisher_inputs(n_samples, input_norm, input_correlation)
        if net.is_uniform:
            act, sw, sb, L, N, w = net.uniform_parameters()
            r = _fisher_uniform(act, sw, sb, L, N, T, net.output_width, net.input_width, q_in, rho, net.biases[0],
                                w)
            return _replace(r, network=net.to_dict())
        return _fisher_network(net, T, q_in, rho)
    _missing("fisher_statistics", "phi, sigma_w, sigma_b, depth, width, n_samples",
             dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width, n_samples=n_samples))
    act = get_activation(phi)
    sw = _scalar(positive(sigma_w, "sigma_w"), "sigma_w")
    sb = _scalar(nonnegative(sigma_b, "sigma_b"), "sigma_b")
    N = integer(width, "width", 1)
    T, q_in, rho = _fisher_inputs(n_samples, input_norm, input_correlation)
    C = integer(1 if n_outputs is None else n_outputs, "n_outputs", 1)
    N0 = N if input_width is None else integer(input_width, "input_width", 1)
    use_bias = _flag(True if biases is None else biases, "biases")
    weights = choice("gaussian" if weights is None else weights, "weights", WEIGHTS)
    return _fisher_uniform(act, sw, sb, depth, N, T, C, N0, q_in, rho, use_bias, weights)


def _given_by_network(fname, given, keep):
    """A Network describes these arguments: passing any of them is an error naming them."""
    named = [k for k, v in given.items() if v is not None]
    if named:
        raise InvalidParameterError(
            f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} given by the network: call {fname}(net, {keep})"
        )


def _missing(fname, args, given):
    named = [k for k, v in given.items() if v is None]
    if named:
        raise InvalidParameterError(
            f"{fname}({args}, ...): {', '.join(named)} missing (or pass a meanfield.Network as the first argument)"
        )


def _replace(result, **fields):
    import dataclasses

    return dataclasses.replace(result, **fields)


def _fisher_inputs(n_samples, input_norm, input_correlation):
    if n_samples is None:
        raise InvalidParameterError("n_samples (the number T of inputs in the FIM's average) is required")
    T = integer(n_samples, "n_samples", 1)
    q_in = _scalar(positive(input_norm, "input_norm"), "input_norm")
    rho = _scalar(correlation(input_correlation, "input_correlation"), "input_correlation")
    if T >= 2 and rho < -1.0 / (T - 1):
        raise InvalidParameterError(
            f"input_correlation={rho:.6g} is impossible for n_samples={T} inputs with a common pairwise correlation:"
            f" it must be ≥ -1/(T-1) = {-1.0 / (T - 1):.6g}"
        )
    return T, q_in, rho


def _fisher_uniform(act, sw, sb, depth, N, T, C, N0, q_in, rho, use_bias, weights):
    """The uniform network's statistics (every depth of ``depth`` from one trajectory)."""
    depths, scalar = _depths(depth)

    L_max = int(depths.max())
    lay = _forward(act, sw, sb, q_in, rho * q_in, L_max, cross=T > 1)
    sw2 = sw * sw
    b = (1.0 if use_bias else 0.0) / N
    a0 = N0 / N

    def sums(qh, g):
        a = np.empty(L_max + 2)
        a[0] = np.nan
        a[1] = a0 * qh[0] + b
        a[2:] = qh[1 : L_max + 1] + b
        chi = sw2 * g
        s = np.empty(L_max + 1)
        _fk.depth_sums(chi, a, s)
        return a, chi, s

    a, chi, S = sums(lay.q_hat, lay.mu1)
    if T > 1:
        ax, chix, Sx = sums(lay.q_hat_cross, lay.dphi_cross)
    else:
        ax = chix = _nans(L_max + 2)
        Sx = np.zeros(L_max + 1)
    if not (np.all(np.isfinite(S)) and np.all(np.isfinite(Sx))):
        raise NumericalError(
            f"{act.name}: the NTK overflowed (sigma_w={sw:.6g}, sigma_b={sb:.6g}, depth up to {L_max}): the backward"
            " gains grow too fast for this depth"
        )

    S_L = S[depths]
    Sx_L = Sx[depths]
    alpha = a0 + depths - 1.0
    n_par = N0 * N + (depths - 1) * N * N + N * C + (depths * N + C if use_bias else 0)
    trace, lam, mult, bulk, second = _spectrum_statistics(S_L, Sx_L, T, C, N, n_par)
    qt, qtx, share, chi_out, chix_out = _layer_orders(a, chi, chix, S[L_max], L_max, T)

    return FisherStatistics(
        activation=act.name,
        sigma_w=sw,
        sigma_b=sb,
        depth=_out(depths, scalar, int),
        width=N,
        input_width=N0,
        n_samples=T,
        n_outputs=C,
        input_norm=q_in,
        input_correlation=rho,
        biases=use_bias,
        weights=weights,
        alpha=_out(alpha, scalar),
        kappa1=_out(S_L / alpha, scalar),
        kappa2=_out(Sx_L / alpha, scalar),
        trace=_out(trace, scalar),
        n_parameters=_out(n_par, scalar, int),
        mean_eigenvalue=_out(trace / n_par, scalar),
        second_moment=_out(second, scalar),
        lambda_max=_out(lam, scalar),
        lambda_max_multiplicity=_out(mult, scalar, int),
        bulk_eigenvalue=_out(bulk, scalar),
        bulk_multiplicity=_out(np.full(depths.shape, C * (T - 1)), scalar, int),
        learning_rate_bound=_out(2.0 / lam, scalar),
        q=lay.q,
        q_cross=lay.q_cross,
        q_hat=lay.q_hat,
        q_hat_cross=lay.q_hat_cross,
        q_tilde=qt,
        q_tilde_cross=qtx,
        chi=chi_out,
        chi_cross=chix_out,
        layer_share=share,
        converged_layer=lay.converged_layer,
        cross_method=lay.cross_method,
    )


def _network_forward(net, q_in, qx_in, cross):
    """Forward order parameters of a per-layer network (THEORY §3, §8), layers 0 … L+1 as in :class:`_Layers`.

    ``q^1 = (σ_w^1)² q̂^0 + (σ_b^1)²``, ``q̂^l = E_{q^l} φ_l²``, ``μ_k = E_{q^l} φ_l'^{2k}``,
    ``q^{l+1} = (σ_w^{l+1})² q̂^l + (σ_b^{l+1})²``; cross terms with the activation's two-point rule (closed form where
    it has one) at covariances (q^l, q^l, q^l_×). Below :data:`Q_TINY` the moments are those of the linear regime, as in
    :func:`_forward`. No early stop (one depth, usually small)."""
    L = net.depth
    n = L + 2
    q, qh, mu1, mu2 = np.empty(n), _nans(n), _nans(n), _nans(n)
    qx, qhx, gx = _nans(n), _nans(n), _nans(n)
    q[0] = qh[0] = q_in
    sw2 = [s * s for s in net.sigma_w]
    sb2 = [s * s for s in net.sigma_b]
    q[1] = sw2[0] * q_in + sb2[0]
    if cross:
        qx[0] = qhx[0] = qx_in
        qx[1] = sw2[0] * qx_in + sb2[0]
    out = np.empty(5)
    buf = np.empty(2)
    methods = set()
    for l in range(1, L + 1):
        act = net.activations[l - 1]
        k = act.kernels
        ql = float(q[l])
        qe = max(ql, Q_TINY)
        k.moments(qe, act.table, out)
        if not (math.isfinite(out[0]) and math.isfinite(out[2]) and math.isfinite(out[3])):
            raise NumericalError(f"layer {l} ({act.name}): the moments at q = {ql:.6g} could not be evaluated")
        qh[l] = out[0] * (ql / qe)
        mu1[l], mu2[l] = out[2], out[3]
        q[l + 1] = sw2[l] * qh[l] + sb2[l]
        if cross:
            if qx_in == q_in:
                qhx[l], gx[l] = qh[l], mu1[l]
                methods.add("identical inputs")
            else:
                c = min(1.0, max(-1.0, float(qx[l]) / ql)) if ql > 0.0 else 1.0
                checked_twopoint(act, qe, c * qe, buf, f"the cross-covariance map at layer {l}", moments=out)
                qhx[l], gx[l] = buf[0] * (ql / qe), buf[1]
                methods.add("closed form" if k.CLOSED_TWOPOINT else "quadrature")
            qx[l + 1] = sw2[l] * qhx[l] + sb2[l]
        if not (math.isfinite(q[l + 1]) and math.isfinite(qx[l + 1]) or not cross and math.isfinite(q[l + 1])):
            raise NumericalError(f"layer {l + 1}: the length or covariance map overflowed (q^{l} = {ql:.6g})")
    method = " + ".join(sorted(methods)) if cross else "none"
    return _Layers(q, qx, qh, qhx, mu1, mu2, gx, L + 1, method)


def _fisher_network(net, T, q_in, rho):
    """:func:`fisher_statistics` of a per-layer network (see its docstring, "A network whose layers differ")."""
    L = net.depth
    Ns = net.widths
    N = Ns[1]
    C = net.output_width
    lay = _network_forward(net, q_in, rho * q_in, T > 1)
    beta = [1.0 if b else 0.0 for b in net.biases]
    sw2 = [s * s for s in net.sigma_w]

    def sums(qh, g):
        # a[l] = (N_{l-1} q̂^{l-1} + β_l)/N (l = 1 … L+1); chi[m] = (σ_w^{m+1})² g_m (m = 1 … L): P^l = Π_{m≥l} chi[m]
        a = _nans(L + 2)
        chi = _nans(L + 2)
        for l in range(1, L + 2):
            a[l] = (Ns[l - 1] * qh[l - 1] + beta[l - 1]) / N
        for m in range(1, L + 1):
            chi[m] = sw2[m] * g[m]
        s = np.empty(L + 1)
        _fk.depth_sums(chi, a, s)
        return a, chi, float(s[L])

    a, chi, S = sums(lay.q_hat, lay.mu1)
    if T > 1:
        ax, chix, Sx = sums(lay.q_hat_cross, lay.dphi_cross)
    else:
        chix, Sx = _nans(L + 2), 0.0
    if not (math.isfinite(S) and math.isfinite(Sx)):
        raise NumericalError(f"the NTK overflowed for {net!r}: the backward gains grow too fast for this depth")
    alpha = sum(Ns[l] * Ns[l - 1] for l in range(1, L + 1)) / (N * N)
    n_par = sum(Ns[l - 1] * Ns[l] for l in range(1, L + 2)) + sum(Ns[l] for l in range(1, L + 2) if net.biases[l - 1])
    trace, lam, mult, bulk, second = _spectrum_statistics(np.float64(S), np.float64(Sx), T, C, N, n_par)
    trace, lam, bulk, second = float(trace), float(lam), float(bulk), float(second)
    qt, qtx, share, chi_out, chix_out = _layer_orders(a, chi, chix, S, L, T)
    summ = net.summary()
    return FisherStatistics(
        activation=summ["activation"],
        sigma_w=summ["sigma_w"],
        sigma_b=summ["sigma_b"],
        depth=L,
        width=N,
        input_width=Ns[0],
        n_samples=T,
        n_outputs=C,
        input_norm=q_in,
        input_correlation=rho,
        biases=any(net.biases),
        weights=summ["weights"],
        alpha=float(alpha),
        kappa1=S / alpha,
        kappa2=Sx / alpha,
        trace=trace,
        n_parameters=int(n_par),
        mean_eigenvalue=trace / n_par,
        second_moment=second,
        lambda_max=lam,
        lambda_max_multiplicity=int(mult),
        bulk_eigenvalue=bulk,
        bulk_multiplicity=C * (T - 1),
        learning_rate_bound=2.0 / lam,
        q=lay.q,
        q_cross=lay.q_cross,
        q_hat=lay.q_hat,
        q_hat_cross=lay.q_hat_cross,
        q_tilde=qt,
        q_tilde_cross=qtx,
        chi=chi_out,
        chi_cross=chix_out,
        layer_share=share,
        converged_layer=L + 1,
        cross_method=lay.cross_method,
        network=net.to_dict(),
    )


# ====================================================================================== conditional FIM spectrum
LADDER_RATIO = 0.5  # vertical continuation: y → 0.5·y from the start height down to the evaluation height
NEWTON_MAXIT = 40
Y_MIN_REL = 1e-7  # densities are taken at x + i·Y_MIN_REL·mean (the Cauchy smoothing this implies is negligible)
# The previous construction (contour rules of every law up front, the edge by _edge_scan, one pack per tail in the
# Sokol–Park bound), kept callable for the benchmarks' baseline rows; never set by the package.
_BASELINE = False
EDGE_T_MIN = -1000.0  # the edge search follows w_1 - s_1 = e^t down to e^-1000 (the end of the branch: a hard edge)
EDGE_T_MAX = 1e5  # ... and up to e^100000 (the fold of a chain contracting by χ_1 per level sits near w_1 ~ χ_1^{-L})
EDGE_TTOL = 1e-10  # bracket of the sign change of F' at the fold (F is quadratic there: the edge is exact to rounding)
EDGE_RTOL = 1e-9  # the edge must lie within the moment and norm bounds to this (relative) slack
POLE_LADDER_RATIO = 0.25  # the density's ladder (tangent starts): y → 0.25·y
DENSITY_THREADS = 2  # above 1: two runs of consecutive density points on two threads, each started by its own ladder;
# 1: one run in the calling thread
DENSITY_SPLIT = 0.42  # the lower run's share of the points (its chains, towards the lower end a_{L+1}/N, are slower:
# halves left one thread idle for about a tenth of the call); a fixed split keeps the values independent of timing
DENSITY_MIN_CHUNK = 64  # one run below twice this many points
CONTOUR_SPLIT = 64  # the density's contour rules are built on two threads from twice this many distinct laws
Y_RETRY = (1e-6, 1e-5, 1e-4)  # where the chain cannot be solved that close to the axis (within ~1e-6 of the lower
# end a_{L+1}/N of the support, where the law has next to no mass), these larger heights are tried in turn


def _laws():
    """The law of φ'² and its pushforward density from :mod:`meanfield.spectra` (the package's one implementation: atoms
    on the pieces where φ' is constant, a real Gauss–Legendre rule for moments and edges, and a rule on a contour
    deformed into the complex plane, which gives Stieltjes-type transforms up to the real axis without the spikes of
    a discretised law). Imported lazily: the conditional spectrum is its only user here."""
    try:
        from meanfield.spectra import _d2_law, _pushforward_density
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise ImportError(
            "conditional_fisher_spectrum needs meanfield.spectra (the law of φ'²), which is not available"
        ) from exc
    return _d2_law, _pushforward_density


def _nu_law(d2_law, act, q, sw2, contour=True, law=None):
    """ν = law of ``σ_w² φ'(h)²``, h ~ N(0, q): (real values, masses), (complex contour values, weights), atoms.

    The real rule serves the real axis (moments, the edge), the contour rule the complex points of the chain (valid
    for the half-plane the chain's ν-arguments live in, ``Im 1/u > 0``). Atoms (pieces where φ' is constant, e.g. ReLU's
    0 and σ_w² with mass 1/2 each) are part of both. ``contour=False`` leaves the contour rule out (atoms only there):
    the construction needs the real axis only, and :func:`_complex_levels` builds the rest on first use. ``law``: the
    law of φ'² at q if already built (else :func:`meanfield.spectra._d2_law` builds it).
    """
    if law is None:
        law = d2_law(act, q, contour=contour)
    av, am = sw2 * law.atom_vals, law.atom_mass
    real_d = np.concatenate((av, sw2 * law.node_vals))
    real_p = np.concatenate((am, law.node_wts))
    cplx_d = np.concatenate((av.astype(np.complex128), sw2 * law.cnode_vals))
    cplx_p = np.concatenate((am.astype(np.complex128), law.cnode_wts))
    atoms = [(float(v), float(m)) for v, m in zip(av, am)]
    return (real_d, real_p), (cplx_d, cplx_p), atoms, law


def _product_atoms(atoms_y, atoms_nu, nu_zero):
    """Atoms of ν ⊠ μ for measures on [0, ∞) (Belinschi 2003): at a·b with mass μ{a} + ν{b} - 1 where positive, and
    at 0 with mass max(μ{0}, ν{0}) (μ here has no atom at 0)."""
    out = []
    if nu_zero > 0.0:
        out.append((0.0, nu_zero))
    for a, ma in atoms_y:
        for b, mb in atoms_nu:
            if b > 0.0 and ma + mb - 1.0 > 1e-12:
                out.append((a * b, ma + mb - 1.0))
    return out


@dataclass(frozen=True)
class ConditionalFisherSpectrum(Result):
    """Spectrum of the conditional FIM ``F(θ|x)/N`` for one input and C = N outputs (Hayase & Karakida 2021; THEORY §4).

    Its non-zero eigenvalues are those of ``Φ/N``, ``Φ = Σ_{l=1}^{L+1} a_l J_l J_lᵀ``, ``a_l = |x^{l-1}|² + 1``,
    ``J_l = ∂f/∂h^l`` (C × N).

    Attributes
    ----------
    mean, variance : exact moments of the limiting law (the recursion of THEORY §4).
    lambda_max : upper edge of the support (free probability, on the real axis).
    atoms : ((location, mass), …) point masses of the law (e.g. at ``a_{L+1}/N`` when φ' vanishes on a set of positive
        probability, as for ReLU); :meth:`density` is the absolutely continuous part.
    layer_mean, layer_variance : mean and variance of ``G_l/N`` for l = 1 … L+1 (index 0 NaN): the law after each layer.
    shift : ``a_l/N = q̂^{l-1} + β_l/N`` (index 0 NaN; β_l = 1 where layer l's bias is counted: ``biases=True`` in the
        uniform call, the layer's bias flag for a :class:`~meanfield.Network`).
    q : pre-activation variance q^l of the input's trajectory (``q[0] = input_norm``).
    network : ``Network.to_dict()`` of a call with a :class:`~meanfield.Network` (None for the uniform call).
    """

    activation: str
    sigma_w: float
    sigma_b: float
    depth: int
    width: int
    weights: str
    input_norm: float
    biases: bool
    mean: float
    variance: float
    lambda_max: float
    atoms: tuple
    layer_mean: np.ndarray = field(repr=False)
    layer_variance: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    network: dict | None = None
    _levels: dict = field(default_factory=dict, repr=False, compare=False)

    def stieltjes(self, z):
        """``G(z) = ∫ρ(t)/(z - t) dt`` (atoms included) at points of the upper half-plane [vec]."""
        za = np.asarray(z, dtype=np.complex128)
        if np.any(za.imag <= 0.0):
            raise InvalidParameterError("stieltjes needs Im z > 0 (use density() on the real axis)")
        out = np.array([_stieltjes_point(self._levels, complex(v)) for v in za.reshape(-1)]).reshape(za.shape)
        return complex(out) if za.ndim == 0 else out

    def density(self, x):
        """Density of the absolutely continuous part at real points x [vec] (atoms excluded: see ``atoms``).

        The subordination chain is solved at ``x + i·Y_MIN_REL·mean`` point after point in increasing x (a Cauchy
        smoothing of width 1e-7 × mean: negligible where the density is bounded, but where it diverges at the lower end
        of the support — like d^{-0.7} in some per-layer networks — it is clipped within ~1e-6 of that end, which moves
        the mass and the quantiles there by up to a few 1e-3), each point
        started from the last ones' solutions (continuation); from 128 points on, two runs of consecutive points are
        solved on two threads (``meanfield.fisher.DENSITY_THREADS``, split at ``DENSITY_SPLIT``; the values do not
        depend on the threads' timing). The first call builds the laws' contour rules."""
        xa = as_array(x, "x")
        flat = xa.reshape(-1)
        out = _density(self._levels, flat, self.atoms)
        return float(out[0]) if xa.ndim == 0 else out.reshape(xa.shape)


def _complex_levels(lev):
    """(D, P, off) of the laws ν_l on the deformed contour (atoms included), built once on first use: the construction
    (moments, edge, atoms) needs only the real rules, the density and the Stieltjes transform need these. The contour
    rules of the distinct laws come from :func:`meanfield.spectra._contour_laws` (stacked for many laws of one smooth
    activation, else :func:`meanfield.spectra._d2_law` each; the same rules either way), from 2·CONTOUR_SPLIT laws on
    in two halves on two threads (numpy's array work releases the GIL), each thread also laying out its levels and
    packing their pole form (:func:`_pole_levels`) where the levels of each half's laws are consecutive."""
    got = lev.get("complex")
    if got is None:
        d2_law, _ = _laws()
        real = lev.get("real_laws", {})
        keys = lev["law_keys"]
        distinct = list(dict.fromkeys((k[0], k[1]) for k in keys))
        if _BASELINE or not all(k in real for k in distinct):
            laws = [d2_law(a, q) for a, q in distinct]
        else:
            from meanfield.spectra import _contour_laws

            acts, olds = [k[0] for k in distinct], [real[k] for k in distinct]
            if len(distinct) >= 2 * CONTOUR_SPLIT:
                from concurrent.futures import ThreadPoolExecutor

                h = len(distinct) // 2
                first = set(distinct[:h])
                k1 = 0
                while k1 < len(keys) and (keys[k1][0], keys[k1][1]) in first:
                    k1 += 1
                if all((k[0], k[1]) not in first for k in keys[k1:]):
                    # the levels of each half's laws are consecutive: each thread also lays out its levels and
                    # packs their pole form (elementwise: bitwise the arrays of the whole chain)
                    def half(sl, ks):
                        by = dict(zip(distinct[sl], _contour_laws(acts[sl], olds[sl])))
                        D, P, sizes = _level_rules(ks, by)
                        return D, P, sizes, _pack_poles(D, P)

                    with ThreadPoolExecutor(2) as ex:
                        (D1, P1, n1, (R1, c1)), (D2, P2, n2, (R2, c2)) = ex.map(
                            half, (slice(0, h), slice(h, None)), (keys[:k1], keys[k1:]))
                    off = np.concatenate(([0, 0], np.cumsum(np.concatenate((n1, n2))))).astype(np.int64)
                    kept = np.concatenate((c1, c2[1:] + c1[-1]))  # nodes kept before each node index
                    got = lev["complex"] = (np.concatenate((D1, D2)), np.concatenate((P1, P2)), off)
                    lev["poles"] = (np.ascontiguousarray(np.concatenate((R1, R2), axis=1)), kept[off].astype(np.int64))
                    return got
                with ThreadPoolExecutor(2) as ex:
                    parts = list(ex.map(lambda sl: _contour_laws(acts[sl], olds[sl]), (slice(0, h), slice(h, None))))
                laws = parts[0] + parts[1]
            else:
                laws = _contour_laws(acts, olds)
        D, P, sizes = _level_rules(keys, dict(zip(distinct, laws)))
        got = lev["complex"] = (D, P, np.concatenate(([0, 0], np.cumsum(sizes))).astype(np.int64))
    return got


def _level_rules(keys, by):
    """The contour rules of the levels ``keys`` = ((φ, q, σ_w²), …) from the laws ``by[(φ, q)]``, laid end to end:
    (D, P, the number of nodes of each level)."""
    Ds, Ps, sizes = [], [], np.empty(len(keys), dtype=np.int64)
    for i, (act, q, sw2) in enumerate(keys):  # the complex rule of :func:`_nu_law`, atoms first, in one concatenation
        law = by[(act, q)]
        d = sw2 * law.cnode_vals
        Ds += [(sw2 * law.atom_vals).astype(np.complex128), d]
        Ps += [law.atom_mass.astype(np.complex128), law.cnode_wts]
        sizes[i] = law.atom_vals.size + d.size
    if not Ds:
        return np.zeros(0, dtype=np.complex128), np.zeros(0, dtype=np.complex128), sizes
    return np.ascontiguousarray(np.concatenate(Ds)), np.ascontiguousarray(np.concatenate(Ps)), sizes


def _pack_poles(D, P):
    """Pole form of the nodes (D, P) (see :func:`_pole_levels`): the (6, n) array of the nodes d ≠ 0 and the number of
    nodes kept before each index (length D.size + 1)."""
    keep = D != 0.0
    kept = np.concatenate(([0], np.cumsum(keep)))
    c = 1.0 / D[keep]
    p = P[keep]
    pc = p * c
    R = np.empty((6, c.size))
    R[0], R[1], R[2], R[3], R[4], R[5] = c.real, c.imag, p.real, p.imag, pc.real, pc.imag
    return R, kept


def _initial_guess(lev, target):
    """Bottom point w_1 and inverse values v_l from the large-|w| asymptotics (w_{l-1} ≈ (w_l - s_l)/m_ν)."""
    s, mnu = lev["s"], lev["m_nu"]
    top = s.shape[0] - 1
    w = np.empty(top + 1, dtype=np.complex128)
    w[top] = target
    for l in range(top, 1, -1):
        w[l - 1] = (w[l] - s[l]) / mnu[l - 1]
    v = np.zeros(top + 1, dtype=np.complex128)
    H = 0.0
    for l in range(2, top + 1):
        H = 1.0 - (1.0 - H) * (1.0 - s[l - 1] / w[l - 1])
        v[l] = H / mnu[l - 1]
    return w[1], v


def _solve_at(lev, x, y, guess=None):
    """(w_1, w_{L+1}, H, v) at x + i·y: from ``guess`` directly if given and it works, else by the vertical ladder.

    Returns None where the chain cannot be solved."""
    s, gauss = lev["s"], lev["gauss"]
    D, P, off = _complex_levels(lev)
    if guess is not None:
        w1, v = guess[0], guess[1].copy()
        w1n, wt, H, st = _fk.chain_solve(complex(x, y), w1, s, D, P, off, gauss, v, NEWTON_MAXIT)
        if st == 0:
            return w1n, wt, H, v
    y0 = lev["y0"]
    for _ in range(4):
        w1, v = _initial_guess(lev, complex(x, y0))
        w1n, wt, H, st = _fk.chain_ladder(x, y0, y, LADDER_RATIO, w1, s, D, P, off, gauss, v, NEWTON_MAXIT)
        if st == 0:
            return w1n, wt, H, v
        y0 *= 4.0
    return None


def _g_top(lev, w_top, H):
    """G(w_{L+1}) = 1/((w_{L+1} - s_{L+1})(1 - H_{L+1})) at the chain's own top point (consistent with H)."""
    return 1.0 / ((w_top - lev["s"][-1]) * (1.0 - H))


def _stieltjes_point(lev, z):
    if lev.get("pushforward") is not None:
        return lev["pushforward"].stieltjes(z)
    got = _solve_at(lev, z.real, z.imag) if _BASELINE else _solve_poles(lev, z.real, z.imag)
    if got is None:
        raise NumericalError(f"the subordination chain did not converge at z = {z!r}")
    return _g_top(lev, got[1], got[2])


def _pole_levels(lev):
    """The complex laws in pole form for :func:`meanfield._fisher_kernels.chain_solve_poles`: nodes d_i ≠ 0 as
    ``c_i = 1/d_i`` with masses p_i and ``p_i c_i`` (a node at 0 adds nothing to ψ_ν), packed per level as the rows
    (Re c, Im c, Re p, Im p, Re pc, Im pc) of one (6, n) array, with the level offsets; built once."""
    got = lev.get("poles")
    if got is None:
        D, P, off = _complex_levels(lev)
        got = lev.get("poles")
    if got is None:
        R, kept = _pack_poles(D, P)
        got = lev["poles"] = (R, kept[off].astype(np.int64))
    return got


def _solve_poles(lev, x, y, guess=None):
    """(w_1, w_{L+1}, H, v, dw_{L+1}/dw_1, dv/dw_1) at x + i·y in pole form: from ``guess`` = (w_1, v) if given and
    it works, else by the vertical ladder from the start height (:func:`_ladder_poles`). None where the chain cannot
    be solved."""
    s, gauss = lev["s"], lev["gauss"]
    R, off = _pole_levels(lev)
    dv = np.zeros(s.size, dtype=np.complex128)
    if guess is not None:
        w1, v = guess[0], guess[1].copy()
        w1n, wt, H, dw, st = _fk.chain_solve_poles(complex(x, y), w1, s, R, off, gauss, v, dv, NEWTON_MAXIT)
        if st == 0:
            return w1n, wt, H, v, dw, dv
    return _ladder_poles(lev, x, y)


def _ladder_poles(lev, x, y):
    """The chain at x + i·y continued down from the start height y0 (the large-|w| guess of :func:`_initial_guess`
    there) in steps y → POLE_LADDER_RATIO·y, each started on the tangent of the last (``dw_1/dy = i/(dw_{L+1}/dw_1)``,
    v along dv/dw_1), else from the last solution itself, else with a smaller step (ratio → √ratio down to 0.9999);
    y0 grows 4× (up to three times) where the top rung fails. None where no ladder reaches y."""
    s, gauss = lev["s"], lev["gauss"]
    R, off = _pole_levels(lev)
    dv = np.zeros(s.size, dtype=np.complex128)
    y0 = lev["y0"]

    def solve(yy, w1, v):
        v = v.copy()
        w1n, wt, H, dw, st = _fk.chain_solve_poles(complex(x, yy), w1, s, R, off, gauss, v, dv, NEWTON_MAXIT)
        return (w1n, wt, H, v, dw, dv.copy()) if st == 0 else None

    for _ in range(4):
        cur = solve(y0, *_initial_guess(lev, complex(x, y0)))
        if cur is not None:
            yc, ratio = y0, POLE_LADDER_RATIO
            while yc > y:
                yn = max(yc * ratio, y)
                w1, _, _, v, dw, dvc = cur
                w1p = w1 + 1j * (yn - yc) / dw
                nxt = solve(yn, w1p, v + dvc * (w1p - w1)) if w1p.imag > 0.0 else None
                if nxt is None:
                    nxt = solve(yn, w1, v)
                if nxt is not None:
                    cur, yc, ratio = nxt, yn, POLE_LADDER_RATIO
                else:
                    ratio = math.sqrt(ratio)
                    if ratio > 0.9999:
                        cur = None
                        break
            if cur is not None:
                return cur
        y0 *= 4.0
    return None


def _density(lev, xs, atoms):
    """Density at the real points ``xs``: the chain solved at x + i·y_min point after point in increasing x, each
    started from a prediction (:func:`_predict`); where that start fails, from the previous solution itself, then by
    the ladder; heights Y_RETRY where y_min cannot be reached. Every point is a converged chain
    (:func:`meanfield._fisher_kernels.chain_solve_poles`). From 2 × DENSITY_MIN_CHUNK points on, two runs of
    consecutive points (the lowest DENSITY_SPLIT of them, and the rest) are solved at once (the kernels release the
    GIL), each started by the ladder."""
    if _BASELINE:
        return _density_baseline(lev, xs, atoms)
    if lev.get("pushforward") is not None:
        return lev["pushforward"].density(xs)
    s_top = lev["s"][-1]
    out = np.zeros(xs.size)
    order = np.argsort(xs, kind="stable")
    inside = (xs[order] > s_top) & (xs[order] < lev["lambda_max"])  # Φ/N ≥ a_{L+1}/N (its atom is reported apart)
    order = order[inside]
    _pole_levels(lev)  # built once, before the threads
    if DENSITY_THREADS > 1 and order.size >= 2 * DENSITY_MIN_CHUNK:
        from concurrent.futures import ThreadPoolExecutor

        runs = np.split(order, [int(DENSITY_SPLIT * order.size)])
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda idx: _density_run(lev, xs, idx, atoms, out), runs))
    else:
        _density_run(lev, xs, order, atoms, out)
    return out


def _density_run(lev, xs, idx, atoms, out):
    """Fill ``out[idx]`` (``xs[idx]`` increasing) by continuation along the run (see :func:`_density`)."""
    s, gauss = lev["s"], lev["gauss"]
    R, off = _pole_levels(lev)
    hist = []  # (x, w1, v, dw, dv) of the last points solved at y_min, newest first (at most 3)
    dv = np.zeros(s.size, dtype=np.complex128)
    for i in idx:
        x = float(xs[i])
        got = None
        y = lev["y_min"]
        if hist and hist[0][3] != 0.0:
            w1p, vp = _predict(hist, x)
            if w1p.imag > 0.0:
                w1n, wt, H, dw, st = _fk.chain_solve_poles(complex(x, y), w1p, s, R, off, gauss, vp, dv,
                                                           NEWTON_MAXIT)
                if st == 0:
                    got = (w1n, wt, H, vp, dw, dv.copy())
        if got is None:
            for y in (lev["y_min"],) + tuple(r * lev["scale"] for r in Y_RETRY):
                got = _solve_poles(lev, x, y, (hist[0][1], hist[0][2]) if hist else None)
                if got is not None:
                    break
            else:
                raise NumericalError(f"the subordination chain did not converge at x = {x:.6g}")
        w1, wt, H, v, dw, dvs = got
        g = _g_top(lev, wt, H)
        for loc, mass in atoms:
            g -= mass / (wt - loc)
        out[i] = max(0.0, -g.imag / math.pi)
        hist = [(x, w1, v, dw, dvs)] + hist[:2] if y == lev["y_min"] else []


def _predict(hist, x):
    """Start of the chain at x from the solutions ``hist`` (newest first): w_1 by the cubic through the last three
    w_1 with the last tangent dw_1/dx = 1/(dw_{L+1}/dw_1) (fewer points: lower degree), and v by the quadratic through
    the last two v with the tangent (dv/dw_1)(dw_1/dx)."""
    x1, w11, v1, dw1, dv1 = hist[0]
    h = x - x1
    slope = 1.0 / dw1
    w1 = w11 + slope * h
    v = v1 + dv1 * (slope * h)
    if len(hist) >= 2 and hist[1][0] != x1:
        h2 = hist[1][0] - x1
        r2 = (hist[1][1] - w11 - slope * h2) / (h2 * h2)
        a2, b3 = r2, 0.0
        if len(hist) >= 3 and hist[2][0] not in (x1, hist[1][0]):
            h3 = hist[2][0] - x1
            r3 = (hist[2][1] - w11 - slope * h3) / (h3 * h3)
            b3 = (r2 - r3) / (h2 - h3)
            a2 = r2 - b3 * h2
        w1 = w1 + (a2 + b3 * h) * h * h
        v = v + (hist[1][2] - v1 - dv1 * (slope * h2)) * (h * h / (h2 * h2))
    return w1, v


def _density_baseline(lev, xs, atoms):
    """The previous density (kept for the benchmarks' baseline): the chain of :func:`_solve_at`, each point started
    from the previous point's solution as it is."""
    if lev.get("pushforward") is not None:
        return lev["pushforward"].density(xs)
    s_top = lev["s"][-1]
    out = np.zeros(xs.size)
    order = np.argsort(xs, kind="stable")
    guess = None
    for i in order:
        x = float(xs[i])
        if x <= s_top or x >= lev["lambda_max"]:  # Φ/N ≥ a_{L+1}/N (an atom there is reported separately)
            continue
        for y in (lev["y_min"],) + tuple(r * lev["scale"] for r in Y_RETRY):
            got = _solve_at(lev, x, y, guess)
            if got is not None:
                break
        else:
            raise NumericalError(f"the subordination chain did not converge at x = {x:.6g}")
        w1, wt, H, v = got
        g = _g_top(lev, wt, H)
        for loc, mass in atoms:
            g -= mass / (wt - loc)
        out[i] = max(0.0, -g.imag / math.pi)
        guess = (w1, v) if y == lev["y_min"] else None
    return out


class _Pushforward:
    """Law of ``s2 + s1·σ_w² φ'(h)²``, h ~ N(0, q): the depth-1 orthogonal spectrum (no free convolution is involved)."""

    def __init__(self, act, law, sw2, s1, s2, pushforward_density):
        self.act, self.law, self.c, self.s2 = act, law, s1 * sw2, s2
        self._pd = pushforward_density

    def density(self, xs):
        t = (np.asarray(xs, dtype=np.float64) - self.s2) / self.c
        return self._pd(self.act, self.law, t) / self.c

    def stieltjes(self, z):
        # 1/(z - s2 - c·d) is analytic in d off the pole at (z - s2)/c, which lies above the axis: the contour rule
        # (deformed away from that half-plane) holds right down to the real axis
        lam = self.s2 + self.c * np.concatenate((self.law.atom_vals, self.law.cnode_vals))
        w = np.concatenate((self.law.atom_mass, self.law.cnode_wts))
        return complex(np.sum(w / (z - lam)))

    def edge(self):
        return self.s2 + self.c * self.law.top


def _edge(lev):
    """Upper edge λ_max = min over w_1 > s_1 of the real chain's top point w_{L+1}(w_1) (the fold of the physical
    branch, the analogue of THEORY §2's ``λ_max = min_m M^{-1}(m)``).

    The chain runs in logarithms (:func:`meanfield._fisher_kernels.chain_up_log`) with the bottom point
    ``w_1 = s_1 + e^t`` and returns ``F(t) = log w_{L+1}`` with ``F'(t)``: exact to rounding whether the chain contracts
    (the fold sits at w_1 ~ χ_1^{-L}, far beyond any fixed scan) or expands. The physical branch is the one reaching
    t → ∞ (where F' → 1); it lies beyond the folds of every level (see ``chain_up_log``), and "every level rises
    with t" is monotone in t, so the search takes F' as negative wherever a lower level has passed its fold (the
    other local minima of F lie there). From t = log s_1 the bracket of the sign change of F' is found by
    steps doubling up or down, then refined by the Illinois method on F'; the edge is F at the bracket's ends, which
    straddle a sign change of F' (a genuine minimum) within EDGE_TTOL. Where F' stays positive down to t = EDGE_T_MIN
    (w_1 → s_1: the branch ends at the top of a law, a hard edge) the edge is F there. Raises ConvergenceError when no
    bracket is found or an inversion of η_ν fails.
    """
    s, D, P, off, gauss, dmax = lev["s"], lev["D_real"], lev["P_real"], lev["off_real"], lev["gauss"], lev["dmax"]
    D = np.ascontiguousarray(D, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    off = np.asarray(off, dtype=np.int64)
    top = s.shape[0] - 1
    with np.errstate(divide="ignore"):
        ls = np.log(np.asarray(s, dtype=np.float64))
    m_nu = np.full(top + 1, np.nan)
    for l in range(1, top):
        m_nu[l] = float(np.dot(P[off[l] : off[l + 1]], D[off[l] : off[l + 1]]))
    dm = np.asarray(dmax, dtype=np.float64)

    def f(t):
        F, g, ok, below = _fk.chain_up_log(float(t), ls, D, P, off, gauss, dm, m_nu)
        if not (ok and math.isfinite(F) and math.isfinite(g)):
            raise ConvergenceError(
                f"conditional FIM edge: the real subordination chain failed at log(w_1 - s_1) = {t:.6g}"
            )
        return F, (g if below else -1.0)  # below a lower level's fold: below the top's fold too

    t0 = float(ls[1])
    F0, g0 = f(t0)
    pts = {t0: (F0, g0)}
    step = 1.0
    if g0 > 0.0:  # above the fold: walk down
        b, Fb, gb = t0, F0, g0
        while True:
            a = t0 - step
            if a < EDGE_T_MIN:
                Fa, ga = f(EDGE_T_MIN)
                if ga > 0.0:  # F decreases all the way to w_1 → s_1: the branch ends there (hard edge)
                    return math.exp(min(Fa, Fb))
                a = EDGE_T_MIN
                break
            Fa, ga = f(a)
            if ga <= 0.0:
                break
            b, Fb, gb = a, Fa, ga
            step *= 2.0
    else:
        a, Fa, ga = t0, F0, g0
        while True:
            b = t0 + step
            if b > EDGE_T_MAX:
                raise ConvergenceError("conditional FIM edge: the real chain never turns upward (no fold found)")
            Fb, gb = f(b)
            if gb > 0.0:
                break
            a, Fa, ga = b, Fb, gb
            step *= 2.0
    # Illinois on F' in the bracket (ga ≤ 0 < gb)
    side = 0
    for _ in range(200):
        if b - a <= EDGE_TTOL * max(1.0, abs(a), abs(b)):
            break
        t = (a * gb - b * ga) / (gb - ga)
        if not a < t < b:
            t = 0.5 * (a + b)
        Ft, gt = f(t)
        if gt > 0.0:
            b, Fb, gb = t, Ft, gt
            if side == 1:
                ga *= 0.5
            side = 1
        else:
            a, Fa, ga = t, Ft, gt
            if side == -1:
                gb *= 0.5
            side = -1
    else:
        raise ConvergenceError("conditional FIM edge: the fold of the real chain was not resolved")
    return math.exp(min(Fa, Fb))


def _edge_scan(lev):
    """The previous edge search, kept as the benchmarks' baseline (not used by the package): the plain real chain
    (:func:`meanfield._fisher_kernels.chain_up_real`) scanned over w_1 = s_1(1 + e^t), t from 20 down to -36, to its
    first minimum, refined by bounded golden-section search. Wrong where the fold lies outside that window (a chain
    contracting or expanding by large factors per level, e.g. sigmoid at σ_w = 0.9, depth 20)."""
    from scipy.optimize import minimize_scalar

    s, D, P, off, gauss, dmax = lev["s"], lev["D_real"], lev["P_real"], lev["off_real"], lev["gauss"], lev["dmax"]
    s1 = s[1]

    def top(t):
        return _fk.chain_up_real(s1 * (1.0 + math.exp(t)), s, D, P, off, gauss, dmax)

    ts = np.arange(20.0, -36.0, -0.25)
    vals = np.array([top(t) for t in ts])
    i_min = None
    for i in range(1, ts.size):
        if not np.isfinite(vals[i]) or vals[i] > vals[i - 1]:
            i_min = i - 1
            break
    if i_min is None:  # still decreasing at w_1 → s_1: the edge is the end of the branch
        return float(vals[-1])
    lo = ts[min(i_min + 1, ts.size - 1)]
    hi = ts[max(i_min - 1, 0)]
    r = minimize_scalar(top, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    return float(min(r.fun, vals[i_min]))


def _edge_bounds(mean, var, s, dmax, gauss):
    """Bounds on λ_max of Φ/N that need no free probability: (lower, upper).

    Lower (Bhatia & Davis 2000): ``var ≤ (λ_max - mean)(mean - λ_min)`` for any law on [λ_min, λ_max], and
    ``λ_min ≥ s_{L+1}`` since ``Φ/N = s_{L+1} I + W D G D Wᵀ/N`` with the second term positive semi-definite; so
    ``λ_max ≥ mean + var/(mean - s_{L+1})`` (≥ m_2/m_1, the moment bound). Upper: the operator norms of the recursion
    ``G_l = a_l I + W D G_{l-1} D Wᵀ`` give ``‖G_l/N‖ ≤ s_l + c·max(σ_w²φ'²)·‖G_{l-1}/N‖`` with c = 1 for orthogonal W and
    c = 4 for Gaussian W (the edge of WWᵀ/σ_w², Marchenko–Pastur of ratio 1); ``gauss[l]``: W^l is Gaussian."""
    top = s.shape[0] - 1
    gap = mean - s[top]
    lower = mean + var / gap if gap > 0.0 else mean
    upper = s[1]
    for l in range(2, top + 1):
        upper = s[l] + (4.0 if gauss[l] else 1.0) * dmax[l - 1] * upper
    return lower, upper


def _check_edge(name, lam, mean, var, s, dmax, gauss, atoms):
    """λ_max must lie within :func:`_edge_bounds` (and above every atom), else ConvergenceError."""
    lower, upper = _edge_bounds(mean, var, s, dmax, gauss)
    lower = max([lower] + [loc for loc, _ in atoms])
    if not (math.isfinite(lam) and lower * (1.0 - EDGE_RTOL) <= lam <= upper * (1.0 + EDGE_RTOL)):
        raise ConvergenceError(
            f"conditional FIM edge of {name}: λ_max = {lam!r} is outside its bounds [{lower!r}, {upper!r}] from the"
            " exact moments and the operator norms"
        )


def conditional_fisher_spectrum(
    phi, sigma_w=None, sigma_b=None, depth=None, width=None, weights=None, input_norm=1.0, biases=None
) -> ConditionalFisherSpectrum:
    """Spectrum of the conditional FIM ``F(θ|x)/N`` with C = N outputs (Hayase & Karakida 2021; THEORY §4).

    For one input x, ``F(θ|x) = J_θᵀ J_θ`` has the non-zero spectrum of the C × C matrix ``Φ = Σ_{l=1}^{L+1} a_l J_l J_lᵀ``
    with ``a_l = |x^{l-1}|² + 1`` and ``J_l = ∂f/∂h^l``; a continuous spectrum needs C ∝ N, and C = N here (square
    readout). Φ obeys ``G_1 = a_1 I``, ``G_l = a_l I + W^l D_{l-1} G_{l-1} D_{l-1} W^{lᵀ}``, ``Φ = G_{L+1}``: with Haar
    (orthogonal) W the law of ``G_l/N`` is the shifted free multiplicative convolution
    ``δ_{a_l/N} ⊞ (ν_{l-1} ⊠ law(G_{l-1}/N))``, ν_l the law of ``σ_w² φ'(h^l)²``; Gaussian W add a Marchenko–Pastur factor
    (``S_{WWᵀ} = 1/(σ_w²(1+z))``, THEORY §2).

    Parameters
    ----------
    phi, sigma_w, sigma_b : activation and standard deviations (THEORY §0).
    depth : hidden layers L (the model has L + 1 weight layers).
    width : N (= C = N_0; ``a_l/N = q̂^{l-1} + 1/N`` with ``q̂^0 = input_norm``).
    weights : "orthogonal" (default, dynamical isometry) or "gaussian".
    input_norm : ``|x|²/N``; the trajectory q^l starts there (finite depth, not the fixed point).
    biases : count the bias parameters (the ``+1`` in ``a_l``).

    Returns
    -------
    ConditionalFisherSpectrum
        ``mean``, ``variance`` exact by the moment recursion (divided by N)
        ``e_l = a_l/N + σ_w² μ_1(q^{l-1}) e_{l-1}``,
        ``v_l = σ_w⁴[μ_1² v_{l-1} + (μ_2 - μ_1²) e_{l-1}²]`` (+ ``σ_w⁴ μ_1² e_{l-1}²`` for Gaussian W), ``e_1 = a_1/N``,
        ``v_1 = 0``; ``density(x)``, ``stieltjes(z)``, ``lambda_max`` and ``atoms`` by free probability.

    Notes
    -----
    Free probability, by subordination (Belinschi & Bercovici 2007): ``η_{μ⊠ν}(z) = η_μ(ω_1) = η_ν(ω_2)``,
    ``ω_1ω_2 = z η_{μ⊠ν}(z)`` with ``η(z) = ψ/(1+ψ)``, ``ψ(z) = ∫zt/(1-zt)dμ(t)``. Writing ``ω_1 = 1/w_{l-1}`` (the point
    where the level below is evaluated) and ``H_l = η`` of level l's product, the levels chain as
    ``H_l = 1 - (1 - H_{l-1})(1 - s_{l-1}/w_{l-1})``, ``H_l = η_ν(u_l)``, ``w_l = s_l + w_{l-1}H_l/u_l`` (s_l = a_l/N;
    Gaussian W: ``u_l = (1 - H_l) η_ν^{-1}(H_l)``, the S-transform's Marchenko–Pastur factor) and
    ``G(w_{L+1}) = 1/((w_{L+1} - s_{L+1})(1 - H_{L+1}))``. Given the bottom point w_1 everything above is explicit up to
    inverting each η_ν, so the chain is solved by shooting: Newton on w_1, continued from large Im w down to the real
    axis. ν is the law of φ'² of :mod:`meanfield.spectra`: a real rule (moments exact to rounding) for the real axis
    and a rule on a deformed contour for the complex points, so that the boundary values on the axis carry no trace of
    the discretisation. The edge is the fold of the real branch, ``λ_max = min_{w_1 > s_1} w_{L+1}(w_1)``. Atoms follow
    Belinschi's rule for ⊠ (mass μ{a} + ν{b} - 1 at ab where positive; max(μ{0}, ν{0}) at 0). Depth 1 with orthogonal
    weights is no convolution at all: the law of ``a_2/N + (a_1/N)σ_w²φ'(h)²``, computed directly.

    Assumptions: large N (asymptotic freeness of the W's from the D's, ``|x^{l-1}|²/N → q̂^{l-1}``); the test suite
    checks the law against sampled networks at N = 400 (mean, variance, quantiles, edge).

    **A network whose layers differ** (THEORY §4, §8): ``conditional_fisher_spectrum(net, input_norm=…)`` with a
    :class:`~meanfield.Network` (the arguments it describes must be left out). Level l = 2 … L+1 of the recursion holds
    ``W^l D_{l-1}``, so its law is ``ν_{l-1}``, that of ``(σ_w^l)² φ_{l-1}'(h^{l-1})²`` with h^{l-1} ~ N(0, q^{l-1}) —
    the weight scale of the *next* layer times the derivative of hidden layer l - 1 — and its weight kind is W^l's
    (each level its own: a Gaussian W^l adds its Marchenko–Pastur factor to that level alone);
    the shifts are ``a_l/N = q̂^{l-1} + β_l/N`` (β_l = 1 where layer l has a bias) with the per-layer trajectory
    ``q^l = (σ_w^l)² q̂^{l-1} + (σ_b^l)²``, ``q̂^l = E_{q^l} φ_l²`` (THEORY §8). The moments become
    ``e_l = a_l/N + (σ_w^l)² μ_1,l-1 e_{l-1}``, ``v_l = (σ_w^l)⁴[μ_1,l-1² v_{l-1} + (μ_2,l-1 - μ_1,l-1²) e_{l-1}²]``
    (+ ``(σ_w^l)⁴ μ_1,l-1² e_{l-1}²`` for Gaussian W^l). The free-probability laws need square layers,
    ``C = N_0 = N_1 = … = N_L``; other networks are refused. W^1 enters only through q^1 (its kind does not matter).
    A uniform network gives the uniform call's numbers; ``network`` holds ``net.to_dict()``.

    >>> net = mf.Network((64,) * 4, [1.2, 1.0, 1.1], [0.1, 0.05, 0.0], ["tanh", "erf"], "orthogonal")
    >>> r = mf.conditional_fisher_spectrum(net, input_norm=1.0)
    >>> bool(r.shift[-1] < r.mean < r.lambda_max)
    True
    """
    if isinstance(phi, Network):
        _given_by_network("conditional_fisher_spectrum",
                          dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width, weights=weights,
                               biases=biases), "input_norm=...")
        net = phi
        q_in = _scalar(positive(input_norm, "input_norm"), "input_norm")
        if net.is_uniform and net.input_width == net.widths[1] == net.output_width:
            act, sw, sb, L, N, w = net.uniform_parameters()
            r = _conditional_uniform(act, sw, sb, L, N, w, q_in, net.biases[0])
            return _replace(r, network=net.to_dict())
        N = _square_widths(net, "conditional_fisher_spectrum")
        L = net.depth
        gauss = [False, False] + [k == "gaussian" for k in net.weights[1:]]  # level l = 2 … L+1 holds W^l
        lay = _network_forward(net, q_in, 0.0, cross=False)
        beta = [(1.0 if b else 0.0) / N for b in net.biases]
        summ = net.summary()
        record = dict(activation=summ["activation"], sigma_w=summ["sigma_w"], sigma_b=summ["sigma_b"], depth=L,
                      width=N, weights=summ["weights"], input_norm=q_in, biases=any(net.biases),
                      network=net.to_dict())
        acts = list(net.activations)
        sw2s = [s * s for s in net.sigma_w[1:]]
        return _conditional(lay, acts, sw2s, beta, gauss, q_in, record)
    _missing("conditional_fisher_spectrum", "phi, sigma_w, sigma_b, depth, width",
             dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width))
    act = get_activation(phi)
    sw = _scalar(positive(sigma_w, "sigma_w"), "sigma_w")
    sb = _scalar(nonnegative(sigma_b, "sigma_b"), "sigma_b")
    L = integer(depth, "depth", 1)
    N = integer(width, "width", 1)
    weights = choice("orthogonal" if weights is None else weights, "weights", WEIGHTS)
    q_in = _scalar(positive(input_norm, "input_norm"), "input_norm")
    use_bias = _flag(True if biases is None else biases, "biases")
    return _conditional_uniform(act, sw, sb, L, N, weights, q_in, use_bias)


def _square_widths(net, fname):
    """N of a network with C = N_0 = … = N_L; else InvalidParameterError naming the layer."""
    N = net.widths[0]
    for i, n in enumerate(net.widths[1:], start=1):
        if n != N:
            what = "the output width C" if i == len(net.widths) - 1 else f"layer {i}'s width N_{i}"
            raise InvalidParameterError(
                f"{fname} needs square layers (C = N_0 = N_1 = … = N_L: the free-probability laws are those of square"
                f" matrices), but {what} = {n} differs from N_0 = {N}"
            )
    return N


def _conditional_uniform(act, sw, sb, L, N, weights, q_in, use_bias):
    gauss = weights == "gaussian"
    lay = _forward(act, sw, sb, q_in, 0.0, L, cross=False)
    b = (1.0 if use_bias else 0.0) / N
    record = dict(activation=act.name, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=weights, input_norm=q_in,
                  biases=use_bias)
    return _conditional(lay, [act] * L, [sw * sw] * L, [b] * (L + 1), [gauss] * (L + 2), q_in, record)


def _conditional(lay, acts, sw2s, beta, gauss, q_in, record):
    """The conditional spectrum from the forward trajectory ``lay``: ``acts[m-1]`` = φ_m and ``sw2s[m-1]`` =
    (σ_w^{m+1})² (the law ν_m of level m + 1), ``beta[l-1]`` = β_l/N the bias part of the shift a_l/N, ``gauss[l]``
    whether W^l (level l = 2 … L+1) is Gaussian."""
    L = len(acts)
    top = L + 1
    gauss = np.asarray(gauss, dtype=np.bool_)
    name = record["activation"]
    s = np.full(top + 1, np.nan)
    s[1] = q_in + beta[0]
    for l in range(2, top + 1):
        s[l] = lay.q_hat[l - 1] + beta[l - 1]
    e = np.full(top + 1, np.nan)
    v = np.full(top + 1, np.nan)
    e[1], v[1] = s[1], 0.0
    for l in range(2, top + 1):
        m1, m2 = lay.mu1[l - 1], lay.mu2[l - 1]
        sw2 = sw2s[l - 2]
        e[l] = s[l] + sw2 * m1 * e[l - 1]
        v[l] = sw2 * sw2 * (m1 * m1 * v[l - 1] + (m2 - m1 * m1) * e[l - 1] ** 2)
        if gauss[l]:
            v[l] += sw2 * sw2 * m1 * m1 * e[l - 1] ** 2
    if not (math.isfinite(e[top]) and math.isfinite(v[top])):
        raise NumericalError(f"{name}: the conditional FIM moments overflowed at depth {L}")

    # the laws ν_l (l = 1 … L) and the atoms of every level
    d2_law, pushforward_density = _laws()
    Drs, Prs, offs_r = [], [], [0, 0]
    m_nu, dmax = np.full(top + 1, np.nan), np.full(top + 1, np.nan)
    atoms = [(s[1], 1.0)]
    cache = {}
    pushforward = L == 1 and not gauss[2]
    keys = [(acts[l - 1], float(lay.q[l]), sw2s[l - 1]) for l in range(1, L + 1)]
    built = {}
    if not (pushforward or _BASELINE):  # the real rules of many laws of one smooth activation are built together
        from meanfield.spectra import _d2_laws

        distinct = list(dict.fromkeys((k[0], k[1]) for k in keys))
        built = dict(zip(distinct, _d2_laws([k[0] for k in distinct], [k[1] for k in distinct])))
    for l in range(1, L + 1):
        key = keys[l - 1]
        if key not in cache:
            cache[key] = _nu_law(d2_law, key[0], key[1], key[2], contour=pushforward or _BASELINE,
                                 law=built.get((key[0], key[1])))
        (dr, pr), _, nu_atoms, law = cache[key]
        Drs.append(dr)
        Prs.append(pr)
        offs_r.append(offs_r[-1] + dr.size)
        m_nu[l] = float(np.dot(pr, dr))
        dmax[l] = float(dr.max())
        nu_zero = sum(mass for val, mass in nu_atoms if val == 0.0)
        if gauss[l + 1]:  # Marchenko–Pastur (ratio 1) has no atoms: only the zero atom of ν survives
            prod = [(0.0, nu_zero)] if nu_zero > 0.0 else []
        else:
            prod = _product_atoms(atoms, nu_atoms, nu_zero)
        atoms = [(s[l + 1] + loc, mass) for loc, mass in prod]
    atoms = tuple((float(loc), float(mass)) for loc, mass in atoms if mass > 1e-12)

    lev = dict(
        s=np.ascontiguousarray(s),
        law_keys=keys,  # (φ_m, q^m, (σ_w^{m+1})²) of the law ν_m, m = 1 … L
        real_laws={(k[0], k[1]): cache[k][3] for k in keys},  # their laws of φ'² (real rules), for _complex_levels
        D_real=np.ascontiguousarray(np.concatenate(Drs)),
        P_real=np.ascontiguousarray(np.concatenate(Prs)),
        off_real=np.asarray(offs_r, dtype=np.int64),
        gauss=gauss,
        m_nu=m_nu,
        dmax=dmax,
        y_min=Y_MIN_REL * e[top],
        scale=e[top],
        y0=4.0 * (e[top] + 3.0 * math.sqrt(v[top])),
        pushforward=None,
        lambda_max=math.inf,
    )
    if pushforward:
        pf = _Pushforward(acts[0], cache[keys[0]][3], sw2s[0], s[1], s[2], pushforward_density)
        lev["pushforward"] = pf
        lam = pf.edge()
    elif _BASELINE:
        cs = [cache[k][1] for k in keys]
        lev["complex"] = (np.concatenate([c[0] for c in cs]), np.concatenate([c[1] for c in cs]),
                          np.cumsum([0, 0] + [c[0].size for c in cs]).astype(np.int64))
        lam = _edge_scan(lev)
    else:
        lam = _edge(lev)
    _check_edge(name, lam, float(e[top]), float(v[top]), s, dmax, gauss, atoms)
    lev["lambda_max"] = lam

    return ConditionalFisherSpectrum(
        **record,
        mean=float(e[top]),
        variance=float(v[top]),
        lambda_max=lam,
        atoms=atoms,
        layer_mean=e,
        layer_variance=v,
        shift=s,
        q=lay.q,
        _levels=lev,
    )


# ============================================================================================= Sokol–Park bound
@dataclass(frozen=True)
class SokolParkBound(Result):
    """Upper bound on the largest eigenvalue of the conditional FIM through the partial Jacobians (Sokol & Park 2020).

    Attributes
    ----------
    bound : ``λ_max(H) Σ_{l=1}^{L+1} (a_l/N) ‖J_l‖₂²`` ≥ λ_max(F(θ|x))/N, the normalisation of
        :func:`conditional_fisher_spectrum` (multiply by ``width`` for λ_max of F(θ|x) itself). It also bounds the FIM of a
        batch of inputs of this norm (an average of such matrices).
    jacobian_norms : ``‖J_l‖₂²`` for l = 1 … L+1 (index 0 NaN; ``‖J_{L+1}‖ = 1``): the upper spectral edge of
        ``J_lJ_lᵀ``, a product of L + 1 - l pairs D·W: :func:`meanfield.spectra.jacobian_spectrum`'s edge, for all l
        in one pass over one set of laws of φ'².
    terms : ``λ_max(H)(a_l/N)‖J_l‖₂²``, each layer's share of the bound.
    shift : ``a_l/N = q̂^{l-1} + β_l/N`` (β_l = 1 where layer l's bias is counted).
    network : ``Network.to_dict()`` of a call with a :class:`~meanfield.Network` (None for the uniform call).
    """

    activation: str
    sigma_w: float
    sigma_b: float
    depth: int
    width: int
    weights: str
    input_norm: float
    hessian_max: float
    bound: float
    jacobian_norms: np.ndarray = field(repr=False)
    terms: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    network: dict | None = None


def sokol_park_bound(
    phi, sigma_w=None, sigma_b=None, depth=None, width=None, weights=None, input_norm=1.0, hessian_max=1.0,
    biases=None,
) -> SokolParkBound:
    """Theory-side bound on λ_max of the FIM by the partial Jacobians' spectral norms (Sokol & Park 2020; THEORY §5).

    For one input with output Hessian H (the identity for the squared loss; ``diag p - ppᵀ`` for softmax
    cross-entropy, whose λ_max ≤ 1/2), ``F(θ|x) = J_θᵀ H J_θ = Σ_l (x^{l-1}x^{l-1ᵀ} + 1) ⊗ J_lᵀ H J_l`` restricted to
    each layer's block, and the triangle inequality for PSD sums gives
    ``λ_max(F(θ|x)) ≤ λ_max(H) Σ_{l=1}^{L+1} (|x^{l-1}|² + 1) ‖J_l‖₂²``, ``J_l = ∂f/∂h^l``
    (Sokol & Park 2020: the FIM's curvature is controlled by the Jacobians, hence flat for isometric networks).

    Assumptions, as in :func:`conditional_fisher_spectrum`: C = N outputs (square readout), large N (the Jacobians' norms
    are the upper edges of their limiting spectra, which finite-N top singular values exceed by O(N^{-2/3})), and
    ``|x^{l-1}|²/N = q̂^{l-1}`` from the input's trajectory. The bound holds for the limiting law; one sampled network of
    finite width can exceed it, mostly because its ``|x^{l-1}|²/N`` scatter around q̂^{l-1} (about 10 % after a ReLU
    layer at N = 500, where sampled λ_max 25.5 and 26.7 were seen against a bound of 24.8); the bound built from that
    network's own ``|x^{l-1}|²`` and Jacobian norms (``empirical.sokol_park_bound``) always holds. ``J_lJ_lᵀ`` has the law of the input-output ``JJᵀ`` of the
    sub-network of layers l … L (L + 1 - l pairs; cyclic rotation does not change a free product), taken with
    ``q0 = q̂^{l-1}`` so that its layers follow the same trajectory. Returns the bound divided by N (see
    :class:`SokolParkBound`).

    **A network whose layers differ** (THEORY §5, §8): ``sokol_park_bound(net, input_norm=…, hessian_max=…)`` with a
    square :class:`~meanfield.Network` (``C = N_0 = … = N_L``, refused otherwise; the arguments it describes must be
    left out). ``J_l = W^{L+1} D_L W^L ⋯ W^{l+1} D_l`` is a product of the pairs ``W^{m+1} D_m``, m = l … L, each with
    its own law: ``D_m = diag φ_m'(h^m)`` at q^m of the per-layer trajectory, ``W^{m+1}`` of scale σ_w^{m+1} and its
    own kind (Gaussian: a Marchenko–Pastur factor, THEORY §2, §8); ``a_l/N = q̂^{l-1} + β_l/N`` (β_l = 1 where layer l
    has a bias). ``network`` holds ``net.to_dict()``; a uniform network gives the uniform call's numbers.

    >>> net = mf.Network((64,) * 4, [1.2, 1.0, 1.1], [0.1, 0.05, 0.0], ["tanh", "erf"], "orthogonal")
    >>> b = mf.sokol_park_bound(net, input_norm=1.0)
    >>> bool(b.bound >= mf.conditional_fisher_spectrum(net, input_norm=1.0).lambda_max)
    True
    """
    if isinstance(phi, Network):
        _given_by_network("sokol_park_bound",
                          dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width, weights=weights,
                               biases=biases), "input_norm=..., hessian_max=...")
        net = phi
        q_in = _scalar(positive(input_norm, "input_norm"), "input_norm")
        hmax = _scalar(nonnegative(hessian_max, "hessian_max"), "hessian_max")
        if net.is_uniform and net.input_width == net.widths[1] == net.output_width:
            act, sw, sb, L, N, w = net.uniform_parameters()
            r = _sokol_park_uniform(act, sw, sb, L, N, w, q_in, hmax, net.biases[0])
            return _replace(r, network=net.to_dict())
        N = _square_widths(net, "sokol_park_bound")
        L = net.depth
        lay = _network_forward(net, q_in, 0.0, cross=False)
        summ = net.summary()
        record = dict(activation=summ["activation"], sigma_w=summ["sigma_w"], sigma_b=summ["sigma_b"], depth=L,
                      width=N, weights=summ["weights"], input_norm=q_in, hessian_max=hmax, network=net.to_dict())
        beta = [(1.0 if b else 0.0) / N for b in net.biases]
        pairs = (list(net.activations), list(net.sigma_w[1:]), [k == "gaussian" for k in net.weights[1:]])
        return _sokol_park(lay, pairs, beta, q_in, hmax, record)
    _missing("sokol_park_bound", "phi, sigma_w, sigma_b, depth, width",
             dict(sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, width=width))
    act = get_activation(phi)
    sw = _scalar(positive(sigma_w, "sigma_w"), "sigma_w")
    sb = _scalar(nonnegative(sigma_b, "sigma_b"), "sigma_b")
    L = integer(depth, "depth", 1)
    N = integer(width, "width", 1)
    weights = choice("orthogonal" if weights is None else weights, "weights", WEIGHTS)
    q_in = _scalar(positive(input_norm, "input_norm"), "input_norm")
    hmax = _scalar(nonnegative(hessian_max, "hessian_max"), "hessian_max")
    use_bias = _flag(True if biases is None else biases, "biases")
    return _sokol_park_uniform(act, sw, sb, L, N, weights, q_in, hmax, use_bias)


def _sokol_park_uniform(act, sw, sb, L, N, weights, q_in, hmax, use_bias):
    lay = _forward(act, sw, sb, q_in, 0.0, L, cross=False)
    b = (1.0 if use_bias else 0.0) / N
    record = dict(activation=act.name, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=weights, input_norm=q_in,
                  hessian_max=hmax)
    return _sokol_park(lay, (act, sw, weights == "gaussian"), [b] * (L + 1), q_in, hmax, record)


def _sokol_park(lay, pairs, beta, q_in, hmax, record):
    """The bound from the trajectory ``lay``; ``pairs`` = (φ_m, σ_w^{m+1}, W^{m+1} Gaussian) for m = 1 … L, each one
    value (uniform) or a list of L; ``beta[l-1]`` = β_l/N."""
    from meanfield.spectra import _exp, _tail_log_edges, _tail_log_edges_each  # lazily: the bound is the only user

    L = record["depth"]
    shift = np.full(L + 2, np.nan)
    shift[1] = q_in + beta[0]
    for l in range(2, L + 2):
        shift[l] = lay.q_hat[l - 1] + beta[l - 1]
    norms = np.full(L + 2, np.nan)
    norms[L + 1] = 1.0
    # J_l J_lᵀ has the law of the sub-network of layers l … L, whose trajectory is q^l … q^L: its edge is
    # jacobian_spectrum(φ, σ_w, σ_b, L + 1 - l, weights, q0 = q̂^{l-1}).edge, for all l at once from one set of laws
    tails = _tail_log_edges_each if _BASELINE else _tail_log_edges
    log_edges = tails(pairs[0], pairs[1], lay.q[1 : L + 1], pairs[2])
    norms[1 : L + 1] = [_exp(float(x)) for x in log_edges]  # inf beyond float64, like JacobianSpectrum.edge
    terms = np.full(L + 2, np.nan)
    terms[1:] = hmax * shift[1:] * norms[1:]
    return SokolParkBound(
        **record,
        bound=float(np.sum(terms[1:])),
        jacobian_norms=norms,
        terms=terms,
        shift=shift,
    )
