"""Symbolic side of the activations (sympy is imported here only): parsing, derivatives, code generation, kinks."""

from __future__ import annotations

import sympy as sp
from sympy.parsing.sympy_parser import TokenError
from sympy.printing.pycode import PythonCodePrinter

from meanfield.errors import UnknownActivationError

X = sp.Symbol("x", real=True)


class _NumbaPrinter(PythonCodePrinter):
    """Prints sympy expressions as scalar Python that Numba compiles (``math`` functions, ``max``/``min``)."""

    def _print_Heaviside(self, expr):
        return f"(1.0 if ({self._print(expr.args[0])}) > 0 else 0.0)"

    def _print_DiracDelta(self, expr):
        return "0.0"  # derivatives are taken almost everywhere; the kinks are handled by the quadrature

    def _print_sign(self, expr):
        a = self._print(expr.args[0])
        return f"(0.0 if ({a}) == 0 else math.copysign(1.0, {a}))"

    def _print_Max(self, expr):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"max({out}, {a})"
        return out

    def _print_Min(self, expr):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"min({out}, {a})"
        return out

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return repr(float(expr))


def _body(expr: sp.Expr) -> str:
    printer = _NumbaPrinter({"fully_qualified_modules": True, "standard": "python3"})
    return "return " + printer.doprint(expr)


def _find_kinks(expr: sp.Expr) -> tuple[float, ...]:
    """Real points where a non-smooth piece of ``expr`` switches (Abs, sign, Heaviside, Max, Min, Piecewise)."""
    switches = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Abs, sp.sign, sp.Heaviside)):
            switches.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            args = node.args
            switches += [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    switches.append(cond.lhs - cond.rhs)
    kinks = set()
    for s in switches:
        if not s.has(X):
            continue
        try:
            sol = sp.solveset(sp.Eq(s, 0), X, domain=sp.S.Reals)
        except Exception:  # pragma: no cover - sympy could not solve: no kink recorded
            continue
        if isinstance(sol, sp.FiniteSet):
            kinks.update(float(v) for v in sol if v.is_real)
    return tuple(sorted(kinks))


_NAMESPACE = None


def parse(text: str) -> sp.Expr:
    """A sympy expression in the real symbol x from a string (``relu``, ``sigmoid``, ``max``/``min``/``abs`` allowed)."""
    ns = {
        "x": X,
        "relu": lambda e: sp.Max(0, e),
        "sigmoid": lambda e: 1 / (1 + sp.exp(-e)),
        "max": sp.Max,
        "min": sp.Min,
        "abs": sp.Abs,
        "pi": sp.pi,
        "E": sp.E,
    }
    try:
        expr = sp.sympify(text, locals=ns)
    except (sp.SympifyError, SyntaxError, TypeError, AttributeError, TokenError) as exc:
        raise UnknownActivationError(
            f"activation {text!r} is not a registered name and does not parse as an expression in x: {exc}"
        ) from None
    return as_expression(expr, text)


def as_expression(expr, name: str) -> sp.Expr:
    """Check that ``expr`` is a sympy expression whose only free symbol is x (any assumptions), in the real x."""
    if not isinstance(expr, sp.Expr):
        raise UnknownActivationError(f"activation {name!r} is not an expression in x")
    xs = [s for s in expr.free_symbols if s.name == "x"]
    expr = expr.subs({s: X for s in xs})
    others = sorted(s.name for s in expr.free_symbols if s != X)
    if others:
        raise UnknownActivationError(
            f"activation expression {name!r} has free symbols {others}; only x is allowed"
            " (substitute numbers for parameters)"
        )
    return expr


def analyse(expr: sp.Expr, name: str):
    """(source, Numba bodies of φ, φ', φ'', kinks) of an expression in x."""
    d1 = sp.diff(expr, X)
    d2 = sp.diff(d1, X)
    try:
        bodies = (_body(expr), _body(d1), _body(d2))
    except Exception as exc:  # sympy has no scalar-Python printer for it (gamma, floor, Ei, ...)
        raise UnknownActivationError(
            f"activation expression {name!r} uses a function that cannot be compiled ({type(exc).__name__}: {exc}); "
            "use elementary functions, erf, Max/Min/Abs/Heaviside/Piecewise"
        ) from None
    return sp.srepr(expr), bodies, _find_kinks(expr)
