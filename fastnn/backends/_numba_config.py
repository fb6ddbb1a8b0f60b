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
    ``cache=True`` writes compiled machine code next to the package, or under
    ``NUMBA_CACHE_DIR`` when that is set. Numba itself falls back to a per-user
    cache directory when ``__pycache__`` is not writable (read-only installs);
    set ``FASTNN_NUMBA_CACHE=0`` to switch caching off entirely.
PARALLEL
    Only explicit ``prange`` loops become parallel regions; NumPy calls and
    array expressions stay serial so no hidden thread launches appear.
"""

import os

FASTMATH = frozenset({"contract", "reassoc", "arcp", "nsz"})
FASTMATH_EXACT = frozenset({"contract"})
CACHE = os.environ.get("FASTNN_NUMBA_CACHE", "1") != "0"
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
#: Options for the kernels with a ``prange`` (the training loop).
PARALLEL_OPTS = dict(SERIAL_OPTS, parallel=PARALLEL)

#: A layer whose W X product has at least this many multiply-adds goes through
#: BLAS (``np.dot`` inside njit calls SciPy's BLAS); below it hand loops win
#: because a BLAS call costs about a microsecond of overhead.
BLAS_MIN_MACS = 4_000_000
#: A first layer with at most this many units and a BLAS-sized input uses the
#: fused one-pass-over-X kernel instead of two BLAS calls.
FUSED_MAX_UNITS = 32
#: Work (multiply-adds per iteration in the first layer) above which
#: ``threads=None`` uses every core.
AUTO_THREADS_MIN_MACS = 2_000_000
