"""scikit-learn's update rules as fastnn optimizers (``SklearnSGD``,
``SklearnAdam``): step for step as scikit-learn's ``SGDOptimizer`` and
``AdamOptimizer``, trained unchanged by every Python backend's engine, and
refused, naming the backends that can, by one that cannot.
"""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network._stochastic_optimizers import (  # noqa: E402
    AdamOptimizer, SGDOptimizer)

import fastnn  # noqa: E402
from fastnn import backends  # noqa: E402
from fastnn._validation_optim import COURSE_OPTIMIZER_NAMES, optimizer_names, trains  # noqa: E402
from fastnn.optimizers import OPTIMIZERS, SKLEARN_OPTIMIZERS, SklearnAdam, SklearnSGD  # noqa: E402


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=(3, 1)),
              "W2": rng.normal(size=(1, 3)), "b2": rng.normal(size=(1, 1))}
    grads = [{"d" + k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(5)]
    return params, grads


@pytest.mark.parametrize("ours, theirs", [
    (SklearnSGD(momentum=0.9, nesterov=True), lambda p: SGDOptimizer(p, 0.1, momentum=0.9,
                                                                     nesterov=True)),
    (SklearnSGD(momentum=0.7, nesterov=False), lambda p: SGDOptimizer(p, 0.1, momentum=0.7,
                                                                      nesterov=False)),
    (SklearnSGD(momentum=0.0, nesterov=True), lambda p: SGDOptimizer(p, 0.1, momentum=0.0)),
    (SklearnAdam(beta1=0.8, beta2=0.95, epsilon=1e-3),
     lambda p: AdamOptimizer(p, 0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-3)),
    (SklearnAdam(), lambda p: AdamOptimizer(p, 0.1)),
], ids=["sgd-nesterov", "sgd-momentum", "sgd-plain", "adam-eps1e-3", "adam"])
def test_steps_as_scikit_learns_optimizers(ours, theirs):
    """Five steps from the same parameters and gradients: bitwise the same
    arithmetic, so equal to 1e-15."""
    params, grads = _problem()
    keys = list(params)
    theirs_params = [params[k].copy() for k in keys]
    reference = theirs(theirs_params)
    state = ours.init(params)
    for t, g in enumerate(grads, start=1):
        params, state = ours.update(params, g, state, 0.1, t)
        reference.update_params(theirs_params, [g["d" + k] for k in keys])
        for k, P in zip(keys, theirs_params):
            np.testing.assert_allclose(params[k], P, rtol=1e-15, atol=1e-15, err_msg=k)


def test_they_differ_from_the_courses_rules():
    """Not the course's Momentum (v = b v + (1 - b) dW) or Adam (eps on the
    corrected root): a step of each differs."""
    params, grads = _problem()
    for ours, course in [(SklearnSGD(momentum=0.9, nesterov=False), OPTIMIZERS["momentum"]()),
                         (SklearnAdam(epsilon=1e-1), OPTIMIZERS["adam"](epsilon=1e-1))]:
        a, _ = ours.update(params, grads[0], ours.init(params), 0.1, 1)
        b, _ = course.update(params, grads[0], course.init(params), 0.1, 1)
        assert not np.allclose(a["W1"], b["W1"])


@pytest.mark.parametrize("make, name, error", [
    (lambda: SklearnSGD(momentum=1.5), "momentum", ValueError),
    (lambda: SklearnSGD(momentum="0.9"), "momentum", TypeError),
    (lambda: SklearnSGD(nesterov=1), "nesterov", TypeError),
    (lambda: SklearnAdam(beta1=1.0), "beta1", ValueError),
    (lambda: SklearnAdam(epsilon=0), "epsilon", ValueError),
])
def test_hyperparameters_are_checked(make, name, error):
    with pytest.raises(error, match=name):
        make()


def test_momentum_one_is_allowed_as_in_scikit_learn():
    assert SklearnSGD(momentum=1).momentum == 1.0
    assert set(SKLEARN_OPTIMIZERS) == {"sklearn_sgd", "sklearn_adam"}
    assert not set(SKLEARN_OPTIMIZERS) & set(OPTIMIZERS)  # the course's stay four


PYTHON_BACKENDS = [b for b in backends.names() if backends.available()[b] is True
                   and optimizer_names(backends.get(b)) is None]


@pytest.mark.parametrize("optimizer", [SklearnSGD(momentum=0.9), SklearnAdam()],
                         ids=["sgd", "adam"])
def test_every_python_backend_trains_them_as_the_oracle(optimizer):
    X = np.random.default_rng(1).normal(size=(3, 12))
    Y = (X[0] > 0).astype(float)
    results = {}
    for backend in PYTHON_BACKENDS:
        net = fastnn.Network([3, 4, 1], seed=0, backend=backend)
        net.fit(X, Y, learning_rate=0.05, num_iterations=3, batch_size=5, seed=2,
                optimizer=optimizer, lambd=0.1)
        net.fit(X, Y, learning_rate=0.05, num_iterations=2, batch_size=5, seed=3,
                optimizer=optimizer, lambd=0.1, resume=True)
        results[backend] = net
        assert net.optimizer_steps_ == 5 * 3
    oracle = results[backends.ORACLE]
    for backend, net in results.items():
        for key, P in oracle.params.items():
            np.testing.assert_allclose(net.params[key], P, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{backend} {key}")


def test_capabilities():
    """Without a declaration: a backend on the PythonEngine trains any rule
    (None); an engine with HAS_OPTIMIZERS the course's four; any other "gd"."""
    class Python:
        HAS_OPTIMIZERS = True

    class Course:
        HAS_OPTIMIZERS = True
        engine = None

    class Plain:
        HAS_OPTIMIZERS = False
        engine = None

    class Declared:
        HAS_OPTIMIZERS = True
        engine = None
        OPTIMIZER_NAMES = COURSE_OPTIMIZER_NAMES | {"sklearn_adam"}

    assert optimizer_names(Python) is None and trains(Python, "sklearn_sgd")
    assert optimizer_names(Course) == COURSE_OPTIMIZER_NAMES
    assert not trains(Course, "sklearn_adam") and trains(Course, "adam")
    assert optimizer_names(Plain) == {"gd"}
    assert trains(Declared, "sklearn_adam") and not trains(Declared, "sklearn_sgd")


REFUSING = [b for b in backends.names() if backends.available()[b] is True
            and not trains(backends.get(b), "sklearn_adam")]


@pytest.fixture(params=REFUSING or ["stand-in"])
def refusing(request, monkeypatch):
    """A backend that cannot train scikit-learn's Adam: one of this install's, or
    (every backend here trains it) per_example declaring the course's rules only."""
    if request.param != "stand-in":
        return request.param
    monkeypatch.setattr(backends.get("per_example"), "OPTIMIZER_NAMES",
                        tuple(COURSE_OPTIMIZER_NAMES), raising=False)
    return "per_example"


def test_a_backend_that_cannot_train_a_rule_refuses_it(refusing):
    """Before any work, naming the backends that can; the estimator's
    "auto" picks one of those, and lbfgs (forward/backward only) runs anywhere."""
    from fastnn.sklearn import NetworkClassifier
    backend = refusing
    net = fastnn.Network([2, 3, 1], seed=0, backend=backend)
    before = net.params
    X, Y = np.ones((2, 4)), np.array([0.0, 1, 0, 1])
    # (a backend without HAS_OPTIMIZERS says so first)
    refusal = r"(cannot train the optimizer 'sklearn_adam'|plain gradient descent only).*numpy"
    with pytest.raises(ValueError, match=refusal):
        net.fit(X, Y, learning_rate=0.1, num_iterations=1, optimizer=SklearnAdam())
    for key, P in before.items():
        np.testing.assert_array_equal(net.params[key], P)
    est = NetworkClassifier((3,), backend=backend)
    with pytest.raises(ValueError, match=r"backend .* cannot train .*numpy"):
        est.fit(X.T, Y)
    assert not hasattr(est, "network_")
    assert NetworkClassifier((3,), solver="lbfgs", backend=backend).fit(X.T, Y).backend_ == backend
    with pytest.warns(ConvergenceWarning):  # one epoch: max_iter=1 is the point
        auto = NetworkClassifier((3,), max_iter=1).fit(X.T, Y)
    assert trains(backends.get(auto.backend_), "sklearn_adam")
