"""meanfield — mean-field theory of deep networks at initialisation.

Conventions (THEORY §0): σ_w and σ_b are standard deviations (``W_ij ~ N(0, σ_w²/N)``, ``b_i ~ N(0, σ_b²)``);
``depth`` counts hidden layers; an activation is a registry name, an expression in ``x`` or an :class:`Activation`.
"""

from meanfield.activations import Activation, available_activations, get_activation
from meanfield.critical import (
    UnstableCriticalPointError,
    critical_line,
    critical_point,
    critical_sigma_b,
    critical_sigma_w,
    phase_diagram,
)
from meanfield.errors import (
    ConvergenceError,
    InvalidParameterError,
    MeanFieldError,
    NoCriticalPointError,
    NoFixedPointError,
    NumericalError,
    UnknownActivationError,
)
from meanfield.gaussian import TwoPoint, expect, expect2, gaussian_moments, two_point
from meanfield.propagation import CRITICAL_TOL, c_map, c_star, chi1, fixed_point, fixed_points, propagate, q_map, q_star
from meanfield.network import Network
from meanfield.results import Estimate, FixedPoint, FixedPoints, GaussianMoments, LengthFixedPoint, CriticalLine, PhaseDiagram, Trajectory

__version__ = "0.1.0"

# The Jacobian-spectrum and Fisher modules are imported on first use (PEP 562): they hold some forty Numba functions,
# whose decoration alone costs ~70 ms, a tenth of a warm start, and most sessions never touch them.
_LAZY = {
    **dict.fromkeys(
        (
            "JacobianSpectrum",
            "bernoulli_edge",
            "fuss_catalan_density",
            "fuss_catalan_edge",
            "fuss_catalan_moment",
            "jacobian_spectrum",
            "marchenko_pastur_density",
        ),
        "meanfield.spectra",
    ),
    **dict.fromkeys(
        (
            "ConditionalFisherSpectrum",
            "FisherStatistics",
            "SokolParkBound",
            "conditional_fisher_spectrum",
            "fisher_statistics",
            "sokol_park_bound",
        ),
        "meanfield.fisher",
    ),
    **dict.fromkeys(("Kernels", "Prediction", "kernels", "predict"), "meanfield.infinite_width"),
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'meanfield' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    # activations
    "Activation",
    "get_activation",
    "available_activations",
    # Gaussian expectations
    "gaussian_moments",
    "two_point",
    "expect",
    "expect2",
    # signal propagation
    "q_map",
    "c_map",
    "q_star",
    "chi1",
    "c_star",
    "fixed_point",
    "fixed_points",
    "propagate",
    # networks whose layers differ (THEORY §8)
    "Network",
    "CRITICAL_TOL",
    # criticality
    "critical_sigma_w",
    "critical_sigma_b",
    "critical_point",
    "critical_line",
    "CriticalLine",
    "phase_diagram",
    # Jacobian spectra (free probability)
    "jacobian_spectrum",
    "JacobianSpectrum",
    "fuss_catalan_moment",
    "fuss_catalan_edge",
    "fuss_catalan_density",
    "marchenko_pastur_density",
    "bernoulli_edge",
    # Fisher information
    "fisher_statistics",
    "conditional_fisher_spectrum",
    "sokol_park_bound",
    "FisherStatistics",
    "ConditionalFisherSpectrum",
    "SokolParkBound",
    # infinite-width kernels of a data set (THEORY §7)
    "kernels",
    "predict",
    "Kernels",
    "Prediction",
    # results
    "Estimate",
    "GaussianMoments",
    "TwoPoint",
    "FixedPoint",
    "FixedPoints",
    "LengthFixedPoint",
    "Trajectory",
    "PhaseDiagram",
    # errors
    "MeanFieldError",
    "InvalidParameterError",
    "UnknownActivationError",
    "NoFixedPointError",
    "NoCriticalPointError",
    "ConvergenceError",
    "NumericalError",
    "UnstableCriticalPointError",
]
