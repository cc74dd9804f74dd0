"""Frozen result objects returned by the solvers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Solver status codes (the kernels return these integers; see meanfield._kernels)
STATUS = {0: "converged", 1: "max_iterations", 2: "diverged", 3: "zero", 4: "degenerate"}


@dataclass(frozen=True)
class Estimate:
    """A quadrature result with its error estimate (|I_16 - I_10| of the panelled rule; 0 for closed forms)."""

    value: float | np.ndarray
    error: float | np.ndarray


@dataclass(frozen=True)
class GaussianMoments:
    """One-point moments at variance q (THEORY §1): E φ², dE φ²/dq, μ_1 = E φ'², μ_2 = E φ'⁴, with error estimates."""

    q: float | np.ndarray
    phi2: float | np.ndarray
    dphi2_dq: float | np.ndarray
    mu1: float | np.ndarray
    mu2: float | np.ndarray
    error: np.ndarray  # shape (..., 4): errors of [phi2, dphi2_dq, mu1, mu2]


@dataclass(frozen=True)
class FixedPoint:
    """Fixed point of the length and correlation maps (Poole et al. 2016; Schoenholz et al. 2017).

    Attributes
    ----------
    q_star : stable fixed point of the length map reached from ``q0``.
    c_star : stable fixed point of the correlation map at q* (1 in the ordered phase).
    chi1 : σ_w² E_{q*}[φ'²], slope of the c-map at c = 1 (Poole et al. 2016 eq. 8).
    chi_c : σ_w² E[φ'(u1)φ'(u2)] at c*, slope of the c-map at c* (Schoenholz et al. 2017 eq. 5).
    slope_q : σ_w² dE_q[φ²]/dq at q*, slope of the length map.
    xi_q, xi_c : depth scales -1/ln(slope_q), -1/ln(χ_c) (Schoenholz et al. 2017 eqs. 4, 9); inf where the slope is 1.
    phase : "ordered" (χ_1 < 1), "critical" (|χ_1 - 1| ≤ CRITICAL_TOL) or "chaotic".
    converged, iterations, residual : of the q* solve (Newton on a bracket, scale-aware stopping).
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


@dataclass(frozen=True)
class Trajectory:
    """Finite-depth propagation of two inputs of equal length (THEORY §1, last bullet).

    ``q[l]`` is the mean squared pre-activation of layer l (``q[0] = q0`` is the input's |x|²/N_0);
    ``c[l]`` their correlation (``c[0] = c0``); ``chi[l]`` = σ_w² μ_1(q[l]) for l ≥ 1 (``chi[0]`` is NaN).
    """

    q: np.ndarray
    c: np.ndarray
    chi: np.ndarray
    sigma_w: float
    sigma_b: float

    @property
    def depth(self) -> int:
        return len(self.q) - 1


@dataclass(frozen=True)
class PhaseDiagram:
    """q*, χ_1, c*, ξ_c on a σ_w × σ_b grid; arrays have shape (len(sigma_w), len(sigma_b)).

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
    meta: dict = field(default_factory=dict)

    @property
    def diverges(self) -> np.ndarray:
        return self.status == 2

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
                        status=STATUS[int(self.status[i, j])],
                    )
                )
        return rows
