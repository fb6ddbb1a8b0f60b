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
-> 58.2 ms on cython. ``FASTNN_BLAS=scipy`` keeps scipy's (read when the
cython backend loads its first kernel module).

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
_files = []           # the file of each library in _knobs


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


def _blas_controllers():
    """threadpoolctl controllers of the BLAS libraries loaded now."""
    from threadpoolctl import ThreadpoolController

    return [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]


def _real(path):
    return os.path.realpath(path) if path else None


def _same_file(a, b):
    return bool(a and b) and _real(a) == _real(b)


def _keeps_its_own_threads(lib, scipys):
    """Whether the OpenBLAS ``lib`` just loaded sets its own thread count: its
    calls must not reach scipy's copy (``scipys``, its controller), which they
    would where scipy's functions sit in the process's global scope."""
    get, set_ = lib.scipy_openblas_get_num_threads, lib.scipy_openblas_set_num_threads
    get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
    theirs, ours = scipys.num_threads, get()
    try:
        set_(1)
        return get() == 1 and scipys.num_threads == theirs
    finally:
        set_(ours)


_wheel_lock = threading.Lock()
_UNSET = object()
_wheel = _UNSET      # what _wheel_openblas found, once


def _wheel_openblas():
    """:func:`_find_wheel_openblas`, once per process: the first caller looks
    (its thread-count probe must not overlap another's), the others wait for
    its answer."""
    global _wheel
    with _wheel_lock:
        if _wheel is _UNSET:
            _wheel = _find_wheel_openblas()
        return _wheel


def _find_wheel_openblas():
    """``(path, ctypes.CDLL)`` of the scipy-openblas32 wheel's OpenBLAS, loaded
    (privately: its symbols are scipy's names, and stay out of the process's
    global scope), where it is installed, ``FASTNN_BLAS`` (read at the first
    call: the cython backend's first kernel module) is not ``scipy``, scipy's
    wheel carries an OpenBLAS, and the wheel's is newer (by the first three
    version numbers, as the loaded libraries report them); else None: the
    cython kernels keep scipy's. Not where scipy's OpenBLAS was loaded into
    the process's global scope (by an import under RTLD_GLOBAL): the wheel's
    calls of its own functions would go to scipy's copy, its thread count
    among them. Once loaded, every limit() holds it (:func:`_adopt`)."""
    if os.environ.get("FASTNN_BLAS", "auto").strip().lower() == "scipy":
        return None
    try:
        import importlib.metadata
        import importlib.util

        import scipy.linalg.cython_blas  # noqa: F401 -- loads scipy's BLAS

        if hasattr(ctypes.CDLL(None), "scipy_dgemm_"):  # an OpenBLAS in the global scope
            return None
        scipys = _scipy_controllers(_blas_controllers())
        if len(scipys) != 1 or scipys[0].internal_api != "openblas":
            return None
        theirs = _version(scipys[0].version)
        ours = _version(importlib.metadata.version("scipy-openblas32"))
        if theirs is None or ours is None or ours <= theirs:
            return None  # not newer: don't load it at all
        # Found, not imported: importing scipy_openblas32 loads its library into
        # the global scope (for builds linked against it), where scipy's copy
        # would take its not yet bound calls to the wheel's functions.
        spec = importlib.util.find_spec("scipy_openblas32")
        lib_dir = os.path.join(list(spec.submodule_search_locations)[0], "lib")
        (name,) = [f for f in os.listdir(lib_dir)
                   if f.startswith("libscipy_openblas") and ".so" in f]
        path = os.path.join(lib_dir, name)
        lib = ctypes.CDLL(path)
        loaded = [c for c in _blas_controllers() if _same_file(c.filepath, path)]
        if (len(loaded) != 1 or loaded[0].internal_api != "openblas"
                or (_version(loaded[0].version) or (0,)) <= theirs
                or not all(hasattr(lib, f"scipy_{name}_") for name in CYTHON_FUNCTIONS)
                or not _keeps_its_own_threads(lib, scipys[0])):
            return None
    except Exception:  # not installed, or not the library it says: scipy's
        return None
    _adopt(path)
    return path, lib


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
    """threadpoolctl controllers of every BLAS library loaded -- scipy's
    included, which is loaded here first: numba loads it only when it first
    compiles a product, after a fit has asked for its limit; ``[]`` without
    threadpoolctl."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401 -- loads scipy's BLAS
        return _blas_controllers()
    except Exception:  # threadpoolctl missing or confused: leave BLAS as it is
        return []


def _adopt(path):
    """Hold the BLAS library at ``path``, loaded just now, as the others: the
    next limit() with none active lists the libraries again, and limits
    active now hold it at once (their counts restored with the others')."""
    global _listed_at
    with _lock:
        _listed_at = None
        if _active and _knobs is not None and _real(path) not in _files:
            new = [c for c in _all_blas() if _same_file(c.filepath, path)]
            for c, (get, set_) in zip(new, _thread_knobs(new)):
                _knobs.append((get, set_))
                _files.append(_real(c.filepath))
                _saved.append(get())
            _apply()


def controllers(backend="cython"):
    """threadpoolctl controllers of the BLAS that ``backend``'s products call
    ("cython", or "numba" -- "scipy" says the same): scipy's wheel's (not
    numpy's), or cython's newer one (:func:`_wheel_openblas`; ``[]`` if
    threadpoolctl cannot see it); all BLAS libraries if scipy's cannot be
    told apart (a system scipy); ``[]`` without threadpoolctl."""
    blas = _all_blas()
    wheel = _wheel_openblas() if backend == "cython" else None
    if wheel is not None:
        return [c for c in blas if _same_file(c.filepath, wheel[0])]
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
                libs = _all_blas()
                _knobs, _files[:] = _thread_knobs(libs), [_real(c.filepath) for c in libs]
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
