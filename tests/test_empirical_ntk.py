"""The empirical NTK by the layerwise identity against a brute-force torch.func Gram, and the Monte-Carlo kernels
against the infinite-width theory (THEORY §3, §7)."""

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev

import meanfield as mf
from empirical.ntk import nngp_monte_carlo, ntk
from empirical.networks import RandomMLP


def _brute_force(model, params, X, X2):
    """Σ_θ ∂f(x)/∂θ ∂f(x')/∂θ from dense per-sample Jacobians (torch.func.jacrev over every parameter)."""

    def f(p, x):
        return functional_call(model, p, (x,))

    ja = jacrev(f)(params, X)
    jb = jacrev(f)(params, X2)
    n1, n2 = X.shape[0], X2.shape[0]
    C = next(iter(ja.values())).shape[1]
    ga = torch.cat([v.reshape(n1, C, -1) for v in ja.values()], dim=2)
    gb = torch.cat([v.reshape(n2, C, -1) for v in jb.values()], dim=2)
    return torch.einsum("sci,tdi->stcd", ga, gb)


def _mlp_as_module(net):
    """A functional twin of the RandomMLP: its weights as a dict of parameters and a forward in plain torch."""

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for l in range(net.depth + 1):
                self.register_parameter(f"W{l}", torch.nn.Parameter(net.W[l].detach().clone()))
                self.register_parameter(f"b{l}", torch.nn.Parameter(net.b[l].detach().clone()))

        def forward(self, x):
            h = x
            for l in range(net.depth):
                h = net.phi.phi(h @ getattr(self, f"W{l}").T + getattr(self, f"b{l}"))
            return h @ getattr(self, f"W{net.depth}").T + getattr(self, f"b{net.depth}")

    twin = Twin()
    return twin, {k: v.detach() for k, v in twin.named_parameters()}


@pytest.mark.parametrize("act, C, cross", [("tanh", 1, False), ("relu", 3, True), ("gelu", 1, True)])
def test_ntk_equals_brute_force_gram(act, C, cross):
    g = torch.Generator().manual_seed(3)
    net = RandomMLP(5, 7, 3, C, act, 1.3, 0.2, device="cpu", generator=11)
    X = torch.randn(6, 5, generator=g, dtype=torch.float64)
    X2 = torch.randn(4, 5, generator=g, dtype=torch.float64) if cross else X
    twin, params = _mlp_as_module(net)
    want = _brute_force(twin, params, X, X2)
    got = ntk(net, X, X2 if cross else None)
    if C == 1:
        want = want[:, :, 0, 0]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12 * float(want.abs().max()))


def test_ntk_of_an_ordinary_model_and_without_biases():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 9), torch.nn.Tanh(), torch.nn.Linear(9, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    X = torch.randn(5, 4, dtype=torch.float64)
    params = {k: v.detach() for k, v in model.named_parameters()}
    want = _brute_force(model, params, X, X)[:, :, 0, 0]
    torch.testing.assert_close(ntk(model, X), want, rtol=1e-10, atol=1e-13)
    weights_only = {k: v for k, v in params.items() if k.endswith("weight")}
    want_w = _brute_force(model, weights_only, X, X)[:, :, 0, 0]
    torch.testing.assert_close(ntk(model, X, biases=False), want_w, rtol=1e-10, atol=1e-13)


def test_ntk_float32_matches_float64():
    net64 = RandomMLP(6, 32, 2, 1, "tanh", 1.2, 0.1, device="cpu", generator=5)
    net32 = RandomMLP(6, 32, 2, 1, "tanh", 1.2, 0.1, device="cpu", dtype=torch.float32, generator=5)
    X = torch.randn(8, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = ntk(net64, X), ntk(net32, X)
    assert b.dtype == torch.float32
    torch.testing.assert_close(b.double(), a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ntk_on_cuda_matches_cpu():
    cpu = RandomMLP(6, 64, 3, 2, "tanh", 1.2, 0.1, device="cpu", generator=5)
    gpu = RandomMLP(6, 64, 3, 2, "tanh", 1.2, 0.1, device="cuda", generator=torch.Generator("cuda").manual_seed(5))
    for l in range(4):  # the same weights on both devices
        gpu.W[l].copy_(cpu.W[l])
        gpu.b[l].copy_(cpu.b[l])
    X = torch.randn(8, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(ntk(gpu, X).cpu(), ntk(cpu, X), rtol=1e-12, atol=1e-12)


def test_monte_carlo_kernels_approach_the_theory():
    """Wide networks (N = 1024, 16 of them): NNGP and NTK/N within a few standard errors (plus the O(1/N) bias) of
    mf.kernels(..., "standard", width=N), for inputs of different norms and correlations."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 8))
    X[0] *= 2.0
    N = 1024
    mc = nngp_monte_carlo("tanh", 1.4, 0.2, 2, X, width=N, n_networks=16, device="cpu")
    th = mf.kernels("tanh", 1.4, 0.2, 2, X, parameterization="standard", width=N)
    for est, err, want in ((mc.nngp, mc.nngp_stderr, th.nngp), (mc.ntk, mc.ntk_stderr, th.ntk)):
        z = np.abs(est - want) / (err + 2.0 / N * np.abs(want))
        assert z.max() < 5.0, z.max()


def test_bad_arguments():
    net = RandomMLP(3, 4, 1, 1, "tanh", 1.0, 0.0, device="cpu", generator=0)
    with pytest.raises(mf.InvalidParameterError, match="X2"):
        ntk(net, np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(mf.InvalidParameterError, match="n_networks"):
        nngp_monte_carlo("tanh", 1.0, 0.0, 1, np.ones((2, 3)), n_networks=1)


@pytest.mark.slow
def test_kernel_experiment_passes_and_rejects_a_wrong_theory():
    """The seventh experiment at a small size: the right theory passes, σ_w off by 10 % fails (slopes and mean
    entries)."""
    from empirical.experiments.kernels import ntk_kernels

    kw = dict(widths=(64, 128, 256, 512), seeds=3, n_inputs=8, train_width=256, steps=60, device="cpu")
    good = ntk_kernels(**kw)
    assert good.passed, [r for r in good.records if not r.passed]
    assert {r.quantity for r in good.records} == {"mean_entry", "slope", "prediction"}
    bad = ntk_kernels(theory_sigma_w_scale=1.1, **kw)
    assert not bad.passed
    assert any(r.quantity == "mean_entry" and not r.passed for r in bad.records)
