"""What the estimators add to scikit-learn's: dropout on the hidden layers
(``keep_prob``), the validation loss per epoch beside the training loss, and a
per-epoch ``callback``.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastnn import Network, _sklearn_params  # noqa: E402
from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


# ---------------------------------------------------------------- dropout
def test_dropout_trains_other_steps_reproducibly(iris):
    X, y = iris
    common = dict(hidden_layer_sizes=(16, 8), learning_rate_init=0.01, batch_size=16,
                  max_iter=30, random_state=0)
    plain = _fit(NetworkClassifier(**common), X, y)
    dropped = _fit(NetworkClassifier(keep_prob=0.7, **common), X, y)
    again = _fit(NetworkClassifier(keep_prob=0.7, **common), X, y)
    per_layer = _fit(NetworkClassifier(keep_prob=(0.7, 1.0), **common), X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    assert not np.allclose(per_layer.coefs_[0], dropped.coefs_[0])
    for P, Q in zip(dropped.coefs_, again.coefs_):
        np.testing.assert_array_equal(P, Q)  # the masks follow random_state
    # Predictions use the whole network (inverted dropout scales while training).
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))
    assert dropped.score(X, y) > 0.9


def test_dropout_needs_a_stochastic_solver(iris):
    X, y = iris
    est = NetworkClassifier((4,), solver="lbfgs", keep_prob=0.5)
    with pytest.raises(ValueError, match="keep_prob"):
        est.fit(X, y)
    assert not hasattr(est, "network_")


# ---------------------------------------------------------------- the validation loss
@pytest.mark.parametrize("Estimator", [NetworkClassifier, NetworkRegressor])
def test_validation_loss_beside_the_training_loss(Estimator, iris):
    """``validation_loss_curve_[k]``: the loss on the held-out samples after
    epoch k + 1, at the weights a callback saw then; the held-out samples are
    the ones scikit-learn's split draws after the initial weights."""
    X, y = iris
    if Estimator is NetworkRegressor:
        y = X[:, 0] * X[:, 1] + y
    seen = []
    est = Estimator((5,), early_stopping=True, validation_fraction=0.2, max_iter=8, tol=0,
                    learning_rate_init=0.01, random_state=2,
                    callback=lambda e: seen.append(e.network_.params))
    _fit(est, X, y)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == est.n_iter_ == 8
    rng = np.random.RandomState(2)
    _sklearn_params.initial_params(rng, [4, 5, est.n_outputs_], "relu", np.float64)
    stratify = y if Estimator is NetworkClassifier else None
    _, X_val, _, y_val = train_test_split(X, y, random_state=rng, test_size=0.2,
                                          stratify=stratify)
    Y_val = y_val.reshape(1, -1) if Estimator is NetworkRegressor else y_val
    for k, params in enumerate(seen):
        net = Network.from_params(params, est.network_.activations, relu_grad_at_zero=0)
        assert est.validation_loss_curve_[k] == pytest.approx(net.cost(X_val.T, Y_val),
                                                              rel=1e-12)
    # The best epoch's weights are restored, as scikit-learn does.
    best = int(np.argmax(est.validation_scores_))
    for key, P in seen[best].items():
        np.testing.assert_array_equal(est.network_.params[key], P)


def test_no_validation_loss_without_early_stopping(iris):
    X, y = iris
    est = _fit(NetworkClassifier((3,), max_iter=2), X, y)
    assert est.validation_loss_curve_ is None and est.validation_scores_ is None


# ---------------------------------------------------------------- the callback
def test_callback_sees_each_epoch_and_can_stop(iris):
    X, y = iris
    calls = []

    def callback(est):
        calls.append((est.n_iter_, len(est.loss_curve_), est.loss_))
        return est.n_iter_ < 3

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped, not out of epochs
        est = NetworkClassifier((3,), max_iter=50, tol=0, callback=callback,
                                random_state=0).fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert calls == [(k, k, est.loss_curve_[k - 1]) for k in (1, 2, 3)]


def test_a_callback_that_returns_nothing_never_stops(iris):
    X, y = iris
    calls = []
    _fit(NetworkClassifier((3,), max_iter=4, tol=0, callback=calls.append), X, y)
    assert len(calls) == 4
