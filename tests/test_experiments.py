"""empirical.experiments: the tables, the seeding, each experiment at small sizes against the right theory (passes)
and against a theory whose σ_w is 10 % off (fails), and scale-out on executors (identical results)."""

import csv
import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import empirical.experiments as ex
from empirical.verify import experiment_sizes

WRONG = 1.1  # theory_sigma_w_scale of the deliberately wrong theory


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The networks here are small: one intra-op thread is fastest, and immune to a busy second core."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _failed(table, quantity=None):
    return [r for r in table.failures() if quantity is None or r.quantity == quantity]


# ----------------------------------------------------------------------------------------------- records and tables
def _toy_table():
    recs = [
        ex.make_record("toy", "a", {"width": 10, "weights": "gaussian"}, 1.0, [1.0, 1.1, 0.9], k_sigma=4.0),
        ex.make_record("toy", "b", {"width": 20, "depth": 3}, 2.0, [3.0, 3.0], k_sigma=4.0, allowance=0.5),
    ]
    return ex.ResultTable(recs, {"toy": [{"x": np.arange(3.0), "label": "one", "nested": {"y": np.ones((2, 2))}}]})


def test_make_record_tolerance_is_statistical_plus_allowance():
    r = ex.make_record("e", "q", {}, 1.0, [1.0, 1.2, 1.4], k_sigma=3.0, allowance=0.05)
    s = np.std([1.0, 1.2, 1.4], ddof=1)
    assert r.measured == pytest.approx(1.2) and r.spread == pytest.approx(s) and r.n == 3
    assert r.tolerance == pytest.approx(3.0 * s / math.sqrt(3) + 0.05)
    assert r.passed and r.deviation == pytest.approx(0.2)
    # a floor replaces a smaller sample spread
    r = ex.make_record("e", "q", {}, 1.0, [1.3, 1.3], k_sigma=4.0, floor=0.1)
    assert r.spread == 0.0 and r.tolerance == pytest.approx(4.0 * 0.1 / math.sqrt(2)) and not r.passed
    # one seed: no spread; non-finite values fail
    assert ex.make_record("e", "q", {}, 1.0, [1.0]).passed
    assert not ex.make_record("e", "q", {}, 1.0, [np.nan, 1.0], allowance=1e9).passed
    with pytest.raises(ValueError):
        ex.make_record("e", "q", {}, 1.0, [])


def test_result_table_filters_and_summarises():
    t = _toy_table()
    assert len(t) == 2 and not t.passed
    assert [r.quantity for r in t.failures()] == ["b"]
    assert t.select(quantity="a").passed and len(t.select(width=20)) == 1 and len(t.select(width=99)) == 0
    assert t.summary() == [{"experiment": "toy", "records": 2, "failed": 1, "passed": False}]
    both = t + ex.ResultTable([t[0]], {"toy": [{"z": 1}], "other": [{}]})
    assert len(both) == 3 and len(both.data["toy"]) == 2 and "other" in both.data
    assert t.columns == ["experiment", "quantity", "width", "weights", "depth", "theory", "measured", "spread", "n",
                         "tolerance", "deviation", "passed"]
    assert ex.ResultTable().passed


def test_result_table_exports(tmp_path):
    t = _toy_table()
    t.to_csv(tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["weights"] == "gaussian" and rows[0]["depth"] == "" and rows[1]["passed"] == "False"
    assert float(rows[1]["measured"]) == 3.0
    t.to_json(tmp_path / "t.json")
    back = ex.ResultTable.from_json(tmp_path / "t.json")
    assert back.records == t.records
    d = back.data["toy"][0]
    assert np.array_equal(d["x"], np.arange(3.0)) and d["label"] == "one" and d["nested"]["y"].shape == (2, 2)
    md = t.to_markdown()
    assert md.splitlines()[0].startswith("| experiment | quantity | width |") and "✓" in md and "✗" in md
    assert "1 more rows" in t.to_markdown(max_rows=1)


def test_result_table_to_pandas():
    pd = pytest.importorskip("pandas", reason="to_pandas needs pandas, which is optional")
    df = _toy_table().to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df["quantity"]) == ["a", "b"]


# ------------------------------------------------------------------------------------------------- seeds and inputs
def test_task_seeds_are_deterministic_and_distinct():
    s = {ex.task_seed(seed, name, i) for seed in range(5) for name in ex.EXPERIMENTS for i in range(20)}
    assert len(s) == 5 * len(ex.EXPERIMENTS) * 20
    assert all(0 <= v < 2**63 for v in s)
    assert ex.task_seed(3, "fisher_depth", 7) == ex.task_seed(3, "fisher_depth", 7)
    with pytest.raises(ValueError, match="distinct"):
        ex.trajectories(seeds=[1, 1])
    with pytest.raises(ValueError):
        ex.trajectories(seeds=[-1])


@pytest.mark.parametrize("T, c0", [(2, -0.3), (5, 0.5), (8, 0.0), (3, 1.0)])
def test_correlated_inputs_are_exact(T, c0):
    X = ex.correlated_inputs(T, 40, 0.7, c0, torch.Generator().manual_seed(1))
    assert X.shape == (T, 40) and X.dtype == torch.float64
    G = X @ X.T / 40
    assert torch.allclose(torch.diagonal(G), torch.full((T,), 0.7, dtype=torch.float64), rtol=1e-12)
    C = G / 0.7
    off = C[~torch.eye(T, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, c0), atol=1e-12)


def test_correlated_inputs_reject_impossible_requests():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError):
        ex.correlated_inputs(5, 4, 1.0, 0.0, g)
    with pytest.raises(ValueError):
        ex.correlated_inputs(4, 10, 1.0, -0.5, g)  # below -1/(T-1)
    with pytest.raises(ValueError):
        ex.correlated_inputs(2, 10, -1.0, 0.0, g)


def test_top_eigenvalue_location_of_a_uniform_law():
    """ρ = 1 on [0, 1]: the largest of n draws sits at 1 - 1/n; an atom at the edge of mass ≥ 1/n puts it there."""
    dens = lambda x: np.ones_like(x)  # noqa: E731
    for n in (4, 10, 100):
        assert ex.top_eigenvalue_location(dens, 1.0, 0.0, n) == pytest.approx(1.0 - 1.0 / n, rel=1e-9)
    assert ex.top_eigenvalue_location(lambda x: 0.0 * x, 1.0, 0.0, 10, atoms=[(1.0, 0.2)]) == pytest.approx(1.0)
    assert ex.top_eigenvalue_location(lambda x: 0.0 * x, 1.0, 0.2, 10) == 0.2  # not enough mass above the bound


def test_finite_width_variance_linear_network():
    """Linear φ: v = Σ_l(μ_2/μ_1² − 1 − s_1) = L for Gaussian weights (Fuss–Catalan: m_2 = L + 1) and 0 for orthogonal
    weights (J is a multiple of an orthogonal matrix) — THEORY §2."""
    for L in (1, 3, 7):
        assert ex.finite_width_variance("linear", 1.0, 0.0, L, "gaussian", 1.0) == pytest.approx(L, rel=1e-10)
        assert ex.finite_width_variance("linear", 1.0, 0.0, L, "orthogonal", 1.0) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------ the experiments, right & wrong
TRAJ = dict(depth=4, width=200, seeds=4)


def test_trajectories_match_theory_and_reject_wrong_sigma_w():
    t = ex.trajectories(**TRAJ)
    assert t.passed, t.failures().to_markdown()
    assert len(t) == 3 * 4 * 2 and {r.params["point"] for r in t} == {"ordered", "critical", "chaotic"}
    d = t.data["trajectories"][0]
    assert d["q"].shape == (4, 4) and d["q_theory"].shape == (4,)
    wrong = ex.trajectories(theory_sigma_w_scale=WRONG, **TRAJ)
    assert len(_failed(wrong, "q")) >= 9  # the length map moves by ~20 %


JAC = dict(points=ex.critical_points("tanh", (1 / 64, 0.5)), depth=4, width=128, seeds=4)


def test_jacobian_spectra_match_theory_and_reject_wrong_sigma_w():
    t = ex.jacobian_spectra(**JAC)
    assert t.passed, t.failures().to_markdown()
    quantities = {r.quantity for r in t}
    assert {"mean", "variance", "quantile_0.5", "quantile_0.9"} <= quantities
    assert {d["weights"] for d in t.data["jacobian_spectra"]} == {"orthogonal", "gaussian"}
    wrong = ex.jacobian_spectra(theory_sigma_w_scale=WRONG, **JAC)
    # off the critical line χ_1^L ≠ 1: the narrow orthogonal spectra miss by many tolerances, the heavy-tailed
    # Gaussian ones at least in their variance or upper quantiles
    assert len(_failed(wrong, "mean")) >= 2 and len(wrong.failures()) >= len(wrong) // 3


FISHER = dict(points={k: v for k, v in ex.tanh_points().items() if k != "chaotic"}, widths=(128,), depths=(2, 6),
              n_samples=8, seeds=4)


def test_fisher_depth_matches_theory_and_rejects_wrong_sigma_w():
    t = ex.fisher_depth(**FISHER)
    assert t.passed, t.failures().to_markdown()
    assert len(t) == 2 * 2 * 1 * 2 * 3
    assert all(r.params["finite_width_variance"] > 0 for r in t)
    wrong = ex.fisher_depth(theory_sigma_w_scale=WRONG, **FISHER)
    assert len(_failed(wrong, "mean_eigenvalue")) >= 4 and len(_failed(wrong, "lambda_max")) >= 1


COND = dict(depths=(2, 6), width=96, seeds=3)


def test_conditional_fisher_matches_theory_and_rejects_wrong_sigma_w():
    t = ex.conditional_fisher(**COND)
    assert t.passed, t.failures().to_markdown()
    orth = t.select(quantity="lambda_max", weights="orthogonal")
    lam = {r.params["depth"]: r.measured for r in orth}
    assert 2.0 < lam[6] / lam[2] < 3.5  # λ_max ∝ depth under dynamical isometry (plus the input layer's share)
    wrong = ex.conditional_fisher(theory_sigma_w_scale=WRONG, **COND)
    assert len(_failed(wrong, "mean")) == 4


def test_learning_rate_prediction_and_wrong_sigma_w():
    """η = 0.9·2/λ_max decreases the loss monotonically, 1.1·2/λ_max does not; with the theory's σ_w 10 % too large,
    λ_max(theory) is 16 % too large, so 1.1 × its 2/λ_max is still below the true 2/λ_max: that check fails."""
    t = ex.learning_rate(seeds=3)
    assert t.passed, t.failures().to_markdown()
    curves = t.data["learning_rate"][0]["losses"]
    assert set(curves) == {"0.9", "1.1"} and curves["0.9"].shape == (3, 41)
    wrong = ex.learning_rate(seeds=3, theory_sigma_w_scale=WRONG)
    assert [r.quantity for r in wrong.failures()] == ["lambda_max", "monotone@eta=1.1x2/lambda_max"]


SP = dict(q_stars=(0.01, 0.25, 1.0), depth=4, width=96, seeds=3)


def test_sokol_park_matches_theory_and_rejects_wrong_sigma_w():
    t = ex.sokol_park(**SP)
    assert t.passed, t.failures().to_markdown()
    holds = t.select(quantity="bound_holds")
    assert len(holds) == 3 and all(r.measured == 1.0 for r in holds)
    lam = [r.measured for r in t.select(quantity="lambda_max")]
    sig = [r.measured for r in t.select(quantity="sigma_max_sq_J")]
    assert np.all(np.diff(lam) > 0) and np.all(np.diff(sig) > 0)  # curvature rises with σ_max²(J) along the line
    wrong = ex.sokol_park(theory_sigma_w_scale=WRONG, **SP)
    assert len(_failed(wrong, "lambda_max")) == 3


def test_experiments_validate_arguments():
    with pytest.raises(ValueError):
        ex.fisher_depth(weights="uniform")
    with pytest.raises(ValueError):
        ex.trajectories(points={"p": (-1.0, 0.0)})
    with pytest.raises(ValueError):
        ex.learning_rate(factors=(1.0,))
    with pytest.raises(ValueError):
        ex.jacobian_spectra(quantiles=(1.5,))
    with pytest.raises(ValueError):
        ex.run_all({"nonsense": {}})


# ------------------------------------------------------------------------------------------------------ scale-out
def _assert_same(a, b):
    assert a.records == b.records
    assert a.data.keys() == b.data.keys()
    for k in a.data:
        for da, db in zip(a.data[k], b.data[k], strict=True):
            assert da.keys() == db.keys()
            for key in da:
                va, vb = da[key], db[key]
                if isinstance(va, dict):
                    assert all(np.array_equal(va[j], vb[j], equal_nan=True) for j in va)
                elif isinstance(va, np.ndarray):
                    assert np.array_equal(va, vb, equal_nan=True), key
                else:
                    assert va == vb or (va != va and vb != vb), key


def test_thread_pool_gives_the_serial_results():
    sizes = experiment_sizes("tiny")
    serial = ex.run_all(sizes)
    calls = []
    with ThreadPoolExecutor(2) as pool:
        parallel = ex.run_all(sizes, executor=pool, progress=lambda *a: calls.append(a))
    _assert_same(serial, parallel)
    assert {c[0] for c in calls} == set(ex.EXPERIMENTS) and all(c[1] <= c[2] for c in calls)


def test_tasks_pickle():
    """Process executors (and dask with processes) send the task functions and dicts across processes."""
    spec = dict(activation="tanh", device=None, sigma_w=1.3, sigma_b=0.2, depth=2, width=16, weights="gaussian",
                q0=1.0, c0=0.5, seed=ex.task_seed(0, "trajectories", 0))
    fn, arg = pickle.loads(pickle.dumps((ex._trajectory_task, spec)))
    a, b = fn(arg), ex._trajectory_task(spec)
    assert np.array_equal(a["q"], b["q"]) and np.array_equal(a["c"], b["c"])


def _dask_equality(processes):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install dask distributed)"
    )
    sizes = {k: v for k, v in experiment_sizes("tiny").items() if k in ("trajectories", "fisher_depth", "sokol_park")}
    names = tuple(sizes)
    serial = ex.run_all(sizes, experiments=names)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            parallel = ex.run_all(sizes, executor=client.get_executor(), experiments=names)
    _assert_same(serial, parallel)


def test_dask_local_cluster_gives_the_serial_results():
    _dask_equality(processes=False)


@pytest.mark.slow
def test_dask_worker_processes_give_the_serial_results():
    """Worker processes import the package afresh and receive pickled tasks (about 10 s to start them)."""
    _dask_equality(processes=True)
