"""scikit-learn estimators around :class:`fastnn.Network`.

``NetworkClassifier`` and ``NetworkRegressor`` take the parameters of
:class:`sklearn.neural_network.MLPClassifier` / ``MLPRegressor`` where the
concept is the same (``hidden_layer_sizes``, ``activation``, ``batch_size``,
``learning_rate_init``, ``max_iter``, ``tol``, ``n_iter_no_change``,
``random_state``) plus fastnn's own (``backend``, ``dtype``, ``threads``,
``relu_grad_at_zero``), so they drop into a ``Pipeline``, ``GridSearchCV`` or
``cross_val_score``.

Design
------
- Rows are examples here (scikit-learn's convention); the Network keeps the
  course's columns. X is validated in Fortran order, so ``X.T`` is the
  C-contiguous (n_x, m) array the Network wants without a second copy.
- The optimizer is the lecture's: plain (mini-batch) gradient descent, no
  momentum, no Adam, no L2 penalty. That is why ``learning_rate_init`` defaults
  to 0.01 where MLPClassifier's Adam defaults to 0.001.
- ``max_iter`` epochs run in one ``Network.fit`` call with ``cost_every=1``;
  its callback receives the cost over all examples before each epoch, i.e.
  after the previous one, and applies scikit-learn's stopping rule to it (see
  :class:`fastnn._sklearn_params.EpochLog`). So ``loss_curve_`` holds the exact training loss after
  each epoch, where MLPClassifier records the mean of the mini-batch losses seen
  during the epoch.
- Parameters are validated in ``fit`` (``__init__`` only stores them), each
  error naming the parameter.

scikit-learn stays optional: ``import fastnn`` never imports it, and this
module says how to install it when it is missing.
"""

import warnings

try:
    import sklearn  # noqa: F401
except ImportError as exc:
    raise ImportError("fastnn.sklearn needs scikit-learn, an optional dependency of fastnn: "
                      "pip install fastnn[sklearn]") from exc

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # 1.4 and 1.5: the method validate_data replaced
    def _validate_data(estimator, X="no_validation", y="no_validation", reset=True, **params):
        return estimator._validate_data(X, y, reset=reset, **params)

from . import _sklearn_params as _params
from ._sklearn_params import ACTIVATIONS  # noqa: F401  (the hidden activations it takes)
from .network import Network

__all__ = ["NetworkClassifier", "NetworkRegressor"]


class _NetworkEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, validation,
    training. Subclasses say how y becomes the Network's output."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, batch_size="auto",
                 learning_rate_init=0.01, max_iter=200, tol=1e-4, n_iter_no_change=10,
                 random_state=None, backend="numpy", dtype="float64", threads=None,
                 relu_grad_at_zero=0):
        # Stored as given (scikit-learn's convention); checked in fit.
        self.hidden_layer_sizes, self.activation = hidden_layer_sizes, activation
        self.batch_size, self.learning_rate_init = batch_size, learning_rate_init
        self.max_iter, self.tol, self.n_iter_no_change = max_iter, tol, n_iter_no_change
        self.random_state = random_state
        self.backend, self.dtype, self.threads = backend, dtype, threads
        self.relu_grad_at_zero = relu_grad_at_zero

    # ---------------------------------------------------------------- validation
    def _check_params(self):
        """Every parameter that does not depend on the data, checked; returns
        the hidden sizes, the fastnn activation and the dtype."""
        return _params.check_params(self)

    # ---------------------------------------------------------------- training
    def _train(self, X, Y, n_outputs, output_activation, hidden, activation):
        """Fit ``network_`` to X (n_samples, n_features), Fortran-ordered, and
        Y in the Network's orientation: (n_outputs, m), or (m,) labels."""
        rng = _params.generator(self.random_state)
        # He init for the ReLU family, Xavier for the others: the lecture's
        # randn * 0.01 leaves a deep ReLU net's signal to vanish.
        init = "he" if hidden and activation in ("relu", "leaky_relu") else "xavier"
        network = Network([X.shape[1], *hidden, n_outputs], hidden_activation=activation,
                          output_activation=output_activation, init=init, seed=rng,
                          backend=self.backend, dtype=self.dtype, threads=self.threads,
                          relu_grad_at_zero=self.relu_grad_at_zero)
        log = _params.EpochLog(self.max_iter, self.tol, self.n_iter_no_change)
        try:
            # One iteration more than max_iter: its cost, before its update,
            # is the loss after epoch max_iter, and the log stops it there.
            network.fit(X.T, Y, learning_rate=self.learning_rate_init,
                        num_iterations=self.max_iter + 1, cost_every=1,
                        batch_size=_params.network_batch_size(self.batch_size, X.shape[0]),
                        seed=rng, callback=log)
        except FloatingPointError as exc:
            # The Network's message speaks of its learning_rate; say it in
            # this estimator's terms too.
            raise FloatingPointError(
                f"{type(self).__name__}.fit: {exc} Here: lower learning_rate_init (it is "
                f"{self.learning_rate_init}), or scale the features (e.g. StandardScaler in a "
                f"Pipeline).") from None
        self.network_ = network
        self.loss_curve_ = log.loss_curve
        self.loss_ = log.loss_curve[-1]
        self.best_loss_ = log.best_loss
        self.n_iter_ = len(log.loss_curve)
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = n_outputs
        self.out_activation_ = _params.OUT_ACTIVATION[output_activation]
        if not log.converged:
            warnings.warn(f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning)
        return self

    def _output(self, X):
        """The Network's output A_L for X (n_samples, n_features), as
        (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=self.network_.dtype, order="F")
        return self.network_.predict_proba(X.T).T

    # ---------------------------------------------------------------- sklearn's view
    @property
    def coefs_(self):
        """Weights in scikit-learn's orientation: ``coefs_[i]`` of shape
        (n_units of layer i, n_units of layer i + 1), i.e. ``W{i+1}.T`` (copies)."""
        check_is_fitted(self)
        params = self.network_.params
        return [params[f"W{l}"].T for l in range(1, self.n_layers_)]

    @property
    def intercepts_(self):
        """Biases in scikit-learn's orientation: ``intercepts_[i]`` of shape
        (n_units of layer i + 1,), i.e. ``b{i+1}`` flattened (copies)."""
        check_is_fitted(self)
        params = self.network_.params
        return [params[f"b{l}"].ravel() for l in range(1, self.n_layers_)]

    @property
    def threads_used_(self):
        """``(threads, why)``: the threads the last fit ran on and why (see
        :attr:`fastnn.Network.threads_used_`)."""
        check_is_fitted(self)
        return self.network_.threads_used_


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer; ``()`` for none (a linear model on the
        output's link).
    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu"}, default="relu"
        Activation of the hidden layers: scikit-learn's names, plus fastnn's
        ``"sigmoid"`` (= ``"logistic"``) and ``"leaky_relu"`` (slope 0.01).
        Weights start He-initialized for the ReLU family, Xavier for the others.
    batch_size : int, "auto" or None, default="auto"
        Examples per update. ``"auto"`` is ``min(200, n_samples)`` as in
        MLPClassifier; ``None`` is the lecture's full batch (one update per
        epoch); an int larger than n_samples is clipped to it, with a warning.
    learning_rate_init : float, default=0.01
        The constant learning rate of plain gradient descent. MLPClassifier's
        default, 0.001, is tuned for Adam, whose steps adapt; plain gradient
        descent needs a larger one to get anywhere in ``max_iter`` epochs, and
        0.01 is still stable for the squared error on standardized features
        with 100 hidden units. Unscaled features (or, for the regressor,
        targets in the hundreds) need a smaller one, or scaling: plain
        gradient descent diverges where Adam would not, and ``fit`` then
        raises ``FloatingPointError``.
    max_iter : int, default=200
        Maximum number of epochs (as MLPClassifier's stochastic solvers count).
    tol : float, default=1e-4
        The improvement of the training loss that counts (see ``n_iter_no_change``).
    n_iter_no_change : int, default=10
        scikit-learn's rule: training stops when the loss after an epoch has not
        been below the best so far minus ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs. If ``max_iter`` comes first, a
        ``ConvergenceWarning`` says so.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights and the shuffles of each epoch. An int gives
        the same fit every time; None draws fresh entropy.
    backend : str, default="numpy"
        The fastnn backend that trains and predicts, see
        :func:`fastnn.backends.available`.
    dtype : {"float64", "float32"}, default="float64"
        Dtype of the parameters and the arithmetic; X is converted to it.
    threads : int or None, default=None
        Threads for backends that use them; None lets the backend choose.
    relu_grad_at_zero : {0, 1}, default=0
        ReLU's (and leaky ReLU's) derivative at exactly 0 in backpropagation:
        0 is scikit-learn's convention (and PyTorch's, JAX's, the course's
        assignment code's), so it is the default here; 1 is the lecture
        slides' and ``fastnn.Network``'s default.

    There is no ``solver``, ``momentum``, ``alpha`` (L2 penalty),
    ``learning_rate`` schedule or ``early_stopping`` on a validation split:
    training is the lecture's plain gradient descent on the training loss,
    i.e. MLPClassifier(solver="sgd", momentum=0, alpha=0, learning_rate="constant").
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        The training loss after the last epoch, over all samples.
    loss_curve_ : list of float
        The training loss after each epoch (exact, over all samples, where
        MLPClassifier records the mean of the mini-batch losses during it).
    best_loss_ : float
        The smallest entry of ``loss_curve_``.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string column names.
    n_layers_ : int
        Layers, input and output included (as MLPClassifier counts).
    n_outputs_ : int
        Units of the output layer.
    out_activation_ : str
        The output activation, in scikit-learn's names.
    network_ : fastnn.Network
        The trained network (examples as columns: ``network_.predict_proba(X.T)``).
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (units of layer i, units of layer i + 1): the
        weights in scikit-learn's orientation (copies of ``network_``'s ``W.T``).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape (units of layer i + 1,) (copies).
    threads_used_ : (int, str)
        The threads the fit ran on and why: ``threads`` asked for, or what
        ``threads=None`` found -- the CPUs this process may use, capped by the
        limits its caller set (loky's and Dask's workers set
        ``OMP_NUM_THREADS``), and 1 while other fits run in this process's
        threads (joblib's threading backend).
"""


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    __doc__ = """A fastnn Network as a scikit-learn classifier.

    Two classes train one sigmoid output unit with the binary cross-entropy;
    K > 2 classes, K softmax units with the categorical cross-entropy. Labels
    may be of any type scikit-learn accepts; ``classes_`` maps them.
""" + _PARAMETERS_DOC + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.""" + _ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastnn.sklearn import NetworkClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), NetworkClassifier(
    ...     (16,), batch_size=16, learning_rate_init=0.1, random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.95
    True
"""

    def fit(self, X, y):
        """Train on X of shape (n_samples, n_features) and labels y of shape (n_samples,).

        Returns
        -------
        self
        """
        hidden, activation, dtype = self._check_params()
        X, y = _validate_data(self, X, y, dtype=dtype, order="F")
        check_classification_targets(y)  # y is 1-D here: binary or multiclass
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"got one class only: {encoder.classes_[0]!r}")
        self.classes_ = encoder.classes_
        labels = encoder.transform(y)
        K = len(self.classes_)
        if K == 2:
            return self._train(X, labels, 1, "sigmoid", hidden, activation)
        return self._train(X, labels, K, "softmax", hidden, activation)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        A = self._output(X)
        return np.hstack([1 - A, A]) if A.shape[1] == 1 else A

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (-inf where a probability rounds to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample, shape (n_samples,)."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    __doc__ = """A fastnn Network as a scikit-learn regressor.

    An identity output (one unit per target) with the squared error
    ``1/2 (a - y)^2``, summed over targets and averaged over samples (for one
    target the same as MLPRegressor's loss; with several, MLPRegressor
    averages over them too).
""" + _PARAMETERS_DOC + """
    Attributes
    ----------""" + _ATTRIBUTES_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastnn.sklearn import NetworkRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> model = NetworkRegressor((32,), activation="tanh", batch_size=20,
    ...                          learning_rate_init=0.1, random_state=0)
    >>> model.fit(X, X.ravel() ** 2).score(X, X.ravel() ** 2) > 0.9
    True

    Notes
    -----
    Four of scikit-learn's estimator checks are expected to fail, all for one
    reason: ``check_fit_idempotent``, ``check_fit_check_is_fitted`` and
    ``check_n_features_in`` fit X ~ N(100, 1), unscaled, and
    ``check_regressor_multioutput`` fits targets in the hundreds. Plain
    gradient descent on the squared error diverges there at the default
    ``learning_rate_init`` (its step grows with the gradient; MLPRegressor's
    Adam normalizes it) and ``fit`` raises ``FloatingPointError``. With a
    learning rate suited to that data (1e-6) they pass.
"""

    def fit(self, X, y):
        """Train on X of shape (n_samples, n_features) and targets y of shape
        (n_samples,) or (n_samples, n_targets).

        Returns
        -------
        self
        """
        hidden, activation, dtype = self._check_params()
        X, y = _validate_data(self, X, y, dtype=dtype, order="F", multi_output=True,
                              y_numeric=True)
        self._y_ndim = y.ndim
        Y = y.reshape(len(y), -1).T  # (n_targets, m)
        return self._train(X, Y, Y.shape[0], "identity", hidden, activation)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) as y in fit."""
        A = self._output(X)
        return A.ravel() if self._y_ndim == 1 else A

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
