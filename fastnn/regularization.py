"""The course's regularization, once: the NumPy page of L2 and inverted dropout.

L2 (``compute_cost_with_regularization`` / ``backward_propagation_with_regularization``)
    J_reg = J + (λ / 2m) Σ_l ‖W_l‖²_F, and dW_l += (λ / m) W_l; biases are not
    regularized. m is the number of examples the cost (or the step) is over.

Inverted dropout (``forward_propagation_with_dropout`` / ``backward_propagation_with_dropout``)
    On each hidden layer l (never the input, never the output): D_l =
    (u < keep_prob_l) for u uniform in [0, 1), drawn with A_l's shape from
    layer 1 up; A_l = A_l · D_l / keep_prob_l. Backward applies the same mask
    and scale to dA_l before g′. The scale keeps the expected activation, so
    prediction runs the network without dropout.

Every backend implements these with its own arithmetic; the masks are drawn
here only, so every backend sees the same ones for a seed.
"""

import numpy as np

__all__ = ["l2_penalty", "l2_gradient", "draw_mask", "draw_masks", "drop"]


def l2_penalty(Ws, lambd, m):
    """(λ / 2m) Σ_l ‖W_l‖²_F: the term L2 regularization adds to the cost."""
    if lambd == 0:
        return 0.0
    return lambd / (2 * m) * sum(float(np.sum(np.square(W, dtype=np.float64))) for W in Ws)


def l2_gradient(W, lambd, m):
    """(λ / m) W: the term L2 regularization adds to dW."""
    return (lambd / m) * W


def draw_mask(rng, shape, keep_prob):
    """D = (u < keep_prob), u uniform in [0, 1) of ``shape``: ``rng.random(shape)``
    from a ``numpy.random.Generator``, ``rng.rand(*shape)`` from a
    ``RandomState`` (the course's ``np.random.rand``)."""
    u = rng.rand(*shape) if isinstance(rng, np.random.RandomState) else rng.random(shape)
    return u < keep_prob


def draw_masks(rng, dims, m, keep_probs):
    """``[(D_l, keep_prob_l) or None for each layer l = 1..L]``: a mask for every
    hidden layer whose keep probability is below 1, drawn from layer 1 up;
    ``keep_probs`` has one entry per hidden layer (``dims`` = [n_0, ..., n_L])."""
    out = [None] * (len(dims) - 1)
    for l, keep_prob in enumerate(keep_probs, start=1):
        if keep_prob < 1:
            out[l - 1] = (draw_mask(rng, (dims[l], m), keep_prob), keep_prob)
    return out


def drop(A, D, keep_prob):
    """A · D / keep_prob, as the course: shut the units D zeroes, scale the rest up."""
    A = A * D
    A /= keep_prob
    return A
