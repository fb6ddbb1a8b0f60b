"""What :mod:`fastnn.sklearn`'s estimators do with their parameters, apart from
scikit-learn: each checked with an error that names it, ``random_state`` turned
into a ``numpy.random.Generator``, ``batch_size`` into the Network's, and the
``Network.fit`` callback that keeps the loss curve and applies scikit-learn's
stopping rule (:class:`EpochLog`).

It imports nothing of scikit-learn, so its pieces are testable without it.
"""

import numbers
import warnings

import numpy as np

from . import _validation as _v
from . import backends as _backends

__all__ = ["ACTIVATIONS", "OUT_ACTIVATION", "EpochLog", "generator", "check_random_state",
           "check_params", "network_batch_size"]

#: The hidden activations, scikit-learn's names and fastnn's -> fastnn's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "sigmoid": "sigmoid", "leaky_relu": "leaky_relu"}

#: fastnn's output activation -> scikit-learn's name for it (``out_activation_``).
OUT_ACTIVATION = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}


class EpochLog:
    """``Network.fit``'s callback: the loss after each epoch, and when to stop.

    The callback sees the cost of iteration i before its update, which is the
    loss after epoch i (i >= 1). Training stops after epoch ``max_iter``, or
    by scikit-learn's rule (``BaseMultilayerPerceptron._fit_stochastic`` with
    ``early_stopping=False``): an epoch whose loss is not below the best loss
    so far minus ``tol`` counts one, any other resets the count to 0, and
    training stops once the count exceeds ``n_iter_no_change`` -- after
    ``n_iter_no_change + 1`` such epochs in a row.
    """

    def __init__(self, max_iter, tol, n_iter_no_change):
        self._max_iter, self._tol, self._n_iter_no_change = max_iter, tol, n_iter_no_change
        self.loss_curve = []
        self.best_loss = np.inf
        self.no_improvement_count = 0
        self.converged = False

    def __call__(self, i, cost):
        if i == 0:  # the initial parameters' cost
            return True
        self.loss_curve.append(cost)
        if cost > self.best_loss - self._tol:
            self.no_improvement_count += 1
        else:
            self.no_improvement_count = 0
        self.best_loss = min(self.best_loss, cost)
        if self.no_improvement_count > self._n_iter_no_change:
            self.converged = True
            return False
        return i < self._max_iter


def generator(random_state):
    """A ``numpy.random.Generator`` for the init and the shuffles.

    An int gives the same fit every time; a ``RandomState`` (scikit-learn's
    convention) or a ``Generator`` moves on with each fit; None draws fresh
    entropy (NumPy's global state is never used).
    """
    check_random_state(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return _v.check_seed("random_state", random_state)


def check_random_state(random_state):
    """Raise unless ``random_state`` is one :func:`generator` takes (drawing nothing)."""
    if isinstance(random_state, np.random.RandomState):
        return
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        _v.check_seed("random_state", random_state)  # a bool, a negative int
        return
    raise TypeError(f"random_state must be None, an int, a numpy.random.RandomState or a "
                    f"numpy.random.Generator; got {random_state!r}")


def _hidden_layer_sizes(hidden_layer_sizes):
    sizes = hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, (bool, np.bool_)):
        sizes = (sizes,)  # as MLPClassifier: an int is one hidden layer
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of positive ints, "
                        f"one per hidden layer; got {hidden_layer_sizes!r}")
    return [_v.check_positive_int(f"hidden_layer_sizes[{i}]", n) for i, n in enumerate(sizes)]


def check_params(estimator):
    """Every parameter of ``estimator`` that does not depend on the data, checked;
    returns the hidden sizes, the fastnn activation and the dtype."""
    est = estimator
    hidden = _hidden_layer_sizes(est.hidden_layer_sizes)
    _v.check_choice("activation", est.activation, ACTIVATIONS)
    if not (est.batch_size is None or isinstance(est.batch_size, str)):
        _v.check_positive_int("batch_size", est.batch_size)
    elif isinstance(est.batch_size, str) and est.batch_size != "auto":
        raise ValueError(f"batch_size must be a positive int, 'auto' or None; "
                         f"got {est.batch_size!r}")
    _v.check_positive_float("learning_rate_init", est.learning_rate_init)
    _v.check_positive_int("max_iter", est.max_iter)
    if isinstance(est.tol, bool) or not isinstance(est.tol, numbers.Real):
        raise TypeError(f"tol must be a non-negative number; got {est.tol!r}")
    if not 0 <= est.tol < np.inf:
        raise ValueError(f"tol must be a non-negative finite number; got {est.tol}")
    _v.check_positive_int("n_iter_no_change", est.n_iter_no_change)
    check_random_state(est.random_state)
    _backends.get(est.backend)
    dtype = _v.check_dtype(est.dtype)
    _v.check_threads(est.threads)
    _v.check_relu_grad_at_zero(est.relu_grad_at_zero)
    return hidden, ACTIVATIONS[est.activation], dtype


def network_batch_size(batch_size, n_samples):
    """The Network's batch_size for an estimator's (checked) ``batch_size``:
    None (full batch) or an int in 1..n_samples."""
    if batch_size is None:
        return None
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn(f"batch_size={batch_size} is larger than the {n_samples} "
                      f"samples; it is clipped to {n_samples} (a full batch)")
        return n_samples
    return int(batch_size)
