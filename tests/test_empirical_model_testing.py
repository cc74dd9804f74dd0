"""assert_model_matches_theory and the mean_field_check fixture: passes for models the theory describes, fails for a
model whose σ_w is 10 % off the theory's, at the default settings (k_sigma = 4)."""

import pytest
import torch
from torch import nn

import empirical as emp
from empirical.experiments import correlated_inputs
from empirical.pytest_plugin import mean_field_check  # noqa: F401  (the fixture, imported into this module)
from empirical.testing import assert_model_matches_theory


def _mlp(depth, width, act=nn.Tanh):
    layers = [nn.Linear(width, width)]
    for _ in range(depth - 1):
        layers += [act(), nn.Linear(width, width)]
    layers += [act(), nn.Linear(width, 1)]
    return nn.Sequential(*layers).double()


def _inputs(width, seed=4):
    return correlated_inputs(16, width, 1.0, 0.5, torch.Generator().manual_seed(seed))


def test_default_init_matches_its_read_theory_and_not_a_wrong_one():
    torch.manual_seed(11)
    model = _mlp(6, 256)
    X = _inputs(256)
    table = assert_model_matches_theory(model, X)
    assert len(table) == 6 + 3 and table.passed
    with pytest.raises(AssertionError, match="missed their tolerance"):
        assert_model_matches_theory(model, X, theory_sigma_w_scale=1.1)


@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_model_with_sigma_w_10_percent_off_its_intended_init_fails(mean_field_check, act):  # noqa: F811
    model = _mlp(6, 256, act)
    X = _inputs(256, seed=5)
    report = emp.initialize_(model, generator=0, inputs=X, weights="gaussian")
    mean_field_check(model, X, network=report.network)  # as intended: passes
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(1.1)
    with pytest.raises(AssertionError, match="missed their tolerance"):
        mean_field_check(model, X, network=report.network)
