"""The estimators take MLPClassifier's and MLPRegressor's steps: from the same
``random_state`` (so the same initial weights, shuffles and validation
split), their weights, loss curves, epoch counts and validation scores agree
to 1e-10 -- for sgd with and without Nesterov's momentum, its learning-rate
schedules, adam, lbfgs, early stopping, partial_fit and warm_start.

Cases are pairwise combinations on small data (iris, 5 hidden units, a few
epochs), on every fast backend that trains scikit-learn's update rules.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

from _sklearn_cases import ATOL, FAST, RTOL, TRAINERS, assert_same_model, iris  # noqa: E402,F401


@pytest.fixture(params=TRAINERS)
def trainer(request):
    return request.param


def _fit(estimator, X, y, method="fit", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(estimator, method)(X, y, **kw)


# (solver options, shuffle, n_classes): sgd with and without Nesterov, each
# schedule, adam; shuffled or not; binary, multiclass and multilabel outputs.
STOCHASTIC = [
    (dict(solver="sgd", learning_rate_init=0.1), False, 3),
    (dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False), True, 2),
    (dict(solver="sgd", learning_rate_init=0.5, momentum=0, learning_rate="invscaling",
          power_t=0.3), True, 3),
    (dict(solver="sgd", learning_rate_init=0.05, momentum=0.5, alpha=0), False, "multilabel"),
    (dict(solver="adam", learning_rate_init=0.01), False, 2),
    (dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
     True, 3),
    (dict(solver="adam", learning_rate_init=0.01), True, "multilabel"),
]


def _targets(y, X, n_classes):
    if n_classes == "multilabel":
        return np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    keep = y < n_classes
    return y[keep]


@pytest.mark.parametrize("options, shuffle, n_classes", STOCHASTIC)
def test_classifier_steps_as_mlpclassifier(options, shuffle, n_classes, iris, trainer):
    X, y = iris
    Y = _targets(y, X, n_classes)
    X = X[:len(Y)]
    common = dict(hidden_layer_sizes=(5,), batch_size=32, max_iter=6, tol=0, alpha=1e-3,
                  shuffle=shuffle, random_state=3)
    common.update(options)
    ours = _fit(NetworkClassifier(backend=trainer, **common), X, Y)
    theirs = _fit(MLPClassifier(**common), X, Y)
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_regressor_steps_as_mlpregressor(solver, trainer):
    """Two targets: scikit-learn's loss is a mean over them too."""
    X, y = make_regression(n_samples=60, n_features=3, n_targets=2, noise=1, random_state=0)
    y = y / y.std(axis=0)
    common = dict(hidden_layer_sizes=(4,), solver=solver, batch_size=16, max_iter=5, tol=0,
                  learning_rate_init=0.01, random_state=1)
    ours = _fit(NetworkRegressor(backend=trainer, **common), X, y)
    theirs = _fit(MLPRegressor(**common), X, y)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("backend", FAST)
def test_lbfgs_as_scikit_learn(iris, backend):
    """SciPy's L-BFGS-B with scikit-learn's options (max_iter, max_fun, tol):
    the same iterations, optimum and loss, on every backend's forward/backward
    (compiled ones to their rounding)."""
    X, y = iris
    rtol = RTOL if backend in TRAINERS else 1e-6
    for Ours, Theirs, target, kw in [
            (NetworkClassifier, MLPClassifier, y, dict(max_iter=15)),
            (NetworkRegressor, MLPRegressor, np.column_stack([X[:, 0] * X[:, 1], y]),
             dict(max_iter=30, max_fun=20, alpha=0.1))]:
        common = dict(hidden_layer_sizes=(5,), solver="lbfgs", random_state=0, **kw)
        ours = _fit(Ours(backend=backend, **common), X, target)
        theirs = _fit(Theirs(**common), X, target)
        assert ours.n_iter_ == theirs.n_iter_ and ours.backend_ == backend
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
        for mine, sklearns in zip(ours.coefs_ + ours.intercepts_,
                                  theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(mine, sklearns, rtol=rtol, atol=100 * ATOL)


def test_adaptive_rate_divides_by_5_until_1e_6(iris, trainer):
    """A tol no epoch meets: the first epoch sets the best loss, then every
    n_iter_no_change + 1 = 2 epochs the count passes the limit and the rate
    drops by 5 -- at epochs 3, 5, ..., 17, from 0.1 to 0.1 / 5**8 = 2.56e-7,
    the first at most 1e-6 -- and at epoch 19 both stop."""
    X, y = iris
    common = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate="adaptive",
                  learning_rate_init=0.1, tol=1e9, n_iter_no_change=1, max_iter=100,
                  random_state=0)
    ours = _fit(NetworkClassifier(backend=trainer, **common), X, y)
    theirs = _fit(MLPClassifier(**common), X, y)
    assert_same_model(ours, theirs)
    assert ours.n_iter_ == 19 and ours._learning_rate == pytest.approx(0.1 / 5 ** 8)
    assert ours._learning_rate == theirs._optimizer.learning_rate


@pytest.mark.parametrize("Ours, Theirs", [(NetworkClassifier, MLPClassifier),
                                          (NetworkRegressor, MLPRegressor)])
def test_early_stopping_as_scikit_learn(Ours, Theirs, iris, trainer):
    """The same validation split (stratified for a classifier of two classes:
    scikit-learn's), scores, stop and restored best weights."""
    X, y = iris
    X, y = X[y < 2], y[y < 2]
    if Ours is NetworkRegressor:
        y = X[:, 0] * X[:, 1] + y
    common = dict(hidden_layer_sizes=(5,), early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=3, learning_rate_init=0.01, batch_size=10, max_iter=60,
                  random_state=4)
    ours = _fit(Ours(backend=trainer, **common), X, y)
    theirs = _fit(Theirs(**common), X, y)
    assert_same_model(ours, theirs)
    assert ours.best_loss_ is None and len(ours.validation_scores_) == ours.n_iter_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_carries_the_optimizer_state(solver, iris, trainer):
    """One epoch per call, scikit-learn's optimizer state (velocities, Adam's
    moments and t) carried from call to call."""
    X, y = iris
    common = dict(hidden_layer_sizes=(5,), solver=solver, batch_size=40,
                  learning_rate_init=0.05, random_state=0)
    ours, theirs = NetworkClassifier(backend=trainer, **common), MLPClassifier(**common)
    for k in range(3):
        part = slice(50 * k, 50 * k + 100)  # sees class 2 only from the second call
        ours.partial_fit(X[part], y[part], classes=[0, 1, 2])
        theirs.partial_fit(X[part], y[part], classes=[0, 1, 2])
    assert_same_model(ours, theirs)
    assert ours.t_ == 100 + 100 + 50 and ours.network_.optimizer_steps_ == 3 + 3 + 2
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        ours.partial_fit(X, y + 1)


def test_partial_fit_is_only_for_stochastic_solvers():
    assert not hasattr(NetworkClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(NetworkRegressor(solver="sgd"), "partial_fit")


def test_warm_start_continues_with_a_new_optimizer(iris, trainer):
    X, y = iris
    common = dict(hidden_layer_sizes=(5,), warm_start=True, max_iter=3, tol=0,
                  learning_rate_init=0.01, random_state=0)
    ours, theirs = NetworkClassifier(backend=trainer, **common), MLPClassifier(**common)
    for _ in range(2):
        _fit(ours, X, y)
        _fit(theirs, X, y)
    assert_same_model(ours, theirs)
    assert len(ours.loss_curve_) == 6
