"""scikit-learn's own estimator checks (``check_estimator``) on both
estimators, on every backend that trains scikit-learn's Adam, the
sample-weight checks on those that take weights: no failure expected."""

import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import backends  # noqa: E402
from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

from _sklearn_cases import TRAINERS  # noqa: E402

#: The parameters scikit-learn's own test suite gives its MLPs for a check
#: (``PER_ESTIMATOR_CHECK_PARAMS``): fitting with integer weights must equal
#: fitting on the samples repeated -- full-batch L-BFGS for the classifier,
#: sgd with tol=1e-2 (random_state=42) for the regressor. The same here.
CHECK_PARAMS = {
    "check_sample_weight_equivalence_on_dense_data": {
        NetworkClassifier: dict(solver="lbfgs"),
        NetworkRegressor: dict(solver="sgd", tol=1e-2, random_state=42)},
}


def _check_name(check):
    return getattr(check, "func", check).__name__


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([Estimator(backend=b, max_iter=100)
                          for Estimator in (NetworkClassifier, NetworkRegressor)
                          for b in TRAINERS])
def test_sklearn_compatible(estimator, check):
    """scikit-learn's own checks, no failure expected, at the defaults but
    max_iter=100 (as scikit-learn's suite runs its MLPs) on every backend
    that trains Adam (the default solver), with scikit-learn's own
    parameters for the checks it gives its MLPs other ones; the sample-weight
    checks on every backend that takes weights."""
    name = _check_name(check)
    weighs = "sample_weight" in name or "class_weight" in name
    if weighs and not getattr(backends.get(estimator.backend), "HAS_SAMPLE_WEIGHT", False):
        pytest.skip(f"backend {estimator.backend!r} has no HAS_SAMPLE_WEIGHT yet")
    params = CHECK_PARAMS.get(name, {}).get(type(estimator))
    if params:
        estimator = clone(estimator).set_params(**params)
    check(estimator)
