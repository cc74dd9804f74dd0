"""Argument checks of the experiments, on top of :mod:`meanfield._validate` (the same requirements and messages as the
theory's public functions), plus the experiments' own: points, seeds lists, weight kinds."""

from __future__ import annotations

import math
import numbers
from typing import Mapping

import numpy as np

from meanfield import _validate
from meanfield.errors import InvalidParameterError


def _scalar(name, v):
    if isinstance(v, bool) or np.ndim(v) != 0:
        raise InvalidParameterError(f"{name} must be a real number, got {v!r}")


def _positive(name, v) -> float:
    _scalar(name, v)
    return float(_validate.positive(v, name))


def _int(name, v, minimum=1) -> int:
    return _validate.integer(v, name, minimum)


def _ints(name, vs, minimum=1) -> list[int]:
    if isinstance(vs, numbers.Integral) and not isinstance(vs, bool):
        vs = [vs]
    out = [_int(name, v, minimum) for v in vs]
    if not out:
        raise InvalidParameterError(f"{name} must not be empty")
    return sorted(set(out))


def _correlation(name, c) -> float:
    _scalar(name, c)
    return float(_validate.correlation(c, name))


def _weight_kinds(ws) -> list[str]:
    out = [ws] if isinstance(ws, str) else list(ws)
    if not out or any(w not in ("gaussian", "orthogonal") for w in out):
        raise InvalidParameterError(f"weights must be 'gaussian', 'orthogonal' or a list of them, got {ws!r}")
    return out


def _points(points) -> dict:
    if not isinstance(points, Mapping) or not points:
        raise InvalidParameterError(f"points must be a non-empty mapping name -> (sigma_w, sigma_b), got {points!r}")
    out = {}
    for name, val in points.items():
        try:
            sw, sb = (float(v) for v in val)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"points[{name!r}] must be (sigma_w, sigma_b), got {val!r}") from None
        if not (sw > 0 and sb >= 0 and math.isfinite(sw) and math.isfinite(sb)):
            raise InvalidParameterError(f"points[{name!r}] = {val!r}: need sigma_w > 0 and sigma_b ≥ 0")
        out[str(name)] = (sw, sb)
    return out
