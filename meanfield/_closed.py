"""Closed-form Gaussian expectations (THEORY.md §1 table), as Numba kernels.

Every function fills ``out`` with the same quantities as the quadrature kernels in ``_kernels.py``:

* one-point, at variance ``q``: ``out = [E φ², dE φ²/dq, μ_1 = E φ'², μ_2 = E φ'⁴, dμ_1/dq]``;
* two-point, at covariances ``(q11, q22, q12)``: ``out = [E φ(u1)φ(u2), E φ'(u1)φ'(u2)]``.

ReLU, linear and leaky ReLU are one-line calls of the positively homogeneous two-slope φ (slopes (1, 0), (1, 1),
(1, a)), which also serves expressions such as ``Max(0, x)``: the formula is written once and ``tests/test_gaussian.py``
asserts the identities. Sources: arc-cosine kernel of Cho & Saul 2009 (ReLU), Williams 1997
(erf); hard-tanh from integrating the Gaussian over the three linear pieces.
"""

import math

from numba import njit

JIT = dict(cache=True, nogil=True)

INV_SQRT_2PI = 0.3989422804014327
TWO_OVER_PI = 0.6366197723675814


@njit(**JIT)
def clip_corr(c):
    """Clip a correlation to [-1, 1]; every two-point kernel goes through this."""
    return -1.0 if c < -1.0 else (1.0 if c > 1.0 else c)


@njit(**JIT)
def safe_det_sqrt(q11, q22, q12):
    """sqrt(q11 q22 - q12²) ≥ 0, clipped (rounding can make the determinant slightly negative)."""
    d = q11 * q22 - q12 * q12
    return math.sqrt(d) if d > 0.0 else 0.0


@njit(**JIT)
def homogeneous_onepoint(q, a, b, out):
    """Positively homogeneous φ(u) = a u (u > 0), b u (u < 0): E φ² = q (a² + b²)/2, μ_1 = (a² + b²)/2,
    μ_2 = (a⁴ + b⁴)/2 (each half-line carries half the Gaussian mass, E[u² 1{u>0}] = q/2)."""
    s = 0.5 * (a * a + b * b)
    out[0] = s * q
    out[1] = s
    out[2] = s
    out[3] = 0.5 * (a * a * a * a + b * b * b * b)
    out[4] = 0.0


@njit(**JIT)
def homogeneous_twopoint(q11, q22, q12, a, b, out):
    """φ(u) = b u + (a - b) relu(u): E φφ = ab q12 + (a-b)² √(q11q22)(sin θ + (π-θ)cos θ)/(2π),
    E φ'φ' = ab + (a-b)²(π-θ)/(2π), cos θ = c (arc-cosine kernel, Cho & Saul 2009; E[u1 relu(u2)] = q12/2)."""
    r = math.sqrt(q11 * q22)
    if r == math.inf:  # q11·q22 beyond float64 (q ≳ 1e154): the product of the roots still holds it
        r = math.sqrt(q11) * math.sqrt(q22)
    c = clip_corr(q12 / r) if r > 0.0 else 0.0
    theta = math.acos(c)
    d = (a - b) * (a - b)
    out[0] = a * b * q12 + d * r * (math.sin(theta) + (math.pi - theta) * c) / (2.0 * math.pi)
    out[1] = a * b + d * (math.pi - theta) / (2.0 * math.pi)


@njit(**JIT)
def homogeneous_qmap(q, a, b):
    """(E φ², dE φ²/dq): what the length map's Newton solve needs, without the other moments."""
    s = 0.5 * (a * a + b * b)
    return s * q, s


@njit(**JIT)
def leaky_relu_onepoint(q, a, out):
    homogeneous_onepoint(q, 1.0, a, out)


@njit(**JIT)
def leaky_relu_twopoint(q11, q22, q12, a, out):
    """E[φ(u1)φ(u2)] = a q12 + (1-a)² √(q11q22)(sin θ + (π-θ)cos θ)/(2π), E[φ'φ'] = a + (1-a)²(π-θ)/(2π)."""
    homogeneous_twopoint(q11, q22, q12, 1.0, a, out)


@njit(**JIT)
def leaky_relu_qmap(q, a):
    return homogeneous_qmap(q, 1.0, a)


@njit(**JIT)
def relu_qmap(q):
    return leaky_relu_qmap(q, 0.0)


@njit(**JIT)
def linear_qmap(q):
    return leaky_relu_qmap(q, 1.0)


@njit(**JIT)
def erf_qmap(q):
    return TWO_OVER_PI * math.asin(2.0 * q / (1.0 + 2.0 * q)), 4.0 / (math.pi * (1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))


@njit(**JIT)
def hard_tanh_qmap(q):
    t = 1.0 / math.sqrt(2.0 * q)
    p = math.erf(t)
    e = math.exp(-0.5 / q)
    return q * p - math.sqrt(2.0 * q / math.pi) * e + math.erfc(t), p - 2.0 * INV_SQRT_2PI * e / math.sqrt(q)


@njit(**JIT)
def relu_onepoint(q, out):
    leaky_relu_onepoint(q, 0.0, out)


@njit(**JIT)
def relu_twopoint(q11, q22, q12, out):
    leaky_relu_twopoint(q11, q22, q12, 0.0, out)


@njit(**JIT)
def linear_onepoint(q, out):
    leaky_relu_onepoint(q, 1.0, out)


@njit(**JIT)
def linear_twopoint(q11, q22, q12, out):
    leaky_relu_twopoint(q11, q22, q12, 1.0, out)


@njit(**JIT)
def erf_onepoint(q, out):
    """φ = erf: E φ² = (2/π) asin(2q/(1+2q)), μ_1 = (4/π)(1+4q)^(-1/2), μ_2 = (16/π²)(1+8q)^(-1/2)."""
    out[0] = TWO_OVER_PI * math.asin(2.0 * q / (1.0 + 2.0 * q))
    out[1] = 4.0 / (math.pi * (1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))
    out[2] = 4.0 / (math.pi * math.sqrt(1.0 + 4.0 * q))
    out[3] = 16.0 / (math.pi * math.pi * math.sqrt(1.0 + 8.0 * q))
    out[4] = -8.0 / (math.pi * (1.0 + 4.0 * q) ** 1.5)


@njit(**JIT)
def erf_twopoint(q11, q22, q12, out):
    """(2/π) asin(2q12/√((1+2q11)(1+2q22))) and (4/π)[(1+2q11)(1+2q22) - 4q12²]^(-1/2) (Williams 1997)."""
    a = 1.0 + 2.0 * q11
    b = 1.0 + 2.0 * q22
    out[0] = TWO_OVER_PI * math.asin(clip_corr(2.0 * q12 / math.sqrt(a * b)))
    out[1] = 4.0 / (math.pi * math.sqrt(a * b - 4.0 * q12 * q12))


@njit(**JIT)
def hard_tanh_onepoint(q, out):
    """φ = clip(u, -1, 1): E φ² = q p - √(2q/π) e^(-1/(2q)) + 1 - p, p = erf(1/√(2q)) = μ_1 = μ_2.

    dE φ²/dq = E φ'² + E φφ'' = p - 2 N(1; 0, q) (the kinks put deltas in φ''), dμ_1/dq = -(2/√π)(2q)^(-3/2) e^(-1/(2q)).
    """
    t = 1.0 / math.sqrt(2.0 * q)
    p = math.erf(t)
    e = math.exp(-0.5 / q)
    out[0] = q * p - math.sqrt(2.0 * q / math.pi) * e + math.erfc(t)  # erfc, not 1 - p: no cancellation at small q
    out[1] = p - 2.0 * INV_SQRT_2PI * e / math.sqrt(q)
    out[2] = p
    out[3] = p
    out[4] = -(2.0 / math.sqrt(math.pi)) * (2.0 * q) ** -1.5 * e
