"""fastnn's own GEMM (fastnn_ext/_gemm.h), on every kernel set that has one:
an error bound against a float64 reference on edge shapes and operand layouts,
the micro-kernel's SIMD width in the binary, training alike on the own GEMM and
on BLAS, and bitwise-reproducible fits from Python threads."""

import shutil

import numpy as np
import pytest

from fastnn._testing import train
from fastnn.report import simd

from _helpers import require_backend

cb = require_backend("cython")  # skips (or, where required, fails) this module without it

from fastnn.backends.cython import paths  # noqa: E402  (these need the extension)
from fastnn_ext._testing import gemm as gemm_check  # noqa: E402

from test_cython_backend import _problem, _rel, _train  # noqa: E402

#: The kernel sets with an own GEMM; each is forced in turn.
GEMM_ISAS = [isa for isa in cb.ISAS if isa != "baseline"]


@pytest.fixture(params=GEMM_ISAS)
def gemm_isa(request):
    if request.param not in cb.isas():
        pytest.skip(f"this CPU (or build) cannot run the {request.param} kernels; "
                    f"it runs {cb.isas()}")
    with cb.settings(isa=request.param):
        yield request.param


#: Shapes around the blocking (AVX-512: MR = 8 rows, NR = 24/48 columns; AVX2:
#: smaller tiles; KC, MC, NC blocks): exact tiles, one past, one short, and
#: several blocks.
GEMM_SHAPES = [(1, 1, 1), (7, 5, 3), (8, 24, 384), (9, 25, 385), (97, 1025, 770),
               (256, 50, 1000), (3, 2000, 17), (200, 3, 800), (1, 40, 9), (30, 1, 9), (6, 7, 0)]


def _layout(a, how):
    """a's values as C-order ("C"), the transpose of a C-order array ("T"), or a
    view into a wider C-order array ("V": leading dimension > width)."""
    if how == "C":
        return np.ascontiguousarray(a)
    if how == "T":
        return np.ascontiguousarray(a.T).T
    wide = np.zeros((a.shape[0], a.shape[1] + 5), a.dtype)
    wide[:, 2:2 + a.shape[1]] = a
    return wide[:, 2:2 + a.shape[1]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("la,lb", [("C", "C"), ("C", "T"), ("T", "C"), ("T", "T"), ("V", "V")])
@pytest.mark.parametrize("own", [True, False], ids=["own", "blas"])
def test_gemm_matches_float64_reference(shape, la, lb, dtype, own, gemm_isa):
    M, N, K = shape
    rng = np.random.default_rng(M * N + K)
    A64, B64 = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C64 = rng.standard_normal((M, N))
    A, B = _layout(A64.astype(dtype), la), _layout(B64.astype(dtype), lb)
    for alpha, beta in [(1.0, 0.0), (-0.5, 0.25), (2.0, 1.0)]:
        C = C64.astype(dtype)
        with cb.settings(gemm="own" if own else "blas"):
            gemm_check(paths.active(), A, B, C, alpha, beta)
        ref = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * C64.astype(dtype)
        # Error bound of a length-K dot product in unit roundoff u, relative to the
        # magnitudes summed (|A| |B|), not to the (possibly cancelled) result.
        u = np.finfo(dtype).eps / 2
        scale = abs(alpha) * (np.abs(A64) @ np.abs(B64)) + abs(beta) * np.abs(C64)
        assert np.all(np.abs(C - ref) <= 2 * (K + 2) * u * scale + 1e-300), (alpha, beta)


def test_gemm_beta_zero_never_reads_c(gemm_isa):
    # An uninitialized output buffer may hold NaN: beta = 0 must overwrite, not scale it.
    A = np.ones((20, 30))
    B = np.ones((30, 50))
    C = np.full((20, 50), np.nan)
    with cb.settings(gemm="own"):
        ext = paths.active()
        gemm_check(ext, A, B, C, 1.0, 0.0)
    assert np.array_equal(C, np.full((20, 50), 30.0))
    C[:] = np.nan
    gemm_check(ext, A[:, :0], B[:0], C, 1.0, 0.0)  # K = 0: alpha A B is the zero matrix
    assert np.array_equal(C, np.zeros((20, 50)))


@pytest.mark.parametrize("own", [True, False], ids=["own", "blas"])
def test_gemm_one_row_operands_with_unit_strides(own, gemm_isa):
    # A (1, 5) and B (5, 1) views whose strides are both one element: BLAS must
    # be given the reading whose leading dimension it accepts.
    with cb.settings(gemm="own" if own else "blas"):
        ext = paths.active()
        A = np.arange(1.0, 6.0).reshape(5, 1).T
        B = np.arange(1.0, 6.0).reshape(5, 1)
        assert A.strides == (8, 8) and B.strides == (8, 8)
        C = np.full((1, 1), np.nan)
        gemm_check(ext, A, B, C, 1.0, 0.0)
        assert C[0, 0] == 55.0
        row = np.arange(4.0).reshape(4, 1).T  # (1, 4), strides (8, 8)
        C = np.zeros((5, 4))
        gemm_check(ext, np.ones((5, 1)), row, C, 2.0, 0.0)
        assert np.array_equal(C, np.tile(2.0 * np.arange(4.0), (5, 1)))


def test_gemm_check_validates():
    ext = paths.active()
    A, B, C = np.ones((4, 3)), np.ones((3, 5)), np.ones((4, 5))
    with pytest.raises(ValueError, match="do not chain"):
        gemm_check(ext, A, np.ones((2, 5)), C, 1.0, 0.0)
    with pytest.raises(TypeError, match="one dtype"):
        gemm_check(ext, A.astype(np.float32), B, C, 1.0, 0.0)
    with pytest.raises(ValueError, match="row- or column-major"):
        gemm_check(ext, np.ones((8, 6))[::2, ::2], B, C, 1.0, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_check(ext, A, B, np.ones((5, 4)).T, 1.0, 0.0)


def test_test_entry_points_live_outside_the_kernel_modules():
    # The kernel modules carry their gemm as C function pointers only; the
    # validating entry the tests call is fastnn_ext._testing's.
    for isa in cb.isas():
        for variant in ("vec", "novec"):
            ext = cb.module(isa, variant)
            assert not [name for name in dir(ext) if "check" in name or "testing" in name]
            assert sorted(ext.GEMM_CAPSULES) == ["float32", "float64"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_own_gemm_and_blas_train_alike(threads, dtype, gemm_isa):
    # The wide net's shape in miniature: the hidden layers' products go through
    # _gemm (the 1-row output layer uses gemv and loops either way).
    dims, m, acts = [100, 64, 32, 1], 1500, ["relu", "relu", "sigmoid"]
    tol = 1e-9 if dtype == np.float64 else 1e-4
    with cb.settings(gemm="own"):
        assert cb.current()["gemm"] == "own"
        c_own, p_own = _train(cb, dims, m, acts, iters=100, lr=0.1, dtype=dtype, threads=threads)
    with cb.settings(gemm="blas"):
        assert "BLAS" in cb.info()["gemm"]
        c_blas, p_blas = _train(cb, dims, m, acts, iters=100, lr=0.1, dtype=dtype,
                                threads=threads)
    assert _rel(c_own, c_blas) < tol
    for a, b in zip(p_own, p_blas):
        assert _rel(a, b) < tol


def test_own_gemm_is_the_default_for_skinny_products(gemm_isa):
    # CI cannot silently fall back to BLAS on a path that has the own GEMM: by
    # default ("auto") skinny products go to it, wide ones to BLAS.
    assert cb.module(gemm_isa).HAVE_OWN_GEMM
    assert cb.current()["gemm"] == paths.DEFAULT_GEMM[gemm_isa] == "auto"
    assert cb.info()["gemm"].startswith(f"auto: own {gemm_isa}")
    assert paths.active()._gemm_route(None) == "auto"
    with cb.settings(gemm="blas"):
        assert paths.active()._gemm_route(None) == "blas"
    with cb.settings(isa="baseline"):
        assert cb.current()["gemm"] == "blas"


def test_auto_leaves_small_skinny_products_to_blas_with_small_matrix_kernels(gemm_isa):
    """Under OpenBLAS's SkylakeX kernels (small-matrix paths) "auto" sends
    skinny products below own_gemm_min_macs to BLAS; under the others, every
    skinny product to the own GEMM. Told apart by their bits: the two sum a
    K = 3000 product in different blocks (a precondition checked here)."""
    assert paths.own_gemm_min_macs("SkylakeX") == paths.SMALL_BLAS_MACS > 5 * 64 * 3000
    assert paths.own_gemm_min_macs("SKYLAKEX") == paths.own_gemm_min_macs("Cooperlake") > 0
    assert paths.own_gemm_min_macs("Haswell") == paths.own_gemm_min_macs(None) == 0
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((5, 3000)), rng.standard_normal((3000, 64))

    def product(route, floor=None):
        with cb.settings(gemm=route):
            ext = paths.active()
            saved = ext._own_gemm_min_macs(floor)
            try:
                C = np.zeros((5, 64))
                gemm_check(ext, A, B, C, 1.0, 0.0)
                return C
            finally:
                ext._own_gemm_min_macs(saved)

    own, blas = product("own"), product("blas")
    assert not np.array_equal(own, blas) and _rel(own, blas) < 1e-13
    assert np.array_equal(product("auto", 0), own)
    assert np.array_equal(product("auto", paths.SMALL_BLAS_MACS), blas)
    assert np.array_equal(product("auto", 5 * 64 * 3000), own)  # the floor is inclusive
    from fastnn.backends import _blas
    floor = paths._own_gemm_floor()  # read once per process off the BLAS's kernel set
    assert floor == paths.own_gemm_min_macs(_blas.architecture())
    assert paths.active()._own_gemm_min_macs(None) == floor
    assert np.array_equal(product("auto"), own if floor == 0 else blas)
    assert (f"of at least {floor:,} multiply-adds" in cb.info()["gemm"]) == (floor > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_route_trains_like_own_and_blas(dtype, gemm_isa):
    # A skinny layer (20 units: the own GEMM, or BLAS below a small-matrix
    # BLAS's floor) and wide ones (72, 64: BLAS) in one net.
    dims, m, acts = [300, 20, 72, 64, 1], 400, ["relu", "tanh", "relu", "sigmoid"]
    tol = 1e-9 if dtype == np.float64 else 1e-4
    results = {}
    for gemm in ("auto", "own", "blas"):
        with cb.settings(gemm=gemm):
            results[gemm] = _train(cb, dims, m, acts, iters=40, lr=0.1, dtype=dtype, threads=2,
                                   gram=False)
    for other in ("own", "blas"):
        assert _rel(results["auto"][0], results[other][0]) < tol
        for a, b in zip(results["auto"][1], results[other][1]):
            assert _rel(a, b) < tol


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: not unrolled")
def test_gemm_kernel_is_packed_on_its_registers(gemm_isa):
    import re

    reg = {"avx512": "zmm", "avx2": "ymm"}[gemm_isa]
    with cb.settings(gemm="own"):
        ev = simd.evidence(cb)
    for dtype, suffix in (("float64", "pd"), ("float32", "ps")):
        asm = cb.hot_code()[f"gemm_kernel {dtype}"]
        # The k loop's FMAs: one per accumulator register of the tile, all on
        # this path's widest registers (AVX-512: 8 x 3 zmm, AVX2 at least 12 ymm).
        fmas = re.findall(rf"vfmadd\w*{suffix}\s+.*%{reg}", asm)
        assert len(fmas) >= {"zmm": 24, "ymm": 12}[reg], asm[:2000]
        assert ev[f"gemm_kernel {dtype}"]["packed_zmm"] == 0 or reg == "zmm"


def _fit_seeds(seeds, dtype, workers=None):
    """Parameters after a short fit per seed: in this thread (workers=None) or
    in a pool of that many Python threads (GIL released while they train)."""
    import concurrent.futures

    dims, m, acts = [60, 40, 16, 1], 900, ["relu", "tanh", "sigmoid"]

    def fit(seed):
        X, Y, Ws, bs = _problem(dims, m, dtype, seed=seed)
        train(cb, Ws, bs, acts, "cross_entropy", X, Y, 0.1, 30, 30, threads=1)
        return Ws + bs

    if workers is None:
        return [fit(s) for s in seeds]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fit, seeds))


def _assert_bitwise(results, expected):
    for e, g in zip(expected, results):
        for a, b in zip(e, g):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gemm", ["own", "blas"])
@pytest.mark.parametrize("workers", [1, 4], ids=["other-thread", "concurrent"])
def test_fits_in_python_threads_are_bitwise_the_sequential_ones(workers, gemm, dtype,
                                                                gemm_isa):
    # workers=1, one fit at a time off the main thread: threadpoolctl ignores a
    # limit set from any thread but the first that set one, so through it such
    # a fit ran two-thread GEMMs. workers=4, fits at once: each OS thread has
    # its own GEMM packing buffer (freed when it exits), and BLAS stays on one
    # thread until the last of them ends.
    seeds = [1, 2, 3, 4]
    with cb.settings(gemm=gemm):
        _assert_bitwise(_fit_seeds(seeds, dtype, workers=workers), _fit_seeds(seeds, dtype))
