"""A sparse X (scipy's CSR or CSC, matrix or array; other formats converted
as MLPClassifier converts them) in fit, partial_fit and predict: densified
once when its dense copy is small, else a mini-batch at a time for training
and a block at a time for predictions and L-BFGS -- the same steps as
scikit-learn's on the same sparse X, to 1e-10.

The batch-by-batch path is tested on small data by shrinking the block
(``_sklearn_data.CHUNK_BYTES``) below the data's dense size.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse as sp  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from fastnn import _sklearn_data  # noqa: E402
from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

from _sklearn_cases import RTOL, TRAINERS, WEIGHTED, assert_same_model  # noqa: E402


@pytest.fixture(params=TRAINERS)
def trainer(request):
    return request.param


def _fit(estimator, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y, **kw)


def _sparse_data(m=120, n=30, seed=0):
    """A 10 %-dense X of m rows and 3 classes that depend on it."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=0.1, format="csr", random_state=seed)
    y = (np.asarray(X[:, :10].sum(axis=1)).ravel() * 3 + rng.uniform(0, 1, m)).astype(int) % 3
    return X, y


@pytest.fixture
def chunked(monkeypatch):
    """Blocks of 32 examples (30 float64 features: 240 bytes a column); a
    dense copy of 120 examples no longer counts as small."""
    monkeypatch.setattr(_sklearn_data, "CHUNK_BYTES", 32 * 30 * 8)
    return 32


def test_a_small_sparse_x_trains_as_its_dense_copy(trainer):
    X, y = _sparse_data()
    common = dict(hidden_layer_sizes=(5,), batch_size=16, max_iter=4, random_state=0,
                  backend=trainer)
    sparse = _fit(NetworkClassifier(**common), X, y)
    dense = _fit(NetworkClassifier(**common), X.toarray(), y)
    for P, Q in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_array_equal(P, Q)
    assert sparse.loss_curve_ == dense.loss_curve_
    np.testing.assert_array_equal(sparse.predict_proba(X), dense.predict_proba(X.toarray()))


# (estimator options, sparse format, weighted): sgd and adam batch by batch,
# early stopping (its held-out blocks scored and costed weighted), lbfgs (its
# blocks' sums); CSR and CSC, matrix and array, and a COO converted.
CASES = [
    (dict(solver="sgd", learning_rate_init=0.1), sp.csr_matrix, False),
    (dict(solver="adam", learning_rate_init=0.01), sp.csc_array, True),
    (dict(solver="adam", learning_rate_init=0.01, early_stopping=True, n_iter_no_change=2,
          validation_fraction=0.5, max_iter=20), sp.csr_array, True),
    (dict(solver="lbfgs", max_iter=15), sp.coo_matrix, False),
    (dict(solver="lbfgs", max_iter=15), sp.csr_matrix, True),
]


@pytest.mark.parametrize("options, container, weighted", CASES)
def test_chunks_take_scikit_learns_steps(options, container, weighted, chunked, trainer):
    if weighted and trainer not in WEIGHTED:
        pytest.skip(f"backend {trainer!r} has no HAS_SAMPLE_WEIGHT")
    X, y = _sparse_data()
    if options.get("early_stopping"):
        y = y % 2  # scikit-learn stratifies the split of binary targets only
    X = container(X)
    w = np.random.default_rng(2).integers(0, 4, len(y)) * 0.75 if weighted else None
    common = dict(hidden_layer_sizes=(5,), batch_size=16, max_iter=5, tol=0, alpha=1e-3,
                  random_state=1)
    common.update(options)
    ours = _fit(NetworkClassifier(backend=trainer, **common), X, y, sample_weight=w)
    theirs = _fit(MLPClassifier(**common), X, y, sample_weight=w)
    if options["solver"] == "lbfgs":
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL)
        for P, Q in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(P, Q, rtol=RTOL, atol=1e-11)
    else:
        assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)


def test_chunks_with_weights_and_several_targets(chunked):
    """A regressor of two targets with alpha > 0 (one call per batch) and
    weights, then partial_fit, on a CSR batch by batch."""
    if not WEIGHTED:
        pytest.skip("no backend here has HAS_SAMPLE_WEIGHT")
    X, y = _sparse_data(seed=1)
    Y = np.column_stack([y, np.asarray(X.sum(axis=1)).ravel()])
    w = np.random.default_rng(0).integers(0, 3, len(y)).astype(float)
    common = dict(hidden_layer_sizes=(4,), batch_size=16, max_iter=3, tol=0,
                  learning_rate_init=0.01, random_state=0)
    ours = _fit(NetworkRegressor(backend=WEIGHTED[-1], **common), X, Y, sample_weight=w)
    theirs = _fit(MLPRegressor(**common), X, Y, sample_weight=w)
    assert_same_model(ours, theirs)
    ours.partial_fit(X, Y, sample_weight=w)
    theirs.partial_fit(X, Y, sample_weight=w)
    assert_same_model(ours, theirs)


def test_a_large_sparse_x_is_never_densified_whole(chunked, monkeypatch):
    """Every dense block the estimator makes -- training, lbfgs, predicting --
    holds at most a block of examples (a batch while training)."""
    X, y = _sparse_data(m=200)
    widths = []
    columns = _sklearn_data.Examples.columns

    def spy(self, idx):
        block = columns(self, idx)
        widths.append(block.shape[1])
        return block

    monkeypatch.setattr(_sklearn_data.Examples, "columns", spy)
    for solver in ("adam", "lbfgs"):
        est = _fit(NetworkClassifier((4,), solver=solver, batch_size=16, max_iter=3,
                                     random_state=0), X, y)
        est.predict(X)
    assert widths and max(widths) <= chunked and min(widths) >= 1
    assert 16 in widths and sum(widths) > 3 * 200  # every epoch went batch by batch


def test_sparse_input_errors_as_scikit_learn():
    X, y = load_iris(return_X_y=True)
    est = _fit(NetworkClassifier((3,), max_iter=2, random_state=0), sp.csr_matrix(X), y)
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="X has 3 features, but NetworkClassifier is "
                                         "expecting 4 features"):
        est.predict(sp.csr_matrix(X[:, :3]))
    with pytest.raises(TypeError, match="Sparse data was passed for sample_weight"):
        est.fit(sp.csr_matrix(X), y, sample_weight=sp.csr_matrix(np.ones((150, 1))))
    bad = sp.csr_matrix(X)
    bad.data[0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.fit(bad, y)
    for P, Q in zip(before, est.coefs_):
        np.testing.assert_array_equal(P, Q)
    # Formats other than CSR/CSC are converted, as MLPClassifier does.
    np.testing.assert_array_equal(est.predict(sp.lil_matrix(X)), est.predict(X))
