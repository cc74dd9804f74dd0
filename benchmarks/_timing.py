"""Timing helper shared by the benchmark scripts."""

import time


def best_of(fn, repeat: int = 5, warmup: bool = False) -> float:
    """Best wall time in seconds of ``repeat`` calls of ``fn()`` (after one untimed call when ``warmup``)."""
    if warmup:
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)
