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
    x = float(value)
    if not math.isfinite(x):
        raise InvalidParameterError(f"{name} must be finite, got {x}")
    return x


def as_array(value, name: str) -> np.ndarray:
    x = _finite_scalar(value, name)
    if x is not None:
        return np.asarray(x)
    try:
        arr = np.asarray(value, dtype=np.float64)
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


def positive(value, name: str) -> np.ndarray:
    return _checked(value, name, lambda a: a <= 0, "be > 0 (a standard deviation)")


def nonnegative(value, name: str) -> np.ndarray:
    return _checked(value, name, lambda a: a < 0, "be ≥ 0 (a standard deviation, not a variance)")


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
