"""RandomMLP: validation, reproducibility, the weight laws of THEORY §0, the forward pass."""

import math

import numpy as np
import pytest
import torch

import empirical as emp
from meanfield.errors import InvalidParameterError, MeanFieldError, NumericalError


def _net(**kw):
    args = dict(
        input_width=6, width=8, depth=3, output_width=2, activation="tanh", sigma_w=1.2, sigma_b=0.1, generator=0
    )
    args.update(kw)
    return emp.RandomMLP(**args)


# ------------------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(input_width=0), "input_width"),
        (dict(input_width=2.5), "input_width"),
        (dict(width=0), "width"),
        (dict(width=[4, 0, 4]), r"width\[1\]"),
        (dict(width=[4, 4]), "depth=3"),
        (dict(width="8"), "width"),
        (dict(depth=0), "depth"),
        (dict(depth=True), "depth"),
        (dict(output_width=-1), "output_width"),
        (dict(sigma_w=0.0), "sigma_w"),
        (dict(sigma_w=-1.0), "sigma_w"),
        (dict(sigma_w=float("nan")), "sigma_w"),
        (dict(sigma_b=-0.1), "sigma_b"),
        (dict(sigma_b=float("inf")), "sigma_b"),
        (dict(weights="uniform"), "uniform"),
        (dict(dtype=torch.float16), "float16"),
        (dict(generator=-3), "generator"),
        (dict(generator="seed"), "generator"),
    ],
)
def test_invalid_arguments_are_named(kw, needle):
    with pytest.raises(ValueError, match=needle) as info:
        _net(**kw)
    assert isinstance(info.value, MeanFieldError)


def test_bad_activation():
    with pytest.raises(ValueError, match="tanhh"):
        _net(activation="tanhh")


def test_bad_inputs():
    net = _net()
    with pytest.raises(InvalidParameterError, match=r"\(n_inputs, 6\)"):
        net.forward_all(torch.zeros(3, 5))
    with pytest.raises(InvalidParameterError, match="non-finite"):
        net.forward_all(torch.full((2, 6), float("nan")))


# ------------------------------------------------------------------------------------------------------ reproducibility
def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def test_same_seed_same_network_and_generators_are_honoured():
    a, b = _net(generator=7), _net(generator=7)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b)))
    c = _net(generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(c)))
    d = _net(generator=8)
    assert not torch.equal(a.W[0], d.W[0])
    e = _net(generator=None)  # fresh random seed, kept for reproduction
    f = _net(generator=e.seed)
    assert all(torch.equal(p, q) for p, q in zip(_params(e), _params(f)))


def test_sigma_b_only_scales_the_bias_draws():
    """Common random numbers: the same seed with another σ_b changes nothing but the bias scale."""
    a, b = _net(sigma_b=0.1), _net(sigma_b=0.3)
    for l in range(4):
        assert torch.equal(a.W[l], b.W[l])
        assert torch.allclose(3.0 * a.b[l], b.b[l], rtol=1e-15, atol=0)
    z = _net(sigma_b=0.0)
    assert all(torch.count_nonzero(bias) == 0 for bias in z.b)


def test_float32_network_is_the_rounded_float64_one():
    a, b = _net(), _net(dtype=torch.float32)
    assert b.dtype == torch.float32
    assert all(torch.equal(p.float(), q) for p, q in zip(_params(a), _params(b)))


def test_device_default_and_attributes():
    net = _net(width=[8, 9, 10])
    assert net.device == emp.default_device()
    assert net.widths == (6, 8, 9, 10, 2) and net.hidden_widths == (8, 9, 10)
    assert [tuple(w.shape) for w in net.W] == [(8, 6), (9, 8), (10, 9), (2, 10)]
    assert net.num_parameters() == 6 * 8 + 8 * 9 + 9 * 10 + 10 * 2 + (8 + 9 + 10 + 2)
    assert net.num_parameters(biases=False) == 6 * 8 + 8 * 9 + 9 * 10 + 10 * 2
    with pytest.raises(InvalidParameterError, match="differ"):
        net.width
    assert _net().width == 8
    assert "weights='gaussian'" in repr(net) and "seed=0" in repr(net)


# -------------------------------------------------------------------------------------------------------- weight laws
@pytest.mark.parametrize("n_out,n_in", [(40, 40), (60, 30), (30, 60), (1, 50)])
def test_orthogonal_scaling(n_out, n_in):
    """W = s·O with O orthonormal columns/rows and ‖W‖_F² = σ_w² N_l, so E|Wx|²/N_l = σ_w²|x|²/N_{l-1} (THEORY §0)."""
    sw = 1.3
    net = emp.RandomMLP(n_in, n_out, 1, 3, "linear", sw, 0.0, weights="orthogonal", generator=1)
    w = net.W[0]
    if n_out >= n_in:
        gram, target = w.T @ w, sw**2 * n_out / n_in
    else:
        gram, target = w @ w.T, sw**2
    assert torch.allclose(gram, target * torch.eye(gram.shape[0], dtype=gram.dtype), atol=1e-12)
    assert math.isclose(float(w.square().sum()) / n_out, sw**2, rel_tol=1e-12)
    # stored row-major like nn.Linear's weights (QR's Q is column-major), in both dtypes
    assert all(v.is_contiguous() for v in net.W)
    net32 = emp.RandomMLP(n_in, n_out, 1, 3, "linear", sw, 0.0, weights="orthogonal", generator=1, dtype=torch.float32)
    assert all(v.is_contiguous() for v in net32.W) and torch.equal(net32.W[0], w.to(torch.float32))


def test_orthogonal_is_haar_not_sign_biased():
    """QR alone makes the diagonal of Q one-signed; with the sign fix E[O_11] = 0 (Mezzadri 2007).
    400 draws of O_11·√n (variance ≈ 1): the mean is within 4 standard errors (0.2) of 0."""
    vals = []
    gen = torch.Generator().manual_seed(3)
    for _ in range(400):
        net = emp.RandomMLP(8, 8, 1, 1, "linear", 1.0, 0.0, weights="orthogonal", generator=gen)
        vals.append(float(net.W[0][0, 0]) * math.sqrt(8))
    assert abs(np.mean(vals)) < 4 / math.sqrt(400)


def test_gaussian_weight_variance():
    """W_ij ~ N(0, σ_w²/N_{l-1}): 250·200 entries, the sample variance within 3% (≈ 5 standard errors)."""
    sw = 0.8
    net = emp.RandomMLP(200, 250, 1, 1, "tanh", sw, 0.5, generator=2)
    z = net.W[0] * math.sqrt(200) / sw
    assert abs(float(z.var()) - 1.0) < 0.03
    assert abs(float(z.mean())) < 0.03
    assert abs(float(net.b[0].std()) - 0.5) < 0.5 * 0.25


# ------------------------------------------------------------------------------------------------------------ forward
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_forward_all_consistent(weights):
    net = _net(weights=weights, width=[8, 5, 7])
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fp = net.forward_all(x, derivatives=True)
    assert len(fp.post) == 4 and len(fp.pre) == 3 and len(fp.derivatives) == 3
    assert torch.equal(fp.post[0], x)
    manual = x
    for l in range(3):
        h = manual @ net.W[l].T + net.b[l]
        assert torch.allclose(fp.pre[l], h, rtol=1e-14, atol=1e-14)
        assert torch.allclose(fp.derivatives[l], 1 - torch.tanh(h) ** 2, rtol=1e-14, atol=1e-14)
        manual = torch.tanh(h)
    with torch.no_grad():
        assert torch.allclose(net(x), fp.output, rtol=1e-14, atol=1e-14)
        assert torch.allclose(net(x[0]), fp.output[0], rtol=1e-14, atol=1e-14)
        assert torch.allclose(net.features(x), fp.post[-1], rtol=1e-14, atol=1e-14)
    assert net.forward_all(x, pre=False).pre is None
    assert net.forward_all(x[1]).output.shape == (1, 2)


def test_overflow_names_the_layer():
    net = emp.RandomMLP(4, 4, 60, 1, "linear", 1e8, 0.0, generator=0)
    x = torch.ones(4, dtype=torch.float64)
    with pytest.raises(NumericalError, match=r"h\^\d+ \(hidden layer \d+ of 60\)"):
        net.forward_all(x, check_finite=True)
    assert issubclass(NumericalError, FloatingPointError)
