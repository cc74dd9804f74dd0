"""Activations: registry, expressions, derivatives (hand-written vs sympy), kinks, bad input."""

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import meanfield as mf
from meanfield.activations import X, get_activation

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


@pytest.mark.parametrize(
    "name, params, jumps",
    [
        ("relu", {}, (1.0,)),
        ("leaky_relu", {}, (1.0 - 0.01,)),
        ("leaky_relu", {"negative_slope": 0.25}, (0.75,)),
        ("hard_tanh", {}, (1.0, -1.0)),
        ("elu", {}, (0.0,)),
        ("elu", {"alpha": 1.7}, (1.0 - 1.7,)),
        # λ - λα (Klambauer et al. 2017, eq. 14 constants)
        ("selu", {}, (1.0507009873554804934 - 1.0507009873554804934 * 1.6732632423543772848,)),
    ],
)
def test_named_jumps_are_exact(name, params, jumps):
    """The named activations' jumps of φ' are closed forms, bit for bit (no libm-dependent estimate enters their
    rendered source, hence the key of a shipped moment table); the one-sided numerical estimate used for expressions
    agrees with them to rounding."""
    from meanfield.activations import _jumps, _registry

    act = mf.get_activation(name, **params)
    assert act.jumps == jumps
    spec = _registry(**params)[name]
    assert _jumps(spec.bodies, spec.kinks) == pytest.approx(jumps, abs=1e-14)


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


HOMOGENEOUS_PAIRS = [  # named activation, its expression forms
    ("relu", {}, ["Max(0, x)", "Max(0,x)", "x*Heaviside(x)", "Piecewise((x, x > 0), (0, True))", "(x + abs(x))/2"]),
    ("leaky_relu", {}, ["Max(0, x) + 0.01*Min(0, x)", "Piecewise((x, x > 0), (0.01*x, True))"]),
    ("leaky_relu", {"negative_slope": 0.2}, ["Max(0, x) + 0.2*Min(0, x)"]),
    ("linear", {}, ["x", "Max(0, x) + Min(0, x)"]),
]


@pytest.mark.parametrize("name, params, exprs", HOMOGENEOUS_PAIRS)
def test_homogeneous_expressions_agree_with_named(name, params, exprs):
    """Positively homogeneous expressions are recognised (φ(ax) = aφ(x), a > 0) and get the named activation's exact
    moments, so the marginal case is handled alike (issue 12: critical_point("Max(0,x)", 3) gave σ_b = 8.7e-8)."""
    named = mf.get_activation(name, **params)
    assert named.is_homogeneous
    for e in exprs:
        act = mf.get_activation(e)
        assert act.is_homogeneous, e
        for q in (2.0**-20, 0.5, 3.0, 1e4):
            a, b = mf.gaussian_moments(named, q), mf.gaussian_moments(act, q)
            for f in ("phi2", "dphi2_dq", "mu1", "mu2"):
                assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-15), (e, q, f)
        tp_a, tp_b = mf.two_point(named, 0.7, 1.3, -0.4), mf.two_point(act, 0.7, 1.3, -0.4)
        assert tp_b.phi_phi == pytest.approx(tp_a.phi_phi, rel=1e-15)
        assert tp_b.dphi_dphi == pytest.approx(tp_a.dphi_dphi, rel=1e-15)


def test_homogeneous_critical_point_of_expression_is_exact():
    assert mf.critical_point("Max(0,x)", 3.0) == mf.critical_point("relu", 3.0) == (pytest.approx(2**0.5, rel=1e-15), 0.0)


def test_two_slope_moments_vs_definition():
    """abs(x) and 2*x, closed forms: E φ² = q (a² + b²)/2 with slopes a (x > 0), b (x < 0); checked by quadrature of
    the definition (meanfield.expect with a kink at 0)."""
    for e, fn in [("abs(x)", np.abs), ("2*x", lambda u: 2 * u), ("Max(0, x) - 3*Min(0, x)", lambda u: np.where(u > 0, u, -3 * u))]:
        act = mf.get_activation(e)
        assert act.is_homogeneous and act.closed_form == "homogeneous"
        for q in (0.3, 7.0):
            m = mf.gaussian_moments(act, q)
            ref = mf.expect(lambda u: fn(u) ** 2, q, kinks=(0.0,))
            assert m.phi2 == pytest.approx(ref.value, rel=1e-13)


@pytest.mark.parametrize(
    "expr", ["Max(0, x)**2", "Max(0, x) + 1e-9*sin(x)", "Max(0, x - 1e-12)", "tanh(x)", "x + 1e-300", "Abs(x)*x"]
)
def test_not_homogeneous(expr):
    act = mf.get_activation(expr)
    assert not act.is_homogeneous
    assert act.closed_form is None


# ------------------------------------------------------------------------------------------------------ shipped tables
def _tabulated():
    from meanfield.activations import REGISTRY

    return [n for n in REGISTRY if not get_activation(n).kernels.CLOSED_ONEPOINT]


def test_every_named_table_is_shipped_for_the_current_code():
    # the shipped tables are keyed by the kernel source, the table builder and the quadrature: an edit of any of them
    # needs `make tables` (this fails until then), and no table of an old key is left behind
    from meanfield.activations import SHIPPED_TABLES, shipped_table_path

    names = _tabulated()
    assert len(names) >= 6
    want = {shipped_table_path(get_activation(n).kernels) for n in names}
    assert set(SHIPPED_TABLES.glob("*.npz")) == want, "shipped tables out of date: run `make tables`"
    for n in names:
        with np.load(shipped_table_path(get_activation(n).kernels)) as f:
            assert str(f["name"]) == n


@pytest.mark.parametrize("name", ["tanh", "gelu"])
def test_shipped_table_is_the_table_built_now(name):
    from meanfield._table import build_table
    from meanfield.activations import shipped_table_path

    k = get_activation(name).kernels
    tab, err, valid = build_table(k)
    with np.load(shipped_table_path(k)) as f:
        np.testing.assert_array_equal(f["valid"], valid)
        assert np.array_equal(np.isnan(f["tab"]), np.isnan(tab))
        np.testing.assert_allclose(f["tab"], tab, rtol=1e-13, atol=1e-15 * np.nanmax(np.abs(tab)))
        np.testing.assert_allclose(f["err"], err, rtol=1e-6)


def test_a_cached_or_shipped_table_is_what_the_activation_uses(tmp_path, monkeypatch):
    # a fresh activation object reads the shipped table (no build) when its cache holds none
    from meanfield import _table, activations
    from meanfield.activations import shipped_table_path

    k = get_activation("tanh").kernels
    act = activations.Activation(**{f: getattr(get_activation("tanh"), f)
                                    for f in ("name", "source", "kinks", "jumps", "closed_form", "params",
                                              "_bodies", "_closed_param")})
    monkeypatch.setattr(activations, "_read_table", lambda p, real=activations._read_table: (
        real(p) if p == shipped_table_path(k) else None))
    monkeypatch.setattr(activations, "build_table", lambda k: pytest.fail("built a table that ships"))
    with np.load(shipped_table_path(k)) as f:
        np.testing.assert_array_equal(act.table, f["tab"])
    assert _table.VERSION == activations.TABLE_VERSION


def test_beyond_table_path_runs_as_plain_python():
    # the @overload dispatch between the checked rule and the table-only variant has a Python body for
    # NUMBA_DISABLE_JIT=1: q = 1e8 lies beyond the moment table (the direct rule), and the values equal the compiled ones
    code = ("import meanfield as mf; r = mf.propagate('tanh', 3.0, 0.5, 3, q0=1e8); "
            "print(repr(float(r.q[2])), repr(float(r.chi[2])))")
    import os

    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    q, chi = (float(v) for v in out.stdout.split())
    r = mf.propagate("tanh", 3.0, 0.5, 3, q0=1e8)
    assert q == pytest.approx(float(r.q[2]), rel=1e-12)
    assert chi == pytest.approx(float(r.chi[2]), rel=1e-12)
