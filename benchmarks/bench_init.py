"""Initialisation side by side: emp.initialize_ (stable edge of chaos), AnyInit 0.4.0 analytic mode, PyTorch's default
and Kaiming, on tanh, GELU, SiLU and ReLU MLPs (issue 13, item 6); plus the cost of measuring a user's nn.Sequential
against the same network as a RandomMLP.

For every activation and init, at depths DEPTHS and width WIDTH (float64 diagnostics at initialisation):

* per-layer gradient norms ‖∂loss/∂W^l‖ of a teacher–student regression loss, as the ratio first/last hidden layer
  (vanishing < 1 < exploding);
* the mean and largest squared singular value of J = ∂x^L/∂x^1 (hidden layers 2..L, at JAC_INPUTS inputs; the first
  layer is left out because each init scales the data differently there): χ_1^{L−1} and isometry;
* the FIM's λ_max over FIM_INPUTS inputs (layerwise Gram, exact) and the theory's (emp.describe), where it holds;

and a short training run (TRAIN_DEPTH layers, Adam, TRAIN_STEPS steps, float32, CPU) on the teacher–student task,
loss against steps. Figure: docs/figures/init_comparison.png. Needs ``pip install anyinit==0.4.0`` (a benchmark-only
dependency); without it the AnyInit rows are skipped and say so.

Inputs are standard Gaussian (|x|²/N_0 ≈ 1); the teacher is a random two-layer tanh network (width 64) of the same
inputs, its outputs scaled to unit variance.
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
TRAIN_STEPS = 120
TRAIN_BATCH = 128
LR = 1e-3
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


def _init(model, how, act_name, X):
    """Initialise in place; returns a note."""
    torch.manual_seed(0)
    if how == "initialize_":
        rep = emp.initialize_(model, generator=0, inputs=X)
        return f"q*={rep.q_star:.3g}"
    if how == "anyinit":
        import anyinit

        rep = anyinit.initialize(model, mode="analytic", input_spec=tuple(X.shape), seed=0)
        return type(rep).__name__
    if how == "kaiming":
        _kaiming_(model, act_name)
        return "kaiming_normal_, zero bias"
    for m in model:  # PyTorch default
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return "kaiming_uniform_(a=√5)"


def _teacher(X, seed=3):
    g = torch.Generator().manual_seed(seed)
    n = X.shape[1]
    w1 = torch.randn(n, 64, generator=g, dtype=X.dtype) / math.sqrt(n)
    w2 = torch.randn(64, 1, generator=g, dtype=X.dtype) / 8.0
    y = torch.tanh(X @ w1 * 2.0) @ w2
    return y / y.std()


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


def train(act_name, how, have_anyinit, steps):
    if how == "anyinit" and not have_anyinit:
        return None
    g = torch.Generator().manual_seed(2)
    X = torch.randn(TRAIN_BATCH * 4, WIDTH, generator=g)
    Y = _teacher(X.double()).float()
    model = _mlp(ACTIVATIONS[act_name], TRAIN_DEPTH, WIDTH, WIDTH, torch.float64)
    try:
        _init(model, how, act_name, X.double())
    except Exception:
        return None
    model = model.float()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for step in range(steps):
        i = (step * TRAIN_BATCH) % X.shape[0]
        xb, yb = X[i:i + TRAIN_BATCH], Y[i:i + TRAIN_BATCH]
        loss = 0.5 * (model(xb) - yb).square().mean()
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(losses)


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


def _figure(diag, curves, have_anyinit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"initialize_": "#d62728", "anyinit": "#1f77b4", "pytorch default": "#7f7f7f", "kaiming": "#2ca02c"}
    acts = list(ACTIVATIONS)
    fig, axes = plt.subplots(2, len(acts), figsize=(4.2 * len(acts), 7.5))
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
        ax.set_title(f"{a}, depth {L}: σ²(∂x^L/∂x^1) mean (bar), max (—)")
        ax = axes[1, j]
        for how in INITS:
            c = curves.get((a, how))
            if c is not None:
                ax.plot(np.arange(len(c)), c, color=colors[how], label=how, lw=1.4)
        ax.set_yscale("log")
        ax.set_xlabel("Adam step")
        ax.set_title(f"{a}, depth {TRAIN_DEPTH}: training loss")
        if j == 0:
            ax.legend(frameon=False)
    if not have_anyinit:
        fig.text(0.5, 0.01, "AnyInit not installed: its rows are missing", ha="center")
    fig.tight_layout()
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
    steps = 30 if quick else TRAIN_STEPS
    t0 = time.time()
    diag = {}
    for a in ACTIVATIONS:
        for L in depths:
            for how in INITS:
                diag[(a, L, how)] = diagnostics(a, L, how, have_anyinit)
    curves = {}
    for a in ACTIVATIONS:
        for how in INITS:
            curves[(a, how)] = train(a, how, have_anyinit, steps)
    speed = fim_speed()
    figure_note = ""
    if not quick:
        try:
            _figure(diag, curves, have_anyinit)
        except Exception as exc:  # the numbers stand without the figure
            figure_note = f" (not drawn: {type(exc).__name__}: {exc})"
    lines = ["## Initialisation: initialize_ vs AnyInit 0.4.0 (analytic) vs PyTorch default vs Kaiming", "",
             f"Width {WIDTH}, float64 diagnostics at initialisation on {FIM_INPUTS} standard Gaussian inputs "
             f"(Jacobian at {JAC_INPUTS}); χ_1 is the median per-layer gain read from the weights (emp.describe); "
             "grad ratio = ‖∂loss/∂W¹‖/‖∂loss/∂W^L‖ (teacher–student loss). "
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
    lines += ["", f"Training: depth {TRAIN_DEPTH}, width {WIDTH}, Adam lr {LR}, batch {TRAIN_BATCH}, {steps} steps, "
              "float32 (loss at step 0 → last):", "", "| φ | " + " | ".join(INITS) + " |",
              "|---|" + "---|" * len(INITS)]
    for a in ACTIVATIONS:
        cells = []
        for how in INITS:
            c = curves[(a, how)]
            cells.append("—" if c is None else f"{c[0]:.3g} → {c[-1]:.3g}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "FIM of a user's model (nn.Sequential, width 256, depth 8, C = 4, 64 inputs) vs the same weights as a "
              f"RandomMLP: {speed['nn.Sequential'] * 1e3:.1f} ms vs {speed['RandomMLP'] * 1e3:.1f} ms "
              f"(ratio {speed['nn.Sequential'] / speed['RandomMLP']:.2f}; identical eigenvalues).", "",
              f"Figure: `docs/figures/init_comparison.png`{figure_note}. Section time {time.time() - t0:.0f} s.", ""]
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
