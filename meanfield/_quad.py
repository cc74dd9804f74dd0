"""Quadrature building blocks shared by every kernel: Gauss–Legendre rules and scale-aware panel breakpoints.

A Gaussian expectation ``E_z[F(μ + σ z)]`` (z standard normal) is integrated with composite Gauss–Legendre on
``[-Z_MAX, Z_MAX]``, split at

* ``0, ±2, ±4.5`` — the Gaussian's own scale;
* the activation's kinks ``(k - μ)/σ`` — F is analytic between them, so Gauss–Legendre converges geometrically on every
  panel (Gauss–Hermite across a kink is only ~3e-3 accurate, THEORY §1 "Numerical pitfalls");
* when σ > SIGMA_RESOLVE = 1/4, the points where ``u = μ + σ z`` equals ``0, ±1, ±2, ±4, …`` (up to |u| < 4σ): the activation varies on a unit scale in ``u``,
  i.e. on a scale 1/σ in z, which a fixed Gaussian rule cannot resolve at large q (THEORY §1: Gauss–Hermite at q = 8
  is 1e-2 off with 100 nodes).

Truncation at ``Z_MAX = 9`` drops Gaussian mass ``2Φ(-9) = 2.3e-19``. The main rule has 16 nodes per panel; the 10-node
rule on the same panels gives an error estimate ``|I_16 - I_10|`` that bounds the 16-node error (``tests/test_gaussian.py``
shows it against 30-digit references). The checked one-point rule extends these panels where the integrand's tails,
oscillation or size need it (constants below; the algorithm in ``meanfield._kernels.onepoint_checked``).
"""

import math

import numpy as np
from numba import njit

JIT = dict(cache=True, nogil=True)

Z_MAX = 9.0
MAX_BREAKS = 256
SIGMA_RESOLVE = 0.25  # above this, u-features at |u| = 1, 2, 4, … get their own panels
X16, W16 = np.polynomial.legendre.leggauss(16)
X10, W10 = np.polynomial.legendre.leggauss(10)
# Read-only, as Numba types global arrays: a Python call of a kernel with these rules then reuses the specialisation
# compiled for the kernels' own calls (meanfield._table) instead of compiling a second one.
for _a in (X16, W16, X10, W10):
    _a.setflags(write=False)
del _a
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# The checked one-point rule (meanfield._kernels.onepoint_checked, meanfield.gaussian.expect): tail panels of width
# Z_STEP beyond ±Z_MAX while the last still holds more than TAIL_RTOL of the scale, up to ±Z_EXT (e^{-Z_EXT²/2} = 1e-281);
# while the panels' |I_16 - I_10| add up to more than SPLIT_RTOL·scale, those above the average are halved, down to
# MIN_WIDTH and up to MAX_PANELS; ROUND_RTOL·scale of
# rounding in the error estimate: the sum's and φ's own evaluation error of a few ulp. Where φ grows fast the rounding of
# the argument is amplified (exp(4u) at u = 32: 128 ulp; exp(x) at q = 8 measured 1.1e-14 off in μ_2, estimate 8e-15):
# such values can exceed the estimate by rounding alone, at the 1e-14 level. (A larger floor would hide nothing of
# that kind elsewhere but loosen every estimate, which the fixed-point proofs near criticality cannot afford.)
# Flags of what it could not do:
Q_NONFINITE = 1  # a value of the integrand, or a sum, is not finite
Q_TAIL = 2  # the integrand has not decayed at |z| = Z_EXT
Q_BUDGET = 4  # MAX_PANELS or MIN_WIDTH reached with panels still above SPLIT_RTOL
Z_STEP = 3.0
Z_EXT = 36.0
TAIL_RTOL = 1e-17
SPLIT_RTOL = 1e-14
ROUND_RTOL = 4e-15
MIN_WIDTH = 1e-9
MAX_PANELS = 16384


@njit(**JIT)
def _push(buf, n, z):
    if -Z_MAX < z < Z_MAX and n < MAX_BREAKS:
        buf[n] = z
        return n + 1
    return n


@njit(**JIT)
def add_breaks(mu, sigma, kinks, buf, n):
    """Append the breakpoints (in z) for ``E_z[F(mu + sigma z)]`` to ``buf[n:]``; return the new count."""
    buf[n] = -Z_MAX
    buf[n + 1] = Z_MAX
    n += 2
    n = _push(buf, n, 0.0)
    n = _push(buf, n, 2.0)
    n = _push(buf, n, -2.0)
    n = _push(buf, n, 4.5)
    n = _push(buf, n, -4.5)
    if sigma > SIGMA_RESOLVE:
        n = _push(buf, n, -mu / sigma)
        s = 1.0
        while s < 4.0 * sigma:  # graded down to 1/σ; beyond z ≈ 4 the Gaussian breaks take over
            n = _push(buf, n, (s - mu) / sigma)
            n = _push(buf, n, (-s - mu) / sigma)
            s *= 2.0
    if sigma > 0.0:
        for k in kinks:
            n = _push(buf, n, (k - mu) / sigma)
    return n


@njit(**JIT)
def add_kink_grading(centre, width, buf, n):
    """Geometrically graded breakpoints ``centre ± width·4^j`` (up to distance 2) around a smoothed kink of that width."""
    if width <= 0.0:
        return n
    d = width
    while d < 2.0:
        n = _push(buf, n, centre + d)
        n = _push(buf, n, centre - d)
        d *= 4.0
    return n


@njit(**JIT)
def sort_unique(buf, n):
    """Sort ``buf[:n]`` in place (insertion sort: n is small) and drop near-duplicates; return the new count."""
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    m = 0
    for i in range(n):
        if m == 0 or buf[i] - buf[m - 1] > 1e-13 * (1.0 + abs(buf[i])):
            buf[m] = buf[i]
            m += 1
    return m


@njit(**JIT)
def panel_rule(breaks, nb, x, w):
    """Nodes and Gaussian-weighted weights (standard normal density included) of the composite rule."""
    k = x.shape[0]
    nodes = np.empty((nb - 1) * k)
    weights = np.empty((nb - 1) * k)
    for p in range(nb - 1):
        a = breaks[p]
        b = breaks[p + 1]
        h = 0.5 * (b - a)
        m = 0.5 * (a + b)
        for i in range(k):
            z = m + h * x[i]
            nodes[p * k + i] = z
            weights[p * k + i] = h * w[i] * INV_SQRT_2PI * math.exp(-0.5 * z * z)
    return nodes, weights


@njit(**JIT)
def gaussian_rule(mu, sigma, kinks, x, w):
    """Composite rule for ``E_z[F(mu + sigma z)]``: returns ``(z, weights)``."""
    buf = np.empty(MAX_BREAKS)
    n = add_breaks(mu, sigma, kinks, buf, 0)
    n = sort_unique(buf, n)
    return panel_rule(buf, n, x, w)
