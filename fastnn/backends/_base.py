"""The contract every backend implements, and the Python training loop the
pure-Python backends share.

A backend is a module exposing three functions. ``fastnn.Network`` has already
validated and coerced everything it passes: ``X``, ``Y``, every ``W`` and ``b``
are C-contiguous arrays of one float dtype (float32 or float64) with matching
shapes, ``Y`` is 2-D ``(n_L, m)``, ``acts`` names valid activations, ``loss`` a
valid loss compatible with the output activation. A backend never validates.

``forward(Ws, bs, acts, X, threads) -> (AL, caches)``
    ``Ws[l-1]``/``bs[l-1]`` are layer l's ``(n_l, n_{l-1})`` weights and
    ``(n_l, 1)`` biases; ``acts[l-1]`` its activation name. ``caches`` is the
    course's list, one entry per layer: ``((A_prev, W, b), Z)``.

``backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=1) -> (dWs, dbs)``
    Gradients of the cost J = (1/m) sum L with respect to each W and b, with
    the shapes of W and b. ``relu_grad_at_zero`` (1 or 0) is the value ReLU's
    and leaky ReLU's derivative takes at Z == 0 (0: the left-hand derivative,
    LEAKY_SLOPE for leaky ReLU); see :mod:`fastnn.activations`.

``train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every,
        threads, on_cost, gram=None, *, relu_grad_at_zero=1, batch_size=None,
        rng=None) -> costs``
    Gradient descent exactly as the lecture: each iteration runs forward,
    (cost), backward, update ``W -= learning_rate * dW`` (likewise b).
    Updates ``Ws``/``bs`` **in place**.

    Recorded costs: iteration i's cost, with the parameters before that
    iteration's update, for i in 0, cost_every, 2*cost_every, ... and for the
    last iteration, num_iterations - 1 (:func:`recorded`); returned as a list
    of ``(i, cost)`` in order. ``on_cost(i, cost)`` is called as each is
    recorded, not in a batch at the end (compiled backends call it between
    their compiled chunks); training stops right there -- before iteration
    i's update, returning the costs so far -- if ``on_cost`` returns False,
    which the Network does when a fit diverges (a cost not finite, or far
    above its start: :mod:`fastnn._watch`), when the user's callback asks to
    stop, and which drives the progress bar.

    ``batch_size`` None is the lecture's full batch: one update per
    iteration from all m examples. An int (1 <= batch_size <= m) makes each
    iteration one epoch of mini-batch gradient descent: the examples in the
    order ``order = rng.permutation(m)`` (drawn by :func:`epoch_orders`, one
    permutation per epoch in epoch order, so every backend sees the same
    shuffles for a seed), cut into batches ``order[k:k + batch_size]`` for
    k = 0, batch_size, ... (the last one smaller when batch_size does not
    divide m); each batch is a full forward/backward/update with its own mean
    (1/m_b). The recorded cost of epoch i is the cost over all m examples
    before the epoch's first update. Compiled backends run the whole epoch
    loop compiled: no Python per mini-batch.

    ``Ws``/``bs`` are the Network's scratch copies: ``train`` may stop at any
    point -- ``on_cost`` returning False, or ``KeyboardInterrupt`` -- leaving
    them half-updated, and the Network keeps its parameters unless the stop
    was the user's. A compiled backend must notice Ctrl-C (SIGINT) within
    about a second whatever ``num_iterations`` and ``cost_every`` are, and
    raise ``KeyboardInterrupt``; nothing may be allocated in proportion to
    ``num_iterations`` up front.

    ``gram`` (keyword): ``None`` lets the backend choose how layer 1 trains;
    ``False`` is the lecture's algorithm (W1 X and dZ1 X^T from X every
    iteration); ``True`` (only ever passed to a backend with ``HAS_GRAM``, and
    never with a ``batch_size``) the Gram rewrite. Network validates it.

``acts[-1]`` may be ``"softmax"`` (the only activation that is not
element-wise, see :mod:`fastnn.activations`), always with the
``cross_entropy`` loss: the categorical cost from the logits, and dZ_L =
A_L - Y. Y is then one-hot (n_L, m).

``threads`` is ``None`` (auto: the backend picks, e.g. 1 for small work and all
cores for large) or an int >= 1; pure-Python backends ignore it.

Capability attributes (required; tests, benchmarks, the CLI and the report
read these instead of lists of names):

``SLOW``
    True for backends that run Python-level loops per example (the lecture's
    oracle rungs): given fewer iterations, skipped on big workloads.
``COMPILED``
    True for backends whose arithmetic runs as machine code of their own
    (threads, ISA paths, SIMD evidence apply).
``HAS_GRAM``
    True if ``train`` implements ``gram=True``.

Optional: ``DESCRIPTION`` (one line for ``fastnn backends``); ``info()`` -> dict
(versions, compile flags, threads, and for compiled backends ``"isa"``, the
kernel set in use) for reports; ``hot_code()`` -> ``{"<kernel> <dtype>":
assembly text}`` of the hot kernels that run on this CPU with the current
settings, which :mod:`fastnn.report` reads for its SIMD evidence.
"""

import numpy as np

from .. import losses

__all__ = ["gradient_descent", "recorded", "next_recorded", "epoch_orders", "batches"]


def recorded(i, cost_every, num_iterations):
    """Whether iteration i's cost is recorded: every cost_every-th, and the last."""
    return i % cost_every == 0 or i == num_iterations - 1


def next_recorded(i, cost_every, num_iterations):
    """The first recorded iteration after i (num_iterations if none)."""
    return min((i // cost_every + 1) * cost_every, max(num_iterations - 1, i + 1))


def epoch_orders(rng, m, count):
    """The example orders of the next ``count`` epochs, shape (count, m), int64.

    One ``rng.permutation(m)`` per epoch, drawn in epoch order: the same
    sequence whether a backend asks for one epoch at a time or many.
    """
    orders = np.empty((count, m), dtype=np.int64)
    for e in range(count):
        orders[e] = rng.permutation(m)
    return orders


def batches(order, batch_size):
    """The example indices of each mini-batch of one epoch, in order."""
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


def gradient_descent(
    forward, backward, Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every,
    threads, on_cost, relu_grad_at_zero=1, batch_size=None, rng=None,
):
    """The lecture's training loop, in Python, over a backend's forward/backward
    (full batch, or one epoch of mini-batches per iteration)."""
    costs = []
    m = X.shape[1]

    def step(Xb, Yb, forward_out=None):
        AL, caches = forward(Ws, bs, acts, Xb, threads) if forward_out is None else forward_out
        dWs, dbs = backward(AL, Yb, caches, acts, loss, threads, relu_grad_at_zero)
        for W, b, dW, db in zip(Ws, bs, dWs, dbs):
            W -= learning_rate * dW
            b -= learning_rate * db

    for i in range(num_iterations):
        record = recorded(i, cost_every, num_iterations)
        full = forward(Ws, bs, acts, X, threads) if record or batch_size is None else None
        if record:
            AL, caches = full
            J = losses.cost(loss, AL, caches[-1][1], Y, acts[-1])
            costs.append((i, J))
            if on_cost is not None and on_cost(i, J) is False:
                break
        if batch_size is None:
            step(X, Y, full)
            continue
        for idx in batches(epoch_orders(rng, m, 1)[0], batch_size):
            step(np.ascontiguousarray(X[:, idx]), np.ascontiguousarray(Y[:, idx]))
    return costs
