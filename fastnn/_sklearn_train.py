"""How :mod:`fastnn.sklearn`'s estimators train with a stochastic solver:
MLPClassifier's ``_fit_stochastic`` (solvers "sgd" and "adam") over a
:class:`fastnn.Network` (``_fit_lbfgs`` is :mod:`fastnn._sklearn_lbfgs`).

Design
------
- Stochastic solvers: whole epochs in the backend's engine
  (:meth:`fastnn.Network.fit` with ``batch_size``), with scikit-learn's
  shuffles (its ``shuffle`` of the indices per epoch from its RandomState,
  handed over as ``orders``), its update rules
  (:class:`fastnn.optimizers.SklearnSGD`, :class:`~fastnn.optimizers.SklearnAdam`),
  L2 as ``lambd = alpha`` (the course's (λ/2m)·Σ‖W‖² is scikit-learn's
  0.5·alpha·Σ‖W‖²/m) and its ``loss_curve_``: the epoch loss the engine
  adds up from each mini-batch's forward before its step (``on_epoch``),
  which is the mean of scikit-learn's batch losses, at no extra forward.
  One ``Network.fit`` for all epochs, or one per epoch where the weights
  are needed between epochs (see :func:`_epochs`); no recorded costs
  (``cost_every=None``: no forward over all samples), the divergence watch
  reads the epoch losses. A sparse X (densified a batch at a time, see
  :mod:`fastnn._sklearn_data`) and the one loss an epoch's cannot give
  (:func:`_per_batch`) run one ``Network.fit`` per mini-batch
  (:func:`_batch_by_batch`).
- Per-example weights (``sample_weight``) travel with the examples: to
  ``Network.fit`` (its batches gather them with their columns), through the
  validation split, into the validation score.
- The stopping rules, the learning-rate schedules ("invscaling", "adaptive")
  and the best-validation-score restore are scikit-learn's, line for line.
"""

import copy
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from . import _sklearn_data as _data
from .network import Network

__all__ = ["fit_stochastic", "diverged", "DivergedError", "l2"]


class DivergedError(FloatingPointError, ValueError):
    """Training diverged. A ``FloatingPointError``, as :class:`fastnn.Network`
    raises, and a ``ValueError``, as MLPClassifier raises ("Solver produced
    non-finite parameter weights"), so code written for either catches it."""


def diverged(est, exc):
    """``exc`` (the Network's FloatingPointError) in the estimator's terms."""
    return DivergedError(
        f"{type(est).__name__}.fit: the solver diverged (MLPClassifier says \"Solver "
        f"produced non-finite parameter weights\" here): {exc} Here: lower "
        f"learning_rate_init (it is {est.learning_rate_init}), or scale the features (e.g. "
        f"StandardScaler in a Pipeline).")


def l2(Ws, alpha, weight_sum):
    """scikit-learn's L2 term 0.5·alpha·Σ‖W‖² / Σw (0 where Σw = 0)."""
    if not weight_sum:
        return 0.0
    return 0.5 * alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in Ws) / weight_sum


def _split(est, X, y, Y, sample_weight, rng):
    """scikit-learn's validation split: ``validation_fraction`` of the samples
    (stratified by class for a classifier of one label per sample), their
    weights split with them. A multiclass y too small to stratify (a class of
    one sample, or fewer samples on a side than classes) is split as
    scikit-learn splits every multiclass y, unstratified; a binary y is
    refused there as by scikit-learn, which stratifies it too."""
    stratify = y if getattr(est, "_stratify", False) else None
    if (stratify is not None and est._label_binarizer.y_type_ == "multiclass"
            and not _can_stratify(y, est.validation_fraction)):
        stratify = None
    arrays = [X, y, Y.T] + ([] if sample_weight is None else [sample_weight])
    parts = train_test_split(*arrays, random_state=rng, test_size=est.validation_fraction,
                             stratify=stratify)
    X_train, X_val, _, y_val, Y_train, Y_val = parts[:6]
    w_train, w_val = parts[6:] if sample_weight is not None else (None, None)
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                         "or the size of your dataset.")
    return X_train, Y_train.T, w_train, (X_val, y_val, np.ascontiguousarray(Y_val.T), w_val)


def _can_stratify(y, test_size):
    """Whether ``train_test_split(..., test_size, stratify=y)`` can split y:
    every class has 2 samples or more and each side gets a sample of each
    (``StratifiedShuffleSplit``'s conditions)."""
    _, counts = np.unique(y, return_counts=True)
    n_test = int(np.ceil(test_size * len(y)))
    return counts.min() >= 2 and min(n_test, len(y) - n_test) >= len(counts)


def fit_stochastic(est, X, y, Y, sample_weight, rng, optimizer, incremental):
    """Train ``est.network_`` on X (n_samples, n_features), dense or sparse,
    targets y as given (for the validation score), Y in the Network's
    orientation (n_outputs, n_samples) and the per-example weights (or None):
    scikit-learn's ``_fit_stochastic``."""
    if not incremental or not hasattr(est, "_learning_rate"):
        est._learning_rate = float(est.learning_rate_init)
        est._resume = False  # a new optimizer state, as scikit-learn's new optimizer
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    if est._resume and est.network_.optimizer_ != optimizer:
        raise ValueError(
            f"{type(est).__name__}.partial_fit: the optimizer changed since the last fit "
            f"(solver, momentum, nesterovs_momentum, beta_1, beta_2 or epsilon): its state "
            f"belongs to {est.network_.optimizer_!r}, not {optimizer!r}. Set them back, or "
            f"fit anew.")
    validation = None
    if est.early_stopping:
        X, Y, sample_weight, validation = _split(est, X, y, Y, sample_weight, rng)
    data = _data.Examples(X, rows=getattr(est.network_._backend, "HAS_ROW_BATCHES", False))
    Y = np.ascontiguousarray(Y)
    # The dropout masks' seed (drawn before the shuffles; scikit-learn has no dropout).
    seed = int(rng.randint(2 ** 32)) if est._dropout else 0
    _warn_batch_size(est, data.m)
    orders = _orders(data.m, est.shuffle, rng)
    run = _batch_by_batch if data.sparse or _per_batch(est) else _epochs
    est.n_iter_ = 0
    try:
        run(est, data, Y, sample_weight, orders, seed, optimizer, validation, incremental)
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


def _warn_batch_size(est, n):
    """scikit-learn's warning, once a call, for a ``batch_size`` clipped to the
    n training samples (:func:`fastnn._sklearn_params.network_batch_size`)."""
    if est.batch_size not in ("auto", None) and est.batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped")


def _orders(n, shuffle, rng):
    """scikit-learn's epoch orders, as ``Network.fit``'s ``orders``: each epoch
    ``sample_idx = shuffle(sample_idx, random_state=rng)`` (the previous
    epoch's order shuffled again), or 0..n-1 every epoch without ``shuffle``;
    drawn only for the epochs that run, as its loop draws them.

    ``sklearn.utils.shuffle`` of one array is ``resample(replace=False)``: an
    ``arange`` shuffled in place by the RandomState, then taken; drawn here the
    same way, the same numbers (the equivalence tests hold the weights to
    scikit-learn's), without its parameter checks and array-API dispatch --
    15 % of a digits fit's time at batch 200."""
    sample_idx = np.arange(n)

    def orders(count):
        nonlocal sample_idx
        out = np.empty((count, n), dtype=np.int64)
        for e in range(count):
            if shuffle:
                permutation = np.arange(n)
                rng.shuffle(permutation)
                sample_idx = sample_idx[permutation]
            out[e] = sample_idx
        return out

    return orders


def _needs_weights_between_epochs(est, validation, incremental):
    """Whether something outside the engine reads the weights or sets a new
    learning rate after every epoch: early stopping's validation score, the
    user's callback, invscaling's rate (and partial_fit's single epoch)."""
    return (validation is not None or est.callback is not None or incremental
            or (est.solver == "sgd" and est.learning_rate == "invscaling"))


#: What booking an epoch changes (with the training loss: no validation in a call of many epochs).
_BOOKED = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "_no_improvement_count",
           "_learning_rate")


def _per_batch(est):
    """scikit-learn's squared error is a mean over the targets, its L2 term
    is not: an epoch's loss cannot be split into the two, each batch's can."""
    return est._loss_divisor != 1 and bool(est.alpha)


def _epochs(est, data, Y, sample_weight, orders, seed, optimizer, validation, incremental):
    """scikit-learn's epochs run whole in the backend's engine, with its
    shuffles (``orders``) and its ``loss_curve_`` entry (the epoch loss its
    batches saw, ``on_epoch``). One ``Network.fit`` runs every epoch, its
    ``on_epoch`` booking each and applying the stopping rule; a call whose
    next epoch must run at another rate ("adaptive") stops after booking and
    the next call runs it. When the weights are needed between epochs
    (:func:`_needs_weights_between_epochs`: ``Network.fit`` trains copies and
    hands them over when it returns), one call per epoch, booked after it."""
    XT, n, net, divisor = data.XT, data.m, est.network_, est._loss_divisor
    between = _needs_weights_between_epochs(est, validation, incremental)
    stop = False
    while not stop:
        rate = est._learning_rate
        epochs = 1 if between else est.max_iter - est.n_iter_

        caught = []  # warnings of the booking, raised once the call has returned the weights

        def on_epoch(i, loss):
            nonlocal stop
            est.loss_ = loss / divisor  # divisor > 1 only without L2 (see fit_stochastic)
            if between:
                return None
            with warnings.catch_warnings(record=True) as booked_warnings:
                warnings.simplefilter("always")
                stop = _end_epoch(est, n, None, incremental)
            caught.extend(booked_warnings)
            return not stop and est._learning_rate == rate

        booked = {name: copy.copy(est.__dict__[name]) for name in _BOOKED if name in est.__dict__}
        try:
            net.fit(XT, Y, learning_rate=rate, num_iterations=epochs, cost_every=None,
                    batch_size=est._batch_size(n), optimizer=optimizer, lambd=est.alpha,
                    keep_prob=est.keep_prob, seed=seed, resume=est._resume, on_epoch=on_epoch,
                    orders=orders, **_data.with_weights(sample_weight))
        except KeyboardInterrupt:
            # The network keeps the weights it had before the call: so do the records.
            for name in _BOOKED:
                est.__dict__.pop(name, None)
            est.__dict__.update(booked)
            raise
        est._resume = True
        for w in caught:  # (as errors they would have dropped the call's weights)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if between:
            stop = _end_epoch(est, n, validation, incremental)


def _batch_by_batch(est, data, Y, sample_weight, orders, seed, optimizer, validation,
                    incremental):
    """One ``Network.fit`` step per mini-batch of each epoch's order: a
    sparse X's batches, each densified as it comes; and where the loss must
    be split batch by batch (several targets and ``alpha > 0``: see
    :func:`_per_batch`), its L2 term from the weights the batch starts from.
    The same orders, steps and stopping rules as :func:`_epochs`; the dropout
    masks follow one stream across the calls."""
    n = data.m
    batch_size = est._batch_size(n)
    per_batch = _per_batch(est)
    divisor, net = est._loss_divisor, est.network_
    masks = np.random.default_rng(seed)
    while True:
        accumulated, order = 0.0, orders(1)[0]
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            weights = None if sample_weight is None else sample_weight[idx]
            penalty = (l2(net._Ws, est.alpha, len(idx) if weights is None else weights.sum())
                       if per_batch else 0.0)
            loss = []
            net.fit(data.columns(idx), Y[:, idx], learning_rate=est._learning_rate,
                    num_iterations=1, cost_every=None, optimizer=optimizer, lambd=est.alpha,
                    keep_prob=est.keep_prob, seed=masks, resume=est._resume,
                    on_epoch=lambda i, J: loss.append(J), **_data.with_weights(weights))
            est._resume = True
            J = (loss[0] - penalty) / divisor + penalty if per_batch else loss[0] / divisor
            accumulated += J * len(idx)
        est.loss_ = accumulated / n
        if _end_epoch(est, n, validation, incremental):
            return


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
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and "
                      f"the optimization hasn't converged yet.", ConvergenceWarning)
        return True
    return False


def _update_no_improvement_count(est, validation):
    """scikit-learn's rule: the training loss, or with ``early_stopping`` the
    validation score (the best parameters kept); also the validation loss."""
    if validation is not None:
        X_val, y_val, Y_val, w_val = validation
        score = est._score_arrays(X_val, y_val, w_val)
        est.validation_scores_.append(score)
        est.validation_loss_curve_.append(
            _data.cost(est.network_, X_val, Y_val, w_val) / est._loss_divisor)
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
    if est.solver != "sgd" or est.learning_rate != "adaptive":
        if est.verbose:
            print(msg + " Stopping.")
        return True
    if est._learning_rate <= 1e-6:
        if est.verbose:
            print(msg + " Learning rate too small. Stopping.")
        return True
    est._learning_rate /= 5.0
    if est.verbose:
        print(msg + f" Setting learning rate to {est._learning_rate:f}")
    return False
