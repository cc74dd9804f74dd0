"""Edge-of-chaos initialisation of a user's model, in place, in the style of ``torch.nn.init`` (THEORY §1, §2, §6, §8).

:func:`initialize_` puts every hidden layer of a chain of Linear layers and elementwise activations
(:func:`empirical.as_mlp`) on the *stable* critical line of its activation at a chosen q* (THEORY §1, §6):

* hidden layer l ≥ 2: ``σ_w,l² = 1/μ_1,l(q*)`` and ``σ_b,l² = q* − σ_w,l² E_{q*}[φ_{l−1}²]`` (for one activation this is
  :func:`meanfield.critical_point`), so that q^l = q* and the layer's Jacobian gain ``σ_w,l² μ_1,l(q*)`` is 1;
* the first layer is scaled to the data: ``σ_w,1² = (q* − σ_b²)/q_in`` with ``q_in = |x|²/N_0`` of the given inputs (or
  ``input_norm``), so q^1 = q* from the first layer on (``first_layer="critical"`` keeps σ_w,1 = σ_w instead);
* the readout is drawn like the hidden layers (THEORY §0's convention, under which the Fisher predictions hold), or
  with ``readout_sigma_w``.

The mean squared singular value of ``J = ∂x^L/∂x^0`` is then ``(σ_w,1²/σ_w²)·χ_1^L`` with χ_1 = 1: exactly 1 for inputs at
the fixed point (``q_in = (q* − σ_b²)/σ_w²``), and the first layer's input scaling times 1 otherwise (reported).

Default q* (``q_star=None``): :data:`DEFAULT_Q_STAR` = 1/64, the small q* at which tanh networks with orthogonal weights
achieve dynamical isometry (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
dynamical isometry", NeurIPS, Fig. 1 and §4; THEORY §2's reference row), where the activation has a stable critical
point there. Otherwise:

* homogeneous activations (ReLU, leaky ReLU, linear) are critical only at σ_b = 0, with ``σ_w² = 1/μ_1`` for every q
  (ReLU: He et al. 2015, σ_w = √2): that is used, and q^l stays at the first layer's q^1 — with ``q_star=None`` the
  first layer takes the same σ_w (q* = σ_w² q_in), with a q* given it is scaled to it;
* activations whose critical point at the requested q* is unstable (GELU and SiLU at small q*, THEORY §6): with
  ``q_star=None`` the nearest stable q* is taken and said so in the report's notes; an explicit q* raises
  :class:`~meanfield.errors.NoCriticalPointError` naming the nearest stable q*;
* activations with no critical point at all (softplus, sigmoid: it would need σ_b² < 0) raise, saying so.

Weights: ``"orthogonal"`` (``torch.nn.init.orthogonal_`` with gain ``σ_w sqrt(max(N_l, N_{l−1})/N_{l−1})``, THEORY §0) or
``"gaussian"`` (``N(0, σ_w²/N_{l−1})``); biases ``N(0, σ_b²)``; all drawn from ``generator`` (a ``torch.Generator`` or
seed; None: the global RNG, as ``torch.nn.init`` does). A layer without bias where σ_b > 0 is needed makes q* drift
towards the σ_b = 0 fixed point; the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

import meanfield as mf
from meanfield.errors import InvalidParameterError, NoCriticalPointError

from empirical.models import as_mlp

__all__ = ["initialize_", "InitReport", "DEFAULT_Q_STAR", "stable_critical_point"]

DEFAULT_Q_STAR = 1.0 / 64.0  # Pennington, Schoenholz & Ganguli 2017 (dynamical isometry for tanh)
# q* grid on which the nearest stable critical point is looked for (geometric, 16 points per decade)
Q_STAR_GRID = np.geomspace(1e-4, 100.0, 97)


@dataclass(frozen=True)
class InitReport:
    """What :func:`initialize_` did and what the theory predicts for the initialised model.

    Attributes
    ----------
    network : the intended :class:`meanfield.Network` (the exact σ's the weights were drawn with).
    q_star : the q* every hidden layer was set to (for homogeneous activations: the input's q^1).
    requested_q_star : what was asked (None: the default).
    input_norm : q_in = |x|²/N_0 the first layer was scaled for.
    chi1 : per hidden layer, the Jacobian gain σ_w,l² μ_1,l(q*) (1 on the critical line).
    jacobian_mean : predicted mean squared singular value of J = ∂x^L/∂x^0 for inputs of that norm.
    notes : what had to be chosen instead of the request, and why.
    """

    network: mf.Network
    q_star: float
    requested_q_star: float | None
    input_norm: float
    weights: str
    chi1: tuple
    jacobian_mean: float
    notes: tuple = field(default=())

    def __repr__(self):
        n = self.network
        hw = n.hidden_widths
        shown = f"{hw[0]}×{n.depth}" if len(set(hw)) == 1 else "-".join(map(str, hw))
        lines = [f"InitReport: {n.depth} hidden layers, widths {n.input_width} → {shown} → {n.output_width}, "
                 f"{self.weights} weights",
                 f"  q* = {self.q_star:.6g} (requested: {self.requested_q_star!r}), input |x|²/N_0 = "
                 f"{self.input_norm:.6g}",
                 f"  hidden σ_w = {n.sigma_w[min(1, n.depth - 1)]:.10g}, σ_b = {n.sigma_b[min(1, n.depth - 1)]:.6g}; "
                 f"first layer σ_w = {n.sigma_w[0]:.6g}, σ_b = {n.sigma_b[0]:.6g}; readout σ_w = {n.sigma_w[-1]:.6g}",
                 f"  χ_1 per layer in [{min(self.chi1):.12g}, {max(self.chi1):.12g}]; predicted mean σ²(J) = "
                 f"{self.jacobian_mean:.6g}"]
        lines += [f"  note: {t}" for t in self.notes]
        return "\n".join(lines)


def _nearest_stable(act, q: float):
    """(q*, σ_w, σ_b) of the stable critical point of ``act`` whose q* is nearest to q in log scale, or None."""
    sw, sb, status = mf.critical_point(act, Q_STAR_GRID, return_status=True)
    ok = np.flatnonzero(status == "ok")
    if ok.size == 0:
        return None
    i = ok[np.argmin(np.abs(np.log(Q_STAR_GRID[ok] / q)))]
    return float(Q_STAR_GRID[i]), float(sw[i]), float(sb[i])


def stable_critical_point(activation, q_star: float | None = None) -> tuple[float, float, float, tuple]:
    """(q*, σ_w, σ_b, notes): the stable critical point of ``activation`` at ``q_star`` (None: :data:`DEFAULT_Q_STAR`,
    or the nearest stable one), following the rules of the module docstring. Raises
    :class:`~meanfield.errors.NoCriticalPointError` where there is none to offer."""
    act = mf.get_activation(activation)
    notes = []
    if act.is_homogeneous:
        sw = 1.0 / math.sqrt(float(mf.gaussian_moments(act, 1.0).mu1))
        notes.append(f"{act.name} is homogeneous: critical only at σ_b = 0, σ_w = {sw:.6g} for every q (He et al. "
                     "2015 for ReLU); q^l keeps the first layer's q*")
        return (DEFAULT_Q_STAR if q_star is None else float(q_star)), sw, 0.0, tuple(notes)
    q = DEFAULT_Q_STAR if q_star is None else float(q_star)
    try:
        sw, sb = mf.critical_point(act, q)
        return q, float(sw), float(sb), ()
    except NoCriticalPointError as exc:
        near = _nearest_stable(act, q)
        if near is None:
            raise NoCriticalPointError(
                f"{act.name} has no stable critical point for any q* in [{Q_STAR_GRID[0]:.3g}, {Q_STAR_GRID[-1]:.3g}] "
                f"({exc}); no edge-of-chaos initialisation exists for it. The closest usable choice is an ordered "
                "network with a large depth scale: a σ_w just below critical_sigma_w where that exists, or another "
                "activation"
            ) from None
        if q_star is not None:
            raise NoCriticalPointError(
                f"{act.name} has no stable critical point at q* = {q:.6g} ({exc}); the nearest stable one is q* = "
                f"{near[0]:.6g} (σ_w = {near[1]:.6g}, σ_b = {near[2]:.6g}): pass q_star={near[0]:.6g}"
            ) from None
        notes.append(f"{act.name} has no stable critical point at the default q* = {q:.6g} (THEORY §6); the nearest "
                     f"stable one, q* = {near[0]:.6g}, is used (dynamical isometry needs small q*, which this "
                     "activation does not allow)")
        return near[0], near[1], near[2], tuple(notes)


def _generator(generator):
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool) and generator >= 0:
        return torch.Generator().manual_seed(generator)
    raise InvalidParameterError(f"generator must be a torch.Generator, a non-negative integer seed or None, "
                                f"got {generator!r}")


def _draw_(w: torch.Tensor, b, sigma_w: float, sigma_b: float, weights: str, gen) -> None:
    n_out, n_in = w.shape
    with torch.no_grad():
        tmp = torch.empty(n_out, n_in, dtype=torch.float64)
        if weights == "orthogonal":
            torch.nn.init.orthogonal_(tmp, gain=sigma_w * math.sqrt(max(n_out, n_in) / n_in), generator=gen)
        else:
            torch.nn.init.normal_(tmp, 0.0, sigma_w / math.sqrt(n_in), generator=gen)
        w.copy_(tmp)
        if b is not None:
            tb = torch.empty(n_out, dtype=torch.float64)
            torch.nn.init.normal_(tb, 0.0, 1.0, generator=gen)
            b.copy_(tb.mul_(sigma_b))


def initialize_(model, q_star: float | None = None, weights: str = "orthogonal", generator=None, *, inputs=None,
                input_norm: float | None = None, first_layer: str = "data", readout_sigma_w: float | None = None
                ) -> InitReport:
    """Initialise ``model`` in place on the stable edge of chaos at ``q_star`` (see the module docstring) and return
    an :class:`InitReport`.

    Parameters
    ----------
    model : nn.Sequential or a traced chain of Linear layers and elementwise activations (or a RandomMLP).
    q_star : the pre-activation variance every hidden layer should hold; None → :data:`DEFAULT_Q_STAR` where the
        activations allow it (else the nearest stable q*, noted).
    weights : ``"orthogonal"`` (default: dynamical isometry, Pennington et al. 2017) or ``"gaussian"``.
    generator : ``torch.Generator``, integer seed or None (the global RNG).
    inputs : data (``(T, N_0)``) whose mean |x|²/N_0 sets the first layer's scale; or ``input_norm`` = |x|²/N_0
        directly (default 1: standardised features).
    first_layer : ``"data"`` (q^1 = q* for that input norm) or ``"critical"`` (σ_w,1 = σ_w, σ_b,1 = σ_b).
    readout_sigma_w : the readout's σ_w (default: the hidden layers', THEORY §0; its σ_b likewise).
    """
    net = as_mlp(model)
    if weights not in ("orthogonal", "gaussian"):
        raise InvalidParameterError(f"weights must be 'orthogonal' or 'gaussian', got {weights!r}")
    if first_layer not in ("data", "critical"):
        raise InvalidParameterError(f"first_layer must be 'data' or 'critical', got {first_layer!r}")
    if q_star is not None and not (isinstance(q_star, (int, float)) and q_star > 0 and math.isfinite(q_star)):
        raise InvalidParameterError(f"q_star must be a positive number (a variance) or None, got {q_star!r}")
    if inputs is not None and input_norm is not None:
        raise InvalidParameterError("give inputs or input_norm, not both")
    if inputs is not None:
        x = net.as_input(inputs, "inputs")
        q_in = float(x.to(torch.float64).square().sum(dim=1).mean()) / net.input_width
    else:
        q_in = 1.0 if input_norm is None else float(input_norm)
    if not (q_in > 0 and math.isfinite(q_in)):
        raise InvalidParameterError(f"the input norm |x|²/N_0 must be positive, got {q_in!r}")
    L = net.depth
    acts = net.activations
    notes: list[str] = []
    points = {}
    for a in dict.fromkeys(acts):
        points[a] = stable_critical_point(a, q_star)
    for a, p in points.items():
        notes.extend(p[3])
    qs = {p[0] for p in points.values()}
    if len(qs) > 1:
        q = max(qs)  # mixed activations: the largest q* any of them needs, checked below for each
        notes.append(f"the activations need different q*: {sorted(qs)}; all layers use q* = {q:.6g}")
        for a in points:
            points[a] = stable_critical_point(a, q) if not a.is_homogeneous else points[a]
    q = next(iter(points.values()))[0] if len(qs) == 1 else max(qs)
    sw = [0.0] * (L + 1)
    sb = [0.0] * (L + 1)
    for l in range(L):
        a = acts[l]
        if l == 0 or acts[l - 1] == a:
            sw[l], sb[l] = points[a][1], points[a][2]
        else:  # critical for φ_l, fed by φ_{l-1}: σ_w² = 1/μ_1,l(q*), σ_b² = q* − σ_w² E_{q*}[φ_{l-1}²]
            sw2 = 1.0 / float(mf.gaussian_moments(a, q).mu1)
            sb2 = q - sw2 * float(mf.gaussian_moments(acts[l - 1], q).phi2)
            if sb2 < 0:
                raise NoCriticalPointError(
                    f"layer {l + 1} ({a.name} after {acts[l - 1].name}) would need σ_b² = {sb2:.3g} < 0 at q* = {q:.6g}"
                )
            sw[l], sb[l] = math.sqrt(sw2), math.sqrt(sb2)
    crit_sw, crit_sb = sw[min(1, L - 1)], sb[min(1, L - 1)]
    if q_star is None and all(a.is_homogeneous for a in acts):
        first_layer = "critical"  # He init throughout: q* is whatever the data give the first layer
        q = sw[0] ** 2 * q_in + sb[0] ** 2
    if first_layer == "data":
        if q <= sb[0] ** 2:
            raise InvalidParameterError(f"q* = {q:.6g} is below the first layer's σ_b² = {sb[0] ** 2:.6g}")
        sw[0] = math.sqrt((q - sb[0] ** 2) / q_in)
    sw[L] = crit_sw if readout_sigma_w is None else float(readout_sigma_w)
    sb[L] = crit_sb
    for l in range(L + 1):
        if not net.has_bias[l] and sb[l] > 0:
            notes.append(f"layer {net.layer_names[l] if hasattr(net, 'layer_names') else l + 1} has no bias but "
                         f"σ_b = {sb[l]:.3g} is needed: its q drifts from q*")
            sb[l] = 0.0
    gen = _generator(generator)
    for l in range(L + 1):
        _draw_(net.W[l], net.b[l] if net.has_bias[l] else None, sw[l], sb[l], weights, gen)
    network = mf.Network(net.widths, tuple(sw), tuple(sb), acts, weights, net.has_bias)
    chi = mf.propagate(network, q0=q_in).chi[1:]  # χ_l = σ_w,l² μ_1,l(q^l) on the inputs' trajectory (THEORY §8)
    return InitReport(network=network, q_star=q, requested_q_star=q_star, input_norm=q_in, weights=weights,
                      chi1=tuple(float(g) for g in chi), jacobian_mean=float(np.prod(chi)), notes=tuple(notes))
