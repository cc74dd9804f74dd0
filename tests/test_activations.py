"""Activations: registry, expressions, derivatives (hand-written vs sympy), kinks, bad input."""

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import meanfield as mf
from meanfield.activations import X

NAMED = ["tanh", "relu", "leaky_relu", "erf", "linear", "hard_tanh", "sigmoid", "softplus", "elu", "selu", "gelu", "silu"]


@pytest.mark.parametrize("name", NAMED)
def test_hand_written_derivatives_match_sympy(name):
    act = mf.get_activation(name)
    u = np.array([-7.3, -2.1, -0.999, -0.3, 0.27, 0.8, 1.7, 4.2])
    derivs = [act.expr, sp.diff(act.expr, X), sp.diff(act.expr, X, 2)]
    for v in u:
        exact = [float(sp.N(d.subs(X, sp.Float(v, 30)), 20)) for d in derivs]
        assert act.phi(v) == pytest.approx(exact[0], rel=1e-14, abs=1e-15)
        assert act.dphi(v) == pytest.approx(exact[1], rel=1e-13, abs=1e-15)
        assert act.d2phi(v) == pytest.approx(exact[2], rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "silu", "elu", "selu", "gelu"])
def test_named_activations_do_not_overflow(name):
    act = mf.get_activation(name)
    vals = act.phi(np.array([-1e4, -800.0, 800.0, 1e4]))
    assert np.all(np.isfinite(vals))


def test_expression_derivatives_by_finite_differences():
    act = mf.get_activation("x*tanh(x)")
    u = np.linspace(-3, 3, 13)
    h = 1e-6
    fd = (act.phi(u + h) - act.phi(u - h)) / (2 * h)
    np.testing.assert_allclose(act.dphi(u), fd, rtol=1e-8, atol=1e-9)
    fd2 = (act.dphi(u + h) - act.dphi(u - h)) / (2 * h)
    np.testing.assert_allclose(act.d2phi(u), fd2, rtol=1e-7, atol=1e-8)


def test_sympy_expression_and_string_agree():
    a = mf.get_activation(sp.sin(X) + X / 2)
    b = mf.get_activation("sin(x) + x/2")
    u = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(a.phi(u), b.phi(u), rtol=1e-15)


@pytest.mark.parametrize(
    "expr, kinks, jumps",
    [("abs(x)", (0.0,), (2.0,)), ("Max(0, x) - 0.2*Min(0, x)", (0.0,), (1.2,)), ("Min(1, Max(-1, x))", (-1.0, 1.0), (1.0, -1.0))],
)
def test_expression_kinks_and_jumps(expr, kinks, jumps):
    act = mf.get_activation(expr)
    assert act.kinks == pytest.approx(kinks)
    assert act.jumps == pytest.approx(jumps, abs=1e-12)


def test_named_kinks():
    assert mf.get_activation("hard_tanh").kinks == (-1.0, 1.0)
    assert mf.get_activation("relu").jumps == (1.0,)
    selu = mf.get_activation("selu")
    assert selu.jumps[0] == pytest.approx(1.0507009873554805 * (1 - 1.6732632423543772), rel=1e-12)


def test_parameters_and_aliases():
    a = mf.get_activation("leaky_relu", negative_slope=0.2)
    assert a.phi(-1.0) == pytest.approx(-0.2)
    assert mf.get_activation("identity").name == "linear"
    assert mf.get_activation("Swish").name == "silu"
    assert mf.get_activation("elu", alpha=0.5).phi(-50.0) == pytest.approx(-0.5)


def test_properties():
    assert mf.get_activation("tanh").is_odd
    assert not mf.get_activation("relu").is_odd
    assert mf.get_activation("relu").is_homogeneous
    assert mf.get_activation("leaky_relu").is_homogeneous
    assert not mf.get_activation("tanh").is_homogeneous


def test_unknown_name_suggests_close_names():
    with pytest.raises(mf.UnknownActivationError, match="did you mean 'tanh'"):
        mf.get_activation("tanhh")
    with pytest.raises(ValueError, match="relu"):
        mf.get_activation("reluu")


@pytest.mark.parametrize("bad", ["x**", "tanh(x", "x + y", "foo(x) +", "gamma(x)", "floor(x)"])
def test_unparsable_expression(bad):
    with pytest.raises(mf.UnknownActivationError, match=re_escape(bad)):
        mf.get_activation(bad)


def re_escape(s):
    import re

    return re.escape(repr(s))


def test_bad_parameters():
    with pytest.raises(mf.InvalidParameterError, match="negative_slope"):
        mf.get_activation("tanh", negative_slope=0.1)
    with pytest.raises(mf.InvalidParameterError, match="finite"):
        mf.get_activation("leaky_relu", negative_slope=math.nan)
    with pytest.raises(mf.UnknownActivationError):
        mf.get_activation(3.0)


def test_theory_imports_without_torch_or_matplotlib():
    # nor scipy.special (~0.2 s): it is imported where it is used, and the warm path of fixed_point never needs it
    code = ("import sys, meanfield; assert not {'torch', 'matplotlib', 'scipy.special'} & set(sys.modules), "
            "sorted({'torch', 'matplotlib', 'scipy.special'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spectra_and_fisher_modules_load_on_first_use():
    """``import meanfield`` leaves the spectra and Fisher modules (and their Numba functions) for their first use; every
    public name still resolves, also through ``from meanfield import *``."""
    code = (
        "import sys, meanfield as mf\n"
        "lazy = {'meanfield.spectra', 'meanfield.fisher'}\n"
        "assert not lazy & set(sys.modules), sorted(lazy & set(sys.modules))\n"
        "assert mf.fuss_catalan_moment(2, 1) == 2.0 and 'meanfield.spectra' in sys.modules\n"
        "from meanfield import FisherStatistics\n"
        "assert 'meanfield.fisher' in sys.modules and FisherStatistics is mf.fisher_statistics.__globals__['FisherStatistics']\n"
        "ns = {}\n"
        "exec('from meanfield import *', ns)\n"
        "missing = set(mf.__all__) - set(ns)\n"
        "assert not missing, missing\n"
        "assert set(mf.__all__) <= set(dir(mf))\n"
        "try:\n"
        "    mf.no_such_name\n"
        "except AttributeError as e:\n"
        "    assert 'no_such_name' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
