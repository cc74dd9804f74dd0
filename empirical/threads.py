"""How many threads torch uses for a measurement: the cores idle right now, not the cores the machine has.

Why
---
torch's CPU build runs its intra-op parallel regions (elementwise kernels, reductions) on GNU OpenMP (libgomp) and
its GEMMs/eigensolvers on MKL's threads; both default to one thread per core, whatever else runs. Every parallel region
ends in a barrier: it finishes when its slowest thread does. When another process keeps one of the two cores busy, the
thread that shares that core runs only when the scheduler gives it a slice (milliseconds at a time, the neighbour's
fair share), while its partner, done with its half, spins at the barrier (libgomp spins ~GOMP_SPINCOUNT = 300,000
iterations before sleeping when the threads do not exceed the cores, which is the default case) and then sleeps. A
measurement is thousands of short regions (a D·W product, a row scaling, a small Gram, one per layer and input chunk):
each waits for a slice of the shared core, so the wall time is set by scheduling latency, not by flops.

Measured on this project's 2-core VM (torch 2.13 CPU, libgomp + MKL) by ``benchmarks/bench_threads.py``, load
average 8–21 throughout (other processes), with and without an extra ``while True: pass`` neighbour: 4 orthogonal
networks N = 600, L = 16, all Jacobian singular values, 1.5–3.5 s with 1 thread and 26–39 s with 2 (N = 300: 0.17–0.56
s vs 0.6–12.5 s; issue 14 reported 2.6 s vs 112 s at N = 600 beside one neighbour); FIM λ_max of a 256-wide tanh MLP
at 32 inputs, 48–72 ms vs 0.2–16 s; 200 small elementwise ops on 128² tensors, 1 thread 3–80×
faster than 2; a bare 1024² float64 GEMM, 2 threads between 0.75× and 1.5× the speed of 1. The cause is the barrier
wait, not oversubscription by other pools: the empirical measurements call no Numba-parallel code, and MKL follows
``torch.set_num_threads``. On free cores the second thread pays where the work per region is large (GEMMs,
eigensolvers: up to ~2× on 2 cores) and costs nothing measurable on small ops; this machine never had both cores free
while this was measured, so that side is the expectation, not a figure. Neither "always 1" nor "always all" is right
on a machine whose load changes; the number of cores idle when the measurement starts is.

Policy
------
:func:`threads` sets ``torch.set_num_threads`` for the body of a ``with`` block and restores it afterwards; the
measurements of :mod:`empirical.measure` run inside it by default (their ``threads=`` keyword: None = keep the count of
an enclosing :func:`threads` block, else ``"auto"``). ``"auto"`` is :func:`idle_cpus`: the cores this process may run
on (``os.sched_getaffinity``, a cgroup ``cpu.max`` quota) minus the cores other processes keep busy, capped by the
count torch had before (a user's ``torch.set_num_threads(1)`` stays an upper bound), and at least 1. "Busy" is read
from the run queue at this instant: ``/proc/loadavg``'s count of runnable tasks minus this process's own threads in
state R (the reader, and torch workers still spinning from the last region, which are not a neighbour), three reads,
~0.1 ms, cached for 1 s. A first design sampled ``/proc/stat`` over 20 ms instead, but its counters tick every 10 ms,
so a usable sample costs ~20 ms, as much as a small measurement (the benchmark's ``layer_statistics`` case, 2.5 ms,
came out 9× slower through the policy); it remains the fallback for a process pinned to a subset of the cores (the
system-wide run queue is then not the one it shares) or without ``/proc/loadavg``, with this process's own CPU time
over the sample subtracted. A core counts as busy from a quarter of it on: a thread too many on a busy core costs up
to ~40×, a thread too few on an idle one at most ~2× on 2 cores. Neither file readable (not Linux): ``"auto"`` is the
affinity count or ``os.cpu_count()``, capped as above.
Nothing is changed at import: no environment variable, no global thread count. Users who run many processes side by
side may also set ``OMP_WAIT_POLICY=passive`` before starting Python: libgomp then sleeps at a barrier at once
instead of spinning, which gives the spun CPU time back to the other processes (it does not shorten the wait for a
descheduled partner, so it is no substitute for the thread count); it is read once when torch loads, so it is the
user's choice, not this package's.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import threading
import time
from contextlib import contextmanager

import torch

from meanfield.errors import InvalidParameterError

__all__ = ["threads", "idle_cpus", "usable_cpus", "with_threads"]

SAMPLE_SECONDS = 0.02  # /proc/stat ticks are 10 ms: 20 ms gives each core 2 ticks (the fallback's resolution)
CACHE_SECONDS = 1.0
RUN_QUEUE_READS = 3
BUSY_FRACTION = 0.25  # a core is "idle" when other processes used less than this fraction of it

_STATE = threading.local()  # depth of enclosing threads() blocks in this Python thread
_CACHE: dict = {}
_PROC_STAT = "/proc/stat"
_LOADAVG = "/proc/loadavg"
_TASKS = "/proc/self/task"
_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def usable_cpus() -> int:
    """The cores this process may run on: ``os.sched_getaffinity`` (else ``os.cpu_count()``), lowered by a cgroup v2
    ``cpu.max`` quota when one is set; at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(_CPU_MAX) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _cpu_ticks(cpus) -> tuple[int, int, int] | None:
    """(busy, total, number of cores) jiffies summed over the given cores from ``/proc/stat``; None when it cannot be read."""
    try:
        with open(_PROC_STAT) as f:
            lines = [ln.split() for ln in f if ln.startswith("cpu") and not ln.startswith("cpu ")]
    except OSError:
        return None
    busy = total = 0
    seen = 0
    for fields in lines:
        try:
            cpu = int(fields[0][3:])
            vals = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        except (ValueError, IndexError):
            return None
        if cpus is not None and cpu not in cpus:
            continue
        seen += 1
        total += sum(vals)
        busy += sum(vals) - vals[3] - vals[4]
    return (busy, total, seen) if seen else None


def _sample_others_busy(seconds: float) -> float | None:
    """Cores' worth of CPU time other processes used over ``seconds`` (/proc/stat minus this process), or None."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    a = _cpu_ticks(cpus)
    if a is None:
        return None
    p0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    b = _cpu_ticks(cpus)
    p1, t1 = time.process_time(), time.perf_counter()
    if b is None:
        return None
    dtotal = b[1] - a[1]
    wall = t1 - t0
    if dtotal <= 0 or wall <= 0:
        return None
    busy = (b[0] - a[0]) / dtotal * b[2]  # cores' worth busy over the sample, all processes
    own = (p1 - p0) / wall
    return max(0.0, busy - own)


def _running_others(reads: int = RUN_QUEUE_READS) -> float | None:
    """Runnable tasks of other processes right now: the run-queue count of ``/proc/loadavg`` (4th field, all tasks
    running or waiting for a core) minus this process's threads in state R (``/proc/self/task/*/stat``: the reading
    thread and any torch worker still spinning at a barrier), averaged over a few back-to-back reads; None when
    unreadable."""
    total = 0.0
    for _ in range(reads):
        try:
            with open(_LOADAVG) as f:
                running = int(f.read().split()[3].split("/")[0])
            own = 0
            for task in os.listdir(_TASKS):
                try:
                    with open(os.path.join(_TASKS, task, "stat")) as f:
                        st = f.read()
                except OSError:  # the thread ended meanwhile
                    continue
                own += st[st.rindex(")") + 2 : st.rindex(")") + 3] == "R"
        except (OSError, ValueError, IndexError):
            return None
        total += max(0, running - max(own, 1))
    return total / reads


def _whole_machine() -> bool:
    """Whether this process may run on every online core (then the system-wide run queue is the one it shares)."""
    try:
        return len(os.sched_getaffinity(0)) >= (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return True


def idle_cpus(sample_seconds: float = SAMPLE_SECONDS, max_age: float = CACHE_SECONDS) -> int:
    """The cores idle right now, 1 ≤ n ≤ :func:`usable_cpus`: the usable cores minus those other processes keep busy,
    a core counting as busy from :data:`BUSY_FRACTION` of it on. "Busy" is, on a process free to use every core, the
    number of other processes' runnable threads at this instant (``/proc/loadavg``, ~0.1 ms to read); else (a
    restricted affinity set, or no ``/proc/loadavg``) the CPU time others took on this process's cores over a
    ``/proc/stat`` sample of ``sample_seconds``. Reused for ``max_age`` seconds. Neither readable: :func:`usable_cpus`."""
    n = usable_cpus()
    now = time.monotonic()
    hit = _CACHE.get("idle")
    if hit is not None and now - hit[0] <= max_age and hit[2] == n:
        return hit[1]
    others = _running_others() if _whole_machine() else None
    if others is None:
        others = _sample_others_busy(sample_seconds)
    idle = n if others is None else int(min(n, max(1, n - math.floor(others + 1.0 - BUSY_FRACTION))))
    _CACHE["idle"] = (time.monotonic(), idle, n)
    return idle


def _resolve(n) -> int | None:
    """The thread count for ``n`` (an int ≥ 1, "auto" or None), or None to leave torch's setting alone."""
    if n is None:
        if getattr(_STATE, "depth", 0) > 0:
            return None  # inside a threads() block: its count holds
        n = "auto"
    if isinstance(n, str):
        if n != "auto":
            raise InvalidParameterError(f'threads must be a positive int, "auto" or None, got {n!r}')
        return max(1, min(torch.get_num_threads(), idle_cpus()))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameterError(f'threads must be a positive int, "auto" or None, got {n!r}')
    return n


@contextmanager
def threads(n="auto"):
    """torch's intra-op thread count (``torch.set_num_threads``, which MKL follows) for the body of the block, restored
    afterwards, even on an exception.

    ``n``: a positive int; ``"auto"`` — the cores idle right now (:func:`idle_cpus`), at most the count in effect
    before; None — keep the count of an enclosing ``threads`` block, or ``"auto"`` when there is none (the default of
    the measurements' ``threads=`` keyword). Yields the count in effect. See the module docstring for why.
    """
    k = _resolve(n)
    old = torch.get_num_threads()
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        if k is not None and k != old:
            torch.set_num_threads(k)
        yield torch.get_num_threads()
    finally:
        _STATE.depth -= 1
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def with_threads(fn):
    """Decorator: ``fn`` gains a keyword ``threads=None`` and runs inside ``threads(threads)``."""

    @functools.wraps(fn)
    def wrapper(*args, threads=None, **kwargs):
        with _threads_cm(threads):
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    extra = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        params.insert(len(params) - 1, extra)
    else:
        params.append(extra)
    wrapper.__signature__ = sig.replace(parameters=params)
    wrapper.__doc__ = (fn.__doc__ or "").rstrip() + _THREADS_DOC
    return wrapper


_THREADS_DOC = """

    ``threads`` (keyword): torch threads for this call — None (default) keeps an enclosing :func:`empirical.threads`
    block's count, else ``"auto"``: the cores idle right now (see :mod:`empirical.threads`); or a positive int.
"""


_threads_cm = threads  # the decorator's keyword shadows the name inside the wrapper
