"""Ordinary PyTorch models in the measurements (empirical.models): the fast paths on a user's nn.Sequential or traced
module against the brute-force torch.func references of empirical.reference, which differentiate the model's own
forward (torch's own activation modules), in float64."""

import numpy as np
import pytest
import torch
from torch import nn

import empirical as emp
import meanfield as mf
from empirical import reference as ref
from meanfield.errors import InvalidParameterError

TOL = 1e-10


def _inputs(t, n, seed=1):
    return torch.randn(t, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal_(model, gain=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain, generator=g)
    return model


def _default(*mods, seed=0):
    torch.manual_seed(seed)  # PyTorch's default init (kaiming_uniform_ with a = √5) draws from the global RNG
    return nn.Sequential(*mods).double()


MODELS = {
    "tanh-bias-default": lambda: _default(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3)),
    "relu-nobias-rect": lambda: _default(nn.Linear(5, 12, bias=False), nn.ReLU(), nn.Linear(12, 7, bias=False),
                                         nn.ReLU(), nn.Linear(7, 2, bias=False)),
    "mixed-nested": lambda: _default(nn.Linear(6, 9), nn.GELU(), nn.Sequential(nn.Linear(9, 11, bias=False),
                                     nn.LeakyReLU(0.2)), nn.Linear(11, 10), nn.SiLU(), nn.Linear(10, 4)),
    "gelu-tanh-elu-softplus2": lambda: _default(nn.Linear(4, 8), nn.GELU(approximate="tanh"), nn.Linear(8, 8),
                                                nn.ELU(0.7), nn.Linear(8, 9), nn.Softplus(beta=2.0), nn.Linear(9, 2)),
    "selu-sigmoid-hardtanh-orth": lambda: _orthogonal_(_default(nn.Linear(7, 7), nn.SELU(), nn.Linear(7, 9),
                                                                nn.Sigmoid(), nn.Linear(9, 8), nn.Hardtanh(),
                                                                nn.Linear(8, 3)), gain=1.3),
    "orth-tanh-identity-dropout-eval": lambda: _orthogonal_(_default(nn.Linear(8, 8), nn.Tanh(), nn.Identity(),
                                                                     nn.Linear(8, 8), nn.Dropout(0.3),
                                                                     nn.Linear(8, 1)).eval(), gain=1.05),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("biases", [True, False])
def test_fisher_eigenvalues_of_user_models_match_torch_func(name, biases):
    model = MODELS[name]()
    n0 = next(m for m in model.modules() if isinstance(m, nn.Linear)).in_features
    X = _inputs(5, n0)
    got = emp.fisher_eigenvalues(model, X, biases=biases)
    want = ref.reference_fisher_eigenvalues(model, X, biases=biases)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL * max(1.0, want[0]))
    assert want[0] > 1e-3  # a real spectrum, not zeros
    gram = emp.fisher_gram(model, X, biases=biases).numpy()
    np.testing.assert_allclose(gram, ref.reference_fisher_gram(model, X, biases=biases).numpy(), rtol=0,
                               atol=TOL * max(1.0, want[0]))


def test_parameter_count_follows_the_model():
    model = MODELS["relu-nobias-rect"]()
    net = emp.as_mlp(model)
    assert net.num_parameters(True) == sum(p.numel() for p in model.parameters()) == 5 * 12 + 12 * 7 + 7 * 2
    assert net.has_bias == (False, False, False)
    model = MODELS["mixed-nested"]()
    assert emp.as_mlp(model).num_parameters(True) == sum(p.numel() for p in model.parameters())
    assert emp.as_mlp(model).layer_names == ("0", "2.0", "3", "5")


def test_other_measurements_on_a_user_model():
    model = MODELS["tanh-bias-default"]()
    x = _inputs(3, 6)
    q, c = ref.reference_layer_statistics(model, x)
    s = emp.layer_statistics(model, x)
    np.testing.assert_allclose(s.q, q, rtol=1e-12)
    np.testing.assert_allclose(s.c, c, atol=1e-12)
    # the Jacobian against autograd through the model's own modules (features: everything before the readout)
    feats = model[:-1]
    j = torch.func.jacrev(feats)(x[0]).detach()
    np.testing.assert_allclose(emp.input_output_jacobian(model, x[0]).numpy(), j.detach().numpy(), atol=1e-13)
    sv = emp.jacobian_singular_values(model, x[0])
    np.testing.assert_allclose(sv, torch.linalg.svdvals(j).numpy()[: sv.size], atol=1e-13)
    cond = emp.conditional_fisher_eigenvalues(model, x[0])
    np.testing.assert_allclose(cond, ref.reference_conditional_fisher_eigenvalues(model, x[0]), atol=1e-11)
    sp = emp.sokol_park_bound(model, x)
    assert sp.lambda_max <= sp.bound * (1 + 1e-12)
    np.testing.assert_allclose(sp.lambda_max, ref.reference_fisher_eigenvalues(model, x)[0], rtol=1e-12)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 8)
        self.hidden = nn.Linear(8, 8, bias=False)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.tanh(self.inp(x))
        x = nn.functional.leaky_relu(self.hidden(x), 0.1)
        return self.out(x)


def test_traced_module():
    model = _Net().double()
    net = emp.as_mlp(model)
    assert net.layer_names == ("inp", "hidden", "out")
    assert net.activations == (mf.get_activation("tanh"), mf.get_activation("leaky_relu", negative_slope=0.1))
    X = _inputs(4, 5)
    np.testing.assert_allclose(emp.fisher_eigenvalues(model, X), ref.reference_fisher_eigenvalues(model, X),
                               atol=TOL)


class XTanh(nn.Module):
    def forward(self, x):
        return x * torch.tanh(x)


def x_sigmoid(x):
    return x * torch.sigmoid(2.0 * x)


class _WithFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(6, 1)

    def forward(self, x):
        return self.b(x_sigmoid(self.a(x)))


def test_registered_module_and_function():
    model = _default(nn.Linear(4, 6), XTanh(), nn.Linear(6, 2))
    with pytest.raises(InvalidParameterError, match="not a single chain|register_activation"):
        emp.as_mlp(model)  # x * tanh(x) traces to a multiply of two branches
    emp.register_activation(XTanh, "x*tanh(x)")
    assert emp.as_mlp(model).activations == (mf.get_activation("x*tanh(x)"),)
    X = _inputs(3, 4)
    np.testing.assert_allclose(emp.fisher_eigenvalues(model, X), ref.reference_fisher_eigenvalues(model, X),
                               atol=TOL)
    emp.register_activation(x_sigmoid, "x/(1 + exp(-2*x))")
    m2 = _WithFunction().double()
    assert emp.as_mlp(m2).activations == (mf.get_activation("x/(1 + exp(-2*x))"),)
    np.testing.assert_allclose(emp.fisher_eigenvalues(m2, X), ref.reference_fisher_eigenvalues(m2, X), atol=TOL)


def test_activation_mapping_matches_torch():
    """Each mapped module's φ (through the theory's activation) equals the module's own output."""
    u = torch.linspace(-4, 4, 81, dtype=torch.float64)
    mods = [nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.3), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.ELU(0.5),
            nn.SELU(), nn.Sigmoid(), nn.Softplus(), nn.Softplus(beta=3.0), nn.Hardtanh(), nn.Hardtanh(-0.5, 2.0),
            nn.ReLU6(), nn.Mish(), nn.Softsign(), nn.Tanhshrink(), nn.CELU(0.8)]
    for m in mods:
        act = emp.activation_of(m)
        np.testing.assert_allclose(act.phi(u.numpy()), m(u).numpy(), rtol=1e-12, atol=1e-12, err_msg=repr(m))


def test_composed_activations():
    model = _default(nn.Linear(3, 5), nn.Tanh(), nn.ReLU(), nn.Linear(5, 1))
    act = emp.as_mlp(model).activations[0]
    u = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(act.phi(u), np.maximum(np.tanh(u), 0.0), atol=1e-15)


@pytest.mark.parametrize(
    "model, match",
    [
        (nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1), nn.Linear(3, 1)), r"layer 1 \(Conv1d"),
        (nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)), r"layer 1 \(BatchNorm1d"),
        (nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=-1), nn.Linear(3, 1)), "not an elementwise activation"),
        (nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.Linear(3, 1)), "dropout in training mode"),
        (nn.Sequential(nn.Tanh(), nn.ReLU()), "no nn.Linear layers"),
        (nn.Sequential(nn.Linear(3, 3), nn.Tanh()), "after the last Linear"),
        (nn.Sequential(nn.Tanh(), nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1)), "before the first Linear"),
        (nn.Sequential(nn.Linear(3, 3), nn.PReLU(), nn.Linear(3, 1)), r"layer 1 \(PReLU"),
    ],
)
def test_unsupported_models_name_the_layer(model, match):
    with pytest.raises(InvalidParameterError, match=match):
        emp.fisher_eigenvalues(model, _inputs(2, 3, seed=3).float())


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)) + x)


class _Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 1)

    def forward(self, x):
        return self.b(torch.softmax(self.a(x), dim=-1))


def test_traced_branches_and_functions_are_refused():
    with pytest.raises(InvalidParameterError, match="not a single chain"):
        emp.as_mlp(_Residual())
    with pytest.raises(InvalidParameterError, match="softmax is not elementwise"):
        emp.as_mlp(_Softmaxed())


def test_dropout_mode_is_checked_on_every_call():
    model = _default(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.5), nn.Linear(4, 1)).eval()
    emp.as_mlp(model)
    model.train()
    with pytest.raises(InvalidParameterError, match="dropout"):
        emp.as_mlp(model)
