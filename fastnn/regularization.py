"""The course's regularization, once: the NumPy page of L2 and inverted dropout.

L2 (``compute_cost_with_regularization`` / ``backward_propagation_with_regularization``)
    J_reg = J + (λ / 2m) Σ_l ‖W_l‖²_F, and dW_l += (λ / m) W_l; biases are not
    regularized. m is the number of examples the cost (or the step) is over;
    with per-example weights, their sum S over those examples (scikit-learn's
    ``sw_sum``), and a batch whose weights sum to 0 gets no term.

Inverted dropout (``forward_propagation_with_dropout`` / ``backward_propagation_with_dropout``)
    On each hidden layer l (never the input, never the output): D_l =
    (u < keep_prob_l) for u uniform in [0, 1), drawn with A_l's shape from
    layer 1 up; A_l = A_l · D_l / keep_prob_l. Backward applies the same mask
    and scale to dA_l before g′. The scale keeps the expected activation, so
    prediction runs the network without dropout.

Every backend implements these with its own arithmetic. ``Network.forward``
draws its masks from the ``rng`` it is given, as the course does
(:func:`draw_masks`); inside ``fit`` they come from :func:`fit_mask`, a
counter-based hash of the fit's key, the update's number, the layer and the
unit's place in the batch -- so every backend, compiled kernels included,
computes the same masks, anywhere, in any order, without drawing or storing
them.
"""

import numpy as np

__all__ = ["l2_penalty", "l2_gradient", "draw_mask", "draw_masks", "drop", "fit_mask",
           "fit_masks", "mask_threshold", "splitmix64"]


def l2_penalty(Ws, lambd, m):
    """(λ / 2m) Σ_l ‖W_l‖²_F: the term L2 regularization adds to the cost; m
    the examples (or the sum S of their weights); 0 when m == 0."""
    if lambd == 0 or m == 0:
        return 0.0
    return lambd / (2 * m) * sum(float(np.sum(np.square(W, dtype=np.float64))) for W in Ws)


def l2_gradient(W, lambd, m):
    """(λ / m) W: the term L2 regularization adds to dW; m the examples (or the
    sum S of their weights); zeros when m == 0."""
    if m == 0:
        return np.zeros_like(W)
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
    return _per_layer(dims, keep_probs,
                      lambda l, keep_prob: draw_mask(rng, (dims[l], m), keep_prob))


def _per_layer(dims, keep_probs, mask):
    """``[(mask(l, keep_prob), keep_prob) or None for l = 1..L]``: a mask for every
    hidden layer whose keep probability is below 1, from layer 1 up."""
    out = [None] * (len(dims) - 1)
    for l, keep_prob in enumerate(keep_probs, start=1):
        if keep_prob < 1:
            out[l - 1] = (mask(l, keep_prob), keep_prob)
    return out


def drop(A, D, keep_prob):
    """A · D / keep_prob, as the course: shut the units D zeroes, scale the rest up."""
    A = A * D
    A /= keep_prob
    return A


_U64 = np.uint64
GOLDEN = _U64(0x9E3779B97F4A7C15)


def splitmix64(z):
    """SplitMix64's output function of uint64 ``z`` (scalar or array): a
    bijective mix whose outputs pass BigCrush for consecutive inputs."""
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=_U64) + GOLDEN
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def mask_threshold(keep_prob):
    """The integer T with ``u < keep_prob`` <=> ``n < T`` for u = n / 2**53,
    n in [0, 2**53): keep_prob * 2**53 is exact in float64, T its ceiling."""
    return int(np.ceil(keep_prob * 2.0 ** 53))


def fit_mask(key, step, layer, shape, keep_prob):
    """Dropout's mask of ``layer`` (1-based) at the fit's update ``step``
    (1-based), shape (n_l, m_b): unit j of the batch's example i is kept iff
    ``splitmix64(base + (j * m_b + i) * GOLDEN) >> 11 < mask_threshold(keep_prob)``,
    ``base = splitmix64(key ^ splitmix64(step * 64 + layer))``; ``key`` is the
    fit's uint64 key (from its seed)."""
    n, m = shape
    base = splitmix64(_U64(key) ^ splitmix64(_U64(step) * _U64(64) + _U64(layer)))
    with np.errstate(over="ignore"):
        counters = base + np.arange(n * m, dtype=_U64).reshape(n, m) * GOLDEN
    return (splitmix64(counters) >> _U64(11)) < _U64(mask_threshold(keep_prob))


def fit_masks(key, step, dims, m, keep_probs):
    """:func:`draw_masks`' list for update ``step`` of a fit, from :func:`fit_mask`."""
    return _per_layer(dims, keep_probs,
                      lambda l, keep_prob: fit_mask(key, step, l, (dims[l], m), keep_prob))
