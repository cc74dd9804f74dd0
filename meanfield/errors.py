"""Exceptions. Every failure of the package is a :class:`MeanFieldError`; bad input is also a ``ValueError``."""


class MeanFieldError(Exception):
    """Base class of the package's errors."""


class InvalidParameterError(MeanFieldError, ValueError):
    """An argument is outside its valid range (the message names it and says what is valid)."""


class UnknownActivationError(MeanFieldError, ValueError, KeyError):
    """An activation name that is not in the registry and does not parse as an expression in ``x``."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoFixedPointError(MeanFieldError):
    """The length map has no finite fixed point reached from the start (q grows without bound), e.g. ReLU with
    σ_w² ≥ 2 and σ_b > 0, linear growth q ↦ q + σ_b² below rounding (x·tanh x at σ_w = 1), or E_q[φ²] overflowing on
    the way up (exp(x)); the message names which."""


class NoCriticalPointError(MeanFieldError):
    """No (σ_w, σ_b) with χ_1 = 1 exists for the request, e.g. ReLU with σ_b > 0."""


class ConvergenceError(MeanFieldError):
    """An iterative solver stopped before meeting its tolerance, or its result failed the independent check of its
    defining equation (e.g. a q* whose q_map(q) - q shows no sign change within Q_TOL: g'(q*) too close to 1)."""


class NumericalError(MeanFieldError, FloatingPointError):
    """A computation produced a non-finite value (overflow in φ, a chaotic network exploding, …)."""
