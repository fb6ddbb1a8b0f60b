"""The BLAS the compiled backends call, and its thread count, shared by every
backend whose products run on BLAS.

numba calls the OpenBLAS that ships in scipy's wheel (``scipy.linalg.cython_blas``,
through ``np.dot`` in its kernels); so does cython (from inside its own OpenMP
threads) unless a newer OpenBLAS is installed: the ``scipy-openblas32`` wheel,
the same build of OpenBLAS that scipy's and NumPy's wheels bundle, released
ahead of them (:func:`cython_pointers`). The numpy backend's ``@`` runs on the
OpenBLAS in NumPy's wheel, another copy with its own thread pool. Either way
BLAS must not start threads of its own beyond what the fit asked for, so every
fit holds :func:`limit` around its kernel calls, and :func:`limit` holds every
BLAS library loaded in the process.

Why a newer OpenBLAS: 0.3.31 runs float32 GEMMs at the nets' shapes 6-13 %
faster than scipy 1.17's 0.3.30 on a Zen 4 (SkylakeX kernels, one thread:
128 x 100 x 200 57.0 -> 52.6 us, 64 x 128 x 200 39.5 -> 34.6), float64 the
same; an Adam epoch of the 100-128-64-5 net at B = 200 in float32 took 62.2
-> 58.2 ms on cython. ``FASTNN_BLAS=scipy`` (read at import) keeps scipy's.

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
import functools
import itertools
import os
import re
import sys
import threading

__all__ = ["architecture", "controllers", "cython_pointers", "limit", "describe"]

#: The Fortran BLAS functions the cython kernels call (fastnn_ext/_blas.pxi), in
#: the order its ``_use_blas`` takes them.
CYTHON_FUNCTIONS = ("dgemm", "sgemm", "dgemv", "sgemv")

_lock = threading.Lock()
_active = {}          # id of a limit() call -> its n
_saved = []           # counts found when the first active call came in
_knobs = None         # [(get, set)] per library
_listed_at = None     # len(sys.modules) when _knobs was listed


def _version(text):
    """The first three numbers of a version string, e.g. (0, 3, 31), or None."""
    found = re.match(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(v) for v in found.groups()) if found else None


def _scipy_controllers(blas):
    """Of threadpoolctl controllers ``blas``, scipy's wheel's own (``scipy.libs/``,
    not numpy's); all of them if that one cannot be told apart (a system scipy)."""
    import scipy

    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    own = [c for c in blas if (c.filepath or "").startswith(libs + os.sep)]
    return own or blas


@functools.cache
def _wheel_openblas():
    """``(path, ctypes.CDLL)`` of the scipy-openblas32 wheel's OpenBLAS, loaded
    (privately: its symbols are scipy's names, and stay out of the process's
    global scope), where it is installed, newer than the OpenBLAS in scipy's
    wheel (by their first three version numbers) and ``FASTNN_BLAS`` is not
    ``scipy``; else None (the cython kernels keep scipy's)."""
    if os.environ.get("FASTNN_BLAS", "auto").strip().lower() == "scipy":
        return None
    try:
        import scipy.linalg.cython_blas  # noqa: F401 -- loads scipy's BLAS
        import scipy_openblas32
        from threadpoolctl import ThreadpoolController

        path = os.path.join(scipy_openblas32.get_lib_dir(),
                            scipy_openblas32.get_library(fullname=True))
        scipys = _scipy_controllers([c for c in ThreadpoolController().lib_controllers
                                     if c.user_api == "blas"])
        theirs = _version(scipys[0].version) if len(scipys) == 1 else None
        ours = _version(scipy_openblas32.__version__)
        if ours is None or theirs is None or ours <= theirs:
            return None
        lib = ctypes.CDLL(path)
        if not all(hasattr(lib, f"scipy_{name}_") for name in CYTHON_FUNCTIONS):
            return None
        return path, lib
    except Exception:  # not installed, or not the library it says: scipy's
        return None


def cython_pointers():
    """The addresses of the BLAS functions the cython kernels are to call, in
    :data:`CYTHON_FUNCTIONS` order: the scipy-openblas32 wheel's where
    :func:`_wheel_openblas` takes it, else zeros (keep scipy's)."""
    found = _wheel_openblas()
    if found is None:
        return (0,) * len(CYTHON_FUNCTIONS)
    return tuple(ctypes.cast(getattr(found[1], f"scipy_{name}_"), ctypes.c_void_p).value
                 for name in CYTHON_FUNCTIONS)


def _all_blas():
    """threadpoolctl controllers of every BLAS library loaded -- scipy's and the
    cython kernels' included, which are loaded here first: numba loads scipy's
    only when it first compiles a product, after a fit has asked for its
    limit; ``[]`` without threadpoolctl."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401 -- loads scipy's BLAS
        from threadpoolctl import ThreadpoolController
        _wheel_openblas()
        return [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    except Exception:  # threadpoolctl missing or confused: leave BLAS as it is
        return []


def controllers(backend="cython"):
    """threadpoolctl controllers of the BLAS that ``backend``'s products call
    ("cython" or "numba"): scipy's wheel's (not numpy's), or cython's newer
    one (:func:`_wheel_openblas`); all BLAS libraries if scipy's cannot be
    told apart (a system scipy); ``[]`` without threadpoolctl."""
    blas = _all_blas()
    wheel = _wheel_openblas() if backend == "cython" else None
    if wheel is not None:
        own = [c for c in blas if c.filepath and os.path.realpath(c.filepath)
               == os.path.realpath(wheel[0])]
        if own:
            return own
    return _scipy_controllers(blas)


def architecture(backend="cython"):
    """The kernel set of the BLAS ``backend`` calls (OpenBLAS's core name, e.g.
    ``"SkylakeX"``, ``"Haswell"``, ``"Zen"``), or ``None``."""
    libs = controllers(backend)
    return getattr(libs[0], "architecture", None) if len(libs) == 1 else None


def describe(backend="cython"):
    """``"openblas 0.3.x (SkylakeX)"`` for the BLAS ``backend`` calls, or ``None``."""
    libs = controllers(backend)
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
    """Hold every BLAS library in the process (scipy's and cython's, which the
    compiled backends call, and NumPy's, which the numpy backend's ``@`` runs
    on) to at most ``n`` threads."""
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
