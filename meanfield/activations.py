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

from meanfield._table import VERSION as TABLE_VERSION
from meanfield._table import build_table
from meanfield.errors import InvalidParameterError, UnknownActivationError

__all__ = ["Activation", "get_activation", "REGISTRY", "available_activations"]



def __getattr__(name):  # ``X``, the sympy symbol, without importing sympy at package import
    if name == "X":
        from meanfield._symbolic import X

        return X
    raise AttributeError(name)

# SELU constants (Klambauer et al. 2017, eq. 14)
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


@dataclass(frozen=True)
class _Spec:
    """A registry entry: sympy source of φ, hand-written Numba bodies (stable at large |x|), kinks, closed form."""

    expr: str
    bodies: tuple[str, str, str]
    kinks: tuple[float, ...] = ()
    closed: str | None = None
    doc: str = ""
    # φ'(k+) - φ'(k-) at each kink in closed form, so that the rendered source (and the key of a shipped moment table)
    # holds no constant that depends on the platform's libm; None: estimated numerically (:func:`_jumps`)
    jumps: tuple[float, ...] | None = None


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
        "tanh": _Spec("tanh(x)", _tanh_bodies(), doc="hyperbolic tangent"),
        "relu": _Spec(
            "Max(0, x)",
            ("return x if x > 0.0 else 0.0", "return 1.0 if x > 0.0 else 0.0", "return 0.0"),
            (0.0,),
            "relu",
            "max(0, x)",
            (1.0,),
        ),
        "leaky_relu": _Spec(
            f"Max(0, x) + {a!r}*Min(0, x)",
            (
                f"return x if x > 0.0 else {a!r} * x",
                f"return 1.0 if x > 0.0 else {a!r}",
                "return 0.0",
            ),
            (0.0,),
            "leaky_relu",
            f"max(0, x) + a·min(0, x), negative_slope a = {a}",
            (1.0 - a,),
        ),
        "erf": _Spec(
            "erf(x)",
            (
                "return math.erf(x)",
                "return 1.1283791670955126 * math.exp(-x * x)",
                "return -2.2567583341910252 * x * math.exp(-x * x)",
            ),
            closed="erf",
            doc="error function",
        ),
        "linear": _Spec("x", ("return x", "return 1.0", "return 0.0"), closed="linear", doc="identity"),
        "hard_tanh": _Spec(
            "Max(-1, Min(1, x))",
            (
                "return -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)",
                "return 1.0 if -1.0 < x < 1.0 else 0.0",
                "return 0.0",
            ),
            (-1.0, 1.0),
            "hard_tanh",
            "clip(x, -1, 1)",
            (1.0, -1.0),
        ),
        "sigmoid": _Spec("1/(1 + exp(-x))", _sigmoid_bodies(""), doc="logistic sigmoid 1/(1+e^-x)"),
        "softplus": _Spec(
            "log(1 + exp(x))",
            (
                "return max(x, 0.0) + math.log1p(math.exp(-abs(x)))",
                f"return {sig}",
                "t = math.tanh(0.5 * x)\n    return 0.25 * (1.0 - t * t)",
            ),
            doc="log(1 + e^x)",
        ),
        "elu": _Spec(
            f"Piecewise((x, x > 0), ({al!r}*(exp(x) - 1), True))",
            (
                f"return x if x > 0.0 else {al!r} * math.expm1(x)",
                f"return 1.0 if x > 0.0 else {al!r} * math.exp(x)",
                f"return 0.0 if x > 0.0 else {al!r} * math.exp(x)",
            ),
            (0.0,),
            doc=f"x for x > 0, alpha (e^x - 1) otherwise, alpha = {al}",
            jumps=(1.0 - al,),
        ),
        "selu": _Spec(
            f"{lam!r}*Piecewise((x, x > 0), ({sal!r}*(exp(x) - 1), True))",
            (
                f"return {lam!r} * x if x > 0.0 else {lam * sal!r} * math.expm1(x)",
                f"return {lam!r} if x > 0.0 else {lam * sal!r} * math.exp(x)",
                f"return 0.0 if x > 0.0 else {lam * sal!r} * math.exp(x)",
            ),
            (0.0,),
            doc="scaled ELU (Klambauer et al. 2017)",
            jumps=(lam - lam * sal,),
        ),
        "gelu": _Spec(
            "x*(1 + erf(x/sqrt(2)))/2",
            (
                "return 0.5 * x * (1.0 + math.erf(0.7071067811865476 * x))",
                "return 0.5 * (1.0 + math.erf(0.7071067811865476 * x))"
                " + 0.3989422804014327 * x * math.exp(-0.5 * x * x)",
                "return 0.3989422804014327 * math.exp(-0.5 * x * x) * (2.0 - x * x)",
            ),
            doc="x Φ(x), the exact (erf) GELU",
        ),
        "silu": _Spec(
            "x/(1 + exp(-x))",
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
            "",
            "",
            "@njit(**JIT)",
            "def closed_qmap(q):",
            "    return 0.0, 0.0",
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
            "",
            "",
            "@njit(**JIT)",
            "def closed_qmap(q):",
            f"    return _closed.{closed}_qmap(q, {closed_param.rstrip(', ')})".replace(", )", ")"),
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


# The moment tables of the named activations ship with the package (``meanfield/tables``, written by ``make tables``),
# so that their first use builds none (the build compiles the checked rule, ~2 s on a cold cache, and runs ~0.3 s). A
# shipped table is found by a key over everything its numbers depend on: the activation's rendered kernel source, the
# table builder and the quadrature (so an edit of any of them leaves it unused, and tests/test_activations.py fails
# until the tables are rebuilt); else the table is built as for any other activation.
SHIPPED_TABLES = Path(__file__).with_name("tables")


_BUILDER_SOURCES: list = []  # the bytes of _table.py and _quad.py, read once


def shipped_table_key(k) -> str:
    """The key of the kernels module ``k``'s shipped table: its rendered source, ``_table.py``, ``_quad.py``."""
    if not _BUILDER_SOURCES:
        _BUILDER_SOURCES.extend(Path(__file__).with_name(f).read_bytes() for f in ("_table.py", "_quad.py"))
    h = hashlib.sha256(Path(k.__file__).read_bytes())
    for src in _BUILDER_SOURCES:
        h.update(src)
    return h.hexdigest()[:20]


def shipped_table_path(k, key: str | None = None) -> Path:
    return SHIPPED_TABLES / f"{key or shipped_table_key(k)}.npz"


def _read_table(path):
    """(tab, err, valid) from a table file of this TABLE_VERSION, or None."""
    try:
        with np.load(path) as f:
            if int(f["version"]) != TABLE_VERSION:
                return None
            return f["tab"], f["err"], f["valid"]
    except (OSError, KeyError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------------------- Activation
@dataclass(frozen=True, eq=False)
class Activation:
    """An activation function φ with what the theory needs of it.

    Attributes
    ----------
    name : canonical registry name, or the expression's string form.
    source : φ as a sympy-parsable expression in ``x``; :attr:`expr` is its sympy expression.
    kinks : points where φ' (or φ'') is discontinuous; the quadrature splits there.
    jumps : φ'(k+) - φ'(k-) at each kink.
    closed_form : name of the closed-form Gaussian integrals used (THEORY §1 table), or None.
    params : parameters of a parametrised family (e.g. ``{"negative_slope": 0.01}``).
    """

    name: str
    source: str
    kinks: tuple[float, ...]
    jumps: tuple[float, ...]
    closed_form: str | None
    params: dict = field(default_factory=dict)
    _bodies: tuple[str, str, str] = field(default=("", "", ""), repr=False)
    _closed_param: str = field(default="", repr=False)
    _state: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def expr(self):
        """φ as a sympy expression in the real symbol ``x`` (``meanfield.activations.X``); sympy is imported here."""
        e = self._state.get("expr")
        if e is None:
            from meanfield._symbolic import parse

            e = self._state["expr"] = parse(self.source)
        return e

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
                err = np.zeros((0, k.N_TABULATED))
                valid = np.zeros((0, k.N_TABULATED), dtype=bool)
            else:
                # (the cached file is keyed like the shipped ones: an edit of the builder or the quadrature, not only
                # of the kernel source, leaves an old one unused)
                key = shipped_table_key(k)
                path = Path(k.__file__).with_suffix(f".{key}.table.npz")
                got = _read_table(path)
                if got is None:
                    got = _read_table(shipped_table_path(k, key))  # the named activations' tables, shipped built
                if got is not None:
                    t, err, valid = got
                else:
                    t, err, valid = build_table(k)
                    try:
                        tmp = path.with_suffix(f".{os.getpid()}.npz")
                        np.savez(tmp, tab=t, err=err, valid=valid, version=TABLE_VERSION)
                        os.replace(tmp, path)
                    except OSError:  # read-only cache: rebuild next time
                        pass
            for a in (t, err, valid):
                a.setflags(write=False)
            self._state["table_errors"] = err
            self._state["table_valid"] = valid
            t = self._state["table"] = t
        return t

    @property
    def table_error(self) -> np.ndarray:
        """Estimated max relative error of the table for [E φ², dE φ²/dq, μ_1, μ_2] (vs the checked quadrature,
        relative to each moment's scale), over the octaves where it holds numbers (:attr:`table_valid`)."""
        self.table
        e = self._state["table_errors"]
        if e.shape[0] == 0:
            return np.zeros(e.shape[1])
        return np.array([col[np.isfinite(col)].max() if np.isfinite(col).any() else np.nan for col in e.T])

    @property
    def table_valid(self) -> np.ndarray:
        """``valid[j, m]``: whether the table holds moment m ([E φ², dE φ²/dq, μ_1, μ_2]) on the octave
        ``2^(TABLE_LOG2_LO + j) ≤ q < 2^(TABLE_LOG2_LO + j + 1)``. Elsewhere its row is NaN, so ``moments`` returns NaN
        there: the quadrature found the moment infinite, beyond float64 or unresolved (meanfield._table)."""
        self.table
        return self._state["table_valid"]

    def moment_range(self, moment: int = 0) -> tuple[float, float]:
        """The q-interval ``[lo, hi)`` of the table's contiguous valid octaves of a moment (0: E φ², 1: dE φ²/dq,
        2: μ_1, 3: μ_2) that holds q = 1 (or the first valid run); ``(0, inf)`` for closed forms, ``(nan, nan)`` if none."""
        valid = self.table_valid
        if valid.shape[0] == 0:
            return 0.0, math.inf
        col = valid[:, moment]
        if not col.any():
            return math.nan, math.nan
        k = self.kernels
        j = -k.TABLE_LOG2_LO if col[-k.TABLE_LOG2_LO] else int(np.argmax(col))
        a = j
        while a > 0 and col[a - 1]:
            a -= 1
        b = j
        while b + 1 < col.size and col[b + 1]:
            b += 1
        return 2.0 ** (k.TABLE_LOG2_LO + a), 2.0 ** (k.TABLE_LOG2_LO + b + 1)

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
        """φ(-x) = -φ(x) (then c* = 0 in the chaotic phase with σ_b = 0); checked numerically on probe points (once)."""
        got = self._state.get("is_odd")
        if got is None:
            u = np.concatenate((self._PROBE, -self._PROBE))
            f, d = np.empty_like(u), np.empty_like(u)
            self.kernels.phi_dphi_array(u, f, d)  # the kernel the Mehler series of odd φ use anyway
            n = self._PROBE.size
            got = self._state["is_odd"] = bool(np.allclose(f[n:], -f[:n], rtol=1e-13, atol=1e-15))
        return got

    @property
    def is_homogeneous(self) -> bool:
        """φ(a x) = a φ(x) for a > 0 (ReLU, leaky ReLU, linear, and expressions such as ``Max(0, x)``, ``2*x``,
        ``abs(x)``): χ_1 then does not depend on q*. Expressions are recognised when parsed (numerically at scales
        1e-6 … 1e6, then symbolically) and get the exact moments of the two-slope φ; named ones are checked numerically."""
        got = self._state.get("is_homogeneous")
        if got is None:
            if self.closed_form in ("homogeneous", "relu", "leaky_relu", "linear"):
                got = True
            else:
                u = np.concatenate((self._PROBE, [1e-6, 1e6, -1e-6, -1e6]))
                got = self.phi0 == 0.0 and all(
                    np.allclose(self.phi(a * u), a * self.phi(u), rtol=1e-13, atol=1e-300) for a in (0.37, 2.9)
                )
            got = self._state["is_homogeneous"] = bool(got)
        return got

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
    jumps = spec.jumps if spec.jumps is not None else _jumps(spec.bodies, spec.kinks)
    return Activation(
        name=key,
        source=spec.expr,
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


_DOMAIN_PROBE = np.unique(np.concatenate((
    np.linspace(-40.0, 40.0, 801), np.geomspace(1e-300, 1e3, 61), -np.geomspace(1e-300, 1e3, 61), [0.0])))


def _check_domain(name, bodies, kinks):
    """φ, φ', φ'' must be real and finite on the whole real line (Gaussian moments integrate them over all of it).

    Probed at 924 points (a grid on [-40, 40], both sides of 0 down to 1e-300, the kinks): a math domain error, a
    division by zero or a complex or NaN value rejects the expression, naming the point. An overflow is growth, not an
    undefined value: whether the Gaussian moments exist then is for the quadrature to decide (it flags their tails).
    """
    pts = np.concatenate((_DOMAIN_PROBE, np.asarray(kinks, dtype=np.float64)))
    for what, body in zip(("φ", "φ'", "φ''"), bodies):
        try:
            f = _python_fn(body)
        except Exception as exc:  # pragma: no cover - the printer's output always compiles
            raise UnknownActivationError(f"activation expression {name!r} cannot be compiled ({exc})") from None
        for v in pts.tolist():
            try:
                y = f(v)
            except OverflowError:
                continue
            except (ValueError, ZeroDivisionError) as exc:
                kind = "is singular" if isinstance(exc, ZeroDivisionError) else "is undefined"
                raise InvalidParameterError(
                    f"activation {name!r}: {what} {kind} at x = {v:.6g} ({exc}); Gaussian moments need φ, φ', φ''"
                    " defined and finite on the whole real line (use e.g. Abs, Max or Piecewise to extend it)"
                ) from None
            except Exception as exc:
                raise UnknownActivationError(
                    f"activation expression {name!r} uses a function that cannot be compiled ({exc}); "
                    "use elementary functions, erf, Max/Min/Abs/Heaviside/Piecewise"
                ) from None
            if isinstance(y, complex) or not isinstance(y, (int, float)) or math.isnan(y):
                raise InvalidParameterError(
                    f"activation {name!r}: {what} is not a real number at x = {v:.6g} (got {y!r}); Gaussian moments need"
                    " φ, φ', φ'' defined on the whole real line (use e.g. Abs, Max or Piecewise to extend it)"
                )


def _homogeneous_slopes(expr, bodies, kinks):
    """``(a, b)`` if φ(x) = a x for x > 0 and b x for x < 0 (positively homogeneous of degree 1), else None.

    Numerically at scales 1e-6 … 1e6 on both sides (cheap, rejects almost everything), then symbolically:
    ``φ(p) - p φ(1)`` and ``φ(-p) - p φ(-1)`` simplify to 0 for a positive symbol p.
    """
    if any(k != 0.0 for k in kinks):
        return None
    f = _python_fn(bodies[0])
    try:
        a, b = float(f(1.0)), -float(f(-1.0))
        for u in np.geomspace(1e-6, 1e6, 25).tolist():
            for s, slope in ((1.0, a), (-1.0, b)):
                y = float(f(s * u))
                if not math.isclose(y, slope * s * u, rel_tol=1e-12, abs_tol=1e-300):
                    return None
        if f(0.0) != 0.0:
            return None
    except (ArithmeticError, ValueError, TypeError):
        return None
    import sympy as sp

    from meanfield._symbolic import X

    p = sp.Symbol("p", positive=True)
    for s in (1, -1):
        try:
            if sp.simplify(expr.subs(X, s * p) - p * expr.subs(X, s)) != 0:
                return None
        except Exception:  # pragma: no cover - sympy could not decide: not declared homogeneous
            return None
    return a, b


def _from_expression(expr, name: str) -> Activation:
    from meanfield._symbolic import analyse

    source, bodies, kinks = analyse(expr, name)
    _check_domain(name, bodies, kinks)
    slopes = _homogeneous_slopes(expr, bodies, kinks)
    closed, closed_param = None, ""
    if slopes is not None:  # exact moments of the two-slope φ (THEORY §1 ReLU row), as for the named relu
        closed, closed_param = "homogeneous", f"{slopes[0]!r}, {slopes[1]!r}, "
        kinks = (0.0,) if slopes[0] != slopes[1] else ()
    act = Activation(
        name=name,
        source=source,
        kinks=kinks,
        jumps=_jumps(bodies, kinks),
        closed_form=closed,
        params={},
        _bodies=bodies,
        _closed_param=closed_param,
    )
    act._state["expr"] = expr
    return act


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
    if type(spec).__module__.startswith("sympy"):
        from meanfield._symbolic import X, as_expression

        expr = as_expression(spec, str(spec))
        key = repr(expr)
        if key not in _EXPR_CACHE:
            _EXPR_CACHE[key] = _from_expression(expr, str(spec))
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
    from meanfield._symbolic import parse

    act = _from_expression(parse(text), text)
    _EXPR_CACHE[text] = act
    return act
