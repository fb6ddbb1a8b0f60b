"""Which build of ``fastnn_ext`` the cython backend calls, and its settings.

``fastnn_ext`` holds the same kernels compiled once per x86-64 kernel set
(see setup.py): ``_kernels_avx512`` (x86-64-v4), ``_kernels_avx2``
(x86-64-v3: AVX2 + FMA) and ``_kernels_baseline`` (the build's baseline,
x86-64-v2 unless ``FASTNN_MARCH`` says otherwise), each with a ``_novec``
twin for the SIMD ablation. At import the best set this CPU runs is picked,
as NumPy picks its dispatch targets; ``fastnn_ext._cpu`` answers before any
module that might hold instructions the CPU lacks is loaded.

``FASTNN_ISA`` (``auto``, ``avx512``, ``avx2`` or ``baseline``) forces a
lower set from the start, so one AVX-512 machine can run and test every path;
:func:`settings` does the same for a block of code.

The extension is optional (setup.py builds what the compiler can): with none
built, importing this module raises :class:`BackendUnavailable` with the
build's recorded reason, which the registry reports; a kernel set that
failed to build is simply not among :func:`isas`.
"""

import contextlib
import functools
import importlib
import importlib.util
import os

from .. import BackendUnavailable, _blas


def _build_status():
    """setup.py's record of what it built (``fastnn_ext.build_status()``), or None."""
    try:
        from fastnn_ext import build_status
    except ImportError:  # no fastnn_ext at all, or one older than the record
        return None
    return build_status()


try:
    from fastnn_ext import _cpu
except ImportError as exc:
    _why = (_build_status() or {}).get("extension")
    if isinstance(_why, str):  # the build said why: that is the reason, not the ImportError
        raise BackendUnavailable(f"not built: {_why}") from exc
    if _why is True:
        raise BackendUnavailable(f"fastnn_ext was built but does not import "
                                 f"({type(exc).__name__}: {exc})") from exc
    raise BackendUnavailable(f"fastnn_ext is not built ({type(exc).__name__}: {exc}); "
                             f"reinstall fastnn with a C compiler to build it") from exc

__all__ = ["ISAS", "isas", "built", "module", "settings", "current", "DEFAULT_GEMM",
           "own_gemm_min_macs"]

#: The kernel sets, best first.
ISAS = ("avx512", "avx2", "baseline")
VARIANTS = ("vec", "novec")
ONEPASS_CHOICES = ("auto", True, False)

#: Where GEMM-shaped products go by default, per kernel set: "auto" is
#: fastnn's own GEMM for skinny products (a side below 64; under OpenBLAS's
#: small-matrix kernels only from SMALL_BLAS_MACS up, below) and OpenBLAS
#: (fastnn.backends._blas: scipy's, or a newer one) for the rest, as measured
#: on the nets' shapes (_products.pxi, README "Performance"); the baseline and
#: novec builds have no own GEMM.
DEFAULT_GEMM = {"avx512": "auto", "avx2": "auto", "baseline": "blas"}
GEMMS = ("auto", "own", "blas")

#: OpenBLAS kernel sets with small-matrix GEMM kernels (its SMALL_MATRIX_OPT:
#: SkylakeX and the cores that run SkylakeX's kernels). With one of them,
#: "auto" sends skinny products of fewer than SMALL_BLAS_MACS multiply-adds to
#: BLAS: on an AMD EPYC Zen 4, one thread, OpenBLAS 0.3.30 ran the 100-128-64-5
#: net's output layer (5 x 200 x 64 and its dW), digits' (10 x 200 x 64) and
#: L-BFGS's blocks (5 x 2632 x 64) 1.3-4.6x faster than the own GEMM, and
#: products of 2-6 million multiply-adds mixed (0.92-1.61 of BLAS's time),
#: while the deep net's (20 x 209 x 12288, 7 x 209 x 12288 and their dW) mostly
#: stayed faster on the own GEMM (0.52-0.83 of BLAS's time; 1.14 for one). Under
#: OpenBLAS's Haswell kernels (the AVX2 path) the own GEMM was ahead or level
#: at all of those shapes but one (README, "Own GEMM versus OpenBLAS"), so
#: other kernel sets keep it for every skinny product.
BLAS_SMALL_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")  # compared lowercased
SMALL_BLAS_MACS = 1 << 23


def _built(isa):
    # setup.py keeps or drops a kernel set with its novec twin.
    return all(importlib.util.find_spec(f"fastnn_ext._kernels_{isa}{suffix}") is not None
               for suffix in ("", "_novec"))


def built():
    """``{isa: True | "why it was not built"}`` for every kernel set, best first."""
    recorded = (_build_status() or {}).get("kernel_sets", {})

    def why(isa):
        reason = recorded.get(isa)
        return reason if isinstance(reason, str) else "not built"

    return {isa: True if _built(isa) else why(isa) for isa in ISAS}


def isas():
    """The kernel sets built here that this CPU runs, best first."""
    return [isa for isa in ISAS if _built(isa) and _cpu.supports(isa)]


def _check_isa(isa):
    if isa not in ISAS:
        raise ValueError(f"isa must be one of {list(ISAS)}, got {isa!r}")
    if not _built(isa):
        raise ValueError(f"isa={isa!r}: fastnn_ext has no {isa} kernels here "
                         f"({built()[isa]}); available here: {isas()}")
    if not _cpu.supports(isa):
        raise ValueError(f"isa={isa!r}: this CPU cannot run it (needs "
                         f"{_cpu.LEVELS[isa]}); available here: {isas()}")
    return isa


def _isa_from_env():
    wanted = os.environ.get("FASTNN_ISA", "auto").strip().lower() or "auto"
    if wanted == "auto":
        if not isas():
            raise ImportError("fastnn_ext has no kernel set this CPU runs "
                              f"(built here: {[i for i in ISAS if _built(i)]}; {built()})")
        return isas()[0]
    try:
        return _check_isa(wanted)
    except ValueError as exc:
        raise ImportError(f"FASTNN_ISA={wanted!r}: {exc}") from None


_modules = {}


def module(isa, variant="vec"):
    """The ``fastnn_ext`` module of kernel set ``isa`` and ``variant``."""
    key = (isa, variant)
    if key not in _modules:
        _check_isa(isa)
        name = f"fastnn_ext._kernels_{isa}" + ("_novec" if variant == "novec" else "")
        ext = importlib.import_module(name)
        ext._use_blas(*_blas.cython_pointers())  # a newer OpenBLAS than scipy's, if installed
        _modules[key] = ext
    return _modules[key]


class _Settings:
    """What the cython backend's next calls run on (process-wide)."""

    def __init__(self):
        self.isa = _isa_from_env()
        self.variant = "vec"
        self.gemm = None            # None: DEFAULT_GEMM[isa]
        self.onepass = "auto"
        self.onepass_block_bytes = 1 << 20


_state = _Settings()
# Import the chosen module now: a broken build fails at import, where the
# registry reports it, not in the middle of a fit.
module(_state.isa)


def current():
    """The settings in force: ``{"isa", "variant", "gemm", "onepass",
    "onepass_block_bytes"}`` (``gemm`` resolved to ``"own"`` or ``"blas"``)."""
    return {"isa": _state.isa, "variant": _state.variant, "gemm": _gemm_in_force(),
            "onepass": _state.onepass, "onepass_block_bytes": _state.onepass_block_bytes}


def _gemm_in_force():
    ext = module(_state.isa, _state.variant)
    want = _state.gemm or DEFAULT_GEMM[_state.isa]
    return want if ext.HAVE_OWN_GEMM else "blas"


def own_gemm_min_macs(architecture):
    """The auto route's floor under BLAS kernel set ``architecture``: skinny
    products of fewer multiply-adds go to BLAS (0: none)."""
    return SMALL_BLAS_MACS if (architecture or "").lower() in BLAS_SMALL_KERNELS else 0


@functools.cache
def _own_gemm_floor():
    """The floor for this process's BLAS, whose kernel set is fixed when it
    loads (without threadpoolctl, which fastnn requires: 0)."""
    return own_gemm_min_macs(_blas.architecture())


def active():
    """The module the next call runs, with its GEMM routed as the settings say."""
    ext = module(_state.isa, _state.variant)
    ext._gemm_route(_gemm_in_force())
    ext._own_gemm_min_macs(_own_gemm_floor())
    return ext


@contextlib.contextmanager
def settings(*, isa=None, variant=None, gemm=None, onepass=None, onepass_block_bytes=None):
    """Run the cython backend's calls inside the block on another path.

    Parameters
    ----------
    isa : {"avx512", "avx2", "baseline"}, optional
        The kernel set (one this CPU runs: :func:`isas`).
    variant : {"vec", "novec"}, optional
        ``"novec"``: the same kernels with auto-vectorization off, scalar libm
        and BLAS products (the SIMD ablation).
    gemm : {"auto", "own", "blas"}, optional
        Where GEMM-shaped products go: ``"auto"`` (the default where there is
        an own GEMM) fastnn's GEMM for skinny products and BLAS for wide ones
        (and for small skinny ones under OpenBLAS's SkylakeX kernels:
        :func:`own_gemm_min_macs`),
        ``"own"`` fastnn's GEMM for all, ``"blas"`` OpenBLAS for all (the one
        ``info()["blas"]`` names).
        ``"auto"`` and ``"own"`` need a kernel set with fastnn's GEMM (avx2,
        avx512) and the vec variant.
    onepass : {"auto", True, False}, optional
        Layer 1 in one pass over X per iteration when ``gram`` is not used.
    onepass_block_bytes : int, optional
        Bytes of X per cache block in one-pass mode.

    The settings are process-wide (like NumPy's ``errstate`` they are meant
    for a block of one thread's code) and restored when the block exits.
    """
    new = {}
    if isa is not None:
        new["isa"] = _check_isa(isa)
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
        new["variant"] = variant
    if gemm is not None:
        if gemm not in GEMMS:
            raise ValueError(f"gemm must be one of {list(GEMMS)}, got {gemm!r}")
        new["gemm"] = gemm
    if onepass is not None:
        if not any(onepass is c or onepass == c for c in ONEPASS_CHOICES):
            raise ValueError(f"onepass must be 'auto', True or False, got {onepass!r}")
        new["onepass"] = onepass
    if onepass_block_bytes is not None:
        if not isinstance(onepass_block_bytes, int) or onepass_block_bytes < 1:
            raise ValueError(f"onepass_block_bytes must be a positive int, "
                             f"got {onepass_block_bytes!r}")
        new["onepass_block_bytes"] = onepass_block_bytes
    if new.get("gemm") in ("own", "auto"):
        ext = module(new.get("isa", _state.isa), new.get("variant", _state.variant))
        if not ext.HAVE_OWN_GEMM:
            raise ValueError(f"gemm={new['gemm']!r}: the {ext.ISA} {ext.VARIANT} kernels have no own "
                             f"GEMM (only the vectorized avx2 and avx512 builds do)")
    saved = vars(_state).copy()
    vars(_state).update(new)
    try:
        yield
    finally:
        vars(_state).update(saved)
