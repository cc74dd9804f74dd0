"""Result objects: they record their inputs, serialise to plain data and strict JSON and back, and print a readable
summary (issue 15 item 6)."""

import dataclasses
import json
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.results import Result

# One fast call per result class, with round inputs. The values are checked by the modules' own tests; here only
# what the serialisation layer promises.
MAKERS = {
    "FixedPoint": lambda: mf.fixed_point("tanh", 1.5, 0.25),
    "Trajectory": lambda: mf.propagate("erf", 1.25, 0.5, 4),
    "PhaseDiagram": lambda: mf.phase_diagram("relu", [1.0, 1.25, 2.0], [0.0, 0.5], correlations=False),
    "GaussianMoments": lambda: mf.gaussian_moments("tanh", [0.5, 1.0, 4.0]),
    "Estimate": lambda: mf.expect(lambda u: u * u, 2.0),
    "TwoPoint": lambda: mf.two_point("erf", 1.0, 2.0, 0.5),
    "JacobianSpectrum": lambda: mf.jacobian_spectrum("tanh", 1.25, 0.125, 4),
    "FisherStatistics": lambda: mf.fisher_statistics("tanh", 1.5, 0.25, 3, 64, 8),
    "ConditionalFisherSpectrum": lambda: mf.conditional_fisher_spectrum("erf", 1.25, 0.25, 3, 64),
    "SokolParkBound": lambda: mf.sokol_park_bound("erf", 1.25, 0.25, 3, 64),
    "CriticalLine": lambda: mf.critical_line("tanh", [0.25, 1.0, 4.0]),
    "FixedPoints": lambda: mf.fixed_points("gelu", 1.5, 0.25),
}
# Their methods need solver state that is not serialised: written, not rebuilt
NOT_REBUILT = {"JacobianSpectrum", "ConditionalFisherSpectrum"}
# Which inputs each result must record (issue 15 item 6)
INPUTS = {
    "FixedPoint": dict(activation="tanh", sigma_w=1.5, sigma_b=0.25),
    "Trajectory": dict(activation="erf", sigma_w=1.25, sigma_b=0.5),
    "PhaseDiagram": dict(activation="relu"),
    "GaussianMoments": dict(activation="tanh"),
    "TwoPoint": dict(),
    "Estimate": dict(),
    "JacobianSpectrum": dict(activation="tanh", sigma_w=1.25, sigma_b=0.125, depth=4, weights="orthogonal"),
    "FisherStatistics": dict(activation="tanh", sigma_w=1.5, sigma_b=0.25, depth=3, width=64, n_samples=8),
    "ConditionalFisherSpectrum": dict(activation="erf", sigma_w=1.25, sigma_b=0.25, depth=3, width=64),
    "SokolParkBound": dict(activation="erf", sigma_w=1.25, sigma_b=0.25, depth=3, width=64),
    "CriticalLine": dict(activation="tanh"),
    "FixedPoints": dict(activation="gelu", sigma_w=1.5, sigma_b=0.25),
}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def made(request):
    return request.param, MAKERS[request.param]()


def _public(obj):
    return [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]


def _assert_plain(value, where="result"):
    """Only JSON's types (dict with str keys, list, str, int, float, bool, None) inside ``value``."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), where
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), (where, type(value))


def _strict_json(text):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_every_public_result_class_has_the_serialisation_layer():
    for name in MAKERS:
        assert issubclass(getattr(mf, name), Result), name
    # every frozen result the package exports, also those added later (not: descriptions of inputs, items)
    inputs_or_items = {"Activation", "Network", "LengthFixedPoint"}
    for name in mf.__all__:
        obj = getattr(mf, name)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and name not in inputs_or_items:
            assert issubclass(obj, Result), name


def test_to_dict_is_plain_data_of_the_public_fields(made):
    name, r = made
    d = r.to_dict()
    assert list(d) == _public(r)
    _assert_plain(d, name)
    for k, v in d.items():  # arrays become nested lists of the same values
        original = getattr(r, k)
        if isinstance(original, np.ndarray):
            np.testing.assert_array_equal(np.asarray(v), original)


def test_json_round_trip(made):
    name, r = made
    text = r.to_json()
    parsed = _strict_json(text)
    assert list(parsed) == _public(r)
    if name in NOT_REBUILT:
        with pytest.raises(TypeError, match="cannot be rebuilt"):
            type(r).from_json(text)
        return
    back = type(r).from_json(text)
    assert type(back) is type(r)
    for k in _public(r):
        a, b = getattr(r, k), getattr(back, k)
        np.testing.assert_equal(b, a, err_msg=f"{name}.{k}")
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and b.shape == a.shape and b.dtype.kind == a.dtype.kind, (name, k)
        else:
            assert type(b) is type(a) or (isinstance(a, float) and isinstance(b, float)), (name, k, type(a), type(b))
    np.testing.assert_equal(type(r).from_dict(r.to_dict()).to_dict(), r.to_dict())


def test_results_know_their_inputs(made):
    name, r = made
    for k, v in INPUTS[name].items():
        assert getattr(r, k) == v, (name, k)


def test_summary_is_readable(made):
    name, r = made
    text = str(r)
    lines = text.split("\n")
    assert lines[0].startswith(name + "(")
    n_head = 1 + next(i for i, line in enumerate(lines) if line.endswith(")"))  # the inputs, wrapped
    head = " ".join(lines[:n_head])
    for k in INPUTS[name]:
        assert f"{k}=" in head, (name, k)
    for k in _public(r):  # every other field on a line of its own
        assert any(line.split()[:1] == [k] for line in lines[n_head:]) or f" {k}=" in head or f"({k}=" in head, k
    assert len(lines) <= len(_public(r)) + 2 and max(map(len, lines)) <= 100
    assert "array(" not in text and "dtype" not in text


def test_non_finite_values_are_encoded_as_strings():
    """ReLU with σ_w² = 4 > 2 has no finite fixed point (THEORY §1): q* = inf and χ_1 = NaN in the phase diagram."""
    pd = MAKERS["PhaseDiagram"]()
    assert np.isinf(pd.q_star[2, 1]) and np.isnan(pd.chi1[2, 1])
    text = pd.to_json()
    assert "Infinity" not in text and "NaN" not in text
    parsed = _strict_json(text)
    assert parsed["q_star"][2][1] == "inf" and parsed["chi1"][2][1] == "nan"
    back = mf.PhaseDiagram.from_json(text)
    assert back.q_star.dtype == np.float64 and math.isinf(back.q_star[2, 1]) and math.isnan(back.chi1[2, 1])
    assert back.diverges[2, 1] and back.q_star[0, 1] == pytest.approx(0.25 / 0.5, rel=1e-12)  # σ_b²/(1 - σ_w²/2)
    fp = dataclasses.replace(MAKERS["FixedPoint"](), xi_q=math.inf, xi_c=-math.inf, c_star=math.nan)
    d = _strict_json(fp.to_json())
    assert (d["xi_q"], d["xi_c"], d["c_star"]) == ("inf", "-inf", "nan")
    back = mf.FixedPoint.from_json(fp.to_json())
    assert back.xi_q == math.inf and back.xi_c == -math.inf and math.isnan(back.c_star)
    assert back.phase == fp.phase and back.q_star == fp.q_star


def test_from_dict_refuses_unknown_fields():
    d = MAKERS["FixedPoint"]().to_dict()
    d["nosuch"] = 1.0
    with pytest.raises(TypeError, match="nosuch"):
        mf.FixedPoint.from_dict(d)


def test_to_json_takes_json_dumps_options():
    tr = MAKERS["Trajectory"]()
    assert tr.to_json(indent=2).count("\n") > 5
    assert _strict_json(tr.to_json(indent=2)) == _strict_json(tr.to_json())
