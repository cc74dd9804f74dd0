"""Bad input anywhere in the public API gets a clear error naming the argument (issue 12, acceptance "bad input
anywhere"): NaN, inf, negative, zero, wrong type, empty, mismatched shapes, unknown names, malformed expressions,
depth 0 or 1.5. Each case must raise InvalidParameterError (UnknownActivationError for activations) whose message names
the argument. The command line's side is in tests/test_cli.py (exit 2, one line naming the argument).

Cases the library does not handle yet are listed in KNOWN with the reason: strict xfails, so each flips to a failure
when its owner fixes it (then delete its line here).
"""

import inspect
import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.errors import InvalidParameterError, UnknownActivationError

NAN, INF = math.nan, math.inf
# Bad values by what an argument is
NOT_REAL = [NAN, INF, -INF, "abc", None, 1j]
BAD = {
    "positive": NOT_REAL + [0.0, -1.0, [1.0, -1.0]],
    "nonnegative": NOT_REAL + [-0.5, [0.5, NAN]],
    "sigma": NOT_REAL + [0.0, -1.0, [1.0, -1.0], 1e300],  # standard deviations: σ² must be finite too
    "sigma0": NOT_REAL + [-0.5, [0.5, NAN], [0.5, 1e155]],
    "correlation": NOT_REAL + [1.5, -2.0],
    "real": NOT_REAL,
    "probability": NOT_REAL + [0.0, -0.5, 1.5],
    "count": [0, -1, 1.5, NAN, INF, "3", None, [2, 3]],  # integers ≥ 1 (depth, width, ...)
    "count0": [-1, 2.5, NAN, "2", None],  # integers ≥ 0 (moment order)
    "weights": ["uniform", "", None, 1],
    "flag": ["yes", None, 2],
    "grid": [[], [NAN, 1.0], [1.0, INF], "abc", None],
    "callable": ["tanh", None, 3.0],
}
BAD["positive_or_none"] = [v for v in BAD["positive"] if v is not None]  # None: the default
BAD["count_or_none"] = [v for v in BAD["count"] if v is not None]
BAD["weights_or_none"] = [v for v in BAD["weights"] if v is not None]  # None: the default (or the Network's)
BAD["flag_or_none"] = [v for v in BAD["flag"] if v is not None]
BAD["depths"] = [v for v in BAD["count"] if not isinstance(v, list)] + [[2, 0], [3, 1.5]]  # [vec] depths
BAD["moment"] = BAD["count0"] + [9]  # exact moments k ≤ 8
BAD["depth0"] = [-1, 1.5, NAN, "2"]  # integers ≥ 0 (kernels: depth 0 is the readout alone)
BAD["inputs"] = [[], [[NAN, 1.0, 0.0]], [[1.0, INF, 0.0]], "abc", np.ones((2, 3, 2))]  # (n, N_0) rows
BAD["inputs2"] = BAD["inputs"] + [np.ones((2, 4))]  # also a width other than X's
BAD["targets"] = [[1.0], [NAN, 1.0], "abc", [[1.0, 2.0, 3.0]]]  # y_train of two training points
BAD["kernel"] = [[[1.0, 0.5]], [[NAN, 0.5], [0.5, 1.0]], "abc", []]  # a 2 × 2 train-train kernel
BAD["time"] = [-1.0, NAN, "abc"]
BAD_ACTIVATIONS = ["nosuch", "x**", "tanh(y)", "", "x +* 2", 123, None]


def _start(func):
    """The keyword of the length-map iteration's start (q_init; q0 before the rename)."""
    return "q_init" if "q_init" in inspect.signature(func).parameters else "q0"


SW, SB = 1.5, 0.25
_MADE = {}


def _jacobian():
    if "j" not in _MADE:
        _MADE["j"] = mf.jacobian_spectrum("tanh", SW, SB, 3)
    return _MADE["j"]


def _conditional():
    if "c" not in _MADE:
        _MADE["c"] = mf.conditional_fisher_spectrum("tanh", SW, SB, 3, 16)
    return _MADE["c"]

# function, valid keyword arguments, {argument: kind}
API = {
    "gaussian_moments": (mf.gaussian_moments, dict(phi="tanh", q=1.0), dict(q="positive")),
    "two_point": (mf.two_point, dict(phi="tanh", q11=1.0, q22=2.0, q12=0.5),
                  dict(q11="positive", q22="positive", q12="real")),
    "expect": (mf.expect, dict(f=np.square, q=1.0), dict(q="positive", f="callable")),
    "expect2": (mf.expect2, dict(f=np.tanh, g=np.tanh, q11=1.0, q22=1.0, q12=0.5),
                dict(q11="positive", q22="positive", q12="real", f="callable", g="callable")),
    "q_map": (mf.q_map, dict(phi="tanh", q=1.0, sigma_w=SW, sigma_b=SB),
              dict(q="positive", sigma_w="sigma", sigma_b="sigma0")),
    "c_map": (mf.c_map, dict(phi="tanh", c=0.5, q=1.0, sigma_w=SW, sigma_b=SB),
              dict(c="correlation", q="positive", sigma_w="sigma", sigma_b="sigma0")),
    **{
        name: (getattr(mf, name), dict(phi="tanh", sigma_w=SW, sigma_b=SB, **{_start(getattr(mf, name)): 1.0}),
               dict(sigma_w="sigma", sigma_b="sigma0", **{_start(getattr(mf, name)): "positive"}))
        for name in ("q_star", "chi1", "c_star", "fixed_point")
    },
    "propagate": (mf.propagate, dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=3, q0=1.0, c0=0.5),
                  dict(sigma_w="sigma", sigma_b="sigma0", depth="count", q0="positive", c0="correlation")),
    "critical_sigma_w": (mf.critical_sigma_w, dict(phi="tanh", sigma_b=SB), dict(sigma_b="sigma0")),
    "critical_sigma_b": (mf.critical_sigma_b, dict(phi="tanh", sigma_w=SW), dict(sigma_w="sigma")),
    "critical_point": (mf.critical_point, dict(phi="tanh", q_star=1.0), dict(q_star="positive")),
    "critical_line": (mf.critical_line, dict(phi="tanh", q_star=1.0), dict(q_star="positive")),
    "phase_diagram": (mf.phase_diagram, dict(phi="tanh", sigma_w_grid=[1.0, 1.5], sigma_b_grid=[0.0, 0.5]),
                      dict(sigma_w_grid="grid", sigma_b_grid="grid")),
    "jacobian_spectrum": (mf.jacobian_spectrum, dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=3),
                          dict(sigma_w="sigma", sigma_b="sigma0", depth="count", weights="weights_or_none",
                               q0="positive_or_none")),
    "fisher_statistics": (mf.fisher_statistics,
                          dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=3, width=16, n_samples=4),
                          dict(sigma_w="sigma", sigma_b="sigma0", depth="depths", width="count",
                               n_samples="count", n_outputs="count_or_none", input_width="count_or_none",
                               input_norm="positive",
                               input_correlation="correlation", biases="flag_or_none", weights="weights_or_none")),
    "conditional_fisher_spectrum": (mf.conditional_fisher_spectrum,
                                    dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=3, width=16),
                                    dict(sigma_w="sigma", sigma_b="sigma0", depth="count", width="count",
                                         weights="weights_or_none", input_norm="positive", biases="flag_or_none")),
    "sokol_park_bound": (mf.sokol_park_bound, dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=3, width=16),
                         dict(sigma_w="sigma", sigma_b="sigma0", depth="count", width="count",
                              weights="weights_or_none", input_norm="positive", hessian_max="nonnegative",
                              biases="flag_or_none")),
    "fuss_catalan_moment": (mf.fuss_catalan_moment, dict(k=2, depth=3), dict(k="count0", depth="count")),
    "fuss_catalan_edge": (mf.fuss_catalan_edge, dict(depth=3), dict(depth="count")),
    "fuss_catalan_density": (mf.fuss_catalan_density, dict(x=1.0, depth=3), dict(x="real", depth="count")),
    "marchenko_pastur_density": (mf.marchenko_pastur_density, dict(x=1.0), dict(x="real")),
    "bernoulli_edge": (mf.bernoulli_edge, dict(p=0.5, depth=3), dict(p="probability", depth="count",
                                                                     weights="weights")),
    "get_activation": (lambda phi: mf.get_activation(phi), dict(phi="tanh"), {}),
    "fixed_points": (mf.fixed_points, dict(phi="tanh", sigma_w=SW, sigma_b=SB),
                     dict(sigma_w="sigma", sigma_b="sigma0")),
    "kernels": (mf.kernels, dict(phi="tanh", sigma_w=SW, sigma_b=SB, depth=2, X=np.eye(3)[:2], X2=np.eye(3)),
                dict(sigma_w="sigma", sigma_b="sigma0", depth="depth0", X="inputs", X2="inputs2",
                     parameterization="weights")),
    "predict": (mf.predict, dict(k_train_train=np.array([[1.0, 0.5], [0.5, 1.0]]), k_test_train=np.array([[0.5, 0.5]]),
                                 y_train=np.array([1.0, -1.0])),
                dict(k_train_train="kernel", y_train="targets", t="time", diag_reg="time")),
    "JacobianSpectrum.moment": (lambda k: _jacobian().moment(k), dict(k=2), dict(k="moment")),
    "JacobianSpectrum.density": (lambda x: _jacobian().density(x), dict(x=0.5), dict(x="real")),
    "ConditionalFisherSpectrum.density": (lambda x: _conditional().density(x), dict(x=0.5), dict(x="real")),
}

# Arrays of mismatched shapes for the broadcasting [vec] functions
MISMATCHED = {
    "q_map": dict(q=[1.0, 2.0], sigma_w=[1.0, 1.5, 2.0]),
    "c_map": dict(c=[0.1, 0.2], q=[1.0, 2.0, 3.0]),
    "q_star": dict(sigma_w=[1.0, 1.5], sigma_b=[0.1, 0.2, 0.3]),
    "chi1": dict(sigma_w=[1.0, 1.5], sigma_b=[0.1, 0.2, 0.3]),
    "c_star": dict(sigma_w=[1.0, 1.5], sigma_b=[0.1, 0.2, 0.3]),
    "two_point": dict(q11=[1.0, 2.0], q22=[1.0, 2.0, 3.0]),
    "expect2": dict(q11=[1.0, 2.0], q22=[1.0, 2.0, 3.0]),
}

def _label(v):
    return repr(v) if not isinstance(v, list) else "[" + ",".join(map(repr, v)) + "]"


# Known failures: case id -> what happens instead (owner of the function in parentheses)
_NOT_CALLABLE = "TypeError '... object is not callable' from inside the rule, not naming the argument (gaussian.py)"
_SHAPES = "numpy's ValueError 'shape mismatch' without the arguments' names (meanfield._validate.broadcast names them)"
KNOWN: dict = {}  # every case above raises a clear error naming its argument


def _cases():
    out = []
    for fname, (func, base, args) in API.items():
        for arg, kind in args.items():
            for bad in BAD[kind]:
                out.append((f"{fname}-{arg}={_label(bad)}", fname, {arg: bad}, arg))
        if "phi" in base:
            for bad in BAD_ACTIVATIONS:
                out.append((f"{fname}-phi={_label(bad)}", fname, {"phi": bad}, "activation"))
    for fname, kw in MISMATCHED.items():
        out.append((f"{fname}-shapes", fname, kw, list(kw)))
    return out


CASES = _cases()


def _param(case_id, fname, kw, named):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[case_id])] if case_id in KNOWN else []
    return pytest.param(fname, kw, named, id=case_id, marks=marks)


@pytest.mark.parametrize("fname, kw, named", [_param(*c) for c in CASES])
def test_bad_input_is_a_clear_error(fname, kw, named):
    func, base, _ = API[fname]
    with pytest.raises((InvalidParameterError, UnknownActivationError)) as info:
        func(**{**base, **kw})
    msg = str(info.value)
    for name in [named] if isinstance(named, str) else named:
        assert name in msg, msg


@pytest.mark.parametrize("fname", sorted(API))
def test_the_valid_base_call_works(fname):
    """The cases above change one argument of a call that is itself fine."""
    func, base, _ = API[fname]
    func(**base)


def test_known_failures_are_cases():
    ids = {c[0] for c in CASES}
    assert set(KNOWN) <= ids, set(KNOWN) - ids


# ------------------------------------------------------------------------------------------------ the command line
def _cli_numeric_options():
    """(command, option) for every option of the computing commands that takes a number, read from the parser."""
    import argparse

    from meanfield import cli

    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    numeric = (cli.STD, cli.STD_POSITIVE, cli.VAR, cli.VAR_POSITIVE, cli._grid_size)
    out = []
    for command in ("critical", "fixed-point", "phase-diagram"):
        for action in sub.choices[command]._actions:
            if action.option_strings and action.type in numeric:
                out.append((command, action.option_strings[-1] if action.option_strings[0] == "-n"
                            else action.option_strings[0]))
    return out


def _cli_argv(command, option, value):
    """A call that is fine but for ``option value``."""
    others = []
    if command == "fixed-point":
        if not option.startswith("--sigma-w"):
            others += ["--sigma-w", "1.5"]
        if not option.startswith("--sigma-b"):
            others += ["--sigma-b", "0.25"]
    if command == "critical" and option not in ("--sigma-b", "--sigma-b2", "--sigma-w", "--sigma-w2", "--q-star"):
        others += ["--sigma-b", "0.25"]
    return [command, "tanh", *others, option, value]


CLI_BAD_NUMBERS = ["nan", "inf", "-inf", "abc", "-1", "", "1e999"]


@pytest.mark.parametrize("command, option", _cli_numeric_options())
def test_cli_bad_numbers_exit_2_naming_the_option(capsys, command, option):
    from meanfield.cli import main

    for value in CLI_BAD_NUMBERS:
        assert main(_cli_argv(command, option, value)) == 2, value
        err = capsys.readouterr().err
        last = err.rstrip("\n").split("\n")[-1]
        assert "Traceback" not in err and f"usage: meanfield {command}" in err
        assert last.startswith(f"meanfield {command}: error: argument ") and option in last, (value, last)


@pytest.mark.parametrize("command", ["critical", "fixed-point", "phase-diagram"])
@pytest.mark.parametrize("name", [n for n in BAD_ACTIVATIONS if isinstance(n, str)])
def test_cli_bad_activation_exits_2(capsys, command, name):
    from meanfield.cli import main

    argv = _cli_argv(command, "--sigma-b" if command != "phase-diagram" else "-n", "0.25" if command != "phase-diagram"
                     else "3")
    argv[1] = name
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]
    assert "Traceback" not in err and last.startswith(f"meanfield {command}: error: argument activation")


# ------------------------------------------------------------------------------------------ what the messages call things
@pytest.mark.parametrize(
    "call, says",
    [
        (lambda: mf.q_star("tanh", 0.0, 0.1), "sigma_w must be > 0 (a standard deviation)"),
        (lambda: mf.q_star("tanh", 1.0, -0.1), "sigma_b must be ≥ 0 (a standard deviation)"),
        (lambda: mf.q_star("tanh", 1e200, 0.1), "sigma_w must be ≤ 1.341e+154 (a standard deviation whose square"),
        (lambda: mf.q_map("tanh", -1.0, 1.0, 0.1), "q must be > 0 (a variance)"),
        (lambda: mf.critical_point("tanh", 0.0), "q_star must be > 0 (a variance"),
        (lambda: mf.propagate("tanh", 1.0, 0.1, 3, q0=0.0), "q0 must be > 0 (a variance or squared length"),
        (lambda: mf.gaussian_moments("tanh", [1.0, -2.0]), "q must be > 0 (a variance), got -2.0"),
        (lambda: mf.fisher_statistics("tanh", 1.0, 0.1, 3, 16, 4, input_norm=-1.0),
         "input_norm must be > 0 (a squared length |x|²/N_0)"),
    ],
)
def test_messages_say_standard_deviation_or_variance(call, says):
    """σ's are standard deviations, q's variances (issue 12 item 4, issue 15 item 3): never the other way round."""
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert says in str(info.value)
    if not says.startswith("sigma"):
        assert "standard deviation" not in str(info.value)


def test_validation_helpers_name_their_arguments():
    from meanfield import _validate

    with pytest.raises(InvalidParameterError, match=r"q \(2,\), sigma_w \(3,\)"):
        _validate.broadcast(q=np.ones(2), sigma_w=np.ones(3))
    a, b = _validate.broadcast(q=np.ones((2, 1)), sigma_w=np.ones(3))
    assert a.shape == b.shape == (2, 3)
    with pytest.raises(InvalidParameterError, match="sigma_w_grid must not be empty"):
        _validate.nonempty(np.array([]), "sigma_w_grid")
    assert _validate.positive(2.0, "p", kind="a probability").item() == 2.0
    with pytest.raises(InvalidParameterError, match=r"^p must be > 0 \(a probability\), got -1.0$"):
        _validate.positive(-1.0, "p", kind="a probability")
    with pytest.raises(InvalidParameterError, match=r"^hessian_max must be ≥ 0, got -1.0$"):
        _validate.nonnegative(-1.0, "hessian_max")


@pytest.mark.parametrize("value", ["1.0", True, np.bool_(True), [1.0, "2"], 1 + 0j])
@pytest.mark.parametrize("call", [
    lambda v: mf.q_star("tanh", v, 0.1),
    lambda v: mf.q_star("tanh", 1.0, v),
    lambda v: mf.fixed_point("tanh", v, 0.1),
    lambda v: mf.critical_point("tanh", v),
    lambda v: mf.jacobian_spectrum("tanh", v, 0.1, depth=2),
], ids=["q_star sigma_w", "q_star sigma_b", "fixed_point", "critical_point", "jacobian_spectrum"])
def test_numbers_given_as_strings_or_booleans_are_refused(call, value):
    """'1.0' and True used to be converted silently (q_star('tanh', '1.0', 0.1) returned 0.0778)."""
    with pytest.raises(mf.InvalidParameterError, match="real number"):
        call(value)
