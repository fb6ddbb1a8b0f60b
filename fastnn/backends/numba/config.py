"""Every Numba setting the ``numba`` backend uses, in one place.

FASTMATH
    LLVM fast-math flags for the kernels. Deliberately *not* ``True``: the
    ``nnan``/``ninf`` flags would let LLVM assume no NaN or inf ever appears,
    which breaks sigmoid at +-1000 (exp overflows to inf by design) and the
    Network's early stop on a non-finite cost. ``reassoc`` lets LLVM split a
    sum over examples into SIMD partial sums (the reduction order is still fixed
    by the compiled code, so results stay bitwise reproducible); ``contract``
    allows FMA; ``arcp``/``nsz`` are harmless here.
FASTMATH_EXACT
    For the range-reduced polynomial exp: only ``contract``. ``reassoc`` could
    re-associate the Cody-Waite reduction ``(x - n ln2_hi) - n ln2_lo`` and lose
    the digits it exists to keep.
CACHE
    ``cache=True`` writes compiled machine code under ``NUMBA_CACHE_DIR`` when
    that is set and writable, else next to the package (``__pycache__``), else
    in a per-user cache directory -- Numba's own order of fallbacks. If none of
    them is writable Numba would raise at import, so :func:`cache_usable`
    probes the same locations first and caching is switched off instead (the
    kernels then compile on each run). ``FASTNN_NUMBA_CACHE=0`` switches it
    off explicitly. A cached kernel is valid for the package's sources as a
    whole, not its own file alone (:func:`_install_package_locator`).
PARALLEL
    Only explicit ``prange`` loops become parallel regions; NumPy calls and
    array expressions stay serial so no hidden thread launches appear.
ISA
    The kernel set LLVM compiles for: ``"avx512"``, ``"avx2"`` (AVX2 + FMA) or
    ``"baseline"`` (x86-64-v2, SSE4.2). By default Numba targets the host CPU
    with all its features. ``FASTNN_ISA`` (``auto`` | ``avx512`` | ``avx2`` |
    ``baseline``, read at import) can only lower that: it sets Numba's target
    CPU and feature string (``numba.config.CPU_NAME``/``CPU_FEATURES``, what
    ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` set) before anything is compiled.
    Numba has one code generator per process, so the setting applies to every
    ``@njit`` function in it; Numba's on-disk cache is keyed by CPU name and
    features, so each path caches its own machine code. Asking for more than
    the CPU has, an unknown value, or a Numba that compiled code before this
    module was imported, makes :func:`check_isa` (called by every kernel entry)
    raise ``RuntimeError``.
"""

import functools
import glob
import hashlib
import logging
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_KERNELS_FILE = os.path.join(_HERE, "layers.py")


def cache_usable(py_file=_KERNELS_FILE):
    """Whether Numba can find a writable cache directory for ``py_file``.

    Walks Numba's own cache locators exactly as ``cache=True`` will, so a
    read-only install without a usable ``NUMBA_CACHE_DIR`` or user cache
    disables caching rather than failing to import.
    """
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        locator_classes = impl._locator_classes
    except (ImportError, AttributeError):  # Numba internals moved: plain check
        return os.access(os.path.dirname(py_file), os.W_OK)
    for locator_class in locator_classes:
        try:
            locator = locator_class.from_function(cache_usable, py_file)
            if locator is None:
                continue
            locator.ensure_cache_path()
        except OSError:
            continue
        return True
    return False


def _sources_digest(paths):
    """A digest of the contents of ``paths`` (in order) and Numba's version."""
    import numba

    digest = hashlib.sha256(numba.__version__.encode())
    for path in paths:
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


#: What the kernels freeze at compile time from outside the package: the
#: activation and loss codes, leaky ReLU's slope, the dropout hash's constants.
_FROZEN_FROM = ("activations.py", "losses.py", "regularization.py")


@functools.cache
def package_stamp():
    """What a cached kernel of this package is valid for: a digest of every source
    file of the package and of the modules whose constants it freezes (see
    :func:`_install_package_locator`); None where they cannot be read (a zip)."""
    files = sorted(glob.glob(os.path.join(_HERE, "*.py")))
    fastnn_dir = os.path.dirname(os.path.dirname(_HERE))
    files += [os.path.join(fastnn_dir, name) for name in _FROZEN_FROM]
    try:
        return _sources_digest(files) if len(files) > len(_FROZEN_FROM) else None
    except OSError:
        return None


def _install_package_locator():
    """Key the on-disk cache of this package's kernels on :func:`package_stamp`.

    Numba checks a cached function against its own file's time stamp only, but
    a cached kernel carries the machine code of every kernel it calls or
    inlines from other files (second_room's epochs holds engine_room's
    gather_rows, every kernel holds layers' g and g'): after a change to
    one file alone -- a ``git pull``, an edited checkout -- those callers ran
    the old code of the changed one (seen: a build whose gather asked for its
    rows ahead ran the cached gather without). This locator, put first in
    Numba's list for this package's files only, is Numba's own locator for the
    file with the whole package's digest beside its own stamp: a change to any
    file of the package (or to the constants it freezes) recompiles every
    kernel of it. Where Numba's internals
    differ (``CacheImpl`` and its ``_locator_classes``), nothing changes.
    Called at import, before any kernel is decorated (the locator is chosen
    then)."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        chain = impl._locator_classes
        base = caching._CacheLocator
    except (ImportError, AttributeError):
        return
    if any(getattr(c, "_fastnn", False) for c in chain):
        return

    class PackageLocator(base):
        _fastnn = True

        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):  # what Numba reads off its own (_py_file, ...)
            if name == "_inner":
                raise AttributeError(name)
            return getattr(self._inner, name)

        def ensure_cache_path(self):
            return self._inner.ensure_cache_path()

        def get_cache_path(self):
            return self._inner.get_cache_path()

        def get_source_stamp(self):  # the package's digest, and Numba's own stamp
            return (package_stamp(), self._inner.get_source_stamp())

        def get_disambiguator(self):
            return self._inner.get_disambiguator()

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _HERE:
                return None
            for other in chain:
                if other is not cls:
                    inner = other.from_function(py_func, py_file)
                    if inner is not None:
                        return cls(inner)
            return None

    chain.insert(0, PackageLocator)


FASTMATH = frozenset({"contract", "reassoc", "arcp", "nsz"})
FASTMATH_EXACT = frozenset({"contract"})
CACHE = os.environ.get("FASTNN_NUMBA_CACHE", "1") != "0" and cache_usable()
if CACHE:
    _install_package_locator()
if not CACHE and os.environ.get("FASTNN_NUMBA_CACHE", "1") != "0":
    logging.getLogger("fastnn").warning(
        "numba: no writable cache directory (read-only install? set NUMBA_CACHE_DIR); "
        "kernels will be compiled on every run")
PARALLEL = {
    "comprehension": False,
    "prange": True,
    "setitem": False,
    "reduction": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}

#: Kernel options: serial code (math helpers, per-layer kernels).
SERIAL_OPTS = dict(nogil=True, cache=CACHE, fastmath=set(FASTMATH), error_model="numpy")
#: Options for the exp/tanh/sigmoid elementwise helpers.
EXACT_OPTS = dict(nogil=True, cache=CACHE, fastmath=set(FASTMATH_EXACT), error_model="numpy")
#: Options for the kernels with a ``prange`` (the threaded first-layer pass).
PARALLEL_OPTS = dict(SERIAL_OPTS, parallel=PARALLEL)
#: Kernels a training loop calls at one place (the passes that glue the page's
#: kernels into an iteration: forward_layers, backward_update, linear_forward,
#: dZ_prev, output_dZ...) and the page's one-line helpers (g, g', views):
#: Numba inlines their IR into the caller, so they are not compiled on their
#: own and then again, by LLVM, inside every caller -- the tree of small
#: functions that made a first fit cost half a minute. Kernels with many call
#: sites or heavy loops (activation_forward, softmax, row_product, the tiles)
#: stay functions: inlining copies of them costs LLVM more than it saves.
#: Same fastmath flags as SERIAL_OPTS (the exact math keeps its own:
#: EXACT_OPTS kernels are never inlined into others). Called from Python,
#: an inlined kernel compiles as usual.
INLINE_OPTS = dict(SERIAL_OPTS, inline="always")
#: The exact math's own helpers, inlined into the exact math only.
EXACT_INLINE_OPTS = dict(EXACT_OPTS, inline="always")

#: A layer whose W X product has at least this many multiply-adds goes through
#: BLAS (``np.dot`` inside njit calls SciPy's BLAS directly, ~0.05-0.1 us per
#: call); below it hand loops win. Measured on the 2-core AMD EPYC (Zen 4,
#: AVX-512), loops vs BLAS, us per product (forward / W^T dZ / dZ A^T):
#: 1x4x400 (1600 MACs) 0.14/0.25/0.17 vs 0.23/0.21/0.19; 4x2x400 (3200)
#: 0.40/0.27/0.51 vs 0.26/0.20/0.21; 16x16x32 1.6/1.7/0.6 vs 0.4/0.4/0.5;
#: 64x64x32 22/28/11 vs 4.6/4.7/6.8; 64x64x1347 530 vs 165 (forward). The loops
#: pay a fixed cost per 4-row sweep, so BLAS wins from a few thousand MACs on:
#: the mini-batch products (32-column) live there.
BLAS_MIN_MACS = 2048
#: How many examples ahead of the one it copies the mini-batch gather asks for
#: rows (engine_room.gather_rows), as the cython gather does. On the Zen 4, the
#: gathers of an epoch at 100 x 45 000 (X 18 MB in float32): 2.3 ms 32 ahead,
#: 2.4 16 ahead, 6-12 with no prefetch (float64: 5.6 and 12.6; by columns of
#: X (n, m), before the rows, 32.6). Adam at B = 200 on 100-128-64-5, one
#: thread: float32 73-75 -> 66-67 ms an epoch, float64 128 -> 119.5.
GATHER_AHEAD = 32
#: A first layer with at most this many units and a BLAS-sized input uses the
#: fused one-pass-over-X kernel instead of two BLAS calls.
FUSED_MAX_UNITS = 32
#: ... and at least this many inputs: with fewer than one 4-row tile of X the
#: pass saves nothing (planar 2-4-1, 2-core EPYC: 14 us per iteration through
#: the page's kernels vs 15.5 fused at m = 400, 290 vs 300-350 at m = 10 000).
FUSED_MIN_INPUTS = 4


# ---------------------------------------------------------------- the ISA path

ISA_CHOICES = ("auto", "avx512", "avx2", "baseline")
_RANK = {"baseline": 0, "avx2": 1, "avx512": 2}
#: What x86-64-v2 has beyond SSE2 (the "baseline" path's CPU, named for LLVM).
BASELINE_CPU = "x86-64-v2"


def isa_of(features):
    """The kernel set an LLVM feature string (``"+avx2,-avx512f,..."``) allows."""
    on = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in on:
        return "avx512"
    if {"avx2", "fma"} <= on:
        return "avx2"
    return "baseline"


def _without_avx512(features):
    """``features`` with every AVX-512 (and AVX10/AMX, which imply it) flag off."""
    out = []
    for f in features.split(","):
        if f[1:].startswith(("avx512", "avx10", "amx")):
            f = "-" + f[1:]
        out.append(f)
    return ",".join(out)


def target():
    """``(cpu_name, features)`` Numba's code generator uses (or will use)."""
    import llvmlite.binding as ll
    import numba

    try:
        from numba.core.registry import cpu_target

        codegen = cpu_target.target_context.codegen()
        _, name, features = codegen.magic_tuple()
        return name, features
    except Exception:  # internals moved: what numba.config asks for
        name = numba.config.CPU_NAME or ll.get_host_cpu_name()
        features = numba.config.CPU_FEATURES
        if features is None:
            features = ll.get_host_cpu_features().flatten()
        return name, features


def _apply_isa(requested):
    """Point Numba at the ``requested`` path; the reason it cannot, or None."""
    import llvmlite.binding as ll
    import numba

    if requested not in ISA_CHOICES:
        return f"FASTNN_ISA={requested!r}: expected one of {', '.join(ISA_CHOICES)}"
    if requested == "auto":
        return None
    host_name, host_features = ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten()
    host_isa = isa_of(host_features)
    if _RANK[requested] > _RANK[host_isa]:
        return (f"FASTNN_ISA={requested!r}, but this CPU ({host_name}) supports at most "
                f"{host_isa!r}; FASTNN_ISA can only lower the path")
    from numba.core.registry import cpu_target

    if "_toplevel_target_context" in vars(cpu_target):
        return (f"FASTNN_ISA={requested!r} cannot apply: Numba compiled code before "
                "fastnn.backends.numba was imported (set NUMBA_CPU_NAME/NUMBA_CPU_FEATURES "
                "instead, or import fastnn first)")
    if requested == "baseline":
        numba.config.CPU_NAME, numba.config.CPU_FEATURES = BASELINE_CPU, ""
    elif requested == "avx2" and host_isa == "avx512":
        numba.config.CPU_NAME = host_name  # keeps the host's tuning, loses its AVX-512
        numba.config.CPU_FEATURES = _without_avx512(host_features)
    return None


ISA_REQUESTED = os.environ.get("FASTNN_ISA", "auto").strip().lower() or "auto"
ISA_ERROR = _apply_isa(ISA_REQUESTED)


def check_isa():
    """Raise ``RuntimeError`` if ``FASTNN_ISA`` asked for what cannot run here."""
    if ISA_ERROR is not None:
        raise RuntimeError(ISA_ERROR)
