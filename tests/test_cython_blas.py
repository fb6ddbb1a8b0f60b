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


def _wheel_version():
    """The scipy-openblas32 wheel's version, or None where it is not installed
    (found without importing it: its import loads the library globally)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("scipy-openblas32")
    except importlib.metadata.PackageNotFoundError:
        return None


def _threads_of(path):
    """The thread counts threadpoolctl reads off the library at ``path`` (real)."""
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info()
            if i["filepath"] and os.path.realpath(i["filepath"]) == path]


def _wheel_path():
    """The real path of the wheel's library the cython kernels call; skips where
    they call scipy's."""
    if not any(_blas.cython_pointers()):
        pytest.skip("the wheel is not taken here")
    return os.path.realpath(_blas.controllers("cython")[0].filepath)


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
    if os.environ.get("FASTNN_BLAS", "").strip().lower() == "scipy":
        pytest.skip("FASTNN_BLAS=scipy: the wheel is declined")
    ours = _wheel_version()
    assert ours is not None, "scipy-openblas32, a dependency on Linux x86-64, is not installed"
    scipys = _blas.controllers("scipy")
    assert len(scipys) == 1, scipys
    newer = _blas._version(ours) > _blas._version(scipys[0].version)
    assert any(_blas.cython_pointers()) is newer
    if newer:
        (loaded,) = _blas.controllers("cython")
        assert _blas._version(loaded.version) == _blas._version(ours)
        assert _blas.describe("cython") != _blas.describe("scipy")


def test_a_wheel_not_newer_than_scipys_is_left_alone(monkeypatch):
    import importlib.metadata

    if _wheel_version() is None:
        pytest.skip("scipy-openblas32 is not installed here")
    (scipys,) = _blas.controllers("scipy")
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: scipys.version if name == "scipy-openblas32" else real(name))
    monkeypatch.setattr(_blas, "_wheel", _blas._UNSET)  # look again (undone after)
    assert _blas._wheel_openblas() is None
    assert _blas.cython_pointers() == (0, 0, 0, 0)


def test_use_blas_zero_restores_scipys_and_back():
    ext = cb.paths.active()
    before = ext._blas_addresses()
    try:
        ext._use_blas(0, 0, 0, 0)
        assert ext._blas_addresses() == _scipy_addresses()
    finally:
        ext._use_blas(*before)
    assert ext._blas_addresses() == before


def test_a_fit_holds_the_kernels_blas_to_its_threads():
    # the library the cython kernels call is among those limit() holds, and
    # gets its count back after
    chosen = _blas.controllers("cython")
    if not chosen:
        pytest.skip("threadpoolctl sees no BLAS here")
    path = os.path.realpath(chosen[0].filepath)
    before = _threads_of(path)
    if max(before) < 2:
        pytest.skip("this library runs one thread already: nothing to hold")
    with _blas.limit(1):
        assert _threads_of(path) == [1] * len(before)
    assert _threads_of(path) == before


_ISOLATION = """
import ctypes, json, sys
import numpy as np
from threadpoolctl import threadpool_info
from fastnn import Network
X = np.random.default_rng(0).standard_normal((100, 400)); Y = (X[:1] > 0).astype(float)
Network([100, 64, 1], ["relu", "sigmoid"], backend=sys.argv[1], seed=0).fit(
    X, Y, learning_rate=0.1, num_iterations=3, batch_size=100)
print(json.dumps({"imported": "scipy_openblas32" in sys.modules,
                  "global": hasattr(ctypes.CDLL(None), "scipy_dgemm_"),
                  "libs": [i["filepath"] for i in threadpool_info()]}))
"""


def test_only_the_cython_backend_loads_the_wheel_and_never_into_the_global_scope():
    # importing scipy_openblas32 would load its library globally, where scipy's
    # copy would send its not yet bound calls to it; the numpy and numba
    # backends do not need it at all (its threads would start for nothing)
    wheel = _blas.controllers("cython")[0].filepath if any(_blas.cython_pointers()) else None
    for backend in ("cython", "numpy", "numba"):
        seen = json.loads(run_python(_ISOLATION, backend))
        assert not seen["imported"] and not seen["global"], (backend, seen)
        if wheel is not None:
            loaded = any(os.path.realpath(p) == os.path.realpath(wheel) for p in seen["libs"])
            assert loaded is (backend == "cython"), (backend, seen["libs"])


_GLOBAL_SCIPY = """
import ctypes, json, os, scipy
libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
(name,) = [f for f in os.listdir(libs) if f.startswith("libscipy_openblas")]
ctypes.CDLL(os.path.join(libs, name), ctypes.RTLD_GLOBAL)  # scipy's OpenBLAS, global
from fastnn.backends import _blas
import fastnn.backends.cython as cb
print(json.dumps({"pointers": _blas.cython_pointers(), "blas": cb.info()["blas"]}))
"""


def test_with_scipys_openblas_in_the_global_scope_the_kernels_keep_scipys():
    # there the wheel's calls of its own functions would bind to scipy's copy
    # (its thread count among them): not taken
    if not any(_blas.cython_pointers()):
        pytest.skip("the wheel is not taken here anyway")
    seen = json.loads(run_python(_GLOBAL_SCIPY))
    assert seen["pointers"] == [0, 0, 0, 0] and "cython_blas" in seen["blas"], seen


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
    assert ("scipy-openblas32" in ours["blas"]) is any(_blas.cython_pointers()), ours["blas"]
    for key, run in ours["runs"].items():
        tol = 1e-9 if key.startswith("float64") else 2e-3
        other = scipys["runs"][key]
        assert_close([np.array(run["costs"])], [np.array(other["costs"])], tol, f"{key} costs")
        for name, values in run["params"].items():
            assert_close([np.array(values)], [np.array(other["params"][name])], tol,
                         f"{key} {name}")


def test_a_wheel_loaded_while_a_limit_is_active_is_held_at_once_and_restored():
    # _adopt: the cython backend may load its first kernel module while another
    # fit holds its limit; a second look at the same library adds nothing
    path = _wheel_path()
    before = _threads_of(path)
    (count,) = before  # threadpoolctl sees it once
    if count < 2:
        pytest.skip("this library runs one thread already: nothing to hold")
    try:
        _adopt_while_limited(path, count)
    finally:
        _blas._listed_at = None  # whatever happened, the next limit() lists them all again
    assert _threads_of(path) == before


def _adopt_while_limited(path, before):
    with _blas.limit(1):
        _blas._knobs[:] = [k for k, f in zip(_blas._knobs, _blas._files) if f != path]
        _blas._saved[:] = [s for s, f in zip(_blas._saved, _blas._files) if f != path]
        _blas._files[:] = [f for f in _blas._files if f != path]  # as if listed before it came
        _, set_ = _blas._thread_knobs(_blas.controllers("cython"))[0]
        set_(before)  # unheld, as a library loaded just now
        _blas._adopt(path)
        adopted = len(_blas._knobs)
        assert _threads_of(path) == [1]
        _blas._adopt(path)  # listed now: nothing added
        assert len(_blas._knobs) == adopted


def test_the_wheel_is_chosen_once_however_many_threads_ask_first(monkeypatch):
    # the choice probes the library's thread count (set to 1, read, restored):
    # concurrent first callers must not overlap it, or one restores another's 1
    import threading

    path = _wheel_path()
    before = _threads_of(path)
    for _ in range(10):
        monkeypatch.setattr(_blas, "_wheel", _blas._UNSET)
        start = threading.Barrier(4)
        found = []

        def first():
            start.wait()
            found.append(_blas._wheel_openblas())

        threads = [threading.Thread(target=first) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(found) == 4 and all(f is found[0] for f in found) and found[0] is not None
        assert _threads_of(path) == before
