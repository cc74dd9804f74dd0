"""Benchmarks of the empirical measurements, each against a baseline measured in the same run.

Run ``python benchmarks/bench_empirical.py [--quick]``; it prints a Markdown section, which :func:`run` also returns
(for an aggregator writing ``benchmarks/RESULTS.md``). Times are the best of a few repeats after one warm-up call.

1. FIM λ_max of a tanh MLP 256 → 6×256 → 10 outputs, σ_w² = 1.5, σ_b² = 0.05, 32 inputs (P = 397,322): the layerwise
   Gram (ours) vs per-sample gradients by ``torch.func`` (``vmap(jacrev)``) and their Gram, vs curvlinops' GGN operator
   with scipy's ``eigsh`` (when ``curvlinops-for-pytorch`` is installed), with their relative agreement.
2. Width 1024, depth 64, 128 inputs, 10 outputs: λ_max on the CPU, time and peak memory (in a fresh subprocess, so
   the peak resident set is this case's own).
3. Jacobian singular values at width 512, depth 32: the explicit D·W chain + Gram eigenvalues (ours), batched, float32,
   the bare-GEMM floor, vs ``torch.func.jacrev`` and ``torch.autograd.functional.jacobian``, each + ``svdvals``.
4. The GPU cases live in ``bench_gpu.py`` (``make bench-gpu``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import empirical as emp  # noqa: E402
from empirical import reference as ref  # noqa: E402
from empirical.measure import _lower_gram  # noqa: E402

SEED = 20261123


def best_time(fn, repeats: int) -> tuple[float, object]:
    """(best wall time of ``repeats`` calls after one warm-up call, the last result)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def interleaved_best(fns: dict, repeats: int) -> dict:
    """{name: best wall time} of ``repeats`` rounds calling every function once per round, after one warm-up round."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _inputs(t, n, device="cpu"):
    g = torch.Generator().manual_seed(SEED + 1)
    return torch.randn(t, n, generator=g, dtype=torch.float64).to(device)


def _fim_net(device="cpu"):
    return emp.RandomMLP(256, 256, 6, 10, "tanh", math.sqrt(1.5), math.sqrt(0.05), device=device, generator=SEED)


# ------------------------------------------------------------------------------------------------------------ cases
def case_fim_small(repeats: int) -> dict:
    net = _fim_net()
    X = _inputs(32, 256)
    res = {"P": net.num_parameters()}
    res["ours"], ev = best_time(lambda: emp.fisher_eigenvalues(net, X, top_k=1), repeats)
    res["ours_all"], ev_all = best_time(lambda: emp.fisher_eigenvalues(net, X), repeats)
    lam = float(ev[0])
    res["lambda_max"] = lam
    res["all_vs_top"] = abs(ev_all[0] - lam) / lam

    def jacrev_gram():
        g = ref.reference_fisher_gram(net, X)
        return float(torch.linalg.eigvalsh(g)[-1])

    res["jacrev"], lam_j = best_time(jacrev_gram, max(1, repeats // 2))
    res["jacrev_agree"] = abs(lam_j - lam) / lam
    try:
        res.update(_curvlinops(net, X, lam, max(1, repeats // 2)))
    except ImportError as exc:
        res["curvlinops_note"] = f"not installed ({exc.name}): `pip install curvlinops-for-pytorch` to add this row"
    return res


def _curvlinops(net, X, lam, repeats):
    import warnings

    with warnings.catch_warnings():  # its dependencies warn about torch.jit.script at import
        warnings.simplefilter("ignore")
        from curvlinops import GGNLinearOperator  # ImportError → the row is skipped with a note
    from scipy.sparse.linalg import eigsh

    net.requires_grad_(True)
    params = [p for p in net.parameters()]
    data = [(X, torch.zeros(X.shape[0], net.output_width, dtype=X.dtype))]
    T = X.shape[0]
    # MSELoss(sum) = Σ_t |f − y|²: its GGN is Σ_t J_tᵀ (2I) J_t = 2T·F
    loss = torch.nn.MSELoss(reduction="sum")

    def run():
        op = GGNLinearOperator(net, loss, params, data, check_deterministic=False).to_scipy()
        v0 = np.random.default_rng(0).standard_normal(op.shape[0])
        top = eigsh(op, k=1, which="LA", v0=v0, tol=1e-12, return_eigenvectors=False)
        return float(top[0]) / (2 * T)

    with warnings.catch_warnings():  # torch's forward-mode AD warns about torch.jit.script on first use
        warnings.simplefilter("ignore", DeprecationWarning)
        t, lam_c = best_time(run, repeats)
    net.requires_grad_(False)
    return {
        "curvlinops": t,
        "curvlinops_agree": abs(lam_c - lam) / lam,
        "curvlinops_version": importlib.metadata.version("curvlinops-for-pytorch"),
    }


def case_fim_large(quick: bool) -> dict:
    """In a subprocess: the peak resident set is this case's own (after building the network and inputs)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case-large"] + (["--quick"] if quick else [])
    env = dict(os.environ)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_rss_mib(reset: bool = False) -> float:
    """This process's peak resident set (VmHWM) in MiB; with ``reset`` first lower the mark to the current RSS
    (Linux ``/proc/self/clear_refs``). Falls back to getrusage (not resettable) elsewhere."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case_large_worker(quick: bool) -> dict:
    width, depth, T, C = (1024, 16, 64, 10) if quick else (1024, 64, 128, 10)
    net = emp.RandomMLP(width, width, depth, C, "tanh", math.sqrt(1.5), math.sqrt(0.05), device="cpu", generator=SEED)
    X = _inputs(T, width)
    rss0 = _peak_rss_mib(reset=True)
    t0 = time.perf_counter()
    ev = emp.fisher_eigenvalues(net, X, top_k=1)
    first = time.perf_counter() - t0
    rss1 = _peak_rss_mib()
    t0 = time.perf_counter()
    emp.fisher_eigenvalues(net, X, top_k=1)
    second = time.perf_counter() - t0
    weights_mib = net.num_parameters() * 8 / 2**20
    caches_mib = T * width * depth * 8 / 2**20  # the stored φ'(h^l); activations are kept only as T×T Grams
    gram_mib = (T * C) ** 2 * 8 / 2**20
    return {
        "width": width, "depth": depth, "T": T, "C": C, "time": min(first, second), "lambda_max": float(ev[0]),
        "rss_before": rss0, "rss_peak": rss1, "weights_mib": weights_mib, "caches_mib": caches_mib, "gram_mib": gram_mib,
    }


def case_jacobian(repeats: int) -> dict:
    sw, sb = 1.0151637852, 2.1566949868e-3  # orthogonal tanh on the critical line at q* = 1/64 (THEORY §2)
    net = emp.RandomMLP(512, 512, 32, 1, "tanh", sw, sb, weights="orthogonal", generator=SEED)
    X = _inputs(8, 512) * math.sqrt(1 / 64 - sb**2) / sw
    x = X[0]
    res = {}
    res["ours"], sv = best_time(lambda: emp.jacobian_singular_values(net, x), repeats)
    res["ours_gram"], svg = best_time(lambda: emp.jacobian_singular_values(net, x, method="gram"), repeats)
    res["gram_agree_sq"] = float(np.max(np.abs(svg**2 - sv**2)) / sv[0] ** 2)
    res["ours_chain"], _ = best_time(lambda: emp.input_output_jacobian(net, x), repeats)
    t8, sv8 = best_time(lambda: emp.jacobian_singular_values(net, X), max(1, repeats // 2))
    res["ours_batch8"] = t8 / 8
    res["batch_agree"] = float(np.max(np.abs(sv8[0] - sv)) / sv[0])
    net32 = emp.RandomMLP(
        512, 512, 32, 1, "tanh", sw, sb, weights="orthogonal", generator=SEED, dtype=torch.float32
    )
    res["ours_f32"], sv32 = best_time(lambda: emp.jacobian_singular_values(net32, x), repeats)
    res["f32_agree"] = float(np.max(np.abs(sv32 - sv)) / sv[0])
    # the floor: the 31 bare 512×512 GEMMs that any exact dense method performs, with the network's own weights, in
    # the faster of the two operand layouts (a·W and a·Wᵀ; MKL's float64 a·Wᵀ with both row-major is ~10 % faster)
    a, buf = _inputs(512, 512), torch.empty(512, 512, dtype=torch.float64)
    a32, buf32 = a.float(), buf.float()
    floors = {}
    # (at the thread count the measurement's policy picks for these products, so that both sides run alike)
    def chain(aa, bb, ws):
        with emp.threads("auto", work=512**3 * (0.5 if aa.dtype == torch.float32 else 1)):
            return [torch.mm(aa, w, out=bb) for w in ws]

    # the target rows again, interleaved repeat by repeat with their floors, so that a change of the machine's load
    # hits both sides of each ratio alike (the rows above were timed one after the other)
    ws64, ws32 = list(net.W[1:32]), list(net32.W[1:32])
    # the part of ours beyond the products, alone: the Gram's lower triangle of this J and the float64 eigensolver on it
    # (the calls _gram_eigenvalues makes), at the thread count the measurement picks for them
    j64 = emp.input_output_jacobian(net, x)[None]
    j32 = emp.input_output_jacobian(net32, x)[None]
    g64, g32 = _lower_gram(j64), _lower_gram(j32)

    def alone(fn, work):
        with emp.threads("auto", work=work):
            return fn()

    t = interleaved_best(
        {
            "ours": lambda: emp.jacobian_singular_values(net, x),
            "n64": lambda: chain(a, buf, ws64),
            "t64": lambda: chain(a, buf, [w.T for w in ws64]),
            "gram64": lambda: alone(lambda: _lower_gram(j64), 512**3),
            "eig64": lambda: alone(lambda: torch.linalg.eigvalsh(g64.to(torch.float64), UPLO="L"), 512**3),
            "ours_f32": lambda: emp.jacobian_singular_values(net32, x),
            "n32": lambda: chain(a32, buf32, ws32),
            "t32": lambda: chain(a32, buf32, [w.T for w in ws32]),
            "gram32": lambda: alone(lambda: _lower_gram(j32), 512**3 // 2),
            "eig32": lambda: alone(lambda: torch.linalg.eigvalsh(g32.to(torch.float64), UPLO="L"), 512**3),
        },
        repeats,
    )
    for key in ("gram64", "eig64", "gram32", "eig32"):
        res[key] = t[key]
    res["ours"], res["ours_f32"] = t["ours"], t["ours_f32"]
    floors["gemm_floor"], floors["gemm_floor_f32"] = (t["n64"], t["t64"]), (t["n32"], t["t32"])
    res["gemm_floor"], res["gemm_floor_f32"] = min(t["n64"], t["t64"]), min(t["n32"], t["t32"])
    res["floor_layouts"] = floors
    res["jacrev"], svj = best_time(lambda: torch.linalg.svdvals(ref.reference_jacobian(net, x)).numpy(), repeats)
    res["jacrev_chain"], _ = best_time(lambda: ref.reference_jacobian(net, x), repeats)
    res["agree"] = float(np.max(np.abs(sv - svj)) / sv[0])

    def autograd_rows():  # torch.autograd.functional.jacobian, default vectorize=False: one backward pass per output
        return torch.linalg.svdvals(torch.autograd.functional.jacobian(net.features, x)).numpy()

    res["autograd"], sva = best_time(autograd_rows, 1)
    res["autograd_agree"] = float(np.max(np.abs(sv - sva)) / sv[0])
    res["top_k"], top = best_time(lambda: emp.jacobian_singular_values(net, x, top_k=4, method="lanczos"), repeats)
    res["top_k_agree"] = float(np.max(np.abs(top - sv[:4])) / sv[0])
    return res


# ------------------------------------------------------------------------------------------------------------ report
JAC_TARGET = 1.15  # the Jacobian's time against the bare GEMM chain measured in the same run


def _target(t, floor, beyond=0.0):
    """The ratio to the floor and its verdict; ``beyond``: the time of the work any Gram-eigenvalue method adds to the
    products (the Gram and its eigensolver, measured alone): when floor + beyond already exceeds the target, the MISS
    says so."""
    if t <= JAC_TARGET * floor:
        return f"{t / floor:.2f}×, PASS"
    if floor + beyond > JAC_TARGET * floor:
        return f"{t / floor:.2f}×, MISS (the floor plus the Gram and its eigensolver alone: {(floor + beyond) / floor:.2f}×)"
    return f"{t / floor:.2f}×, MISS"


def _vs(t, ref):
    """``t`` against ``ref`` as "1.5× slower" or "1.2× faster"."""
    return f"{t / ref:.2f}× slower" if t >= ref else f"{ref / t:.2f}× faster"


def _fmt_t(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def run(quick: bool = False) -> str:
    """Run every case and return the Markdown section."""
    repeats = 2 if quick else 5
    large = case_fim_large(quick)
    small = case_fim_small(repeats)
    jac = case_jacobian(2 * repeats - 1)  # more repeats: the best of 5 still varied by ±30 % on a busy 2-core machine

    lines = [
        "## empirical: FIM spectra and Jacobians" + (" (quick)" if quick else ""),
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), float64. Best of {repeats} repeats after a warm-up call.",
        "",
        f"**1. FIM λ_max, tanh 256 → 6×256 → 10, σ_w² = 1.5, σ_b² = 0.05, 32 inputs (P = {small['P']:,})** "
        f"— λ_max = {small['lambda_max']:.10g}",
        "",
        "| method | time | vs ours | agreement with ours (relative) |",
        "|---|---|---|---|",
        f"| layerwise Gram, top-1 (ours; target ≤ 0.2 s) | {_fmt_t(small['ours'])} | 1× | — |",
        f"| layerwise Gram, all 320 eigenvalues | {_fmt_t(small['ours_all'])} | "
        f"{small['ours_all'] / small['ours']:.1f}× | {small['all_vs_top']:.1e} |",
        f"| torch.func vmap(jacrev) per-sample gradients + Gram | {_fmt_t(small['jacrev'])} | "
        f"{small['jacrev'] / small['ours']:.0f}× slower | {small['jacrev_agree']:.1e} |",
    ]
    if "curvlinops" in small:
        lines.append(
            f"| curvlinops {small['curvlinops_version']} GGNLinearOperator + scipy eigsh | {_fmt_t(small['curvlinops'])} | "
            f"{small['curvlinops'] / small['ours']:.0f}× slower | {small['curvlinops_agree']:.1e} |"
        )
    else:
        lines.append(f"| curvlinops | skipped | — | {small['curvlinops_note']} |")
    lines += [
        "",
        f"**2. FIM λ_max at width {large['width']}, depth {large['depth']}, {large['T']} inputs, {large['C']} outputs, CPU**"
        + ("" if quick else " (target ≤ 20 s)"),
        "",
        "| time | λ_max | peak RSS during the call | RSS before it (torch, network, inputs) | added by the call "
        "| weights | stored φ'(h^l) | Gram |",
        "|---|---|---|---|---|---|---|---|",
        f"| {_fmt_t(large['time'])} | {large['lambda_max']:.6g} | {large['rss_peak']:.0f} MiB | "
        f"{large['rss_before']:.0f} MiB | {large['rss_peak'] - large['rss_before']:.0f} MiB | "
        f"{large['weights_mib']:.0f} MiB | {large['caches_mib']:.0f} MiB | {large['gram_mib']:.1f} MiB |",
        "",
        "**3. Jacobian singular values, orthogonal critical tanh (q* = 1/64), width 512, depth 32, float64**",
        "",
        "| method | time per input | ratio to ours | agreement with ours (max abs / σ_max) |",
        "|---|---|---|---|",
        f"| explicit D·W chain + Gram eigvalsh, svdvals where ill-conditioned (ours, default; target ≤ "
        f"{JAC_TARGET}× the floor row: {_target(jac['ours'], jac['gemm_floor'], jac['gram64'] + jac['eig64'])}) | {_fmt_t(jac['ours'])} | 1× | — |",
        f"| the same, 8 inputs in one call (one GEMM per layer for the batch) | {_fmt_t(jac['ours_batch8'])} | "
        f"{jac['ours_batch8'] / jac['ours']:.2f}× | {jac['batch_agree']:.1e} |",
        f"| method=\"gram\" (squares σ² exact to u·σ_max²) | {_fmt_t(jac['ours_gram'])} | "
        f"{jac['ours_gram'] / jac['ours']:.2f}× | {jac['gram_agree_sq']:.1e} (in σ²/σ_max²) |",
        f"| (chain alone) | {_fmt_t(jac['ours_chain'])} | {jac['ours_chain'] / jac['ours']:.2f}× | |",
        f"| a float32 network (dtype=torch.float32; target ≤ {JAC_TARGET}× the float32 floor: "
        f"{_target(jac['ours_f32'], jac['gemm_floor_f32'], jac['gram32'] + jac['eig32'])}) | {_fmt_t(jac['ours_f32'])} | "
        f"{jac['ours_f32'] / jac['ours']:.2f}× | {jac['f32_agree']:.1e} |",
        f"| floor: 31 bare 512×512 float64 GEMMs (the faster of a·W_l, {_fmt_t(jac['floor_layouts']['gemm_floor'][0])}, "
        f"and a·W_lᵀ, {_fmt_t(jac['floor_layouts']['gemm_floor'][1])}) | {_fmt_t(jac['gemm_floor'])} | "
        f"{jac['gemm_floor'] / jac['ours']:.2f}× | |",
        f"| floor: the same 31 GEMMs in float32 (a·W_l {_fmt_t(jac['floor_layouts']['gemm_floor_f32'][0])}, a·W_lᵀ "
        f"{_fmt_t(jac['floor_layouts']['gemm_floor_f32'][1])}) | {_fmt_t(jac['gemm_floor_f32'])} | "
        f"{jac['gemm_floor_f32'] / jac['ours']:.2f}× | |",
        f"| (the Gram's lower triangle alone, float64 / float32 J) | {_fmt_t(jac['gram64'])} / {_fmt_t(jac['gram32'])} "
        f"| {jac['gram64'] / jac['gemm_floor']:.1%} / {jac['gram32'] / jac['gemm_floor_f32']:.1%} of the floor | |",
        f"| (its float64 eigenvalues alone, `torch.linalg.eigvalsh`, float64 / float32 Gram) | {_fmt_t(jac['eig64'])} / "
        f"{_fmt_t(jac['eig32'])} | {jac['eig64'] / jac['gemm_floor']:.1%} / {jac['eig32'] / jac['gemm_floor_f32']:.1%} "
        "of the floor | |",
        f"| torch.func jacrev + svdvals | {_fmt_t(jac['jacrev'])} | {_vs(jac['jacrev'], jac['ours'])} | "
        f"{jac['agree']:.1e} |",
        f"| (jacrev alone) | {_fmt_t(jac['jacrev_chain'])} | {_vs(jac['jacrev_chain'], jac['ours_chain'])} than the "
        "chain alone | |",
        f"| torch.autograd.functional.jacobian (vectorize=False, one backward per output) + svdvals "
        f"| {_fmt_t(jac['autograd'])} | {jac['autograd'] / jac['ours']:.0f}× slower | {jac['autograd_agree']:.1e} |",
        f"| top-4 by Lanczos (matrix-free, tol = machine precision) | {_fmt_t(jac['top_k'])} | "
        f"{jac['top_k'] / jac['ours']:.1f}× slower than dense | {jac['top_k_agree']:.1e} |",
        "",
        "The dense Jacobian needs L−1 = 31 products of 512×512 matrices (8.3 GFLOP) however it is computed: ours takes "
        "about as long as those bare GEMMs (the floor row), so the time is this machine's float64 BLAS rate. "
        "torch.func's vectorised jacrev performs the same products in its vmapped backward pass, so against it the ratio "
        "stays near 1; the ≥ 15× target holds only against PyTorch's row-by-row "
        "`torch.autograd.functional.jacobian`. The target is therefore stated against the floor measured in the same "
        f"run: ours within {JAC_TARGET}× of the bare GEMM chain, in float64 and in float32. Ours is those products "
        "(each in the faster layout, the forward pass taken along, one scaling by D_l each) plus the Gram's lower triangle "
        "(3/4 of one product) and the float64 eigenvalues of the 512² Gram, whose times alone are the two rows in "
        "brackets: the target leaves 15 % of the floor for them together, and on this machine the eigensolver alone "
        "(sytrd, half of it matrix-vector work, which a second thread barely speeds up) takes about that much of the "
        "float64 floor and more of the float32 one. The section \"The eigenvalues of the Jacobian row's 512² Gram\" below "
        "times every eigensolver available here against that budget.",
        "The matrix-free top-k route (ARPACK on JᵀJ through the stored D's and W's) streams every weight matrix twice "
        "per step and needs ~250 steps for the clustered top of a near-isometric spectrum, so it only pays off where the "
        "dense product does not fit.",
        "",
        "**4. GPU**: `make bench-gpu` (`benchmarks/bench_gpu.py`) measures the GPU cases and writes its own section "
        "below when a CUDA device is present.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and a smaller case 2")
    p.add_argument("--case-large", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case_large:
        print(json.dumps(_case_large_worker(args.quick)))
        return
    print(run(quick=args.quick))


if __name__ == "__main__":
    main()
