"""The empirical verifier: sample finite random networks in PyTorch and measure what :mod:`meanfield` predicts.

Every measurement accepts a :class:`RandomMLP` or an ordinary PyTorch model of Linear layers and elementwise
activations (:func:`as_mlp`); :func:`read_network`, :func:`describe` and :func:`initialize_` read a user's model as the
theory's network, predict beside measuring, and put it on the edge of chaos.

Conventions are THEORY §0's: ``depth`` L hidden layers plus a readout with C outputs; σ_w, σ_b are standard deviations;
inputs are rows of ``X`` (shape ``(T, N_0)``). Networks are float64 by default, on CUDA when available; measurements return
NumPy float64 arrays. The brute-force references the fast paths are tested against live in :mod:`empirical.reference`; the theory-vs-simulation
experiments in :mod:`empirical.experiments`, their figures in :mod:`empirical.plots`, the ``meanfield verify`` command in
:mod:`empirical.verify` and assertion helpers for users' CI in :mod:`empirical.testing`.
"""

from empirical._torch_activations import TorchActivation, torch_activation
from empirical.measure import (
    LayerStatistics,
    SokolParkBound,
    conditional_fisher_eigenvalues,
    fisher_eigenvalues,
    fisher_gram,
    input_output_jacobian,
    jacobian_singular_values,
    layer_statistics,
    sokol_park_bound,
)
from empirical.networks import ForwardPass, LinearChain, RandomMLP, default_device
from empirical.models import ModelMLP, activation_of, as_mlp, register_activation
from empirical.reading import LayerTheory, layer_theory, read_network
from empirical.ntk import MonteCarloKernels, nngp_monte_carlo, ntk
from empirical.experiments import (
    EXPERIMENTS,
    Record,
    ResultTable,
    conditional_fisher,
    fisher_depth,
    jacobian_spectra,
    learning_rate,
    make_record,
    ntk_kernels,
    run_all,
    sokol_park,
    trajectories,
)
from empirical.testing import (
    assert_conditional_fisher_matches_theory,
    assert_fisher_matches_theory,
    assert_jacobian_spectrum_matches_theory,
    assert_layer_statistics_match_theory,
    assert_model_matches_theory,
    assert_passed,
)
from empirical.verify import run_verify
from empirical.initialize import InitReport, initialize_
from empirical.describe import Description, describe
from empirical.threads import threads  # the context manager (module: empirical.threads)

__all__ = [
    # networks
    "RandomMLP",
    "ForwardPass",
    "default_device",
    # users' models: read as chains of Linear layers and activations
    "LinearChain",
    "ModelMLP",
    "as_mlp",
    "register_activation",
    "activation_of",
    "read_network",
    "layer_theory",
    "LayerTheory",
    # a user's model: its mean-field reading and an edge-of-chaos initialisation
    "describe",
    "Description",
    "initialize_",
    "InitReport",
    # activations in torch
    "TorchActivation",
    "torch_activation",
    # signal propagation (THEORY §1)
    "LayerStatistics",
    "layer_statistics",
    "threads",
    # input-output Jacobian (THEORY §2)
    "input_output_jacobian",
    "jacobian_singular_values",
    # empirical NTK and Monte-Carlo kernels beside the infinite-width ones (THEORY §7)
    "ntk",
    "nngp_monte_carlo",
    "MonteCarloKernels",
    # Fisher information (THEORY §3-§5)
    "fisher_gram",
    "fisher_eigenvalues",
    "conditional_fisher_eigenvalues",
    "SokolParkBound",
    "sokol_park_bound",
    # theory vs simulation (experiments return a ResultTable of Records)
    "Record",
    "ResultTable",
    "make_record",
    "EXPERIMENTS",
    "trajectories",
    "jacobian_spectra",
    "fisher_depth",
    "conditional_fisher",
    "learning_rate",
    "sokol_park",
    "ntk_kernels",
    "run_all",
    "run_verify",
    # assertions for users' CI
    "assert_passed",
    "assert_layer_statistics_match_theory",
    "assert_jacobian_spectrum_matches_theory",
    "assert_fisher_matches_theory",
    "assert_conditional_fisher_matches_theory",
    "assert_model_matches_theory",
]
