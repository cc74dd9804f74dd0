"""Ordinary PyTorch models as the networks of the theory (THEORY §0, §8).

A model qualifies when its forward pass is a chain ``Linear → activation → Linear → … → Linear``: ``nn.Sequential``
(nested too) or any module whose ``forward`` traces (``torch.fx``) to such a chain, ``nn.Linear`` layers with or without
bias and elementwise activations between them. :func:`as_mlp` reads it into a :class:`ModelMLP`, a view that shares the
model's weight tensors (no copy) and offers what :mod:`empirical.measure` needs — so every measurement accepts the model
itself and the layerwise-Gram FIM runs the same code at the same speed as on a :class:`~empirical.RandomMLP`.

Activations map to the theory's (:func:`meanfield.get_activation`):

==========================================  ===================================================================
torch                                        meanfield
==========================================  ===================================================================
``nn.Tanh``, ``torch.tanh``                   ``"tanh"``
``nn.ReLU``, ``F.relu``                       ``"relu"``
``nn.LeakyReLU(a)``                           ``"leaky_relu"`` with ``negative_slope=a``
``nn.GELU()`` / ``nn.GELU("tanh")``           ``"gelu"`` / ``0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))``
``nn.SiLU``                                   ``"silu"``
``nn.ELU(a)``, ``nn.SELU``                    ``"elu"`` with ``alpha=a``, ``"selu"``
``nn.Sigmoid``                                ``"sigmoid"``
``nn.Softplus(β)``                            ``"softplus"`` (β = 1) or ``log(1 + e^{βx})/β``
``nn.Hardtanh(a, b)``                         ``"hard_tanh"`` (−1, 1) or ``Min(Max(x, a), b)``
``nn.ReLU6``, ``nn.Mish``, ``nn.Softsign``,    expressions in x
``nn.Tanhshrink``
``nn.Identity``, ``nn.Dropout`` in eval mode  nothing (skipped)
==========================================  ===================================================================

Several activations in a row compose (their expressions are substituted). A user's own elementwise module class or
function is mapped by :func:`register_activation`. Everything else — convolutions, normalisation, dropout in training
mode, attention, branches or skip connections, a non-elementwise activation such as softmax, an activation after the
last Linear layer, a model with fewer than two Linear layers — raises :class:`~meanfield.errors.InvalidParameterError`
naming the layer.

Softplus in torch switches to the identity above ``βx = 20`` (an error below e^{−20}); the theory uses the exact form.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from meanfield.activations import X as _X
from meanfield.activations import Activation, get_activation
from meanfield.errors import InvalidParameterError

from empirical._torch_activations import TorchActivation, torch_activation
from empirical.networks import LinearChain, RandomMLP

__all__ = ["ModelMLP", "as_mlp", "register_activation", "activation_of"]

# torch's tanh approximation of GELU (Hendrycks & Gimpel 2016, eq. after (2); torch.nn.GELU(approximate="tanh"))
GELU_TANH = "0.5*x*(1 + tanh(0.7978845608028654*(x + 0.044715*x**3)))"

_REGISTERED: dict = {}  # module class or function -> Activation
_VERSION = [0]  # bumped by register_activation: invalidates cached traces

_NOT_ELEMENTWISE = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d, nn.GLU, nn.PReLU, nn.MultiheadAttention)
_NOT_ELEMENTWISE_FUNCTIONS = {F.softmax, F.log_softmax, F.softmin, F.glu, F.normalize, torch.softmax,
                              torch.log_softmax, F.prelu}


def register_activation(obj, activation, **params) -> Activation:
    """Map a user's elementwise activation — an ``nn.Module`` subclass or a function used in ``forward`` — to a
    meanfield activation (a registry name with ``params``, an expression in ``x`` such as ``"x*tanh(x)"``, or an
    :class:`~meanfield.Activation`). Returns the activation.

    A registered function is traced as one step (``torch.fx`` autowrap): it must be a global of the module that defines
    the model's ``forward``, under a name without a leading underscore (torch.fx autowraps public names only). That the
    expression is what the module computes is the caller's statement: the measurements use the expression's φ, φ'
    (:mod:`empirical._torch_activations`)."""
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)) and not callable(obj):
        raise InvalidParameterError(f"register_activation needs an nn.Module subclass or a function, got {obj!r}")
    act = get_activation(activation, **params)
    _REGISTERED[obj] = act
    _VERSION[0] += 1
    return act


def _module_activation(m: nn.Module) -> Activation | None:
    """The activation of a known elementwise module, None for one that is skipped (Identity, eval-mode Dropout);
    raises for anything else."""
    for cls in type(m).__mro__:
        if cls in _REGISTERED:
            return _REGISTERED[cls]
    if isinstance(m, nn.Tanh):
        return get_activation("tanh")
    if isinstance(m, nn.ReLU):
        return get_activation("relu")
    if isinstance(m, nn.LeakyReLU):
        return get_activation("leaky_relu", negative_slope=float(m.negative_slope))
    if isinstance(m, nn.GELU):
        return get_activation("gelu") if m.approximate == "none" else get_activation(GELU_TANH)
    if isinstance(m, nn.SiLU):
        return get_activation("silu")
    if isinstance(m, nn.SELU):
        return get_activation("selu")
    if isinstance(m, nn.CELU):
        return get_activation(f"Piecewise((x, x > 0), ({float(m.alpha)!r}*(exp(x/{float(m.alpha)!r}) - 1), True))")
    if isinstance(m, nn.ELU):
        return get_activation("elu", alpha=float(m.alpha))
    if isinstance(m, nn.Sigmoid):
        return get_activation("sigmoid")
    if isinstance(m, nn.Softplus):
        b = float(m.beta)
        return get_activation("softplus") if b == 1.0 else get_activation(f"log(1 + exp({b!r}*x))/{b!r}")
    if isinstance(m, nn.ReLU6):
        return get_activation("Min(Max(x, 0), 6)")
    if isinstance(m, nn.Hardtanh):
        lo, hi = float(m.min_val), float(m.max_val)
        if (lo, hi) == (-1.0, 1.0):
            return get_activation("hard_tanh")
        if not lo < hi:
            raise InvalidParameterError(f"Hardtanh({lo}, {hi}) needs min_val < max_val")
        return get_activation(f"Min(Max(x, {lo!r}), {hi!r})")
    if isinstance(m, nn.Mish):
        return get_activation("x*tanh(log(1 + exp(x)))")
    if isinstance(m, nn.Softsign):
        return get_activation("x/(1 + Abs(x))")
    if isinstance(m, nn.Tanhshrink):
        return get_activation("x - tanh(x)")
    return None


def activation_of(obj) -> Activation:
    """The meanfield activation of an activation module (``nn.Tanh()``, ``nn.LeakyReLU(0.2)``, a registered class's
    instance) or a registered function; raises :class:`~meanfield.errors.InvalidParameterError` otherwise."""
    if isinstance(obj, nn.Module):
        act = _module_activation(obj)
        if act is not None:
            return act
        raise InvalidParameterError(
            f"{type(obj).__name__} is not a known elementwise activation; map it with "
            f"empirical.register_activation({type(obj).__name__}, 'expression in x')"
        )
    if obj in _REGISTERED:
        return _REGISTERED[obj]
    act = _FUNCTIONS.get(obj)
    if act is not None:
        return get_activation(act)
    raise InvalidParameterError(f"{obj!r} is not a known activation; map it with empirical.register_activation")


_FUNCTIONS = {  # elementwise torch functions without parameters -> registry name
    torch.tanh: "tanh",
    F.tanh: "tanh",
    torch.relu: "relu",
    F.relu: "relu",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    F.silu: "silu",
    F.selu: "selu",
    torch.selu: "selu",
    torch.erf: "erf",
    F.mish: "x*tanh(log(1 + exp(x)))",
    F.softsign: "x/(1 + Abs(x))",
    F.relu6: "Min(Max(x, 0), 6)",
}
_METHODS = {"tanh": "tanh", "tanh_": "tanh", "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid",
            "sigmoid_": "sigmoid", "erf": "erf"}


def _arg(node, i, name, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _function_activation(node) -> Activation | None:
    """The activation of a call_function / call_method node, or None when the target is not one we know."""
    t = node.target
    if node.op == "call_method":
        return get_activation(_METHODS[t]) if t in _METHODS else None
    if t in _REGISTERED:
        return _REGISTERED[t]
    if t in _FUNCTIONS:
        return get_activation(_FUNCTIONS[t])
    if t is F.leaky_relu:
        return get_activation("leaky_relu", negative_slope=float(_arg(node, 1, "negative_slope", 0.01)))
    if t is F.elu:
        return get_activation("elu", alpha=float(_arg(node, 1, "alpha", 1.0)))
    if t is F.gelu:
        return get_activation("gelu") if _arg(node, 1, "approximate", "none") == "none" else get_activation(GELU_TANH)
    if t is F.softplus:
        b = float(_arg(node, 1, "beta", 1.0))
        return get_activation("softplus") if b == 1.0 else get_activation(f"log(1 + exp({b!r}*x))/{b!r}")
    if t is F.hardtanh:
        lo, hi = float(_arg(node, 1, "min_val", -1.0)), float(_arg(node, 2, "max_val", 1.0))
        return get_activation("hard_tanh") if (lo, hi) == (-1.0, 1.0) else get_activation(
            f"Min(Max(x, {lo!r}), {hi!r})")
    return None


# --------------------------------------------------------------------------------------------------------- tracing
@dataclass(frozen=True)
class _Step:
    kind: str  # "linear" or "activation"
    name: str  # where it is in the model (qualified module name or the function)
    module: nn.Module | None = None
    activation: Activation | None = None


class _Tracer(torch.fx.Tracer):
    """Modules of torch.nn and registered activation classes are leaves; every other module is traced through."""

    def is_leaf_module(self, m, qualname):
        if any(cls in _REGISTERED for cls in type(m).__mro__):
            return True
        return super().is_leaf_module(m, qualname)


def _describe(m: nn.Module) -> str:
    return f"{type(m).__name__}({m.extra_repr()})" if m.extra_repr() else type(m).__name__


def _unsupported(where: str, what: str) -> InvalidParameterError:
    hint = "; map an elementwise one with empirical.register_activation" if "activation" in what else ""
    return InvalidParameterError(
        f"layer {where}: {what}. The theory describes chains of nn.Linear layers and elementwise activations "
        f"(THEORY §0){hint}"
    )


def _trace_steps(model: nn.Module) -> list[_Step]:
    if isinstance(model, nn.Sequential):
        return _sequential_steps(model, "")
    fns = tuple(f for f in _REGISTERED if not isinstance(f, type))
    try:
        graph = _Tracer(autowrap_functions=fns).trace(model)
    except Exception as exc:  # torch.fx raises many kinds on data-dependent control flow
        raise InvalidParameterError(
            f"could not trace {type(model).__name__}.forward with torch.fx ({type(exc).__name__}: {exc}); write the "
            "model as an nn.Sequential of Linear layers and activations"
        ) from None
    modules = dict(model.named_modules())
    steps: list[_Step] = []
    current = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise InvalidParameterError(f"{type(model).__name__}.forward takes more than one input")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise _unsupported("output", "the output is not the end of the chain of layers (a branch or tuple)")
            break
        where = f"{node.name} ({node.op} {node.target})"
        if node.op == "get_attr":
            raise _unsupported(where, "the forward reads a parameter or buffer directly; use nn.Linear modules")
        inputs = node.all_input_nodes
        if inputs != [current] or len(current.users) != 1:
            raise _unsupported(where, "the forward is not a single chain (a branch, a skip connection or an "
                                      "operation on two tensors)")
        if node.op == "call_module":
            m = modules[node.target]
            steps.extend(_module_steps(m, str(node.target)))
        else:
            if node.target in _NOT_ELEMENTWISE_FUNCTIONS:
                raise _unsupported(where, f"{getattr(node.target, '__name__', node.target)} is not elementwise")
            if node.target in (F.dropout, torch.dropout) and model.training and float(_arg(node, 1, "p", 0.5)) > 0:
                raise _unsupported(where, "dropout in training mode (call model.eval())")
            if node.target in (F.dropout, torch.dropout):
                current = node
                continue
            act = _function_activation(node)
            if act is None:
                raise _unsupported(where, "not an nn.Linear layer or a known elementwise activation")
            steps.append(_Step("activation", where, activation=act))
        current = node
    return steps


def _sequential_steps(seq: nn.Module, prefix: str) -> list[_Step]:
    steps = []
    for name, m in seq.named_children():
        steps.extend(_module_steps(m, f"{prefix}{name}"))
    return steps


def _module_steps(m: nn.Module, where: str) -> list[_Step]:
    if isinstance(m, nn.Sequential):
        return _sequential_steps(m, f"{where}.")
    if type(m) is nn.Linear or (isinstance(m, nn.Linear) and type(m).forward is nn.Linear.forward):
        return [_Step("linear", where, module=m)]
    if isinstance(m, nn.Identity):
        return []
    if isinstance(m, (nn.Dropout, nn.AlphaDropout)):
        if m.training and m.p > 0:
            raise _unsupported(f"{where} ({_describe(m)})", "dropout in training mode (call model.eval())")
        return []
    if isinstance(m, _NOT_ELEMENTWISE):
        raise _unsupported(f"{where} ({_describe(m)})", "not an elementwise activation")
    act = _module_activation(m)
    if act is not None:
        return [_Step("activation", f"{where} ({_describe(m)})", activation=act)]
    if type(m).__module__.startswith("torch.nn"):
        raise _unsupported(f"{where} ({_describe(m)})", "not an nn.Linear layer or an elementwise activation")
    inner = _trace_steps(m)
    if where == type(m).__name__:  # the model itself: its own names
        return inner
    return [_Step(s.kind, f"{where}.{s.name}", s.module, s.activation) for s in inner]


def _compose(acts: list[Activation]) -> Activation:
    """φ_k ∘ ⋯ ∘ φ_1 as one activation (expressions substituted), the identity for none."""
    if not acts:
        return get_activation("linear")
    if len(acts) == 1:
        return acts[0]
    expr = acts[0].expr
    for a in acts[1:]:
        expr = a.expr.subs(_X, expr)
    return get_activation(expr)


# ----------------------------------------------------------------------------------------------------------- the view
class ModelMLP(LinearChain):
    """A user's model read as the network of THEORY §0: ``depth`` = (number of Linear layers) − 1 hidden layers, the
    last Linear the readout, ``activations[l]`` the (composed) activation between Linear l+1 and l+2.

    ``W``, ``b``: the model's own weight and bias tensors (shared, not copied; a layer without bias gets a zero vector
    and ``has_bias[l] = False``). ``layer_names``: the Linear layers' qualified names in the model; ``model``: the model.
    Built by :func:`as_mlp`; measurements call it on every model they are given.
    """

    def __init__(self, model: nn.Module, linears: list[tuple[str, nn.Linear]], activations: list[Activation]):
        self.model = model
        self.layer_names = tuple(n for n, _ in linears)
        self.W = tuple(m.weight for _, m in linears)
        w0 = self.W[0]
        if not w0.is_floating_point():
            raise InvalidParameterError(f"the weights of {self.layer_names[0]} are {w0.dtype}, not floating point")
        self.b = tuple(
            m.bias if m.bias is not None else torch.zeros(m.out_features, dtype=w0.dtype, device=w0.device)
            for _, m in linears
        )
        self.has_bias = tuple(m.bias is not None for _, m in linears)
        self.activations = tuple(activations)
        self.phis: tuple[TorchActivation, ...] = tuple(torch_activation(a) for a in activations)
        self.depth = len(linears) - 1
        self.widths = (linears[0][1].in_features,) + tuple(m.out_features for _, m in linears)
        self.input_width = self.widths[0]
        self.hidden_widths = self.widths[1:-1]
        self.output_width = self.widths[-1]
        for (name, m), w in zip(linears, self.W):
            if w.dtype != w0.dtype or w.device != w0.device:
                raise InvalidParameterError(
                    f"layer {name} is {w.dtype} on {w.device}, layer {self.layer_names[0]} {w0.dtype} on "
                    f"{w0.device}: one dtype and device for the whole model"
                )

    @property
    def phi(self) -> TorchActivation:
        """The activation when every hidden layer has the same one (raises otherwise)."""
        if len(set(self.activations)) != 1:
            raise InvalidParameterError(f"the hidden layers have different activations: {self.activations}")
        return self.phis[0]

    @property
    def activation(self) -> Activation:
        return self.phi.activation

    def parameter_names(self, biases: bool = True) -> list[str]:
        """The model's own names of θ: weight, bias of each Linear layer in order (biases only where they exist)."""
        out = []
        for name, has in zip(self.layer_names, self.has_bias):
            out.append(f"{name}.weight")
            if biases and has:
                out.append(f"{name}.bias")
        return out

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        acts = ", ".join(dict.fromkeys(a.name for a in self.activations))
        return (f"ModelMLP({type(self.model).__name__}: widths={list(self.widths)}, depth={self.depth}, "
                f"activations=[{acts}], biases={sum(self.has_bias)}/{len(self.has_bias)})")


_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _structure(model: nn.Module):
    """(Linear layers as (name, module), the activation between each consecutive pair) of a model, checked."""
    linears, acts, between, between_names = [], [], [], []
    for s in _module_steps(model, type(model).__name__) if not isinstance(model, nn.Sequential) else _trace_steps(model):
        if s.kind == "linear":
            if linears:
                acts.append(_compose(between))
            elif between:
                raise InvalidParameterError(
                    f"layer {between_names[0]}: an activation before the first Linear layer; the theory's network "
                    "starts with a Linear layer (THEORY §0)"
                )
            between, between_names = [], []
            linears.append((s.name, s.module))
        else:
            between.append(s.activation)
            between_names.append(s.name)
    if not linears:
        raise InvalidParameterError(f"{type(model).__name__} has no nn.Linear layers: nothing the theory describes")
    if between:
        raise InvalidParameterError(
            f"layer {between_names[-1]}: an activation after the last Linear layer; the theory's readout is linear "
            "(THEORY §0) — measure the model without its output nonlinearity"
        )
    if len(linears) < 2:
        raise InvalidParameterError(
            f"{type(model).__name__} has one Linear layer: the theory needs at least one hidden layer (two Linear layers)"
        )
    for (n1, m1), (n2, m2) in zip(linears[:-1], linears[1:]):
        if m1.out_features != m2.in_features:
            raise InvalidParameterError(f"layer {n1} has {m1.out_features} outputs but {n2} takes {m2.in_features}")
    return linears, acts


def as_mlp(model) -> LinearChain:
    """``model`` as a network the measurements understand: a :class:`~empirical.RandomMLP` as it is, an ordinary
    PyTorch model as a :class:`ModelMLP` view of its Linear layers and activations (see the module docstring for what
    qualifies; anything else raises :class:`~meanfield.errors.InvalidParameterError` naming the layer). The trace is
    cached per model; dropout's mode and the registry are checked on every call."""
    if isinstance(model, (RandomMLP, ModelMLP)):
        return model
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"net must be an empirical.RandomMLP or a torch.nn.Module of Linear layers and activations, got "
            f"{type(model).__name__}"
        )
    key = (_VERSION[0], _dropout_state(model))
    hit = _CACHE.get(model)
    if hit is None or hit[0] != key:
        hit = (key, _structure(model))
        _CACHE[model] = hit
    linears, acts = hit[1]
    return ModelMLP(model, linears, acts)


def _dropout_state(model: nn.Module) -> tuple:
    return tuple(m.training for m in model.modules() if isinstance(m, (nn.Dropout, nn.AlphaDropout))) + (
        model.training,)
