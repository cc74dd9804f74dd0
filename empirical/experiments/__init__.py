"""Theory-vs-simulation experiments: sweeps of finite random networks against :mod:`meanfield`'s predictions.

Seven experiments, one per prediction of THEORY.md, each returning a tidy :class:`ResultTable`:

==========================  =================================================================================  ======
function                    prediction checked                                                                 THEORY
==========================  =================================================================================  ======
:func:`trajectories`        q^l and c^l of two inputs, layer by layer, vs :func:`meanfield.propagate`            §1
:func:`jacobian_spectra`    mean, variance and quantiles of the eigenvalues of JJᵀ vs
                            :func:`meanfield.spectra.jacobian_spectrum`, Gaussian and orthogonal weights         §2
:func:`fisher_depth`        λ_max, m_λ and s_λ of the Fisher information vs depth, vs
                            :func:`meanfield.fisher_statistics` (the headline)                                  §3
:func:`conditional_fisher`  mean, variance and λ_max of F(θ|x)/N vs :func:`meanfield.conditional_fisher_spectrum`   §4
:func:`learning_rate`       gradient descent on the squared loss decreases monotonically at η = 0.9 × 2/λ_max
                            and not at 1.1 × 2/λ_max (λ_max from the theory)                                   §3
:func:`sokol_park`          σ_max²(J), λ_max(F(θ|x)) and the Sokol–Park bound across q* on the critical line     §5
:func:`ntk_kernels`         empirical NTK Θ/N and NNGP of sampled networks vs :func:`meanfield.kernels` on two
                            data sets (deviation ∝ 1/√N), kernel-regression predictions vs trained networks     §7
==========================  =================================================================================  ======

Layout (model → measurement → theory → record): each experiment lives in its own module and draws its networks and
inputs through :mod:`~empirical.experiments.tasks` (seeds, executors), measures them with :mod:`empirical.measure`,
evaluates the theory and files the comparison as :class:`Record` s of a :class:`ResultTable`
(:mod:`~empirical.experiments.table`) with tolerances from :mod:`~empirical.experiments.tolerances`. Argument checks
are in :mod:`~empirical.experiments.arguments` (on top of :mod:`meanfield._validate`), evaluation points in
:mod:`~empirical.experiments.points`. Experiment modules: ``propagation`` (trajectories), ``jacobian``
(jacobian_spectra), ``fisher`` (fisher_depth), ``conditional`` (conditional_fisher), ``training`` (learning_rate),
``curvature`` (sokol_park), ``kernels`` (ntk_kernels). A new experiment is a module with a function returning a
:class:`ResultTable`, its name appended to :data:`EXPERIMENTS` (which fixes its seed salt) and to the registry
``_FUNCTIONS`` below.

Every :class:`Record` holds the experiment, the quantity, its parameters, the theory value, the measured mean over
seeds, the seed-to-seed spread (sample standard deviation), the number of seeds n, the tolerance and whether the
measurement lies within it.

Tolerances
----------
``tolerance = k_sigma · max(spread, floor)/√n + allowance`` (:func:`make_record`):

* a statistical part: ``k_sigma`` standard errors of the mean over seeds (:data:`K_SIGMA` = 4 by default). Where the
  finite-width theory says how much a single draw fluctuates, a ``floor`` on the spread keeps a chance-small sample
  spread of few seeds (a 3-seed standard deviation is below half the true one 1 time in 5) from making a check brittle;
* a finite-width allowance: the theory is a large-N limit and the simulations are not. Its scale (1/N, L/N, the
  theory's own v/N, or the distance from a spectral edge to where the largest of N eigenvalues sits) and its constant
  are stated in each experiment's docstring and next to the constants below, with the measurements they were sized on
  (seeds other than the defaults, at about half and twice the default widths): the right theory passes with margin,
  the theory with σ_w off by 10 % fails.

With ``k_sigma`` = 4 and four seeds the statistical part alone would reject a correct theory for about 3 % of the
records (Student's t with 3 degrees of freedom); the floors and allowances bring that far down — the default sweeps
pass with margin — but a long sweep with fresh seeds can still show an occasional miss: rerun it with more seeds
before concluding.

``theory_sigma_w_scale`` (every experiment): the theory is evaluated at ``σ_w × theory_sigma_w_scale`` while the
networks keep σ_w. It is 1 for a real check; 1.1 is a deliberately wrong theory that the checks must reject (the tests
do). Scales that describe the measured networks (the fluctuation scale v/N, the width of a spectrum) are computed at
the networks' own σ_w; relative allowances are relative to the value under test, and where a finite-N top eigenvalue
lies is a prediction of the theory under test.

Seeds and scale-out
-------------------
``seeds`` is a count n (seeds ``range(n)``) or a sequence of distinct non-negative integers. Task i of an experiment
(one configuration) with seed s draws everything — weights, biases, inputs, targets — from its own ``torch.Generator``,
seeded by :func:`task_seed` from (s, experiment, i) through NumPy's ``SeedSequence``; the global RNGs are never
touched. Tasks are independent, so a sweep runs on any :class:`concurrent.futures.Executor` passed as ``executor`` (a
``ThreadPoolExecutor``, a ``ProcessPoolExecutor``, dask's ``Client.get_executor()``) with results identical to the
serial run (``executor=None``); task functions and their arguments are module-level and picklable. The theory is
evaluated in the calling process, once per configuration.

Networks live on ``device`` (None: CUDA when available, else CPU) in float64; weights and inputs are drawn on the CPU,
so a seed gives the same network on every device.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from meanfield.errors import InvalidParameterError

from empirical.experiments.table import Record, ResultTable, make_record
from empirical.experiments.tasks import EXPERIMENTS, Progress, correlated_inputs, task_seed
from empirical.experiments.tolerances import K_SIGMA, TOP_GRID, finite_width_variance, top_eigenvalue_location
from empirical.experiments.points import critical_points, tanh_points
from empirical.experiments.propagation import TRAJECTORY_BIAS, TRAJECTORY_FLOOR, _trajectory_task, trajectories
from empirical.experiments.jacobian import (
    JACOBIAN_GRID,
    JACOBIAN_MEAN_BIAS,
    JACOBIAN_MEAN_FLOOR,
    JACOBIAN_QUANTILE_BIAS,
    JACOBIAN_QUANTILE_MIN,
    JACOBIAN_VARIANCE_BIAS,
    _jacobian_task,
    jacobian_spectra,
)
from empirical.experiments.fisher import FISHER_BIAS, FISHER_FLOOR, FISHER_QUANTITIES, _fisher_task, fisher_depth
from empirical.experiments.conditional import (
    CONDITIONAL_FLOOR,
    CONDITIONAL_MEAN_BIAS,
    CONDITIONAL_VARIANCE_BIAS,
    _conditional_task,
    conditional_fisher,
)
from empirical.experiments.training import LOSS_ATOL, LOSS_RTOL, LR_MARGIN, _train_task, learning_rate
from empirical.experiments.curvature import SOKOL_PARK_THEORY_POINTS, _sokol_park_task, sokol_park
from empirical.experiments.kernels import _ntk_kernels_task, ntk_kernels

__all__ = [
    # tables
    "Record",
    "ResultTable",
    "make_record",
    # seeds, inputs, points
    "task_seed",
    "correlated_inputs",
    "tanh_points",
    "critical_points",
    # finite-width scales used by the tolerances
    "finite_width_variance",
    "top_eigenvalue_location",
    # the experiments
    "EXPERIMENTS",
    "K_SIGMA",
    "trajectories",
    "jacobian_spectra",
    "fisher_depth",
    "conditional_fisher",
    "learning_rate",
    "sokol_park",
    "ntk_kernels",
    "run_all",
]


# ================================================================================================== all experiments
_FUNCTIONS = {
    "trajectories": trajectories,
    "jacobian_spectra": jacobian_spectra,
    "fisher_depth": fisher_depth,
    "conditional_fisher": conditional_fisher,
    "learning_rate": learning_rate,
    "sokol_park": sokol_park,
    "ntk_kernels": ntk_kernels,
}


def run_all(
    sizes: Mapping | None = None,
    executor=None,
    progress: Progress | None = None,
    device=None,
    theory_sigma_w_scale: float = 1.0,
    experiments: Sequence[str] = EXPERIMENTS,
) -> ResultTable:
    """Run ``experiments`` (default: all seven, in :data:`EXPERIMENTS` order) and concatenate their tables; ``sizes`` maps
    an experiment's name to keyword arguments for it (anything missing takes the function's default)."""
    sizes = dict(sizes or {})
    names = list(experiments)
    unknown = (set(sizes) | set(names)) - set(EXPERIMENTS)
    if unknown:
        raise InvalidParameterError(f"unknown experiments {sorted(unknown)}; known: {', '.join(EXPERIMENTS)}")
    table = ResultTable()
    for name in names:
        kw = dict(sizes.get(name, {}))
        kw.setdefault("theory_sigma_w_scale", theory_sigma_w_scale)
        table = table + _FUNCTIONS[name](executor=executor, progress=progress, device=device, **kw)
    return table
