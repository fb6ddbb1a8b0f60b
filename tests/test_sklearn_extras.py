"""What the estimators add to scikit-learn's: dropout on the hidden layers
(``keep_prob``), the validation loss per epoch beside the training loss, a
per-epoch ``callback``; and how the epochs run: whole in the backend's
engine, in as few ``Network.fit`` calls as the bookkeeping allows.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import shuffle as sk_shuffle  # noqa: E402

from fastnn import Network, _sklearn_params, backends  # noqa: E402
from fastnn._validation_optim import epoch_losses  # noqa: E402
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
    est = Estimator(hidden_layer_sizes=(5,), early_stopping=True, validation_fraction=0.2,
                    max_iter=8, tol=0, learning_rate_init=0.01, random_state=2,
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


@pytest.mark.parametrize("counts", [[9] * 10,           # 9 held out, fewer than 10 classes
                                    [30, 30, 1],         # a class of one sample
                                    [20, 20, 20]])       # stratified, as fastnn does
def test_early_stopping_on_multiclass_y_scikit_learn_splits(counts):
    """A multiclass y that can't be stratified is split as scikit-learn splits
    every multiclass y (not stratified): the same validation scores and
    weights as MLPClassifier; one that can is stratified (fastnn's choice)."""
    from sklearn.neural_network import MLPClassifier
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(len(counts)), counts)
    X = rng.standard_normal((len(y), 4)) + y[:, None] * 0.5
    common = dict(hidden_layer_sizes=(4,), early_stopping=True, max_iter=6, tol=0,
                  random_state=1)
    ours, theirs = _fit(NetworkClassifier(**common), X, y), _fit(MLPClassifier(**common), X, y)
    assert len(ours.validation_scores_) == 6
    same = min(counts) < 2 or int(np.ceil(0.1 * len(y))) < len(counts)
    assert (ours.validation_scores_ == pytest.approx(theirs.validation_scores_, abs=1e-12)) \
        is same
    if same:
        for a, b in zip(ours.coefs_, theirs.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_early_stopping_refuses_a_binary_y_too_small_to_stratify_as_scikit_learn():
    from sklearn.neural_network import MLPClassifier
    X, y = np.arange(40.0).reshape(20, 2), np.r_[np.zeros(19), 1]
    for Estimator in (NetworkClassifier, MLPClassifier):
        with pytest.raises(ValueError, match="least populated class"):
            Estimator(early_stopping=True).fit(X, y)


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
#: The fast backends whose engines report epoch losses and train gradient descent.
EPOCHS = [b for b in backends.names() if backends.available()[b] is True
          and not backends.get(b).SLOW and epoch_losses(backends.get(b))]


def _counting_fits(monkeypatch):
    """Count the ``Network.fit`` calls (and the epochs asked of each)."""
    calls = []
    fit = Network.fit

    def counted(self, *args, **kwargs):
        calls.append(kwargs["num_iterations"])
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Network, "fit", counted)
    return calls


@pytest.mark.parametrize("backend, solver", [(b, "sgd") for b in EPOCHS] + [("numpy", "adam")])
def test_epochs_run_whole_in_the_engine(backend, solver, iris, monkeypatch):
    """One Network.fit runs every epoch: scikit-learn's shuffles as ``orders``,
    ``loss_curve_`` its ``on_epoch`` losses -- for plain gradient descent on
    every backend whose engine reports them, and scikit-learn's Adam."""
    X, y = iris
    options = dict(solver="sgd", momentum=0, alpha=0) if solver == "sgd" else {}
    common = dict(batch_size=32, max_iter=5, tol=0, learning_rate_init=0.05, random_state=5,
                  backend=backend, **options)
    calls = _counting_fits(monkeypatch)
    est = _fit(NetworkClassifier((6,), **common), X, y)
    assert est.backend_ == backend and est.n_iter_ == 5 and calls == [5]
    rng = np.random.RandomState(5)
    params = _sklearn_params.initial_params(rng, [4, 6, 3], "relu", np.float64)
    sample_idx = np.arange(150)

    def orders(count):  # scikit-learn's: the last order shuffled again, each epoch
        nonlocal sample_idx
        drawn = []
        for _ in range(count):
            sample_idx = sk_shuffle(sample_idx, random_state=rng)
            drawn.append(sample_idx)
        return np.array(drawn)

    net = Network.from_params(params, ["relu", "softmax"], backend=backend, relu_grad_at_zero=0)
    losses = []
    net.fit(X.T, y, learning_rate=0.05, num_iterations=5, batch_size=32,
            optimizer=GradientDescent() if solver == "sgd" else SklearnAdam(),
            lambd=0 if solver == "sgd" else 1e-4, orders=orders,
            on_epoch=lambda i, loss: losses.append(loss))
    assert est.loss_curve_ == losses
    for P, Q in zip(est.coefs_, [net.params["W1"].T, net.params["W2"].T]):
        np.testing.assert_array_equal(P, Q)
    assert est.network_.optimizer_steps_ == 5 * 5
    # A callback needs the weights between epochs: one call per epoch, the same epochs.
    seen = []
    calls.clear()
    per_epoch = _fit(NetworkClassifier((6,), callback=seen.append, **common), X, y)
    assert len(seen) == 5 and calls == [1] * 5 and per_epoch.loss_curve_ == est.loss_curve_
    for P, Q in zip(per_epoch.coefs_, est.coefs_):
        np.testing.assert_array_equal(P, Q)


def test_a_new_rate_starts_a_new_call(iris, monkeypatch):
    """"adaptive": the call whose epoch drops the rate stops after it and the
    next runs at the new rate; tol alone stops inside the one call."""
    X, y = iris
    calls = _counting_fits(monkeypatch)
    est = _fit(NetworkClassifier((5,), solver="sgd", learning_rate="adaptive", tol=1e9,
                                 n_iter_no_change=1, learning_rate_init=0.1, max_iter=100,
                                 random_state=0), X, y)
    assert est.n_iter_ == 19 and est._learning_rate == pytest.approx(0.1 / 5 ** 8)
    # the first epoch sets the best loss; the rate drops at epochs 3, 5, ..., 17
    assert calls == [100, 97, 95, 93, 91, 89, 87, 85, 83]
    assert est.network_.optimizer_steps_ == 19 * 1  # 150 samples: one batch of "auto" 150
    calls.clear()
    est = _fit(NetworkClassifier((5,), tol=1e9, n_iter_no_change=2, random_state=0), X, y)
    assert est.n_iter_ == 4 and calls == [200]


def test_several_targets_with_l2_step_batch_by_batch(monkeypatch):
    """scikit-learn's squared error over several targets is their mean, its
    L2 term is not: an epoch's loss does not split into the two, so each
    mini-batch is one call (one target, or alpha=0: one call for all)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    calls = _counting_fits(monkeypatch)
    common = dict(batch_size=16, max_iter=2, tol=0, random_state=0)
    _fit(NetworkRegressor(hidden_layer_sizes=(4,), **common), X, y)
    assert calls == [1] * 6
    calls.clear()
    _fit(NetworkRegressor(hidden_layer_sizes=(4,), alpha=0, **common), X, y)
    _fit(NetworkRegressor(hidden_layer_sizes=(4,), **common), X, y[:, 0])
    assert calls == [2, 2]


def test_auto_is_the_fastest_backend_whose_engine_trains_it_all(monkeypatch):
    """``backend="auto"``: for sgd and adam the first backend in speed order
    whose engine trains the rule and reports the epoch losses; lbfgs the
    fastest of all. Declaring is all it takes (nothing names a backend)."""
    from fastnn._validation_optim import COURSE_OPTIMIZER_NAMES
    order = [n for n in _sklearn_params._SPEED_ORDER if backends.available()[n] is True]
    fastest = order[0]
    rules = [SklearnAdam(), GradientDescent()]

    def auto(rule, plain=False):
        return _sklearn_params.choose_backend("auto", rule, plain)

    def expected(rule, plain=False):
        return next(n for n in order if epoch_losses(backends.get(n))
                    and (plain and rule.name == "gd" or _sklearn_params._trains(
                        backends.get(n), rule, plain)))

    for rule in rules:
        assert auto(rule) == expected(rule)
    assert auto(GradientDescent(), plain=True) == expected(GradientDescent(), plain=True)
    assert auto(None) == fastest
    module = backends.get(fastest)
    monkeypatch.setattr(module, "HAS_OPTIMIZERS", True, raising=False)
    monkeypatch.setattr(module, "OPTIMIZER_NAMES",
                        COURSE_OPTIMIZER_NAMES | {"sklearn_adam", "sklearn_sgd"}, raising=False)
    for rule in rules:
        assert auto(rule) == fastest
    monkeypatch.setattr(module, "EPOCH_LOSSES", False, raising=False)
    assert auto(SklearnAdam()) != fastest or len(order) == 1


def test_verbose_prints_each_epochs_loss_as_scikit_learn(iris, capsys):
    X, y = iris
    est = _fit(NetworkClassifier((3,), max_iter=2, tol=0, verbose=True, random_state=0), X, y)
    assert capsys.readouterr().out.splitlines() == [
        f"Iteration {k}, loss = {loss:.8f}" for k, loss in enumerate(est.loss_curve_, start=1)]


@pytest.mark.parametrize("options", [
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=1e-6),  # too small: stop
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=1e-3),  # rate / 5, on
    dict(solver="adam")])
def test_verbose_prints_what_scikit_learn_prints(iris, capsys, options):
    """Every line, the stopping rule's included, word for word."""
    from sklearn.neural_network import MLPClassifier
    X, y = iris
    common = dict(hidden_layer_sizes=(3,), n_iter_no_change=1, tol=0.5, max_iter=30,
                  random_state=0, verbose=True, **options)
    _fit(MLPClassifier(**common), X, y)
    theirs = capsys.readouterr().out.splitlines()
    _fit(NetworkClassifier(**common), X, y)
    ours = capsys.readouterr().out.splitlines()
    assert len(ours) == len(theirs) and "Stopping" in theirs[-1] + theirs[-2]
    for a, b in zip(ours, theirs):  # the losses to 1e-8 as printed; the words exactly
        assert a.split("loss = ")[0] == b.split("loss = ")[0]
        if "loss = " in a:
            assert float(a.split("loss = ")[1]) == pytest.approx(float(b.split("loss = ")[1]),
                                                                  abs=2e-8)


def test_ctrl_c_keeps_the_weights_and_the_records_of_before_the_call(iris, monkeypatch):
    """Ctrl-C inside the one call of all epochs: Network.fit leaves the weights
    it had before the call, and the estimator its records with them."""
    import builtins
    X, y = iris
    printed = []

    def interrupting_print(*args, **kwargs):
        printed.append(args)
        if len(printed) == 3:
            raise KeyboardInterrupt

    est = NetworkClassifier((3,), max_iter=10, tol=0, random_state=0, verbose=True)
    monkeypatch.setattr(builtins, "print", interrupting_print)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(X, y)
    monkeypatch.undo()
    initial = _sklearn_params.initial_params(np.random.RandomState(0), [4, 3, 3], "relu",
                                             np.float64)
    np.testing.assert_array_equal(est.coefs_[0], initial["W1"].T)
    assert est.n_iter_ == 0 and est.t_ == 0 and est.loss_curve_ == []
    assert est.network_.optimizer_steps_ == 0


def test_the_validation_score_is_accuracy_score(iris):
    """Early stopping's per-epoch score, computed without accuracy_score's
    checks, is its float: binary, multiclass (string labels), multilabel."""
    from sklearn.metrics import accuracy_score
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    multilabel = np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    for target in (y == 1, names, multilabel):
        est = _fit(NetworkClassifier((3,), max_iter=20, learning_rate_init=0.05, random_state=0),
                   X, target)
        assert est._score_arrays(X, target) == accuracy_score(target, est.predict(X))
        assert 0 < est._score_arrays(X, target) < 1


def test_max_iter_warns_after_the_call_that_trained(iris):
    """ConvergenceWarning as an error (as scikit-learn's own tests run):
    raised once the weights of the epochs are the estimator's."""
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = NetworkClassifier((3,), max_iter=4, tol=0, random_state=0)
        with pytest.raises(ConvergenceWarning, match="Maximum iterations"):
            est.fit(X, y)
    assert est.n_iter_ == 4 and est.network_.optimizer_steps_ == 4


@pytest.mark.parametrize("change", [dict(beta_1=0.8), dict(solver="sgd"), dict(epsilon=1e-6)])
def test_partial_fit_refuses_a_changed_optimizer_in_the_estimators_terms(iris, change):
    """The optimizer's state carried over belongs to the rule it was made for:
    a partial_fit after another is set is refused, naming the parameters, and
    leaves the estimator as it was; set back, partial_fit goes on."""
    X, y = iris
    est = _fit(NetworkClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0), X, y)
    before = est.network_.params
    est.set_params(**change)
    with pytest.raises(ValueError, match=r"optimizer changed since the last fit \(solver"):
        est.partial_fit(X, y)
    for key, P in before.items():
        np.testing.assert_array_equal(est.network_.params[key], P)
    assert (est.n_iter_, est.t_) == (2, 2 * len(X))
    est.set_params(solver="adam", beta_1=0.9, epsilon=1e-8)
    est.partial_fit(X, y)
    assert est.t_ == 3 * len(X) and est.network_.optimizer_steps_ == 3


# -- the targets' indicator matrix ----------------------------------------------------------

@pytest.mark.parametrize("y", [
    np.array([3, 1, 2, 1, 7, 3]), np.array([0, 1, 1, 0]), np.array([5, 5, 5]),
    np.array(["b", "a", "c", "a"]), np.array(["no", "yes", "yes"]),
    np.array([1.0, 3.0, 3.0, 7.0]), np.array([-2, 0, 9], dtype=np.int8)],
    ids=["ints", "binary", "one class", "strings", "binary strings", "integral floats", "int8"])
def test_targets_indicator_is_labelbinarizers(y):
    """A 1-D y's indicator (fastnn.sklearn._indicator: one searchsorted) and
    binarizer fit on its classes are LabelBinarizer's fit on y and transform."""
    from sklearn.preprocessing import LabelBinarizer

    from fastnn.sklearn import _indicator

    ours, theirs = LabelBinarizer().fit(np.unique(y)), LabelBinarizer().fit(y)
    assert ours.y_type_ == theirs.y_type_ and np.array_equal(ours.classes_, theirs.classes_)
    assert np.array_equal(_indicator(ours, y).astype(int), theirs.transform(y))
    # A label outside the classes (partial_fit's classes= may leave some out) and
    # a multilabel y go through the binarizer itself: its rows of zeros, its columns.
    wider = LabelBinarizer().fit(np.concatenate([np.unique(y), np.unique(y)[:1]]))
    assert np.array_equal(_indicator(wider, y[::-1]).astype(int), wider.transform(y[::-1]))
    unseen = LabelBinarizer().fit(np.unique(y)[:2]) if len(np.unique(y)) > 2 else None
    if unseen is not None:
        assert np.array_equal(_indicator(unseen, y).astype(int), unseen.transform(y))
    multilabel = np.array([[1, 0, 1], [0, 1, 1]])
    binarizer = LabelBinarizer().fit(multilabel)
    assert np.array_equal(_indicator(binarizer, multilabel), binarizer.transform(multilabel))
