"""Eigenvalues of one 512² Gram JJᵀ, the work the Jacobian row adds to its GEMM floor: every eigensolver this machine
offers the package, against the budget that row's target leaves.

The Jacobian row (``bench_empirical.py`` §3) asks for ours within 1.15× of the 31 bare 512² products, float64 and
float32. Any method that returns all singular values through the Gram pays the products, the Gram and the Gram's
eigenvalues, so the target leaves ``0.15 × floor − Gram`` for the eigensolver (and nothing for the chain's own
scalings). This section measures that budget and, in the same run, the eigenvalues of the J of that row:

* ``torch.linalg.eigvalsh`` (LAPACK ``?syevd`` of the BLAS torch was built with: MKL in the x86 wheels) at 1 and 2
  torch threads, float64 and float32 Gram;
* the LAPACK scipy links (OpenBLAS in its wheels): the reduction ``?sytrd`` with the tridiagonal eigenvalues by
  ``?sterf`` (what ``?syevd`` uses) or by ``?stemr`` (dqds), at 1 and 2 OpenBLAS threads.

Each configuration runs in a fresh subprocess: OpenBLAS reads its thread count when it loads, and its workers keep
spinning for a while after each call. The second thread of OpenBLAS therefore also gets a row of its own: ten torch
512² products timed right after an OpenBLAS call with 2 threads, against the same products alone — the cost a
second pool puts on the torch work that follows it in the same process.

Run ``python benchmarks/bench_eigensolvers.py``; it prints a Markdown section, which :func:`run` also returns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing, run as a script or from run_all
import _timing  # noqa: E402

N, DEPTH, TARGET = 512, 32, 1.15
SEED = 20261123


def _best(fn, repeats):
    return _timing.best_of(fn, repeats, warmup=True)


def _jacobians():
    """The J of bench_empirical's Jacobian row (orthogonal critical tanh, q* = 1/64), float64 and float32 networks."""
    import torch

    import empirical as emp

    sw, sb = 1.0151637852, 2.1566949868e-3
    g = torch.Generator().manual_seed(SEED + 1)
    x = torch.randn(N, generator=g, dtype=torch.float64) * math.sqrt(1 / 64 - sb**2) / sw
    out = {}
    for name, dt in (("f64", torch.float64), ("f32", torch.float32)):
        net = emp.RandomMLP(N, N, DEPTH, 1, "tanh", sw, sb, weights="orthogonal", generator=SEED, dtype=dt)
        out[name] = (net, emp.input_output_jacobian(net, x))
    return out


def _worker_torch(repeats):
    import numpy as np
    import torch

    from empirical.measure import _lower_gram

    res = {}
    torch.set_num_threads(2)
    for name, (net, j) in _jacobians().items():
        a, b = torch.randn(N, N, dtype=j.dtype), torch.empty(N, N, dtype=j.dtype)
        ws = [w.T for w in net.W[1:DEPTH]]
        res[f"floor_{name}"] = _best(lambda: [torch.mm(a, w, out=b) for w in ws], repeats)
        res[f"gram_{name}"] = _best(lambda: _lower_gram(j[None]), repeats)
        g = _lower_gram(j[None])[0]
        full = torch.tril(g) + torch.tril(g, -1).T
        truth = np.linalg.eigvalsh(full.double().numpy())
        res[f"truth_{name}"] = truth.tolist()
        for th in (1, 2):
            torch.set_num_threads(th)
            res[f"syevd64_{name}_{th}"] = _best(lambda: torch.linalg.eigvalsh(g.to(torch.float64), UPLO="L"), repeats)
            if name == "f32":
                res[f"syevd32_{name}_{th}"] = _best(lambda: torch.linalg.eigvalsh(g, UPLO="L"), repeats)
                ev = torch.linalg.eigvalsh(g, UPLO="L").double().numpy()
                res["syevd32_err"] = float(np.max(np.abs(ev - truth)) / truth[-1])
        torch.set_num_threads(2)
    return res


def _worker_scipy(repeats, threads):
    import numpy as np
    import scipy
    import scipy.linalg.lapack as lapack
    import torch

    from empirical.measure import _lower_gram

    torch.set_num_threads(2)
    res = {"lapack": _lapack_name(scipy), "threads": threads}
    jac = _jacobians()
    grams = {name: _lower_gram(j[None])[0].double().numpy().T for name, (_, j) in jac.items()}  # Fortran order: the
    # lower triangle of J's Gram is its upper
    time.sleep(0.5)  # torch's threads, spinning after the products above, go to sleep before OpenBLAS is timed
    for name, g in grams.items():
        truth = np.linalg.eigvalsh(np.triu(g) + np.triu(g, 1).T)
        for prec, sytrd, sterf, stemr, dt in (
            ("64", lapack.dsytrd, lapack.dsterf, lapack.dstemr, np.float64),
            ("32", lapack.ssytrd, lapack.ssterf, lapack.sstemr, np.float32),
        ):
            if name == "f64" and prec == "32":
                continue
            a = np.asfortranarray(g, dtype=dt)
            _, d, e, _, info = sytrd(a, lower=0)
            assert info == 0
            res[f"sytrd{prec}_{name}"] = _best(lambda: sytrd(a, lower=0), repeats)
            res[f"sterf{prec}_{name}"] = _best(lambda: sterf(d, e), repeats)
            e1 = np.append(e, 0.0).astype(dt)
            m, w, _, info = stemr(d, e1, 0, 0.0, 0.0, 0, 0, compute_v=0)
            assert info == 0 and m == N
            res[f"stemr{prec}_{name}"] = _best(lambda: stemr(d, e1, 0, 0.0, 0.0, 0, 0, compute_v=0), repeats)
            res[f"err{prec}_{name}"] = float(np.max(np.abs(np.sort(w[:m]).astype(np.float64) - truth)) / truth[-1])
    if threads > 1:  # a second pool's cost to the torch products that follow (its workers spin after each call)
        a = torch.randn(N, N, dtype=torch.float64)
        b, w = torch.empty_like(a), torch.randn(N, N, dtype=torch.float64)
        g = np.asfortranarray(grams["f64"])

        def products():
            t0 = time.perf_counter()
            for _ in range(10):
                torch.mm(a, w, out=b)
            return time.perf_counter() - t0

        alone = min(products() for _ in range(2 * repeats))
        after = []
        for _ in range(2 * repeats):
            lapack.dsytrd(g, lower=0)
            after.append(products())
        res["products_alone"], res["products_after"] = alone, float(np.median(after))
    return res


def _lapack_name(scipy) -> str:
    try:
        return scipy.show_config(mode="dicts")["Build Dependencies"]["lapack"]["name"]
    except Exception:  # noqa: BLE001 - older scipy: the name is only decoration
        return "scipy's LAPACK"


def _spawn(kind, repeats, threads=None):
    env = dict(os.environ)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--worker", kind, "--repeats", str(repeats)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _ms(t):
    return f"{t * 1e3:.2f} ms"


def run(quick: bool = False) -> str:
    repeats = 5 if quick else 15
    tor = _spawn("torch", repeats)
    sp = {th: _spawn("scipy", repeats, th) for th in (1, 2)}
    budget = {k: (TARGET - 1.0) * tor[f"floor_{k}"] - tor[f"gram_{k}"] for k in ("f64", "f32")}

    def fits(t, k):
        return "fits" if t <= budget[k] else f"{t / budget[k]:.1f}× the budget"

    lines = [
        "## The eigenvalues of the Jacobian row's 512² Gram against its budget" + (" (quick)" if quick else ""),
        "",
        f"The J of the Jacobian row (orthogonal critical tanh, width {N}, depth {DEPTH}). Budget = "
        f"{TARGET - 1:.2f} × the floor − the Gram, both measured here (torch, 2 threads): float64 "
        f"{_ms(tor['floor_f64'])} floor, {_ms(tor['gram_f64'])} Gram, budget **{_ms(budget['f64'])}**; float32 "
        f"{_ms(tor['floor_f32'])} floor, {_ms(tor['gram_f32'])} Gram, budget **{_ms(budget['f32'])}**. Best of {repeats}; "
        "every configuration in a fresh process. Error: max |Δλ| / λ_max against numpy's float64 eigenvalues of the "
        "same Gram.",
        "",
        "| eigensolver (eigenvalues only) | threads | float64 J | float32 J | error, float32 J |",
        "|---|---|---|---|---|",
    ]
    for th in (1, 2):
        t64, t32 = tor[f"syevd64_f64_{th}"], tor[f"syevd64_f32_{th}"]
        lines.append(f"| torch.linalg.eigvalsh, float64 (?syevd of torch's LAPACK) | {th} | {_ms(t64)}: {fits(t64, 'f64')} "
                     f"| {_ms(t32)}: {fits(t32, 'f32')} | float64 |")
    for th in (1, 2):
        t32 = tor[f"syevd32_f32_{th}"]
        lines.append(f"| torch.linalg.eigvalsh, float32 | {th} | — | {_ms(t32)}: {fits(t32, 'f32')} | "
                     f"{tor['syevd32_err']:.1e} |")
    for th in (1, 2):
        r = sp[th]
        for tri in ("sterf", "stemr"):
            t64 = r["sytrd64_f64"] + r[f"{tri}64_f64"]
            t32 = r["sytrd64_f32"] + r[f"{tri}64_f32"]
            lines.append(f"| {r['lapack']} dsytrd + d{tri} ({_ms(r['sytrd64_f64'])} + {_ms(r[f'{tri}64_f64'])}) | {th} | "
                         f"{_ms(t64)}: {fits(t64, 'f64')} | {_ms(t32)}: {fits(t32, 'f32')} | "
                         f"{r['err64_f32']:.1e} (float64) |")
        t32 = r["sytrd32_f32"] + r["stemr32_f32"]
        lines.append(f"| {r['lapack']} ssytrd + sstemr, float32 | {th} | — | {_ms(t32)}: {fits(t32, 'f32')} | "
                     f"{r['err32_f32']:.1e} |")
    r2 = sp[2]
    lines += [
        "",
        f"A second thread pool's cost: ten torch 512² float64 products take {_ms(r2['products_alone'])} alone and "
        f"{_ms(r2['products_after'])} (median) right after one {r2['lapack']} dsytrd with 2 threads: "
        f"{r2['products_after'] / r2['products_alone']:.2f}×, because its workers keep spinning on the cores torch's "
        "threads need. A multi-threaded OpenBLAS eigensolver in the package would make every later torch measurement "
        "in the user's process pay that (see `empirical.threads`).",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", choices=("torch", "scipy"))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    if args.worker == "torch":
        print(json.dumps(_worker_torch(args.repeats)))
    elif args.worker == "scipy":
        print(json.dumps(_worker_scipy(args.repeats, int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))))
    else:
        print(run(quick=args.quick))


if __name__ == "__main__":
    main()
