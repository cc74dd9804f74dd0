"""Initialisation side by side: emp.initialize_ (stable edge of chaos), AnyInit 0.4.0 analytic mode, PyTorch's default
and Kaiming, on tanh, GELU, SiLU and ReLU MLPs (issue 13, item 6); plus the cost of measuring a user's nn.Sequential
against the same network as a RandomMLP.

For every activation and init, at depths DEPTHS and width WIDTH (float64 diagnostics at initialisation):

* per-layer gradient norms ‖∂loss/∂W^l‖ of a teacher–student regression loss, as the ratio first/last hidden layer
  (vanishing < 1 < exploding);
* the mean and largest squared singular value of J = ∂x^L/∂x^1 (hidden layers 2..L, at JAC_INPUTS inputs; the first
  layer is left out because each init scales the data differently there): χ_1^{L−1} and isometry;
* the FIM's λ_max over FIM_INPUTS inputs (layerwise Gram, exact) and the theory's (emp.describe), where it holds;

and a short training run (TRAIN_DEPTH layers of TRAIN_WIDTH, float32, CPU): online teacher–student regression, a
fresh batch from the teacher at every step (so the loss on the batch estimates the population loss and nothing can be
memorised; a fixed small training set let some inits reach a low training loss by memorising it). The training
comparison is a learning-rate sweep, so that no init is judged at a rate that suits another: every init trains with
Adam at each rate of ADAM_LRS and with plain SGD at each rate of SGD_LRS (the same grids for all, seed 0); each run is
scored by its loss on a held-out validation set after TRAIN_STEPS steps (a run whose loss passes DIVERGED scores inf);
each init's best rate of each grid is rerun with EXTRA_SEEDS, and the test losses are reported. Adam rescales every
parameter's step by its gradient's running size, which hides much of a vanishing or exploding Jacobian; SGD does not
(gradient descent on a quadratic is stable only below 2/λ_max of its Hessian, ≈ the FIM here, THEORY §3), so both are
shown.

Figure: docs/figures/init_comparison.png. Needs ``pip install anyinit==0.4.0`` (a benchmark-only dependency); without
it the AnyInit rows are skipped and say so.

Inputs are standard Gaussian (|x|²/N_0 ≈ 1); the teacher (:class:`Teacher`) is a random two-layer tanh network with
biases (width 64) of the same inputs, scaled to unit output variance, so the zero predictor scores ≈ 0.5; the best linear
predictor's score is reported beside it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import empirical as emp  # noqa: E402

ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}
INITS = ("initialize_", "anyinit", "pytorch default", "kaiming")
DEPTHS = (16, 64)
WIDTH = 256
JAC_INPUTS = 4
FIM_INPUTS = 32
TRAIN_DEPTH = 32
TRAIN_WIDTH = 128  # narrower than WIDTH so that the sweep (2 × 5 rates + 2 × 2 seeds, 16 inits) takes a few minutes
TRAIN_STEPS = 100
TRAIN_BATCH = 64
EVAL_SIZES = (1024, 4096)  # validation (picks the rate), test (reported); training draws fresh samples every step
TEACHER_WIDTH = 64
TEACHER_NORM_SAMPLES = 20000
EXTRA_SEEDS = (1, 2)  # each init is rerun at its best rates with these seeds (new init and data order)
SMOOTH = 5  # the figure's loss curves: running mean over this many steps
DIVERGED = 1e6  # a training loss above this (or not finite) ends the run as diverged
ADAM_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SGD_LRS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
OPTIMIZERS = {"Adam": ADAM_LRS, "SGD": SGD_LRS}
FIGURE = HERE.parent / "docs" / "figures" / "init_comparison.png"


def _mlp(act, depth, width, n_in, dtype):
    layers = [nn.Linear(n_in, width)]
    for _ in range(depth - 1):
        layers += [act(), nn.Linear(width, width)]
    return nn.Sequential(*layers, act(), nn.Linear(width, 1)).to(dtype)


def _kaiming_(model, act_name):
    nonlin = {"tanh": "tanh", "relu": "relu", "gelu": "relu", "silu": "relu"}[act_name]
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity=nonlin)
            nn.init.zeros_(m.bias)


def _init(model, how, act_name, X, seed=0):
    """Initialise in place (every init draws from ``seed``); returns a note."""
    torch.manual_seed(seed)
    if how == "initialize_":
        rep = emp.initialize_(model, generator=seed, inputs=X)
        return f"q*={rep.q_star:.3g}"
    if how == "anyinit":
        import anyinit

        rep = anyinit.initialize(model, mode="analytic", input_spec=tuple(X.shape), seed=seed)
        return type(rep).__name__
    if how == "kaiming":
        _kaiming_(model, act_name)
        return "kaiming_normal_, zero bias"
    for m in model:  # PyTorch default
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return "kaiming_uniform_(a=√5)"


class Teacher:
    """y = Σ_j v_j tanh(2 w_j·x + b_j) over TEACHER_WIDTH units, w_j ~ N(0, I/N_0), b_j ~ N(0, 1), v_j ~ N(0, 1),
    scaled to unit variance over standard Gaussian x (measured once on TEACHER_NORM_SAMPLES inputs): a generic smooth
    nonlinear target with odd and even parts."""

    def __init__(self, n_in, seed=3):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(n_in, TEACHER_WIDTH, generator=g, dtype=torch.float64) / math.sqrt(n_in)
        self.b = torch.randn(TEACHER_WIDTH, generator=g, dtype=torch.float64)
        self.v = torch.randn(TEACHER_WIDTH, 1, generator=g, dtype=torch.float64)
        self.scale = 1.0
        ref = torch.randn(TEACHER_NORM_SAMPLES, n_in, generator=g, dtype=torch.float64)
        self.scale = float(self(ref).std())

    def __call__(self, X):
        X = X.to(torch.float64)
        return torch.tanh(2.0 * X @ self.w + self.b) @ self.v / self.scale


def _teacher(X, seed=3):
    return Teacher(X.shape[1], seed)(X).to(X.dtype)


def _gradient_ratio(model, X, Y):
    model.zero_grad()
    loss = 0.5 * (model(X) - Y).square().mean()
    loss.backward()
    norms = [float(m.weight.grad.norm()) for m in model if isinstance(m, nn.Linear)][:-1]
    return norms[0] / norms[-1] if norms[-1] > 0 else math.inf


def diagnostics(act_name, depth, how, have_anyinit):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(FIM_INPUTS, WIDTH, generator=g, dtype=torch.float64)
    Y = _teacher(X)
    model = _mlp(ACTIVATIONS[act_name], depth, WIDTH, WIDTH, torch.float64)
    if how == "anyinit" and not have_anyinit:
        return None
    try:
        note = _init(model, how, act_name, X)
    except Exception as exc:  # an init that refuses (e.g. no stable critical point) is a result too
        return dict(note=f"{type(exc).__name__}: {str(exc)[:80]}")
    out = dict(note=note)
    try:
        out["grad_ratio"] = _gradient_ratio(model, X, Y)
        with torch.no_grad():  # J of hidden layers 2..L, at x^1: free of each init's own input scaling
            x1 = model[:2](X[:JAC_INPUTS])
        sv2 = emp.jacobian_singular_values(model[2:], x1) ** 2
        out["jac_mean"] = float(sv2.mean())
        out["jac_max"] = float(sv2.max())
        out["fim_lambda_max"] = float(emp.fisher_eigenvalues(model, X, top_k=1)[0])
        d = emp.describe(model, input_norm=float(X.square().sum(1).mean()) / WIDTH, input_correlation=0.0,
                         n_samples=FIM_INPUTS)
        out["theory_lambda_max"] = d.fisher_lambda_max
        out["edge_of_chaos"] = d.edge_of_chaos
        out["chi1"] = float(np.median([r["chi1"] for r in d.layers[1:]]))
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    return out


def _task(width):
    """The teacher and its validation and test sets (float32), shared by every init, rate and seed; and the test loss
    of the best linear predictor (least squares on TEACHER_NORM_SAMPLES fresh samples), for scale."""
    teacher = Teacher(width)
    g = torch.Generator().manual_seed(2)
    out = []
    for n in EVAL_SIZES:
        X = torch.randn(n, width, generator=g, dtype=torch.float64)
        out.append((X.float(), teacher(X).float()))
    Xf = torch.randn(TEACHER_NORM_SAMPLES, width, generator=g, dtype=torch.float64)
    A = torch.cat([Xf, torch.ones(Xf.shape[0], 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(A, teacher(Xf)).solution
    Xt, Yt = out[1]
    At = torch.cat([Xt.double(), torch.ones(Xt.shape[0], 1, dtype=torch.float64)], 1)
    linear = float(0.5 * (At @ coef - Yt.double()).square().mean())
    return teacher, out[0], out[1], linear


def _loss(model, X, Y):
    with torch.no_grad():
        v = float(0.5 * (model(X) - Y).square().mean())
    return v if math.isfinite(v) else math.inf


def _stacked(models):
    """The weights and biases of equal-shaped MLPs stacked along a leading run axis (float32 leaves)."""
    lins = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
    W = [torch.stack([ls[i].weight.detach().float() for ls in lins]).requires_grad_() for i in range(len(lins[0]))]
    b = [torch.stack([ls[i].bias.detach().float() for ls in lins]).requires_grad_() for i in range(len(lins[0]))]
    return W, b


def _forward(W, b, act, x):
    """R stacked MLPs on x (R, B, N_0) → (R, B, C)."""
    h = x
    for l in range(len(W)):
        h = torch.baddbmm(b[l].unsqueeze(1), h, W[l].transpose(1, 2))
        if l < len(W) - 1:
            h = act(h)
    return h


def train_runs(act_name, how, have_anyinit, steps, optimizer, runs, task):
    """Train one model per (seed, lr) of ``runs`` side by side (stacked weights, one batched product per layer: the
    runs are independent, each with its own parameters, optimiser state and rate; Adam as torch.optim.Adam's defaults,
    β = (0.9, 0.999), ε = 1e-8; SGD without momentum). Online teacher–student regression: every step draws a fresh
    batch (the same sequence for every init and rate of a seed), so the loss on the batch estimates the population loss
    and nothing can be memorised. Returns [(loss per step, validation loss, test loss)] in the order of ``runs`` (inf
    from the step a run's loss passes DIVERGED), or None where the init is unavailable."""
    if how == "anyinit" and not have_anyinit:
        return None
    teacher, val, test, _ = task
    data, models = {}, {}
    for seed in sorted({s for s, _ in runs}):
        g = torch.Generator().manual_seed(1000 + seed)
        X = torch.randn(steps * TRAIN_BATCH, TRAIN_WIDTH, generator=g, dtype=torch.float64)
        model = _mlp(ACTIVATIONS[act_name], TRAIN_DEPTH, TRAIN_WIDTH, TRAIN_WIDTH, torch.float64)
        try:
            _init(model, how, act_name, X[:TRAIN_BATCH], seed=seed)
        except Exception:
            return None
        data[seed] = (X.float().reshape(steps, TRAIN_BATCH, -1), teacher(X).float().reshape(steps, TRAIN_BATCH, 1))
        models[seed] = model
    R = len(runs)
    W, b = _stacked([models[s] for s, _ in runs])
    X = torch.stack([data[s][0] for s, _ in runs], 1)  # (steps, R, B, N_0)
    Y = torch.stack([data[s][1] for s, _ in runs], 1)
    rates = torch.tensor([lr for _, lr in runs], dtype=torch.float32)
    params = W + b
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    act = ACTIVATIONS[act_name]()
    alive = torch.ones(R, dtype=torch.bool)
    losses = torch.full((steps, R), math.inf)
    for step in range(steps):
        per = 0.5 * (_forward(W, b, act, X[step]) - Y[step]).square().mean(dim=(1, 2))
        with torch.no_grad():
            alive &= torch.isfinite(per) & (per <= DIVERGED)
            losses[step] = torch.where(alive, per, math.inf)
        if not bool(alive.any()):
            break
        grads = torch.autograd.grad(torch.where(alive, per, 0.0).sum(), params)
        with torch.no_grad():
            for p, gr, (m, v) in zip(params, grads, moments):
                shape = (R,) + (1,) * (p.dim() - 1)
                gr = torch.where(alive.view(shape), gr, 0.0)
                if optimizer == "SGD":
                    p.sub_(rates.view(shape) * gr)
                else:
                    m.mul_(0.9).add_(gr, alpha=0.1)
                    v.mul_(0.999).addcmul_(gr, gr, value=0.001)
                    m_hat = m / (1 - 0.9 ** (step + 1))
                    v_hat = v / (1 - 0.999 ** (step + 1))
                    p.sub_(rates.view(shape) * m_hat / (v_hat.sqrt() + 1e-8))
    out = []
    with torch.no_grad():
        scores = []
        for Xe, Ye in (val, test):
            e = 0.5 * (_forward(W, b, act, Xe.expand(R, -1, -1)) - Ye).square().mean(dim=(1, 2))
            scores.append(torch.where(alive & torch.isfinite(e), e, math.inf))
    for r in range(R):
        out.append((losses[:, r].numpy(), float(scores[0][r]), float(scores[1][r])))
    return out


def sweep(act_name, how, have_anyinit, steps, task):
    """{optimizer: {lr: (losses, val, test)}} over the rate grids (seed 0), plus {optimizer: [test loss at the best
    rate for seed 0 and each of EXTRA_SEEDS]} under the key "seeds"; None where the init is unavailable."""
    out = {}
    for opt, lrs in OPTIMIZERS.items():
        res = train_runs(act_name, how, have_anyinit, steps, opt, [(0, lr) for lr in lrs], task)
        if res is None:
            return None
        out[opt] = dict(zip(lrs, res))
    out["seeds"] = {}
    for opt in OPTIMIZERS:
        lr = best_rate(out[opt])
        extra = train_runs(act_name, how, have_anyinit, steps, opt, [(s, lr) for s in EXTRA_SEEDS], task)
        out["seeds"][opt] = [out[opt][lr][2]] + [r[2] for r in extra]
    return out


def best_rate(runs):
    """The rate with the lowest validation loss (ties: the smaller rate)."""
    return min(runs, key=lambda lr: (runs[lr][1], lr))


def fim_speed(repeats=3):
    """FIM λ_max on an nn.Sequential vs the same weights as a RandomMLP (both through the layerwise Gram)."""
    net = emp.RandomMLP(256, 256, 8, 4, "tanh", 1.1, 0.1, generator=0)
    layers = []
    for l in range(9):
        lin = nn.Linear(net.widths[l], net.widths[l + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(net.W[l])
            lin.bias.copy_(net.b[l])
        layers += [lin] + ([nn.Tanh()] if l < 8 else [])
    model = nn.Sequential(*layers)
    X = torch.randn(64, 256, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = emp.fisher_eigenvalues(net, X)
    b = emp.fisher_eigenvalues(model, X)
    assert np.allclose(a, b, rtol=1e-12, atol=1e-12)
    times = {}
    for name, m in (("RandomMLP", net), ("nn.Sequential", model)):
        best = math.inf
        for _ in range(repeats):
            t = time.perf_counter()
            emp.fisher_eigenvalues(m, X)
            best = min(best, time.perf_counter() - t)
        times[name] = best
    return times


def _figure(diag, sweeps, have_anyinit, linear):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"initialize_": "#d62728", "anyinit": "#1f77b4", "pytorch default": "#7f7f7f", "kaiming": "#2ca02c"}
    acts = list(ACTIVATIONS)
    fig, axes = plt.subplots(3, len(acts), figsize=(4.3 * len(acts), 10.5), layout="constrained")
    L = max(DEPTHS)
    for j, a in enumerate(acts):
        ax = axes[0, j]
        for k, how in enumerate(INITS):
            r = diag.get((a, L, how))
            if not r or "jac_mean" not in r:
                continue
            ax.bar(k, r["jac_mean"], color=colors[how], label=how)
            ax.plot([k], [r["jac_max"]], "k_", ms=14)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(INITS)), [i.replace("pytorch ", "") for i in INITS], rotation=20)
        ax.set_title(f"{a}, depth {L}, width {WIDTH}")
        if j == 0:
            ax.set_ylabel("σ²(∂x^L/∂x^1): mean (bar), max (—)")
        for i, opt in enumerate(OPTIMIZERS):
            ax = axes[1 + i, j]
            for how in INITS:
                sw = sweeps.get((a, how))
                if sw is None:
                    continue
                lr = best_rate(sw[opt])
                c, val, _ = sw[opt][lr]
                c = c[np.isfinite(c)]
                start = 0
                if c.size >= SMOOTH:  # running mean: one batch's loss scatters by ~√(2/B)
                    c, start = np.convolve(c, np.ones(SMOOTH) / SMOOTH, mode="valid"), SMOOTH - 1
                ax.plot(np.arange(len(c)) + start, c, color=colors[how], lw=1.3,
                        label=f"{how}, lr {lr:g}" + ("" if math.isfinite(val) else " (diverged)"))
            ax.axhline(linear, color="k", lw=0.8, ls=":", label="best linear predictor")
            ax.set_yscale("log")
            ax.set_xlabel(f"{opt} step")
            ax.set_title(f"{a}, depth {TRAIN_DEPTH}, width {TRAIN_WIDTH}")
            if j == 0:
                ax.set_ylabel(f"{opt} at each init's best rate:\nloss on fresh batches (mean of {SMOOTH})")
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (hi / lo) ** 0.6)  # headroom above the curves for the legend
            ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    fig.suptitle("Initialisations side by side: the Jacobian at initialisation (top); online teacher–student regression, "
                 "each init at its own best rate of a common grid\n(chosen on a validation set; Adam "
                 f"{', '.join(f'{x:g}' for x in ADAM_LRS)}; SGD {', '.join(f'{x:g}' for x in SGD_LRS)}; seed 0)",
                 fontsize=10)
    if not have_anyinit:
        fig.text(0.5, 0.005, "AnyInit not installed: its rows are missing", ha="center")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=100)
    plt.close(fig)


def run(quick=False):
    try:
        import anyinit  # noqa: F401

        have_anyinit = True
    except ImportError:
        have_anyinit = False
    depths = DEPTHS[:1] if quick else DEPTHS
    steps = 20 if quick else TRAIN_STEPS
    t0 = time.time()
    diag = {}
    for a in ACTIVATIONS:
        for L in depths:
            for how in INITS:
                diag[(a, L, how)] = diagnostics(a, L, how, have_anyinit)
    t_diag = time.time() - t0
    task = _task(TRAIN_WIDTH)
    sweeps = {}
    for a in ACTIVATIONS:
        for how in INITS:
            sweeps[(a, how)] = sweep(a, how, have_anyinit, steps, task)
    t_train = time.time() - t0 - t_diag
    speed = fim_speed()
    figure_note = " (not redrawn with --quick)" if quick else ""
    if not quick:
        try:
            _figure(diag, sweeps, have_anyinit, task[3])
        except Exception as exc:  # the numbers stand without the figure
            figure_note = f" (not drawn: {type(exc).__name__}: {exc})"
    lines = ["## Initialisation: initialize_ vs AnyInit 0.4.0 (analytic) vs PyTorch default vs Kaiming", "",
             f"Width {WIDTH}, float64 diagnostics at initialisation on {FIM_INPUTS} standard Gaussian inputs "
             f"(Jacobian at {JAC_INPUTS}); χ_1 is the median per-layer gain read from the weights (emp.describe); "
             "edge of chaos: emp.describe's verdict (the model's ξ_c along the inputs' trajectory ≥ L); "
             "grad ratio = ‖∂loss/∂W¹‖/‖∂loss/∂W^L‖ (teacher–student loss); FIM λ_max measured on one draw beside "
             "the mean-field theory of the weights read from it (for GELU/SiLU at large q* one draw scatters by "
             "≈ ±50 % at width 256 around a mean within ~1/N of the theory; see empirical.reading). "
             + ("" if have_anyinit else "**AnyInit is not installed (pip install anyinit==0.4.0): its rows are "
                                        "missing.**"), "",
             "| φ | L | init | χ_1 | edge of chaos | mean σ²(J_{2..L}) | max σ²(J_{2..L}) | grad ratio | FIM λ_max | theory |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (a, L, how), r in diag.items():
        if r is None:
            continue
        if "jac_mean" not in r:
            lines.append(f"| {a} | {L} | {how} | — | — | — | — | — | — | {r.get('error', r['note'])} |")
            continue
        lines.append(f"| {a} | {L} | {how} | {r['chi1']:.4g} | {'yes' if r['edge_of_chaos'] else 'no'} | "
                     f"{r['jac_mean']:.3g} | {r['jac_max']:.3g} | {r['grad_ratio']:.3g} | {r['fim_lambda_max']:.4g} | "
                     f"{r['theory_lambda_max']:.4g} |")

    def cell(x):
        return "diverged" if not math.isfinite(x) else f"{x:.3g}"

    linear = task[3]
    lines += ["", f"Training: online teacher–student regression (a fresh batch of {TRAIN_BATCH} every step; teacher "
              f"Σ_j v_j tanh(2 w_j·x + b_j), {TEACHER_WIDTH} units, unit output variance), depth {TRAIN_DEPTH}, "
              f"width {TRAIN_WIDTH}, {steps} steps, float32. Every init at every rate of the grids with seed 0; the "
              f"rate with the lowest validation loss ({EVAL_SIZES[0]} samples) is that init's best; its test loss "
              f"({EVAL_SIZES[1]} samples) is reported for seed 0 and, at the same rate, for seeds "
              f"{', '.join(map(str, EXTRA_SEEDS))} (new init draw and data order). For scale: the zero predictor "
              f"scores ≈ 0.5, the best linear predictor {linear:.3f}.", ""]
    for opt, lrs in OPTIMIZERS.items():
        lines += [f"**{opt}**: test loss at each init's best rate (seeds 0, {', '.join(map(str, EXTRA_SEEDS))}), "
                  "then the validation loss of seed 0 at every rate", "",
                  "| φ | init | best rate | test loss (mean; per seed) | "
                  + " | ".join(f"val @ {x:g}" for x in lrs) + " |",
                  "|---|---|---|---|" + "---|" * len(lrs)]
        wins = {}
        for a in ACTIVATIONS:
            means = {}
            for how in INITS:
                sw = sweeps[(a, how)]
                if sw is None:
                    lines.append(f"| {a} | {how} | — | — | " + " | ".join("—" for _ in lrs) + " |")
                    continue
                lr = best_rate(sw[opt])
                tl = sw["seeds"][opt]
                means[how] = float(np.mean(tl))
                lines.append(f"| {a} | {how} | {lr:g} | {cell(means[how])}; " + ", ".join(cell(t) for t in tl)
                             + " | " + " | ".join(cell(sw[opt][x][1]) for x in lrs) + " |")
            if means:
                wins[a] = min(means, key=means.get)
        lines += ["", f"Lowest mean {opt} test loss: " + "; ".join(f"{a}: {h}" for a, h in wins.items()) + ".", ""]
    lines += ["FIM of a user's model (nn.Sequential, width 256, depth 8, C = 4, 64 inputs) vs the same weights as a "
              f"RandomMLP: {speed['nn.Sequential'] * 1e3:.1f} ms vs {speed['RandomMLP'] * 1e3:.1f} ms "
              f"(ratio {speed['nn.Sequential'] / speed['RandomMLP']:.2f}; identical eigenvalues).", "",
              f"Figure: `docs/figures/init_comparison.png`{figure_note}. Section time {time.time() - t0:.0f} s "
              f"(diagnostics {t_diag:.0f} s, training sweep {t_train:.0f} s).", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared machine more threads than idle cores is many times "
                        "slower)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(run(quick=args.quick))


if __name__ == "__main__":
    main()
