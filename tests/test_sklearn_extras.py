"""What the estimators add to scikit-learn's: dropout on the hidden layers
(``keep_prob``), the validation loss per epoch beside the training loss, a
per-epoch ``callback``, and whole epochs in the backend's engine
(``engine_epochs``) on every backend.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastnn import Network, _sklearn_params, backends  # noqa: E402
from fastnn.optimizers import GradientDescent, SklearnAdam  # noqa: E402
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


# ---------------------------------------------------------------- whole epochs in the engine
FAST = [b for b in backends.names() if backends.available()[b] is True
        and not backends.get(b).SLOW]


@pytest.mark.parametrize("backend, solver", [(b, "sgd") for b in FAST] + [("numpy", "adam")])
def test_engine_epochs_are_network_fit_epochs(backend, solver, iris):
    """engine_epochs=True: the epochs Network.fit runs from the same initial
    weights and seed, and loss_curve_[k] the cost over all samples after
    epoch k + 1 -- for plain gradient descent on every fast backend (each
    engine's fused loop), and scikit-learn's Adam."""
    X, y = iris
    options = dict(solver="sgd", momentum=0, alpha=0) if solver == "sgd" else {}
    est = _fit(NetworkClassifier((6,), engine_epochs=True, batch_size=32, max_iter=5, tol=0,
                                 learning_rate_init=0.05, random_state=5, backend=backend,
                                 **options), X, y)
    assert est.backend_ == backend and est.n_iter_ == 5
    rng = np.random.RandomState(5)
    params = _sklearn_params.initial_params(rng, [4, 6, 3], "relu", np.float64)
    net = Network.from_params(params, ["relu", "softmax"], backend=backend, relu_grad_at_zero=0)
    net.fit(X.T, y, learning_rate=0.05, num_iterations=6, cost_every=1, batch_size=32,
            seed=np.random.default_rng(rng.randint(2 ** 32)),
            optimizer=GradientDescent() if solver == "sgd" else SklearnAdam(),
            lambd=0 if solver == "sgd" else 1e-4)
    np.testing.assert_allclose(est.loss_curve_, [c for _, c in net.costs_[1:]], rtol=1e-12)
    # net ran a sixth epoch after its last recorded cost; est stopped at five.
    assert est.network_.optimizer_steps_ == 5 * 5
    # A callback needs the weights between epochs: one call per epoch, the same epochs.
    seen = []
    per_epoch = _fit(NetworkClassifier((6,), engine_epochs=True, batch_size=32, max_iter=5,
                                       tol=0, learning_rate_init=0.05, random_state=5,
                                       backend=backend, callback=seen.append, **options), X, y)
    assert len(seen) == 5 and per_epoch.loss_curve_ == est.loss_curve_
    for P, Q in zip(per_epoch.coefs_, est.coefs_):
        np.testing.assert_array_equal(P, Q)


def test_engine_epochs_schedules_and_partial_fit(iris):
    """The adaptive rate's drops (a call books the epoch and stops; the next
    runs at the new rate) and partial_fit's single epoch, in engine epochs."""
    X, y = iris
    est = _fit(NetworkClassifier((5,), solver="sgd", learning_rate="adaptive", tol=1e9,
                                 n_iter_no_change=1, learning_rate_init=0.1, max_iter=100,
                                 engine_epochs=True, random_state=0), X, y)
    assert est.n_iter_ == 19 and est._learning_rate == pytest.approx(0.1 / 5 ** 8)
    assert est.network_.optimizer_steps_ == 19 * 1  # 150 samples: one batch of "auto" 150
    part = NetworkClassifier((5,), engine_epochs=True, batch_size=50, random_state=0)
    for _ in range(2):
        part.partial_fit(X, y, classes=[0, 1, 2])
    assert part.t_ == 300 and part.n_iter_ == 1 and len(part.loss_curve_) == 2
    assert part.network_.optimizer_steps_ == 6


def test_engine_epochs_shuffle(iris):
    X, y = iris
    with pytest.raises(ValueError, match="shuffle=False"):
        NetworkClassifier(engine_epochs=True, shuffle=False).fit(X, y)


def test_verbose_prints_each_epochs_loss_as_scikit_learn(iris, capsys):
    X, y = iris
    est = _fit(NetworkClassifier((3,), max_iter=2, tol=0, verbose=True, random_state=0), X, y)
    assert capsys.readouterr().out.splitlines() == [
        f"Iteration {k}, loss = {loss:.8f}" for k, loss in enumerate(est.loss_curve_, start=1)]
