"""φ and φ' as PyTorch functions, for every activation that :func:`meanfield.activations.get_activation` accepts.

Registry activations map to native torch operations (``torch.tanh``, ``F.relu``, ``F.gelu`` in its exact erf form, …) with
hand-written derivatives; an expression in ``x`` is printed from its sympy form (φ and φ' = dφ/dx by sympy) into a small
torch function. Conventions match the Numba kernels of :mod:`meanfield.activations` exactly, kinks included: φ' takes its
right-open value at a kink (``relu'(0) = 0``, ``hard_tanh'(±1) = 0``, ``Heaviside(0) = 0``), and the tests check both against
``Activation.phi`` / ``Activation.dphi`` to 1e-12 in float64.

Every function preserves the dtype and device of its argument.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Callable

import sympy as sp
import torch
import torch.nn.functional as F
from sympy.printing.pycode import PythonCodePrinter

from meanfield.activations import X, Activation, get_activation
from meanfield.errors import UnknownActivationError

__all__ = ["TorchActivation", "torch_activation"]

Tensor = torch.Tensor

_SQRT_2_OVER_PI = 2.0 / math.sqrt(math.pi)  # erf'(x) = (2/√π) e^{-x²}
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# torch's F.selu constants are these (Klambauer et al. 2017, "Self-normalizing neural networks"); meanfield has the
# same digits
_SELU_LAMBDA = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


@dataclass(frozen=True, eq=False)
class TorchActivation:
    """φ and φ' of an :class:`~meanfield.activations.Activation` as torch functions.

    Attributes
    ----------
    activation : the meanfield activation it was built from (its ``expr`` is the definition).
    phi : ``phi(h) -> φ(h)`` elementwise.
    dphi : ``dphi(h) -> φ'(h)`` elementwise (the right-open value at kinks, as in meanfield).
    phi_and_dphi : ``(φ(h), φ'(h))`` sharing work where possible (tanh, sigmoid, …).
    native : True where φ is a native torch operation, False for a printed sympy expression.
    """

    activation: Activation
    phi: Callable[[Tensor], Tensor]
    dphi: Callable[[Tensor], Tensor]
    phi_and_dphi: Callable[[Tensor], tuple[Tensor, Tensor]]
    native: bool

    @property
    def name(self) -> str:
        return self.activation.name

    def __call__(self, h: Tensor) -> Tensor:
        return self.phi(h)

    def __repr__(self):
        return f"TorchActivation({self.name!r}, native={self.native})"


# ------------------------------------------------------------------------------------------------- native operations
def _ones(h):
    return torch.ones_like(h)


def _step(h):
    """1 for h > 0, else 0 (the derivative convention of the meanfield kernels)."""
    return (h > 0).to(h.dtype)


def _sigmoid_dphi(h):
    # σ(h)σ(-h) keeps its relative accuracy in both tails, unlike σ(1-σ)
    return torch.sigmoid(h) * torch.sigmoid(-h)


def _softplus(h):
    # torch's F.softplus switches to the identity above its threshold (error e^{-20} ≈ 2e-9): use the exact stable form
    return torch.clamp_min(h, 0.0) + torch.log1p(torch.exp(-torch.abs(h)))


def _gelu_dphi(h):
    return 0.5 * (1.0 + torch.erf(_INV_SQRT_2 * h)) + _INV_SQRT_2PI * h * torch.exp(-0.5 * h * h)


def _silu_dphi(h):
    s = torch.sigmoid(h)
    return s * (1.0 + h * (1.0 - s))


def _tanh_both(h):
    y = torch.tanh(h)
    return y, 1.0 - y * y


def _sigmoid_both(h):
    y = torch.sigmoid(h)
    return y, y * torch.sigmoid(-h)


def _param_from_expr(act: Activation, at: float, scale: float) -> float:
    """A family parameter recovered from the expression (the single definition): φ(at)/scale."""
    return float(act.expr.subs(X, at)) / scale


def _native(act: Activation):
    """(phi, dphi, phi_and_dphi) for a registry activation, or None."""
    name = act.name
    if name == "tanh":
        return torch.tanh, lambda h: 1.0 - torch.tanh(h) ** 2, _tanh_both
    if name == "relu":
        return F.relu, _step, None
    if name == "leaky_relu":
        a = -_param_from_expr(act, -1.0, 1.0)  # φ(-1) = -a

        def dphi(h, a=a):
            return torch.where(h > 0, torch.ones_like(h), torch.full_like(h, a))

        return (lambda h, a=a: F.leaky_relu(h, a)), dphi, None
    if name == "erf":
        return torch.erf, lambda h: _SQRT_2_OVER_PI * torch.exp(-h * h), None
    if name == "linear":
        return (lambda h: h), _ones, None
    if name == "hard_tanh":
        return (lambda h: F.hardtanh(h, -1.0, 1.0)), (lambda h: ((h > -1.0) & (h < 1.0)).to(h.dtype)), None
    if name == "sigmoid":
        return torch.sigmoid, _sigmoid_dphi, _sigmoid_both
    if name == "softplus":
        return _softplus, torch.sigmoid, None
    if name == "elu":
        al = _param_from_expr(act, -1.0, math.expm1(-1.0))  # φ(-1) = α(e^{-1} - 1)

        def dphi(h, al=al):
            return torch.where(h > 0, torch.ones_like(h), al * torch.exp(h))

        return (lambda h, al=al: F.elu(h, al)), dphi, None
    if name == "selu":
        lam, la = _SELU_LAMBDA, _SELU_LAMBDA * _SELU_ALPHA
        return F.selu, (lambda h: torch.where(h > 0, torch.full_like(h, lam), la * torch.exp(h))), None
    if name == "gelu":
        return (lambda h: F.gelu(h, approximate="none")), _gelu_dphi, None
    if name == "silu":
        return F.silu, _silu_dphi, None
    return None


# --------------------------------------------------------------------------------------- sympy expression → torch code
_TORCH_FUNCTIONS = {  # sympy function name -> torch template ({0}, {1}: the printed arguments as tensors)
    "exp": "torch.exp({0})",
    "log": "torch.log({0})",
    "sqrt": "torch.sqrt({0})",
    "sin": "torch.sin({0})",
    "cos": "torch.cos({0})",
    "tan": "torch.tan({0})",
    "sec": "torch.reciprocal(torch.cos({0}))",
    "csc": "torch.reciprocal(torch.sin({0}))",
    "cot": "torch.reciprocal(torch.tan({0}))",
    "asin": "torch.asin({0})",
    "acos": "torch.acos({0})",
    "atan": "torch.atan({0})",
    "acot": "torch.atan(torch.reciprocal({0}))",
    "atan2": "torch.atan2({0}, {1})",
    "sinh": "torch.sinh({0})",
    "cosh": "torch.cosh({0})",
    "tanh": "torch.tanh({0})",
    "sech": "torch.reciprocal(torch.cosh({0}))",
    "csch": "torch.reciprocal(torch.sinh({0}))",
    "coth": "torch.reciprocal(torch.tanh({0}))",
    "asec": "torch.acos(torch.reciprocal({0}))",
    "acsc": "torch.asin(torch.reciprocal({0}))",
    "asinh": "torch.asinh({0})",
    "acosh": "torch.acosh({0})",
    "atanh": "torch.atanh({0})",
    "acoth": "torch.atanh(torch.reciprocal({0}))",
    "erf": "torch.erf({0})",
    "erfc": "torch.erfc({0})",
    "erf2": "(torch.erf({1}) - torch.erf({0}))",
    "sinc": "torch.sinc({0} / math.pi)",  # sympy's sinc is sin(x)/x, torch's is sin(πx)/(πx)
    "Abs": "torch.abs({0})",
}


class _TorchPrinter(PythonCodePrinter):
    """Prints a sympy expression in ``x`` as torch code; constants stay Python floats, branches go through helpers that
    give them the dtype and device of ``x`` (``_where``, ``_max``, ``_min``, ``_step``)."""

    def _print_Symbol(self, expr):
        if expr != X:
            raise UnknownActivationError(f"free symbol {expr} in an activation expression; only x is allowed")
        return "x"

    def _print_Function(self, expr):
        name = expr.func.__name__
        if name not in _TORCH_FUNCTIONS:
            raise UnknownActivationError(
                f"function {name!r} in an activation expression has no torch translation; "
                f"supported: {', '.join(sorted(_TORCH_FUNCTIONS))}, Max, Min, sign, Heaviside, Piecewise"
            )
        args = [f"_t({self._print(a)})" for a in expr.args]
        return "(" + _TORCH_FUNCTIONS[name].format(*args) + ")"

    # every function sympy knows by name goes through _print_Function
    _print_exp = _print_log = _print_sqrt = _print_sin = _print_cos = _print_tan = _print_Function
    _print_asin = _print_acos = _print_atan = _print_sinh = _print_cosh = _print_tanh = _print_Function
    _print_asinh = _print_acosh = _print_atanh = _print_erf = _print_erfc = _print_Abs = _print_Function
    _print_sec = _print_csc = _print_cot = _print_acot = _print_atan2 = _print_sinc = _print_Function
    _print_sech = _print_csch = _print_coth = _print_asec = _print_acsc = _print_acoth = _print_erf2 = _print_Function

    def _print_Pow(self, expr, rational=False):
        base, e = expr.args
        if e == sp.S.Half:
            return f"torch.sqrt(_t({self._print(base)}))"
        if e == -sp.S.Half:
            return f"torch.rsqrt(_t({self._print(base)}))"
        return f"({self._print(base)})**({self._print(e)})"

    def _print_Heaviside(self, expr):
        return f"_step({self._print(expr.args[0])})"

    def _print_DiracDelta(self, expr):
        return "0.0"  # derivatives are taken almost everywhere, as in meanfield

    def _print_sign(self, expr):
        return f"torch.sign(_t({self._print(expr.args[0])}))"

    def _print_Max(self, expr):
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"_max({out}, {self._print(a)})"
        return out

    def _print_Min(self, expr):
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"_min({out}, {self._print(a)})"
        return out

    def _print_Piecewise(self, expr):
        pieces = list(expr.args)
        last_value, last_cond = pieces[-1]
        if last_cond != sp.true:
            raise UnknownActivationError(f"Piecewise activation {expr} needs an otherwise (True) branch")
        out = self._print(last_value)
        for value, cond in reversed(pieces[:-1]):
            out = f"_where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"(_t({self._print(expr.lhs)}) {op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"(~{self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr):
        return "_t(True)"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return repr(float(expr))

    def _print_Pi(self, expr):
        return repr(math.pi)

    def _print_Exp1(self, expr):
        return repr(math.e)

    def _print_Derivative(self, expr):
        raise UnknownActivationError(f"sympy could not differentiate the activation ({expr})")

    _print_Subs = _print_Derivative


def _compile(expr: sp.Expr, label: str) -> Callable[[Tensor], Tensor]:
    """A torch function ``f(x)`` evaluating ``expr`` elementwise with the dtype and device of ``x``."""
    code = _TorchPrinter({"fully_qualified_modules": True, "standard": "python3"}).doprint(expr)
    src = (
        "def f(x):\n"
        "    def _t(v):\n"
        "        return v if isinstance(v, torch.Tensor) else torch.full_like(x, float(v))\n"
        "    def _where(c, a, b):\n"
        "        return torch.where(_t(c).to(torch.bool), _t(a), _t(b))\n"
        "    def _max(a, b):\n"
        "        return torch.maximum(_t(a), _t(b))\n"
        "    def _min(a, b):\n"
        "        return torch.minimum(_t(a), _t(b))\n"
        "    def _step(a):\n"
        "        return (_t(a) > 0).to(x.dtype)\n"
        f"    return _t({code})\n"
    )
    ns: dict = {"torch": torch, "math": math}
    exec(compile(src, f"<activation {label}>", "exec"), ns)  # noqa: S102 - code printed from a sympy expression
    fn = ns["f"]
    probe = torch.linspace(-2.0, 2.0, 5, dtype=torch.float64)
    try:
        out = fn(probe)
    except Exception as exc:  # pragma: no cover - a printer gap
        raise UnknownActivationError(f"activation {label!r} could not be evaluated in torch: {exc}") from None
    if out.shape != probe.shape:  # pragma: no cover - defensive
        raise UnknownActivationError(f"activation {label!r} does not evaluate elementwise in torch")
    fn.__doc__ = f"{label} (printed from sympy)"
    fn.source = src
    return fn


def _from_expression(act: Activation):
    phi = _compile(act.expr, act.name)
    dphi = _compile(sp.diff(act.expr, X), f"d/dx {act.name}")
    return phi, dphi


_CACHE: "weakref.WeakKeyDictionary[Activation, TorchActivation]" = weakref.WeakKeyDictionary()


def torch_activation(spec, **params) -> TorchActivation:
    """The :class:`TorchActivation` of ``spec`` (anything :func:`meanfield.activations.get_activation` accepts).

    Registry names use native torch operations; expressions in ``x`` are printed from sympy (φ' = dφ/dx by sympy, so an
    expression's derivative has the single definition the theory uses). Cached per activation.
    """
    act = get_activation(spec, **params)
    cached = _CACHE.get(act)
    if cached is not None:
        return cached
    native = _native(act) if act.name in _NATIVE_NAMES else None
    if native is not None:
        phi, dphi, both = native
        is_native = True
    else:
        phi, dphi = _from_expression(act)
        both = None
        is_native = False
    if both is None:

        def both(h, phi=phi, dphi=dphi):
            return phi(h), dphi(h)

    out = TorchActivation(activation=act, phi=phi, dphi=dphi, phi_and_dphi=both, native=is_native)
    _CACHE[act] = out
    return out


_NATIVE_NAMES = frozenset(
    ("tanh", "relu", "leaky_relu", "erf", "linear", "hard_tanh", "sigmoid", "softplus", "elu", "selu", "gelu", "silu")
)
