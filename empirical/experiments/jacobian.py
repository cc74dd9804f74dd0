"""Experiment jacobian_spectra: the eigenvalues of JJᵀ vs :func:`meanfield.spectra.jacobian_spectrum` (THEORY §2)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

import meanfield as mf
from meanfield.errors import InvalidParameterError

from empirical.experiments.arguments import _int, _points, _positive, _weight_kinds
from empirical.experiments.points import _fixed_point_input, critical_points
from empirical.experiments.table import ResultTable, make_record
from empirical.experiments.tasks import (
    Progress,
    _chunks,
    _generator,
    _map,
    _network,
    _seeds,
    _task_common,
    correlated_inputs,
    task_seed,
)
from empirical.experiments.tolerances import K_SIGMA, _jacobian_spectrum
from empirical.measure import jacobian_singular_values

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
