"""Where a backend is missing -- a laptop without a compiler, a worker image
without numba: a Network or estimator pickled (or a network saved) where it ran
loads on the fastest backend available here, with a warning, instead of raising;
a backend asked for by name is still refused."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

import fastnn  # noqa: E402
from fastnn import backends  # noqa: E402

from _sweep_cases import data_3class, estimator as _estimator  # noqa: E402

COMPILED = ["numba", "cython"]


def _usable(backend):
    status = backends.available()[backend]
    if status is not True:
        pytest.skip(f"backend {backend!r} unavailable: {status}")


@pytest.fixture(scope="module")
def data():
    return data_3class()


@pytest.fixture
def without(monkeypatch):
    """``without(name)``: the registry reports backend ``name`` unavailable, as
    on a machine without a compiler or without numba."""
    def hide(name):
        monkeypatch.delitem(backends._loaded, name, raising=False)
        monkeypatch.setitem(backends._errors, name, "ImportError: simulated: not installed here")
    return hide


def _expected_fallback(missing):
    return next(b for b in backends.AUTO_ORDER
                if b not in missing and backends.available()[b] is True)


def test_fastest_is_the_first_available_of_cython_numba_numpy(without):
    assert backends.fastest() == _expected_fallback(())
    without("cython")
    assert backends.fastest() == _expected_fallback(("cython",))
    without("numba")
    assert backends.fastest() == "numpy"


def test_the_fallback_warning_is_a_user_warning():
    # pytest turns RuntimeWarnings into errors here; a user's loading code
    # must see a warning, not an exception.
    assert issubclass(backends.BackendFallbackWarning, UserWarning)
    assert not issubclass(backends.BackendFallbackWarning, RuntimeWarning)


@pytest.mark.parametrize("backend", COMPILED)
def test_a_pickle_from_a_missing_backend_loads_on_the_fastest_one_here(backend, data, without):
    _usable(backend)
    X, y = data
    estimator = _estimator(backend).fit(X, y)
    blob_net = pickle.dumps(estimator.network_)
    blob_estimator = pickle.dumps(estimator)
    without(backend)
    other = _expected_fallback((backend,))
    match = f"backend '{backend}', which is unavailable here .*simulated.* runs on '{other}'"
    with pytest.warns(backends.BackendFallbackWarning, match=match):
        net = pickle.loads(blob_net)
    assert net.backend == other
    np.testing.assert_allclose(net.predict_proba(X.T), estimator.network_.predict_proba(X.T),
                               rtol=1e-9, atol=1e-12)
    with pytest.warns(backends.BackendFallbackWarning, match=match):
        loaded = pickle.loads(blob_estimator)
    assert loaded.network_.backend == other
    np.testing.assert_allclose(loaded.predict_proba(X), estimator.predict_proba(X),
                               rtol=1e-9, atol=1e-12)
    # Refitting asks for its backend parameter by name: refused here, as any
    # unavailable backend asked for; another one is a set_params away.
    with pytest.raises(ValueError, match=f"backend '{backend}' is unavailable"):
        loaded.fit(X, y)
    assert loaded.set_params(backend=other).fit(X, y).network_.backend == other


@pytest.mark.parametrize("backend", COMPILED)
def test_a_saved_network_of_a_missing_backend_loads_on_the_fastest_one_here(
        backend, data, without, tmp_path):
    _usable(backend)
    X, y = data
    net = fastnn.Network([X.shape[1], 8, 3], ["relu", "softmax"], seed=0, backend=backend)
    path = net.save(tmp_path / "model")
    assert fastnn.load(path).backend == backend  # the backend it was saved from
    without(backend)
    other = _expected_fallback((backend,))
    with pytest.warns(backends.BackendFallbackWarning, match=f"'{backend}'.*'{other}'"):
        back = fastnn.load(path)
    assert back.backend == other
    np.testing.assert_allclose(back.predict_proba(X.T), net.predict_proba(X.T), rtol=1e-9)
    # Asked for by name, a missing backend is refused: the user asked for it.
    with pytest.raises(ValueError, match=f"backend '{backend}' is unavailable"):
        fastnn.load(path, backend=backend)


def test_a_pickle_from_an_unknown_backend_loads_on_the_fastest_one_here():
    net = fastnn.Network([3, 2, 1], seed=0)
    net._backend_name = "quantum"  # written by a fastnn that has more backends
    with pytest.warns(backends.BackendFallbackWarning, match="'quantum'.*does not know"):
        back = pickle.loads(pickle.dumps(net))
    assert back.backend == backends.fastest()
