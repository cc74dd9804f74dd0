"""φ and φ' in torch agree with the meanfield kernels (the theory's definition) to 1e-12 in float64."""

import numpy as np
import pytest
import sympy
import torch

from empirical import torch_activation
from empirical._torch_activations import _compile
from meanfield.activations import REGISTRY, X, get_activation
from meanfield.errors import UnknownActivationError

NAMED = [(name, {}) for name in REGISTRY] + [("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.5})]
EXPRESSIONS = [
    "x*tanh(x)",
    "Max(0, x) - 0.1*Min(0, x)",
    "x/(1 + abs(x))",
    "Piecewise((x, x > 0), (exp(x) - 1, True))",
    "sqrt(1 + x**2) - 1",
    "sign(x)*x**2",
    "Heaviside(x)*x",
    "x*sigmoid(x)",
    "Min(1, Max(-1, x))",
    "2*x + 1",
    "sin(x) + cos(x)/2",
    "erf(x/2) + atan(x)",
    "sech(x) + coth(x + 50)/10",
    "erf2(x, 1) + acot(x + 50)",
]
# a grid through the kinks (0, ±1), the tails, and tiny arguments
GRID = np.concatenate([np.linspace(-40.0, 40.0, 1601), [0.0, -1.0, 1.0, 1e-300, -1e-300, 1e-8, -1e-8, 3.7, -3.7]])
TOL = 1e-12


def _close(a, b):
    """|a - b| ≤ 1e-12 (1 + |b|): relative for large values, absolute near zero."""
    return np.all(np.abs(a - b) <= TOL * (1.0 + np.abs(b)))


@pytest.mark.parametrize("name,params", NAMED, ids=[n + "".join(f"-{k}={v}" for k, v in p.items()) for n, p in NAMED])
def test_named_match_meanfield(name, params):
    act = get_activation(name, **params)
    ta = torch_activation(name, **params)
    assert ta.native and ta.activation is act
    u = torch.tensor(GRID, dtype=torch.float64)
    assert _close(ta.phi(u).numpy(), act.phi(GRID))
    assert _close(ta.dphi(u).numpy(), act.dphi(GRID))
    y, d = ta.phi_and_dphi(u)
    assert _close(y.numpy(), act.phi(GRID)) and _close(d.numpy(), act.dphi(GRID))


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_expressions_match_meanfield(expr):
    act = get_activation(expr)
    ta = torch_activation(expr)
    assert not ta.native
    u = torch.tensor(GRID, dtype=torch.float64)
    assert _close(ta.phi(u).numpy(), act.phi(GRID))
    assert _close(ta.dphi(u).numpy(), act.dphi(GRID))


@pytest.mark.parametrize("spec", ["tanh", "gelu", "silu", "softplus", "selu", "x*tanh(x)", "sqrt(1 + x**2) - 1"])
def test_dphi_is_the_derivative_of_phi(spec):
    """Autograd through the torch φ agrees with the explicit φ' (smooth activations, or away from kinks)."""
    ta = torch_activation(spec)
    u = torch.linspace(-6.0, 6.0, 241, dtype=torch.float64) + 1e-3
    u.requires_grad_(True)
    (g,) = torch.autograd.grad(ta.phi(u).sum(), u)
    assert torch.allclose(g, ta.dphi(u.detach()), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("spec", ["tanh", "relu", "leaky_relu", "elu", "hard_tanh", "x*tanh(x)", "Heaviside(x)*x", "2*x"])
def test_dtype_and_shape_preserved(spec):
    ta = torch_activation(spec)
    for dt in (torch.float32, torch.float64):
        u = torch.linspace(-2, 2, 12, dtype=dt).reshape(3, 4)
        assert ta.phi(u).dtype == dt and ta.phi(u).shape == (3, 4)
        assert ta.dphi(u).dtype == dt and ta.dphi(u).shape == (3, 4)


def test_float32_constants_are_not_rounded_twice():
    """A float64 input keeps float64 constants (a float32 detour would leave errors of 1e-9 in 0.01)."""
    ta = torch_activation("Max(0, x) + 0.01*Min(0, x)")
    assert ta.dphi(torch.tensor([-1.0], dtype=torch.float64)).item() == 0.01


def test_kink_conventions():
    u = torch.tensor([0.0, -1.0, 1.0], dtype=torch.float64)
    assert torch_activation("relu").dphi(u)[0] == 0.0
    assert torch.equal(torch_activation("hard_tanh").dphi(u)[1:], torch.zeros(2, dtype=torch.float64))


def test_cached_and_accepts_activation_objects():
    act = get_activation("tanh")
    assert torch_activation(act) is torch_activation("tanh")


def test_untranslatable_function_is_named():
    g = sympy.Function("g")
    with pytest.raises(UnknownActivationError, match="'g'"):
        _compile(g(X) + X, "g(x) + x")


def test_unknown_name():
    with pytest.raises(ValueError, match="tanhh"):
        torch_activation("tanhh")
