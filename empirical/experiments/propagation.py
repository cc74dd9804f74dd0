"""Experiment trajectories: q^l and c^l of two inputs vs :func:`meanfield.propagate` (THEORY §1)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

import meanfield as mf

from empirical.experiments.arguments import _correlation, _int, _points, _positive, _weight_kinds
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
from empirical.experiments.tolerances import K_SIGMA
from empirical.measure import layer_statistics

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
