"""How :mod:`fastnn.sklearn`'s estimators train with ``solver="lbfgs"``:
scikit-learn's ``_fit_lbfgs``, SciPy's L-BFGS-B with its options on the loss
and gradient that the backend's ``forward`` and ``backward`` compute.

Design
------
- The loss is scikit-learn's: the (weighted) mean loss over the samples
  (divided by the targets for its squared error) plus 0.5·alpha·Σ‖W‖² / Σw;
  the gradient is its ``_backprop``'s, (dW + alpha·W / Σw) with dW from the
  backend's ``backward`` (per-example weights scale the output delta's
  columns there, the contract's ``sample_weight``).
- A sparse X too large to densify (:mod:`fastnn._sklearn_data`) is evaluated
  a block of rows at a time, each block's loss and gradient weighted by its
  share of the examples (or of the weights): the same sums.
"""

import numpy as np
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from . import _sklearn_data as _data
from . import losses as _losses
from ._sklearn_train import l2
from .backends import _malloc, _threads
from .network import Network

__all__ = ["fit_lbfgs"]


def _parts(data, sample_weight):
    """``(rows, weights, share)`` of each block of the data, in order (one
    for a dense X); ``share`` weighs its loss and gradient in the sums."""
    size = data.block()
    total = data.m if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
    for start in range(0, data.m, size):
        part = slice(start, start + size)
        weights = None if sample_weight is None else sample_weight[part]
        used = (min(size, data.m - start) if weights is None
                else float(weights.sum(dtype=np.float64)))
        if used:  # a block whose weights are all 0 adds nothing
            yield part, weights, 1.0 if size >= data.m else used / total


def fit_lbfgs(est, X, Y, sample_weight):
    """scikit-learn's ``_fit_lbfgs``: L-BFGS-B on the whole data, X dense or
    sparse, Y (n_outputs, n_samples), the per-example weights or None;
    ``n_iter_`` and ``loss_`` as scikit-learn sets them."""
    net = est.network_
    module, acts, loss = net._backend, tuple(net._acts), net._loss
    dtype = net._Ws[0].dtype
    data = _data.Examples(X)
    Y = np.ascontiguousarray(Y, dtype=dtype)
    m, dims = data.m, net.layer_dims
    weight_sum = m if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
    dense = None if data.sparse else data.XT
    parts = list(_parts(data, sample_weight))
    threads = 1
    if getattr(module, "COMPILED", False):
        threads = _threads.decide(net.threads, dims, data.block(),
                                  module.AUTO_THREADS_MIN_WORK["full"])[0]
    shapes = list(zip(dims, dims[1:]))
    # scikit-learn's packing: every coefs_[i] (n_in, n_out) row-major, then the intercepts.
    ends = np.cumsum([a * b for a, b in shapes] + [b for _, b in shapes])

    def unpack(theta):
        pieces = np.split(theta.astype(dtype, copy=False), ends[:-1])
        Ws = [np.ascontiguousarray(p.reshape(a, b).T) for p, (a, b) in zip(pieces, shapes)]
        bs = [np.ascontiguousarray(p.reshape(-1, 1)) for p in pieces[len(shapes):]]
        return Ws, bs

    def loss_and_gradients(Ws, bs, part, weights):
        XT = dense if dense is not None else data.columns(part)
        Yp = Y if dense is not None else Y[:, part]
        AL, caches = module.forward(Ws, bs, acts, XT, threads)
        if weights is None:
            J = _losses.cost(loss, AL, caches[-1][1], Yp, acts[-1])
            dWs, dbs = module.backward(AL, Yp, caches, acts, loss, threads,
                                       net.relu_grad_at_zero)
        else:
            J = _losses.cost(loss, AL, caches[-1][1], Yp, acts[-1], sample_weight=weights)
            dWs, dbs = module.backward(AL, Yp, caches, acts, loss, threads,
                                       net.relu_grad_at_zero, sample_weight=weights)
        return J, dWs, dbs

    def loss_grad(theta):
        Ws, bs = unpack(theta)
        J, dWs, dbs = 0.0, None, None
        for part, weights, share in parts:
            Jp, dWp, dbp = loss_and_gradients(Ws, bs, part, weights)
            if share == 1.0:
                J, dWs, dbs = Jp, dWp, dbp
                continue
            J += share * Jp
            dWs = [share * d for d in dWp] if dWs is None else [
                d + share * e for d, e in zip(dWs, dWp)]
            dbs = [share * d for d in dbp] if dbs is None else [
                d + share * e for d, e in zip(dbs, dbp)]
        J = J / est._loss_divisor + l2(Ws, est.alpha, weight_sum)
        grad = [(dW + (est.alpha / weight_sum) * W).T.ravel() for dW, W in zip(dWs, Ws)]
        return J, np.concatenate(grad + [db.ravel() for db in dbs]).astype(np.float64)

    theta0 = np.concatenate([W.T.ravel() for W in net._Ws] + [b.ravel() for b in net._bs])
    # The backend's own forward/backward, as the driver's Python engine runs them.
    with _threads.running(), _malloc.step_allocations(), \
            np.errstate(over="ignore", invalid="ignore"):
        result = scipy.optimize.minimize(
            loss_grad, theta0, method="L-BFGS-B", jac=True,
            options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = float(result.fun)
    Ws, bs = unpack(result.x)
    params = {}
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        params[f"W{l}"], params[f"b{l}"] = W, b
    est.network_ = Network.from_params(params, net.activations, loss=net.loss,
                                       backend=net.backend, dtype=net.dtype, threads=net.threads,
                                       relu_grad_at_zero=net.relu_grad_at_zero)
