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
``torch.set_num_threads``. On free cores the second thread pays where the work per region is large: a 1024² float64
GEMM 1.85× faster, ``layer_statistics`` at width 256 1.6× (measured on a quiet machine, load average ~1). Neither
"always 1" nor "always all" is right on a machine whose load changes; the number of cores idle when the measurement
starts is, for work large enough that a late partner thread cannot dominate it (next section).

Small operations on free cores
------------------------------
"Idle now" is a snapshot: on a shared machine other processes start and stop within a measurement. A parallel
region's cost with two threads is ``W/2`` (W its one-thread time) while both threads keep their cores, and up to
``W/2 + S`` once a process arrives on the partner's core: the region ends only when the partner gets its next time
slice, S ≈ 3.5 ms here (``bench_threads``: 200 × a tanh and a product of 128² with a spinning neighbour, 1.42 s for 400
regions). Two threads then win at most ``W/2`` and lose up to ``S``. On a machine whose run queue read idle, the
benchmark's ``layer_statistics`` (width 256, depth 32, 64 inputs: GEMMs of 64 × 256 × 256 = 4.2·10⁶ multiply-adds,
0.15 ms each) took 57–76 ms with 2 threads against 10.5 ms with 1 (7.25×), and 200 small elementwise ops 20× longer;
on cores that stay free the same work is at best 1.6–1.85× faster with 2 threads (a GEMM's best case). The cost of a
second thread is thus bounded by S per region, its gain by W/2: per region the worst case of two threads,
``(W/2 + S)/W``, exceeds the worst case of one thread (the ~2× it leaves unused) while ``W < S·R/1.5`` ≈ 7·10⁷
multiply-adds (R ≈ 30·10⁹ float64 multiply-adds/s per core: a 1024² GEMM, 35 ms on one thread).

So the policy is size-aware: every measurement states the work of its largest parallel region (the multiply-adds of
its largest matrix product, float32 counted at half, as a float32 multiply-add is about twice as fast), and each thread
must get at least :data:`GRAIN` = 2²⁵ ≈ 3.4·10⁷ of them: ``threads = min(idle cores, work // GRAIN)``, at least 1.
With the benchmark's cases: ``layer_statistics`` width 256 (4.2·10⁶) → 1 thread; FIM λ_max 256 → 6×256 → 10, 32 inputs
(Gram (320 × 320) × 256 = 2.6·10⁷) → 1; Jacobian width 512 (512³ = 1.3·10⁸ per product) → 2; four networks N = 600
(2.2·10⁸) → 2. The elementwise operations between the products are below torch's own grain (32,768 elements, run on
one thread) or ride along with the products they scale.

Policy
------
:func:`threads` sets ``torch.set_num_threads`` for the body of a ``with`` block and restores it afterwards; the
measurements of :mod:`empirical.measure` run inside it by default (their ``threads=`` keyword: None = keep the count of
an enclosing :func:`threads` block, else ``"auto"`` with the measurement's own work). ``"auto"`` is
:func:`auto_threads`: :func:`grain_threads` of the work when it is given (1 for small work: the idle cores are then not
even read), capped by :func:`idle_cpus`: the cores this process may run
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

__all__ = ["threads", "idle_cpus", "usable_cpus", "grain_threads", "auto_threads", "with_threads", "GRAIN"]

SAMPLE_SECONDS = 0.02  # /proc/stat ticks are 10 ms: 20 ms gives each core 2 ticks (the fallback's resolution)
CACHE_SECONDS = 1.0
RUN_QUEUE_READS = 3
BUSY_FRACTION = 0.25  # a core is "idle" when other processes used less than this fraction of it
# Multiply-adds (float64; a float32 one counts half) each thread must get in a measurement's largest parallel region:
# below 2·GRAIN a second thread can lose more (a late partner: ~3.5 ms per region here) than it can win (half the
# region). See the module docstring, "Small operations on free cores".
GRAIN = 2**25

_STATE = threading.local()  # depth of enclosing threads() blocks in this Python thread
_CACHE: dict = {}
_LAST: dict = {}  # "auto": the count "auto" chose last (read by benchmarks/bench_threads.py)
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


def grain_threads(work) -> int | None:
    """The most threads worth using on a parallel region of ``work`` multiply-adds: ``work // GRAIN``, at least 1;
    None (no limit) when ``work`` is None."""
    if work is None:
        return None
    return max(1, int(work // GRAIN))


def auto_threads(work=None) -> int:
    """The count ``"auto"`` picks for a measurement whose largest parallel region is ``work`` multiply-adds (None:
    unknown): ``min(torch's count now, grain_threads(work), idle_cpus())``, at least 1. When the work alone gives 1, the
    idle cores are not read."""
    k = torch.get_num_threads()
    g = grain_threads(work)
    if g is not None:
        k = min(k, g)
    if k > 1:
        k = max(1, min(k, idle_cpus()))
    _LAST["auto"] = max(1, k)
    return max(1, k)


def _resolve(n, work=None) -> int | None:
    """The thread count for ``n`` (an int ≥ 1, "auto" or None), or None to leave torch's setting alone."""
    if n is None:
        if getattr(_STATE, "depth", 0) > 0:
            return None  # inside a threads() block: its count holds
        n = "auto"
    if isinstance(n, str):
        if n != "auto":
            raise InvalidParameterError(f'threads must be a positive int, "auto" or None, got {n!r}')
        return auto_threads(work)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidParameterError(f'threads must be a positive int, "auto" or None, got {n!r}')
    return n


@contextmanager
def threads(n="auto", work=None):
    """torch's intra-op thread count (``torch.set_num_threads``, which MKL follows) for the body of the block, restored
    afterwards, even on an exception.

    ``n``: a positive int; ``"auto"`` — :func:`auto_threads`: the cores idle right now (:func:`idle_cpus`), at most the
    count in effect before, and with ``work`` (the multiply-adds of the block's largest parallel region, e.g.
    ``m·k·n`` for an (m, k) × (k, n) product) at most ``work // GRAIN`` (so 1 thread for small work); None — keep the
    count of an enclosing ``threads`` block, or ``"auto"`` when there is none (the default of the measurements'
    ``threads=`` keyword). Yields the count in effect. See the module docstring for why.
    """
    k = _resolve(n, work)
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


def with_threads(fn=None, *, work=None):
    """Decorator: ``fn`` gains a keyword ``threads=None`` and runs inside ``threads(threads, work)``.

    ``work``: None, or a function of ``fn``'s arguments returning the multiply-adds of its largest parallel region (or
    None when it cannot tell, e.g. for arguments ``fn`` will reject: ``fn`` then raises its own error). Used as
    ``@with_threads`` or ``@with_threads(work=estimate)``.
    """
    if fn is None:
        return functools.partial(with_threads, work=work)

    @functools.wraps(fn)
    def wrapper(*args, threads=None, **kwargs):
        w = None
        if work is not None and (threads == "auto" or (threads is None and getattr(_STATE, "depth", 0) == 0)):
            w = work(*args, **kwargs)
        with _threads_cm(threads, w):
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
    block's count, else ``"auto"``: the cores idle right now, and 1 when this call's largest matrix product is below
    2·GRAIN = 2²⁶ multiply-adds (a second thread risks more than it can win there; see :mod:`empirical.threads`); or
    a positive int.
"""


_threads_cm = threads  # the decorator's keyword shadows the name inside the wrapper
