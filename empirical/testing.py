"""Assertions for users' test suites: does the mean-field theory describe *my* networks at *my* sizes?

Each helper runs one experiment of :mod:`empirical.experiments` on a single point ``(sigma_w, sigma_b)`` and raises
:class:`AssertionError` listing the offending rows (theory, measured mean, spread, tolerance) when a prediction misses;
otherwise it returns the :class:`~empirical.experiments.ResultTable` for inspection. Tolerances are those of the
experiments (statistical over seeds plus finite-width allowances; see their docstrings); extra keyword arguments go to
the experiment (``seeds``, ``k_sigma``, ``executor``, ``device``, ``theory_sigma_w_scale``, …).

Example (a pytest test)::

    from empirical.testing import assert_fisher_matches_theory

    def test_my_initialisation_is_described_by_mean_field():
        assert_fisher_matches_theory("tanh", 1.33, 0.22, depths=(2, 4), width=256, weights="orthogonal")

Seeds are fixed (``seeds=4`` means seeds 0-3), so such a test is deterministic. With the default ``k_sigma`` = 4 and a
few seeds a correct theory still misses an occasional record by chance (the tolerances are statistical; see
:mod:`empirical.experiments`): if one does, rerun with more seeds before concluding. A theory whose σ_w is 10 % off is
rejected at these sizes (the package's own tests check both).
"""

from __future__ import annotations

from typing import Sequence

from empirical import experiments as ex

__all__ = [
    "assert_passed",
    "assert_layer_statistics_match_theory",
    "assert_jacobian_spectrum_matches_theory",
    "assert_fisher_matches_theory",
    "assert_conditional_fisher_matches_theory",
    "assert_model_matches_theory",
]

MAX_ROWS = 30  # rows of the failure table quoted in the AssertionError message


def assert_passed(table: ex.ResultTable, what: str = "theory vs simulation") -> ex.ResultTable:
    """Raise AssertionError quoting the failed records of ``table`` (as a Markdown table) unless all passed; return
    the table."""
    failures = table.failures()
    if len(failures):
        raise AssertionError(
            f"{what}: {len(failures)} of {len(table)} records missed their tolerance "
            f"(|measured - theory| > tolerance):\n{failures.to_markdown(max_rows=MAX_ROWS)}"
        )
    return table


def _point(sigma_w, sigma_b) -> dict:
    return {"user": (float(sigma_w), float(sigma_b))}


def assert_layer_statistics_match_theory(
    activation,
    sigma_w: float,
    sigma_b: float,
    *,
    depth: int = 8,
    width: int = 500,
    q0: float = 1.0,
    c0: float = 0.5,
    weights: str = "gaussian",
    seeds=4,
    **kwargs,
) -> ex.ResultTable:
    """q^l and c^l of two inputs (``|x|²/N_0 = q0``, correlation ``c0``) through ``depth`` layers of ``width`` match
    :func:`meanfield.propagate` at every layer (:func:`empirical.experiments.trajectories`)."""
    table = ex.trajectories(points=_point(sigma_w, sigma_b), depth=depth, width=width, q0=q0, c0=c0,
                            activation=activation, weights=weights, seeds=seeds, **kwargs)
    return assert_passed(table, f"layer statistics of {activation} (σ_w={sigma_w:g}, σ_b={sigma_b:g})")


def assert_jacobian_spectrum_matches_theory(
    activation,
    sigma_w: float,
    sigma_b: float,
    *,
    depth: int = 8,
    width: int = 256,
    weights: str = "orthogonal",
    quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
    seeds=6,
    **kwargs,
) -> ex.ResultTable:
    """The mean, variance and quantiles of the eigenvalues of JJᵀ at an input on the fixed point match
    :func:`meanfield.spectra.jacobian_spectrum` (:func:`empirical.experiments.jacobian_spectra`)."""
    table = ex.jacobian_spectra(points=_point(sigma_w, sigma_b), weights=weights, depth=depth, width=width,
                                quantiles=quantiles, activation=activation, seeds=seeds, **kwargs)
    return assert_passed(table, f"Jacobian spectrum of {activation} (σ_w={sigma_w:g}, σ_b={sigma_b:g}, {weights})")


def assert_fisher_matches_theory(
    activation,
    sigma_w: float,
    sigma_b: float,
    *,
    depths: Sequence[int] = (1, 2, 4, 8),
    width: int = 256,
    n_samples: int = 16,
    n_outputs: int = 1,
    weights: str = "gaussian",
    input_norm: float = 1.0,
    input_correlation: float = 0.5,
    biases: bool = True,
    seeds=4,
    **kwargs,
) -> ex.ResultTable:
    """λ_max, m_λ and s_λ of the Fisher information over ``n_samples`` inputs match
    :func:`meanfield.fisher_statistics` at every depth (:func:`empirical.experiments.fisher_depth`)."""
    table = ex.fisher_depth(points=_point(sigma_w, sigma_b), weights=weights, widths=(width,), depths=depths,
                            n_samples=n_samples, n_outputs=n_outputs, input_norm=input_norm,
                            input_correlation=input_correlation, biases=biases, activation=activation, seeds=seeds,
                            **kwargs)
    return assert_passed(table, f"Fisher information of {activation} (σ_w={sigma_w:g}, σ_b={sigma_b:g}, {weights})")


def assert_conditional_fisher_matches_theory(
    activation,
    sigma_w: float,
    sigma_b: float,
    *,
    depths: Sequence[int] = (1, 4, 8),
    width: int = 200,
    weights: str = "orthogonal",
    seeds=3,
    **kwargs,
) -> ex.ResultTable:
    """The mean, variance and largest eigenvalue of F(θ|x)/N (C = N outputs, input on the fixed point) match
    :func:`meanfield.conditional_fisher_spectrum` (:func:`empirical.experiments.conditional_fisher`)."""
    table = ex.conditional_fisher(points=_point(sigma_w, sigma_b), weights=weights, depths=depths, width=width,
                                  activation=activation, seeds=seeds, **kwargs)
    return assert_passed(table, f"conditional FIM of {activation} (σ_w={sigma_w:g}, σ_b={sigma_b:g}, {weights})")


def assert_model_matches_theory(model, inputs, network=None, *, k_sigma: float = ex.K_SIGMA,
                                theory_sigma_w_scale: float = 1.0) -> ex.ResultTable:
    """A user's model (nn.Sequential or a traced chain of Linear layers and activations, or a RandomMLP) behaves as the
    mean-field theory of ``network`` predicts at ``inputs``: per-layer q^l, the mean squared singular value of
    J = ∂x^L/∂x^0 and the FIM's mean eigenvalue and λ_max, with the statistically sized tolerances of
    :func:`empirical.describe.measured_records` (those of the experiments: k_sigma standard errors over the inputs, a
    floor at the per-draw fluctuation the finite width implies, a finite-width allowance).

    ``network`` : the :class:`meanfield.Network` the model is meant to be — e.g. ``initialize_(model).network``, or a
    description of the intended initialisation; None reads it from the model's weights (:func:`empirical.read_network`),
    which checks that the theory describes the model as it is. ``theory_sigma_w_scale`` scales the theory's σ_w (1.1:
    a deliberately wrong theory, which the checks reject). Returns the table of records; raises AssertionError quoting
    the failed ones."""
    from empirical.describe import measured_records
    from empirical.reading import read_network

    nw = read_network(model) if network is None else network
    _, table = measured_records(model, inputs, nw, k_sigma=k_sigma, theory_sigma_w_scale=theory_sigma_w_scale)
    return assert_passed(table, f"model {type(model).__name__} vs its mean-field theory")
