"""A network whose layers differ: per-layer widths, weight and bias scales, activations and weight kinds (THEORY §8).

Layer l = 1..L+1 (the last is the readout) computes ``h^l = W^l x^{l-1} + b^l`` with ``W^l`` of shape (N_l, N_{l-1}),
``Var W^l_ij = (σ_w^l)²/N_{l-1}`` (Gaussian) or ``W^l = σ_w^l sqrt(max(N_l, N_{l-1})/N_{l-1}) O`` (orthogonal, THEORY §0),
``b^l_i ~ N(0, (σ_b^l)²)``, and for l ≤ L ``x^l = φ_l(h^l)``. σ_w and σ_b are standard deviations. The length map of
such a network is ``q^l = (σ_w^l)² E_{q^{l-1}}[φ_{l-1}²] + (σ_b^l)²`` with ``q^1 = (σ_w^1)² |x|²/N_0 + (σ_b^1)²``, and the
mean squared singular value of the input-output Jacobian is ``Π_{l=1}^L (σ_w^l)² μ_1,l(q^l)`` (THEORY §8).

A :class:`Network` read from weights (``empirical.read_network``) also carries the standard errors of its estimated
σ_w and σ_b (THEORY §8: relative ≈ √(2/(N_l N_{l-1})) and ≈ √(2/N_l)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meanfield import _validate
from meanfield.activations import Activation, get_activation
from meanfield.errors import InvalidParameterError

__all__ = ["Network"]

WEIGHT_KINDS = ("gaussian", "orthogonal")


def _tuple(value, n: int, name: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InvalidParameterError(f"{name} has {len(value)} entries, the network needs {n} (one per layer)")
        return tuple(value)
    return (value,) * n


@dataclass(frozen=True)
class Network:
    """Per-layer description of a fully connected network (THEORY §0, §8).

    Attributes
    ----------
    widths : ``(N_0, N_1, …, N_L, C)``: input, hidden and output widths (L + 2 entries).
    sigma_w, sigma_b : L + 1 standard deviations, one per weight layer (the readout last); σ_w > 0, σ_b ≥ 0.
    activations : L :class:`~meanfield.Activation` s, one per hidden layer (names or expressions are accepted and
        converted; one value is used for every layer).
    weights : L + 1 weight kinds, ``"gaussian"`` or ``"orthogonal"`` (one value for every layer).
    biases : L + 1 booleans: whether layer l has a bias at all (σ_b is then 0 where it has none).
    sigma_w_error, sigma_b_error : standard errors of σ_w and σ_b where they were estimated from weights, else None.

    Scalars broadcast to every layer: ``Network((784, 256, 256, 10), 1.2, 0.1, "tanh")``.
    """

    widths: tuple
    sigma_w: tuple
    sigma_b: tuple
    activations: tuple
    weights: tuple = "gaussian"
    biases: tuple = True
    sigma_w_error: tuple | None = field(default=None, compare=False)
    sigma_b_error: tuple | None = field(default=None, compare=False)

    def __post_init__(self):
        try:
            widths = tuple(self.widths)
        except TypeError:
            raise InvalidParameterError(f"widths must be a sequence (N_0, N_1, …, N_L, C), got {self.widths!r}") from None
        if len(widths) < 3:
            raise InvalidParameterError(
                f"widths must hold at least (N_0, N_1, C) — input, one hidden layer, output — got {widths!r}"
            )
        widths = tuple(_validate.integer(w, f"widths[{i}]") for i, w in enumerate(widths))
        L = len(widths) - 2
        sw = tuple(float(_validate.positive(v, f"sigma_w[{i}]"))
                   for i, v in enumerate(_tuple(self.sigma_w, L + 1, "sigma_w")))
        sb = tuple(float(_validate.nonnegative(v, f"sigma_b[{i}]"))
                   for i, v in enumerate(_tuple(self.sigma_b, L + 1, "sigma_b")))
        acts = tuple(get_activation(a) for a in _tuple(self.activations, L, "activations"))
        kinds = tuple(_validate.choice(k, f"weights[{i}]", WEIGHT_KINDS)
                      for i, k in enumerate(_tuple(self.weights, L + 1, "weights")))
        has_b = tuple(bool(b) for b in _tuple(self.biases, L + 1, "biases"))
        for i, (b, s) in enumerate(zip(has_b, sb)):
            if not b and s != 0.0:
                raise InvalidParameterError(f"layer {i + 1} has no bias but sigma_b[{i}] = {s}")
        for name in ("sigma_w_error", "sigma_b_error"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(float(_validate.nonnegative(e, f"{name}[{i}]", kind="a standard error"))
                          for i, e in enumerate(_tuple(v, L + 1, name)))
                object.__setattr__(self, name, v)
        for k, v in (("widths", widths), ("sigma_w", sw), ("sigma_b", sb), ("activations", acts), ("weights", kinds),
                     ("biases", has_b)):
            object.__setattr__(self, k, v)

    @classmethod
    def uniform(cls, activation, sigma_w: float, sigma_b: float, depth: int, width: int, input_width: int | None = None,
                output_width: int = 1, weights: str = "gaussian", biases: bool = True) -> "Network":
        """The networks of the uniform API: ``depth`` hidden layers of ``width``, one σ_w, σ_b, activation and weight
        kind for every layer, the readout included (THEORY §0); ``input_width`` defaults to ``width``.

        ``biases=False`` means the layers have no biases at all, so ``sigma_b`` must be 0. (In
        :func:`meanfield.fisher_statistics`'s uniform call ``biases=False`` means something else: biases of scale σ_b
        that are not trained; a :class:`Network` trains every bias it has.)"""
        if not biases and float(_validate.nonnegative(sigma_b, "sigma_b")) != 0.0:
            raise InvalidParameterError(
                f"biases=False: the layers have no biases, so sigma_b must be 0, got {sigma_b!r} (a Network trains every "
                "bias it has; untrained biases of scale σ_b exist only in fisher_statistics' uniform call)"
            )
        L = _validate.integer(depth, "depth")
        n = _validate.integer(width, "width")
        n0 = n if input_width is None else _validate.integer(input_width, "input_width")
        c = _validate.integer(output_width, "output_width")
        return cls((n0,) + (n,) * L + (c,), sigma_w, sigma_b, activation, weights, biases)

    # ---------------------------------------------------------------------------------------------------- shape
    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.widths) - 2

    @property
    def input_width(self) -> int:
        return self.widths[0]

    @property
    def hidden_widths(self) -> tuple:
        return self.widths[1:-1]

    @property
    def output_width(self) -> int:
        return self.widths[-1]

    @property
    def is_uniform(self) -> bool:
        """One activation, σ_w, σ_b, weight kind and bias choice for every layer, equal hidden widths: the case the
        uniform functions (``propagate``, ``jacobian_spectrum``, ``fisher_statistics``) describe exactly."""
        return (len(set(self.activations)) == 1 and len(set(self.sigma_w)) == 1 and len(set(self.sigma_b)) == 1
                and len(set(self.weights)) == 1 and len(set(self.hidden_widths)) == 1 and len(set(self.biases)) == 1)

    def uniform_parameters(self) -> tuple:
        """(activation, σ_w, σ_b, depth, width, weights) of a uniform network; raises when it is not uniform."""
        if not self.is_uniform:
            raise InvalidParameterError(f"the network's layers differ: {self!r}")
        return (self.activations[0], self.sigma_w[0], self.sigma_b[0], self.depth, self.hidden_widths[0],
                self.weights[0])

    @property
    def activation(self) -> Activation:
        """The activation when every hidden layer has the same one (raises otherwise)."""
        if len(set(self.activations)) != 1:
            raise InvalidParameterError(f"the hidden layers have different activations: {self.activations}")
        return self.activations[0]

    def layers(self) -> list[dict]:
        """One dict per weight layer l = 1..L+1: fan_in, fan_out, sigma_w, sigma_b (with their errors when estimated),
        activation (None for the readout), weights, bias."""
        out = []
        for i in range(self.depth + 1):
            row = dict(layer=i + 1, fan_in=self.widths[i], fan_out=self.widths[i + 1], sigma_w=self.sigma_w[i],
                       sigma_b=self.sigma_b[i], activation=self.activations[i].name if i < self.depth else None,
                       weights=self.weights[i], bias=self.biases[i])
            if self.sigma_w_error is not None:
                row["sigma_w_error"] = self.sigma_w_error[i]
            if self.sigma_b_error is not None:
                row["sigma_b_error"] = self.sigma_b_error[i]
            out.append(row)
        return out

    def __repr__(self):
        if self.is_uniform:
            act, sw, sb, L, n, w = self.uniform_parameters()
            return (f"Network.uniform({act.name!r}, sigma_w={sw:.6g}, sigma_b={sb:.6g}, depth={L}, width={n}, "
                    f"input_width={self.input_width}, output_width={self.output_width}, weights={w!r}"
                    f"{'' if self.biases[0] else ', biases=False'})")
        lines = [f"Network(widths={list(self.widths)}, depth={self.depth})"]

        def pm(v, e):
            return f"{v:.4g}" if e is None else f"{v:.4g}±{e:.2g}"

        for r in self.layers():
            sw = pm(r["sigma_w"], r.get("sigma_w_error"))
            sb = pm(r["sigma_b"], r.get("sigma_b_error")) if r["bias"] else "-"
            name = "readout" if r["activation"] is None else f"φ={r['activation']}"
            lines.append(f"  {r['layer']:>3}: {r['fan_in']:>5} → {r['fan_out']:<5} σ_w={sw:<14} σ_b={sb:<14} "
                         f"{r['weights']:<10} {name}")
        return "\n".join(lines)

    def __str__(self):
        return repr(self)

    # ---------------------------------------------------------------------------------------- the results' records
    def to_dict(self) -> dict:
        """Plain data (JSON-ready): widths, per-layer σ_w, σ_b, activation names, weight kinds, bias flags and the
        standard errors where estimated. :meth:`from_dict` rebuilds the network."""
        return dict(widths=list(self.widths), sigma_w=list(self.sigma_w), sigma_b=list(self.sigma_b),
                    activations=[a.name for a in self.activations], weights=list(self.weights),
                    biases=list(self.biases),
                    sigma_w_error=None if self.sigma_w_error is None else list(self.sigma_w_error),
                    sigma_b_error=None if self.sigma_b_error is None else list(self.sigma_b_error))

    @classmethod
    def from_dict(cls, data: dict) -> "Network":
        """The network back from :meth:`to_dict`."""
        unknown = set(data) - {"widths", "sigma_w", "sigma_b", "activations", "weights", "biases", "sigma_w_error",
                               "sigma_b_error"}
        if unknown:
            raise InvalidParameterError(f"unknown keys for a Network: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def summary(self) -> dict:
        """The scalar fields a result of the uniform API records, for this network: ``activation`` (the common name,
        else the names joined by ``,``), ``sigma_w`` and ``sigma_b`` (the common value over all L + 1 layers, else
        NaN), ``weights`` (the common kind, else ``"mixed"``). The full description goes in the result's ``network``
        field (:meth:`to_dict`)."""
        names = [a.name for a in self.activations]
        return dict(
            activation=names[0] if len(set(names)) == 1 else ",".join(names),
            sigma_w=self.sigma_w[0] if len(set(self.sigma_w)) == 1 else float("nan"),
            sigma_b=self.sigma_b[0] if len(set(self.sigma_b)) == 1 else float("nan"),
            weights=self.weights[0] if len(set(self.weights)) == 1 else "mixed",
        )

    def sigma_w_relative_error(self) -> tuple:
        """Where σ_w was estimated: its standard error relative to it; else zeros."""
        if self.sigma_w_error is None:
            return (0.0,) * (self.depth + 1)
        return tuple(e / s for e, s in zip(self.sigma_w_error, self.sigma_w))
