"""Random multilayer perceptrons at initialisation, in the project's convention (THEORY §0).

``depth`` L is the number of hidden layers. Layer l = 1..L computes ``h^l = W^l x^{l-1} + b^l`` and ``x^l = φ(h^l)``; the
readout ``f = W^{L+1} x^L + b^{L+1}`` (C = ``output_width`` outputs) is drawn like the hidden layers, so the network has L+1
weight layers (Karakida's L is our L+1; Pennington's L, the number of D·W pairs in the Jacobian, is our L).

Weights (σ_w, σ_b are standard deviations, not variances):

* ``"gaussian"``: ``W_ij ~ N(0, σ_w²/N_{l-1})``;
* ``"orthogonal"``: ``W = s·O`` with O Haar-distributed with orthonormal columns (N_l ≥ N_{l-1}) or rows (N_l < N_{l-1}),
  drawn by QR of a Gaussian matrix with the sign fix ``Q·diag(sign R_ii)`` (Mezzadri 2007, "How to generate random
  matrices from the classical compact groups", Notices AMS 54), and ``s = σ_w·sqrt(max(N_l, N_{l-1})/N_{l-1})``, so that
  ``E|Wx|²/N_l = σ_w²|x|²/N_{l-1}`` exactly as for Gaussian weights (and ``E WᵀW = σ_w² N_l/N_{l-1} I``). For
  N_l ≥ N_{l-1} this is THEORY §0's ``σ_w sqrt(N_l/N_{l-1})·O``; for a narrowing layer (the readout with C < N above all)
  the factor is σ_w, because O with orthonormal rows already has ``E|Ox|² = (N_l/N_{l-1})|x|²``;
* biases ``b_i ~ N(0, σ_b²)`` in both cases.

Draws are reproducible: all randomness comes from one ``torch.Generator`` (or an integer seed), consumed in the order
W^1, b^1, W^2, b^2, …, W^{L+1}, b^{L+1}, in float64 whatever the network's dtype. The bias draws do not depend on σ_b
(they are scaled afterwards), so networks with the same seed and different σ_b share their weights and bias directions.
A seed gives different networks on CPU and CUDA (different generators).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import torch

from meanfield.activations import Activation
from meanfield.errors import InvalidParameterError, NumericalError

from empirical._torch_activations import TorchActivation, torch_activation

__all__ = ["RandomMLP", "LinearChain", "ForwardPass", "default_device"]

WEIGHT_KINDS = ("gaussian", "orthogonal")
DTYPES = (torch.float64, torch.float32)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class ForwardPass:
    """Everything one forward pass of a :class:`RandomMLP` computes, rows indexed by input.

    Attributes
    ----------
    post : ``(x^0, x^1, …, x^L)``, each ``(T, N_l)``; ``x^0`` is the input.
    pre : ``(h^1, …, h^L)``, each ``(T, N_l)``, or None when not kept.
    derivatives : ``(φ'(h^1), …, φ'(h^L))`` (the diagonals of D_l), or None when not requested.
    output : ``f = W^{L+1} x^L + b^{L+1}``, ``(T, C)``.
    """

    post: tuple
    pre: tuple | None
    derivatives: tuple | None
    output: torch.Tensor


def _check_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise InvalidParameterError(f"{name} must be an integer ≥ {minimum}, got {v!r}")
    return int(v)


def _check_real(name, v, *, positive):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise InvalidParameterError(f"{name} must be a finite number, got {v!r}")
    v = float(v)
    if positive and v <= 0:
        raise InvalidParameterError(f"{name} must be > 0 (a standard deviation), got {v!r}")
    if not positive and v < 0:
        raise InvalidParameterError(f"{name} must be ≥ 0 (a standard deviation), got {v!r}")
    return v


def _haar(rows: int, cols: int, generator: torch.Generator, device) -> torch.Tensor:
    """A ``rows × cols`` Haar matrix with orthonormal columns (rows ≥ cols) or rows (rows < cols), in float64.

    QR of a Gaussian matrix, then ``Q·diag(sign R_ii)`` (Mezzadri 2007) so that the law is Haar, not biased by the
    QR routine's sign convention.
    """
    tall = rows >= cols
    n, m = (rows, cols) if tall else (cols, rows)
    a = torch.randn(n, m, generator=generator, device=device, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    d = torch.sign(torch.diagonal(r))
    d = torch.where(d == 0, torch.ones_like(d), d)
    q = q * d
    return q if tall else q.T.contiguous()


class LinearChain:
    """What the measurements need of a network ``x ↦ W^{L+1} φ_L(⋯ φ_1(W^1 x + b^1) ⋯) + b^{L+1}``: the weights ``W``, biases
    ``b`` (zeros where a layer has none, see ``has_bias``), per-layer torch activations ``phis``, ``depth``, ``widths``,
    ``hidden_widths``, ``input_width``, ``output_width``; and the forward passes built on them. Shared by
    :class:`RandomMLP` and the view of a user's model (:func:`empirical.models.as_mlp`)."""

    # ------------------------------------------------------------------------------------------------------ properties
    @property
    def width(self) -> int:
        """The hidden width N when all hidden layers have it (raises otherwise)."""
        if len(set(self.hidden_widths)) != 1:
            raise InvalidParameterError(f"the hidden widths {self.hidden_widths} differ: there is no single width")
        return self.hidden_widths[0]

    @property
    def device(self) -> torch.device:
        return self.W[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.W[0].dtype

    def num_parameters(self, biases: bool = True) -> int:
        """P = Σ_l N_l N_{l-1} (+ Σ_l N_l over the layers that have a bias, with ``biases``), the readout included."""
        ws = self.widths
        nb = sum(n for n, has in zip(ws[1:], self.has_bias) if has)
        return sum(a * b for a, b in zip(ws[:-1], ws[1:])) + (nb if biases else 0)

    # ------------------------------------------------------------------------------------------------------- forward
    def as_input(self, x, name: str = "X") -> torch.Tensor:
        """``x`` as a ``(T, N_0)`` tensor of the network's dtype and device (a 1-D input becomes one row)."""
        t = torch.as_tensor(x)
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
            raise InvalidParameterError(f"{name} must be real numbers, got dtype {t.dtype}")
        t = t.to(device=self.device, dtype=self.dtype)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[1] != self.input_width or t.shape[0] == 0:
            raise InvalidParameterError(
                f"{name} must have shape (n_inputs, {self.input_width}) or ({self.input_width},), got {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise InvalidParameterError(f"{name} has non-finite entries")
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): ``(T, N_0) → (T, C)`` or ``(N_0,) → (C,)``."""
        h = x
        for l in range(self.depth):
            h = self.phis[l].phi(torch.nn.functional.linear(h, self.W[l], self.b[l]))
        return torch.nn.functional.linear(h, self.W[-1], self.b[-1])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x^L, the last hidden layer's post-activations (``(T, N_0) → (T, N_L)`` or ``(N_0,) → (N_L,)``)."""
        h = x
        for l in range(self.depth):
            h = self.phis[l].phi(torch.nn.functional.linear(h, self.W[l], self.b[l]))
        return h

    def forward_all(
        self, x, *, pre: bool = True, derivatives: bool = False, check_finite: bool = False
    ) -> ForwardPass:
        """One forward pass keeping every layer: see :class:`ForwardPass`.

        ``x`` is ``(T, N_0)`` or ``(N_0,)`` (then T = 1). With ``check_finite`` a non-finite pre-activation raises
        :class:`~meanfield.errors.NumericalError` naming the first layer where it appeared.
        """
        x0 = self.as_input(x)
        posts, pres, ders = [x0], [], []
        h_prev = x0
        for l in range(self.depth):
            h = torch.addmm(self.b[l], h_prev, self.W[l].T)
            if check_finite:
                _check_finite(h, f"pre-activation h^{l + 1} (hidden layer {l + 1} of {self.depth})")
            if derivatives:
                y, d = self.phis[l].phi_and_dphi(h)
                ders.append(d)
            else:
                y = self.phis[l].phi(h)
            if pre:
                pres.append(h)
            posts.append(y)
            h_prev = y
        f = torch.addmm(self.b[-1], h_prev, self.W[-1].T)
        if check_finite:
            _check_finite(f, f"output f (readout layer {self.depth + 1})")
        return ForwardPass(
            post=tuple(posts),
            pre=tuple(pres) if pre else None,
            derivatives=tuple(ders) if derivatives else None,
            output=f,
        )



class RandomMLP(LinearChain, torch.nn.Module):
    """A fully connected network at random initialisation (THEORY §0).

    Parameters
    ----------
    input_width : N_0.
    width : hidden width N, or a sequence ``(N_1, …, N_L)`` of per-layer widths (its length must equal ``depth``).
    depth : L ≥ 1, the number of hidden layers (the network has L+1 weight layers with the readout).
    output_width : C, the number of outputs of the readout.
    activation : an :class:`~meanfield.activations.Activation`, a registry name or an expression in ``x``.
    sigma_w, sigma_b : standard deviations (σ_w > 0, σ_b ≥ 0); papers often quote σ_w², σ_b².
    weights : ``"gaussian"`` or ``"orthogonal"`` (see the module docstring for the scaling).
    device : torch device; None → CUDA if available, else CPU.
    dtype : ``torch.float64`` (default, for measurements) or ``torch.float32``.
    generator : a ``torch.Generator`` (used as given, so a seeded generator reproduces the network), an integer seed,
        or None (a fresh, randomly seeded generator; its seed is kept in :attr:`seed`).

    Attributes
    ----------
    W, b : ``ParameterList`` of the L+1 weight matrices ``W[l-1]`` (shape ``(N_l, N_{l-1})``) and biases. They are
        created with ``requires_grad=False`` (a network to measure, not to train: no autograd graphs are built);
        ``net.requires_grad_(True)`` makes it trainable.
    widths : ``(N_0, N_1, …, N_L, C)``.
    phi : the :class:`~empirical._torch_activations.TorchActivation` (φ, φ' in torch).
    seed : the initial seed of the generator used.
    """

    def __init__(
        self,
        input_width: int,
        width: int | Sequence[int],
        depth: int,
        output_width: int,
        activation,
        sigma_w: float,
        sigma_b: float,
        weights: str = "gaussian",
        device=None,
        dtype: torch.dtype = torch.float64,
        generator: torch.Generator | int | None = None,
    ):
        super().__init__()
        n0 = _check_int("input_width", input_width)
        depth = _check_int("depth", depth)
        c = _check_int("output_width", output_width)
        if isinstance(width, numbers.Integral) and not isinstance(width, bool):
            hidden = (_check_int("width", width),) * depth
        elif isinstance(width, Sequence) and not isinstance(width, str):
            hidden = tuple(_check_int(f"width[{i}]", w) for i, w in enumerate(width))
            if len(hidden) != depth:
                raise InvalidParameterError(
                    f"width has {len(hidden)} entries but depth={depth}: give one width per hidden layer"
                )
        else:
            raise InvalidParameterError(f"width must be an integer ≥ 1 or a sequence of them, got {width!r}")
        sigma_w = _check_real("sigma_w", sigma_w, positive=True)
        sigma_b = _check_real("sigma_b", sigma_b, positive=False)
        if weights not in WEIGHT_KINDS:
            raise InvalidParameterError(f"weights must be one of {WEIGHT_KINDS}, got {weights!r}")
        if dtype not in DTYPES:
            raise InvalidParameterError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
        device = default_device() if device is None else torch.device(device)

        self.phi: TorchActivation = torch_activation(activation)
        self.activation: Activation = self.phi.activation
        self.input_width = n0
        self.hidden_widths = hidden
        self.depth = depth
        self.output_width = c
        self.widths = (n0,) + hidden + (c,)
        self.sigma_w = sigma_w
        self.sigma_b = sigma_b
        self.weights = weights

        gen = self._generator(generator, device)
        self.seed = gen.initial_seed()
        gdev = gen.device
        W, b = [], []
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            if weights == "gaussian":
                w = torch.randn(fan_out, fan_in, generator=gen, device=gdev, dtype=torch.float64)
                w.mul_(sigma_w / math.sqrt(fan_in))
            else:
                w = _haar(fan_out, fan_in, gen, gdev)
                w.mul_(sigma_w * math.sqrt(max(fan_out, fan_in) / fan_in))
            bias = torch.randn(fan_out, generator=gen, device=gdev, dtype=torch.float64).mul_(sigma_b)
            # row-major like nn.Linear's weights (QR leaves Q column-major): the products W·x and x·Wᵀ of the
            # measurements then take BLAS's faster layout (empirical.measure._jacobian)
            W.append(torch.nn.Parameter(w.to(device=device, dtype=dtype).contiguous(), requires_grad=False))
            b.append(torch.nn.Parameter(bias.to(device=device, dtype=dtype), requires_grad=False))
        self.W = torch.nn.ParameterList(W)
        self.b = torch.nn.ParameterList(b)

    @staticmethod
    def _generator(generator, device) -> torch.Generator:
        if isinstance(generator, torch.Generator):
            return generator
        gen = torch.Generator(device=device)
        if generator is None:
            gen.seed()
        elif isinstance(generator, numbers.Integral) and not isinstance(generator, bool) and generator >= 0:
            gen.manual_seed(int(generator))
        else:
            raise InvalidParameterError(
                f"generator must be a torch.Generator, a non-negative integer seed or None, got {generator!r}"
            )
        return gen

    @property
    def phis(self) -> tuple:
        """The torch activation of every hidden layer (all :attr:`phi`)."""
        return (self.phi,) * self.depth

    @property
    def activations(self) -> tuple:
        """The meanfield activation of every hidden layer (all :attr:`activation`)."""
        return (self.activation,) * self.depth

    @property
    def has_bias(self) -> tuple:
        """Whether each of the L+1 layers has a bias (all do)."""
        return (True,) * (self.depth + 1)

    def extra_repr(self) -> str:
        w = self.hidden_widths[0] if len(set(self.hidden_widths)) == 1 else list(self.hidden_widths)
        return (
            f"input_width={self.input_width}, width={w}, depth={self.depth}, output_width={self.output_width}, "
            f"activation={self.activation.name!r}, sigma_w={self.sigma_w!r}, sigma_b={self.sigma_b!r}, "
            f"weights={self.weights!r}, dtype={self.dtype}, seed={self.seed}"
        )

def _check_finite(t: torch.Tensor, what: str) -> None:
    """Raise NumericalError when ``t`` has a non-finite entry. Fast path: the sum of finite entries is finite (a
    reduction, several times cheaper than ``isfinite(t).all()``); only when it is not are the entries inspected."""
    if bool(torch.isfinite(t.sum())):
        return
    finite = torch.isfinite(t)
    if bool(finite.all()):  # finite entries whose sum overflowed: not an error (yet)
        return
    vals = t[finite]
    big = float(vals.abs().max()) if vals.numel() else float("nan")
    raise NumericalError(
        f"non-finite values in {what} (largest finite magnitude {big:.3g}): the network over- or underflows; "
        "use fewer layers, a smaller sigma_w, or an activation that does not grow (e.g. tanh)"
    )
