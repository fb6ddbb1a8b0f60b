"""scikit-learn estimators around :class:`fastnn.Network`: drop-in
replacements for :class:`sklearn.neural_network.MLPClassifier` and
``MLPRegressor``.

``NetworkClassifier`` and ``NetworkRegressor`` take every parameter of
MLPClassifier / MLPRegressor with its meaning and default (``solver="adam"``,
``alpha=1e-4``, ``learning_rate_init=0.001``, ...), train with the same update
rules (:class:`fastnn.optimizers.SklearnAdam`, ``SklearnSGD``, SciPy's
L-BFGS-B), draw the same initial weights and shuffles from the same
``random_state``, and stop by the same rules; they add fastnn's ``backend``
(default ``"auto"``), ``dtype``, ``threads``, ``relu_grad_at_zero``, dropout
(``keep_prob``), a per-epoch ``callback`` and the classifier's
``class_weight``. ``fit`` and ``partial_fit`` take ``sample_weight``; X may
be a scipy sparse matrix or array (CSR or CSC); the regressor takes
``loss="poisson"`` (an ``exp`` output and the half Poisson deviance).

Design
------
- Rows are examples here (scikit-learn's convention); the Network keeps the
  course's columns (``X.T``).
- Training is :mod:`fastnn._sklearn_train`: MLPClassifier's loop, its
  epochs run whole in the backend's engine (``Network.fit`` with
  scikit-learn's shuffles as ``orders`` and its loss curve from
  ``on_epoch``): the same model as scikit-learn's, at the engine's speed.
- Parameters are validated in ``fit`` (``__init__`` only stores them), by
  scikit-learn's ``_parameter_constraints`` (its error types and messages,
  naming the parameter) and :mod:`fastnn._sklearn_params` for the rest.
- The examples reach the Network through :mod:`fastnn._sklearn_data`: a
  sparse X densified a mini-batch at a time (never whole when large), the
  weights checked as scikit-learn's ``_check_sample_weight``.

scikit-learn stays optional: ``import fastnn`` never imports it, and this
module says how to install it when it is missing.
"""

try:
    import sklearn  # noqa: F401
except ImportError as exc:
    raise ImportError("fastnn.sklearn needs scikit-learn, an optional dependency of fastnn: "
                      "pip install fastnn[sklearn]") from exc

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (_check_partial_fit_first_call, check_classification_targets,
                                      type_of_target, unique_labels)
from sklearn.utils.validation import column_or_1d

from . import _sklearn_docs as _docs
from . import _sklearn_params as _params
from ._sklearn_base import NetworkEstimator, store_params
from ._sklearn_params import ACTIVATIONS  # noqa: F401  (the hidden activations it takes)
from ._sklearn_train import DivergedError

__all__ = ["NetworkClassifier", "NetworkRegressor", "DivergedError"]


def _stochastic(estimator):
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver!r} is not stochastic.")
    return True


def _indicator(binarizer, y):
    """``binarizer.transform(y)``: for a 1-D y of a binary or multiclass
    binarizer's classes, built from one ``searchsorted`` (LabelBinarizer's
    transform checks and passes over y several times: 6 ms of a 50 000-sample
    fit's fixed cost); anything else (multilabel, a label not among the
    classes, one class) through the binarizer itself."""
    classes = binarizer.classes_
    if y.ndim != 1 or binarizer.y_type_ not in ("binary", "multiclass") or len(classes) < 2:
        return binarizer.transform(y)
    index = np.searchsorted(classes, y)
    if not np.array_equal(classes[np.minimum(index, len(classes) - 1)], y):
        return binarizer.transform(y)
    if binarizer.y_type_ == "binary":
        return (index == 1)[:, None]
    return index[:, None] == np.arange(len(classes))


class NetworkClassifier(ClassifierMixin, NetworkEstimator):
    __doc__ = """A fastnn Network as a scikit-learn classifier: MLPClassifier's drop-in.

    Two classes train one logistic output unit with the binary cross-entropy;
    K > 2 classes, K softmax units with the categorical cross-entropy; a
    multilabel indicator y, one logistic unit per label. Labels may be of
    any type scikit-learn accepts; ``classes_`` maps them.
""" + _docs.PARAMETERS + """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes (not in MLPClassifier): each sample's weight
        (``sample_weight``, or 1) times its class's --
        ``sklearn.utils.class_weight.compute_sample_weight(class_weight, y)``;
        ``"balanced"`` weighs each class by n_samples / (n_classes * its
        count). Not for a multilabel y, nor ``"balanced"`` in ``partial_fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.""" + _docs.ATTRIBUTES + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastnn.sklearn import NetworkClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), NetworkClassifier(
    ...     (16,), learning_rate_init=0.01, max_iter=500, random_state=0))
    >>> model.fit(X, y).score(X, y) > 0.95
    True
"""

    _parameter_constraints = _params.constraints(regressor=False)
    _y_numeric = False

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", dtype=None, threads=None, relu_grad_at_zero=0, keep_prob=1.0,
                 callback=None, class_weight=None):
        store_params(self, locals())

    def _targets(self, y, first_pass, incremental, classes):
        """y as the Network's (n_outputs, m) targets: the label binarizer's
        indicator columns, transposed; also the output activation and loss."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if incremental and _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel")
                                      else classes)
        elif first_pass:
            # A 1-D y's binarizer is the one fit on its classes (the same
            # classes_ and y_type_), without LabelBinarizer.fit's own passes
            # over y; an object y (mixed types: its error) is fit as it is.
            plain = y.ndim == 1 and y.dtype.kind != "O"
            self._label_binarizer = LabelBinarizer().fit(np.unique(y) if plain else y)
            self.classes_ = self._label_binarizer.classes_
        else:
            seen = unique_labels(y)
            if self.warm_start and not incremental:
                if set(seen) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {seen}")
            elif len(np.setdiff1d(seen, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {seen}.")
        self._stratify = self._label_binarizer.y_type_ != "multilabel-indicator"
        Y = _indicator(self._label_binarizer, y).T.astype(float)
        output = "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"
        return np.ascontiguousarray(Y), output, "cross_entropy"

    def fit(self, X, y, sample_weight=None):
        """Train on X of shape (n_samples, n_features), dense or sparse, and
        labels y of shape (n_samples,), or a multilabel indicator (n_samples,
        n_labels); ``sample_weight`` of shape (n_samples,) weighs each sample's
        loss (times ``class_weight``'s weight of its class).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), from where the last fit left the weights and
        the optimizer's state. ``classes`` (every class) is required on the
        first call.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_``
        order. One logistic output (two classes, or one: the single class of a
        y that had one, whose probability the net learns to keep low, as
        MLPClassifier's) gives two columns, 1 - p and p, as MLPClassifier's."""
        A = self._output(X)
        if A.shape[1] == 1:
            return np.hstack([1 - A, A])
        return A

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (-inf where a probability rounds to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample, shape (n_samples,) (multilabel:
        the indicator of each label above 0.5, shape (n_samples, n_labels))."""
        return self._predict(self._output(X))

    def _predict(self, A):
        if self.n_outputs_ == 1:
            A = A.ravel()
        return self._label_binarizer.inverse_transform(A)

    def _score_arrays(self, X, y, sample_weight=None):
        """``accuracy_score(y, predict(X), sample_weight=...)`` of the
        validation split after each epoch, without the checks of data already
        checked: the label binarizer's inverse (argmax, or A > 0.5) and the
        (weighted) share of samples whose every label is right -- the same
        float (NaN where an output is not finite, as scikit-learn's)."""
        A = self._output(X, check_input=False)
        if not np.isfinite(A).all():
            return np.nan
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            right = np.all((A > 0.5).astype(int) == np.asarray(y).reshape(A.shape), axis=1)
        else:
            picked = A.argmax(axis=1) if A.shape[1] > 1 else (A[:, 0] > 0.5).astype(int)
            right = self.classes_.take(picked, mode="clip") == np.ravel(y)
        return float(np.average(right, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NetworkRegressor(RegressorMixin, NetworkEstimator):
    __doc__ = """A fastnn Network as a scikit-learn regressor: MLPRegressor's drop-in.

    An identity output, one unit per target, with scikit-learn's squared
    error (``loss_``: the mean over samples and targets of ``(a - y)^2 / 2``);
    or with ``loss="poisson"`` an exponential output and the half Poisson
    deviance (``loss_``: the mean over samples of its sum over targets of
    ``y log(y / a) - y + a``), as MLPRegressor.

    loss : {"squared_error", "poisson"}, default="squared_error"
        ``"poisson"`` (counts, rates): y must be >= 0, and the predictions
        are ``exp`` of the last layer's logits (``out_activation_ == "exp"``).
        The first positional parameter, as MLPRegressor's (then
        ``hidden_layer_sizes``, ``activation``; the rest by keyword).
""" + _docs.PARAMETERS + """
    Attributes
    ----------""" + _docs.ATTRIBUTES + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastnn.sklearn import NetworkRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> model = NetworkRegressor(hidden_layer_sizes=(32,), activation="tanh",
    ...                          learning_rate_init=0.01, random_state=0)
    >>> model.fit(X, X.ravel() ** 2).score(X, X.ravel() ** 2) > 0.9
    True
"""

    _parameter_constraints = _params.constraints(regressor=True)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", dtype=None, threads=None, relu_grad_at_zero=0, keep_prob=1.0,
                 callback=None):
        store_params(self, locals())

    def _check_targets(self, y):
        if self.loss == "poisson" and np.any(y < 0):  # PoissonRegressor's message
            raise ValueError("Some value(s) of y are out of the valid range of the loss "
                             "'poisson': y must be >= 0")

    def _targets(self, y, first_pass, incremental, classes):
        self._y_ndim = y.ndim
        Y = y.reshape(len(y), -1).T.astype(float)
        if not first_pass and Y.shape[0] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[0]} targets; the network was fitted to "
                             f"{self.n_outputs_}")
        if self.loss == "poisson":
            return np.ascontiguousarray(Y), "exp", "poisson"
        return np.ascontiguousarray(Y), "identity", "mse"

    @property
    def _loss_divisor(self):
        """scikit-learn's squared error is a mean over the targets, its
        Poisson deviance a sum (as the Network's cost)."""
        return self.n_outputs_ if self.loss == "squared_error" else 1

    def fit(self, X, y, sample_weight=None):
        """Train on X of shape (n_samples, n_features), dense or sparse, and
        targets y of shape (n_samples,) or (n_samples, n_targets);
        ``sample_weight`` of shape (n_samples,) weighs each sample's loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), from where the last fit left the weights and
        the optimizer's state.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) as y in fit."""
        A = self._output(X)
        return A.ravel() if self._y_ndim == 1 else A

    def _score_arrays(self, X, y, sample_weight=None):
        A = self._output(X, check_input=False)
        if not np.isfinite(A).all():
            return np.nan
        return r2_score(y, A.ravel() if self._y_ndim == 1 else A, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
