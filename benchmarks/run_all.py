"""Run every benchmark section and write benchmarks/RESULTS.md with the machine and date (``make bench``)."""

import argparse
import datetime
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).parent
SECTIONS = ["bench_core", "bench_spectra", "bench_fisher", "bench_empirical", "bench_eigensolvers", "bench_threads", "bench_init", "bench_kernels"]


def machine() -> str:
    import numpy
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {numpy.__version__}, "
            f"numba {numba.__version__}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    parts = [f"# Benchmark results\n\nMachine: {machine()}  \nDate: {datetime.date.today().isoformat()}  \n"
             "Baselines are measured in the same run; times are best of repeats after compilation.\n"]
    for name in SECTIONS:
        path = HERE / f"{name}.py"
        if not path.exists():
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print(f"running {name} ...", file=sys.stderr)
        parts.append(mod.run(quick=args.quick))
    Path(args.out).write_text("\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
