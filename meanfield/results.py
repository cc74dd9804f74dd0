"""Frozen result objects returned by the solvers."""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field, fields

import numpy as np

# Solver status codes (the kernels return these integers; see meanfield._kernels)
STATUS = {
    0: "converged",
    1: "max_iterations",
    2: "diverged",
    3: "zero",
    4: "degenerate",
    5: "nonfinite",  # the moments were not finite (overflow, divergent or unresolved Gaussian integral)
    6: "unverified",  # the root failed its independent check
}


# ==================================================================================================== serialisation
# JSON has no inf or NaN: to_json writes them as these strings (and only them), from_json reads them back.
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# Fields that describe the inputs of a computation: the first line of a result's summary.
_INPUTS = (
    "activation", "sigma_w", "sigma_b", "depth", "width", "input_width", "n_samples", "n_outputs", "weights",
    "input_norm", "input_correlation", "biases", "hessian_max", "q",
)


def _plain(value):
    """``value`` as plain Python data: arrays and tuples as (nested) lists, NumPy scalars as int/float/bool/complex."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Result):
        return value.to_dict()
    return value


def _encode(value):
    """Plain data with non-finite floats replaced by the strings of ``_NONFINITE`` (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, complex):
        return {"real": _encode(value.real), "imag": _encode(value.imag)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    """Inverse of :func:`_encode` (for values that are numbers or containers of numbers)."""
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"real", "imag"}:
            return complex(_decode(value["real"]), _decode(value["imag"]))
        return {k: _decode(v) for k, v in value.items()}
    return value


def _rebuild(value, annotation: str):
    """A field's value from plain data, by its annotation: arrays for ``np.ndarray`` fields (scalars stay scalars for
    ``float | np.ndarray``), tuples for ``tuple`` fields, lists of tuples for ``list`` fields (``atoms``)."""
    if annotation == "str" or value is None:
        return value
    value = _decode(value)
    if isinstance(value, list):
        if "ndarray" in annotation:
            return np.asarray(value)
        if annotation.startswith("tuple"):
            return tuple(tuple(v) if isinstance(v, list) else v for v in value)
        if annotation.startswith("list"):
            return [tuple(v) if isinstance(v, list) else v for v in value]
    return value


def _brief(value) -> str:
    """One readable line for a field's value: numbers to 8 significant digits, arrays by shape and range."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _brief(value[()])
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return "[" + ", ".join(_brief(v) for v in value.reshape(-1)) + "]" + (
                f" (shape {value.shape})" if value.ndim > 1 else ""
            )
        text = f"array of shape {value.shape}"
        if np.issubdtype(value.dtype, np.number) and not np.iscomplexobj(value):
            finite = value[np.isfinite(value)]
            if finite.size:
                text += f", from {_brief(finite.min())} to {_brief(finite.max())}"
            if finite.size < value.size:
                text += f", {value.size - finite.size} not finite"
        return text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_brief(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{len(value)} items"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    return str(value)


class Result:
    """Serialisation shared by the result dataclasses: :meth:`to_dict`, :meth:`to_json`, :meth:`from_dict`,
    :meth:`from_json`, and a readable summary as ``str(result)``.

    ``to_dict`` holds the public fields (those not starting with ``_``) as plain Python data: arrays become nested lists,
    NumPy scalars Python numbers; inf and NaN stay floats. ``to_json`` writes strict JSON, with inf, -inf and NaN as the
    strings ``"inf"``, ``"-inf"``, ``"nan"``; ``from_json``/``from_dict`` turn them back into floats and lists back into
    arrays for array fields. A result whose methods need solver state that is not serialised (e.g. the spectral
    densities) writes its fields but cannot be rebuilt: ``from_dict`` raises ``TypeError`` for it.
    """

    __slots__ = ()

    def to_dict(self) -> dict:
        """Public fields as plain Python data (lists for arrays; inf and NaN as floats)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}

    def to_json(self, **kwargs) -> str:
        """Strict JSON of :meth:`to_dict` (inf, -inf, NaN as the strings "inf", "-inf", "nan"); ``kwargs`` go to
        :func:`json.dumps` (e.g. ``indent=2``)."""
        return json.dumps(_encode(self.to_dict()), allow_nan=False, ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict):
        """The result back from :meth:`to_dict` (or the parsed :meth:`to_json`); unknown keys are an error."""
        if any(f.name.startswith("_") for f in fields(cls)):
            raise TypeError(f"{cls.__name__} cannot be rebuilt from its fields (its solver state is not serialised); "
                            "recompute it from the inputs it records")
        names = {f.name: f for f in fields(cls) if not f.name.startswith("_") and f.init}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise TypeError(f"{cls.__name__}.from_dict: unknown fields {unknown}")
        return cls(**{k: _rebuild(v, str(names[k].type)) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str):
        """The result back from :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """Readable multi-line summary: the inputs on the first line, then one line per other public field."""
        shown = [f.name for f in fields(self) if not f.name.startswith("_")]
        head = [
            f"{k}={_brief(getattr(self, k))}"
            for k in _INPUTS
            if k in shown and np.ndim(getattr(self, k)) == 0
        ]
        rest = [k for k in shown if k not in _INPUTS or np.ndim(getattr(self, k)) != 0]
        width = max((len(k) for k in rest), default=0)
        name = type(self).__name__
        lines = textwrap.wrap(f"{name}({', '.join(head)})", 100, subsequent_indent=" " * (len(name) + 1))
        for k in rest:
            line = f"  {k:<{width}}  {_brief(getattr(self, k))}"
            lines += textwrap.wrap(line, 100, subsequent_indent=" " * (width + 4))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class Estimate(Result):
    """A quadrature result with its error estimate (|I_16 - I_10| of the panelled rule; 0 for closed forms)."""

    value: float | np.ndarray
    error: float | np.ndarray


@dataclass(frozen=True)
class GaussianMoments(Result):
    """One-point moments at variance q (THEORY §1): E φ², dE φ²/dq, μ_1 = E φ'², μ_2 = E φ'⁴, with error estimates."""

    q: float | np.ndarray
    phi2: float | np.ndarray
    dphi2_dq: float | np.ndarray
    mu1: float | np.ndarray
    mu2: float | np.ndarray
    error: np.ndarray  # shape (..., 4): errors of [phi2, dphi2_dq, mu1, mu2]
    activation: str | None = None  # registry name or expression of φ


@dataclass(frozen=True)
class FixedPoint(Result):
    """Fixed point of the length and correlation maps (Poole et al. 2016; Schoenholz et al. 2017).

    Attributes
    ----------
    q_star : stable fixed point of the length map reached from ``q_init`` (the start of the iteration).
    c_star : stable fixed point of the correlation map at q* (1 in the ordered phase).
    chi1 : σ_w² E_{q*}[φ'²], slope of the c-map at c = 1 (Poole et al. 2016 eq. 8).
    chi_c : σ_w² E[φ'(u1)φ'(u2)] at c*, slope of the c-map at c* (Schoenholz et al. 2017 eq. 5).
    slope_q : g'(q*) = σ_w² dE_q[φ²]/dq at q*, slope of the length map (THEORY §6).
    xi_q, xi_c : depth scales -1/ln(slope_q), -1/ln(χ_c) (Schoenholz et al. 2017 eqs. 4, 9); inf where the slope is 1.
    phase : "ordered" (χ_1 < 1), "critical" (|χ_1 - 1| ≤ CRITICAL_TOL) or "chaotic".
    converged, iterations, residual : of the q* solve: True once the root passed its independent check (a failure
        raises instead), the Newton iterations after bracketing (0 where q* = 0 or the start is exactly fixed) and
        |q_map(q*) - q*| as evaluated by the proof (moment table, or direct quadrature beyond it).
    stable : |g'(q*)| < 1: iterating the length map near q* returns to it (THEORY §6).
    q_star_error : proven relative accuracy δ of q*: q_map(q) - q changes sign across [q*(1 - δ), q*(1 + δ)].
    c_star_error : proven absolute accuracy of c* the same way (0 where c* = 1, always a fixed point, or c* = 0 by
        symmetry).
    """

    q_star: float
    c_star: float
    chi1: float
    chi_c: float
    slope_q: float
    xi_q: float
    xi_c: float
    phase: str
    sigma_w: float
    sigma_b: float
    converged: bool = True
    iterations: int = 0
    residual: float = 0.0
    activation: str | None = None  # registry name or expression of φ
    stable: bool = True
    q_star_error: float = 0.0
    c_star_error: float = 0.0


@dataclass(frozen=True)
class LengthFixedPoint:
    """One fixed point of the length map (an item of :class:`FixedPoints`): q, the slope g'(q) = σ_w² dE_q[φ²]/dq,
    ``stable`` (|g'| < 1), χ_1 = σ_w² E_q[φ'²] and the proven relative accuracy ``error`` of q."""

    q: float
    slope: float
    stable: bool
    chi1: float
    error: float


@dataclass(frozen=True)
class FixedPoints(Result):
    """Every fixed point of the length map g(q) = σ_w² E_q[φ²] + σ_b² in (0, ∞), ascending (THEORY §6), from
    :func:`meanfield.fixed_points`. Iterating it yields :class:`LengthFixedPoint` items; ``len`` counts them.

    Attributes
    ----------
    q, slope, stable, chi1, error : per fixed point (arrays): q*, g'(q*), |g'(q*)| < 1, χ_1 at q*, proven relative
        accuracy of q* (q_map(q) - q changes sign across q*(1 ± error); 0 for a double root, where it only touches).
    zero_is_fixed : 0 is a fixed point (σ_b = 0 and φ(0) = 0).
    zero_attracts : moreover q_map(q) < q just above 0, so small q shrink to 0.
    diverges : q_map(q) > q beyond the largest fixed point (or to rounding, as in linear growth q ↦ q + σ_b²), up to
        ``q_range[1]`` or to where E_q[φ²] stops being finite: q grows without bound from there.
    q_range : the range of q scanned; ``nonfinite_from`` the q from which the moments are not finite (inf if none).
    """

    activation: str
    sigma_w: float
    sigma_b: float
    q: np.ndarray
    slope: np.ndarray
    stable: np.ndarray
    chi1: np.ndarray
    error: np.ndarray
    zero_is_fixed: bool
    zero_attracts: bool
    diverges: bool
    q_range: tuple
    nonfinite_from: float = math.inf
    every_q_fixed: bool = False  # F = 0 to rounding on the whole range (ReLU at σ_w² = 2, σ_b = 0)

    def __len__(self) -> int:
        return len(self.q)

    def __getitem__(self, i) -> LengthFixedPoint:
        return LengthFixedPoint(
            float(self.q[i]), float(self.slope[i]), bool(self.stable[i]), float(self.chi1[i]), float(self.error[i])
        )

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def stable_points(self) -> tuple:
        """The stable fixed points (|g'| < 1), ascending."""
        return tuple(p for p in self if p.stable)


@dataclass(frozen=True)
class Trajectory(Result):
    """Finite-depth propagation of two inputs of equal length (THEORY §1, last bullet).

    ``q[l]`` is the mean squared pre-activation of layer l (``q[0] = q0`` is the input's |x|²/N_0, not a start of an
    iteration towards q*: that is ``q_init`` in :func:`meanfield.q_star`);
    ``c[l]`` their correlation (``c[0] = c0``); ``chi[l]`` = σ_w² μ_1(q[l]) for l ≥ 1 (``chi[0]`` is NaN); for a
    :class:`~meanfield.Network`, ``chi[l] = (σ_w^l)² E_{q^l}[φ_l'²]``, the gain of the pair D_l W^l, so that
    ``prod(chi[1:])`` is the mean eigenvalue of JJᵀ, J = ∂x^L/∂x^0 (THEORY §8). ``network`` holds
    ``Network.to_dict()`` for a call with a Network (None otherwise).
    """

    q: np.ndarray
    c: np.ndarray
    chi: np.ndarray
    sigma_w: float
    sigma_b: float
    activation: str | None = None  # registry name or expression of φ
    network: dict | None = None

    @property
    def depth(self) -> int:
        return len(self.q) - 1


@dataclass(frozen=True)
class PhaseDiagram(Result):
    """q*, χ_1, c*, ξ_c on a σ_w × σ_b grid (standard deviations); arrays have shape (len(sigma_w), len(sigma_b)).

    Where the length map has no finite fixed point (``diverges``) q* is inf and the other fields NaN; ``status`` holds
    the solver codes of :data:`STATUS` for every point.
    """

    activation: str
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    q_star: np.ndarray
    chi1: np.ndarray
    c_star: np.ndarray
    chi_c: np.ndarray
    xi_c: np.ndarray
    status: np.ndarray
    slope_q: np.ndarray | None = None  # slope σ_w² dE_q[φ²]/dq of the length map at q* (< 1: q* is stable)
    meta: dict = field(default_factory=dict)

    @property
    def diverges(self) -> np.ndarray:
        """q grows without bound from the start (no finite fixed point is reached)."""
        return self.status == 2

    @property
    def no_fixed_point(self) -> np.ndarray:
        """Points without a (proved) finite fixed point: diverging, non-finite moments or unverified (status ≠ 0, 3)."""
        return (self.status != 0) & (self.status != 3)

    def to_records(self) -> list[dict]:
        """Tidy rows (one per grid point) for CSV / pandas."""
        rows = []
        for i, sw in enumerate(self.sigma_w):
            for j, sb in enumerate(self.sigma_b):
                rows.append(
                    dict(
                        sigma_w=float(sw),
                        sigma_b=float(sb),
                        q_star=float(self.q_star[i, j]),
                        chi1=float(self.chi1[i, j]),
                        c_star=float(self.c_star[i, j]),
                        chi_c=float(self.chi_c[i, j]),
                        xi_c=float(self.xi_c[i, j]),
                        slope_q=float(self.slope_q[i, j]) if self.slope_q is not None else math.nan,
                        status=STATUS.get(int(self.status[i, j]), str(int(self.status[i, j]))),
                    )
                )
        return rows


@dataclass(frozen=True)
class CriticalLine(Result):
    """The critical line χ_1 = 1 parametrised by q* (THEORY §1, §6), from :func:`meanfield.critical_line`.

    ``sigma_w``, ``sigma_b`` (standard deviations; NaN where the point would need σ_b² < 0), ``slope_q`` the slope
    g'(q*) = σ_w² dE_q[φ²]/dq of the length map there and ``stable`` (g' ≤ 1 to rounding): the edge of chaos is the
    stable part; where g' > 1 the fixed point repels and no network sits on it.
    """

    activation: str
    q_star: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    slope_q: np.ndarray
    stable: np.ndarray
