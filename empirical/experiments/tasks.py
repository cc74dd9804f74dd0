"""Seeding and executor plumbing: every task draws from its own ``torch.Generator`` seeded by :func:`task_seed` from
(seed, experiment, index); tasks run serially or on any ``concurrent.futures.Executor`` (:func:`_map`) with identical
results; :func:`correlated_inputs` gives inputs with exact norms and correlations."""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np
import torch

import meanfield as mf
from meanfield.errors import InvalidParameterError

from empirical.networks import RandomMLP

EXPERIMENTS = (
    "trajectories",
    "jacobian_spectra",
    "fisher_depth",
    "conditional_fisher",
    "learning_rate",
    "sokol_park",
    "ntk_kernels",
)
_SALT = {name: i + 1 for i, name in enumerate(EXPERIMENTS)}

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called with ``done = 0`` before an experiment's tasks run and after each task."""


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


def _chunks(results: list, size: int) -> list:
    return [results[i : i + size] for i in range(0, len(results), size)]
