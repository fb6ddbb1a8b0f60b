"""The ``numba`` backend's fused first layer: layer 1's backward, update and the
next iteration's forward in one pass over X.

When layer 1's input is big and its units few (logistic regression, the deep
net's 12288 -> 20), the full-batch engine (:mod:`.engine_room`) trains layer 1 here:
dW1 = dZ1 X^T / m, the update W1 -= lr dW1 and the next ``Z1 = W1 X`` share
one pass over X, so X is read once per iteration instead of twice. Row blocks
of X stay in L1 while the three use them; the tests hold the pass to the
page's ``linear_backward`` + ``update`` + ``linear_forward``.

Two entry points:

- :func:`first_layer_block` over all of X's rows is the one-thread pass, with
  no parallel machinery (nothing of Numba's parfor compiler is compiled for a
  one-thread fit);
- :func:`first_layer_threads` runs it on T threads, thread t owning a fixed
  range of X's rows and writing its partial ``W X`` into ``Z_parts[t]``; the
  partials are added in thread order, so results are bitwise reproducible for
  a given T.
"""

import numpy as np
from numba import njit, prange

from .config import (BLAS_MIN_MACS, FUSED_MAX_UNITS, FUSED_MIN_INPUTS, INLINE_OPTS, PARALLEL_OPTS,
                     SERIAL_OPTS)

__all__ = ["fused_first_layer", "first_layer_block", "first_layer_threads"]


def fused_first_layer(n1, n0, m):
    """Whether layer 1 (n1 units, n0 inputs, m examples) trains with this
    module's pass (else the page's ``linear_*`` kernels)."""
    return n0 >= FUSED_MIN_INPUTS and (n1 <= FUSED_MAX_UNITS or n1 * n0 * m < BLAS_MIN_MACS)


@njit(**SERIAL_OPTS)
def _tile_4x4(W, dZ, Z, x0, x1, x2, x3, i, k, c, learn):
    """Units i..i+3 x inputs k..k+3 (rows x0..x3 of X): W -= c dZ X^T, then Z += W X.

    W (n1, n0) IN/OUT (its 4x4 block at (i, k)); dZ (n1, m) IN; Z (n1, m)
    IN/OUT (rows i..i+3 accumulated); x0..x3 (m,) IN; c the scale of the
    update (learning_rate / m); learn: whether to update W first.

    16 dot products in one sweep over the examples keep 16 SIMD accumulators in
    registers and load each vector of dZ and X once for 4 FMAs.
    """
    d0, d1, d2, d3 = dZ[i], dZ[i + 1], dZ[i + 2], dZ[i + 3]
    w00, w01, w02, w03 = W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3]
    w10, w11, w12, w13 = W[i + 1, k], W[i + 1, k + 1], W[i + 1, k + 2], W[i + 1, k + 3]
    w20, w21, w22, w23 = W[i + 2, k], W[i + 2, k + 1], W[i + 2, k + 2], W[i + 2, k + 3]
    w30, w31, w32, w33 = W[i + 3, k], W[i + 3, k + 1], W[i + 3, k + 2], W[i + 3, k + 3]
    if learn:
        zero = dZ.dtype.type(0)  # float32 sums stay float32: twice the SIMD lanes
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
        s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
        for j in range(d0.shape[0]):
            a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
            e0, e1, e2, e3 = d0[j], d1[j], d2[j], d3[j]
            s00, s01, s02, s03 = s00 + e0 * a0, s01 + e0 * a1, s02 + e0 * a2, s03 + e0 * a3
            s10, s11, s12, s13 = s10 + e1 * a0, s11 + e1 * a1, s12 + e1 * a2, s13 + e1 * a3
            s20, s21, s22, s23 = s20 + e2 * a0, s21 + e2 * a1, s22 + e2 * a2, s23 + e2 * a3
            s30, s31, s32, s33 = s30 + e3 * a0, s31 + e3 * a1, s32 + e3 * a2, s33 + e3 * a3
        w00, w01, w02, w03 = w00 - c * s00, w01 - c * s01, w02 - c * s02, w03 - c * s03
        w10, w11, w12, w13 = w10 - c * s10, w11 - c * s11, w12 - c * s12, w13 - c * s13
        w20, w21, w22, w23 = w20 - c * s20, w21 - c * s21, w22 - c * s22, w23 - c * s23
        w30, w31, w32, w33 = w30 - c * s30, w31 - c * s31, w32 - c * s32, w33 - c * s33
        W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w00, w01, w02, w03
        W[i + 1, k], W[i + 1, k + 1], W[i + 1, k + 2], W[i + 1, k + 3] = w10, w11, w12, w13
        W[i + 2, k], W[i + 2, k + 1], W[i + 2, k + 2], W[i + 2, k + 3] = w20, w21, w22, w23
        W[i + 3, k], W[i + 3, k + 1], W[i + 3, k + 2], W[i + 3, k + 3] = w30, w31, w32, w33
    z0, z1, z2, z3 = Z[i], Z[i + 1], Z[i + 2], Z[i + 3]
    for j in range(d0.shape[0]):
        a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
        z0[j] += w00 * a0 + w01 * a1 + w02 * a2 + w03 * a3
        z1[j] += w10 * a0 + w11 * a1 + w12 * a2 + w13 * a3
        z2[j] += w20 * a0 + w21 * a1 + w22 * a2 + w23 * a3
        z3[j] += w30 * a0 + w31 * a1 + w32 * a2 + w33 * a3


@njit(**SERIAL_OPTS)
def _tile_1x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn):
    """One unit x 4 inputs: the remainder of _tile_4x4 (and all of logistic regression).
    Arguments as :func:`_tile_4x4`'s, for unit i alone."""
    d = dZ[i]
    w0, w1, w2, w3 = W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3]
    if learn:
        s0 = s1 = s2 = s3 = dZ.dtype.type(0)
        for j in range(d.shape[0]):
            e = d[j]
            s0 += e * x0[j]
            s1 += e * x1[j]
            s2 += e * x2[j]
            s3 += e * x3[j]
        w0, w1, w2, w3 = w0 - scale * s0, w1 - scale * s1, w2 - scale * s2, w3 - scale * s3
        W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w0, w1, w2, w3
    z = Z[i]
    for j in range(d.shape[0]):
        z[j] += w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j]


@njit(**SERIAL_OPTS)
def _tile_1x1(W, dZ, Z, x0, i, k, scale, learn):
    """One unit x one input: the last rows of X when their count is not a multiple of 4.
    Arguments as :func:`_tile_4x4`'s, for unit i and input k alone (x0 = X[k])."""
    d = dZ[i]
    w0 = W[i, k]
    if learn:
        s0 = dZ.dtype.type(0)
        for j in range(d.shape[0]):
            s0 += d[j] * x0[j]
        w0 -= scale * s0
        W[i, k] = w0
    z = Z[i]
    for j in range(d.shape[0]):
        z[j] += w0 * x0[j]


@njit(**INLINE_OPTS)
def first_layer_block(W, dZ, X, Z, k0, k1, scale, learn):
    """For X's rows k0..k1: ``W[:, k] -= scale * dZ X[k]^T`` (if learn), then
    ``Z = W[:, k0:k1] X[k0:k1]`` (overwritten).

    W (n1, n0) IN/OUT; dZ (n1, m) IN (unread unless learn); X (n0, m) IN;
    Z (n1, m) OUT; k0, k1 int64 row range; scale ``learning_rate / m`` in X's
    dtype. Over all rows (k0 = 0, k1 = n0) it is the one-thread pass.

    Each group of 4 rows of X serves the gradient, the update and the next
    forward while it sits in L1: one pass over X.
    """
    n = dZ.shape[0]
    Z[:] = 0.0
    k = k0
    while k + 4 <= k1:
        x0, x1, x2, x3 = X[k], X[k + 1], X[k + 2], X[k + 3]
        i = np.int64(0)  # not the literal 0: that would compile each tile once more
        while i + 4 <= n:
            _tile_4x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn)
            i += 4
        while i < n:
            _tile_1x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn)
            i += 1
        k += 4
    while k < k1:
        for i in range(n):
            _tile_1x1(W, dZ, Z, X[k], i, k, scale, learn)
        k += 1


@njit(**PARALLEL_OPTS)
def first_layer_threads(W, dZ, X, Z, Z_parts, scale, learn):
    """``W -= scale * dZ X^T`` (if learn), then ``Z = W X``, on T = Z_parts.shape[0] threads.

    Z_parts (T, n1, m) is scratch: thread t owns rows [n0 t / T, n0 (t+1) / T)
    of X and writes its partial W X there; the partials are added into Z in
    thread order, so the result depends only on T.
    """
    T = Z_parts.shape[0]
    n0 = X.shape[0]
    for t in prange(T):
        first_layer_block(W, dZ, X, Z_parts[t], (n0 * t) // T, (n0 * (t + 1)) // T, scale, learn)
    n1, m = Z.shape
    for i in range(n1):  # an explicit loop: no broadcasting, no shape-error path to compile
        z = Z[i]
        for j in range(m):
            z[j] = Z_parts[0, i, j]
        for t in range(1, T):
            p = Z_parts[t, i]
            for j in range(m):
                z[j] += p[j]
