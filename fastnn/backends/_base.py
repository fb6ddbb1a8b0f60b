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

``backward(AL, Y, caches, acts, loss, threads) -> (dWs, dbs)``
    Gradients of the cost J = (1/m) sum L with respect to each W and b, with
    the shapes of W and b.

``train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every,
        threads, on_cost, gram=None) -> costs``
    Batch gradient descent exactly as the lecture: each iteration runs
    forward, (cost), backward, update ``W -= learning_rate * dW`` (likewise b).
    Updates ``Ws``/``bs`` **in place**. The cost of iteration i is computed
    before that iteration's update, for i in 0, cost_every, 2*cost_every, ...
    (< num_iterations), and returned as a list of ``(i, cost)``. ``on_cost(i,
    cost)`` is called as each is recorded, not in a batch at the end (compiled
    backends call it between their compiled chunks); training stops early --
    returning the costs so far -- if ``on_cost`` returns False, which the
    Network does when a fit diverges (a cost not finite, or far above its
    start: :mod:`fastnn._watch`) and which drives the progress bar.

    ``Ws``/``bs`` are the Network's scratch copies: ``train`` may stop at any
    point -- ``on_cost`` returning False, or ``KeyboardInterrupt`` -- leaving
    them half-updated, and the Network keeps its parameters. A compiled
    backend must notice Ctrl-C (SIGINT) within about a second whatever
    ``num_iterations`` and ``cost_every`` are, and raise ``KeyboardInterrupt``;
    nothing may be allocated in proportion to ``num_iterations`` up front.

    ``gram`` (keyword): ``None`` lets the backend choose how layer 1 trains;
    ``False`` is the lecture's algorithm (W1 X and dZ1 X^T from X every
    iteration); ``True`` (only ever passed to a backend with ``HAS_GRAM``) the
    Gram rewrite. Network validates it.

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

from .. import losses

__all__ = ["gradient_descent"]


def gradient_descent(
    forward, backward, Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every,
    threads, on_cost,
):
    """The lecture's training loop, in Python, over a backend's forward/backward."""
    costs = []
    for i in range(num_iterations):
        AL, caches = forward(Ws, bs, acts, X, threads)
        if i % cost_every == 0:
            J = losses.cost(loss, AL, caches[-1][1], Y)
            costs.append((i, J))
            if on_cost is not None and on_cost(i, J) is False:
                break
        dWs, dbs = backward(AL, Y, caches, acts, loss, threads)
        for W, b, dW, db in zip(Ws, bs, dWs, dbs):
            W -= learning_rate * dW
            b -= learning_rate * db
    return costs
