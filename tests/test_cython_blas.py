"""Which BLAS the cython kernels call: the scipy-openblas32 wheel's OpenBLAS
where it is installed and newer than the one in scipy's wheel, else scipy's
(``fastnn.backends._blas``); ``FASTNN_BLAS=scipy`` keeps scipy's. Either way
the kernels train alike, and a fit holds the library's threads to its own.
"""

import json
import os
import platform

import numpy as np
import pytest

from fastnn.backends import _blas

from _helpers import assert_close, require_backend, run_python

cb = require_backend("cython")

def _scipy_addresses():
    """The addresses of scipy.linalg.cython_blas's dgemm, sgemm, dgemv, sgemv."""
    import ctypes

    import scipy.linalg.cython_blas as c

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                   ctypes.c_char_p]
    capsules = [c.__pyx_capi__[name] for name in _blas.CYTHON_FUNCTIONS]
    return tuple(get_pointer(cap, get_name(cap)) for cap in capsules)


def _wheel_installed():
    try:
        import scipy_openblas32  # noqa: F401
    except ImportError:
        return False
    return True


def test_version_reads_the_first_three_numbers():
    assert _blas._version("0.3.34.481.3") == (0, 3, 34)
    assert _blas._version("0.3.30") == (0, 3, 30)
    assert _blas._version("0.3.30.dev") == (0, 3, 30)
    assert _blas._version("openblas") is None and _blas._version(None) is None
    assert _blas._version("0.3.9") < _blas._version("0.3.30")  # numbers, not text


def test_the_kernels_call_the_library_the_policy_chose():
    ext = cb.paths.active()
    chosen = _blas.cython_pointers()
    if any(chosen):
        assert all(chosen) and ext._blas_addresses() == chosen
        assert "scipy-openblas32" in cb.info()["blas"]
    else:
        assert ext._blas_addresses() == _scipy_addresses()
        assert "cython_blas" in cb.info()["blas"]


@pytest.mark.skipif(not (platform.system() == "Linux" and platform.machine() == "x86_64"),
                    reason="the scipy-openblas32 dependency is Linux x86-64's (pyproject.toml)")
def test_a_wheel_newer_than_scipys_is_taken_where_it_is_a_dependency():
    # pyproject.toml asks for scipy-openblas32 >= 0.3.31 there; scipy's wheels
    # up to 1.17 bundle 0.3.30 or older (a newer scipy: nothing to take)
    import scipy_openblas32

    scipys = _blas.controllers("numba")
    assert len(scipys) == 1, scipys
    newer = _blas._version(scipy_openblas32.__version__) > _blas._version(scipys[0].version)
    assert any(_blas.cython_pointers()) is newer
    if newer:
        (ours,) = _blas.controllers("cython")
        assert _blas._version(ours.version) == _blas._version(scipy_openblas32.__version__)
        assert _blas.describe("cython") != _blas.describe("numba")


def test_a_wheel_not_newer_than_scipys_is_left_alone(monkeypatch):
    if not _wheel_installed():
        pytest.skip("scipy-openblas32 is not installed here")
    import scipy_openblas32

    (scipys,) = _blas.controllers("numba")
    monkeypatch.setattr(scipy_openblas32, "__version__", scipys.version)
    _blas._wheel_openblas.cache_clear()
    try:
        assert _blas._wheel_openblas() is None
        assert _blas.cython_pointers() == (0, 0, 0, 0)
    finally:
        monkeypatch.undo()
        _blas._wheel_openblas.cache_clear()


def test_use_blas_zero_restores_scipys_and_back():
    ext = cb.paths.active()
    before = ext._blas_addresses()
    try:
        ext._use_blas(0, 0, 0, 0)
        assert ext._blas_addresses() == _scipy_addresses()
    finally:
        ext._use_blas(*before)
    assert ext._blas_addresses() == before


@pytest.mark.parametrize("threads", [1, 2])
def test_a_fit_holds_the_kernels_blas_to_its_threads(threads):
    # the library the cython kernels call is among those limit() holds
    from threadpoolctl import threadpool_info

    chosen = (_blas.controllers("cython") or [None])[0]
    if chosen is None:
        pytest.skip("threadpoolctl sees no BLAS here")
    path = os.path.realpath(chosen.filepath)
    with _blas.limit(threads):
        counts = [i["num_threads"] for i in threadpool_info()
                  if i["filepath"] and os.path.realpath(i["filepath"]) == path]
    assert counts and all(n <= threads for n in counts), counts


_TRAIN = """
import json, sys
import numpy as np
from fastnn import Network
from fastnn._testing import binary_data
import fastnn.backends.cython as cb
from fastnn.backends import _blas
out = {"blas": cb.info()["blas"], "runs": {}}
for dtype in ("float64", "float32"):
    X, Y = (a.astype(dtype) for a in binary_data(120, 600, seed=3))  # BLAS-sized products
    for batch_size in (None, 200):
        net = Network([120, 96, 64, 1], ["relu", "relu", "sigmoid"], backend="cython",
                      dtype=dtype, seed=1, threads=1)
        net.fit(X, Y, learning_rate=0.05, num_iterations=20, batch_size=batch_size,
                optimizer="adam", cost_every=5, seed=0)
        out["runs"][f"{dtype}-{batch_size}"] = {
            "costs": [c for _, c in net.costs_],
            "params": {k: v.ravel().tolist() for k, v in net.params.items()}}
print(json.dumps(out))
"""


def test_scipys_blas_and_the_wheels_train_alike():
    # FASTNN_BLAS=scipy (read at import) against the default, each in its own
    # process: the same steps within rounding (two builds of OpenBLAS may sum
    # a product's terms in another order)
    ours = json.loads(run_python(_TRAIN))
    scipys = json.loads(run_python(_TRAIN, env={"FASTNN_BLAS": "scipy"}))
    assert "cython_blas" in scipys["blas"]
    for key, run in ours["runs"].items():
        tol = 1e-9 if key.startswith("float64") else 2e-3
        other = scipys["runs"][key]
        assert_close([np.array(run["costs"])], [np.array(other["costs"])], tol, f"{key} costs")
        for name, values in run["params"].items():
            assert_close([np.array(values)], [np.array(other["params"][name])], tol,
                         f"{key} {name}")
