"""Per-example weights (``sample_weight``, and the classifier's
``class_weight``) and MLPRegressor's ``loss="poisson"``: the estimators take
MLPClassifier's and MLPRegressor's steps with them, to 1e-10 -- sgd with and
without Nesterov's momentum, adam, lbfgs, early stopping (the weights split
with the samples, the validation score weighted), partial_fit -- on every
fast backend that declares the capability (``HAS_SAMPLE_WEIGHT``,
``HAS_POISSON``); and refuse bad weights as scikit-learn does, leaving a
fitted estimator as it was.

Cases are pairwise combinations on small data (iris, 5 hidden units, a few epochs).
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import recall_score  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from fastnn import _sklearn_params, backends  # noqa: E402
from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

from _sklearn_cases import POISSON, RTOL, WEIGHTED, assert_same_model, iris  # noqa: E402,F401


@pytest.fixture(params=WEIGHTED)
def weighted(request):
    return request.param


@pytest.fixture(params=POISSON)
def poisson(request):
    return request.param


def _weights(n, seed=0):
    """Integers 0..3 and fractions: some samples weigh nothing, some triple."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4, n) * rng.uniform(0.5, 1.0, n)


def _fit(estimator, X, y, method="fit", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(estimator, method)(X, y, **kw)


def _counts(n, seed=0):
    """Poisson counts of a smooth rate of 3 features, and the features."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    return X, rng.poisson(np.exp(0.5 + X[:, 0] - 0.5 * X[:, 1] * X[:, 2]))


# ---------------------------------------------------------------- as scikit-learn
# (options, n_classes): sgd with and without Nesterov, adam; early stopping
# (binary: scikit-learn stratifies the split only there); binary, multiclass
# and multilabel outputs.
STOCHASTIC = [
    (dict(solver="sgd", learning_rate_init=0.1), 3),
    (dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False), "multilabel"),
    (dict(solver="adam", learning_rate_init=0.01), 2),
    (dict(solver="adam", learning_rate_init=0.01, early_stopping=True, validation_fraction=0.2,
          n_iter_no_change=3, max_iter=30), 2),
    (dict(solver="sgd", learning_rate_init=0.05, early_stopping=True, validation_fraction=0.3,
          n_iter_no_change=2, max_iter=30, shuffle=False), 2),
    (dict(solver="adam", learning_rate_init=0.01, shuffle=False), 3),
]


@pytest.mark.parametrize("options, n_classes", STOCHASTIC)
def test_classifier_weights_as_mlpclassifier(options, n_classes, iris, weighted):
    X, y = iris
    if n_classes == "multilabel":
        y = np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    else:
        X, y = X[y < n_classes], y[y < n_classes]
    w = _weights(len(y))
    common = dict(hidden_layer_sizes=(5,), batch_size=32, max_iter=6, tol=0, alpha=1e-3,
                  random_state=3)
    common.update(options)
    ours = _fit(NetworkClassifier(backend=weighted, **common), X, y, sample_weight=w)
    theirs = _fit(MLPClassifier(**common), X, y, sample_weight=w)
    assert_same_model(ours, theirs)
    assert ours.backend_ == weighted


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_regressor_weights_as_mlpregressor(solver, weighted):
    """Two targets and alpha > 0: the batch-by-batch path, each batch's L2
    term over its weight sum."""
    X, y = make_regression(n_samples=60, n_features=3, n_targets=2, noise=1, random_state=0)
    y = y / y.std(axis=0)
    w = _weights(60, seed=1)
    common = dict(hidden_layer_sizes=(4,), solver=solver, batch_size=16, max_iter=5, tol=0,
                  learning_rate_init=0.01, random_state=1)
    ours = _fit(NetworkRegressor(backend=weighted, **common), X, y, sample_weight=w)
    theirs = _fit(MLPRegressor(**common), X, y, sample_weight=w)
    assert_same_model(ours, theirs)


def test_lbfgs_minimizes_the_weighted_loss(iris, weighted):
    X, y = iris
    w = _weights(len(y), seed=2)
    for Ours, Theirs, target in [
            (NetworkClassifier, MLPClassifier, y),
            (NetworkRegressor, MLPRegressor, np.column_stack([X[:, 0] * X[:, 1], y]))]:
        common = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, alpha=0.1,
                      random_state=0)
        ours = _fit(Ours(backend=weighted, **common), X, target, sample_weight=w)
        theirs = _fit(Theirs(**common), X, target, sample_weight=w)
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL)
        for mine, sklearns in zip(ours.coefs_ + ours.intercepts_,
                                  theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(mine, sklearns, rtol=RTOL, atol=1e-11)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_with_weights(solver, iris, weighted):
    X, y = iris
    w = _weights(len(y), seed=3)
    common = dict(hidden_layer_sizes=(5,), solver=solver, batch_size=40,
                  learning_rate_init=0.05, random_state=0)
    ours, theirs = NetworkClassifier(backend=weighted, **common), MLPClassifier(**common)
    for k in range(3):
        part = slice(50 * k, 50 * k + 100)
        ours.partial_fit(X[part], y[part], sample_weight=w[part], classes=[0, 1, 2])
        theirs.partial_fit(X[part], y[part], sample_weight=w[part], classes=[0, 1, 2])
    assert_same_model(ours, theirs)


def test_a_batch_of_zero_weights_takes_a_zero_step(iris, weighted):
    """scikit-learn averages the batch's losses with weights summing to 0 and
    raises ZeroDivisionError; fastnn's batch adds 0 to the loss and takes a
    zero step (sgd's velocity is 0 at the first step: the weights do not
    move), the rest as without it."""
    X, y = iris
    w = np.ones(len(y))
    w[:30] = 0  # the first batch, without shuffling
    common = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=30, max_iter=1,
                  shuffle=False, learning_rate_init=0.1, random_state=0)
    ours = _fit(NetworkClassifier(backend=weighted, **common), X, y, sample_weight=w)
    with pytest.raises(ZeroDivisionError):
        _fit(MLPClassifier(**common), X, y, sample_weight=w)
    rest = _fit(MLPClassifier(**common), X[30:], y[30:])
    for mine, sklearns in zip(ours.coefs_ + ours.intercepts_, rest.coefs_ + rest.intercepts_):
        np.testing.assert_allclose(mine, sklearns, rtol=RTOL, atol=1e-12)
    assert ours.loss_ == pytest.approx(rest.loss_ * 120 / 150, rel=RTOL)


def test_a_batch_of_zero_weights_takes_a_zero_step_batch_by_batch(weighted):
    """The same where the regressor trains one ``Network.fit`` per batch (two
    targets and alpha > 0: scikit-learn's per-target mean beside an unscaled
    L2 term), whose calls see the batch's weights summing to 0."""
    X, Y = make_regression(n_samples=90, n_features=3, n_targets=2, noise=1, random_state=0)
    w = np.ones(len(Y))
    w[:30] = 0
    common = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=30, max_iter=1,
                  shuffle=False, learning_rate_init=0.01, alpha=0.01, random_state=0)
    ours = _fit(NetworkRegressor(backend=weighted, **common), X, Y, sample_weight=w)
    rest = _fit(MLPRegressor(**common), X[30:], Y[30:])
    for mine, sklearns in zip(ours.coefs_ + ours.intercepts_, rest.coefs_ + rest.intercepts_):
        np.testing.assert_allclose(mine, sklearns, rtol=RTOL, atol=1e-12)
    assert ours.loss_ == pytest.approx(rest.loss_ * 60 / 90, rel=RTOL)


def test_unit_weights_are_no_weights(iris, weighted):
    X, y = iris
    common = dict(hidden_layer_sizes=(5,), batch_size=32, max_iter=4, random_state=0,
                  backend=weighted)
    plain = _fit(NetworkClassifier(**common), X, y)
    ones = _fit(NetworkClassifier(**common), X, y, sample_weight=np.ones(len(y)))
    for mine, other in zip(plain.coefs_, ones.coefs_):
        np.testing.assert_allclose(mine, other, rtol=1e-12, atol=1e-15)


def test_float32_weights_train_in_float32(iris, weighted):
    """float32 X: the weights are cast to it, and the fit tracks float64's."""
    X, y = iris
    w = _weights(len(y), seed=6)
    common = dict(hidden_layer_sizes=(5,), batch_size=32, max_iter=5, tol=0,
                  learning_rate_init=0.01, random_state=0, backend=weighted)
    single = _fit(NetworkClassifier(**common), X.astype(np.float32), y, sample_weight=w)
    double = _fit(NetworkClassifier(**common), X, y, sample_weight=w)
    assert single.network_.dtype == "float32" and single.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(single.loss_curve_, double.loss_curve_, rtol=1e-4)
    for P, Q in zip(single.coefs_, double.coefs_):
        np.testing.assert_allclose(P, Q, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- class_weight
def test_class_weight_dict_is_the_sample_weight_it_gives(iris, weighted):
    X, y = iris
    w = _weights(len(y), seed=4)
    common = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0, backend=weighted)
    by_dict = _fit(NetworkClassifier(class_weight={0: 2.0, 2: 0.5}, **common), X, y,
                   sample_weight=w)
    explicit = _fit(NetworkClassifier(**common), X, y,
                    sample_weight=w * np.array([2.0, 1.0, 0.5])[y])
    for mine, other in zip(by_dict.coefs_, explicit.coefs_):
        np.testing.assert_array_equal(mine, other)


def test_balanced_class_weight_raises_the_minority_recall(iris):
    X, y = iris
    keep = (y == 0) | (np.arange(len(y)) % 10 == 0) & (y == 1)  # 50 against 5
    X, y = X[keep] + np.random.default_rng(0).normal(0, 1.5, X[keep].shape), y[keep]
    common = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=50, random_state=0)
    plain = _fit(NetworkClassifier(**common), X, y)
    balanced = _fit(NetworkClassifier(class_weight="balanced", **common), X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X))


def test_class_weight_refusals(iris):
    X, y = iris
    multilabel = np.column_stack([y == 0, y == 2]).astype(int)
    with pytest.raises(ValueError, match="class_weight.*multilabel"):
        NetworkClassifier(class_weight="balanced").fit(X, multilabel)
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for "
                                         "partial_fit"):
        NetworkClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    for bad in ({0: -1.0}, {0: float("nan")}, {0: "2"}):
        with pytest.raises(ValueError, match="class_weight"):
            NetworkClassifier(class_weight=bad).fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        NetworkClassifier(class_weight="even").fit(X, y)
    with pytest.raises(ValueError, match="class_weight.*zero"):
        NetworkClassifier(class_weight={0: 0, 1: 0, 2: 0}).fit(X, y)


# ---------------------------------------------------------------- the Poisson loss
@pytest.mark.parametrize("solver, weights", [("adam", False), ("sgd", True), ("lbfgs", True),
                                             ("lbfgs", False)])
def test_poisson_as_mlpregressor(solver, weights, poisson):
    X, y = _counts(80)
    w = _weights(80, seed=5) if weights else None
    common = dict(hidden_layer_sizes=(4,), solver=solver, loss="poisson", batch_size=16,
                  max_iter=8, tol=0, learning_rate_init=0.01, random_state=2)
    if weights and poisson not in WEIGHTED:
        pytest.skip(f"{poisson} has no HAS_SAMPLE_WEIGHT")
    ours = _fit(NetworkRegressor(backend=poisson, **common), X, y, sample_weight=w)
    theirs = _fit(MLPRegressor(**common), X, y, sample_weight=w)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.network_.activations[-1] == "exp" and ours.network_.loss == "poisson"
    if solver == "lbfgs":
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL)
        for mine, sklearns in zip(ours.coefs_ + ours.intercepts_,
                                  theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(mine, sklearns, rtol=RTOL, atol=1e-11)
    else:
        assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


def test_poisson_with_two_targets_sums_them(poisson):
    """scikit-learn's Poisson loss sums over the targets (its squared error
    averages): the same loss curve with two."""
    X, y = _counts(60, seed=1)
    Y = np.column_stack([y, y[::-1]])
    common = dict(hidden_layer_sizes=(3,), loss="poisson", alpha=0.01, batch_size=20,
                  max_iter=3, learning_rate_init=0.01, random_state=0)
    assert_same_model(_fit(NetworkRegressor(backend=poisson, **common), X, Y),
                      _fit(MLPRegressor(**common), X, Y))


def test_poisson_needs_non_negative_y():
    X, y = _counts(20)
    est = NetworkRegressor(loss="poisson")
    with pytest.raises(ValueError, match="y must be >= 0"):
        est.fit(X, y - 1.0)
    assert not hasattr(est, "network_")


# ---------------------------------------------------------------- bad weights
def _coefs(est):
    return [c.copy() for c in est.coefs_ + est.intercepts_]


@pytest.mark.parametrize("weights, error, match", [
    (np.ones(149), ValueError, r"sample_weight.shape == \(149,\), expected \(150,\)"),
    (np.ones((150, 2)), ValueError, "Sample weights must be 1D"),
    (-np.ones(150), ValueError, "Negative values in data passed to `sample_weight`"),
    (np.full(150, np.nan), ValueError, "Input sample_weight contains NaN"),
    (np.zeros(150), ValueError, "Sample weights must contain at least one non-zero"),
    ("heavy", ValueError, "sample_weight"),
])
def test_bad_weights_leave_a_fitted_estimator_as_it_was(weights, error, match, iris):
    X, y = iris
    est = _fit(NetworkClassifier((3,), max_iter=2, random_state=0), X, y)
    before = _coefs(est)
    with pytest.raises(error, match=match):
        est.fit(X, y, sample_weight=weights)
    with pytest.raises(error, match=match):
        est.partial_fit(X, y, sample_weight=weights)
    for P, Q in zip(before, _coefs(est)):
        np.testing.assert_array_equal(P, Q)


def test_bad_data_leaves_a_fitted_estimator_as_it_was(iris):
    import scipy.sparse as sp
    X, y = iris
    est = _fit(NetworkClassifier((3,), max_iter=2, random_state=0), X, y)
    before = _coefs(est)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.partial_fit(Xnan, y)
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        est.partial_fit(X, y + 1)
    with pytest.raises(TypeError, match="sample_weight"):
        est.partial_fit(X, y, sample_weight=sp.csr_matrix(np.ones((1, 150))))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.partial_fit(sp.csr_matrix(Xnan), y)
    for P, Q in zip(before, _coefs(est)):
        np.testing.assert_array_equal(P, Q)


# ---------------------------------------------------------------- which backend
def test_auto_picks_a_backend_that_has_what_the_fit_needs(monkeypatch):
    rule = _sklearn_params.optimizer(NetworkClassifier())
    having = [b for b in _sklearn_params._SPEED_ORDER if backends.available()[b] is True
              and getattr(backends.get(b), "HAS_SAMPLE_WEIGHT", False)]
    if not having:
        pytest.skip("no backend here has HAS_SAMPLE_WEIGHT")
    fastest = having[0]
    assert _sklearn_params.choose_backend("auto", rule, False, ("HAS_SAMPLE_WEIGHT",)) == fastest
    monkeypatch.setattr(backends.get(fastest), "HAS_SAMPLE_WEIGHT", False)
    chosen = _sklearn_params.choose_backend("auto", rule, False, ("HAS_SAMPLE_WEIGHT",)) \
        if len(having) > 1 else None
    assert chosen != fastest
    with pytest.raises(ValueError, match=f"backend '{fastest}' cannot train with "
                                         r"sample_weight.*backends that can"):
        _sklearn_params.choose_backend(fastest, rule, False, ("HAS_SAMPLE_WEIGHT",))
    X, y = load_iris(return_X_y=True)
    est = NetworkClassifier((3,), backend=fastest)
    with pytest.raises(ValueError, match="cannot train with sample_weight"):
        est.fit(X, y, sample_weight=np.ones(150))
    assert not hasattr(est, "network_")
