"""Acceptance sweep: every q*, χ_1, c* and critical point the library returns satisfies its defining equation,
checked by an independent evaluation written here (THEORY §1, §6).

For each named activation: ``--points`` (default 100,000) random (σ_w, σ_b, q_init) — σ_w uniform on [0.1, 4], σ_b
uniform on [0, 2] with a tenth exactly 0, q_init log-uniform on [1e-4, 1e4] — solved by the vectorised q* kernel (the
path of ``q_star``/``chi1``), per point, so that one point without a fixed point does not hide the others. Each
returned q* > 0 is checked against E_q[φ²] by composite 16-node Gauss–Legendre on [-12, 12] in z = u/√q, split at
the activation's kinks and graded around 0 on the scale 1/√q (φ written out below, not the library's): its proven
accuracy δ must be ≤ Q_TOL and q_map(q) - q must change sign across q*(1 ± ε), ε = max(10 δ, 1e-10), or, where the
slope makes that unresolvable at this reference's accuracy (|1 - g'|·ε·q* ≤ 1e-12·(q* + g)),
|q_map(q*) - q*| ≤ 1e-11·(q* + g). q* = 0 needs σ_b = 0. χ_1 must equal
σ_w² E_{q*}[φ'²] of the same rule to 1e-9 relative. Points where the solver raised (no finite fixed point, or not
proven) are counted, not failed; a returned q* whose "no fixed point" was wrong would show as q_map(q_init) < q_init
by the reference: also counted as a failure ("false divergence").

c*: ``fixed_point`` on ``--c-points`` chaotic points per activation; c-map(c) - c by a product Gauss–Legendre rule
(inner rule split at the kinks of φ(u2) for each outer node) must change sign across c* ± 10·C_TOL (or, where
unresolvable, be within 1e-11). Critical points: ``critical_point(φ, q)`` for q = 2^-8 … 2^8 (quarter octaves):
χ_1 = σ_w² E_q[φ'²] = 1 to 1e-9 and q_map(q) = q to 1e-11 (q + g), by the same reference.

Prints a table (points, returned, raised, failures, worst residuals) per activation and exits 1 on any failure.
Run: ``.venv/bin/python benchmarks/sweep_correctness.py [--points N] [--out FILE]`` (a few minutes at 1e5 points).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from scipy import special

import meanfield as mf
from meanfield import propagation as prop

SQ2 = math.sqrt(2.0)
SELU_L, SELU_A = 1.0507009873554805, 1.6732632423543772


def _elu(x, a=1.0):
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))


def _delu(x, a=1.0):
    return np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0)))


# φ, φ' and kinks, written out (not the library's kernels)
PHI = {
    "tanh": (np.tanh, lambda x: 1.0 / np.cosh(np.minimum(np.abs(x), 350.0)) ** 2, ()),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), (0.0,)),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01), (0.0,)),
    "erf": (special.erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), ()),
    "linear": (lambda x: x, lambda x: np.ones_like(x), ()),
    "hard_tanh": (lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1).astype(float), (-1.0, 1.0)),
    "sigmoid": (special.expit, lambda x: special.expit(x) * special.expit(-x), ()),
    "softplus": (lambda x: np.logaddexp(0.0, x), special.expit, ()),
    "elu": (_elu, _delu, (0.0,)),
    "selu": (lambda x: SELU_L * _elu(x, SELU_A), lambda x: SELU_L * _delu(x, SELU_A), (0.0,)),
    "gelu": (
        lambda x: 0.5 * x * (1.0 + special.erf(x / SQ2)),
        lambda x: 0.5 * (1.0 + special.erf(x / SQ2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
        (),
    ),
    "silu": (lambda x: x * special.expit(x), lambda x: special.expit(x) * (1.0 + x * special.expit(-x)), ()),
}

XG, WG = np.polynomial.legendre.leggauss(16)
Z_MAX = 12.0
BASE = np.array([-12.0, -9.0, -7.0, -5.5, -4.5, -3.5, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0,
                 0.5, 1.0, 1.5, 2.0, 2.5, 3.5, 4.5, 5.5, 7.0, 9.0, 12.0])
GRADE = np.array([1.0 / 64, 1.0 / 16, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0])


def _breaks(q, kinks):
    """Per point (rows): breakpoints in z, the base set ∪ ±GRADE/√q ∪ kinks/√q, clipped to [-Z_MAX, Z_MAX], sorted."""
    s = np.sqrt(q)[:, None]
    extra = [GRADE[None, :] / s, -GRADE[None, :] / s] + [np.full_like(s, k) / s for k in kinks]
    b = np.concatenate([np.broadcast_to(BASE, (q.size, BASE.size))] + [np.broadcast_to(e, (q.size, e.shape[1]))
                                                                        for e in extra], axis=1)
    return np.sort(np.clip(b, -Z_MAX, Z_MAX), axis=1)


def ref_moments(name, q):
    """(E_q φ², E_q φ'²) for an array of q by the composite rule above (chunks of 4096 points)."""
    f, df, kinks = PHI[name]
    out0, out1 = np.empty(q.size), np.empty(q.size)
    for a in range(0, q.size, 4096):
        qq = q[a:a + 4096]
        b = _breaks(qq, kinks)
        lo, hi = b[:, :-1], b[:, 1:]
        h = 0.5 * (hi - lo)
        z = (0.5 * (hi + lo))[..., None] + h[..., None] * XG
        w = h[..., None] * WG * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        u = np.sqrt(qq)[:, None, None] * z
        with np.errstate(over="ignore", invalid="ignore"):
            out0[a:a + 4096] = np.sum(w * f(u) ** 2, axis=(1, 2))
            out1[a:a + 4096] = np.sum(w * df(u) ** 2, axis=(1, 2))
    return out0, out1


def ref_F(name, q, sw2, sb2):
    e0, _ = ref_moments(name, q)
    return sw2 * e0 + sb2 - q


def check_roots(name, q, slope, sw2, sb2, tol_rel):
    """(ok, |F(q)|/(q + g), E_q φ'²) per root: sign change across q(1 ± tol_rel), else the residual where that is not
    resolvable at the reference's accuracy."""
    e0, e1 = ref_moments(name, q)
    f0 = sw2 * e0 + sb2 - q
    scale = q + sw2 * e0 + sb2
    fa = ref_F(name, q * (1 - tol_rel), sw2, sb2)
    fb = ref_F(name, q * (1 + tol_rel), sw2, sb2)
    resolvable = np.abs(1.0 - slope) * tol_rel * q > 1e-12 * scale
    ok = np.where(resolvable, fa * fb < 0.0, np.abs(f0) <= 1e-11 * scale)
    return ok, np.abs(f0) / scale, e1


def ref_c_map(name, c, q, sw2, sb2, n_outer=120):
    """[σ_w² E φ(u1)φ(u2) + σ_b²]/q, u1 = √q z1, u2 = √q(c z1 + √(1-c²) z2): outer rule split at φ(u1)'s kinks, inner
    rule per outer node split where u2 crosses a kink."""
    f, _, kinks = PHI[name]
    s = math.sqrt(q)
    ob = np.unique(np.concatenate([np.linspace(-Z_MAX, Z_MAX, n_outer + 1),
                                   [k / s for k in kinks if abs(k / s) < Z_MAX]]))
    h = 0.5 * np.diff(ob)
    z1 = ((0.5 * (ob[1:] + ob[:-1]))[:, None] + h[:, None] * XG).ravel()
    w1 = (h[:, None] * WG).ravel() * np.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi)
    a, b = s * c, s * math.sqrt(max(0.0, 1.0 - c * c))
    base = np.linspace(-Z_MAX, Z_MAX, n_outer + 1)
    kz = [np.clip((k - a * z1) / b, -Z_MAX, Z_MAX)[:, None] for k in kinks]
    ib = np.sort(np.concatenate([np.broadcast_to(base, (z1.size, base.size))] + kz, axis=1), axis=1)
    hh = 0.5 * (ib[:, 1:] - ib[:, :-1])
    z2 = (0.5 * (ib[:, 1:] + ib[:, :-1]))[..., None] + hh[..., None] * XG
    w2 = hh[..., None] * WG * np.exp(-0.5 * z2 * z2) / math.sqrt(2 * math.pi)
    inner = np.sum(w2 * f(a * z1[:, None, None] + b * z2), axis=(1, 2))
    return (sw2 * float(np.dot(w1 * f(s * z1), inner)) + sb2) / q


def sweep_q(name, n, rng):
    act = mf.get_activation(name)
    k = act.kernels
    sw = rng.uniform(0.1, 4.0, n)
    sb = rng.uniform(0.0, 2.0, n)
    sb[: n // 10] = 0.0
    qi = 10.0 ** rng.uniform(-4.0, 4.0, n)
    sw2, sb2 = sw * sw, sb * sb
    q, chi, slope, res, err = (np.empty(n) for _ in range(5))
    status, it = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    one = np.ones(1)  # compile (or load) the kernels before timing
    k.q_star_many(one, one, one, act.table, prop._table_error(act), prop.RTOL, prop.MAXITER, prop.Q_TOL,
                  *(np.empty(1) for _ in range(3)), np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64),
                  np.empty(1), np.empty(1))
    t0 = time.perf_counter()
    k.q_star_many(sw2, sb2, qi, act.table, prop._table_error(act), prop.RTOL, prop.MAXITER, prop.Q_TOL,
                  q, chi, slope, status, it, res, err)
    t_solve = time.perf_counter() - t0
    returned = (status == k.CONVERGED) | (status == k.ZERO)
    nofp = (status == k.DIVERGED) | (status == k.NONFINITE)
    unproven = ~returned & ~nofp
    fails = []
    pos = returned & (q > 0.0)
    idx = np.flatnonzero(pos)
    ok, resid, e1 = check_roots(name, q[idx], slope[idx], sw2[idx], sb2[idx], np.maximum(10.0 * err[idx], 1e-10))
    fails += [("q* error above Q_TOL", int(i)) for i in idx[~(err[idx] <= prop.Q_TOL)]]
    fails += [("q*", int(i)) for i in idx[~ok]]
    chi_err = np.abs(chi[idx] - sw2[idx] * e1) / np.maximum(np.abs(chi[idx]), 1e-300)
    fails += [("chi1", int(i)) for i in idx[chi_err > 1e-9]]
    zero = np.flatnonzero(returned & (q == 0.0))
    fails += [("q*=0", int(i)) for i in zero[sb2[zero] >= 1e-40]]  # q* ≥ σ_b²; below 1e-40 it is reported as 0
    # "no finite fixed point": on a subsample the reference must find q_map(q) ≥ q (to 1e-12) on the walk's nodes
    # q_init·2^k up to 1e8: a sign change there would be a missed fixed point
    nf = np.flatnonzero(status == k.DIVERGED)[:2000]
    n_div_checked = 0
    if nf.size:
        qq = qi[nf][:, None] * 2.0 ** np.arange(64)[None, :]
        rows, cols = np.nonzero(qq <= 1e8)
        f = ref_F(name, qq[rows, cols], sw2[nf][rows], sb2[nf][rows])
        bad = f < -1e-12 * (qq[rows, cols] + sw2[nf][rows] + sb2[nf][rows])
        fails += [("false divergence", int(i)) for i in np.unique(nf[rows[bad]])]
        n_div_checked = nf.size
    return dict(
        points=n, returned=int(returned.sum()), no_fp=int(nofp.sum()), unproven=int(unproven.sum()),
        fails=fails, div_checked=n_div_checked, worst_res=float(resid.max()) if resid.size else 0.0,
        worst_chi=float(chi_err.max()) if chi_err.size else 0.0, t_solve=t_solve,
        worst_delta=float(np.nanmax(err[pos])) if pos.any() else 0.0,
        sample=(sw, sb, qi, q, status),
    )


def sweep_c(name, m, rng):
    fails, worst, done = [], 0.0, 0
    for _ in range(20 * m):
        if done >= m:
            break
        lo, hi = 1.0, 3.0
        sw, sb = rng.uniform(lo, hi), rng.choice([0.0, rng.uniform(0.0, 1.0)])
        try:
            fp = mf.fixed_point(name, sw, sb)
        except mf.MeanFieldError:
            continue
        if not (fp.phase == "chaotic" and 0.0 < fp.c_star < 1.0 and fp.q_star <= 40.0):
            continue
        done += 1
        c, q, sw2, sb2 = fp.c_star, fp.q_star, sw * sw, sb * sb
        eps = 10 * prop.C_TOL
        ga = ref_c_map(name, c - eps, q, sw2, sb2) - (c - eps)
        gb = ref_c_map(name, c + eps, q, sw2, sb2) - (c + eps)
        g0 = ref_c_map(name, c, q, sw2, sb2) - c
        worst = max(worst, abs(g0))
        resolvable = abs(1.0 - fp.chi_c) * eps > 1e-12
        if not ((ga > 0.0 > gb) if resolvable else abs(g0) <= 1e-11):
            fails.append(("c*", (sw, sb, c)))
    return dict(c_points=done, c_fails=fails, c_worst=worst)


def sweep_critical(name):
    fails, n, worst = [], 0, 0.0
    for q in 2.0 ** (np.arange(-32, 33) / 4.0):
        try:
            sw, sb = mf.critical_point(name, float(q))
        except mf.MeanFieldError:
            continue
        n += 1
        e0, e1 = ref_moments(name, np.array([q]))
        chi = sw * sw * e1[0]
        res = abs(sw * sw * e0[0] + sb * sb - q) / (q + sw * sw * e0[0] + sb * sb)
        worst = max(worst, abs(chi - 1.0))
        if abs(chi - 1.0) > 1e-9 or res > 1e-11:
            fails.append(("critical", (float(q), sw, sb, chi, res)))
    return dict(crit_points=n, crit_fails=fails, crit_worst=worst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000, help="(σ_w, σ_b, q_init) points per activation (100000)")
    ap.add_argument("--c-points", type=int, default=30, help="chaotic fixed_point calls per activation for c* (30)")
    ap.add_argument("--activations", nargs="*", default=list(PHI), help="activations (all named ones)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", default=None, help="also write the table (markdown) to this file")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows, all_fails = [], []
    head = ("| activation | points | q* returned | no fixed point | not proven | q*/χ_1 failures | worst |F|/(q+g) "
            "| worst χ_1 rel. err | worst proven δ of q* | c* checked | c* failures | worst |G(c*)| | critical points "
            "| critical failures | worst |χ_1 - 1| | solve time |")
    sep = "|" + "---|" * 16
    t_all = time.perf_counter()
    for name in args.activations:
        r = sweep_q(name, args.points, rng)
        r.update(sweep_c(name, args.c_points, rng))
        r.update(sweep_critical(name))
        fails = r["fails"] + r["c_fails"] + r["crit_fails"]
        all_fails += [(name,) + f for f in fails]
        rows.append(
            f"| {name} | {r['points']} | {r['returned']} | {r['no_fp']} ({r['div_checked']} checked) | {r['unproven']} "
            f"| {len(r['fails'])} "
            f"| {r['worst_res']:.1e} | {r['worst_chi']:.1e} | {r['worst_delta']:.1e} | {r['c_points']} "
            f"| {len(r['c_fails'])} | {r['c_worst']:.1e} | {r['crit_points']} | {len(r['crit_fails'])} "
            f"| {r['crit_worst']:.1e} | {r['t_solve']:.2f} s |"
        )
        print(rows[-1], flush=True)
        for f in fails[:5]:
            if isinstance(f[1], int):
                sw, sb, qi, q, st = r["sample"]
                i = f[1]
                print(f"    {f[0]} failure: sigma_w={sw[i]!r}, sigma_b={sb[i]!r}, q_init={qi[i]!r} -> q*={q[i]!r} "
                      f"(status {int(st[i])})")
            else:
                print(f"    {f[0]} failure: {f[1]}")
    table = "\n".join([head, sep] + rows)
    total = f"total {time.perf_counter() - t_all:.0f} s; failures: {len(all_fails)}"
    print()
    print(table)
    print(total)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(table + "\n\n" + total + "\n")
    return 1 if all_fails else 0


if __name__ == "__main__":
    sys.exit(main())
