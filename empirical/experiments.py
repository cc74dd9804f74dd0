"""Theory-vs-simulation experiments: sweeps of finite random networks against :mod:`meanfield`'s predictions.

Six experiments, one per prediction of THEORY.md, each returning a tidy :class:`ResultTable`:

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
==========================  =================================================================================  ======

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

import csv
import json
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

import meanfield as mf
from meanfield.errors import InvalidParameterError, NoFixedPointError

from empirical.measure import (
    conditional_fisher_eigenvalues,
    fisher_eigenvalues,
    jacobian_singular_values,
    layer_statistics,
)
from empirical.measure import sokol_park_bound as measured_sokol_park_bound
from empirical.networks import RandomMLP

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
    "run_all",
]

K_SIGMA = 4.0  # statistical part of every tolerance: 4 standard errors of the mean over seeds

EXPERIMENTS = (
    "trajectories",
    "jacobian_spectra",
    "fisher_depth",
    "conditional_fisher",
    "learning_rate",
    "sokol_park",
)
_SALT = {name: i + 1 for i, name in enumerate(EXPERIMENTS)}

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called with ``done = 0`` before an experiment's tasks run and after each task."""


# ================================================================================================= records and tables
@dataclass(frozen=True)
class Record:
    """One comparison of a theory value with a measurement averaged over seeds.

    Attributes
    ----------
    experiment : the experiment's name (one of :data:`EXPERIMENTS`, or a user's).
    quantity : what is compared (``"q"``, ``"lambda_max"``, ``"quantile_0.5"``, …).
    params : the configuration (activation, point, weights, width, depth, layer, …): JSON-able scalars.
    theory : the prediction.
    measured : the mean of the per-seed measurements.
    spread : their sample standard deviation (ddof = 1; 0 for one seed).
    n : the number of seeds.
    tolerance : ``k_sigma·max(spread, floor)/√n + allowance`` (:func:`make_record`; the experiment's docstring says
        which floor and allowance).
    passed : ``|measured - theory| ≤ tolerance`` (False when either is not finite).
    """

    experiment: str
    quantity: str
    params: dict
    theory: float
    measured: float
    spread: float
    n: int
    tolerance: float
    passed: bool

    @property
    def deviation(self) -> float:
        """measured − theory."""
        return self.measured - self.theory

    def row(self) -> dict:
        """A flat dict: experiment, quantity, the params, then the numbers."""
        out = {"experiment": self.experiment, "quantity": self.quantity}
        out.update(self.params)
        out.update(
            theory=self.theory,
            measured=self.measured,
            spread=self.spread,
            n=self.n,
            tolerance=self.tolerance,
            deviation=self.deviation,
            passed=self.passed,
        )
        return out


_NUMBER_COLUMNS = ("theory", "measured", "spread", "n", "tolerance", "deviation", "passed")


def _jsonable(obj):
    """Arrays → lists, NumPy scalars → Python scalars, recursively (non-finite floats stay floats: JSON NaN)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _from_jsonable(obj):
    """Lists of numbers (at any nesting) → float arrays; the inverse of :func:`_jsonable` for ``data``."""
    if isinstance(obj, Mapping):
        return {k: _from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return np.asarray(obj, dtype=np.float64)
        if obj and all(isinstance(v, list) for v in obj):
            try:
                return np.asarray(obj, dtype=np.float64)
            except (TypeError, ValueError):
                pass
        return [_from_jsonable(v) for v in obj]
    return obj


class ResultTable:
    """A tidy table of :class:`Record` s, plus the arrays the figures need (``data``).

    ``records`` : the list of records. ``data`` : ``{experiment: [payload dict, …]}`` — histograms, theory curves on
    fine grids, loss curves — computed by the experiments so that :mod:`empirical.plots` never computes physics.

    Tables add (``t1 + t2``), filter (:meth:`select`), and export: :meth:`to_csv`, :meth:`to_json` (records and data;
    :meth:`from_json` reads it back), :meth:`to_pandas` (when pandas is installed), :meth:`to_markdown`.
    """

    def __init__(self, records: Iterable[Record] = (), data: Mapping | None = None):
        self.records: list[Record] = list(records)
        self.data: dict = {k: list(v) for k, v in (data or {}).items()}

    # ------------------------------------------------------------------------------------------------- container
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __add__(self, other: "ResultTable") -> "ResultTable":
        if not isinstance(other, ResultTable):
            return NotImplemented
        data = {k: list(v) for k, v in self.data.items()}
        for k, v in other.data.items():
            data.setdefault(k, []).extend(v)
        return ResultTable(self.records + other.records, data)

    def __repr__(self):
        n_fail = sum(not r.passed for r in self.records)
        exps = sorted({r.experiment for r in self.records})
        return f"ResultTable({len(self)} records, {n_fail} failed, experiments={exps})"

    @property
    def passed(self) -> bool:
        """True when every record passed (an empty table passes)."""
        return all(r.passed for r in self.records)

    def failures(self) -> "ResultTable":
        """The records that failed (with the same ``data``)."""
        return ResultTable([r for r in self.records if not r.passed], self.data)

    def select(self, experiment: str | None = None, quantity: str | None = None, **params) -> "ResultTable":
        """The records matching the experiment, the quantity and every given parameter value."""
        out = []
        for r in self.records:
            if experiment is not None and r.experiment != experiment:
                continue
            if quantity is not None and r.quantity != quantity:
                continue
            if any(r.params.get(k, _MISSING) != v for k, v in params.items()):
                continue
            out.append(r)
        data = {k: v for k, v in self.data.items() if experiment is None or k == experiment}
        return ResultTable(out, data)

    @property
    def experiments(self) -> list[str]:
        """Experiment names in order of first appearance (records first, then data-only entries)."""
        return list(dict.fromkeys([r.experiment for r in self.records] + list(self.data)))

    def summary(self) -> list[dict]:
        """Per experiment: ``{"experiment", "records", "failed", "passed"}``."""
        out = []
        for e in self.experiments:
            recs = [r for r in self.records if r.experiment == e]
            failed = sum(not r.passed for r in recs)
            out.append({"experiment": e, "records": len(recs), "failed": failed, "passed": failed == 0})
        return out

    # --------------------------------------------------------------------------------------------------- export
    @property
    def columns(self) -> list[str]:
        """experiment, quantity, the union of the parameter names (in order of first appearance), the numbers."""
        names = list(dict.fromkeys(k for r in self.records for k in r.params))
        return ["experiment", "quantity"] + names + list(_NUMBER_COLUMNS)

    def rows(self) -> list[dict]:
        """One flat dict per record, every column present (None where a record lacks a parameter)."""
        cols = self.columns
        return [{c: r.row().get(c) for c in cols} for r in self.records]

    def to_csv(self, path) -> None:
        """Write :meth:`rows` as CSV (empty cells for missing parameters)."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            for row in self.rows():
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def to_json(self, path, include_data: bool = True) -> None:
        """Write ``{"passed", "records", "data"}`` as JSON (``data`` only with ``include_data``)."""
        doc = {"passed": self.passed, "records": [_jsonable(asdict(r)) for r in self.records]}
        if include_data:
            doc["data"] = _jsonable(self.data)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)

    @classmethod
    def from_json(cls, path) -> "ResultTable":
        """Read a table written by :meth:`to_json` (data arrays come back as float arrays)."""
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        recs = [Record(**r) for r in doc["records"]]
        return cls(recs, _from_jsonable(doc.get("data", {})))

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (one row per record). Needs pandas."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("ResultTable.to_pandas needs pandas (pip install pandas)") from exc
        return pd.DataFrame(self.rows(), columns=self.columns)

    def to_markdown(self, max_rows: int | None = None) -> str:
        """A Markdown table (numbers to 4 significant digits, ✓/✗ for passed); ``max_rows`` truncates."""
        cols = self.columns
        shown = self.rows() if max_rows is None else self.rows()[:max_rows]

        def fmt(v):
            if v is None:
                return ""
            if isinstance(v, bool):
                return "✓" if v else "✗"
            if isinstance(v, numbers.Integral):
                return str(v)
            if isinstance(v, numbers.Real):
                return f"{v:.4g}"
            return str(v).replace("|", "\\|")

        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in shown:
            lines.append("| " + " | ".join(fmt(row[c]) for c in cols) + " |")
        if max_rows is not None and len(self.records) > max_rows:
            lines.append(f"\n… {len(self.records) - max_rows} more rows")
        return "\n".join(lines)


_MISSING = object()


def make_record(
    experiment: str,
    quantity: str,
    params: Mapping,
    theory: float,
    values,
    *,
    k_sigma: float = K_SIGMA,
    allowance: float = 0.0,
    floor: float = 0.0,
) -> Record:
    """A :class:`Record` from per-seed ``values``: mean, spread (ddof = 1) and
    ``tolerance = k_sigma·max(spread, floor)/√n + allowance``.

    ``floor`` is a lower bound for the per-seed standard deviation, a fraction of the fluctuation the finite-width
    theory expects of one draw (where that is known): with few seeds a sample spread can come out several times too
    small by chance, and the floor keeps that from making a check brittle.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = int(v.size)
    if n == 0:
        raise InvalidParameterError(f"{experiment}/{quantity}: no measurements")
    mean = float(v.mean())
    spread = float(v.std(ddof=1)) if n > 1 else 0.0
    theory = float(theory)
    tol = float(k_sigma) * max(spread, float(floor)) / math.sqrt(n) + float(allowance)
    ok = bool(math.isfinite(mean) and math.isfinite(theory) and math.isfinite(tol) and abs(mean - theory) <= tol)
    return Record(experiment, quantity, _jsonable(dict(params)), theory, mean, spread, n, tol, ok)


# ================================================================================================ seeds, inputs, tasks
def _seeds(seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InvalidParameterError(f"seeds must be a positive count or a sequence of seeds, got {seeds!r}")
        return list(range(int(seeds)))
    try:
        out = list(seeds)
    except TypeError:
        raise InvalidParameterError(f"seeds must be a count or a sequence of seeds, got {seeds!r}") from None
    if not out or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in out):
        raise InvalidParameterError(f"seeds must be a non-empty sequence of non-negative integers, got {seeds!r}")
    if len(set(out)) != len(out):
        raise InvalidParameterError(f"seeds must be distinct, got {out!r}")
    return [int(s) for s in out]


def task_seed(seed: int, experiment: str, index: int) -> int:
    """The 63-bit seed of configuration ``index`` of ``experiment`` for the base seed ``seed``.

    NumPy's ``SeedSequence([seed, salt(experiment), index])`` hashes the three into well-separated streams:
    neighbouring seeds or indices do not give correlated generators."""
    salt = _SALT.get(experiment, 1000 + sum(experiment.encode()))
    state = np.random.SeedSequence([int(seed), int(salt), int(index)]).generate_state(2, dtype=np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) & ((1 << 63) - 1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def correlated_inputs(n_inputs: int, width: int, q0: float, c0: float, generator: torch.Generator) -> torch.Tensor:
    """``n_inputs`` rows of width N_0 with ``|x_t|²/N_0 = q0`` and pairwise correlations ``x_s·x_t/(|x_s||x_t|) = c0``
    exactly, in a uniformly random orientation (float64, CPU).

    ``X = G^{1/2} Eᵀ`` with G the target Gram matrix ``N_0 q0 [(1 - c0) I + c0 11ᵀ]`` (symmetric square root) and E an
    N_0 × T matrix with orthonormal columns (QR of a Gaussian matrix from ``generator``, with the sign fix that makes it
    Haar). Needs T ≤ N_0 and ``-1/(T-1) ≤ c0 ≤ 1``. The finite-depth theory (THEORY §1, §3) starts from exactly these
    |x|²/N_0 and correlations, so the inputs add no sampling noise of their own."""
    T, n = int(n_inputs), int(width)
    if T < 1 or T > n:
        raise InvalidParameterError(f"need 1 ≤ n_inputs ≤ width, got n_inputs={T}, width={n}")
    if isinstance(q0, bool) or not isinstance(q0, numbers.Real) or not (q0 > 0 and math.isfinite(q0)):
        raise InvalidParameterError(f"q0 must be a positive number, got {q0!r}")
    if not (-1.0 <= c0 <= 1.0) or (T > 1 and c0 < -1.0 / (T - 1) - 1e-12):
        raise InvalidParameterError(f"c0={c0!r} is not a possible common correlation of {T} inputs")
    a = torch.randn(n, T, generator=generator, dtype=torch.float64)
    e, r = torch.linalg.qr(a)
    d = torch.sign(torch.diagonal(r))
    e = e * torch.where(d == 0, torch.ones_like(d), d)
    g = (1.0 - c0) * torch.eye(T, dtype=torch.float64) + c0 * torch.ones(T, T, dtype=torch.float64)
    w, v = torch.linalg.eigh(g)
    root = (v * w.clamp_min(0.0).sqrt()) @ v.T
    return math.sqrt(n * float(q0)) * (root @ e.T)


def _map(fn, tasks: list, executor, progress: Progress | None, label: str) -> list:
    """``[fn(t) for t in tasks]``, on ``executor`` when given (all submitted at once, results in task order)."""
    total = len(tasks)
    if progress is not None:
        progress(label, 0, total)
    out = []
    if executor is None:
        for i, t in enumerate(tasks):
            out.append(fn(t))
            if progress is not None:
                progress(label, i + 1, total)
        return out
    futures = [executor.submit(fn, t) for t in tasks]
    for i, f in enumerate(futures):
        out.append(f.result())
        if progress is not None:
            progress(label, i + 1, total)
    return out


def _network(spec: dict, gen: torch.Generator, output_width: int | None = None) -> RandomMLP:
    """The task's network: N_0 = N, ``output_width`` outputs (default N)."""
    n = spec["width"]
    return RandomMLP(
        n,
        n,
        spec["depth"],
        n if output_width is None else output_width,
        spec["activation"],
        spec["sigma_w"],
        spec["sigma_b"],
        weights=spec["weights"],
        device=spec["device"],
        generator=gen,
    )


def _task_common(activation, device) -> dict:
    """What every task dict carries besides its configuration: the activation as given when it is a string (picklable;
    an :class:`~meanfield.Activation` object is passed through) and the device as a string."""
    mf.get_activation(activation)  # validate early, in the calling process
    return {"activation": activation, "device": None if device is None else str(device)}


# ============================================================================================ points and arguments
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


def _positive(name, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (v > 0 and math.isfinite(v)):
        raise InvalidParameterError(f"{name} must be a positive number, got {v!r}")
    return float(v)


def _int(name, v, minimum=1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise InvalidParameterError(f"{name} must be an integer ≥ {minimum}, got {v!r}")
    return int(v)


def _ints(name, vs, minimum=1) -> list[int]:
    if isinstance(vs, numbers.Integral) and not isinstance(vs, bool):
        vs = [vs]
    out = [_int(name, v, minimum) for v in vs]
    if not out:
        raise InvalidParameterError(f"{name} must not be empty")
    return sorted(set(out))


def _correlation(name, c) -> float:
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not -1.0 <= c <= 1.0:
        raise InvalidParameterError(f"{name} must be a correlation in [-1, 1], got {c!r}")
    return float(c)


def _weight_kinds(ws) -> list[str]:
    out = [ws] if isinstance(ws, str) else list(ws)
    if not out or any(w not in ("gaussian", "orthogonal") for w in out):
        raise InvalidParameterError(f"weights must be 'gaussian', 'orthogonal' or a list of them, got {ws!r}")
    return out


def _chunks(results: list, size: int) -> list:
    return [results[i : i + size] for i in range(0, len(results), size)]


def _jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights, q0=None):
    from meanfield.spectra import jacobian_spectrum  # the spectra module is imported when first needed

    return jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights=weights, q0=q0)


# ======================================================================================== finite-width scales
TOP_GRID = 240  # density evaluations between the lower bound and the edge in top_eigenvalue_location


def top_eigenvalue_location(density, edge: float, lower: float, n: int, atoms=()) -> float:
    """The classical location γ_n of the largest of n eigenvalues drawn from a limiting spectral law:
    ``∫_{γ_n}^{edge} ρ + (atoms in [γ_n, edge]) = 1/n``.

    A sample of n eigenvalues does not reach the edge of its limiting law: its largest sits near γ_n (Tracy–Widom
    fluctuations around it aside), which for the heavy-tailed spectra of deep Gaussian networks is far below the edge
    (THEORY §2, last bullet). ``density`` evaluates ρ at an array of points; ``lower`` < edge bounds the search (the
    mean, say). Trapezoid rule on a grid geometric in the distance to the edge, which resolves both a square-root edge
    and a thin tail. Returns ``lower`` if the mass above it is below 1/n."""
    n = _int("n", n)
    if not edge > lower:
        return float(edge)
    d = np.geomspace(abs(edge) * 1e-10 if edge != 0 else 1e-300, edge - lower, TOP_GRID)
    x = edge - d
    rho = np.asarray(density(x), dtype=np.float64)
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(d))])
    for loc, m in atoms:
        mass = mass + m * ((loc >= x) & (loc <= edge))
    target = 1.0 / n
    j = int(np.searchsorted(mass, target))
    if j >= len(x):
        return float(lower)
    if j == 0:
        return float(x[0])
    t = (target - mass[j - 1]) / (mass[j] - mass[j - 1])
    return float(x[j - 1] - t * (d[j] - d[j - 1]))


def finite_width_variance(phi, sigma_w, sigma_b, depth, weights="gaussian", q0=1.0) -> float:
    """``v = Σ_l (μ_2(q^l)/μ_1(q^l)² − 1 − s_1)`` (s_1 = −1 Gaussian, 0 orthogonal weights): the relative variance of
    the JJᵀ spectrum of ``depth`` layers on the trajectory from ``|x|²/N_0 = q0`` (THEORY §2;
    :func:`meanfield.spectra.jacobian_spectrum`), computed as ``m_2/m_1² − 1`` from the exact log-moments (no overflow
    at any depth).

    ``v/N`` is the relative variance, across draws of a width-N network, of a backward gain ``|Jᵀu|²/|u|²`` through
    those layers: the scale of the finite-width corrections of everything built from products of random layers, which
    grows with depth/width, faster in the chaotic phase and for Gaussian weights (Hanin & Nica 2020, "Finite depth and
    width corrections to the neural tangent kernel", ICLR). The Fisher tolerances are multiples of it."""
    spec = _jacobian_spectrum(phi, sigma_w, sigma_b, depth, weights, q0=q0)
    return float(math.expm1(spec.log_moment(2) - 2.0 * spec.log_moment(1)))


# ========================================================================================= (1) q^l, c^l trajectories
# Sized on seeds 100-115 at N = 250 and 500 (tanh_points(), L = 12, two inputs with q0 = 1, c0 = 0.5). Per draw, q^l
# (the mean over the two inputs) fluctuated by 0.6-1.7 × √(2/N)·q^l — the χ² fluctuation of |Wx|²/N, compounded over
# the layers — and c^l by 0.45-2.1 × (1 - c²)√(2/N); the seed means showed no bias above the noise (|z| < 3.5 over 144
# records), and a finite-N mean is biased at O(1/N). Floors TRAJECTORY_FLOOR·√(2/N)·q^l and
# TRAJECTORY_FLOOR·(1 - c²)·√(2/N); allowances TRAJECTORY_BIAS/N (relative for q^l, absolute for c^l). A 10 % error in
# σ_w moves q^1 by 21 % and the deep q^l by more.
TRAJECTORY_BIAS = 2.0
TRAJECTORY_FLOOR = 0.5


def _trajectory_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen, output_width=1)
    X = correlated_inputs(2, spec["width"], spec["q0"], spec["c0"], gen)
    s = layer_statistics(net, X)
    return {"q": s.q.mean(axis=1), "c": s.c12.copy()}


def trajectories(
    points: Mapping | None = None,
    depth: int = 12,
    width: int = 500,
    seeds=4,
    q0: float = 1.0,
    c0: float = 0.5,
    activation="tanh",
    weights: str = "gaussian",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(1) q^l and c^l of two inputs through random networks vs :func:`meanfield.propagate` (THEORY §1; Poole et al.
    2016, Schoenholz et al. 2017).

    Two inputs with ``|x|²/N_0 = q0`` and correlation ``c0`` exactly (:func:`correlated_inputs`) go through a network
    of ``depth`` hidden layers of ``width`` (N_0 = N) at each point (default :func:`tanh_points`: ordered, critical and
    chaotic tanh at σ_b² = 0.05). Per seed, q^l is ``|h^l|²/N`` averaged over the two inputs and c^l their
    pre-activation correlation. Records: ``q`` and ``c`` at every layer l = 1..L of every point.

    Tolerances: ``k_sigma·max(spread, floor)/√n + allowance`` with, for q^l, floor ``0.5·√(2/N)·q^l`` and allowance
    ``2/N·q^l``; for c^l, floor ``0.5·(1 - c²)·√(2/N)`` and allowance ``2/N``. A draw's q^l fluctuates by about
    √(2/N) relative (the χ² fluctuation of |Wx|²/N), c^l by about (1 - c²)√(2/N); the bias of the seed mean is O(1/N)
    (:data:`TRAJECTORY_FLOOR`, :data:`TRAJECTORY_BIAS`).

    ``data["trajectories"]``: per point, the layers, the theory q^l, c^l and the per-seed measurements.
    """
    name = "trajectories"
    pts = _points(points if points is not None else tanh_points())
    L, N = _int("depth", depth), _int("width", width)
    q0, c0 = _positive("q0", q0), _correlation("c0", c0)
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    w = _weight_kinds(weights)[0]
    seeds_ = _seeds(seeds)
    act_name = mf.get_activation(activation).name
    common = _task_common(activation, device)
    configs = list(pts.items())
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, q0=q0, c0=c0, seed=task_seed(s, name, i))
        for i, (_, (sw, sb)) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_trajectory_task, tasks, executor, progress, name), len(seeds_))
    fl = TRAJECTORY_FLOOR * math.sqrt(2.0 / N)
    records, data = [], []
    for (pname, (sw, sb)), res in zip(configs, results):
        th = mf.propagate(activation, sw * scale, sb, L, q0=q0, c0=c0)
        qs = np.array([r["q"] for r in res])
        cs = np.array([r["c"] for r in res])
        base = dict(activation=act_name, point=pname, sigma_w=sw, sigma_b=sb, weights=w, width=N)
        for l in range(1, L + 1):
            p = dict(base, layer=l)
            tq, tc = float(th.q[l]), float(th.c[l])
            records.append(make_record(name, "q", p, tq, qs[:, l - 1], k_sigma=k_sigma, floor=fl * abs(tq),
                                       allowance=TRAJECTORY_BIAS / N * abs(tq)))
            records.append(make_record(name, "c", p, tc, cs[:, l - 1], k_sigma=k_sigma, floor=fl * (1.0 - tc * tc),
                                       allowance=TRAJECTORY_BIAS / N))
        data.append(dict(base, layers=np.arange(1.0, L + 1), q_theory=np.asarray(th.q[1:]),
                         c_theory=np.asarray(th.c[1:]), q=qs, c=cs))
    return ResultTable(records, {name: data})


# ============================================================================================ (2) Jacobian spectrum
# Sized on seeds 100-115 and 300-347 at N = 128, 256, 512 (1024: 4 seeds), tanh critical line at q* = 1/64, 1/2, 2,
# L = 4 and 8, relative to the theory value unless stated:
# * mean m_1: per draw it spreads by 0.2-1.2 × CV/√N (CV = √variance/m_1, the spectrum's relative width); the seed
#   mean was biased by up to ≈ L/N (Gaussian; orthogonal 0.1·L/N). Floor 0.1·CV·m_1/√N, allowance L/N.
# * variance: bias ≈ +0.7·L/N for orthogonal weights (q* = 1/64, L = 8: +3.9 % at N = 128, +2.2 % at 256, +0.5 % at
#   512); Gaussian spectra are heavy-tailed and their sample variance converges slowly (±60 % per draw at q* = 2).
#   Allowance 1.5·L/N (orthogonal) or 0.5·L²/N (Gaussian), at most 0.5.
# * quantile λ_p: bias up to ≈ 1.5·L/N relative (Gaussian q* = 1/64, p = 0.9) and below 0.7·L/N spectrum widths
#   √variance (orthogonal). Allowance 2·L/N·min(λ_p, √variance). Quantiles below 1e-4·m_1 are not checked (no
#   record): deep in the heavy small-λ tail of non-isometric spectra the smallest singular values of a finite product
#   converge slowly (measured 0.1-quantiles 2-1000 × off at q* = 2).
JACOBIAN_MEAN_BIAS = 1.0
JACOBIAN_MEAN_FLOOR = 0.1
JACOBIAN_VARIANCE_BIAS = {"orthogonal": 1.5, "gaussian": 0.5}
JACOBIAN_QUANTILE_BIAS = 2.0
JACOBIAN_QUANTILE_MIN = 1e-4
JACOBIAN_GRID = 3000  # points of the theory density on (0, edge] for the quantiles and the figures


def _jacobian_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen, output_width=1)
    x = correlated_inputs(1, spec["width"], spec["q_in"], 0.0, gen)[0]
    return {"eigenvalues": jacobian_singular_values(net, x) ** 2}


def _spectrum_cdf(spec, grid_size: int = JACOBIAN_GRID):
    """(x, ρ(x), F(x)) of a :class:`~meanfield.spectra.JacobianSpectrum` on a grid linear on (0, edge] and geometric
    towards 0. ``F(x) = 1 − ∫_x^edge ρ − (atoms above x)``: integrating down from the edge keeps the heavy small-λ part
    of deep non-isometric spectra, which no grid resolves, out of the upper quantiles."""
    edge = spec.edge
    lin = np.linspace(0.0, edge, grid_size)[1:]
    x = np.unique(np.concatenate([lin, np.geomspace(edge * 1e-12, edge, grid_size // 3)]))
    rho = np.asarray(spec.density(x), dtype=np.float64)
    seg = 0.5 * (rho[1:] + rho[:-1]) * np.diff(x)
    upper = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])
    for loc, mass in spec.atoms:
        upper = upper + mass * (x < loc)
    return x, rho, 1.0 - upper


def _quantile(x, cdf, p) -> float:
    j = int(np.searchsorted(cdf, p))
    if j <= 0:
        return float(x[0])
    if j >= len(x):
        return float(x[-1])
    f0, f1 = cdf[j - 1], cdf[j]
    t = 0.0 if f1 == f0 else (p - f0) / (f1 - f0)
    return float(x[j - 1] + t * (x[j] - x[j - 1]))


def jacobian_spectra(
    points: Mapping | None = None,
    weights=("orthogonal", "gaussian"),
    depth: int = 8,
    width: int = 256,
    seeds=6,
    quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
    bins: int = 50,
    activation="tanh",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(2) The eigenvalues of JJᵀ (J = ∂x^L/∂x^0, N_0 = N) vs :func:`meanfield.spectra.jacobian_spectrum` (THEORY §2;
    Pennington, Schoenholz & Ganguli 2017, 2018): dynamical isometry.

    At each point (default :func:`critical_points` of tanh at q* = 1/64, 1/2, 2) and for each weight ensemble, one
    input per seed sits at the fixed point (``σ_w²|x|²/N_0 + σ_b² = q*``: every layer at q*, as the theory assumes),
    and all N eigenvalues of JJᵀ are measured. Records: ``mean`` (m_1 = χ_1^L), ``variance``
    (``m_1² L(μ_2/μ_1² − 1 − s_1)``) and ``quantile_p`` for each p in ``quantiles``, against the theory's exact
    moments and the quantiles of its density. The largest eigenvalue is not compared with the edge here (finite
    spectra of deep Gaussian networks sit well below it, THEORY §2; :func:`sokol_park` compares it with where the
    largest of N eigenvalues should sit).

    Tolerances: ``k_sigma·max(spread, floor)/√n`` plus finite-width allowances, which grow as L/N (the corrections of a
    product of L random layers): mean ``L/N·m_1`` with floor ``0.1·CV·m_1/√N`` (CV = √variance/m_1); variance
    ``1.5·L/N`` (orthogonal) or ``0.5·L²/N`` (Gaussian, heavy-tailed) of the theory value, at most 0.5 of it;
    quantile p ``2·L/N·min(λ_p, √variance)``. Quantiles below ``1e-4·m_1`` are not checked (no record: see
    :data:`JACOBIAN_QUANTILE_MIN`).

    ``data["jacobian_spectra"]``: per point and ensemble, a histogram of log₁₀ λ pooled over seeds and the theory
    density of log₁₀ λ (``ln 10 · λ ρ(λ)``).
    """
    name = "jacobian_spectra"
    act = mf.get_activation(activation)
    pts = _points(points if points is not None else critical_points(activation))
    ws = _weight_kinds(weights)
    L, N = _int("depth", depth), _int("width", width)
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    probs = [float(p) for p in quantiles]
    if any(not 0.0 < p < 1.0 for p in probs):
        raise InvalidParameterError(f"quantiles must lie in (0, 1), got {quantiles!r}")
    nbins = _int("bins", bins, 2)
    seeds_ = _seeds(seeds)
    common = _task_common(activation, device)
    configs = []
    for pname, (sw, sb) in pts.items():
        q, q_in = _fixed_point_input(act, sw, sb)
        configs.extend((pname, sw, sb, q, q_in, w) for w in ws)
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, q_in=q_in, seed=task_seed(s, name, i))
        for i, (_, sw, sb, _, q_in, w) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_jacobian_task, tasks, executor, progress, name), len(seeds_))
    records, data = [], []
    for (pname, sw, sb, q, q_in, w), res in zip(configs, results):
        lam = np.array([r["eigenvalues"] for r in res])
        spec = _jacobian_spectrum(act, sw * scale, sb, L, w)
        own = spec if scale == 1.0 else _jacobian_spectrum(act, sw, sb, L, w)  # the measured networks' spectrum
        base = dict(activation=act.name, point=pname, q_star=q, sigma_w=sw, sigma_b=sb, weights=w, width=N, depth=L)
        sd = math.sqrt(own.variance)
        records.append(make_record(name, "mean", base, spec.mean, lam.mean(axis=1), k_sigma=k_sigma,
                                   floor=JACOBIAN_MEAN_FLOOR * sd / math.sqrt(N),
                                   allowance=JACOBIAN_MEAN_BIAS * L / N * abs(spec.mean)))
        vb = JACOBIAN_VARIANCE_BIAS[w] * (L if w == "orthogonal" else L * L) / N
        records.append(make_record(name, "variance", base, spec.variance, lam.var(axis=1), k_sigma=k_sigma,
                                   allowance=min(vb, 0.5) * spec.variance))
        x, rho, cdf = _spectrum_cdf(spec)
        for p in probs:
            qp = _quantile(x, cdf, p)
            if not qp >= JACOBIAN_QUANTILE_MIN * spec.mean:
                continue
            records.append(make_record(name, f"quantile_{p:g}", base, qp, np.quantile(lam, p, axis=1),
                                       k_sigma=k_sigma, allowance=JACOBIAN_QUANTILE_BIAS * L / N * min(qp, sd)))
        pooled = lam.reshape(-1)
        pos = pooled[pooled > 0]
        lo = max(float(np.quantile(pos, 0.002)), spec.edge * 1e-8) if pos.size else spec.edge * 1e-8
        hi = max(float(pooled.max()), spec.edge) * 1.02
        edges = np.geomspace(lo, hi, nbins + 1)
        counts, _ = np.histogram(pooled, bins=edges)
        inside = (x >= lo) & (x <= hi)
        data.append(dict(base, bin_edges=edges, histogram=counts / (pooled.size * np.diff(np.log10(edges))),
                         x=x[inside], log10_density=math.log(10.0) * x[inside] * rho[inside],
                         theory_mean=spec.mean, theory_edge=spec.edge, measured_max=lam.max(axis=1)))
    return ResultTable(records, {name: data})


# ============================================================================================ (3) FIM vs depth
# Sized on seeds 100-115 at N = 64, 128, 256 (tanh_points(), L = 1..16, T = 16, input correlation 0.5), relative to the
# theory value, with v = finite_width_variance(...) of the network: per draw, λ_max and m_λ spread by 0.3-0.9 ×
# √(v/N) and s_λ by about twice that; the seed means were biased by up to ≈ 2·v/N for λ_max and m_λ (Var(Θ) and the
# curvature of the top eigenvalue; 2.8·v/N for Gaussian chaotic L = 16 at N = 128, within the statistical part) and
# ≈ 4·v/N for s_λ (E[Θ²] − E[Θ]²). Floors FISHER_FLOOR·√(v/N), allowances FISHER_BIAS·v/N.
# With uncorrelated inputs and small σ_b, κ_2 ≈ 0, Karakida's outlier merges with the bulk and the measured top
# eigenvalue is the edge of the noisy bulk (+9 % at every N for chaotic L = 1): hence input_correlation = 0.5.
FISHER_BIAS = {"lambda_max": 2.0, "mean_eigenvalue": 2.0, "second_moment": 4.0}
FISHER_FLOOR = {"lambda_max": 0.25, "mean_eigenvalue": 0.25, "second_moment": 0.5}
FISHER_QUANTITIES = ("lambda_max", "mean_eigenvalue", "second_moment")


def _fisher_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen, output_width=spec["n_outputs"])
    X = correlated_inputs(spec["n_samples"], spec["width"], spec["input_norm"], spec["input_correlation"], gen)
    ev = fisher_eigenvalues(net, X, biases=spec["biases"])
    P = net.num_parameters(spec["biases"])
    C = spec["n_outputs"]
    return {
        "lambda_max": float(ev[:C].mean()),
        "mean_eigenvalue": float(ev.sum() / P),
        "second_moment": float(np.square(ev).sum() / P),
    }


def fisher_depth(
    points: Mapping | None = None,
    weights=("gaussian", "orthogonal"),
    widths=(128, 256),
    depths=(1, 2, 4, 8, 16),
    n_samples: int = 16,
    n_outputs: int = 1,
    seeds=4,
    input_norm: float = 1.0,
    input_correlation: float = 0.5,
    biases: bool = True,
    activation="tanh",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(3) The headline: the Fisher information's largest eigenvalue λ_max, mean m_λ and second moment s_λ vs depth,
    Gaussian and orthogonal weights, on and off the critical line, at several widths, vs
    :func:`meanfield.fisher_statistics` (Karakida, Akaho & Amari 2019; THEORY §3).

    Per seed: a network (N_0 = N, C = ``n_outputs``) and T = ``n_samples`` inputs with ``|x|²/N_0 = input_norm`` and
    pairwise correlation ``input_correlation`` exactly (:func:`correlated_inputs`); the exact FIM spectrum through the
    layerwise Gram (:func:`empirical.fisher_eigenvalues`), hence λ_max (the mean of the top C: THEORY §3's
    finite-width note), ``m_λ = Tr F/P`` and ``s_λ = Tr F²/P``. ``points`` default :func:`tanh_points`.

    Tolerances, relative to the theory value: ``k_sigma·max(spread, f·√(v/N))/√n + b·v/N`` with f = 0.25, b = 2 for
    λ_max and m_λ and f = 0.5, b = 4 for s_λ (a square), where ``v = Σ_l (μ_2/μ_1² − 1 − s_1)`` is the relative
    variance of the network's Jacobian spectrum (:func:`finite_width_variance`, at the network's σ_w; recorded as the
    parameter ``finite_width_variance`` = v/N): the finite-width corrections of the NTK grow with depth/width, faster in
    the chaotic phase and for Gaussian weights, and v/N measures exactly that (:data:`FISHER_FLOOR`,
    :data:`FISHER_BIAS`). The inputs are correlated by default so that the outlier λ_max ≈ αN[(T-1)/T κ_2 + κ_1/T]
    stands clear of the bulk: with κ_2 ≈ 0 (uncorrelated inputs, small σ_b) the measured top eigenvalue is the edge of
    the noisy bulk instead. The same happens deep in the chaotic phase, where the cross gains (χ_c < 1) make κ_2/κ_1
    decay with depth (tanh at σ_w² = 2.5: κ_2/κ_1 = 0.17, 0.07, 0.01 at L = 8, 16, 32): at L = 32 the measured λ_max
    exceeded the theory by 37 % at N = 512 — a regime outside Karakida's outlier formula at finite width, which the
    default depths (≤ 16) stay out of.

    ``data["fisher_depth"]``: per point, ensemble and width, the theory at every depth 1..max(depths) and the
    per-seed measurements (depths × seeds).
    """
    name = "fisher_depth"
    act = mf.get_activation(activation)
    pts = _points(points if points is not None else tanh_points())
    ws = _weight_kinds(weights)
    Ns, Ls = _ints("widths", widths), _ints("depths", depths)
    T, C = _int("n_samples", n_samples), _int("n_outputs", n_outputs)
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    qn, rho = _positive("input_norm", input_norm), _correlation("input_correlation", input_correlation)
    if T > min(Ns):
        raise InvalidParameterError(f"n_samples={T} inputs need widths ≥ {T} (exact norms and correlations)")
    seeds_ = _seeds(seeds)
    common = _task_common(activation, device)
    configs = [(p, sw, sb, w, N, L) for p, (sw, sb) in pts.items() for w in ws for N in Ns for L in Ls]
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, n_samples=T, n_outputs=C, input_norm=qn,
             input_correlation=rho, biases=bool(biases), seed=task_seed(s, name, i))
        for i, (_, sw, sb, w, N, L) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_fisher_task, tasks, executor, progress, name), len(seeds_))
    fine = np.arange(1, max(Ls) + 1)
    theory = {
        (p, w, N): mf.fisher_statistics(act, sw * scale, sb, fine, N, T, n_outputs=C, input_norm=qn,
                                        input_correlation=rho, biases=bool(biases), weights=w)
        for p, (sw, sb) in pts.items() for w in ws for N in Ns
    }
    records, measured = [], {}
    for (p, sw, sb, w, N, L), res in zip(configs, results):
        th = theory[p, w, N]
        v = finite_width_variance(act, sw, sb, L, w, qn) / N
        base = dict(activation=act.name, point=p, sigma_w=sw, sigma_b=sb, weights=w, width=N, depth=L, n_samples=T,
                    n_outputs=C, input_correlation=rho, finite_width_variance=v)
        for qty in FISHER_QUANTITIES:
            vals = [r[qty] for r in res]
            tv = float(getattr(th, qty)[L - 1])
            records.append(make_record(name, qty, base, tv, vals, k_sigma=k_sigma,
                                       floor=FISHER_FLOOR[qty] * math.sqrt(v) * abs(tv),
                                       allowance=FISHER_BIAS[qty] * v * abs(tv)))
            measured.setdefault((p, w, N), {}).setdefault(qty, []).append(vals)
    data = []
    for (p, w, N), m in measured.items():
        th = theory[p, w, N]
        sw, sb = pts[p]
        data.append(dict(activation=act.name, point=p, sigma_w=sw, sigma_b=sb, weights=w, width=N, n_samples=T,
                         n_outputs=C, depths=np.asarray(Ls, dtype=np.float64), theory_depths=fine.astype(np.float64),
                         **{f"theory_{q}": np.asarray(getattr(th, q), dtype=np.float64) for q in FISHER_QUANTITIES},
                         **{q: np.asarray(m[q], dtype=np.float64) for q in FISHER_QUANTITIES}))
    return ResultTable(records, {name: data})


# ===================================================================================== (4) conditional FIM spectrum
# Sized on seeds 100-111 at N = 100 and 200 (critical tanh at q* = 1/64 and 1/2, L = 1..16, C = N, both ensembles):
# the mean of Φ/N agreed within its seed spread (bias below 2/N relative); the variance was biased by ≈ +0.5·L/N
# relative (orthogonal q* = 1/64, L = 16: +8.7 % at N = 100, +4.2 % at N = 200). The largest eigenvalue sat below the
# limiting edge by up to 28 % for deep Gaussian networks (heavy-tailed spectra with a tiny density near the edge),
# which the theory accounts for itself: the largest of N eigenvalues sits near γ_N, ∫_{γ_N}^{edge} ρ = 1/N; the
# measured deficits were 0.5-0.9 × (edge − γ_N). Per draw, the mean and λ_max spread by 0.29-0.5 × √(v/N) relative
# (v = finite_width_variance of the network: the shifts a_l/N and the backward gains fluctuate together) and the
# variance by 0.1-2.7 × √(2/N). Allowances: mean CONDITIONAL_MEAN_BIAS/N relative; variance
# CONDITIONAL_VARIANCE_BIAS·L/N relative (at most 0.5); λ_max edge − γ_N (top_eigenvalue_location). Floors
# CONDITIONAL_FLOOR·√(v/N) (mean, λ_max) and 0.1·√(2/N) (variance), relative.
CONDITIONAL_MEAN_BIAS = 2.0
CONDITIONAL_VARIANCE_BIAS = 2.0
CONDITIONAL_FLOOR = 0.25


def _conditional_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen)  # C = N outputs (THEORY §4)
    x = correlated_inputs(1, spec["width"], spec["q_in"], 0.0, gen)[0]
    ev = conditional_fisher_eigenvalues(net, x, normalize=True)
    out = {"mean": float(ev.mean()), "variance": float(ev.var()), "lambda_max": float(ev[0])}
    if spec["keep_spectrum"]:
        out["eigenvalues"] = ev
    return out


def conditional_fisher(
    points: Mapping | None = None,
    weights=("orthogonal", "gaussian"),
    depths=(1, 2, 4, 8, 16),
    width: int = 200,
    seeds=3,
    bins: int = 50,
    activation="tanh",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(4) The conditional FIM ``F(θ|x)/N`` (one input, C = N outputs) vs :func:`meanfield.conditional_fisher_spectrum`
    (Hayase & Karakida 2021; THEORY §4).

    At each point (default: critical tanh at q* = 1/64, close to dynamical isometry) and for each weight ensemble, the
    input sits at the fixed point (``σ_w²|x|²/N_0 + σ_b² = q*``) and the N eigenvalues of ``Φ/N`` are measured. Records
    per depth: ``mean``, ``variance`` and ``lambda_max`` (the theory's upper edge). Under dynamical isometry the mean
    grows by q̂* + 1/N per layer and the spectrum stays concentrated, so λ_max ∝ depth (hence a learning rate ∝ 1/L for
    online training).

    Tolerances: ``k_sigma·max(spread, floor)/√n`` plus allowances — mean: ``2/N`` relative; variance: ``2·L/N``
    relative (at most 0.5); λ_max: ``edge − γ_N`` with γ_N where the theory puts the largest of N eigenvalues
    (``∫_{γ_N}^{edge} ρ = 1/N``, :func:`top_eigenvalue_location`): a sample of N eigenvalues does not reach the edge,
    least of all for the heavy-tailed spectra of deep Gaussian networks. Floors: ``0.25·√(v/N)`` of the value for the
    mean and λ_max (v = :func:`finite_width_variance` of the network), ``0.1·√(2/N)`` of it for the variance.

    ``data["conditional_fisher"]``: per point and ensemble, mean and λ_max vs depth (theory and per seed) and, at the
    largest depth, a histogram of log₁₀ of the eigenvalues pooled over seeds with the theory density of log₁₀ λ
    (``ln 10 · λρ(λ)``) and the atoms.
    """
    name = "conditional_fisher"
    act = mf.get_activation(activation)
    pts = _points(points if points is not None else critical_points(activation, (1 / 64,)))
    ws = _weight_kinds(weights)
    Ls = _ints("depths", depths)
    N = _int("width", width)
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    nbins = _int("bins", bins, 2)
    seeds_ = _seeds(seeds)
    common = _task_common(activation, device)
    configs = []
    for p, (sw, sb) in pts.items():
        q, q_in = _fixed_point_input(act, sw, sb)
        configs.extend((p, sw, sb, q, q_in, w, L) for w in ws for L in Ls)
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, q_in=q_in, keep_spectrum=L == Ls[-1],
             seed=task_seed(s, name, i))
        for i, (_, sw, sb, _, q_in, w, L) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_conditional_task, tasks, executor, progress, name), len(seeds_))
    records, series = [], {}
    for (p, sw, sb, q, q_in, w, L), res in zip(configs, results):
        th = mf.conditional_fisher_spectrum(act, sw * scale, sb, L, N, weights=w, input_norm=q_in)
        sv = math.sqrt(finite_width_variance(act, sw, sb, L, w, q_in) / N)
        base = dict(activation=act.name, point=p, q_star=q, sigma_w=sw, sigma_b=sb, weights=w, width=N, depth=L)
        records.append(make_record(name, "mean", base, th.mean, [r["mean"] for r in res], k_sigma=k_sigma,
                                   floor=CONDITIONAL_FLOOR * sv * abs(th.mean),
                                   allowance=CONDITIONAL_MEAN_BIAS / N * abs(th.mean)))
        records.append(make_record(name, "variance", base, th.variance, [r["variance"] for r in res], k_sigma=k_sigma,
                                   floor=0.1 * math.sqrt(2.0 / N) * th.variance,
                                   allowance=min(CONDITIONAL_VARIANCE_BIAS * L / N, 0.5) * th.variance))
        gamma = top_eigenvalue_location(th.density, th.lambda_max, th.mean, N, th.atoms)
        records.append(make_record(name, "lambda_max", base, th.lambda_max, [r["lambda_max"] for r in res],
                                   k_sigma=k_sigma, floor=CONDITIONAL_FLOOR * sv * th.lambda_max,
                                   allowance=th.lambda_max - gamma))
        s = series.setdefault((p, w), dict(activation=act.name, point=p, q_star=q, sigma_w=sw, sigma_b=sb, weights=w,
                                           width=N, depths=[], theory_mean=[], theory_lambda_max=[], mean=[],
                                           lambda_max=[]))
        s["depths"].append(L)
        s["theory_mean"].append(th.mean)
        s["theory_lambda_max"].append(th.lambda_max)
        s["mean"].append([r["mean"] for r in res])
        s["lambda_max"].append([r["lambda_max"] for r in res])
        if L == Ls[-1]:
            pooled = np.concatenate([r["eigenvalues"] for r in res])
            lo, hi = float(pooled.min()) * 0.98, max(float(pooled.max()), th.lambda_max) * 1.02
            edges = np.geomspace(lo, hi, nbins + 1)
            counts, _ = np.histogram(pooled, bins=edges)
            xs = np.geomspace(lo, hi, 400)
            s.update(spectrum_depth=L, bin_edges=edges, x=xs,
                     histogram=counts / (pooled.size * np.diff(np.log10(edges))),
                     log10_density=math.log(10.0) * xs * np.asarray(th.density(xs), dtype=np.float64),
                     atoms=np.asarray([[a, m] for a, m in th.atoms], dtype=np.float64).reshape(-1, 2))
    data = [{k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in s.items()}
            for s in series.values()]
    return ResultTable(records, {name: data})


# ======================================================================================== (5) learning rate 2/λ_max
# The prediction concerns the linearised dynamics: with η = f × 2/λ_max the top mode of the kernel contracts by
# |1 − ηλ| < 1 per step for f < 1 and grows for f > 1. A finite network has its own λ_max, which differs from the
# theory's by 1.5-3 % per draw (orthogonal weights, L = 4, N = 256-1024; Gaussian weights 6-9 %), and its kernel moves
# while it trains: in runs sized on seeds 0-11 and 100-115 at N = 256, 512, 1024, draws whose own η·λ_max was within
# 5 % of the threshold 2 behaved either way (one at η·λ_max = 2.09 never rose in 100 steps: the kernel's top
# eigenvalue fell below 2/η first), while every draw at least 5 % from it on the predicted side behaved as predicted.
# So a seed is held to the prediction when its own f·λ_max/λ_max(theory) lies at least LR_MARGIN beyond 1 on the
# predicted side; the others (finite-width fluctuations of λ_max, which the lambda_max record checks against the
# theory) are excused and counted. A step counts as an increase when the loss grows by more than LOSS_RTOL of its
# current value (nearly stationary losses wiggle by ~1e-3 of themselves as the kernel drifts; an unstable mode grows
# its share of the loss by ≥ 20 % per step at 5 % beyond the threshold) plus LOSS_ATOL of the initial loss (rounding).
LR_MARGIN = 0.05
LOSS_RTOL = 1e-2
LOSS_ATOL = 1e-12


def _train_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen, output_width=spec["n_outputs"])
    T, C = spec["n_samples"], spec["n_outputs"]
    X = correlated_inputs(T, spec["width"], spec["input_norm"], spec["input_correlation"], gen)
    Y = torch.randn(T, C, generator=gen, dtype=torch.float64)
    X = X.to(device=net.device, dtype=net.dtype)
    Y = Y.to(device=net.device, dtype=net.dtype)
    lam = float(fisher_eigenvalues(net, X, top_k=C)[:C].mean())
    net.requires_grad_(True)
    params = list(net.parameters())
    start = [p.detach().clone() for p in params]
    curves = {}
    for factor in spec["factors"]:
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        eta = factor * spec["eta_theory"]
        losses = []
        with torch.enable_grad():
            for step in range(spec["steps"] + 1):
                r = net(X) - Y
                loss = 0.5 * r.square().sum() / T  # (1/2T) Σ_t |f(x_t) − y_t|²: its Gauss–Newton matrix is the FIM
                losses.append(float(loss.detach()))
                if step == spec["steps"] or not math.isfinite(losses[-1]):
                    break
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p.sub_(eta * g)
        curves[f"{factor:g}"] = np.asarray(losses, dtype=np.float64)
    return {"lambda_max": lam, "losses": curves}


def _monotone(losses: np.ndarray) -> bool:
    """No loss above its predecessor by more than LOSS_RTOL of it plus LOSS_ATOL of the initial loss (a loss that
    overflowed is not monotone)."""
    if not np.all(np.isfinite(losses)):
        return False
    return bool(np.all(np.diff(losses) <= LOSS_RTOL * losses[:-1] + LOSS_ATOL * losses[0]))


def learning_rate(
    points: Mapping | None = None,
    factors: Sequence[float] = (0.9, 1.1),
    weights: str = "orthogonal",
    depth: int = 4,
    width: int = 512,
    n_samples: int = 16,
    n_outputs: int = 1,
    steps: int = 40,
    seeds=4,
    input_norm: float = 1.0,
    input_correlation: float = 0.5,
    activation="tanh",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(5) Full-batch gradient descent on the squared loss ``(1/2T) Σ_t |f(x_t) − y_t|²`` with random N(0, 1) targets at
    ``η = factor × 2/λ_max``, λ_max from :func:`meanfield.fisher_statistics` (THEORY §3 note; Karakida et al. 2019):
    below 2/λ_max (factor 0.9) every mode of the linearised dynamics contracts and the loss decreases monotonically;
    above it (1.1) the top mode grows by |1 − ηλ_max| > 1 per step and the loss does not.

    Per seed, the network, inputs (as in :func:`fisher_depth`) and targets are drawn once and trained from the same
    initialisation at every factor, for ``steps`` steps. Records per point:

    * ``lambda_max`` at initialisation against the theory (the learning rate's basis), with :func:`fisher_depth`'s
      tolerance;
    * ``monotone@eta=f×2/lambda_max`` for each factor f: the fraction of seeds whose loss never increased (by more than
      :data:`LOSS_RTOL` of itself), theory 1 for f < 1 and 0 for f > 1, tolerance 0. A seed is held to this prediction
      when its own λ_max puts f·λ_max/λ_max(theory) at least :data:`LR_MARGIN` (5 %) beyond 1 on the predicted side;
      draws closer to the threshold, a finite-width fluctuation of λ_max, can go either way and are excused (their
      number is the parameter ``excused``; ``n`` counts the seeds held). If every seed is excused the record fails:
      the theory's λ_max then misses the networks' by more than the margin, and the learning rate it gives does not
      separate monotone from non-monotone training.

    Default point: critical tanh at σ_b² = 0.05; default weights orthogonal, whose λ_max fluctuates by ~2 % between
    draws (Gaussian: 6-9 %).

    ``data["learning_rate"]``: per point, the loss curves (seeds × steps + 1) for every factor and λ_max per seed.
    """
    name = "learning_rate"
    act = mf.get_activation(activation)
    pts = _points(points if points is not None else {"critical": tanh_points()["critical"]})
    w = _weight_kinds(weights)[0]
    L, N = _int("depth", depth), _int("width", width)
    T, C = _int("n_samples", n_samples), _int("n_outputs", n_outputs)
    n_steps = _int("steps", steps)
    fs = [_positive("factors", f) for f in factors]
    if not fs or any(f == 1.0 for f in fs):
        raise InvalidParameterError(
            f"factors must be non-empty and differ from 1 (η = 2/λ_max is marginal), got {factors!r}"
        )
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    qn, rho = _positive("input_norm", input_norm), _correlation("input_correlation", input_correlation)
    if T > N:
        raise InvalidParameterError(f"n_samples={T} inputs need width ≥ {T}")
    seeds_ = _seeds(seeds)
    common = _task_common(activation, device)
    configs = []
    for p, (sw, sb) in pts.items():
        th = mf.fisher_statistics(act, sw * scale, sb, L, N, T, n_outputs=C, input_norm=qn, input_correlation=rho,
                                  biases=True, weights=w)
        configs.append((p, sw, sb, th))
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, n_samples=T, n_outputs=C, input_norm=qn,
             input_correlation=rho, steps=n_steps, factors=fs, eta_theory=float(th.learning_rate_bound),
             seed=task_seed(s, name, i))
        for i, (_, sw, sb, th) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_train_task, tasks, executor, progress, name), len(seeds_))
    records, data = [], []
    for (p, sw, sb, th), res in zip(configs, results):
        lam_th = float(th.lambda_max)
        v = finite_width_variance(act, sw, sb, L, w, qn) / N
        base = dict(activation=act.name, point=p, sigma_w=sw, sigma_b=sb, weights=w, width=N, depth=L, n_samples=T,
                    n_outputs=C)
        records.append(make_record(name, "lambda_max", dict(base, finite_width_variance=v), lam_th,
                                   [r["lambda_max"] for r in res], k_sigma=k_sigma,
                                   floor=FISHER_FLOOR["lambda_max"] * math.sqrt(v) * lam_th,
                                   allowance=FISHER_BIAS["lambda_max"] * v * lam_th))
        curves = {}
        lam_seed = np.array([r["lambda_max"] for r in res]) / lam_th
        for f in fs:
            key = f"{f:g}"
            predicted = f < 1.0
            held = (f * lam_seed <= 1.0 - LR_MARGIN) if predicted else (f * lam_seed >= 1.0 + LR_MARGIN)
            mono = [1.0 if _monotone(r["losses"][key]) else 0.0 for r, h in zip(res, held) if h]
            p = dict(base, factor=f, eta=2 * f / lam_th, excused=int(np.sum(~held)))
            qty = f"monotone@eta={key}x2/lambda_max"
            if mono:
                records.append(make_record(name, qty, p, 1.0 if predicted else 0.0, mono, k_sigma=0.0))
            else:  # no seed close enough to the theory's λ_max for the prediction to apply
                records.append(Record(name, qty, _jsonable(p), 1.0 if predicted else 0.0, math.nan, 0.0, 0, 0.0, False))
            cs = [r["losses"][key] for r in res]
            n = max(len(c) for c in cs)
            curves[key] = np.array([np.pad(c, (0, n - len(c)), constant_values=np.nan) for c in cs])
        data.append(dict(base, theory_lambda_max=lam_th, eta_theory=float(th.learning_rate_bound),
                         lambda_max=np.asarray([r["lambda_max"] for r in res]), factors=np.asarray(fs), losses=curves))
    return ResultTable(records, {name: data})


# ============================================================================================= (6) Sokol–Park
# Sized on seeds 100-111 at N = 100, 200 and L = 4, 8 (orthogonal critical tanh, q* = 0.01, 1/4, 1, 4): the three
# measured quantities are largest eigenvalues (σ_max²(J); λ_max(F(θ|x))/N; each ‖J_l‖₂² in the bound), each sitting
# below its limiting edge by at most edge − γ_N (see conditional_fisher; measured up to 0.8 × that), and the bound was
# within 1-7 % of λ_max. Allowances: edge − γ_N of the JJᵀ law and of the conditional law, and Σ_l (a_l/N)(edge_l −
# γ_{N,l}) over the partial Jacobians' laws for the bound. Floors: CONDITIONAL_FLOOR·√(v/N) of each value, as in
# conditional_fisher (per draw the three spread by 0.3-1 × √(v/N)).
SOKOL_PARK_THEORY_POINTS = 12  # q* values of the theory curve in the figure (geometric between the extremes)


def _sokol_park_task(spec: dict) -> dict:
    gen = _generator(spec["seed"])
    net = _network(spec, gen)  # C = N outputs: the setting of meanfield.sokol_park_bound
    x = correlated_inputs(1, spec["width"], spec["q_in"], 0.0, gen)[0]
    n = spec["width"]
    s_max = float(jacobian_singular_values(net, x, top_k=1)[0])
    sp = measured_sokol_park_bound(net, x)
    return {"sigma_max_sq": s_max * s_max, "lambda_max": sp.lambda_max / n, "bound": sp.bound / n,
            "bound_holds": float(sp.lambda_max <= sp.bound * (1.0 + 1e-12))}


def _sokol_park_theory(act, sw, sb, L, N, w, q_in):
    """(JJᵀ spectrum, conditional FIM spectrum, Sokol–Park bound) of the theory at one point."""
    from meanfield.fisher import sokol_park_bound

    jac = _jacobian_spectrum(act, sw, sb, L, w)
    cond = mf.conditional_fisher_spectrum(act, sw, sb, L, N, weights=w, input_norm=q_in)
    bnd = sokol_park_bound(act, sw, sb, L, N, weights=w, input_norm=q_in)
    return jac, cond, bnd


def sokol_park(
    q_stars: Sequence[float] = (0.01, 0.25, 1.0, 4.0),
    depth: int = 6,
    width: int = 200,
    seeds=3,
    weights: str = "orthogonal",
    activation="tanh",
    theory_sigma_w_scale: float = 1.0,
    k_sigma: float = K_SIGMA,
    executor=None,
    progress: Progress | None = None,
    device=None,
) -> ResultTable:
    """(6) Sokol & Park 2020 (THEORY §5): across q* on the critical line the FIM's largest eigenvalue follows the
    squared spectral norm of the input-output Jacobian, and is bounded by ``Σ_l (|x^{l-1}|² + 1) ‖J_l‖₂²`` — isometric
    networks (orthogonal weights, small q*) have flat curvature.

    For each q*, a network on the critical line with C = N outputs (N_0 = N) and one input at the fixed point.
    Records: ``sigma_max_sq_J`` (σ_max²(J), J = ∂x^L/∂x^0, vs the edge of :func:`meanfield.spectra.jacobian_spectrum`),
    ``lambda_max`` (λ_max(F(θ|x))/N vs :func:`meanfield.conditional_fisher_spectrum`), ``bound`` (the bound divided by
    N, measured by :func:`empirical.sokol_park_bound`, vs :func:`meanfield.sokol_park_bound`) and ``bound_holds`` (the
    fraction of seeds with λ_max ≤ bound: theory 1, tolerance 0).

    Tolerances: ``k_sigma·max(spread, 0.25·√(v/N)·value)/√n`` (v = :func:`finite_width_variance` of the network) plus,
    for each largest eigenvalue, ``edge − γ_N``, γ_N where the theory's law puts the largest of N eigenvalues
    (:func:`top_eigenvalue_location`): of JJᵀ for σ_max²(J), of the conditional FIM for λ_max, and
    ``Σ_l (a_l/N)(edge_l − γ_{N,l})`` over the partial Jacobians' laws for the bound.

    ``data["sokol_park"]``: the three theory values and per-seed measurements against q*, and the theory on a denser
    q* grid for the figure's curve.
    """
    name = "sokol_park"
    act = mf.get_activation(activation)
    qs = [_positive("q_stars", q) for q in q_stars]
    if not qs:
        raise InvalidParameterError("q_stars must not be empty")
    w = _weight_kinds(weights)[0]
    L, N = _int("depth", depth), _int("width", width)
    scale = _positive("theory_sigma_w_scale", theory_sigma_w_scale)
    seeds_ = _seeds(seeds)
    common = _task_common(activation, device)
    configs = []
    for q in qs:
        sw, sb = (float(v) for v in mf.critical_point(act, q))
        configs.append((q, sw, sb, (q - sb * sb) / (sw * sw)))
    tasks = [
        dict(common, sigma_w=sw, sigma_b=sb, depth=L, width=N, weights=w, q_in=q_in, seed=task_seed(s, name, i))
        for i, (_, sw, sb, q_in) in enumerate(configs)
        for s in seeds_
    ]
    results = _chunks(_map(_sokol_park_task, tasks, executor, progress, name), len(seeds_))
    keys = ("sigma_max_sq", "lambda_max", "bound")
    records = []
    series = {k: [] for k in ("q_star", "sigma_w", "sigma_b", "theory_sigma_max_sq", "theory_lambda_max",
                              "theory_bound", *keys)}
    for (q, sw, sb, q_in), res in zip(configs, results):
        jac, cond, bnd = _sokol_park_theory(act, sw * scale, sb, L, N, w, q_in)
        fl = CONDITIONAL_FLOOR * math.sqrt(finite_width_variance(act, sw, sb, L, w, q_in) / N)
        base = dict(activation=act.name, q_star=q, sigma_w=sw, sigma_b=sb, weights=w, width=N, depth=L)
        vals = {k: [r[k] for r in res] for k in (*keys, "bound_holds")}
        gap = jac.edge - top_eigenvalue_location(jac.density, jac.edge, jac.mean, N, jac.atoms)
        records.append(make_record(name, "sigma_max_sq_J", base, jac.edge, vals["sigma_max_sq"], k_sigma=k_sigma,
                                   floor=fl * jac.edge, allowance=gap))
        gap = cond.lambda_max - top_eigenvalue_location(cond.density, cond.lambda_max, cond.mean, N, cond.atoms)
        records.append(make_record(name, "lambda_max", base, cond.lambda_max, vals["lambda_max"], k_sigma=k_sigma,
                                   floor=fl * cond.lambda_max, allowance=gap))
        gap = 0.0
        for l in range(1, L + 1):  # the readout's term has ‖J_{L+1}‖ = 1 exactly
            part = _jacobian_spectrum(act, sw * scale, sb, L + 1 - l, w, q0=float(bnd.shift[l]) - 1.0 / N)
            gap += float(bnd.shift[l]) * (part.edge - top_eigenvalue_location(part.density, part.edge, part.mean, N,
                                                                             part.atoms))
        records.append(make_record(name, "bound", base, bnd.bound, vals["bound"], k_sigma=k_sigma,
                                   floor=fl * bnd.bound, allowance=gap))
        records.append(make_record(name, "bound_holds", base, 1.0, vals["bound_holds"], k_sigma=0.0))
        for k, v in (("q_star", q), ("sigma_w", sw), ("sigma_b", sb), ("theory_sigma_max_sq", jac.edge),
                     ("theory_lambda_max", cond.lambda_max), ("theory_bound", bnd.bound)):
            series[k].append(v)
        for k in keys:
            series[k].append(vals[k])
    curve = {k: [] for k in ("q_star", "sigma_max_sq", "lambda_max", "bound")}
    for q in np.geomspace(min(qs), max(qs), SOKOL_PARK_THEORY_POINTS if len(qs) > 1 else 1):
        sw, sb = (float(v) for v in mf.critical_point(act, float(q)))
        jac, cond, bnd = _sokol_park_theory(act, sw * scale, sb, L, N, w, (q - sb * sb) / (sw * sw))
        for k, v in (("q_star", q), ("sigma_max_sq", jac.edge), ("lambda_max", cond.lambda_max),
                     ("bound", bnd.bound)):
            curve[k].append(float(v))
    data = [dict(activation=act.name, weights=w, width=N, depth=L,
                 **{k: np.asarray(v, dtype=np.float64) for k, v in series.items()},
                 **{f"curve_{k}": np.asarray(v, dtype=np.float64) for k, v in curve.items()})]
    return ResultTable(records, {name: data})


# ================================================================================================== all experiments
_FUNCTIONS = {
    "trajectories": trajectories,
    "jacobian_spectra": jacobian_spectra,
    "fisher_depth": fisher_depth,
    "conditional_fisher": conditional_fisher,
    "learning_rate": learning_rate,
    "sokol_park": sokol_park,
}


def run_all(
    sizes: Mapping | None = None,
    executor=None,
    progress: Progress | None = None,
    device=None,
    theory_sigma_w_scale: float = 1.0,
    experiments: Sequence[str] = EXPERIMENTS,
) -> ResultTable:
    """Run ``experiments`` (default: all six, in :data:`EXPERIMENTS` order) and concatenate their tables; ``sizes`` maps
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
