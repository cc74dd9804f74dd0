"""Activation functions: φ, φ', φ'' compiled for Numba, their kinks, and closed forms where they exist.

An activation is given by name (``get_activation("tanh")``; see :data:`REGISTRY`) or as an expression in ``x``
(``"x*tanh(x)"``, ``"Max(0, x) - 0.1*Min(0, x)"`` or a sympy expression). Each :class:`Activation` carries its sympy
expression (the single definition: derivatives of expressions come from sympy, and the tests check the hand-written
derivatives of the named ones against it), its kinks (where φ' jumps or φ'' is discontinuous) and the jumps of φ' there.

Kernels: each activation renders the template :mod:`meanfield._kernels` with its own φ, φ', φ'' into the kernel cache
directory (``$MEANFIELD_CACHE_DIR``, default ``~/.cache/meanfield``) and imports it; Numba caches the compiled kernels next to
it, so a second Python session loads them from disk.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import TokenError
from sympy.printing.pycode import PythonCodePrinter

from meanfield.errors import InvalidParameterError, UnknownActivationError

__all__ = ["Activation", "get_activation", "REGISTRY", "available_activations"]

X = sp.Symbol("x", real=True)

# SELU constants (Klambauer et al. 2017, eq. 14)
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


@dataclass(frozen=True)
class _Spec:
    """A registry entry: sympy expression, hand-written Numba bodies (stable at large |x|), kinks, closed form."""

    expr: sp.Expr
    bodies: tuple[str, str, str]
    kinks: tuple[float, ...] = ()
    closed: str | None = None
    doc: str = ""


def _tanh_bodies():
    return (
        "return math.tanh(x)",
        "t = math.tanh(x)\n    return 1.0 - t * t",
        "t = math.tanh(x)\n    return -2.0 * t * (1.0 - t * t)",
    )


def _sigmoid_bodies(pre: str):
    # σ(x) = (1 + tanh(x/2))/2 never overflows
    return (
        f"return {pre}0.5 * (1.0 + math.tanh(0.5 * x))",
        "t = math.tanh(0.5 * x)\n    return 0.25 * (1.0 - t * t)",
        "t = math.tanh(0.5 * x)\n    return -0.25 * t * (1.0 - t * t)",
    )


def _registry(negative_slope=0.01, alpha=1.0):
    a = float(negative_slope)
    al = float(alpha)
    sig = "0.5 * (1.0 + math.tanh(0.5 * x))"
    lam, sal = SELU_LAMBDA, SELU_ALPHA
    return {
        "tanh": _Spec(sp.tanh(X), _tanh_bodies(), doc="hyperbolic tangent"),
        "relu": _Spec(
            sp.Max(0, X),
            ("return x if x > 0.0 else 0.0", "return 1.0 if x > 0.0 else 0.0", "return 0.0"),
            (0.0,),
            "relu",
            "max(0, x)",
        ),
        "leaky_relu": _Spec(
            sp.Max(0, X) + sp.Float(a) * sp.Min(0, X),
            (
                f"return x if x > 0.0 else {a!r} * x",
                f"return 1.0 if x > 0.0 else {a!r}",
                "return 0.0",
            ),
            (0.0,),
            "leaky_relu",
            f"max(0, x) + a·min(0, x), negative_slope a = {a}",
        ),
        "erf": _Spec(
            sp.erf(X),
            (
                "return math.erf(x)",
                "return 1.1283791670955126 * math.exp(-x * x)",
                "return -2.2567583341910252 * x * math.exp(-x * x)",
            ),
            closed="erf",
            doc="error function",
        ),
        "linear": _Spec(X, ("return x", "return 1.0", "return 0.0"), closed="linear", doc="identity"),
        "hard_tanh": _Spec(
            sp.Max(-1, sp.Min(1, X)),
            (
                "return -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)",
                "return 1.0 if -1.0 < x < 1.0 else 0.0",
                "return 0.0",
            ),
            (-1.0, 1.0),
            "hard_tanh",
            "clip(x, -1, 1)",
        ),
        "sigmoid": _Spec(1 / (1 + sp.exp(-X)), _sigmoid_bodies(""), doc="logistic sigmoid 1/(1+e^-x)"),
        "softplus": _Spec(
            sp.log(1 + sp.exp(X)),
            (
                "return max(x, 0.0) + math.log1p(math.exp(-abs(x)))",
                f"return {sig}",
                "t = math.tanh(0.5 * x)\n    return 0.25 * (1.0 - t * t)",
            ),
            doc="log(1 + e^x)",
        ),
        "elu": _Spec(
            sp.Piecewise((X, X > 0), (sp.Float(al) * (sp.exp(X) - 1), True)),
            (
                f"return x if x > 0.0 else {al!r} * math.expm1(x)",
                f"return 1.0 if x > 0.0 else {al!r} * math.exp(x)",
                f"return 0.0 if x > 0.0 else {al!r} * math.exp(x)",
            ),
            (0.0,),
            doc=f"x for x > 0, alpha (e^x - 1) otherwise, alpha = {al}",
        ),
        "selu": _Spec(
            sp.Float(lam) * sp.Piecewise((X, X > 0), (sp.Float(sal) * (sp.exp(X) - 1), True)),
            (
                f"return {lam!r} * x if x > 0.0 else {lam * sal!r} * math.expm1(x)",
                f"return {lam!r} if x > 0.0 else {lam * sal!r} * math.exp(x)",
                f"return 0.0 if x > 0.0 else {lam * sal!r} * math.exp(x)",
            ),
            (0.0,),
            doc="scaled ELU (Klambauer et al. 2017)",
        ),
        "gelu": _Spec(
            X * (1 + sp.erf(X / sp.sqrt(2))) / 2,
            (
                "return 0.5 * x * (1.0 + math.erf(0.7071067811865476 * x))",
                "return 0.5 * (1.0 + math.erf(0.7071067811865476 * x))"
                " + 0.3989422804014327 * x * math.exp(-0.5 * x * x)",
                "return 0.3989422804014327 * math.exp(-0.5 * x * x) * (2.0 - x * x)",
            ),
            doc="x Φ(x), the exact (erf) GELU",
        ),
        "silu": _Spec(
            X / (1 + sp.exp(-X)),
            (
                f"return x * {sig}",
                f"s = {sig}\n    return s + x * s * (1.0 - s)",
                f"s = {sig}\n    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))",
            ),
            doc="x σ(x) (swish)",
        ),
    }


REGISTRY = tuple(_registry().keys())
_ALIASES = {
    "identity": "linear",
    "hardtanh": "hard_tanh",
    "swish": "silu",
    "leakyrelu": "leaky_relu",
    "logistic": "sigmoid",
}
_PARAMS = {"leaky_relu": ("negative_slope",), "elu": ("alpha",)}


def available_activations() -> tuple[str, ...]:
    """Names accepted by :func:`get_activation` (aliases: identity, hardtanh, swish, leakyrelu, logistic)."""
    return REGISTRY


# ------------------------------------------------------------------------------------------------------ code generation
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


_CACHE_LOCK = threading.Lock()
_MODULES: dict[str, object] = {}


def cache_dir() -> Path:
    """Where rendered kernel modules (and Numba's cache of them) live."""
    d = os.environ.get("MEANFIELD_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "meanfield"


def _template() -> str:
    here = Path(__file__).parent
    return (here / "_kernels.py").read_text()


def _dependency_hash() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("_quad.py", "_closed.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


_BLOCK = re.compile(r"# >>> ACTIVATION\n.*?# <<< ACTIVATION\n", re.S)


def _render(name, bodies, kinks, jumps, closed, closed_param) -> str:
    lines = ["# >>> ACTIVATION", f"NAME = {name!r}", ""]
    for fname, body in zip(("phi", "dphi", "d2phi"), bodies):
        lines += ["", "@njit(**JIT)", f"def {fname}(x):", f"    {body}", ""]
    lines += [
        f"KINKS = np.array({list(map(float, kinks))!r}, dtype=np.float64)",
        f"JUMPS = np.array({list(map(float, jumps))!r}, dtype=np.float64)",
    ]
    if closed is None:
        lines += [
            "CLOSED_ONEPOINT = False",
            "CLOSED_TWOPOINT = False",
            "",
            "",
            "@njit(**JIT)",
            "def closed_onepoint(q, out):",
            "    pass",
            "",
            "",
            "@njit(**JIT)",
            "def closed_twopoint(q11, q22, q12, out):",
            "    pass",
        ]
    else:
        two = closed != "hard_tanh"
        lines += [
            "from meanfield import _closed",
            "",
            "CLOSED_ONEPOINT = True",
            f"CLOSED_TWOPOINT = {two}",
            "",
            "",
            "@njit(**JIT)",
            "def closed_onepoint(q, out):",
            f"    _closed.{closed}_onepoint(q, {closed_param}out)",
            "",
            "",
            "@njit(**JIT)",
            "def closed_twopoint(q11, q22, q12, out):",
            (f"    _closed.{closed}_twopoint(q11, q22, q12, {closed_param}out)" if two else "    pass"),
        ]
    lines += ["", "", "# <<< ACTIVATION", ""]
    block = "\n".join(lines)
    src = _BLOCK.sub(lambda _: block, _template(), count=1)
    return src + f"\n# dependencies: {_dependency_hash()}\n"


def _load_kernels(source: str):
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _CACHE_LOCK:
        if key in _MODULES:
            return _MODULES[key]
        d = cache_dir() / "kernels"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"mf_kernels_{key}.py"
        if not path.exists() or path.read_text() != source:
            fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.replace(tmp, path)
        modname = f"meanfield._generated_{key}"
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
        _MODULES[key] = mod
        return mod


# ----------------------------------------------------------------------------------------------------------- Activation
@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function φ with what the theory needs of it.

    Attributes
    ----------
    name : canonical registry name, or the expression's string form.
    expr : sympy expression in the real symbol ``x`` (``meanfield.activations.X``).
    kinks : points where φ' (or φ'') is discontinuous; the quadrature splits there.
    jumps : φ'(k+) - φ'(k-) at each kink.
    closed_form : name of the closed-form Gaussian integrals used (THEORY §1 table), or None.
    params : parameters of a parametrised family (e.g. ``{"negative_slope": 0.01}``).
    """

    name: str
    expr: sp.Expr
    kinks: tuple[float, ...]
    jumps: tuple[float, ...]
    closed_form: str | None
    params: dict = field(default_factory=dict)
    _bodies: tuple[str, str, str] = field(default=("", "", ""), repr=False)
    _closed_param: str = field(default="", repr=False)
    _state: dict = field(default_factory=dict, repr=False, compare=False)

    # -- kernels ------------------------------------------------------------------------------------------------------
    @property
    def kernels(self):
        """The compiled kernel module of this activation (rendered and imported on first use)."""
        k = self._state.get("kernels")
        if k is None:
            src = _render(self.name, self._bodies, self.kinks, self.jumps, self.closed_form, self._closed_param)
            k = self._state["kernels"] = _load_kernels(src)
        return k

    @property
    def table(self) -> np.ndarray:
        """Chebyshev table of the one-point moments in q (built on first use; empty when closed forms exist)."""
        t = self._state.get("table")
        if t is None:
            k = self.kernels
            if k.CLOSED_ONEPOINT:
                t = np.zeros((0, k.N_MOMENTS, k.TABLE_DEG + 1))
                err = np.zeros(k.N_TABULATED)
            else:
                path = Path(k.__file__).with_suffix(".table.npz")
                try:
                    with np.load(path) as f:
                        t, err = f["tab"], f["err"]
                except (OSError, KeyError, ValueError):
                    t, errs = k.build_table()
                    err = errs.max(axis=0)
                    try:
                        tmp = path.with_suffix(f".{os.getpid()}.npz")
                        np.savez(tmp, tab=t, err=err)
                        os.replace(tmp, path)
                    except OSError:  # read-only cache: rebuild next time
                        pass
            self._state["table_error"] = err
            t = self._state["table"] = t
        return t

    @property
    def table_error(self) -> np.ndarray:
        """Estimated max relative error of the table for [E φ², dE φ²/dq, μ_1, μ_2] (vs direct quadrature)."""
        self.table
        return self._state["table_error"]

    # -- evaluation ---------------------------------------------------------------------------------------------------
    def _eval(self, u, order):
        arr = np.asarray(u, dtype=np.float64)
        out = self.kernels.phi_array(np.ascontiguousarray(arr).reshape(-1), order).reshape(arr.shape)
        return float(out) if np.ndim(u) == 0 else out

    def phi(self, u):
        """φ(u) [vec]."""
        return self._eval(u, 0)

    def dphi(self, u):
        """φ'(u) [vec] (right-continuous convention does not matter: kinks have measure zero)."""
        return self._eval(u, 1)

    def d2phi(self, u):
        """φ''(u) [vec], almost everywhere (no deltas at the kinks)."""
        return self._eval(u, 2)

    __call__ = phi

    _PROBE = np.array([-3.7, -1.3, -0.61, -0.2, 0.15, 0.45, 0.9, 1.4, 2.6, 5.1])

    @property
    def is_odd(self) -> bool:
        """φ(-x) = -φ(x) (then c* = 0 in the chaotic phase with σ_b = 0); checked numerically on probe points."""
        u = self._PROBE
        return bool(np.allclose(self.phi(-u), -self.phi(u), rtol=1e-13, atol=1e-15))

    @property
    def is_homogeneous(self) -> bool:
        """φ(a x) = a φ(x) for a > 0 (ReLU, leaky ReLU, linear): χ_1 then does not depend on q*. Checked numerically."""
        u = self._PROBE
        return bool(all(np.allclose(self.phi(a * u), a * self.phi(u), rtol=1e-13, atol=1e-15) for a in (0.37, 2.9)))

    @property
    def phi0(self) -> float:
        return float(self.phi(0.0))

    @property
    def dphi0(self) -> float:
        """φ'(0) (the average of both sides at a kink)."""
        h = 1e-300
        if 0.0 in self.kinks:
            return 0.5 * (float(self.dphi(h)) + float(self.dphi(-h)))
        return float(self.dphi(0.0))

    def __repr__(self):
        return f"Activation({self.name!r})"


def _from_registry(key: str, params: dict) -> Activation:
    spec = _registry(**params)[key]
    closed_param = ""
    if spec.closed == "leaky_relu":
        closed_param = f"{float(params.get('negative_slope', 0.01))!r}, "
    jumps = _jumps(spec.bodies, spec.kinks)
    return Activation(
        name=key,
        expr=spec.expr,
        kinks=spec.kinks,
        jumps=jumps,
        closed_form=spec.closed,
        params=dict(params),
        _bodies=spec.bodies,
        _closed_param=closed_param,
    )


def _python_fn(body: str):
    ns: dict = {"math": math}
    exec(compile("def f(x):\n    " + body, "<activation>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns["f"]


def _jumps(bodies, kinks):
    """φ'(k+) - φ'(k-) at each kink, by one-sided linear extrapolation of φ' (error O(h²) = 1e-16)."""
    d1, d2 = _python_fn(bodies[1]), _python_fn(bodies[2])
    out = []
    for k in kinks:
        h = 1e-8 * (1.0 + abs(k))
        right = d1(k + h) - h * d2(k + h)
        left = d1(k - h) + h * d2(k - h)
        out.append(float(right - left))
    return tuple(out)


_EXPR_CACHE: dict[str, Activation] = {}
_NAMED_CACHE: dict[tuple, Activation] = {}


def _parse(text: str) -> sp.Expr:
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
    return expr


def _from_expression(expr: sp.Expr, name: str) -> Activation:
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
    d1 = sp.diff(expr, X)
    d2 = sp.diff(d1, X)
    bodies = (_body(expr), _body(d1), _body(d2))
    kinks = _find_kinks(expr)
    # check that the generated code evaluates (catches functions with no math equivalent)
    for b in bodies:
        try:
            _python_fn(b)(0.3)
        except Exception as exc:
            raise UnknownActivationError(
                f"activation expression {name!r} uses a function that cannot be compiled ({exc}); "
                "use elementary functions, erf, Max/Min/Abs/Heaviside/Piecewise"
            ) from None
    return Activation(
        name=name,
        expr=expr,
        kinks=kinks,
        jumps=_jumps(bodies, kinks),
        closed_form=None,
        params={},
        _bodies=bodies,
    )


def get_activation(spec, **params) -> Activation:
    """Return the :class:`Activation` for a registry name, an expression in ``x`` (string or sympy), or an Activation.

    Parameters of a family are keywords: ``get_activation("leaky_relu", negative_slope=0.2)``,
    ``get_activation("elu", alpha=1.0)``.

    Raises
    ------
    UnknownActivationError
        unknown name (with the closest registry names) or an expression that does not parse.
    """
    if isinstance(spec, Activation):
        if params:
            raise InvalidParameterError("parameters cannot be given with an Activation instance")
        return spec
    if isinstance(spec, sp.Expr):
        key = sp.srepr(spec)
        if key not in _EXPR_CACHE:
            _EXPR_CACHE[key] = _from_expression(spec, str(spec))
        return _EXPR_CACHE[key]
    if not isinstance(spec, str):
        raise UnknownActivationError(
            f"activation must be a name, an expression in x or an Activation, got {type(spec).__name__}"
        )
    text = spec.strip()
    key = text.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in REGISTRY:
        allowed = _PARAMS.get(key, ())
        bad = [p for p in params if p not in allowed]
        if bad:
            raise InvalidParameterError(
                f"activation {key!r} takes parameters {list(allowed)}, got {bad}"
            )
        for p, v in params.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise InvalidParameterError(f"activation parameter {p}={v!r} must be a finite number")
        ck = (key, tuple(sorted(params.items())))
        if ck not in _NAMED_CACHE:
            _NAMED_CACHE[ck] = _from_registry(key, params)
        return _NAMED_CACHE[ck]
    if params:
        raise InvalidParameterError(f"parameters {sorted(params)} given for unknown activation {text!r}")
    looks_like_name = re.fullmatch(r"[A-Za-z_]+", text) is not None and text != "x"
    if looks_like_name:
        close = difflib.get_close_matches(key, list(REGISTRY) + list(_ALIASES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownActivationError(
            f"unknown activation {text!r}{hint} Known: {', '.join(REGISTRY)}, or an expression in x such as 'x*tanh(x)'"
        )
    if text in _EXPR_CACHE:
        return _EXPR_CACHE[text]
    act = _from_expression(_parse(text), text)
    _EXPR_CACHE[text] = act
    return act
