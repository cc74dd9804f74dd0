"""GPU readiness: the empirical measurements at sizes only a GPU makes practical (``make bench-gpu``, about a minute).

1. FIM λ_max (layerwise Gram, top-1) of a tanh MLP 4096 → 256×4096 → 10 outputs, 256 inputs, float32 and float64
   (target ≤ 5 s on one H100-class GPU), with peak GPU memory; the float32 λ_max against the float64 one.
2. Jacobian singular values of an orthogonal critical tanh MLP (q* = 1/64), width 2048, depth 64, float64 and float32,
   against the bare GEMM chain on the same device (the floor of any exact dense method).
3. ``meanfield verify --device cuda --full``: every prediction against networks sampled on the GPU, with its time.

Without a CUDA device it prints one line saying so and exits 2 (nothing is measured, nothing written). With one, it
replaces the GPU section of ``benchmarks/RESULTS.md`` (between the ``<!-- gpu -->`` markers; appended if absent) with
the device name, date and figures.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

SEED = 20261123
START, END = "<!-- gpu -->", "<!-- /gpu -->"
FIM_TARGET_S = 5.0


def _sync(torch):
    torch.cuda.synchronize()


def best_time(torch, fn, repeats):
    """Best wall time of ``repeats`` synchronised calls after one warm-up call, and the last result."""
    out = fn()
    _sync(torch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        _sync(torch)
        times.append(time.perf_counter() - t0)
    return min(times), out


def case_fim(torch, emp, dtype, width=4096, depth=256, T=256, C=10):
    dev = torch.device("cuda")
    net = emp.RandomMLP(width, width, depth, C, "tanh", math.sqrt(1.5), math.sqrt(0.05), device=dev, dtype=dtype,
                        generator=SEED)
    g = torch.Generator().manual_seed(SEED + 1)
    X = torch.randn(T, width, generator=g, dtype=torch.float64).to(dev, dtype)
    torch.cuda.reset_peak_memory_stats()
    t, ev = best_time(torch, lambda: emp.fisher_eigenvalues(net, X, top_k=1), 2)
    out = dict(time=t, lambda_max=float(ev[0]), peak_gib=torch.cuda.max_memory_allocated() / 2**30)
    del net, X
    torch.cuda.empty_cache()
    return out


def case_jacobian(torch, emp, dtype, width=2048, depth=64):
    dev = torch.device("cuda")
    sw, sb = 1.0151637852, 2.1566949868e-3  # orthogonal tanh on the critical line at q* = 1/64 (THEORY §2)
    net = emp.RandomMLP(width, width, depth, 1, "tanh", sw, sb, weights="orthogonal", device=dev, dtype=dtype,
                        generator=SEED)
    g = torch.Generator().manual_seed(SEED + 2)
    x = (torch.randn(width, generator=g, dtype=torch.float64) * math.sqrt(1 / 64 - sb**2) / sw).to(dev, dtype)
    t, sv = best_time(torch, lambda: emp.jacobian_singular_values(net, x), 3)
    a = torch.randn(width, width, generator=g, dtype=torch.float64).to(dev, dtype)
    buf = torch.empty_like(a)
    floor, _ = best_time(torch, lambda: [torch.mm(a, w, out=buf) for w in net.W[1:depth]], 3)
    out = dict(time=t, floor=floor, ratio=t / floor, mean_sq=float((sv**2).mean()), sigma_max=float(sv[0]))
    del net, a, buf
    torch.cuda.empty_cache()
    return out


def case_verify():
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "meanfield.cli", "verify", "--device", "cuda", "--full",
                               "--quiet", "--out", d], cwd=ROOT, capture_output=True, text=True)
        t = time.perf_counter() - t0
    tail = [ln for ln in proc.stdout.splitlines() if ln.startswith(("ok ", "FAIL "))]
    return dict(time=t, returncode=proc.returncode, lines=tail)


def _fmt(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def run() -> str:
    import torch

    import empirical as emp

    name = torch.cuda.get_device_name()
    lines = [START, "## GPU (`make bench-gpu`)", "",
             f"Device: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}. Date: "
             f"{datetime.date.today().isoformat()}. Best of repeats after a warm-up call, synchronised.", "",
             "**1. FIM λ_max, tanh 4096 → 256×4096 → 10, 256 inputs (layerwise Gram, top-1)**", "",
             f"| dtype | time (target ≤ {FIM_TARGET_S:g} s) | λ_max | peak GPU memory | verdict |", "|---|---|---|---|---|"]
    fims = {}
    for dtype in (torch.float32, torch.float64):
        r = fims[dtype] = case_fim(torch, emp, dtype)
        ok = "PASS" if r["time"] <= FIM_TARGET_S else "MISS"
        lines.append(f"| {str(dtype).split('.')[-1]} | {_fmt(r['time'])} | {r['lambda_max']:.8g} | "
                     f"{r['peak_gib']:.1f} GiB | {ok} |")
    rel = abs(fims[torch.float32]["lambda_max"] / fims[torch.float64]["lambda_max"] - 1)
    lines += ["", f"float32 λ_max against float64: {rel:.1e} relative.", "",
              "**2. Jacobian singular values, orthogonal critical tanh (q* = 1/64), width 2048, depth 64**", "",
              "| dtype | ours | bare GEMM chain (63 products) | ratio (target ≤ 1.15×) | mean σ² | σ_max |",
              "|---|---|---|---|---|---|"]
    for dtype in (torch.float32, torch.float64):
        r = case_jacobian(torch, emp, dtype)
        lines.append(f"| {str(dtype).split('.')[-1]} | {_fmt(r['time'])} | {_fmt(r['floor'])} | {r['ratio']:.2f}× | "
                     f"{r['mean_sq']:.4f} | {r['sigma_max']:.4f} |")
    v = case_verify()
    lines += ["", "**3. `meanfield verify --device cuda --full`**", "",
              f"{_fmt(v['time'])}, exit status {v['returncode']}" + (" (every record within tolerance)"
                                                                      if v["returncode"] == 0 else ""), ""]
    lines += [f"    {ln}" for ln in v["lines"]]
    lines += ["", END]
    return "\n".join(lines)


def write(section: str, path: Path):
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), flags=re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"), help="file whose GPU section is replaced")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench-gpu: torch is not installed (pip install 'meanfield[empirical]')", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(f"bench-gpu: no CUDA device (torch {torch.__version__}); nothing measured", file=sys.stderr)
        return 2
    section = run()
    write(section, Path(args.out))
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
