"""Brute-force references, by automatic differentiation (``torch.func``), that the fast paths of
:mod:`empirical.measure` are tested against in float64.

They accept a :class:`~empirical.RandomMLP` or a user's model (its parameters by their own names). They differentiate
the module's own forward (``RandomMLP.forward``, through the torch φ with autograd's derivative),
never the explicit D·W chains or the layerwise Gram, and they materialise what the fast paths avoid — dense Jacobians,
per-sample gradients, the P×P Fisher matrix — so keep the networks small (P up to a few thousand). Pattern: curvlinops'
``examples/functorch.py`` (f-dangel/curvlinops), which checks its matrix-free operators against functorch the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from empirical.models import as_mlp
from empirical.networks import RandomMLP

__all__ = [
    "parameter_names",
    "reference_layer_statistics",
    "reference_jacobian",
    "reference_per_sample_gradients",
    "reference_fisher_gram",
    "reference_fisher_matrix",
    "reference_fisher_eigenvalues",
    "reference_partial_jacobians",
    "reference_conditional_fisher_eigenvalues",
]


def parameter_names(net: RandomMLP, biases: bool = True) -> list[str]:
    """θ's parameters in order W^1, b^1, W^2, b^2, … (the biases left out with ``biases=False``); for a user's model its
    own names (``"0.weight"``, ``"0.bias"``, …) of the Linear layers' parameters."""
    if not isinstance(net, RandomMLP):
        return as_mlp(net).parameter_names(biases)
    names = []
    for l in range(net.depth + 1):
        names.append(f"W.{l}")
        if biases:
            names.append(f"b.{l}")
    return names


def _inputs(net, X):
    return as_mlp(net).as_input(X)


def reference_layer_statistics(net: RandomMLP, X) -> tuple[np.ndarray, np.ndarray]:
    """(q, c): q (L, T) = |h^l|²/N_l and c (L, T, T) the cosine similarities of the h^l, by a plain layer loop."""
    net = as_mlp(net)
    x = _inputs(net, X)
    qs, cs = [], []
    with torch.no_grad():
        for l in range(net.depth):
            h = x @ net.W[l].T + net.b[l]
            qs.append((h * h).sum(1) / h.shape[1])
            hn = h / h.norm(dim=1, keepdim=True)
            cs.append(hn @ hn.T)
            x = net.phis[l].phi(h)
    return torch.stack(qs).cpu().numpy(), torch.stack(cs).cpu().numpy()


def reference_jacobian(net: RandomMLP, x) -> torch.Tensor:
    """Dense ``∂x^L/∂x^0`` (N_L, N_0) at one input by ``torch.func.jacrev`` of ``net.features``."""
    net = as_mlp(net)
    x0 = _inputs(net, x)[0]
    return jacrev(net.features)(x0).detach()


def reference_per_sample_gradients(net: RandomMLP, X, biases: bool = True) -> torch.Tensor:
    """(T, C, P): ``∇_θ f_k(x_t)`` for every input and output, by ``vmap`` over inputs of ``jacrev`` over θ."""
    x = _inputs(net, X)
    names = parameter_names(net, biases)
    all_params = {k: v.detach() for k, v in net.named_parameters()}
    fixed = {k: v for k, v in all_params.items() if k not in names}

    def f(theta, xt):
        return functional_call(net, {**fixed, **theta}, (xt,))

    theta = {k: all_params[k] for k in names}
    jac = vmap(jacrev(f), in_dims=(None, 0))(theta, x)  # dict name -> (T, C, *shape)
    T, C = x.shape[0], as_mlp(net).output_width
    return torch.cat([jac[k].reshape(T, C, -1) for k in names], dim=2).detach()


def reference_fisher_gram(net: RandomMLP, X, biases: bool = True) -> torch.Tensor:
    """Θ/T = G Gᵀ / T with G the (T·C, P) per-sample gradients, index ``(t, k) → t·C + k``."""
    g = reference_per_sample_gradients(net, X, biases)
    T, C, P = g.shape
    g = g.reshape(T * C, P)
    return g @ g.T / T


def reference_fisher_matrix(net: RandomMLP, X, biases: bool = True) -> torch.Tensor:
    """The P×P Fisher matrix ``F = (1/T) Σ_t Σ_k ∇_θ f_k ∇_θ f_kᵀ``."""
    g = reference_per_sample_gradients(net, X, biases)
    T, C, P = g.shape
    g = g.reshape(T * C, P)
    return g.T @ g / T


def reference_fisher_eigenvalues(net: RandomMLP, X, biases: bool = True) -> np.ndarray:
    """The min(T·C, P) largest eigenvalues of the P×P matrix F itself, descending."""
    F = reference_fisher_matrix(net, X, biases)
    T = _inputs(net, X).shape[0]
    n = min(T * as_mlp(net).output_width, F.shape[0])
    return torch.linalg.eigvalsh(F).flip(0)[:n].cpu().numpy()


def reference_partial_jacobians(net: RandomMLP, x) -> list[torch.Tensor]:
    """``J_l = ∂f/∂h^l`` (C, N_l) for l = 1..L+1 at one input, by ``jacrev`` with respect to a shift of h^l."""
    net = as_mlp(net)
    x0 = _inputs(net, x)[0]
    L = net.depth

    def f(shifts):
        y = x0
        for l in range(L):
            y = net.phis[l].phi(torch.nn.functional.linear(y, net.W[l], net.b[l]) + shifts[l])
        return torch.nn.functional.linear(y, net.W[L], net.b[L]) + shifts[L]

    zeros = [torch.zeros(n, dtype=net.dtype, device=net.device) for n in net.widths[1:]]
    jac = jacrev(f)(zeros)
    return [j.detach() for j in jac]


def reference_conditional_fisher_eigenvalues(net: RandomMLP, x, biases: bool = True) -> np.ndarray:
    """Eigenvalues of ``J_θ J_θᵀ`` (C×C) at one input, J_θ the (C, P) parameter Jacobian, descending."""
    g = reference_per_sample_gradients(net, _inputs(net, x)[:1], biases)[0]
    return torch.linalg.eigvalsh(g @ g.T).flip(0).cpu().numpy()
