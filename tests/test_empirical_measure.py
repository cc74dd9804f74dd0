"""The fast measurements agree with the brute-force torch.func references (empirical.reference) to 1e-10 in float64."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import empirical as emp
from empirical import reference as ref
from meanfield.errors import InvalidParameterError, NumericalError

TOL = 1e-10
ACTIVATIONS = ["tanh", "relu", "x*tanh(x)"]


def _inputs(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _small(activation="tanh", weights="gaussian", C=2, widths=(9, 7, 10), n0=8, seed=1, sigma_w=1.4, sigma_b=0.3):
    return emp.RandomMLP(n0, list(widths), len(widths), C, activation, sigma_w, sigma_b, weights=weights, generator=seed)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------------------------------- Fisher
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("biases", [True, False])
def test_fisher_gram_and_eigenvalues_match_brute_force(activation, weights, C, biases):
    net = _small(activation, weights, C)
    X = _inputs(5, 8)
    g = emp.fisher_gram(net, X, biases=biases)
    assert _rel(g, ref.reference_fisher_gram(net, X, biases=biases)) < TOL
    ev = emp.fisher_eigenvalues(net, X, biases=biases)
    # against the P×P Fisher matrix itself: its min(TC, P) largest eigenvalues
    assert ev.shape == (5 * C,)
    assert np.all(np.diff(ev) <= 0)
    assert _rel(ev, ref.reference_fisher_eigenvalues(net, X, biases=biases)) < TOL


def test_fisher_more_gram_rows_than_parameters():
    """T·C > P: only the P non-trivial eigenvalues come back."""
    net = emp.RandomMLP(2, 2, 1, 2, "tanh", 1.2, 0.4, generator=0)  # P = 4 + 4 + 2 + 2 = 12
    X = _inputs(10, 2)
    ev = emp.fisher_eigenvalues(net, X)
    assert ev.shape == (12,)
    assert _rel(ev, ref.reference_fisher_eigenvalues(net, X)) < TOL


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7])
def test_fisher_chunks_agree(chunk_size):
    net = _small(C=3)
    X = _inputs(7, 8)
    assert _rel(emp.fisher_gram(net, X, chunk_size=chunk_size), emp.fisher_gram(net, X)) < 1e-13
    assert _rel(emp.fisher_eigenvalues(net, X, chunk_size=chunk_size), emp.fisher_eigenvalues(net, X)) < 1e-12


def test_fisher_top_k_dense_and_lanczos_agree():
    net = emp.RandomMLP(30, 30, 3, 8, "tanh", 1.5, 0.2, generator=4)
    X = _inputs(80, 30)  # Gram 640 × 640: "auto" takes Lanczos for 5 of them
    full = emp.fisher_eigenvalues(net, X)
    for method in ("auto", "lanczos", "dense"):
        top = emp.fisher_eigenvalues(net, X, top_k=5, method=method)
        assert top.shape == (5,)
        assert _rel(top, full[:5]) < 1e-10


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(top_k=0), "top_k"),
        (dict(method="eig"), "method"),
        (dict(method="lanczos"), "needs top_k"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_size=1.5), "chunk_size"),
    ],
)
def test_fisher_bad_arguments(kw, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        emp.fisher_eigenvalues(_small(), _inputs(3, 8), **kw)
    with pytest.raises(InvalidParameterError, match=r"\(n_inputs, 8\)"):
        emp.fisher_eigenvalues(_small(), _inputs(3, 7))


def test_sokol_park_large_gram_uses_lanczos():
    net = emp.RandomMLP(30, 30, 3, 8, "tanh", 1.5, 0.2, generator=4)
    X = _inputs(80, 30)  # Gram 640 × 640
    sp = emp.sokol_park_bound(net, X)
    assert math.isclose(sp.lambda_max, float(emp.fisher_eigenvalues(net, X, method="dense")[0]), rel_tol=1e-12)
    assert sp.lambda_max <= sp.bound


def test_fisher_single_input_and_numpy_inputs():
    net = _small(C=2)
    x = _inputs(1, 8)
    a = emp.fisher_eigenvalues(net, x[0].numpy())
    b = emp.fisher_eigenvalues(net, x)
    assert np.array_equal(a, b)


@given(
    depth=st.integers(1, 3),
    width=st.integers(1, 6),
    n0=st.integers(1, 5),
    C=st.integers(1, 3),
    T=st.integers(1, 4),
    activation=st.sampled_from(["tanh", "relu", "erf", "softplus", "x*tanh(x)"]),
    weights=st.sampled_from(["gaussian", "orthogonal"]),
    biases=st.booleans(),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_fisher_gram_property(depth, width, n0, C, T, activation, weights, biases, seed):
    """Any small shape — widths 1, more outputs than units, one input — matches the per-sample-gradient Gram."""
    net = emp.RandomMLP(n0, width, depth, C, activation, 1.3, 0.2, weights=weights, generator=seed)
    X = _inputs(T, n0, seed)
    assert _rel(emp.fisher_gram(net, X, biases=biases), ref.reference_fisher_gram(net, X, biases=biases)) < TOL


# --------------------------------------------------------------------------------------------- conditional FIM
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("C", [1, 4])
@pytest.mark.parametrize("biases", [True, False])
def test_conditional_fisher_matches_brute_force(activation, C, biases):
    net = _small(activation, "orthogonal", C)
    x = _inputs(1, 8, seed=3)[0]
    ev = emp.conditional_fisher_eigenvalues(net, x, biases=biases)
    assert ev.shape == (C,)
    assert _rel(ev, ref.reference_conditional_fisher_eigenvalues(net, x, biases=biases)) < TOL
    norm = emp.conditional_fisher_eigenvalues(_small(activation, "orthogonal", C, widths=(9, 9, 9)), x, normalize=True)
    raw = emp.conditional_fisher_eigenvalues(_small(activation, "orthogonal", C, widths=(9, 9, 9)), x)
    assert np.allclose(norm * 9, raw, rtol=1e-14)
    assert np.allclose(emp.conditional_fisher_eigenvalues(net, x, biases=biases, normalize=2.0) * 2.0, ev, rtol=1e-14)


def test_conditional_fisher_bad_arguments():
    net = _small()
    with pytest.raises(InvalidParameterError, match="one input"):
        emp.conditional_fisher_eigenvalues(net, _inputs(2, 8))
    with pytest.raises(InvalidParameterError, match="normalize"):
        emp.conditional_fisher_eigenvalues(net, _inputs(1, 8)[0], normalize=-1.0)
    with pytest.raises(InvalidParameterError, match="differ"):
        emp.conditional_fisher_eigenvalues(net, _inputs(1, 8)[0], normalize=True)


# ----------------------------------------------------------------------------------------------- Sokol–Park bound
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("biases", [True, False])
def test_sokol_park_terms_and_inequality(activation, C, biases):
    net = _small(activation, "gaussian", C)
    X = _inputs(4, 8, seed=5)
    sp = emp.sokol_park_bound(net, X, biases=biases)
    beta = 1.0 if biases else 0.0
    # partial Jacobians J_l = ∂f/∂h^l by autograd, per input
    norms = np.zeros((4, 4))
    a = np.zeros((4, 4))
    fp = net.forward_all(X)
    for t in range(4):
        for l, j in enumerate(ref.reference_partial_jacobians(net, X[t])):
            norms[l, t] = float(torch.linalg.matrix_norm(j, ord=2)) ** 2
            a[l, t] = float(fp.post[l][t] @ fp.post[l][t]) + beta
    assert _rel(sp.jacobian_norms, norms) < TOL
    assert _rel(sp.a, a) < TOL
    assert _rel(sp.layer_terms, (a * norms).mean(axis=1)) < TOL
    assert math.isclose(sp.bound, float(sp.layer_terms.sum()), rel_tol=1e-14)
    assert math.isclose(sp.lambda_max, float(emp.fisher_eigenvalues(net, X, biases=biases)[0]), rel_tol=1e-12)
    assert sp.lambda_max <= sp.bound * (1 + 1e-12)
    assert 0 < sp.ratio <= 1 + 1e-12


# ----------------------------------------------------------------------------------------------------- Jacobian
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_jacobian_matches_jacrev(activation, weights):
    net = emp.RandomMLP(12, 12, 4, 1, activation, 1.3, 0.1, weights=weights, generator=2)
    x = _inputs(1, 12, seed=9)[0]
    jr = ref.reference_jacobian(net, x)
    assert _rel(emp.input_output_jacobian(net, x), jr) < TOL
    sv = emp.jacobian_singular_values(net, x)
    assert np.all(np.diff(sv) <= 0)
    assert _rel(sv, torch.linalg.svdvals(jr).numpy()) < TOL


def test_jacobian_rectangular():
    net = emp.RandomMLP(7, [10, 5], 2, 1, "tanh", 1.3, 0.1, generator=2)
    x = _inputs(1, 7)[0]
    jr = ref.reference_jacobian(net, x)
    assert emp.input_output_jacobian(net, x).shape == (5, 7)
    sv = emp.jacobian_singular_values(net, x)
    assert sv.shape == (5,) and _rel(sv, torch.linalg.svdvals(jr).numpy()) < TOL
    assert _rel(emp.jacobian_singular_values(net, x, top_k=2, method="lanczos"), sv[:2]) < 1e-10


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_jacobian_batched_inputs_and_methods(weights):
    """T inputs at once (one GEMM per layer for the batch) equal T single-input calls; svd, gram and dense agree."""
    net = emp.RandomMLP(16, 16, 5, 1, "tanh", 1.2, 0.1, weights=weights, generator=4)
    X = _inputs(3, 16, seed=2)
    js = emp.input_output_jacobian(net, X)
    assert js.shape == (3, 16, 16)
    svs = emp.jacobian_singular_values(net, X, method="svd")
    assert svs.shape == (3, 16)
    for t in range(3):
        jr = ref.reference_jacobian(net, X[t])
        assert _rel(js[t], jr) < TOL
        assert _rel(svs[t], torch.linalg.svdvals(jr).numpy()) < TOL
    for method in ("auto", "dense"):  # svdvals wherever the Gram is ill-conditioned
        sv = emp.jacobian_singular_values(net, X, method=method)
        assert np.max(np.abs(sv - svs)) < 1e-12 * svs[:, 0].max()
    # the squares by the Gram route are exact to ~u·σ_max², whatever the conditioning
    sq = emp.jacobian_singular_values(net, X, method="gram") ** 2
    assert np.max(np.abs(sq - svs**2)) < 1e-13 * (svs[:, 0] ** 2).max()


def test_jacobian_dense_falls_back_to_svd_when_ill_conditioned():
    """ReLU zeroes units, so J is rank-deficient: "dense" must return svdvals' tiny singular values, not sqrt(u)·σ_max."""
    net = emp.RandomMLP(20, 20, 6, 1, "relu", math.sqrt(2.0), 0.0, generator=1)
    x = _inputs(1, 20, seed=3)[0]
    exact = torch.linalg.svdvals(ref.reference_jacobian(net, x)).numpy()
    assert exact[-1] < 1e-3 * exact[0]  # the case the fallback is for
    dense = emp.jacobian_singular_values(net, x, method="dense")
    assert np.max(np.abs(dense - exact)) < 1e-13 * exact[0]


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_jacobian_top_k_lanczos(weights):
    net = emp.RandomMLP(600, 600, 3, 1, "tanh", 1.1, 0.05, weights=weights, generator=5)
    x = _inputs(1, 600, seed=1)[0]
    dense = emp.jacobian_singular_values(net, x)
    for method in ("auto", "lanczos", "dense"):
        top = emp.jacobian_singular_values(net, x, top_k=4, method=method)
        assert top.shape == (4,)
        assert _rel(top, dense[:4]) < 1e-10


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(top_k=0), "top_k"),
        (dict(top_k=2.0), "top_k"),
        (dict(method="qr"), "method"),
        (dict(method="lanczos"), "needs top_k"),
        (dict(method="lanczos", top_k=12), "top_k < 12"),
    ],
)
def test_jacobian_bad_arguments(kw, needle):
    net = emp.RandomMLP(12, 12, 2, 1, "tanh", 1.0, 0.0, generator=0)
    with pytest.raises(InvalidParameterError, match=needle):
        emp.jacobian_singular_values(net, _inputs(1, 12)[0], **kw)


def test_measurements_need_a_network():
    with pytest.raises(InvalidParameterError, match="RandomMLP or a torch.nn.Module"):
        emp.fisher_eigenvalues(lambda x: x, _inputs(2, 3))
    with pytest.raises(InvalidParameterError, match="one Linear layer"):
        emp.fisher_eigenvalues(torch.nn.Linear(3, 3), _inputs(2, 3))


# --------------------------------------------------------------------------------------------- layer statistics
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_layer_statistics_match_plain_loop(activation):
    net = _small(activation, widths=(9, 7, 10))
    X = _inputs(4, 8)
    s = emp.layer_statistics(net, X)
    q, c = ref.reference_layer_statistics(net, X)
    assert s.q.shape == (3, 4) and s.c.shape == (3, 4, 4) and s.q_hat.shape == (3, 4)
    assert _rel(s.q, q) < 1e-12 and np.max(np.abs(s.c - c)) < 1e-12
    assert np.allclose(s.c12, s.c[:, 0, 1])
    x = X.numpy()
    assert np.allclose(s.q_input, (x * x).sum(1) / 8, rtol=1e-14)
    assert np.allclose(s.c_input[0, 1], x[0] @ x[1] / np.linalg.norm(x[0]) / np.linalg.norm(x[1]), rtol=1e-13)
    post = net.forward_all(X).post
    assert np.allclose(s.q_hat[1], (post[2].square().sum(1) / 7).numpy(), rtol=1e-14)
    with pytest.raises(InvalidParameterError, match="two inputs"):
        emp.layer_statistics(net, X[0]).c12


# ------------------------------------------------------------------------------------------------- failures, dtype
def test_exploding_network_raises_naming_the_layer():
    net = emp.RandomMLP(8, 8, 200, 2, "linear", 50.0, 0.0, generator=0)
    X = _inputs(3, 8)
    with pytest.raises(NumericalError, match=r"hidden layer \d+ of 200"):
        emp.fisher_eigenvalues(net, X)
    with pytest.raises(NumericalError, match=r"hidden layer \d+ of 200"):
        emp.jacobian_singular_values(net, X[0])
    # forward pass finite (tiny input), only the Jacobian product overflows: the error names the product's layer
    net = emp.RandomMLP(8, 8, 40, 1, "linear", 1e10, 0.0, generator=0)
    with pytest.raises(NumericalError, match=r"Jacobian product .* \(hidden layer \d+ of 40\)"):
        emp.jacobian_singular_values(net, torch.full((8,), 1e-300, dtype=torch.float64))


def test_backward_overflow_names_the_layer():
    """Bounded forward (hard_tanh stays in its linear part), exploding backward: δ^l over- flows first."""
    net = emp.RandomMLP(8, 8, 400, 1, "hard_tanh", 8.0, 0.0, generator=0)
    # a zero input with zero biases keeps every h^l = 0: φ' = 1 everywhere and δ grows like 8^L
    with pytest.raises(NumericalError, match=r"backward pass ∂f/∂h\^\d+"):
        emp.fisher_eigenvalues(net, torch.zeros(1, 8, dtype=torch.float64))


def test_float32_network_close_to_float64():
    a = _small(C=2)
    b = _small(C=2)
    b = b.to(torch.float32)
    X = _inputs(5, 8)
    ea, eb = emp.fisher_eigenvalues(a, X), emp.fisher_eigenvalues(b, X)
    assert eb.dtype == np.float64
    assert _rel(eb, ea) < 1e-4
    sa = emp.jacobian_singular_values(emp.RandomMLP(8, 8, 2, 1, "tanh", 1.0, 0.1, generator=0), X[0])
    sb = emp.jacobian_singular_values(
        emp.RandomMLP(8, 8, 2, 1, "tanh", 1.0, 0.1, generator=0, dtype=torch.float32), X[0]
    )
    assert _rel(sb, sa) < 1e-5


def test_measurements_leave_autograd_and_tf32_alone():
    net = _small()
    net.requires_grad_(True)
    X = _inputs(3, 8)
    before = torch.backends.cuda.matmul.allow_tf32
    emp.fisher_eigenvalues(net, X)
    assert torch.is_grad_enabled()
    assert torch.backends.cuda.matmul.allow_tf32 == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """The same network on the GPU gives the CPU's numbers; float32 there is measured without TF32 (TF32's 10-bit
    mantissa would leave errors near 1e-3, true float32 stays below 1e-4)."""
    cpu = emp.RandomMLP(64, 64, 4, 3, "tanh", 1.3, 0.1, device="cpu", generator=0)
    X = _inputs(16, 64)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        gpu = emp.RandomMLP(64, 64, 4, 3, "tanh", 1.3, 0.1, device="cpu", generator=0).to("cuda", dtype)
        assert gpu.device.type == "cuda" and gpu.dtype == dtype
        assert _rel(emp.fisher_eigenvalues(gpu, X), emp.fisher_eigenvalues(cpu, X)) < tol
        assert _rel(emp.jacobian_singular_values(gpu, X[0]), emp.jacobian_singular_values(cpu, X[0])) < tol
        assert _rel(emp.layer_statistics(gpu, X).q, emp.layer_statistics(cpu, X).q) < tol


def test_jacobian_singular_values_of_tiny_and_huge_jacobians():
    """The Gram is formed from J scaled by its largest entry: no underflow to zeros for a deep ordered network (σ_max
    far below 1e-154), no overflow for a huge J; the squares stay exact to ~u·σ_max² relative."""
    net = emp.RandomMLP(6, 6, 320, 1, "tanh", 0.3, 0.0, generator=3)
    x = _inputs(1, 6, seed=4)[0]
    exact = torch.linalg.svdvals(emp.input_output_jacobian(net, x)).numpy()
    assert 0 < exact[0] < 1e-154
    for method in ("dense", "auto"):
        assert _rel(emp.jacobian_singular_values(net, x, method=method), exact) < 1e-12
    sq = (emp.jacobian_singular_values(net, x, method="gram") / exact[0]) ** 2  # (the squares underflow unscaled)
    assert np.max(np.abs(sq - (exact / exact[0]) ** 2)) < 1e-13
    from empirical.measure import _dense_singular_values

    j = emp.input_output_jacobian(emp.RandomMLP(6, 6, 3, 1, "tanh", 1.2, 0.1, generator=3), x)[None] * 1e160
    ref_sv = torch.linalg.svdvals(j)[0]
    for how in ("dense", "gram"):
        got = _dense_singular_values(j, how)[0]
        assert torch.all(torch.isfinite(got))
        assert float(torch.max(torch.abs((got / ref_sv[0]) ** 2 - (ref_sv / ref_sv[0]) ** 2))) < 1e-13


def test_input_output_jacobian_does_not_keep_the_product_buffer():
    net = emp.RandomMLP(4, 300, 2, 1, "tanh", 1.0, 0.1, generator=1)
    j = emp.input_output_jacobian(net, _inputs(1, 4)[0])
    assert j.shape == (300, 4) and j.untyped_storage().nbytes() == j.numel() * j.element_size()


# ------------------------------------------------------------------------------------- the Jacobian's two routes
@pytest.mark.parametrize(
    "n0, widths, layout",
    [
        (9, (12, 10, 11), "row"),  # N_0 ≤ N_L, row-major weights: forward route on Jᵀ, forward pass taken along
        (9, (12, 10, 11), "column"),  # column-major weights: the backward route
        (13, (12, 10, 11), "row"),  # N_0 > N_L: the backward route (fewer columns)
        (5, (5,), "row"),  # one hidden layer: no product at all
    ],
)
def test_jacobian_routes_match_jacrev(n0, widths, layout):
    net = emp.RandomMLP(n0, list(widths), len(widths), 2, "tanh", 1.3, 0.2, generator=6)
    if layout == "column":
        with torch.no_grad():
            for w in net.W:
                w.data = w.data.T.contiguous().T  # same values, column-major storage
        assert not net.W[0].is_contiguous()
    X = _inputs(3, n0, seed=8)
    js = emp.input_output_jacobian(net, X)
    assert js.shape == (3, widths[-1], n0) and js.is_contiguous()
    svs = emp.jacobian_singular_values(net, X, method="svd")
    for t in range(3):
        jr = ref.reference_jacobian(net, X[t])
        assert _rel(js[t], jr) < TOL
        assert _rel(svs[t], torch.linalg.svdvals(jr).numpy()) < TOL
        assert _rel(emp.input_output_jacobian(net, X[t]), jr) < TOL
    for method in ("dense", "gram"):
        sv = emp.jacobian_singular_values(net, X, method=method)
        assert np.max(np.abs(sv**2 - svs**2)) < 1e-13 * (svs[:, 0] ** 2).max()


def test_lower_gram_is_the_gram_lower_triangle():
    from empirical.measure import _lower_gram

    for shape in ((2, 7, 7), (2, 5, 9), (2, 9, 5), (1, 1, 3)):
        j = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        full = j @ j.mT if shape[1] <= shape[2] else j.mT @ j
        g = _lower_gram(j)
        assert torch.allclose(torch.tril(g), torch.tril(full), rtol=1e-14, atol=1e-14)
        h = g.shape[-1] // 2
        assert torch.all(g[:, :h, h:] == 0)  # the block the eigensolver does not read: zeros, not garbage


def test_float32_jacobian_dense_falls_back_where_float32_gram_is_ill_conditioned():
    """A float32 ReLU network's J is rank-deficient: "dense" returns svdvals' tiny singular values (float64 arithmetic
    on the float32 J), not the float32 Gram's ~sqrt(u₃₂)·σ_max noise; well-conditioned float32 J's take the Gram."""
    net = emp.RandomMLP(20, 20, 6, 1, "relu", math.sqrt(2.0), 0.0, generator=1, dtype=torch.float32)
    x = _inputs(1, 20, seed=3)[0]
    j = emp.input_output_jacobian(net, x).to(torch.float64)
    exact = torch.linalg.svdvals(j).numpy()
    assert exact[-1] < 1e-3 * exact[0]
    dense = emp.jacobian_singular_values(net, x, method="dense")
    assert np.max(np.abs(dense - exact)) < 1e-13 * exact[0]
    ortho = emp.RandomMLP(64, 64, 4, 1, "tanh", 1.0, 0.0, weights="orthogonal", generator=2, dtype=torch.float32)
    x = _inputs(1, 64, seed=4)[0] * 0.1
    exact = torch.linalg.svdvals(emp.input_output_jacobian(ortho, x).to(torch.float64)).numpy()
    assert exact[-1] > 0.1 * exact[0]  # the Gram route's case: float32 Gram, float64 eigenvalues
    assert np.max(np.abs(emp.jacobian_singular_values(ortho, x) - exact)) < 1e-6 * exact[0]
