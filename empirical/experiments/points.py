"""Where the experiments evaluate: ordered, critical and chaotic tanh points, points on the critical line by q*, and
the input norm that puts a network's first layer at its fixed point."""

from __future__ import annotations

import math
from typing import Sequence

import meanfield as mf
from meanfield.errors import NoFixedPointError

def tanh_points(sigma_b2: float = 0.05, ordered_sigma_w2: float = 1.0, chaotic_sigma_w2: float = 2.5) -> dict:
    """Ordered, critical and chaotic tanh points at bias variance ``sigma_b2``, as ``{name: (sigma_w, sigma_b)}``
    (standard deviations). Defaults: THEORY §1's reference rows at σ_b² = 0.05 — σ_w² = 1.0 (χ_1 = 0.759), the critical
    σ_w² = 1.760955 and σ_w² = 2.5 (χ_1 = 1.134)."""
    sb = math.sqrt(sigma_b2)
    return {
        "ordered": (math.sqrt(ordered_sigma_w2), sb),
        "critical": (float(mf.critical_sigma_w("tanh", sb)), sb),
        "chaotic": (math.sqrt(chaotic_sigma_w2), sb),
    }


def critical_points(activation="tanh", q_stars: Sequence[float] = (1 / 64, 0.5, 2.0)) -> dict:
    """Points on the critical line χ_1 = 1 parametrised by q* (THEORY §1), as ``{"q*=…": (sigma_w, sigma_b)}``."""
    out = {}
    for q in q_stars:
        sw, sb = mf.critical_point(activation, float(q))
        out[f"q*={float(q):.4g}"] = (float(sw), float(sb))
    return out


def _fixed_point_input(act, sw: float, sb: float) -> tuple[float, float]:
    """(q*, |x|²/N_0) for an input whose first layer already sits at the fixed point, ``σ_w²|x|²/N_0 + σ_b² = q*``, so
    that every layer has q^l = q* as the fixed-point theory assumes. Without a finite fixed point (or with q* ≤ σ_b²)
    the input has |x|²/N_0 = 1 and q* is NaN."""
    try:
        q = float(mf.q_star(act, sw, sb))
    except NoFixedPointError:
        return math.nan, 1.0
    if not q > sb * sb:
        return q, 1.0
    return q, (q - sb * sb) / (sw * sw)
