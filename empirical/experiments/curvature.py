"""Experiment sokol_park: σ_max²(J), λ_max(F(θ|x)) and the Sokol–Park bound across q* (THEORY §5)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

import meanfield as mf
from meanfield.errors import InvalidParameterError

from empirical.experiments.arguments import _int, _positive, _weight_kinds
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
from empirical.experiments.tolerances import K_SIGMA, _jacobian_spectrum, finite_width_variance, top_eigenvalue_location
from empirical.measure import jacobian_singular_values
from empirical.measure import sokol_park_bound as measured_sokol_park_bound
from empirical.experiments.conditional import CONDITIONAL_FLOOR

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
