"""How :mod:`fastnn.sklearn`'s estimators train: MLPClassifier's two loops,
``_fit_stochastic`` (solvers "sgd" and "adam") and ``_fit_lbfgs``, over a
:class:`fastnn.Network`.

Design
------
- Stochastic solvers: the estimator walks the epochs and mini-batches itself
  (scikit-learn's order: one ``shuffle`` of the indices per epoch from its
  RandomState, or none), and each mini-batch is one ``Network.fit`` call of
  one full-batch iteration with ``resume=True``: the backend's engine takes
  the step with the optimizer (:class:`fastnn.optimizers.SklearnSGD`,
  :class:`~fastnn.optimizers.SklearnAdam`) and L2 (``lambd = alpha``: the
  course's (λ/2m)·Σ‖W‖² is scikit-learn's 0.5·alpha·Σ‖W‖²/m), and records
  the batch's cost before the step, which is scikit-learn's ``batch_loss``.
  So ``loss_curve_`` is scikit-learn's: the mean of the mini-batch losses
  of the epoch, at no extra forward pass (the engine reuses the cost's).
  The price: one ``Network.fit`` (its checks, its set-up) per mini-batch.
- ``engine_epochs=True``: one ``Network.fit`` call per epoch, run whole by the
  backend's engine (the driver's shuffles); the cost the next call records
  before its epoch is the loss over all samples after this one, booked by
  its callback, which also applies the stopping rule there. One forward
  pass over all samples per epoch more, far fewer Python calls.
- lbfgs: SciPy's L-BFGS-B on the loss and gradient that the backend's
  ``forward`` and ``backward`` compute, with scikit-learn's options.
- The stopping rules, the learning-rate schedules ("invscaling", "adaptive")
  and the best-validation-score restore are scikit-learn's, line for line.
"""

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as _shuffle
from sklearn.utils.optimize import _check_optimize_result

from . import losses as _losses
from .backends import _threads
from .network import Network

__all__ = ["fit_stochastic", "fit_lbfgs", "diverged"]


def diverged(est, exc):
    """``exc`` (the Network's FloatingPointError) in the estimator's terms."""
    return FloatingPointError(
        f"{type(est).__name__}.fit: {exc} Here: lower learning_rate_init (it is "
        f"{est.learning_rate_init}), or scale the features (e.g. StandardScaler in a "
        f"Pipeline).")


def _l2(Ws, alpha, m):
    return 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in Ws) / m


def _split(est, X, y, Y, rng):
    """scikit-learn's validation split: ``validation_fraction`` of the samples
    (stratified by class for a classifier of one label per sample)."""
    stratify = y if getattr(est, "_stratify", False) else None
    X_train, X_val, y_train, y_val, Y_train, Y_val = train_test_split(
        X, y, Y.T, random_state=rng, test_size=est.validation_fraction, stratify=stratify)
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                         "or the size of your dataset.")
    return X_train, Y_train.T, (X_val, y_val, np.ascontiguousarray(Y_val.T))


def fit_stochastic(est, X, y, Y, rng, optimizer, incremental):
    """Train ``est.network_`` on X (n_samples, n_features), targets y as
    given (for the validation score) and Y in the Network's orientation
    (n_outputs, n_samples): scikit-learn's ``_fit_stochastic``."""
    if not incremental or not hasattr(est, "_learning_rate"):
        est._learning_rate = float(est.learning_rate_init)
        est._resume = False  # a new optimizer state, as scikit-learn's new optimizer
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    validation = None
    if est.early_stopping:
        X, Y, validation = _split(est, X, y, Y, rng)
    XT = np.ascontiguousarray(X.T)
    Y = np.ascontiguousarray(Y)
    run = _engine_epochs if est.engine_epochs else _batch_by_batch
    est.n_iter_ = 0
    try:
        run(est, XT, Y, rng, optimizer, validation, incremental)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    except FloatingPointError as exc:
        raise diverged(est, exc) from None
    net = est.network_
    if est.early_stopping:
        est.network_ = Network.from_params(est._best_params, net.activations, loss=net.loss,
                                           backend=net.backend, dtype=net.dtype,
                                           threads=net.threads,
                                           relu_grad_at_zero=net.relu_grad_at_zero)


def _batch_by_batch(est, XT, Y, rng, optimizer, validation, incremental):
    """scikit-learn's epochs: its shuffles, each mini-batch one ``Network.fit``
    step whose recorded cost is the batch's loss before the step."""
    n = XT.shape[1]
    batch_size = est._batch_size(n)
    sample_idx = np.arange(n)
    dropout_rng = np.random.default_rng(rng.randint(2 ** 32)) if est._dropout else None
    divisor, net = est._loss_divisor, est.network_
    for _ in range(est.max_iter):
        if est.shuffle:
            sample_idx = _shuffle(sample_idx, random_state=rng)
        accumulated = 0.0
        for start in range(0, n, batch_size):
            if est.shuffle:
                batch = sample_idx[start:start + batch_size]
                Xb, Yb = XT[:, batch], Y[:, batch]
            else:
                batch = slice(start, min(start + batch_size, n))
                Xb, Yb = np.ascontiguousarray(XT[:, batch]), np.ascontiguousarray(Y[:, batch])
            m = Xb.shape[1]
            l2 = _l2(net._Ws, est.alpha, m) if divisor != 1 else 0.0
            net.fit(Xb, Yb, learning_rate=est._learning_rate, num_iterations=1, cost_every=1,
                    optimizer=optimizer, lambd=est.alpha, keep_prob=est.keep_prob,
                    seed=dropout_rng, resume=est._resume)
            est._resume = True
            cost = net.costs_[0][1]
            accumulated += ((cost - l2) / divisor + l2) * m
        est.loss_ = accumulated / n
        if _end_epoch(est, n, validation, incremental):
            return


def _engine_epochs(est, XT, Y, rng, optimizer, validation, incremental):
    """Whole epochs in the backend's engine (the driver's shuffles, from a
    Generator seeded by ``rng``), as few ``Network.fit`` calls as the
    bookkeeping allows: the cost recorded before an epoch is the loss over
    all samples after the previous one, and the callback books it there and
    says whether to go on. One call runs every epoch when nothing outside
    the engine needs the weights between epochs; else (early stopping's
    score, the user's callback, invscaling's rate, L2 of several targets)
    one call per epoch. A call whose next epoch must run at another learning
    rate ("adaptive") stops after booking, and the next call runs it."""
    n = XT.shape[1]
    batch_size = est._batch_size(n)
    seed = np.random.default_rng(rng.randint(2 ** 32))
    divisor, net = est._loss_divisor, est.network_
    epochs = 1 if incremental else est.max_iter
    whole = (validation is None and est.callback is None and (divisor == 1 or not est.alpha)
             and not (est.solver == "sgd" and est.learning_rate == "invscaling"))
    # pending: an epoch ran whose loss is not booked yet; going: the callback's last answer.
    state = {"pending": False, "stop": False, "going": True}

    def on_cost(i, cost):
        state["pending"] = state["pending"] or i > 0  # an epoch ran since the last cost
        state["going"] = _book(i, cost)
        return state["going"]

    def _book(i, cost):
        if not state["pending"]:  # the first cost, or booked before a new rate
            return True
        state["pending"] = False
        l2 = _l2(net._Ws, est.alpha, n) if divisor != 1 else 0.0  # (one epoch per call)
        est.loss_ = (cost - l2) / divisor + l2
        rate = est._learning_rate
        state["stop"] = _end_epoch(est, n, validation, incremental)
        return not state["stop"] and est._learning_rate == rate

    while not state["stop"]:
        left = epochs - est.n_iter_ - state["pending"]
        net.fit(XT, Y, learning_rate=est._learning_rate, cost_every=1,
                num_iterations=left + 1 if whole else 1, batch_size=batch_size,
                optimizer=optimizer, lambd=est.alpha, keep_prob=est.keep_prob, seed=seed,
                callback=on_cost, resume=est._resume)
        est._resume = True
        # The driver ran the iteration after the last cost the callback let go on.
        state["pending"] = state["pending"] or state["going"]


def _end_epoch(est, n, validation, incremental):
    """scikit-learn's bookkeeping after an epoch whose loss is ``est.loss_``:
    the curves, the stopping rule, the schedules, the callback; whether to stop."""
    est.n_iter_ += 1
    est.t_ += n
    est.loss_curve_.append(est.loss_)
    if est.verbose:
        print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
    _update_no_improvement_count(est, validation)
    if est.solver == "sgd" and est.learning_rate == "invscaling":
        est._learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
    if est.callback is not None and est.callback(est) is False:
        return True
    if est._no_improvement_count > est.n_iter_no_change:
        if _trigger_stopping(est):
            return True
        est._no_improvement_count = 0
    if incremental:
        return True
    if est.n_iter_ == est.max_iter:
        warnings.warn(f"{type(est).__name__}: Stochastic Optimizer: maximum iterations "
                      f"({est.max_iter}) reached and the optimization hasn't converged yet.",
                      ConvergenceWarning)
        return True
    return False


def _update_no_improvement_count(est, validation):
    """scikit-learn's rule: the training loss, or with ``early_stopping`` the
    validation score (the best parameters kept); also the validation loss."""
    if validation is not None:
        X_val, y_val, Y_val = validation
        score = est._score_arrays(X_val, y_val)
        est.validation_scores_.append(score)
        XvT = np.ascontiguousarray(X_val.T, dtype=est.network_.dtype)
        est.validation_loss_curve_.append(est.network_.cost(XvT, Y_val) / est._loss_divisor)
        if est.verbose:
            print(f"Validation score: {score:f}")
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_params = est.network_.params
        return
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if est.loss_curve_[-1] < est.best_loss_:
        est.best_loss_ = est.loss_curve_[-1]


def _trigger_stopping(est):
    """Whether to stop: yes, except for sgd's "adaptive" rate, divided by 5
    instead until it is 1e-6 or less (scikit-learn's ``trigger_stopping``)."""
    what = "Validation score" if est.early_stopping else "Training loss"
    msg = (f"{what} did not improve more than tol={est.tol:f} for "
           f"{est.n_iter_no_change} consecutive epochs.")
    if est.solver != "sgd" or est.learning_rate != "adaptive" or est._learning_rate <= 1e-6:
        if est.verbose:
            print(msg + " Stopping.")
        return True
    est._learning_rate /= 5.0
    if est.verbose:
        print(msg + f" Setting learning rate to {est._learning_rate:f}")
    return False


def fit_lbfgs(est, X, Y):
    """scikit-learn's ``_fit_lbfgs``: L-BFGS-B on the whole data, the loss and
    gradient from the backend's ``forward``/``backward``; ``n_iter_`` and
    ``loss_`` as scikit-learn sets them."""
    net = est.network_
    module, acts, loss = net._backend, tuple(net._acts), net._loss
    XT, Y = np.ascontiguousarray(X.T), np.ascontiguousarray(Y, dtype=net._Ws[0].dtype)
    m, dims, dtype = XT.shape[1], net.layer_dims, net._Ws[0].dtype
    threads = 1
    if getattr(module, "COMPILED", False):
        threads = _threads.decide(net.threads, dims, m, module.AUTO_THREADS_MIN_WORK["full"])[0]
    shapes = list(zip(dims, dims[1:]))
    # scikit-learn's packing: every coefs_[i] (n_in, n_out) row-major, then the intercepts.
    ends = np.cumsum([a * b for a, b in shapes] + [b for _, b in shapes])

    def unpack(theta):
        parts = np.split(theta.astype(dtype, copy=False), ends[:-1])
        Ws = [np.ascontiguousarray(p.reshape(a, b).T) for p, (a, b) in zip(parts, shapes)]
        bs = [np.ascontiguousarray(p.reshape(-1, 1)) for p in parts[len(shapes):]]
        return Ws, bs

    def loss_grad(theta):
        Ws, bs = unpack(theta)
        AL, caches = module.forward(Ws, bs, acts, XT, threads)
        J = (_losses.cost(loss, AL, caches[-1][1], Y, acts[-1]) / est._loss_divisor
             + _l2(Ws, est.alpha, m))
        dWs, dbs = module.backward(AL, Y, caches, acts, loss, threads, net.relu_grad_at_zero)
        grad = [(dW + (est.alpha / m) * W).T.ravel() for dW, W in zip(dWs, Ws)]
        return J, np.concatenate(grad + [db.ravel() for db in dbs]).astype(np.float64)

    theta0 = np.concatenate([W.T.ravel() for W in net._Ws] + [b.ravel() for b in net._bs])
    with _threads.running(), np.errstate(over="ignore", invalid="ignore"):
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
