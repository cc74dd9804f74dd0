"""Input validation shared by every public function: clear errors that name the offending value."""

from __future__ import annotations

import math
import numbers

import numpy as np

from meanfield.errors import InvalidParameterError

# Python and NumPy real scalars take a fast path (a few hundred ns instead of ~10 µs of 0-d array reductions): the
# per-call cost of the fast public functions (one q* in µs, fisher_statistics in < 1 ms) is mostly this validation.
_REAL_SCALARS = (float, int, np.floating, np.integer)


def _finite_scalar(value, name: str):
    """``float(value)`` for a real scalar (finite, else the error), None for anything else (arrays, strings, ...)."""
    if not isinstance(value, _REAL_SCALARS):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be a real number, got the boolean {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise InvalidParameterError(f"{name} must be finite, got {x}")
    return x


def as_array(value, name: str) -> np.ndarray:
    x = _finite_scalar(value, name)
    if x is not None:
        return np.asarray(x)
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":  # strings ('1.0'), booleans, complex and objects are not silently converted
            raise TypeError
        arr = raw.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a real number or an array of them, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise InvalidParameterError(f"{name} must be finite, got {bad}")
    return arr


def _checked(value, name: str, is_bad, requirement: str):
    """``value`` as a float64 array (0-d for a scalar) once finite and not ``is_bad``; else the error naming the first
    offending value: ``{name} must {requirement}, got {bad}``."""
    x = _finite_scalar(value, name)
    if x is not None:
        if is_bad(x):
            raise InvalidParameterError(f"{name} must {requirement}, got {x}")
        return np.asarray(x)
    arr = as_array(value, name)
    bad = is_bad(arr)
    if np.any(bad):
        raise InvalidParameterError(f"{name} must {requirement}, got {arr[bad].flat[0]}")
    return arr


# What a quantity is, by its argument name, for the messages: σ's are standard deviations, q's are variances (mean
# squared pre-activations), input norms are squared lengths |x|²/N_0. Unlisted names get no gloss.
_KINDS = {
    "sigma_w": "a standard deviation",
    "sigma_b": "a standard deviation",
    "sigma_w_grid": "standard deviations",
    "sigma_b_grid": "standard deviations",
    "sigma_w2": "a variance σ_w²",
    "sigma_b2": "a variance σ_b²",
    "q": "a variance",
    "q_star": "a variance, the fixed point of the length map",
    "q_stars": "variances, fixed points of the length map",
    "q_init": "a variance, where the length-map iteration starts",
    "q0": "a variance or squared length |x|²/N_0",
    "q11": "a variance",
    "q22": "a variance",
    "input_norm": "a squared length |x|²/N_0",
}


def _gloss(name: str, kind: str | None) -> str:
    kind = _KINDS.get(name, "") if kind is None else kind
    return f" ({kind})" if kind else ""


# A standard deviation whose square (the variance the theory uses) would overflow float64
SIGMA_MAX = math.sqrt(np.finfo(np.float64).max)


def _squares_finite(arr: np.ndarray, name: str, kind: str | None) -> np.ndarray:
    """``arr`` unless it is a standard deviation whose square is not finite (the variance would be inf)."""
    gloss = _KINDS.get(name, "") if kind is None else kind
    if "standard deviation" in gloss:
        _checked(arr, name, lambda a: a > SIGMA_MAX, f"be ≤ {SIGMA_MAX:.4g} ({gloss} whose square must be finite)")
    return arr


def positive(value, name: str, kind: str | None = None) -> np.ndarray:
    """``value`` as a float64 array (0-d for a scalar), finite and > 0; ``kind`` says what it is in the message ("a
    variance", ...; by default from the name: sigma_* are standard deviations, q* variances; "" for none). A standard
    deviation must also have a finite square (≤ :data:`SIGMA_MAX`)."""
    return _squares_finite(_checked(value, name, lambda a: a <= 0, "be > 0" + _gloss(name, kind)), name, kind)


def nonnegative(value, name: str, kind: str | None = None) -> np.ndarray:
    """``value`` as a float64 array, finite and ≥ 0; ``kind`` as for :func:`positive`."""
    return _squares_finite(_checked(value, name, lambda a: a < 0, "be ≥ 0" + _gloss(name, kind)), name, kind)


def broadcast(**named) -> list[np.ndarray]:
    """The arrays broadcast together, or an InvalidParameterError naming the arguments whose shapes do not match."""
    try:
        return list(np.broadcast_arrays(*named.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in named.items())
        raise InvalidParameterError(f"shapes do not broadcast together: {shapes}") from None


def nonempty(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` unless it has no elements (InvalidParameterError naming it)."""
    if np.size(arr) == 0:
        raise InvalidParameterError(f"{name} must not be empty")
    return arr


def correlation(value, name: str) -> np.ndarray:
    return _checked(value, name, lambda a: abs(a) > 1, "lie in [-1, 1]")


def integer(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    if value < minimum:
        raise InvalidParameterError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return int(value)


def choice(value, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InvalidParameterError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def scalar_or_array(arr: np.ndarray, scalar_input: bool):
    """Python float for scalar input, ndarray otherwise (the [vec] convention)."""
    return float(arr) if scalar_input else arr


def is_scalar(*values) -> bool:
    return all(np.ndim(v) == 0 for v in values)
