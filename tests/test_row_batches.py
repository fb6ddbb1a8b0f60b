"""X given as rows: ``Network.fit`` takes an F-contiguous X -- the transpose
of a C-contiguous (m, n_x) array, scikit-learn's layout -- and a backend whose
engine gathers its mini-batches from rows (``HAS_ROW_BATCHES``: cython and
numba) reads those rows in place, with no copy; every other path copies X to
C-contiguous columns first, as it did. Either way the results are the bits of
a C-contiguous X. The estimators hand a dense X over this way.
"""

import importlib
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import _validation as _v
from fastnn import backends
from fastnn._sklearn_data import Examples
from fastnn.backends import _base

from _helpers import usable
#: The backends whose engines gather from rows, and where each keeps them.
ROWS = {"cython": ("fastnn.backends.cython.engine", "Engine", lambda e: e._XT),
        "numba": ("fastnn.backends.numba.engine_room", "_Engine", lambda e: e.rows[0])}

DIMS, ACTS = [6, 5, 3], ["relu", "softmax"]


def _rows(m=130, dtype=np.float64, seed=0):
    """X's rows (m, n_x), C-contiguous, and one-hot Y (n_L, m)."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((m, DIMS[0])).astype(dtype)
    Y = np.eye(DIMS[-1], dtype=dtype)[:, rng.integers(0, DIMS[-1], m)]
    return rows, Y


@pytest.fixture(params=sorted(ROWS))
def rows_backend(request):
    """A backend that gathers from rows (unavailable: skipped, or failed under CI)."""
    usable(request.param)
    return request.param


@pytest.fixture
def engines(monkeypatch, rows_backend):
    """The row arrays of the engines a test's fits build on ``rows_backend``
    (its module, the engine class whose __init__ keeps them, and where)."""
    module, name, where = ROWS[rows_backend]
    cls = getattr(importlib.import_module(module), name)
    made = []
    init = cls.__init__

    def spy(self, fit):
        init(self, fit)
        if fit.schedule.batch_size is not None:
            made.append(where(self))

    monkeypatch.setattr(cls, "__init__", spy)
    return made


def _fit(backend, X, Y, dtype=np.float64, **kw):
    net = fastnn.Network(DIMS, ACTS, seed=3, backend=backend, dtype=dtype)
    args = dict(learning_rate=0.05, num_iterations=4, cost_every=1, batch_size=16, seed=1)
    args.update(kw)
    net.fit(X, Y, **args)
    return net, net.costs_


def test_batches_read_an_f_contiguous_X_in_place(engines, rows_backend):
    rows, Y = _rows()
    _fit(rows_backend, rows.T, Y)
    (gathered_from,) = engines
    assert np.shares_memory(gathered_from, rows)


def test_a_c_contiguous_X_is_copied_to_rows_as_before(engines, rows_backend):
    rows, Y = _rows()
    X = np.ascontiguousarray(rows.T)
    _fit(rows_backend, X, Y)
    (gathered_from,) = engines
    assert not np.shares_memory(gathered_from, X)
    np.testing.assert_array_equal(gathered_from, rows)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [
    {},
    {"optimizer": "adam", "keep_prob": 0.8, "lambd": 0.3},
    {"optimizer": "momentum", "sample_weight": "random"},
    {"batch_size": 1, "optimizer": "rmsprop"},
    {"batch_size": None, "num_iterations": 3},  # full batch: the kernels get a C copy
], ids=["gd", "adam-dropout-l2", "momentum-weighted", "batch-1", "full-batch"])
def test_the_same_bits_from_rows_and_from_columns(rows_backend, dtype, kw):
    rows, Y = _rows(dtype=dtype)
    if kw.get("sample_weight") == "random":
        kw = dict(kw, sample_weight=np.random.default_rng(5).random(rows.shape[0]).astype(dtype))
    by_rows, costs_rows = _fit(rows_backend, rows.T, Y, dtype, **kw)
    by_columns, costs_columns = _fit(rows_backend, np.ascontiguousarray(rows.T), Y, dtype, **kw)
    assert costs_rows == costs_columns  # cost_every=1: the lazily made full plan's costs
    for key, value in by_columns.params.items():
        np.testing.assert_array_equal(by_rows.params[key], value, err_msg=key)


@pytest.mark.parametrize("backend", ["loops", "per_example", "numpy"])
def test_other_backends_copy_an_f_contiguous_X_to_the_same_result(backend):
    rows, Y = _rows(m=40)
    kw = dict(num_iterations=2) if backend in ("loops", "per_example") else {}
    by_rows, costs_rows = _fit(backend, rows.T, Y, **kw)
    by_columns, costs_columns = _fit(backend, np.ascontiguousarray(rows.T), Y, **kw)
    assert costs_rows == costs_columns
    for key, value in by_columns.params.items():
        np.testing.assert_array_equal(by_rows.params[key], value, err_msg=key)


@pytest.mark.parametrize("name,batch_size", [("numpy", 16), ("cython", None), ("numba", None)])
def test_the_driver_refuses_an_f_contiguous_X_where_no_engine_reads_rows(name, batch_size):
    # numpy gathers no rows; cython and numba do, but not on a full batch.
    usable(name)
    backend = backends.get(name)
    rows, Y = _rows(m=20)
    net = fastnn.Network(DIMS, ACTS, seed=0, backend=name)
    schedule = _v.check_schedule(0.1, 2, None, batch_size, False, rows.shape[0], name)
    assert not _base.reads_rows(backend, schedule)
    fit = _base.Fit(_base.Problem(rows.T, Y, tuple(ACTS), "cross_entropy"), schedule,
                    [W.copy() for W in net._Ws], [b.copy() for b in net._bs],
                    rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="C-contiguous"):
        _base.train(backend, fit, lambda i, J: True)


def test_rows_are_taken_only_when_they_need_no_conversion():
    rows, _ = _rows(m=9)
    F = rows.T
    assert _v.check_X(F, DIMS[0], np.float64, rows=True) is F
    # Without rows=True, and in another dtype or layout, X is a C-contiguous copy.
    for X, rows_ok in [(F, False), (F.astype(np.float32, order="F"), True),
                       (np.asfortranarray(rows)[::2].T, True)]:
        got = _v.check_X(X, DIMS[0], np.float64, rows=rows_ok)
        assert got.flags.c_contiguous and got.dtype == np.float64
        assert not np.shares_memory(got, rows)
        np.testing.assert_array_equal(got, X)
    with pytest.raises(ValueError, match=r"shape \(n_x, m\)"):
        _v.check_X(rows, DIMS[0], np.float64, rows=True)  # (m, n_x): still the wrong shape


def test_the_estimator_hands_the_engine_its_X_without_a_copy(engines, rows_backend):
    from fastnn.sklearn import NetworkClassifier

    rows, Y = _rows(m=300)
    y = Y.argmax(axis=0)
    assert Examples(rows, rows=True).XT.base is rows
    assert Examples(rows).XT.flags.c_contiguous  # the other backends' columns, as before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 3-epoch fit does not converge
        est = NetworkClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                                backend=rows_backend).fit(rows, y)
    assert engines and all(np.shares_memory(gathered_from, rows) for gathered_from in engines)
    assert est.n_iter_ == 3
