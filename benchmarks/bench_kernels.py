"""Benchmarks of the infinite-width kernels of a data set (issue 16; targets in brackets), beside neural-tangents.

Run: ``python benchmarks/bench_kernels.py [--quick] [--full] [--only tanh:10:2000,…]``. neural-tangents is a
benchmark-only dependency, installed into its own environment (``make bench-kernels``): ``python3 -m venv .venv-bench &&
.venv-bench/bin/pip install -e . neural-tangents==0.6.5 jax==0.4.23 jaxlib==0.4.23 "numpy<2" tf2jax==0.3.5`` (unpinned,
pip takes jax 0.10, with which neural-tangents 0.6.5 fails to import ``jax.core.Jaxpr``; tf2jax after 0.3.5 needs a
newer jax). Without it the rows show mf.kernels alone. Measured (2-core machine, load average 10-13, same run):
tanh depth 10 n = 2000 3.2 s vs 655 s (203×), error 1.2e-12 vs 1.6e-2; erf n = 4000 4.0 s vs 10.5 s; ReLU n = 4000
6.9 s vs 23.7 s; n = 20,000 tanh depth 10: 56 CPU-s, peak RSS 7.1 GiB.

Cases (the issue's table; depth-L MLP, inputs of dimension 100 with iid N(0, 1) entries, σ_w = 1.5, σ_b = 0.1,
both kernels, NTK parameterisation; neural-tangents' ``stax.serial(Dense, φ, …, Dense(1))``):

* tanh — ours: Mehler series (error bound 1e-13 per layer); neural-tangents: ``ElementwiseNumerical(tanh, deg=25)``.
  [n = 2000, depth 10: ≥ 50× faster and ≥ 1000× more accurate.]
* erf, ReLU — closed forms on both sides [n = 4000, depth 10: no slower]; GELU — ours by the series, theirs closed form.
* tanh, depth 10, n = 20,000 (``--full``; else extrapolated from n = 4000 as n²) [≤ 120 s, ≤ 16 GiB].

Accuracy: on 12 pairs of inputs (and two diagonal entries) against a reference computed here independently of both
packages: the two-point expectations by nested composite Gauss–Legendre quadrature (numpy's 48-node rule on 24 unit
panels over [-12, 12], ~1e-14) through the recursions of THEORY §7, and the closed forms for erf and ReLU. neural-tangents
is timed in its default float32 (best of repeats after compilation; JAX on the CPU) and compared for accuracy in float64
(``jax_enable_x64``), where its closed forms must agree with ours to 1e-10.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing, run as a script or from run_all
import _timing  # noqa: E402

SW, SB, DIM = 1.5, 0.1, 100
NT_BATCH = 200  # neural-tangents' ElementwiseNumerical unbatched asks for 30 GB at n = 2000
EDGE = 12.0
_X, _W = np.polynomial.legendre.leggauss(48)
_EDGES = np.linspace(-EDGE, EDGE, 25)
_Z = (0.5 * (_EDGES[1:] + _EDGES[:-1])[:, None] + 0.5 * np.diff(_EDGES)[:, None] * _X).ravel()
_WZ = (0.5 * np.diff(_EDGES)[:, None] * _W).ravel() * np.exp(-0.5 * _Z**2) / math.sqrt(2 * math.pi)


# ------------------------------------------------------------------------------------------------------- reference
def _tanh_two(q1, q2, q12):
    c = q12 / math.sqrt(q1 * q2)
    a, b = math.sqrt(q2) * c, math.sqrt(q2 * max(1.0 - c * c, 0.0))
    u = math.sqrt(q1) * _Z
    v = a * _Z[:, None] + b * _Z[None, :]
    tv = np.tanh(v)
    g0 = tv @ _WZ
    g1 = (1.0 - tv * tv) @ _WZ
    tu = np.tanh(u)
    return float((tu * g0) @ _WZ), float(((1.0 - tu * tu) * g1) @ _WZ)


def _tanh_one(q):
    t = np.tanh(math.sqrt(q) * _Z)
    return float(t * t @ _WZ), float((1 - t * t) ** 2 @ _WZ)


def _erf_two(q1, q2, q12):
    a, b = 1 + 2 * q1, 1 + 2 * q2
    return 2 / math.pi * math.asin(2 * q12 / math.sqrt(a * b)), 4 / math.pi / math.sqrt(a * b - 4 * q12 * q12)


def _relu_two(q1, q2, q12):
    c = max(-1.0, min(1.0, q12 / math.sqrt(q1 * q2)))
    th = math.acos(c)
    return math.sqrt(q1 * q2) * (math.sin(th) + (math.pi - th) * c) / (2 * math.pi), (math.pi - th) / (2 * math.pi)


REF = {
    "tanh": (_tanh_two, _tanh_one),
    "erf": (_erf_two, lambda q: (_erf_two(q, q, q)[0], 4 / math.pi / math.sqrt(1 + 4 * q))),
    "relu": (_relu_two, lambda q: (q / 2, 0.5)),
}


def reference(phi, depth, x, y, same=False):
    """(K^{L+1}, Θ^{L+1}) of one pair (``same``: x = y, a diagonal entry), NTK parameterisation (THEORY §7)."""
    two, one = REF[phi]
    k11, k22, k12 = (SW**2 * float(u @ v) / DIM + SB**2 for u, v in ((x, x), (y, y), (x, y)))
    t = k12
    for _ in range(depth):
        h12, d12 = one(k11) if same else two(k11, k22, k12)
        k12 = SW**2 * h12 + SB**2
        t = k12 + SW**2 * d12 * t
        k11 = SW**2 * one(k11)[0] + SB**2
        k22 = SW**2 * one(k22)[0] + SB**2
    return k12, t


def pairs(n):
    rng = np.random.default_rng(1)
    ij = [tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(12)]
    return ij + [(0, 0), (n - 1, n - 1)]


def max_rel_error(K, T, phi, depth, X, ij, refs):
    e = 0.0
    for (i, j), (k, t) in zip(ij, refs):
        e = max(e, abs(K[i, j] / k - 1), abs(T[i, j] / t - 1))
    return e


# ------------------------------------------------------------------------------------------------ neural-tangents
def nt_available():
    try:
        import neural_tangents  # noqa: F401

        return True
    except ImportError:
        return False


def nt_kernel_fn(phi, depth):
    import jax
    from neural_tangents import stax

    act = {
        "tanh": lambda: stax.ElementwiseNumerical(jax.numpy.tanh, deg=25),
        "erf": stax.Erf,
        "relu": stax.Relu,
        "gelu": lambda: stax.Gelu(approximate=False),
    }[phi]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=SW, b_std=SB), act()]
    layers += [stax.Dense(1, W_std=SW, b_std=SB)]
    _, _, kernel_fn = stax.serial(*layers)
    if phi == "tanh":  # the numerical route needs deg² × n² memory: in blocks of NT_BATCH rows and columns
        import neural_tangents as nt

        return nt.batch(kernel_fn, batch_size=NT_BATCH, device_count=0)
    return jax.jit(kernel_fn, static_argnames="get")


def nt_kernels(fn, X, x64):
    import jax

    jax.config.update("jax_enable_x64", bool(x64))
    Xj = jax.numpy.asarray(X, dtype=jax.numpy.float64 if x64 else jax.numpy.float32)
    k = fn(Xj, None, ("nngp", "ntk"))
    return np.asarray(k.nngp.block_until_ready(), dtype=np.float64), np.asarray(k.ntk, dtype=np.float64)


# -------------------------------------------------------------------------------------------------------- the rows
def data(n):
    return np.random.default_rng(0).standard_normal((n, DIM))


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rows(quick=False, full=False, with_nt=True, only=None):
    import meanfield as mf

    cases = [("tanh", 3, [1000, 2000]), ("tanh", 10, [1000, 2000, 4000]), ("erf", 10, [1000, 2000, 4000]),
             ("relu", 10, [1000, 2000, 4000]), ("gelu", 10, [1000, 2000, 4000])]
    if quick:
        cases = [("tanh", 10, [1000]), ("erf", 10, [1000]), ("relu", 10, [1000])]
    if only:  # "phi:depth:n,…"
        cases = [(p, int(d), [int(n)]) for p, d, n in (c.split(":") for c in only.split(","))]
    out = []
    nt = with_nt and nt_available()
    for phi, depth, ns in cases:
        fn = nt_kernel_fn(phi, depth) if nt else None
        for n in ns:
            X = data(n)
            mf.kernels(phi, SW, SB, depth, X[:64])  # compile, tables
            ours = mf.kernels(phi, SW, SB, depth, X)
            t_ours = _timing.best_of(lambda: mf.kernels(phi, SW, SB, depth, X), 1 if n >= 4000 else 3)
            ij = pairs(n)
            acc_ours = acc_nt = float("nan")
            if phi in REF:
                refs = [reference(phi, depth, X[i], X[j], i == j) for i, j in ij]
                acc_ours = max_rel_error(ours.nngp, ours.ntk, phi, depth, X, ij, refs)
            t_nt = float("nan")
            agree = ""
            if nt and not (phi == "tanh" and n > 2000 and not full):
                nt_kernels(fn, X[:64], False)
                slow = phi == "tanh"
                t_nt = _timing.best_of(lambda: nt_kernels(fn, X, False), 1 if slow or n >= 4000 else 3)
                if phi in REF and (n == ns[0] or only):
                    K, T = nt_kernels(fn, X, True)
                    acc_nt = max_rel_error(K, T, phi, depth, X, ij, refs)
                    # relative to each entry's scale √(K_ii K_jj): entries near 0 (K^{l+1} = σ_w² K̂ + σ_b² with
                    # K̂ ≈ -σ_b²/σ_w²) are cancellations whose own relative error means nothing
                    off = ~np.eye(n, dtype=bool)
                    sk = np.sqrt(np.outer(ours.nngp.diagonal(), ours.nngp.diagonal()))
                    st = np.sqrt(np.outer(ours.ntk.diagonal(), ours.ntk.diagonal()))
                    dk, dt = np.abs(K - ours.nngp) / sk, np.abs(T - ours.ntk) / st
                    agree = (f"float64 vs ours, max difference / √(K_ii K_jj): off-diagonal "
                             f"{max(dk[off].max(), dt[off].max()):.1e}, diagonal "
                             f"{max(dk.diagonal().max(), dt.diagonal().max()):.1e}")
            target = ""
            if phi == "tanh" and depth == 10 and n == 2000:
                target = "≥ 50× faster, ≥ 1000× more accurate"
            if phi in ("erf", "relu") and n == 4000:
                target = "no slower"
            ratio = f"{t_nt / t_ours:.1f}×" if np.isfinite(t_nt) else "—"
            out.append((f"{phi}, depth {depth}, n = {n}", f"{t_ours:.3f} s", f"{t_nt:.2f} s" if np.isfinite(t_nt) else "—",
                        ratio, f"{acc_ours:.1e}" if np.isfinite(acc_ours) else "—",
                        f"{acc_nt:.1e}" if np.isfinite(acc_nt) else "—", target, agree))
            print("| " + " | ".join(out[-1]) + " |", file=sys.stderr, flush=True)
    if only:
        return out, nt
    # n = 20,000
    X = data(4000)
    t4 = _timing.best_of(lambda: mf.kernels("tanh", SW, SB, 10, X), 1)
    if full:
        X = data(20000)
        t = time.perf_counter()
        mf.kernels("tanh", SW, SB, 10, X)
        t20 = time.perf_counter() - t
        out.append(("tanh, depth 10, n = 20,000", f"{t20:.1f} s", "—", "—", "", "", "≤ 120 s, ≤ 16 GiB",
                    f"peak RSS {peak_rss_gib():.1f} GiB"))
    else:
        out.append(("tanh, depth 10, n = 20,000 (extrapolated ×25 from n = 4000)", f"≈ {25 * t4:.0f} s", "—", "—", "",
                    "", "≤ 120 s, ≤ 16 GiB", "memory: two 20,000² float64 matrices = 6.4 GB + tables"))
    return out, nt


def run(quick=False, full=False, only=None) -> str:
    r, nt = rows(quick, full, only=only)
    lines = [
        "## Infinite-width kernels of a data set (issue 16)",
        "",
        "mf.kernels (NNGP and NTK, float64) beside neural-tangents' `kernel_fn(X, None, ('nngp', 'ntk'))` (float32, its"
        " default, for time; float64 for accuracy). Accuracy: max relative error per entry on 14 entries against the"
        " reference of this file (nested 48-node Gauss–Legendre panels, ~1e-14; closed forms for erf/ReLU)."
        + ("" if nt else " neural-tangents is not installed in this environment: its columns are empty."),
        "",
        "| case | mf.kernels | neural-tangents | speed-up | error (ours) | error (neural-tangents) | target | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(x) + " |" for x in r]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true", help="also run n = 20,000 (tanh, depth 10)")
    ap.add_argument("--out", default=None, help="append the section to this file")
    ap.add_argument("--only", default=None, help='cases "phi:depth:n,…" instead of the table (e.g. "tanh:10:2000")')
    a = ap.parse_args()
    text = run(quick=a.quick, full=a.full, only=a.only)
    print(text)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write("\n" + text)
