"""Gradient checking by central finite differences, as in the course."""

import numpy as np

from . import losses as _losses

__all__ = ["gradient_check"]


def gradient_check(net, X, Y, epsilon=1e-7, lambd=0.0, sample_weight=None):
    """Relative difference between backprop's gradient and a numerical one.

    For every parameter theta_i, ``g_approx_i = (J(theta_i + eps) - J(theta_i
    - eps)) / (2 eps)``, using the network's own backend for both J and the
    backpropagated gradient g. The course's measure is returned::

        ||g - g_approx|| / (||g|| + ||g_approx||)

    Around 1e-7 or below means backprop is right (in float64; a float32 network
    is checked on a float64 copy, since differences of eps = 1e-7 vanish in
    float32).

    Parameters
    ----------
    net : fastnn.Network
    X : array_like of shape (n_x, m)
    Y : array_like of shape (n_L, m) or (m,)
    epsilon : float > 0
    lambd : float >= 0
        Check the L2-regularized objective J + (lambd / 2m) sum_l ||W_l||^2
        and its gradient (the course's ``compute_cost_with_regularization``
        and ``backward_propagation_with_regularization``).
    sample_weight : array_like of shape (m,) or None
        Check the weighted objective (1 / S) sum_i w_i L_i + (lambd / 2S)
        sum_l ||W_l||^2, S = sum_i w_i, and its gradient (a backend with
        ``HAS_SAMPLE_WEIGHT``).

    Returns
    -------
    float
    """
    from . import regularization
    from ._validation_weights import check_sample_weight
    from ._validation import check_positive_float
    from ._validation_optim import check_non_negative_float
    from .network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastnn.Network; got {type(net).__name__}")
    epsilon = check_positive_float("epsilon", epsilon)
    lambd = check_non_negative_float("lambd", lambd)
    if net.dtype != "float64":
        net = Network.from_params(net.params, net.activations, loss=net.loss,
                                  backend=net.backend, dtype="float64",
                                  relu_grad_at_zero=net.relu_grad_at_zero)
    X, Y = net._XY(X, Y)
    w = check_sample_weight(sample_weight, X.shape[1], net._dtype, net.backend, net._backend)
    AL, caches = net.forward(X)
    kw = {} if w is None else {"sample_weight": w}
    grads = net.backward(AL, Y, caches, lambd=lambd, **kw) if lambd else \
        net.backward(AL, Y, caches, **kw)

    backend, acts, loss = net._backend, net._acts, net._loss
    Ws, bs = [W.copy() for W in net._Ws], [b.copy() for b in net._bs]
    m = X.shape[1] if w is None else _losses.weight_sum(w)

    def J():
        AL, caches = backend.forward(Ws, bs, acts, X, 1)
        return (_losses.cost(loss, AL, caches[-1][1], Y, acts[-1], w)
                + regularization.l2_penalty(Ws, lambd, m))

    g, g_approx = [], []
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        for P, dP in ((W, grads[f"dW{l}"]), (b, grads[f"db{l}"])):
            for idx in np.ndindex(P.shape):
                saved = P[idx]
                P[idx] = saved + epsilon
                J_plus = J()
                P[idx] = saved - epsilon
                J_minus = J()
                P[idx] = saved
                g_approx.append((J_plus - J_minus) / (2 * epsilon))
                g.append(dP[idx])
    g, g_approx = np.array(g), np.array(g_approx)
    denominator = np.linalg.norm(g) + np.linalg.norm(g_approx)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(g - g_approx) / denominator)
