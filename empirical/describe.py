"""The mean-field reading of a user's model, and (with inputs) the same quantities measured on it beside the theory.

:func:`describe` reads the model (:func:`empirical.read_network`) and predicts, layer by layer (THEORY §1, §2, §3, §8;
:func:`empirical.reading.layer_theory`, which reads :func:`meanfield.propagate` and :func:`meanfield.fisher_statistics`):
the pre-activation variance q^l, the layer's Jacobian gain χ_1 = σ_w,l² μ_1(q^l), its phase and depth scales ξ_q, ξ_c at
its own fixed point (:func:`meanfield.fixed_point`), the mean of the JJᵀ spectrum, the Fisher information's mean
eigenvalue and λ_max over the inputs, and the learning-rate bound 2/λ_max. The free-probability laws need square
layers, so three predictions are given where the network's shape allows them and reported as "n/a (rectangular)"
otherwise: the upper edge of the JJᵀ spectrum (:func:`meanfield.jacobian_spectrum` of the network, THEORY §2, §8:
N_1 = … = N_L, and N_0 = N_1 for a Gaussian first layer, N_0 ≥ N_1 for an orthogonal one), and λ_max of the
conditional FIM F(θ|x)/N and its Sokol–Park bound (:func:`meanfield.conditional_fisher_spectrum`,
:func:`meanfield.sokol_park_bound`, THEORY §4, §5: C = N_0 = … = N_L).

Whether a real model is "at the edge of chaos" is judged against its depth: the model's correlation depth scale ξ_c
is at least its depth L (signals stay distinguishable through the whole network; Schoenholz et al. 2017, "Deep
information propagation", ICLR, §3: networks train when L ≲ ξ_c), not |χ_1 − 1| ≤ 1e-9, which no sampled model meets.
ξ_c is taken along the trajectory q^l the inputs actually follow (:func:`correlation_depth_scale`): near c = 1 the
correlation map of layer l → l+1 has slope ``s_l = σ_w,l+1² μ_1(q^l)`` (THEORY §1, χ_1 of that map), so
``1 − c^L ∝ Π_l s_l (1 − c^1)`` and ``ξ_c = (L−1)/|Σ_{l=1}^{L−1} ln s_l|``, which is ``1/|ln χ_1|`` for a uniform network
at its fixed point: the ordered phase's ξ_c, the gradients' depth scale in both phases (Schoenholz et al. 2017, §4), and
the chaotic phase's ξ_c to first order in χ_1 − 1 (smaller further in: tanh σ_w = 1.5, σ_b = 0.1 has 1/ln χ_1 = 8.2
against ξ_c = 14.8 at c* = 0.18, so the verdict is the stricter one there). Each layer's own fixed
point is a poor guide for a sampled model: σ̂_b carries a relative error ~1/√(2N), and where the length map is nearly
marginal (GELU and SiLU at large q*, ξ_q ≫ L) that moves a layer's own q* far from the q^l the inputs reach in L layers,
so its ξ_c there says nothing about this network. The per-layer fixed-point reading (q*, phase, ξ_q, ξ_c) is still
shown, as what an infinitely deep stack of that layer would do.

With ``inputs`` the measured q^l (mean over inputs), mean squared singular value of J (at up to
:data:`JACOBIAN_INPUTS` inputs) and FIM mean eigenvalue and λ_max stand beside the predictions, each as a
:class:`~empirical.experiments.Record` with a statistically sized tolerance (:func:`measured_records`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

import meanfield as mf
from meanfield.errors import MeanFieldError

from empirical.experiments import ResultTable, make_record
from empirical.experiments.fisher import FISHER_BIAS
from empirical.experiments.jacobian import JACOBIAN_MEAN_BIAS
from empirical.experiments.propagation import TRAJECTORY_BIAS
from empirical.experiments.tolerances import K_SIGMA
from empirical.measure import fisher_eigenvalues, jacobian_singular_values, layer_statistics
from empirical.models import as_mlp
from empirical.reading import LayerTheory, layer_theory, read_network

__all__ = ["describe", "Description", "measured_records", "q_draw_variance", "correlation_depth_scale", "JACOBIAN_INPUTS",
           "jacobian_law_applies", "conditional_law_applies"]

JACOBIAN_INPUTS = 8  # inputs at which the Jacobian is measured (each costs L dense products)
# Per-draw fluctuation scales for one model (n = 1 draw, shared by all its inputs): the Jacobian and FIM scales are the
# upper end of the per-draw spreads measured for the experiments (Jacobian mean 0.2-1.2 × CV/√N, FIM 0.3-0.9 × √(v/N);
# see empirical.experiments); q^l uses the relative variance that builds up over the layers (q_draw_variance).
JACOBIAN_DRAW = 1.5
FISHER_DRAW = 1.0


@dataclass(frozen=True)
class Description:
    """The mean-field reading of a model (see the module docstring).

    Attributes
    ----------
    network : the :class:`meanfield.Network` read from the model (or given).
    theory : the per-layer predictions (:class:`~empirical.reading.LayerTheory`).
    layers : one dict per hidden layer: layer, width, activation, sigma_w, sigma_b, q, chi1 (on the trajectory), and
        q_star, phase, xi_q, xi_c of the layer's own fixed point (and q_measured with inputs).
    xi_c : the model's correlation depth scale along the inputs' trajectory (:func:`correlation_depth_scale`).
    edge_of_chaos : ``xi_c ≥ L``.
    jacobian_mean, jacobian_edge : mean and upper edge of the JJᵀ spectrum (the edge from
        :func:`meanfield.jacobian_spectrum` of the network at the inputs' |x|²/N_0; None where the shape does not allow
        it, see ``unavailable``).
    conditional_fisher_lambda_max, sokol_park_bound : λ_max of F(θ|x)/N for one input of the inputs' |x|²/N_0 and
        its Sokol–Park bound (same normalisation; :func:`meanfield.conditional_fisher_spectrum`,
        :func:`meanfield.sokol_park_bound`); None unless C = N_0 = … = N_L (see ``unavailable``).
    fisher_mean, fisher_lambda_max, learning_rate_bound : FIM predictions over ``n_samples`` inputs.
    input_norm, input_correlation, n_samples : the inputs the predictions are for.
    measured : None, or {"jacobian_mean", "fisher_mean", "fisher_lambda_max", "q"} measured on the model.
    records : None, or the :class:`~empirical.experiments.ResultTable` of theory vs measurement with tolerances.
    unavailable : {field name: why it is None}: ``"n/a (rectangular)"`` where the network's shape rules the law out,
        else the theory's error.
    """

    network: mf.Network
    theory: LayerTheory
    layers: list
    xi_c: float
    edge_of_chaos: bool
    jacobian_mean: float
    jacobian_edge: float | None
    fisher_mean: float
    fisher_lambda_max: float
    learning_rate_bound: float
    input_norm: float
    input_correlation: float
    n_samples: int
    measured: dict | None = None
    records: ResultTable | None = None
    conditional_fisher_lambda_max: float | None = None
    sokol_park_bound: float | None = None
    unavailable: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.network.depth

    @property
    def passed(self) -> bool | None:
        """Whether every measurement lies within its tolerance (None without inputs)."""
        return None if self.records is None else self.records.passed

    def summary_rows(self) -> list[tuple]:
        """(quantity, theory, measured or None) for the model-wide quantities; the theory is a string saying why
        (``"n/a (rectangular)"``) where the network's shape allows no prediction."""
        m = self.measured or {}

        def th(name):
            v = getattr(self, name)
            return self.unavailable.get(name, "n/a") if v is None else v

        return [
            ("mean σ²(J) (JJᵀ mean)", self.jacobian_mean, m.get("jacobian_mean")),
            ("JJᵀ spectral edge", th("jacobian_edge"), None),
            ("FIM mean eigenvalue", self.fisher_mean, m.get("fisher_mean")),
            ("FIM λ_max", self.fisher_lambda_max, m.get("fisher_lambda_max")),
            ("learning-rate bound 2/λ_max", self.learning_rate_bound,
             None if "fisher_lambda_max" not in m else 2.0 / m["fisher_lambda_max"]),
            ("conditional FIM λ_max (F(θ|x)/N)", th("conditional_fisher_lambda_max"), None),
            ("Sokol–Park bound (F(θ|x)/N)", th("sokol_park_bound"), None),
        ]

    def to_markdown(self) -> str:
        """Per-layer table and model-wide predictions (with measurements beside them where measured)."""
        meas = self.measured is not None
        cols = ["layer", "width", "activation", "σ_w", "σ_b", "q (theory)"] + (["q (measured)"] if meas else []) + [
            "χ_1", "phase", "ξ_q", "ξ_c"]
        out = [f"**{self.depth} hidden layers; edge of chaos (ξ_c ≥ L = {self.depth} along the inputs' trajectory, "
               f"ξ_c = {self.xi_c:.4g}): {'yes' if self.edge_of_chaos else 'no'}**", "",
               "χ_1 on the trajectory; phase, ξ_q, ξ_c at each layer's own fixed point.", "",
               "| " + " | ".join(cols) + " |",
               "|" + "---|" * len(cols)]
        for r in self.layers:
            vals = [r["layer"], r["width"], r["activation"], f"{r['sigma_w']:.4g}", f"{r['sigma_b']:.3g}",
                    f"{r['q']:.4g}"] + ([f"{r['q_measured']:.4g}"] if meas else []) + [
                f"{r['chi1']:.4f}", r["phase"], f"{r['xi_q']:.3g}", f"{r['xi_c']:.3g}"]
            out.append("| " + " | ".join(str(v) for v in vals) + " |")
        out += ["", "| quantity | theory | measured |", "|---|---|---|"]
        for name, th, me in self.summary_rows():
            out.append(f"| {name} | {_fmt(th)} | {'—' if me is None else f'{me:.5g}'} |")
        if self.records is not None:
            failed = len(self.records.failures())
            out += ["", f"{len(self.records) - failed} of {len(self.records)} measurements within tolerance"]
        return "\n".join(out)

    def __repr__(self):
        n = self.network
        hw = n.hidden_widths
        shown = f"{hw[0]}×{n.depth}" if len(set(hw)) == 1 else "-".join(map(str, hw))
        acts = ", ".join(dict.fromkeys(a.name for a in n.activations))
        judged = self.layers[1:] if n.depth > 1 else self.layers
        lines = [f"Description: {n.input_width} → {shown} → {n.output_width}, φ = {acts}, "
                 f"{'/'.join(dict.fromkeys(n.weights))} weights",
                 f"  edge of chaos (ξ_c ≥ L = {n.depth} along the inputs' trajectory): "
                 f"{'yes' if self.edge_of_chaos else 'no'}; ξ_c = {self.xi_c:.4g}, χ_1 in "
                 f"[{min(r['chi1'] for r in judged):.6f}, {max(r['chi1'] for r in judged):.6f}]",
                 f"  q^l: {self.layers[0]['q']:.4g} (l = 1) → {self.layers[-1]['q']:.4g} (l = L)"]
        for name, th, me in self.summary_rows():
            lines.append(f"  {name}: {_fmt(th)}" + ("" if me is None else f"   measured {me:.5g}"))
        if self.records is not None:
            lines.append(f"  {len(self.records) - len(self.records.failures())} of {len(self.records)} "
                         "measurements within tolerance")
        return "\n".join(lines)

    def _repr_markdown_(self):
        return self.to_markdown()

    def plot(self, **kwargs):
        """The figure of :func:`empirical.plots.plot_description`."""
        from empirical.plots import plot_description

        return plot_description(self, **kwargs)


def _fmt(value) -> str:
    return value if isinstance(value, str) else ("—" if value is None else f"{value:.5g}")


def jacobian_law_applies(network: mf.Network) -> bool:
    """Whether :func:`meanfield.jacobian_spectrum` has the law of this network's J (THEORY §2, §8): square hidden layers
    N_1 = … = N_L, and N_0 = N_1 for a Gaussian first layer (N_0 ≥ N_1 for an orthogonal one)."""
    w = network.widths
    if len(set(network.hidden_widths)) != 1:
        return False
    return w[0] >= w[1] if network.weights[0] == "orthogonal" else w[0] == w[1]


def conditional_law_applies(network: mf.Network) -> bool:
    """Whether :func:`meanfield.conditional_fisher_spectrum` and :func:`meanfield.sokol_park_bound` apply: square
    layers and a square readout, C = N_0 = … = N_L (THEORY §4, §5)."""
    return len(set(network.widths)) == 1


def _shape_dependent(network: mf.Network, q0: float) -> tuple[dict, dict]:
    """The predictions that need square layers: ({field: value}, {field: why it is None})."""
    values = dict(jacobian_edge=None, conditional_fisher_lambda_max=None, sokol_park_bound=None)
    why = {}
    calls = dict(
        jacobian_edge=(jacobian_law_applies, lambda: mf.jacobian_spectrum(network, q0=q0).edge),
        conditional_fisher_lambda_max=(conditional_law_applies,
                                       lambda: mf.conditional_fisher_spectrum(network, input_norm=q0).lambda_max),
        sokol_park_bound=(conditional_law_applies, lambda: mf.sokol_park_bound(network, input_norm=q0).bound),
    )
    for name, (applies, call) in calls.items():
        if not applies(network):
            why[name] = "n/a (rectangular)"
            continue
        try:
            values[name] = float(call())
        except MeanFieldError as exc:  # shown as the theory's own error, never as a number
            why[name] = f"n/a ({type(exc).__name__}: {exc})"
    return values, why


def q_draw_variance(network: mf.Network, q: np.ndarray) -> np.ndarray:
    """Relative variance, across draws of the weights, of q^l = |h^l|²/N_l for one input, l = 1..L: the sum over
    layers k ≤ l of ``2/N_k`` (a Gaussian layer's χ² fluctuation of |Wx|²; 0 for an orthogonal layer, which keeps
    norms) and ``r_k/N_{k-1}`` for k ≥ 2, with ``r = Var[φ(h)² | h²-regression]/E[φ(h)²]²`` at q^{k-1}: the part of
    the fluctuation of |φ(h)|² that |h|² does not explain (0 for linear φ, 3 for ReLU, where the sum gives Hanin &
    Rolnick's 5/N per layer; "How to start training", NeurIPS 2018, Thm. 5). A tolerance scale, evaluated by
    :func:`meanfield.expect`."""
    out, acc = [], 0.0
    for l in range(network.depth):
        if network.weights[l] == "gaussian":
            acc += 2.0 / network.widths[l + 1]
        if l > 0:
            act, ql = network.activations[l - 1], float(q[l - 1])
            kinks = tuple(act.kinks)
            f2 = float(mf.expect(lambda u: act.phi(u) ** 2, ql, kinks).value)
            f4 = float(mf.expect(lambda u: act.phi(u) ** 4, ql, kinks).value)
            f2h2 = float(mf.expect(lambda u: act.phi(u) ** 2 * u * u, ql, kinks).value)
            cov = f2h2 - f2 * ql
            resid = max((f4 - f2 * f2) - cov * cov / (2.0 * ql * ql), 0.0)
            acc += resid / (f2 * f2) / network.widths[l]
        out.append(acc)
    return np.array(out)


def _layer_phase(act, sw, sb, gain):
    """(q*, phase, ξ_q, ξ_c) at the layer's own fixed point (:func:`meanfield.fixed_point`). Where the solver cannot
    certify one (at the critical point itself its slope test is marginal), the phase and ξ_c come from the layer's
    Jacobian gain on the trajectory, ``ξ_c = 1/|ln χ_1|`` (exact on the ordered side, where c* = 1), marked
    "(from χ_1)"; without a finite fixed point the phase is "no fixed point" and the depth scales are NaN."""
    try:
        fp = mf.fixed_point(act, sw, sb)
        return float(fp.q_star), str(fp.phase), float(fp.xi_q), float(fp.xi_c)
    except mf.NoFixedPointError:
        return math.nan, "no fixed point", math.nan, math.nan
    except MeanFieldError:
        lg = abs(math.log(gain)) if gain > 0 else math.inf
        phase = "critical" if lg == 0 else ("ordered" if gain < 1 else "chaotic")
        return math.nan, phase + " (from χ_1)", math.nan, (math.inf if lg == 0 else 1.0 / lg)


def _input_stats(x: torch.Tensor):
    """(per-input |x|²/N_0, mean, mean pairwise correlation x·x'/N_0 divided by the mean norm)."""
    x = x.to(torch.float64)
    n0 = x.shape[1]
    g = (x @ x.T) / n0
    norms = torch.diagonal(g).cpu().numpy()
    T = g.shape[0]
    q0 = float(norms.mean())
    if T > 1:
        off = (g.sum() - torch.diagonal(g).sum()) / (T * (T - 1))
        c0 = float(off) / q0
        # Σ_ij x_i·x_j = |Σ_i x_i|² ≥ 0 makes c0 ≥ −1/(T−1) exactly; keep rounding from crossing it
        c0 = max(c0, -1.0 / (T - 1))
    else:
        c0 = 0.0
    return norms, q0, min(max(c0, -1.0), 1.0)


def correlation_depth_scale(network: mf.Network, theory: LayerTheory) -> float:
    """The correlation depth scale of ``network`` along the trajectory q^l of ``theory`` (its
    :func:`~empirical.reading.layer_theory`): ``ξ_c = (L−1)/|Σ_{l=1}^{L−1} ln s_l|`` with ``s_l = σ_w,l+1² μ_1(q^l)`` the
    slope at c = 1 of the correlation map from layer l to l+1 (THEORY §1: that slope is χ_1, and ξ_c = −1/ln χ_c is
    −1/ln χ_1 where c* = 1; Schoenholz et al. 2017, ICLR, §3). The first layer's map from the data is left out (it only
    scales the inputs); for one hidden layer the layer's own gain σ_w,1² μ_1(q^1) is used. ``inf`` where the slopes
    multiply to exactly 1; 0 where a slope is 0 (a dead network)."""
    L = network.depth
    if L > 1:
        slopes = np.array([network.sigma_w[l + 1] ** 2 * theory.mu1[l] for l in range(L - 1)])
    else:
        slopes = np.array([float(theory.gain[0])])
    if not np.all(slopes > 0):
        return 0.0
    total = abs(float(np.sum(np.log(slopes))))
    return math.inf if total == 0.0 else slopes.size / total


def describe(model, inputs=None, *, network: mf.Network | None = None, input_norm: float = 1.0,
             input_correlation: float = 0.0, n_samples: int = 16, k_sigma: float = K_SIGMA) -> Description:
    """The mean-field reading of ``model`` (see the module docstring): theory from ``network`` (default: read from the
    model's weights), for ``inputs`` (their mean |x|²/N_0 and mean pairwise correlation) or, without inputs, for
    ``n_samples`` inputs of ``input_norm`` and ``input_correlation``. With ``inputs`` the quantities are also measured on
    the model and compared (:func:`measured_records`)."""
    net = as_mlp(model)
    nw = read_network(model) if network is None else network
    x = None
    if inputs is not None:
        x = net.as_input(inputs, "inputs")
        _, q0, c0 = _input_stats(x)
        T = x.shape[0]
    else:
        q0, c0, T = float(input_norm), float(input_correlation), int(n_samples)
    th = layer_theory(nw, input_norm=q0, input_correlation=c0, n_samples=T)
    layers = []
    for l in range(nw.depth):
        q_star, phase, xi_q, xi_c = _layer_phase(nw.activations[l], nw.sigma_w[l], nw.sigma_b[l], float(th.gain[l]))
        if l == 0 and nw.depth > 1:
            phase = "input layer"  # it maps the data to q^1 once; its own fixed point never matters
        layers.append(dict(layer=l + 1, width=nw.widths[l + 1], activation=nw.activations[l].name,
                           sigma_w=nw.sigma_w[l], sigma_b=nw.sigma_b[l], q=float(th.q[l]), chi1=float(th.gain[l]),
                           q_star=q_star, phase=phase, xi_q=xi_q, xi_c=xi_c))
    xi_c = correlation_depth_scale(nw, th)
    eoc = xi_c >= nw.depth
    shaped, unavailable = _shape_dependent(nw, q0)
    desc = dict(network=nw, theory=th, layers=layers, xi_c=float(xi_c), edge_of_chaos=bool(eoc), jacobian_mean=th.jacobian_mean,
                fisher_mean=th.mean_eigenvalue, fisher_lambda_max=th.lambda_max,
                learning_rate_bound=th.learning_rate_bound, input_norm=q0, input_correlation=c0, n_samples=T,
                unavailable=unavailable, **shaped)
    if x is None:
        return Description(**desc)
    measured, records = measured_records(model, x, nw, k_sigma=k_sigma)
    for r, qm in zip(layers, measured["q"]):
        r["q_measured"] = float(qm)
    return Description(**desc, measured=measured, records=records)


def measured_records(model, inputs, network: mf.Network, k_sigma: float = K_SIGMA,
                     theory_sigma_w_scale: float = 1.0) -> tuple[dict, ResultTable]:
    """Measure q^l, the mean squared singular value of J and the FIM on ``model`` at ``inputs`` and compare each with
    the theory of ``network`` (σ_w scaled by ``theory_sigma_w_scale``: 1.1 is a deliberately wrong theory).

    Records (``experiment = "model"``), tolerances ``k_sigma·max(spread, floor)/√n + allowance``, relative:

    * ``q/q_theory`` per hidden layer: values per input (each input's own theory trajectory), n = T; tolerance
      ``k_sigma·max(spread/√n, √w_l) + TRAJECTORY_BIAS/N_l``, w_l the relative per-draw variance of q^l
      (:func:`q_draw_variance`), which all inputs share, so it is not divided by √n;
    * ``jacobian_mean/theory``: per input (up to :data:`JACOBIAN_INPUTS`), ``Σσ²/N_L`` over the input's own theory;
      floor ``JACOBIAN_DRAW·√(v/N)`` (v the spectrum's relative variance, N the narrowest hidden width), allowance
      ``JACOBIAN_MEAN_BIAS·L/N``;
    * ``fisher_mean/theory`` and ``fisher_lambda_max/theory`` (top-C mean): one value (n = 1); floor
      ``FISHER_DRAW·√(v/N)``, allowance ``FISHER_BIAS·v/N`` plus, for λ_max, the relative spread of the inputs' norms
      and pairwise covariances (the theory assumes equal norms and one correlation, THEORY §3).
    """
    nw = network
    if theory_sigma_w_scale != 1.0:
        nw = mf.Network(nw.widths, tuple(s * theory_sigma_w_scale for s in nw.sigma_w), nw.sigma_b, nw.activations,
                        nw.weights, nw.biases)
    net = as_mlp(model)
    x = net.as_input(inputs, "inputs")
    norms, q0, c0 = _input_stats(x)
    T, L = x.shape[0], nw.depth
    n_min = min(nw.hidden_widths)
    name = "model"
    base = dict(depth=L, width=n_min, n_inputs=T)
    records = []
    # q^l per input, against each input's own trajectory (THEORY §8), and its Jacobian mean Π_l χ_l
    stats = layer_statistics(model, x)
    own = [mf.propagate(nw, q0=float(n)) for n in norms]
    qt = np.array([tr.q[1:] for tr in own]).T
    th = layer_theory(nw, input_norm=q0, input_correlation=c0, n_samples=T)
    w = q_draw_variance(nw, th.q)
    for l in range(L):
        n = nw.widths[l + 1]
        records.append(make_record(name, "q/q_theory", dict(base, layer=l + 1), 1.0, stats.q[l] / qt[l],
                                   k_sigma=k_sigma, floor=math.sqrt(w[l] * T), allowance=TRAJECTORY_BIAS / n))
    v = th.finite_width_variance
    # Jacobian: mean squared singular value per input over its own theory
    k = min(T, JACOBIAN_INPUTS)
    sv = jacobian_singular_values(model, x[:k])
    meas_j = (sv ** 2).sum(axis=1) / nw.widths[L]
    th_j = np.array([float(np.prod(own[t].chi[1:])) for t in range(k)])
    records.append(make_record(name, "jacobian_mean/theory", base, 1.0, meas_j / th_j, k_sigma=k_sigma,
                               floor=JACOBIAN_DRAW * math.sqrt(v / n_min), allowance=JACOBIAN_MEAN_BIAS * L / n_min))
    # Fisher information over all inputs
    ev = fisher_eigenvalues(model, x)
    C = nw.output_width
    P = net.num_parameters(True)
    f_mean = float(ev.sum() / P)
    f_top = float(ev[:C].mean())
    fl = FISHER_DRAW * math.sqrt(v / n_min)
    records.append(make_record(name, "fisher_mean/theory", base, 1.0, [f_mean / th.mean_eigenvalue], k_sigma=k_sigma,
                               floor=fl, allowance=FISHER_BIAS["mean_eigenvalue"] * v / n_min))
    xs = x.to(torch.float64)
    g = (xs @ xs.T / xs.shape[1]).cpu().numpy()
    off = g[~np.eye(T, dtype=bool)] if T > 1 else np.zeros(1)
    spread = float(norms.std() / q0 + (off.std() / q0 if T > 1 else 0.0))
    records.append(make_record(name, "fisher_lambda_max/theory", base, 1.0, [f_top / th.lambda_max], k_sigma=k_sigma,
                               floor=fl, allowance=FISHER_BIAS["lambda_max"] * v / n_min + spread))
    measured = dict(q=stats.q.mean(axis=1), jacobian_mean=float(meas_j.mean()), fisher_mean=f_mean,
                    fisher_lambda_max=f_top)
    return measured, ResultTable(records)
