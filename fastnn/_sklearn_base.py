"""What :class:`fastnn.sklearn.NetworkClassifier` and ``NetworkRegressor``
share: every parameter of scikit-learn's MLPClassifier/MLPRegressor, with its
meaning and default, plus fastnn's; ``fit``/``partial_fit`` as
``BaseMultilayerPerceptron._fit``; the network's output; ``coefs_`` and
``intercepts_``. Subclasses say how y becomes the Network's output
(``_targets``) and how a prediction is scored (``_score_arrays``).
"""

import copy

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data as _validate_data

from . import _sklearn_data as _data
from . import _sklearn_lbfgs as _lbfgs
from . import _sklearn_params as _params
from . import _sklearn_train as _train
from .network import Network

__all__ = ["NetworkEstimator", "validate_data", "store_params"]

validate_data = _validate_data


def store_params(estimator, given):
    """Each ``__init__`` argument in ``given`` (its ``locals()``) as the attribute of
    its name, as given: scikit-learn's convention (checked in ``fit``). The
    estimators spell out their signatures, which ``get_params`` reads."""
    for name, value in given.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class NetworkEstimator(BaseEstimator):
    """The shared base; see :mod:`fastnn.sklearn` for the parameters."""

    _y_numeric = True

    # ---------------------------------------------------------------- training
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        """scikit-learn's ``BaseMultilayerPerceptron._fit``: every parameter
        and argument checked before any work, then the weights drawn (first
        pass) or kept (``warm_start``, ``partial_fit``), then the solver. A
        call that raises an error leaves the estimator's attributes as they
        were (a fitted estimator keeps its classes, network and curves; the
        network's own ``fit`` keeps its weights when it raises); a warning
        raised as an error (``ConvergenceWarning`` at max_iter) comes after
        the training it reports, which stays, as in scikit-learn."""
        before = {name: copy.copy(value) if isinstance(value, list) else value
                  for name, value in vars(self).items()}
        try:
            return self._fit_checked(X, y, sample_weight, incremental, classes)
        except BaseException as exc:
            if not isinstance(exc, Warning):
                vars(self).clear()
                vars(self).update(before)
            raise

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        self._validate_params()
        hidden, activation, dtype = _params.check_params(self)
        if self.solver == "lbfgs" and self._dropout_of(hidden):
            raise ValueError("keep_prob < 1 (dropout) needs a stochastic solver, 'sgd' or "
                             "'adam'; got solver='lbfgs'")
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        if not first_pass:
            dtype = self.network_.dtype
        X, y = _validate_data(self, X, y, reset=first_pass, accept_sparse=["csr", "csc"],
                              order="C", dtype=(np.float64, np.float32) if dtype is None else dtype,
                              multi_output=True, y_numeric=self._y_numeric)
        self._check_targets(y)
        sample_weight = _data.sample_weights(sample_weight, X, y,
                                             getattr(self, "class_weight", None), incremental)
        Y, output, loss = self._targets(y, first_pass, incremental, classes)
        Y = Y.astype(X.dtype, copy=False)
        rng = _params.random_state(self.random_state)
        rule = _params.optimizer(self)
        self._dropout = self._dropout_of(hidden)
        plain = not self.alpha and not self._dropout
        needs = _params.needs(sample_weight is not None, loss)
        backend = _params.choose_backend(self.backend, rule, plain, needs)
        if first_pass:
            units = [X.shape[1], *hidden, Y.shape[0]]
            self.network_ = Network.from_params(
                _params.initial_params(rng, units, activation, X.dtype),
                [activation] * len(hidden) + [output], loss=loss, backend=backend,
                dtype=X.dtype, threads=self.threads, relu_grad_at_zero=self.relu_grad_at_zero)
            self._initialize(len(units), Y.shape[0], output)
        elif self.network_.backend != backend or self.network_.threads != self.threads:
            self.network_ = self.network_.to(backend, threads=self.threads)
        self.backend_ = backend
        if self.solver == "lbfgs":
            _lbfgs.fit_lbfgs(self, X, Y, sample_weight)
        else:
            _train.fit_stochastic(self, X, y, Y, sample_weight, rng, rule, incremental)
        if not all(np.isfinite(p).all() for p in self.network_.params.values()):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _check_targets(self, y):
        """What y must satisfy beyond scikit-learn's checks (before any work)."""

    def _dropout_of(self, hidden):
        from ._validation_optim import check_keep_probs
        return check_keep_probs(self.keep_prob, len(hidden)) is not None

    def _initialize(self, n_layers, n_outputs, output):
        """The fitted attributes a first pass starts from (``_initialize``)."""
        self.n_iter_, self.t_ = 0, 0
        self.n_layers_, self.n_outputs_ = n_layers, n_outputs
        self.out_activation_ = _params.OUT_ACTIVATION[output]
        for name in ("_learning_rate", "_resume", "loss_curve_", "best_loss_",
                     "validation_scores_", "best_validation_score_", "validation_loss_curve_"):
            self.__dict__.pop(name, None)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.validation_loss_curve_ = [], []
                self.best_validation_score_, self.best_loss_ = -np.inf, None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = self.best_validation_score_ = None
                self.validation_loss_curve_ = None

    def _batch_size(self, n_samples):
        return _params.network_batch_size(self.batch_size, n_samples)

    @property
    def _loss_divisor(self):
        """scikit-learn's squared error is a mean over the targets too: the
        Network's cost (a sum over them) is divided by this for ``loss_``."""
        return 1

    # ---------------------------------------------------------------- prediction
    def _output(self, X, check_input=True):
        """The Network's output A_L for X (n_samples, n_features), dense or
        sparse, as (n_samples, n_outputs); float32 stays float32."""
        check_is_fitted(self)
        if check_input:
            X = _validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                               dtype=self.network_.dtype)
        return _data.output(self.network_, X)

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @property
    def threads_used_(self):
        """``(threads, why)``: the threads the last fit ran on and why (see
        :attr:`fastnn.Network.threads_used_`)."""
        check_is_fitted(self)
        return self.network_.threads_used_
