"""The BLAS thread count, shared by every backend whose products run on BLAS.

Both compiled backends call the OpenBLAS that ships in scipy's wheel
(``scipy.linalg.cython_blas``): cython from inside its own OpenMP threads, numba
through ``np.dot`` in its kernels. The numpy backend's ``@`` runs on the
OpenBLAS in NumPy's wheel, a second copy with its own thread pool. Either way
BLAS must not start threads of its own beyond what the fit asked for, so every
fit holds :func:`limit` around its kernel calls, and :func:`limit` holds every
BLAS library loaded in the process.

OpenBLAS is called directly (``openblas_get/set_num_threads``, with scipy's
symbol prefix): threadpoolctl 3.8 lets only the first Python thread that
limited a pthreads OpenBLAS change its count and silently ignores the others,
so a fit from a worker thread ran two-thread GEMMs whose results differed
bitwise from the same fit on the main thread. Other BLAS libraries go through
threadpoolctl.

The count is process-wide, so concurrent fits share it: while any are running
it is the smallest limit any of them asked for, and the last one out restores
the count found when the first one came in.

The libraries are listed again (a threadpoolctl scan, about a millisecond) when
a fit starts with none running and modules were imported since the last list:
a BLAS loaded later -- torch's MKL, imported after the first fit -- is held
too.
"""

import contextlib
import ctypes
import itertools
import os
import sys
import threading

__all__ = ["architecture", "controllers", "limit", "describe"]

_lock = threading.Lock()
_active = {}          # id of a limit() call -> its n
_saved = []           # counts found when the first active call came in
_knobs = None         # [(get, set)] per library
_listed_at = None     # len(sys.modules) when _knobs was listed


def _all_blas():
    """threadpoolctl controllers of every BLAS library loaded -- scipy's
    included, which is loaded here first: numba loads it only when it first
    compiles a product, after a fit has asked for its limit; ``[]`` without
    threadpoolctl."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401 -- loads scipy's BLAS
        from threadpoolctl import ThreadpoolController
        return [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    except Exception:  # threadpoolctl missing or confused: leave BLAS as it is
        return []


def controllers():
    """threadpoolctl controllers of the BLAS scipy.linalg.cython_blas calls (the
    one in scipy's wheel, ``scipy.libs/``, not numpy's); all BLAS libraries if
    that one cannot be told apart (a system scipy); ``[]`` without threadpoolctl."""
    import scipy

    blas = _all_blas()
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    own = [c for c in blas if (c.filepath or "").startswith(libs + os.sep)]
    return own or blas


def architecture():
    """The kernel set of the BLAS the compiled backends call (OpenBLAS's core
    name, e.g. ``"SkylakeX"``, ``"Haswell"``, ``"Zen"``), or ``None``."""
    libs = controllers()
    return getattr(libs[0], "architecture", None) if len(libs) == 1 else None


def describe():
    """``"openblas 0.3.x (SkylakeX)"`` for the BLAS the compiled backends call, or ``None``."""
    libs = controllers()
    if len(libs) != 1:
        return None
    return f"{libs[0].internal_api} {libs[0].version} ({libs[0].architecture})"


def _thread_knobs(libs):
    """``(get, set)`` of each BLAS library's thread count (see the module doc)."""
    knobs = []
    for c in libs:
        get = set_ = None
        if c.internal_api == "openblas":
            try:
                lib = ctypes.CDLL(c.filepath)
            except OSError:
                lib = None
            for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
                name = f"{prefix}openblas_%s_num_threads{suffix}"
                if lib is not None and hasattr(lib, name % "get") and hasattr(lib, name % "set"):
                    get, set_ = getattr(lib, name % "get"), getattr(lib, name % "set")
                    get.argtypes, get.restype = [], ctypes.c_int
                    set_.argtypes, set_.restype = [ctypes.c_int], None
                    break
        if get is None:
            get, set_ = (lambda c=c: c.num_threads), c.set_num_threads
        knobs.append((get, set_))
    return knobs


def _apply():
    """Set every library to the smallest active limit, or restore (none active)."""
    target = min(_active.values()) if _active else None
    for (get, set_), saved in zip(_knobs, _saved):
        want = saved if target is None else min(target, saved)
        if get() != want:
            set_(want)


@contextlib.contextmanager
def limit(n):
    """Hold every BLAS library in the process (scipy's, which the compiled
    backends call, and NumPy's, which the numpy backend's ``@`` runs on) to at
    most ``n`` threads."""
    global _knobs, _saved, _listed_at
    n = max(1, int(n))
    token = object()
    with _lock:
        if not _active:
            if _listed_at != len(sys.modules):  # something imported since: a new BLAS?
                _knobs = _thread_knobs(_all_blas())
                _listed_at = len(sys.modules)  # after the list (it may import scipy's)
            _saved = [get() for get, _ in _knobs]
        _active[id(token)] = n
        _apply()
    try:
        yield
    finally:
        with _lock:
            del _active[id(token)]
            _apply()
