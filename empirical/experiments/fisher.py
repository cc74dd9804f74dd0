"""Experiment fisher_depth: the Fisher information's λ_max, m_λ, s_λ vs depth vs :func:`meanfield.fisher_statistics` (THEORY §3)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

import meanfield as mf
from meanfield.errors import InvalidParameterError

from empirical.experiments.arguments import _correlation, _int, _ints, _points, _positive, _weight_kinds
from empirical.experiments.points import tanh_points
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
from empirical.experiments.tolerances import K_SIGMA, finite_width_variance
from empirical.measure import fisher_eigenvalues

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
