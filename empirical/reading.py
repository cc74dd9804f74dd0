"""A model's weights read as the theory's description (THEORY §8), and that description's per-layer predictions.

:func:`read_network` estimates, for every Linear layer l with weight W^l of shape (N_l, N_{l-1}) and bias b^l,

* ``σ̂_w² = N_{l-1}·mean(W²)`` (THEORY §8), with the standard error of the mean of the N_l N_{l-1} squares carried to
  σ̂_w (for Gaussian weights ≈ σ_w/√(2 N_l N_{l-1})); zero for an orthogonal layer, whose scale is exact;
* ``σ̂_b² = mean(b²)`` with its standard error likewise (≈ σ_b/√(2 N_l)); 0 (no error) without a bias;
* the weight kind: ``"orthogonal"`` when the smaller Gram ``W Wᵀ`` or ``WᵀW`` is a multiple of the identity to
  rounding (largest deviation at most :data:`ORTHOGONAL_RTOL` of its diagonal mean, relaxed to 1e4·eps in float32);
  a Gaussian matrix is off by ~1/√N. A layer with one row or column cannot tell: it takes the hidden layers' kind.

The theory itself lives in :mod:`meanfield`: :func:`layer_theory` gathers, for a :class:`meanfield.Network`, the
per-layer numbers a reading of a model needs from public calls — :func:`meanfield.propagate` (the length map with each
layer's σ, THEORY §8, and the gains ``χ_l = σ_w,l² μ_1,l(q^l)``, whose product is the mean of the JJᵀ spectrum,
THEORY §2), :func:`meanfield.fisher_statistics` (the forward and backward order parameters and the layerwise NTK sums of
THEORY §3/§8 with per-layer widths and bias flags, ``Θ(x,x) ≈ Σ_{l=1}^{L+1} (N_{l-1} q̂^{l-1} + β_l) P^l``, and the
FIM's λ_max, mean and bulk eigenvalue over T inputs) and :func:`meanfield.gaussian_moments` (μ_2 for the finite-width
scale). It evaluates no equation of its own beyond the relative variance v of THEORY §2.

These are infinite-width predictions; one draw of a finite network scatters around them with a relative spread that
grows with ``v/N`` (``v`` = :attr:`LayerTheory.finite_width_variance`, N the width), and the spread is large where v is:
deep networks, and GELU or SiLU at the large q* of their stable edge of chaos (μ_2/μ_1² ≈ 2; there the length map is
also nearly marginal, ξ_q ≈ 1200 at GELU's q* = 3.65 and ≥ 50 at any larger q*, so one draw's q^l wanders over the
layers, as a ReLU network's does, instead of returning to q*). Measured for
:func:`empirical.initialize_`'d GELU networks (depth 16, q* = 3.65, orthogonal, v = 16.9; 32 Gaussian inputs, 24 draws
per width), the FIM λ_max over its prediction averages 1.48 ± 0.21, 1.21 ± 0.10, 1.04 ± 0.05, 0.97 ± 0.03 at
N = 128, 256, 512, 1024 (mean ± standard error; its bias falls like 1/N), and one draw's ratio has a spread of 1.04, 0.47,
0.26, 0.15 (falling faster than 1/√N towards √(v/N) = 0.13 at N = 1024); SiLU (q* = 15.4) is alike (1.61, 1.46, 1.11, 0.98).
So a single GELU model of width 256 may sit 20–40 % from the prediction without anything being wrong;
:func:`empirical.describe`'s records size their tolerances by √(v/N) and v/N accordingly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

import meanfield as mf
from meanfield.errors import InvalidParameterError

from empirical.models import as_mlp

__all__ = ["read_network", "layer_theory", "LayerTheory", "ORTHOGONAL_RTOL"]

ORTHOGONAL_RTOL = 1e-6  # float64; float32 (and lower) use max(this, 1e4·eps of the dtype)


def _orthogonal(w: torch.Tensor) -> bool | None:
    """True when the smaller Gram of w is ∝ I to rounding, False when not, None when w has one row or column."""
    n_out, n_in = w.shape
    if min(n_out, n_in) == 1:
        return None
    w64 = w.detach().to(torch.float64)
    g = w64 @ w64.T if n_out <= n_in else w64.T @ w64
    s = float(torch.diagonal(g).mean())
    if not s > 0:
        return False
    tol = max(ORTHOGONAL_RTOL, 1e4 * torch.finfo(w.dtype).eps)
    dev = (g / s - torch.eye(g.shape[0], dtype=torch.float64, device=g.device)).abs().max()
    return bool(dev <= tol)


def _scale_and_error(x: torch.Tensor, factor: float) -> tuple[float, float]:
    """(σ̂, its standard error) for σ̂² = factor·mean(x²), the error of the mean of the squares carried to σ̂."""
    sq = x.detach().to(torch.float64).reshape(-1).square()
    n = sq.numel()
    m = float(sq.mean())
    s2 = factor * m
    if s2 == 0.0:
        return 0.0, 0.0
    se_s2 = factor * float(sq.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    s = math.sqrt(s2)
    return s, se_s2 / (2.0 * s)


def read_network(model) -> mf.Network:
    """The :class:`meanfield.Network` of a model (or :class:`~empirical.RandomMLP`): widths, σ_w, σ_b estimated from its
    weights with their standard errors, activations, weight kinds and bias flags (see the module docstring).

    Raises :class:`~meanfield.errors.InvalidParameterError` for a model that is not a chain of Linear layers and
    elementwise activations (:func:`empirical.as_mlp`) or has an all-zero weight matrix."""
    net = as_mlp(model)
    sw, sw_err, sb, sb_err, kinds = [], [], [], [], []
    for l in range(net.depth + 1):
        w = net.W[l]
        s, e = _scale_and_error(w, float(w.shape[1]))
        if s == 0.0:
            raise InvalidParameterError(f"layer {l + 1} has an all-zero weight matrix: σ_w = 0 is not a network")
        orth = _orthogonal(w)
        kinds.append(orth)
        sw.append(s)
        sw_err.append(0.0 if orth else e)
        if net.has_bias[l]:
            s, e = _scale_and_error(net.b[l], 1.0)
        else:
            s, e = 0.0, 0.0
        sb.append(s)
        sb_err.append(e)
    hidden = [k for k in kinds[:-1] if k is not None]
    default = "orthogonal" if hidden and all(hidden) else "gaussian"
    kinds = [default if k is None else ("orthogonal" if k else "gaussian") for k in kinds]
    return mf.Network(net.widths, tuple(sw), tuple(sb), net.activations, tuple(kinds), net.has_bias,
                      sigma_w_error=tuple(sw_err), sigma_b_error=tuple(sb_err))


@dataclass(frozen=True)
class LayerTheory:
    """Per-layer mean-field predictions for a :class:`meanfield.Network` on inputs with ``|x|²/N_0 = input_norm`` and
    pairwise covariance ``input_correlation·input_norm`` (THEORY §1, §2, §3, §8). Arrays over hidden layers l = 1..L
    unless stated.

    q : q^l, the pre-activation variance. q_cross : the covariance of two inputs' h^l.
    q_hat, q_hat_cross : (L+1,) E[φ(h)²] and E[φ(h)φ(h')] of x^{l}, l = 0..L (l = 0: the input's |x|²/N_0, x·x'/N_0).
    gain : σ_w,l² μ_1,l(q^l), layer l's factor in the mean of the JJᵀ spectrum.
    mu1, mu2 : μ_1,l(q^l), μ_2,l(q^l) (THEORY §0).
    finite_width_variance : ``v = Σ_l (μ_2/μ_1² − 1 − s_1)`` (s_1 = −1 Gaussian, 0 orthogonal layer): the relative
        variance of the JJᵀ spectrum (THEORY §2), whose v/N scales the finite-width corrections.
    jacobian_mean : Π_l gain_l (THEORY §2, §8).
    p : (L+1,) P^l = E|∂f_k/∂h^l|², l = 1..L+1 (P^{L+1} = 1). p_cross : the same for two inputs.
    theta_diag, theta_cross : Θ(x,x) and Θ(x,x') per output (not divided by the width).
    n_parameters : P. n_samples, n_outputs : T, C.
    lambda_max, mean_eigenvalue, bulk_eigenvalue : of the FIM over T such inputs (:func:`meanfield.fisher_statistics`:
        λ_max is the larger of the top eigenvalue ``[Θ_d + (T−1)Θ_×]/T`` and the bulk ``(Θ_d − Θ_×)/T``, which lies on
        top where Θ_× < 0; for T = 1 there is no bulk and ``bulk_eigenvalue`` is Θ_d); learning_rate_bound = 2/λ_max.
    fisher, trajectory : the :func:`meanfield.fisher_statistics` and :func:`meanfield.propagate` results these
        fields were read from (for T = 1 the cross fields come from a second call with T = 2: they do not depend on T).
    """

    q: np.ndarray
    q_cross: np.ndarray
    q_hat: np.ndarray
    q_hat_cross: np.ndarray
    gain: np.ndarray
    mu1: np.ndarray
    mu2: np.ndarray
    finite_width_variance: float
    jacobian_mean: float
    p: np.ndarray
    p_cross: np.ndarray
    theta_diag: float
    theta_cross: float
    n_parameters: int
    n_samples: int
    n_outputs: int
    lambda_max: float
    mean_eigenvalue: float
    bulk_eigenvalue: float
    fisher: mf.FisherStatistics | None = field(default=None, repr=False, compare=False)
    trajectory: mf.Trajectory | None = field(default=None, repr=False, compare=False)

    @property
    def learning_rate_bound(self) -> float:
        return 2.0 / self.lambda_max


def layer_theory(network: mf.Network, input_norm: float = 1.0, input_correlation: float = 0.0, n_samples: int = 1,
                 biases: bool = True) -> LayerTheory:
    """The per-layer predictions of ``network`` (see :class:`LayerTheory` and the module docstring), read from
    :func:`meanfield.propagate` (q^l, the gains χ_l = σ_w,l² μ_1,l(q^l)), :func:`meanfield.fisher_statistics` (the
    forward and backward order parameters, Θ and the FIM statistics; THEORY §3, §8) and
    :func:`meanfield.gaussian_moments` (μ_2). ``biases``: whether the bias parameters belong to θ (only layers that
    have one count); ``False`` is accepted for a uniform network (the uniform call's ``biases=False``) and for one
    without biases, and refused otherwise: a :class:`meanfield.Network` trains every bias it has.

    >>> import meanfield as mf
    >>> from empirical import layer_theory
    >>> net = mf.Network((4, 8, 6, 1), [1.0, 1.2, 1.0], [0.1, 0.0, 0.0], ["tanh", "relu"], biases=[True, False, False])
    >>> lt = layer_theory(net, input_norm=1.0, n_samples=4)
    >>> lt.n_parameters, round(float(lt.q[0]), 12)   # 4·8 + 8·6 + 6·1 weights and 8 biases; q^1 = 1.0² · 1 + 0.1²
    (94, 1.01)
    """
    if not isinstance(network, mf.Network):
        raise InvalidParameterError(f"network must be a meanfield.Network, got {type(network).__name__}")
    q0 = float(input_norm)
    if not (q0 > 0 and math.isfinite(q0)):
        raise InvalidParameterError(f"input_norm must be a positive number (|x|²/N_0), got {input_norm!r}")
    c0 = float(input_correlation)
    if not -1.0 <= c0 <= 1.0:
        raise InvalidParameterError(f"input_correlation must lie in [-1, 1], got {input_correlation!r}")
    T = int(n_samples)
    if T < 1:
        raise InvalidParameterError(f"n_samples must be ≥ 1, got {n_samples!r}")
    L = network.depth
    trained = bool(biases) or not any(network.biases)

    def fisher(t):
        if trained:
            return mf.fisher_statistics(network, n_samples=t, input_norm=q0, input_correlation=c0)
        if network.is_uniform:  # the uniform call can leave the biases out of θ
            act, sw, sb, depth, width, kind = network.uniform_parameters()
            return mf.fisher_statistics(act, sw, sb, depth, width, t, n_outputs=network.output_width,
                                        input_width=network.input_width, input_norm=q0, input_correlation=c0,
                                        biases=False, weights=kind)
        raise InvalidParameterError(
            "biases=False (biases drawn but not trained) needs a uniform network: a meanfield.Network trains the bias "
            f"of every layer that has one; describe the untrained ones with biases=False and sigma_b=0 instead ({network!r})"
        )

    fs = fisher(T)
    fx = fs if T > 1 else fisher(2)  # the cross order parameters (T = 1 needs none; they do not depend on T)
    tr = mf.propagate(network, q0=q0, c0=c0)
    q = np.asarray(fs.q[1 : L + 1], dtype=float)
    gain = np.asarray(tr.chi[1:], dtype=float)
    mom = [mf.gaussian_moments(network.activations[l], float(q[l])) for l in range(L)]
    mu1 = np.array([float(m.mu1) for m in mom])
    mu2 = np.array([float(m.mu2) for m in mom])
    # THEORY §2: the relative variance of the JJᵀ spectrum, Σ_l (μ_2/μ_1² − 1 − s_1) with s_1 = −1 for Gaussian W^l
    v = sum(mu2[l] / mu1[l] ** 2 - 1.0 + (1.0 if network.weights[l] == "gaussian" else 0.0) for l in range(L))
    N = fs.width
    return LayerTheory(
        q=q, q_cross=np.asarray(fx.q_cross[1 : L + 1], dtype=float), q_hat=np.asarray(fs.q_hat[: L + 1], dtype=float),
        q_hat_cross=np.asarray(fx.q_hat_cross[: L + 1], dtype=float), gain=gain, mu1=mu1, mu2=mu2,
        finite_width_variance=float(v), jacobian_mean=float(np.prod(gain)),
        p=np.asarray(fs.q_tilde[1 : L + 2], dtype=float), p_cross=np.asarray(fx.q_tilde_cross[1 : L + 2], dtype=float),
        theta_diag=float(fs.trace) / fs.n_outputs, theta_cross=float(fx.kappa2) * float(fx.alpha) * N,
        n_parameters=int(fs.n_parameters), n_samples=T, n_outputs=int(fs.n_outputs), lambda_max=float(fs.lambda_max),
        mean_eigenvalue=float(fs.mean_eigenvalue), bulk_eigenvalue=float(fs.bulk_eigenvalue), fisher=fs,
        trajectory=tr,
    )
