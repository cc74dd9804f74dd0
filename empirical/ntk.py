"""The empirical NTK of a finite network, and Monte-Carlo estimates of the infinite-width kernels (THEORY §3, §7).

Standard parameterisation (THEORY §0; PyTorch's): the empirical NTK ``Θ(x, x') = Σ_θ ∂f(x)/∂θ ∂f(x')/∂θ`` of an MLP is, by
the layerwise identity of THEORY §3,

    Θ_{kk'}(x, x') = Σ_{l=1}^{L+1} (δ^l_k(x)·δ^l_{k'}(x')) (x^{l-1}(x)·x^{l-1}(x') + β_l),    δ^l_k = ∂f_k/∂h^l,

(β_l = 1 where layer l has a bias that belongs to θ): one forward and one batched backward pass per input set and a Gram
product per layer, no per-sample gradients. It grows like the width N: ``ntk(net, X) / N`` approaches
``meanfield.kernels(..., parameterization="standard", width=N).ntk`` as N → ∞ (and the NNGP: the average of
``σ_w² x^L·x'^L/N_L + σ_b²`` over networks, :func:`nngp_monte_carlo`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from empirical.measure import _as_net, _betas, _deltas, _measuring
from empirical.networks import RandomMLP, _check_finite
from meanfield.errors import InvalidParameterError

__all__ = ["ntk", "nngp_monte_carlo", "MonteCarloKernels"]


def _forward(net, x):
    """Post-activations ``x^0 … x^L`` and derivatives ``φ'(h^1) … φ'(h^L)`` of one input set."""
    posts, ders = [x], []
    for l in range(net.depth):
        h = torch.addmm(net.b[l], posts[-1], net.W[l].T)
        _check_finite(h, f"pre-activation h^{l + 1} (hidden layer {l + 1} of {net.depth})")
        y, d = net.phis[l].phi_and_dphi(h)
        posts.append(y)
        ders.append(d)
    return posts, ders


def ntk(model_or_net, X, X2=None, biases: bool = True) -> torch.Tensor:
    """Empirical NTK Θ(X, X2) of a network by the layerwise identity (module docstring; THEORY §3, §7).

    Parameters
    ----------
    model_or_net : an :class:`~empirical.RandomMLP`, or an ordinary PyTorch model of Linear layers and elementwise
        activations (read by :func:`empirical.as_mlp`).
    X, X2 : inputs (n1, N_0) and (n2, N_0); X2 None means X.
    biases : whether the bias parameters belong to θ (they add the β_l = 1 terms).

    Returns
    -------
    torch.Tensor on the network's device and in its dtype (float64 or float32): (n1, n2) for one output, else
    (n1, n2, C, C) with ``[s, t, k, k'] = Σ_θ ∂f_k(x_s)/∂θ ∂f_{k'}(x_t)/∂θ``. Not divided by the width.
    """
    net = _as_net(model_or_net)
    with _measuring():
        xa = net.as_input(X)
        sym = X2 is None
        xb = xa if sym else net.as_input(X2, "X2")
        betas = _betas(net, bool(biases))
        pa, da = _forward(net, xa)
        pb, db = (pa, da) if sym else _forward(net, xb)
        L, C = net.depth, net.output_width
        n1, n2 = xa.shape[0], xb.shape[0]
        # readout: δ^{L+1}_k = e_k
        theta = torch.zeros(n1, n2, C, C, dtype=net.dtype, device=net.device)
        read = torch.mm(pa[L], pb[L].T).add_(betas[L])
        theta.diagonal(dim1=2, dim2=3).add_(read.unsqueeze(-1))
        gen_b = None if sym else _deltas(net, list(db))
        for l, dla in _deltas(net, list(da)):
            dlb = dla if sym else next(gen_b)[1]
            a = torch.mm(pa[l - 1], pb[l - 1].T).add_(betas[l - 1])
            if C == 1:
                theta[:, :, 0, 0].addcmul_(torch.mm(dla[:, 0, :], dlb[:, 0, :].T), a)
            else:
                g = torch.einsum("sci,tdi->stcd", dla, dlb)
                theta.add_(g.mul_(a[:, :, None, None]))
        _check_finite(theta, "the empirical NTK")
        return theta[:, :, 0, 0] if C == 1 else theta


@dataclass(frozen=True)
class MonteCarloKernels:
    """Averages over sampled networks (standard parameterisation) with their standard errors.

    nngp : mean over networks of ``σ_w² x^L(x)·x^L(x')/N_L + σ_b²`` (the readout's covariance given the last hidden
        layer), which estimates the NNGP ``K^{L+1}`` of :func:`meanfield.kernels`.
    ntk : mean of ``ntk(net, X, X2)/N`` (N the hidden width), which estimates ``kernels(..., "standard", width=N).ntk``.
    nngp_stderr, ntk_stderr : standard errors of the means (spread over networks / √n_networks).
    n_networks, width : the sample.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    nngp_stderr: np.ndarray
    ntk_stderr: np.ndarray
    n_networks: int
    width: int


def nngp_monte_carlo(
    phi,
    sigma_w,
    sigma_b,
    depth,
    X,
    X2=None,
    width: int = 512,
    n_networks: int = 8,
    weights: str = "gaussian",
    generator=0,
    device=None,
    dtype=torch.float64,
) -> MonteCarloKernels:
    """Monte-Carlo NNGP and NTK/N of ``n_networks`` sampled :class:`~empirical.RandomMLP` of hidden width ``width``.

    The NNGP of one network is the covariance of its output over the readout's weights given the last hidden layer,
    ``σ_w² x^L·x'^L/N + σ_b²`` (exact in expectation over the readout; Lee et al. 2018 §2.2), averaged over networks; its
    deviation from the infinite-width K^{L+1} shrinks like 1/√(N·n_networks) (plus an O(1/N) bias). ``generator``: seed
    (or torch.Generator) of the first network; network i uses seed + i when an integer is given.
    """
    if isinstance(n_networks, bool) or not isinstance(n_networks, (int, np.integer)) or n_networks < 2:
        raise InvalidParameterError(f"n_networks must be an integer ≥ 2 (for a standard error), got {n_networks!r}")
    nngps, ntks = [], []
    for i in range(int(n_networks)):
        gen = generator + i if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool) else generator
        net = RandomMLP(X.shape[-1] if hasattr(X, "shape") else len(X[0]), width, depth, 1, phi, sigma_w, sigma_b,
                        weights=weights, device=device, dtype=dtype, generator=gen)
        with _measuring():
            xa = net.as_input(X)
            xb = xa if X2 is None else net.as_input(X2, "X2")
            fa = net.features(xa)
            fb = fa if X2 is None else net.features(xb)
            k = torch.mm(fa, fb.T).mul_(net.sigma_w**2 / net.hidden_widths[-1]).add_(net.sigma_b**2)
        nngps.append(k.to(torch.float64).cpu().numpy())
        ntks.append((ntk(net, X, X2) / width).to(torch.float64).cpu().numpy())
    a, b = np.stack(nngps), np.stack(ntks)
    n = a.shape[0]
    return MonteCarloKernels(
        nngp=a.mean(0),
        ntk=b.mean(0),
        nngp_stderr=a.std(0, ddof=1) / math.sqrt(n),
        ntk_stderr=b.std(0, ddof=1) / math.sqrt(n),
        n_networks=n,
        width=int(width),
    )
