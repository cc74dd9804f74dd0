"""empirical.threads: the thread count of a block is set and restored, "auto" counts the idle cores from /proc/stat
(checked on synthetic /proc/stat files whose busy ticks are known), nests, and falls back without /proc/stat.
Behaviour only: the timings live in benchmarks/bench_threads.py."""

from __future__ import annotations

import importlib
import inspect
import math
import time
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

import empirical as emp  # noqa: E402
from meanfield.errors import InvalidParameterError  # noqa: E402

T = importlib.import_module("empirical.threads")  # the module (the attribute empirical.threads is the context manager)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Each test starts with an empty idle-core cache and 2 torch threads, and leaves torch's count as it found it."""
    old = torch.get_num_threads()
    T._CACHE.clear()
    torch.set_num_threads(2)
    yield
    T._CACHE.clear()
    torch.set_num_threads(old)


def _stat(ticks):
    """A /proc/stat text: ``ticks`` maps core index → (user, idle) jiffies; the other fields 0."""
    total_user = sum(u for u, _ in ticks.values())
    total_idle = sum(i for _, i in ticks.values())
    lines = [f"cpu  {total_user} 0 0 {total_idle} 0 0 0 0 0 0"]
    lines += [f"cpu{c} {u} 0 0 {i} 0 0 0 0 0 0" for c, (u, i) in sorted(ticks.items())]
    return "\n".join(lines + ["intr 0", "ctxt 0"]) + "\n"


def _fake_proc(monkeypatch, tmp_path, before, after, cores=(0, 1), own=0.0):
    """/proc/stat reads ``before`` at the start of the sample and ``after`` once the sample's sleep (1 s of wall time)
    is over, during which this process used ``own`` seconds of CPU time."""
    path = tmp_path / "stat"
    path.write_text(_stat(before))
    monkeypatch.setattr(T, "_PROC_STAT", str(path))
    monkeypatch.setattr(T, "_LOADAVG", str(tmp_path / "no-loadavg"))  # the run queue unreadable: /proc/stat decides
    monkeypatch.setattr(T, "_CPU_MAX", str(tmp_path / "no-cpu.max"))
    monkeypatch.setattr(T.os, "sched_getaffinity", lambda pid: set(cores))
    clock = {"wall": 0.0, "cpu": 0.0}

    def sleep(s):
        path.write_text(_stat(after))
        clock["wall"] += 1.0
        clock["cpu"] += own

    fake = SimpleNamespace(
        sleep=sleep, perf_counter=lambda: clock["wall"], process_time=lambda: clock["cpu"], monotonic=time.monotonic
    )
    monkeypatch.setattr(T, "time", fake)


# ------------------------------------------------------------------------------------------------ the block itself
def test_block_sets_and_restores_the_count():
    with emp.threads(1) as k:
        assert k == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_block_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with emp.threads(1):
            1 / 0
    assert torch.get_num_threads() == 2


def test_auto_is_between_one_and_the_usable_cores():
    n = T.usable_cpus()
    assert 1 <= n <= (T.os.cpu_count() or 1)
    with emp.threads("auto") as k:
        assert 1 <= k <= min(n, 2)
        assert torch.get_num_threads() == k
    assert 1 <= T.idle_cpus() <= n
    assert torch.get_num_threads() == 2


def test_nested_blocks():
    with emp.threads(1):
        with emp.threads(None) as inner:  # None inside a block: the block's count holds
            assert inner == 1
        with emp.threads("auto") as inner:  # auto never exceeds the count in effect
            assert inner == 1
        with emp.threads(2) as inner:  # an explicit count wins, then the outer one comes back
            assert inner == 2 and torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", True])
def test_bad_counts_raise(bad):
    with pytest.raises(InvalidParameterError):
        with emp.threads(bad):
            pass
    assert torch.get_num_threads() == 2


# ----------------------------------------------------------------------------------------- counting the idle cores
def test_without_proc_stat_auto_is_the_usable_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(T, "_PROC_STAT", str(tmp_path / "absent"))
    monkeypatch.setattr(T, "_LOADAVG", str(tmp_path / "absent-loadavg"))
    monkeypatch.setattr(T, "_CPU_MAX", str(tmp_path / "absent.max"))
    monkeypatch.setattr(T.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert T.usable_cpus() == 3
    assert T.idle_cpus(max_age=0) == 3
    torch.set_num_threads(3)
    with emp.threads() as k:
        assert k == 3


def test_without_affinity_falls_back_to_cpu_count(monkeypatch, tmp_path):
    def no_affinity(pid):
        raise AttributeError

    monkeypatch.setattr(T.os, "sched_getaffinity", no_affinity)
    monkeypatch.setattr(T.os, "cpu_count", lambda: 5)
    monkeypatch.setattr(T, "_CPU_MAX", str(tmp_path / "absent.max"))
    assert T.usable_cpus() == 5


@pytest.mark.parametrize(
    "quota, expected", [("max 100000", 4), ("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_cgroup_quota_lowers_the_usable_cores(monkeypatch, tmp_path, quota, expected):
    (tmp_path / "cpu.max").write_text(quota + "\n")
    monkeypatch.setattr(T, "_CPU_MAX", str(tmp_path / "cpu.max"))
    monkeypatch.setattr(T.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert T.usable_cpus() == expected


# (before, after) jiffies per core, and the idle cores: a core counts as busy from 1/4 of it used by others on.
@pytest.mark.parametrize(
    "after, idle",
    [
        ({0: (100, 200), 1: (100, 200)}, 2),  # nothing ran: both idle
        ({0: (100, 208), 1: (108, 200)}, 1),  # one core fully busy (a spinning neighbour)
        ({0: (108, 200), 1: (108, 200)}, 1),  # both busy: at least 1
        ({0: (101, 207), 1: (100, 208)}, 2),  # 1/16 of the machine busy: below a quarter core
        ({0: (103, 205), 1: (100, 208)}, 1),  # 3/8 of a core busy: counts
    ],
)
def test_idle_cores_from_proc_stat(monkeypatch, tmp_path, after, idle):
    before = {0: (100, 200), 1: (100, 200)}
    _fake_proc(monkeypatch, tmp_path, before, after)  # this process used nothing over the sample
    assert T.idle_cpus(max_age=0) == idle


def test_own_cpu_time_is_not_a_neighbour(monkeypatch, tmp_path):
    """One core busy over the sample, all of it this process's own (its workers spinning): both cores count as idle."""
    _fake_proc(monkeypatch, tmp_path, {0: (100, 200), 1: (100, 200)}, {0: (100, 208), 1: (108, 200)}, own=1.0)
    assert T.idle_cpus(max_age=0) == 2


def test_only_the_allowed_cores_are_sampled(monkeypatch, tmp_path):
    """Cores outside the affinity set do not count, busy or not."""
    before = {0: (100, 200), 1: (100, 200), 2: (100, 200)}
    after = {0: (100, 208), 1: (100, 208), 2: (108, 200)}
    _fake_proc(monkeypatch, tmp_path, before, after, cores=(0, 1))
    assert T.idle_cpus(max_age=0) == 2


def test_the_sample_is_cached(monkeypatch, tmp_path):
    _fake_proc(monkeypatch, tmp_path, {0: (100, 200), 1: (100, 200)}, {0: (100, 208), 1: (108, 200)})
    assert T.idle_cpus(max_age=60) == 1
    monkeypatch.setattr(T, "_PROC_STAT", str(tmp_path / "absent"))  # a fresh sample would now say 2
    assert T.idle_cpus(max_age=60) == 1
    assert T.idle_cpus(max_age=0) == 2


def _fake_run_queue(monkeypatch, tmp_path, running, own_states, cores=2, affinity=None):
    """/proc/loadavg with ``running`` runnable tasks; this process's threads in the given states (R, S, ...)."""
    (tmp_path / "loadavg").write_text(f"9.50 8.00 7.00 {running}/345 12345\n")
    tasks = tmp_path / "task"
    for i, state in enumerate(own_states):
        (tasks / str(100 + i)).mkdir(parents=True)
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (py thon) {state} 1 2 3 4\n")
    monkeypatch.setattr(T, "_LOADAVG", str(tmp_path / "loadavg"))
    monkeypatch.setattr(T, "_TASKS", str(tasks))
    monkeypatch.setattr(T, "_PROC_STAT", str(tmp_path / "absent"))
    monkeypatch.setattr(T, "_CPU_MAX", str(tmp_path / "absent.max"))
    monkeypatch.setattr(T.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(T.os, "sched_getaffinity", lambda pid: set(range(cores)) if affinity is None else affinity)


@pytest.mark.parametrize(
    "running, own, cores, idle",
    [
        (1, "RSS", 2, 2),  # only the reader runs
        (2, "RSS", 2, 1),  # one neighbour
        (2, "RRS", 2, 2),  # our spinning worker is not a neighbour
        (3, "RRS", 2, 1),  # ... but a third runnable task is
        (12, "RS", 2, 1),  # a loaded machine: at least 1
        (3, "RSSS", 8, 6),  # two neighbours on 8 cores
        (1, "SSS", 2, 2),  # the reader counted even if its own line were stale
    ],
)
def test_idle_cores_from_the_run_queue(monkeypatch, tmp_path, running, own, cores, idle):
    _fake_run_queue(monkeypatch, tmp_path, running, own, cores)
    assert T.idle_cpus(max_age=0) == idle


def test_a_pinned_process_samples_its_own_cores(monkeypatch, tmp_path):
    """Pinned to 2 of 4 cores, the system-wide run queue (3 others) is not used: without /proc/stat, both are idle."""
    _fake_run_queue(monkeypatch, tmp_path, 4, "RS", cores=4, affinity={0, 1})
    assert T.idle_cpus(max_age=0) == 2


# ------------------------------------------------------------------------------------------ the measurements use it
def _net():
    return emp.RandomMLP(32, 32, 3, 4, "tanh", math.sqrt(1.5), math.sqrt(0.05), device="cpu", generator=7)


@pytest.mark.parametrize(
    "fn",
    [
        emp.layer_statistics,
        emp.input_output_jacobian,
        emp.jacobian_singular_values,
        emp.fisher_gram,
        emp.fisher_eigenvalues,
        emp.conditional_fisher_eigenvalues,
        emp.sokol_park_bound,
    ],
)
def test_measurements_take_a_threads_keyword(fn):
    assert inspect.signature(fn).parameters["threads"].default is None
    assert "threads" in fn.__doc__


def test_measurement_runs_at_the_count_asked_and_restores():
    net = _net()
    X = torch.randn(5, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    one = emp.jacobian_singular_values(net, X, threads=1)
    assert torch.get_num_threads() == 2
    two = emp.jacobian_singular_values(net, X, threads=2)
    assert torch.get_num_threads() == 2
    # the same numbers whatever the count (float64, a few ulps of reduction order at most)
    assert abs(one - two).max() <= 1e-12 * abs(two).max()
    with emp.threads(1):
        ev = emp.fisher_eigenvalues(net, X, top_k=1)
        assert torch.get_num_threads() == 1
    assert ev[0] > 0
    with pytest.raises(InvalidParameterError):
        emp.fisher_eigenvalues(net, X, threads=0)
    assert torch.get_num_threads() == 2


# ------------------------------------------------------------------------------------------- size-aware decisions
@pytest.mark.parametrize(
    "work, expected",
    [(None, None), (0, 1), (T.GRAIN - 1, 1), (T.GRAIN, 1), (2 * T.GRAIN - 1, 1), (2 * T.GRAIN, 2), (7 * T.GRAIN, 7)],
)
def test_grain_threads(work, expected):
    assert T.grain_threads(work) == expected


def _idle(monkeypatch, n):
    """idle_cpus() returns n; counts its calls."""
    calls = []

    def fake(*a, **k):
        calls.append(1)
        return n

    monkeypatch.setattr(T, "idle_cpus", fake)
    return calls


@pytest.mark.parametrize(
    "work, idle, expected",
    [
        (None, 2, 2),  # no work given: the idle cores, as before
        (None, 1, 1),
        (4 * 256 * 256 * 16, 2, 1),  # a layer_statistics product (64 × 256 × 256): small → 1 on free cores too
        (512**3, 2, 2),  # a 512³ product (the Jacobian's): 2 threads on free cores
        (512**3, 1, 1),  # ... but not beside a neighbour
        (10**12, 2, 2),  # never more than torch's count (2 in these tests)
    ],
)
def test_auto_threads_is_the_smaller_of_work_and_idle_cores(monkeypatch, work, idle, expected):
    calls = _idle(monkeypatch, idle)
    assert T.auto_threads(work) == expected
    with emp.threads("auto", work=work) as k:
        assert k == expected == torch.get_num_threads()
    assert torch.get_num_threads() == 2
    if work is not None and T.grain_threads(work) == 1:
        assert not calls  # small work: the idle cores are not even read


def test_auto_threads_respects_a_lower_torch_count(monkeypatch):
    _idle(monkeypatch, 2)
    torch.set_num_threads(1)
    assert T.auto_threads(10**12) == 1


def _counts(monkeypatch):
    """Record the count each torch.set_num_threads call asks for."""
    seen = []
    real = torch.set_num_threads

    def spy(k):
        seen.append(k)
        real(k)

    monkeypatch.setattr(T.torch, "set_num_threads", spy)
    return seen


def _case_nets():
    small = emp.RandomMLP(256, 256, 4, 1, "tanh", math.sqrt(1.5), math.sqrt(0.05), device="cpu", generator=1)
    fim = emp.RandomMLP(256, 256, 2, 10, "tanh", math.sqrt(1.5), math.sqrt(0.05), device="cpu", generator=1)
    big = emp.RandomMLP(512, 512, 1, 1, "tanh", 1.0, 0.05, weights="orthogonal", device="cpu", generator=1)
    return small, fim, big


@pytest.mark.parametrize("idle", [1, 2])
def test_measurements_choose_by_their_own_size(monkeypatch, idle):
    """On free cores (idle = 2) the small measurements of bench_threads run on 1 thread, the 512-wide Jacobian on 2;
    beside a neighbour (idle = 1) all on 1. Explicit counts and enclosing blocks are obeyed whatever the size."""
    _idle(monkeypatch, idle)
    small, fim, big = _case_nets()
    g = torch.Generator().manual_seed(0)
    X64 = torch.randn(64, 256, generator=g, dtype=torch.float64)
    X32 = torch.randn(32, 256, generator=g, dtype=torch.float64)
    x = torch.randn(512, generator=g, dtype=torch.float64) * 0.1
    cases = [
        (lambda **kw: emp.layer_statistics(small, X64, **kw), 1),  # 64 × 256 × 256 per product
        (lambda **kw: emp.fisher_eigenvalues(fim, X32, top_k=1, **kw), 1),  # Gram (320 × 320) × 256
        (lambda **kw: emp.conditional_fisher_eigenvalues(fim, X32[0], **kw), 1),
        (lambda **kw: emp.sokol_park_bound(fim, X32[:4], **kw), 1),
        (lambda **kw: emp.jacobian_singular_values(big, x, **kw), idle),  # 512³ per product
        (lambda **kw: emp.input_output_jacobian(big, x, **kw), idle),
        (lambda **kw: emp.jacobian_singular_values(big, x, top_k=1, method="lanczos", tol=1e-3, **kw), 1),  # matrix-vector
    ]
    for run, expected in cases:
        seen = _counts(monkeypatch)
        run()
        assert (seen[0] if seen else 2) == expected  # torch starts at 2 here: no call means 2 was kept
        assert torch.get_num_threads() == 2
        seen.clear()
        run(threads=2)  # an explicit count wins
        assert not seen
        run(threads=1)
        assert seen == [1, 2]
        with emp.threads(2):
            seen.clear()
            run()  # None inside a block: the block's count holds, whatever the size
            assert not seen


def test_float32_counts_half():
    """A float32 multiply-add is about twice as fast: the same shapes carry half the work."""
    M = importlib.import_module("empirical.measure")
    a = emp.RandomMLP(64, 64, 2, 1, "tanh", 1.0, 0.0, device="cpu", generator=0)
    b = emp.RandomMLP(64, 64, 2, 1, "tanh", 1.0, 0.0, device="cpu", generator=0, dtype=torch.float32)
    x = torch.zeros(3, 64)
    assert M._work_jacobian(a, x) == 3 * 64 * 64 * 64
    assert M._work_jacobian(b, x) == 3 * 64 * 64 * 64 / 2
    assert M._work_forward(a, x) == 3 * 64 * 64
    assert M._work_fisher(a, x) == 3 * 64 * 64  # (T·C, N) × (N, N) with C = 1
    assert M._work_fisher(a, "not an input") is None and M._work_jacobian("not a network", x) is None
