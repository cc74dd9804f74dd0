"""Benchmarks of the theory core (issue targets in brackets). Run: python benchmarks/bench_core.py [--quick].

* grid σ_w² ∈ [0.01, 3) step 0.01 × σ_b² ∈ [0.001, 0.25) step 0.001 (74,451 points), q* and χ_1: tanh [≤ 0.15 s],
  erf [≤ 0.05 s]; max relative error against a 30-digit reference on a subsample; ratio against a scipy.quad baseline
  (Newton with scipy.integrate.quad expectations) timed on a subsample in the same process and extrapolated;
* the default phase diagram with c*, χ_c, ξ_c, tanh, on the same grid [≤ 1 s], against the 2-D quadrature method
  timed in the same run, with the number of points per c* path;
* one point: q* and χ_1 [≤ 20 µs], c* and ξ_c [≤ 1 ms];
* first import + first call, cold Numba cache [≤ 10 s] and warm [≤ 1 s], in fresh subprocesses, next to the floor
  that any Numba program pays on the same machine (import numba + one trivial cached function);
* where the compile time of a cold first call goes, by module (the core's kernels, the spectra kernels, the rest),
  for the core's first call and the first ``jacobian_spectrum`` call, from Numba's compile events.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing, run as a script or from run_all
import _timing  # noqa: E402


def best_of(fn, repeat=5):
    return _timing.best_of(fn, repeat, warmup=False)


def scipy_q_star(sw2, sb2, which="tanh"):
    """The baseline research scripts use: Newton on q with scipy.integrate.quad expectations."""
    from scipy import integrate, special

    f = np.tanh if which == "tanh" else special.erf
    df = (lambda u: 1 - np.tanh(u) ** 2) if which == "tanh" else (lambda u: 2 / np.sqrt(np.pi) * np.exp(-u * u))
    d2f = (lambda u: -2 * np.tanh(u) * (1 - np.tanh(u) ** 2)) if which == "tanh" else (lambda u: -4 * u / np.sqrt(np.pi) * np.exp(-u * u))

    def E(g, q):
        s = np.sqrt(q)
        return integrate.quad(lambda z: g(s * z) * np.exp(-z * z / 2), -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13)[0] / np.sqrt(2 * np.pi)

    q = 1.0
    for _ in range(50):
        F = sw2 * E(lambda u: f(u) ** 2, q) + sb2 - q
        dF = sw2 * E(lambda u: df(u) ** 2 + f(u) * d2f(u), q) - 1
        dq = -F / dF
        q = max(q + dq, q / 4)
        if abs(dq) < 1e-13 * q:
            break
    return q, sw2 * E(lambda u: df(u) ** 2, q)


def mp_reference(sw2, sb2, which):
    import mpmath as mp

    mp.mp.dps = 30
    f = mp.tanh if which == "tanh" else mp.erf

    def E(g, q):
        s = mp.sqrt(q)
        return mp.quad(lambda z: g(s * z) * mp.exp(-z * z / 2), [-mp.inf, -3, -1, 0, 1, 3, mp.inf]) / mp.sqrt(2 * mp.pi)

    q = mp.findroot(lambda q: sw2 * E(lambda u: f(u) ** 2, q) + sb2 - q, 0.5)
    d = (lambda u: 1 - mp.tanh(u) ** 2) if which == "tanh" else (lambda u: 2 / mp.sqrt(mp.pi) * mp.exp(-u * u))
    return float(q), float(sw2 * E(lambda u: d(u) ** 2, q))


def grid_rows(quick):
    import meanfield as mf

    sw2 = np.arange(1, 300) * 0.01
    sb2 = np.arange(1, 250) * 0.001
    rows = []
    rng = np.random.default_rng(0)
    for phi, target in (("tanh", 0.15), ("erf", 0.05)):
        mf.phase_diagram(phi, np.sqrt(sw2[:4]), np.sqrt(sb2[:4]), correlations=False)  # compile
        pd = None

        def run():
            nonlocal pd
            pd = mf.phase_diagram(phi, np.sqrt(sw2), np.sqrt(sb2), correlations=False)

        t = best_of(run, 3 if quick else 7)
        n = pd.q_star.size
        idx = [(rng.integers(len(sw2)), rng.integers(len(sb2))) for _ in range(3 if quick else 12)]
        err = 0.0
        for i, j in idx:
            q, chi = mp_reference(sw2[i], sb2[j], phi)
            err = max(err, abs(pd.q_star[i, j] - q) / q, abs(pd.chi1[i, j] - chi) / chi)
        sub = idx[: (2 if quick else 6)]
        tb = time.perf_counter()
        for i, j in sub:
            scipy_q_star(sw2[i], sb2[j], phi)
        per_point = (time.perf_counter() - tb) / len(sub)
        base = per_point * n
        rows.append((f"grid q*, χ_1, {phi} ({n:,} points)", f"{t:.4f} s", f"≤ {target} s",
                     f"{base / t:,.0f}× vs scipy.quad ({per_point * 1e3:.1f} ms/point → {base:.0f} s)",
                     f"max rel. err {err:.1e}", "PASS" if t <= target and err <= 1e-10 else "MISS"))
    return rows


def phase_rows(quick):
    """The default phase diagram (c*, χ_c, ξ_c included) of tanh on the same 74,451-point grid [≤ 1 s]: c* by the
    Mehler series with 2-D quadrature where the series is not accepted, against the method before (2-D quadrature at
    every chaotic point, ``critical.PHASE_C_SERIES = False``) timed in the same run; paths counted; c* compared."""
    import meanfield as mf
    from meanfield import critical

    sw = np.sqrt(np.arange(1, 300) * 0.01)
    sb = np.sqrt(np.arange(1, 250) * 0.001)
    mf.phase_diagram("tanh", sw[:30:3], sb[:30:3])  # compile both paths
    critical.PHASE_C_SERIES = False
    mf.phase_diagram("tanh", sw[:30:3], sb[:30:3])
    critical.PHASE_C_SERIES = True
    got = {}

    def run():
        got["new"] = mf.phase_diagram("tanh", sw, sb)

    t = best_of(run, 2 if quick else 5)
    critical.PHASE_C_SERIES = False
    try:
        tb = time.perf_counter()
        got["old"] = mf.phase_diagram("tanh", sw, sb)
        tb = time.perf_counter() - tb
    finally:
        critical.PHASE_C_SERIES = True
    new, old = got["new"], got["old"]
    paths = new.meta["c_star_paths"]
    d = np.abs(new.c_star - old.c_star)
    far = old.chi_c < 0.9  # c* inherits the map's error divided by 1 - χ_c, in either method
    err_far = float(np.nanmax(np.where(far, d, 0.0)))
    err_all = float(np.nanmax(d))
    # the point where the two differ most, judged by an independent 400 × 400 Gauss–Hermite rule:
    # |c-map(c) - c|/(1 - χ_c)
    i, j = np.unravel_index(int(np.nanargmax(d)), d.shape)
    ref = [_c_error_gauss_hermite(sw[i] ** 2, sb[j] ** 2, new.q_star[i, j], m.c_star[i, j], m.chi_c[i, j])
           for m in (new, old)]
    n = new.q_star.size
    return [(f"phase diagram with c*, χ_c, ξ_c, tanh ({n:,} points: {paths['ordered']:,} ordered, "
             f"{paths['series']:,} Mehler series, {paths['quadrature']:,} 2-D quadrature)", f"{t:.3f} s", "≤ 1 s",
             f"{tb / t:.1f}× vs 2-D quadrature at every chaotic point ({tb:.1f} s, same run)",
             f"max |Δc*| {err_far:.1e} where χ_c < 0.9, {err_all:.1e} overall; at the largest Δ the error"
             f" |G(c*)|/(1 - χ_c) against a 400² Gauss–Hermite rule is {ref[0]:.0e} (series),"
             f" {ref[1]:.0e} (quadrature)",
             "PASS" if t <= 1.0 and err_far <= 1e-10 else "MISS")]


def _c_error_gauss_hermite(sw2, sb2, q, c, chi_c, n=400):
    """|G(c)|/(1 - χ_c), G(c) = (σ_w² E tanh(u1) tanh(u2) + σ_b²)/q - c by an n × n Gauss–Hermite rule (tanh is
    analytic: the rule converges geometrically): the error of c as a root of the correlation map."""
    from scipy.special import roots_hermitenorm

    z, w = roots_hermitenorm(n)
    w = w / np.sqrt(2 * np.pi)
    s = np.sqrt(q)
    inner = np.tanh(s * (c * z[:, None] + np.sqrt(1 - c * c) * z[None, :])) @ w
    g = (sw2 * float(w @ (np.tanh(s * z) * inner)) + sb2) / q - c
    return abs(g) / max(1.0 - chi_c, 1e-300)


def point_rows(quick):
    import meanfield as mf

    mf.fixed_point("tanh", 1.5, 0.2)
    t_q = best_of(lambda: (mf.q_star("tanh", 1.3, 0.2), mf.chi1("tanh", 1.3, 0.2)), 50) / 2
    t_c = best_of(lambda: mf.fixed_point("tanh", 1.5, 0.2), 5 if quick else 20)
    fp = mf.fixed_point("tanh", 1.5, 0.2)
    # baseline: c* by two-dimensional quadrature inside every Newton step (the Mehler series path switched off)
    from meanfield import propagation

    propagation.C_STAR_SERIES = False
    try:
        t_c2 = best_of(lambda: mf.fixed_point("tanh", 1.5, 0.2), 5 if quick else 20)
        fp2 = mf.fixed_point("tanh", 1.5, 0.2)
    finally:
        propagation.C_STAR_SERIES = True
    tb = time.perf_counter()
    scipy_q_star(1.69, 0.04)
    tb = time.perf_counter() - tb
    return [
        ("one point q* (or χ_1), tanh", f"{t_q * 1e6:.1f} µs", "≤ 20 µs", f"{tb / t_q:,.0f}× vs scipy.quad Newton",
         "", "PASS" if t_q <= 20e-6 else "MISS"),
        ("one point fixed_point incl. c*, ξ_c, tanh (chaotic, Mehler series)", f"{t_c * 1e3:.2f} ms", "≤ 1 ms",
         f"{t_c2 / t_c:.1f}× vs 2-D quadrature in each Newton step ({t_c2 * 1e3:.2f} ms)",
         f"|Δc*| = {abs(fp.c_star - fp2.c_star):.1e}", "PASS" if t_c <= 1e-3 else "MISS"),
    ]


# The floor any Numba program pays on this machine: import numba and call one trivial cached function (the first call
# initialises Numba's compiler context, imports its NumPy/SciPy support and loads the cache). Measured in the same run,
# so the package's own start-up cost is the difference.
FLOOR = "import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1.0\n\nf(1.0)\n"


def startup_rows():
    code = "import meanfield as mf; mf.q_star('tanh', 1.2, 0.1); mf.fixed_point('tanh', 1.5, 0.2)"

    def fresh_process(env, args):
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, env=env)
        return time.perf_counter() - t

    cold, warm, floor_cold, floor_warm = [], [], [], []
    for _ in range(2):  # best of two fresh caches; then best of three warm starts from the last one
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, MEANFIELD_CACHE_DIR=d, NUMBA_CACHE_DIR=d)
            script = Path(d) / "numba_floor.py"
            script.write_text(FLOOR)
            cold.append(fresh_process(env, ["-c", code]))
            floor_cold.append(fresh_process(env, [str(script)]))
            if len(cold) == 2:
                for _ in range(3):  # interleaved, so that both see the same machine
                    warm.append(fresh_process(env, ["-c", code]))
                    floor_warm.append(fresh_process(env, [str(script)]))
    rows = []
    for label, ts, floor, target in (("cold Numba cache", cold, floor_cold, 10.0),
                                     ("warm cache", warm, floor_warm, 1.0)):
        t, f = min(ts), min(floor)
        rows.append((f"first import + first call, {label} (best of {len(ts)}; the named activations' moment tables "
                     "ship with the package; all: "
                     + ", ".join(f"{x:.2f}" for x in ts) + " s)", f"{t:.2f} s", f"≤ {target:g} s",
                     f"Numba floor {f:.2f} s (import numba + one trivial cached function; all: "
                     + ", ".join(f"{x:.2f}" for x in floor) + " s): the package adds " + f"{t - f:.2f} s",
                     "", "PASS" if t <= target else ("MISS (floor above target)" if f > target else "MISS")))
    return rows


# Compile time of the top-level compilations (nested ones are inside them) in a cold process, by module: Numba's
# "numba:compile" events, timed by a listener installed before meanfield is imported.
SHARE = """
import json, sys, time
from numba.core import event as ev
depth, got = [0], {}
class Rec(ev.Listener):
    def on_start(self, e):
        depth[0] += 1
        e.data["t0"] = time.perf_counter()
    def on_end(self, e):
        depth[0] -= 1
        if depth[0] == 0:
            mod = e.data["dispatcher"].py_func.__module__ or "?"
            key = ("core kernels" if mod.startswith("meanfield._generated_") or mod == "meanfield._mehler"
                   else "spectra kernels" if mod == "meanfield._spectra_kernels" else mod)
            got[key] = got.get(key, 0.0) + time.perf_counter() - e.data["t0"]
ev.register("numba:compile", Rec())
t = time.perf_counter()
exec(sys.argv[1])
got["total"] = time.perf_counter() - t
print(json.dumps(got))
"""

CORE_FIRST = "import meanfield as mf; mf.q_star('tanh', 1.2, 0.1); mf.fixed_point('tanh', 1.5, 0.2)"
SPECTRA_FIRST = ("import numpy as np; import meanfield as mf; from meanfield.spectra import jacobian_spectrum;"
                 "sw, sb = mf.critical_point('tanh', 1/64); s = jacobian_spectrum('tanh', sw, sb, 64);"
                 "s.density(np.linspace(0.1, 1.5, 50))")


def startup_share_rows():
    """Where a cold first call's compile time goes (one cold run each; the shares are what matters)."""
    import json

    rows = []
    for label, code in (("q_star + fixed_point", CORE_FIRST), ("jacobian_spectrum + density", SPECTRA_FIRST)):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, MEANFIELD_CACHE_DIR=d, NUMBA_CACHE_DIR=d)
            out = subprocess.run([sys.executable, "-c", SHARE, code], env=env, check=True, capture_output=True,
                                 text=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        total = got.pop("total")
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(got.items(), key=lambda kv: -kv[1]))
        rows.append((f"cold first call ({label}): compile time by module", f"{total:.2f} s", "",
                     parts + f"; other work {total - sum(got.values()):.2f} s", "", ""))
    return rows


def run(quick=False) -> str:
    rows = grid_rows(quick) + phase_rows(quick) + point_rows(quick) + startup_rows() + startup_share_rows()
    lines = ["## Theory core (issue 2)", "", "| benchmark | time | target | baseline ratio | accuracy | |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
