"""What the estimators' tests share: the backends that train scikit-learn's
update rules (and those that also take per-example weights, or the Poisson
loss: a backend joins once it declares the capability), and the comparison
of a fitted estimator with scikit-learn's to 1e-10."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from fastnn import backends
from fastnn._validation_optim import trains


def _fast():
    return [b for b in backends.names() if backends.available()[b] is True
            and not backends.get(b).SLOW]


#: lbfgs needs only forward and backward: every fast backend.
FAST = _fast()
#: The fast backends whose engines train scikit-learn's Adam and SGD.
TRAINERS = [b for b in FAST if trains(backends.get(b), "sklearn_adam")]
#: ... that also take per-example weights, or the Poisson loss.
WEIGHTED = [b for b in TRAINERS if getattr(backends.get(b), "HAS_SAMPLE_WEIGHT", False)]
POISSON = [b for b in TRAINERS if getattr(backends.get(b), "HAS_POISSON", False)]

RTOL, ATOL = 1e-10, 1e-12


def assert_same_model(ours, theirs):
    """Weights to 1e-10, and the fitted attributes scikit-learn has."""
    assert ours.n_iter_ == theirs.n_iter_
    for k, (mine, sklearns) in enumerate(zip(ours.coefs_ + ours.intercepts_,
                                             theirs.coefs_ + theirs.intercepts_)):
        np.testing.assert_allclose(mine, sklearns, rtol=RTOL, atol=ATOL, err_msg=f"array {k}")
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL)
    for name in ("loss_curve_", "validation_scores_"):
        if getattr(theirs, name, None) is not None:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=RTOL,
                                       err_msg=name)
    for name in ("t_", "best_loss_", "best_validation_score_", "out_activation_", "n_layers_",
                 "n_outputs_"):
        if getattr(theirs, name, None) is None or isinstance(getattr(theirs, name), str):
            assert getattr(ours, name, None) == getattr(theirs, name, None), name
        else:
            assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=RTOL), name


@pytest.fixture(scope="module")
def iris():
    """Iris, standardized: the small classification problem of the equivalence tests."""
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y
