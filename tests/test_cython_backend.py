"""What only the Cython backend has: its two builds, SIMD in the binary, the
recorded compile flags, threads, and the Gram path for a huge first layer.

Generic equivalence with the other backends is in test_equivalence.py. This
module does not skip when fastnn_ext is unbuilt: it fails, so CI cannot pass
without the extension.
"""

import pathlib
import shutil

import numpy as np
import pytest

from fastnn.backends import cython as cb
from fastnn.backends import numpy as nb

ROOT = pathlib.Path(__file__).resolve().parents[1]
RTOL = 1e-9


def _problem(dims, m, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (rng.random((dims[-1], m)) < 0.5).astype(dtype)
    Ws = [(rng.standard_normal((dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])).astype(dtype)
          for l in range(1, len(dims))]
    bs = [(0.1 * rng.standard_normal((dims[l], 1))).astype(dtype) for l in range(1, len(dims))]
    return X, Y, Ws, bs


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _train(module, dims, m, acts, loss="cross_entropy", iters=1000, dtype=np.float64,
           lr=0.5, **kw):
    X, Y, Ws, bs = _problem(dims, m, dtype)
    costs = module.train(Ws, bs, acts, loss, X, Y, lr, iters, 100, **kw)
    return np.array([c for _, c in costs]), Ws + bs


PLANAR = ([2, 4, 1], 400, ["tanh", "sigmoid"])
DEEP = ([20, 7, 5, 1], 200, ["relu", "relu", "sigmoid"])


@pytest.fixture
def variant():
    """Restore the vec build after a test that switches."""
    yield
    cb.use_variant("vec")


@pytest.fixture
def blas_products():
    """Restore the default (own GEMM where available) after a test that switches."""
    yield
    cb.use_gemm("own" if cb.gemm_available() else "blas")


@pytest.fixture
def gram():
    block = cb.ONEPASS_BLOCK_BYTES
    yield
    cb.ONEPASS = "auto"
    cb.ONEPASS_BLOCK_BYTES = block


# -- the binary -------------------------------------------------------------

@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: no SIMD by design")
def test_vec_build_calls_libmvec_and_uses_packed_simd():
    ev = cb.simd_evidence()
    vec, novec = ev["vec"], ev["novec"]
    assert vec["functions"] > 0, "hot kernel symbols not found in the disassembly"
    calls = vec["libmvec_calls"]
    for fn in ("exp", "tanh", "expf", "tanhf"):
        assert any(s.endswith("v_" + fn) for s in calls), f"no libmvec {fn} in {sorted(calls)}"
    assert vec["packed_ymm"] + vec["packed_zmm"] > 0
    act64 = ev["vec _bias_act float64"]["libmvec_calls"]
    assert any("v_exp" in s for s in act64) and any("v_tanh" in s for s in act64)
    assert ev["vec _times_derivative float64"]["packed"] > 0
    # The ablation build really is scalar: no libmvec, far fewer packed ops.
    assert novec["libmvec_calls"] == {}
    assert novec["packed"] * 5 < vec["packed"]


def test_compile_flags_recorded():
    info = cb.info()
    flags, novec_flags = info["compile_flags"], info["compile_flags_novec"]
    assert flags and flags != "unknown"
    if "-O0" not in flags:  # not a FASTNN_DEBUG_BUILD (-O0 -g for both builds)
        assert "-fno-tree-vectorize" in novec_flags and "-fno-tree-vectorize" not in flags
        assert "-O3" in flags and "-fno-math-errno" in flags
        assert "-ffast-math" not in flags  # sigmoid(+-1000) needs inf arithmetic
    assert info["openmp"] is ("-fopenmp" in flags)
    assert "cython_blas" in info["blas"]


def test_debug_build_switch_documented():
    setup = (ROOT / "setup.py").read_text()
    doc = setup.split('"""')[1]
    assert "FASTNN_DEBUG_BUILD=1" in doc and "boundscheck" in doc
    assert 'os.environ.get("FASTNN_DEBUG_BUILD"' in setup


# -- variants and threads -----------------------------------------------------

@pytest.mark.parametrize("case", [PLANAR, DEEP], ids=["planar", "deep"])
def test_novec_build_gives_same_results(case, variant):
    dims, m, acts = case
    c_vec, p_vec = _train(cb, dims, m, acts)
    cb.use_variant("novec")
    assert cb.variant() == "novec"
    c_nov, p_nov = _train(cb, dims, m, acts)
    assert _rel(c_nov, c_vec) < 1e-12
    for a, b in zip(p_nov, p_vec):
        assert _rel(a, b) < 1e-12


def test_unknown_variant_rejected():
    with pytest.raises(ValueError, match="novec"):
        cb.use_variant("avx9000")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_reproducible_for_fixed_threads(threads, dtype):
    dims, m = [30, 16, 8, 1], 1001
    acts = ["tanh", "relu", "sigmoid"]
    c1, p1 = _train(cb, dims, m, acts, iters=50, dtype=dtype, threads=threads)
    c2, p2 = _train(cb, dims, m, acts, iters=50, dtype=dtype, threads=threads)
    assert np.array_equal(c1, c2)
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", [PLANAR, DEEP], ids=["planar", "deep"])
def test_threads_match_numpy(case, threads):
    dims, m, acts = case
    c_ref, p_ref = _train(nb, dims, m, acts)
    c, p = _train(cb, dims, m, acts, threads=threads)
    assert _rel(c, c_ref) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


def test_large_work_blas_path_matches_numpy():
    # Big enough that every product goes through BLAS, split over 2 threads.
    dims, m, acts = [64, 48, 32, 1], 700, ["relu", "tanh", "sigmoid"]
    c_ref, p_ref = _train(nb, dims, m, acts, iters=100, lr=0.1)
    c, p = _train(cb, dims, m, acts, iters=100, lr=0.1, threads=2)
    assert _rel(c, c_ref) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


# -- the Gram path (n_0 > m) ----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_gram_first_layer_matches_numpy(mode, threads, dtype, gram):
    tol = RTOL if dtype == np.float64 else 1e-4
    for dims, acts in (([500, 6, 3, 1], ["relu", "relu", "sigmoid"]), ([500, 1], ["sigmoid"])):
        c_ref, p_ref = _train(nb, dims, 60, acts, iters=300, lr=0.05, dtype=dtype)
        c, p = _train(cb, dims, 60, acts, iters=300, lr=0.05, threads=threads, dtype=dtype,
                      gram=mode)
        assert _rel(c, c_ref) < tol
        for a, b in zip(p, p_ref):
            assert a.dtype == dtype
            assert _rel(a, b) < tol


@pytest.mark.parametrize("block_rows", [64, 10_000])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_first_layer_matches_numpy(threads, dtype, block_rows, gram):
    cb.ONEPASS = True
    # 64 rows: many blocks per thread and a partial last one (900 = 14 * 64 + 4).
    cb.ONEPASS_BLOCK_BYTES = block_rows * 70 * np.dtype(dtype).itemsize
    for dims, acts in (([900, 6, 3, 1], ["relu", "tanh", "sigmoid"]), ([900, 1], ["sigmoid"])):
        c_ref, p_ref = _train(nb, dims, 70, acts, iters=300, lr=0.05, dtype=dtype)
        c, p = _train(cb, dims, 70, acts, iters=300, lr=0.05, threads=threads, dtype=dtype,
                      gram=False)
        tol = RTOL if dtype == np.float64 else 1e-4
        assert _rel(c, c_ref) < tol
        for a, b in zip(p, p_ref):
            assert _rel(a, b) < tol


@pytest.mark.parametrize("mode", ["gram", "onepass"])
def test_layer1_modes_are_bitwise_reproducible(mode, gram):
    cb.ONEPASS = mode == "onepass"
    runs = [_train(cb, [700, 5, 1], 90, ["relu", "sigmoid"], iters=30, threads=2,
                   gram=mode == "gram")
            for _ in range(2)]
    for a, b in zip([runs[0][0]] + runs[0][1], [runs[1][0]] + runs[1][1]):
        assert np.array_equal(a, b)


def test_gram_early_stop_materializes_weights(gram):
    dims, acts = [300, 4, 1], ["tanh", "sigmoid"]
    X, Y, Ws, bs = _problem(dims, 40)
    Wr, br = [w.copy() for w in Ws], [b.copy() for b in bs]
    stop = lambda i, J: i < 200  # noqa: E731
    costs = cb.train(Ws, bs, acts, "cross_entropy", X, Y, 0.1, 1000, 100, on_cost=stop,
                     gram=True)
    ref = nb.train(Wr, br, acts, "cross_entropy", X, Y, 0.1, 1000, 100, on_cost=stop)
    assert [i for i, _ in costs] == [i for i, _ in ref] == [0, 100, 200]
    for a, b in zip(Ws + bs, Wr + br):
        assert _rel(a, b) < RTOL


# -- edge cases -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_nan(dtype):
    X = np.array([[1000.0, -1000.0, 0.0]], dtype)
    W, b = np.ones((1, 1), dtype), np.zeros((1, 1), dtype)
    AL, caches = cb.forward([W], [b], ["sigmoid"], X)
    assert AL.tolist() == [[1.0, 0.0, 0.5]]
    Y = np.array([[1.0, 0.0, 1.0]], dtype)
    costs = cb.train([W], [b], ["sigmoid"], "cross_entropy", X, Y, 0.1, 1, 1)
    assert np.isfinite(costs[0][1])


@pytest.mark.parametrize("dims,m", [([1, 1], 1), ([3, 1], 1), ([1, 2, 1], 5), ([4, 3, 2], 1)])
def test_tiny_shapes(dims, m):
    acts = ["tanh"] * (len(dims) - 2) + ["sigmoid"]
    for threads in (None, 2):
        c_ref, p_ref = _train(nb, dims, m, acts, iters=20)
        c, p = _train(cb, dims, m, acts, iters=20, threads=threads)
        assert _rel(c, c_ref) < RTOL
        for a, b in zip(p, p_ref):
            assert _rel(a, b) < RTOL


def test_float32_cost_close_to_float64():
    dims, m, acts = PLANAR
    c64, _ = _train(cb, dims, m, acts)
    c32, p32 = _train(cb, dims, m, acts, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in p32)
    assert _rel(c32, c64) < 1e-4


def test_backward_matches_numpy_with_mse_on_every_activation():
    for act in ("sigmoid", "tanh", "relu", "leaky_relu", "identity"):
        X, Y, Ws, bs = _problem([5, 4, 3, 2], 37)
        acts = [act] * 3
        AL, caches = cb.forward(Ws, bs, acts, X)
        AL_ref, caches_ref = nb.forward(Ws, bs, acts, X)
        assert _rel(AL, AL_ref) < 1e-13
        grads = cb.backward(AL, Y, caches, acts, "mse")
        grads_ref = nb.backward(AL_ref, Y, caches_ref, acts, "mse")
        for a, b in zip(grads[0] + grads[1], grads_ref[0] + grads_ref[1]):
            assert _rel(a, b) < 1e-12, act


def test_auto_threads_one_for_small_work_all_cores_for_large():
    small = [np.zeros((4, 2)), np.zeros((1, 4))]
    large = [np.zeros((256, 784)), np.zeros((128, 256)), np.zeros((1, 128))]
    assert cb._threads(None, small, 400) == 1
    expected = cb._n_cores() if cb.info()["openmp"] else 1
    assert cb._threads(None, large, 10_000) == expected
    # Explicit counts are honoured up to the cores (each thread owns a private
    # copy of every dW and db) and never exceed the examples.
    cores = cb._n_cores() if cb.info()["openmp"] else 1
    assert cb._threads(8, small, 3) == min(3, cores)
    assert cb._threads(64, large, 10_000) == cores
    assert cb._threads(2, small, 1) == 1
    # Gram mode counts the work it really does (n_1 m^2), not n_1 n_0 m.
    deep = [np.zeros((20, 12288)), np.zeros((7, 20)), np.zeros((5, 7)), np.zeros((1, 5))]
    assert cb._work(deep, 209, gram=True) < cb._work(deep, 209) / 20


# -- fastnn's own GEMM (fastnn_ext/_gemm.h) ------------------------------------

ext = cb._vec

#: Shapes around the blocking (MR = 8 rows, NR = 24/48 columns, KC = 384,
#: MC = 96, NC = 1024): exact tiles, one past, one short, and several blocks.
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


@pytest.mark.skipif(not cb.gemm_available(), reason="this build has no own GEMM (not AVX-512)")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("la,lb", [("C", "C"), ("C", "T"), ("T", "C"), ("T", "T"), ("V", "V")])
@pytest.mark.parametrize("own", [True, False], ids=["own", "blas"])
def test_gemm_matches_float64_reference(shape, la, lb, dtype, own, blas_products):
    M, N, K = shape
    rng = np.random.default_rng(M * N + K)
    A64, B64 = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C64 = rng.standard_normal((M, N))
    A, B = _layout(A64.astype(dtype), la), _layout(B64.astype(dtype), lb)
    cb.use_gemm("own" if own else "blas")
    for alpha, beta in [(1.0, 0.0), (-0.5, 0.25), (2.0, 1.0)]:
        C = C64.astype(dtype)
        ext._gemm_check(A, B, C, alpha, beta)
        ref = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * C64.astype(dtype)
        # Error bound of a length-K dot product in unit roundoff u, relative to the
        # magnitudes summed (|A| |B|), not to the (possibly cancelled) result.
        u = np.finfo(dtype).eps / 2
        scale = abs(alpha) * (np.abs(A64) @ np.abs(B64)) + abs(beta) * np.abs(C64)
        assert np.all(np.abs(C - ref) <= 2 * (K + 2) * u * scale + 1e-300), (alpha, beta)


@pytest.mark.skipif(not cb.gemm_available(), reason="this build has no own GEMM (not AVX-512)")
def test_gemm_beta_zero_never_reads_c():
    # An uninitialized output buffer may hold NaN: beta = 0 must overwrite, not scale it.
    A = np.ones((20, 30))
    B = np.ones((30, 50))
    C = np.full((20, 50), np.nan)
    ext._gemm_check(A, B, C, 1.0, 0.0)
    assert np.array_equal(C, np.full((20, 50), 30.0))
    C[:] = np.nan
    ext._gemm_check(A[:, :0], B[:0], C, 1.0, 0.0)  # K = 0: alpha A B is the zero matrix
    assert np.array_equal(C, np.zeros((20, 50)))


@pytest.mark.parametrize("own", [True, False], ids=["own", "blas"])
def test_gemm_one_row_operands_with_unit_strides(own, blas_products):
    # A (1, 5) and B (5, 1) views whose strides are both one element: BLAS must
    # be given the reading whose leading dimension it accepts.
    if own and not cb.gemm_available():
        pytest.skip("this build has no own GEMM (not AVX-512)")
    cb.use_gemm("own" if own else "blas")
    A = np.arange(1.0, 6.0).reshape(5, 1).T
    B = np.arange(1.0, 6.0).reshape(5, 1)
    assert A.strides == (8, 8) and B.strides == (8, 8)
    C = np.full((1, 1), np.nan)
    ext._gemm_check(A, B, C, 1.0, 0.0)
    assert C[0, 0] == 55.0
    row = np.arange(4.0).reshape(4, 1).T  # (1, 4), strides (8, 8)
    C = np.zeros((5, 4))
    ext._gemm_check(np.ones((5, 1)), row, C, 2.0, 0.0)
    assert np.array_equal(C, np.tile(2.0 * np.arange(4.0), (5, 1)))


def test_gemm_check_validates():
    A, B, C = np.ones((4, 3)), np.ones((3, 5)), np.ones((4, 5))
    with pytest.raises(ValueError, match="do not chain"):
        ext._gemm_check(A, np.ones((2, 5)), C, 1.0, 0.0)
    with pytest.raises(TypeError, match="one dtype"):
        ext._gemm_check(A.astype(np.float32), B, C, 1.0, 0.0)
    with pytest.raises(ValueError, match="row- or column-major"):
        ext._gemm_check(np.ones((8, 6))[::2, ::2], B, C, 1.0, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        ext._gemm_check(A, B, np.ones((5, 4)).T, 1.0, 0.0)


@pytest.mark.skipif(not cb.gemm_available(), reason="this build has no own GEMM (not AVX-512)")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_own_gemm_and_blas_train_alike(threads, dtype, blas_products):
    # The wide net's shape in miniature: the hidden layers' products go through
    # _gemm (the 1-row output layer uses gemv and loops either way).
    dims, m, acts = [100, 64, 32, 1], 1500, ["relu", "relu", "sigmoid"]
    tol = 1e-9 if dtype == np.float64 else 1e-4
    cb.use_gemm("own")
    assert cb.gemm() == "own"
    c_own, p_own = _train(cb, dims, m, acts, iters=100, lr=0.1, dtype=dtype, threads=threads)
    cb.use_gemm("blas")
    assert cb.gemm() == "blas" and "BLAS" in cb.info()["gemm"]
    c_blas, p_blas = _train(cb, dims, m, acts, iters=100, lr=0.1, dtype=dtype, threads=threads)
    assert _rel(c_own, c_blas) < tol
    for a, b in zip(p_own, p_blas):
        assert _rel(a, b) < tol


def test_use_gemm_validates(blas_products):
    with pytest.raises(ValueError, match="'own' or 'blas'"):
        cb.use_gemm("mkl")
    cb.use_gemm("blas")
    assert cb.gemm() == "blas"


def test_own_gemm_used_on_avx512_cpus():
    # On an AVX-512 CPU a gcc build has the own GEMM -- for -march=native, and
    # through `#pragma GCC target` for a portable -march -- and uses it by
    # default: CI cannot silently fall back to BLAS.
    import cpuinfo

    if "avx512f" not in set(cpuinfo.get_cpu_info().get("flags", [])):
        pytest.skip("not an AVX-512 CPU")
    assert cb.gemm_available() and cb.gemm() == "own"
    assert cb.info()["gemm"].startswith("own")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif(not cb.gemm_available(), reason="this build has no own GEMM (not AVX-512)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: not unrolled")
def test_gemm_kernel_is_packed_zmm():
    import re
    import subprocess

    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", cb._vec.__file__],
                          capture_output=True, text=True, check=True).stdout
    for prefix, suffix in (("d", "pd"), ("s", "ps")):
        body = re.search(rf"<fastnn_{prefix}gemm_kernel(?:\.\w+)*>:\n(.*?)\n\n", text, re.S)
        assert body, f"fastnn_{prefix}gemm_kernel not found (inlined?)"
        # The k loop: 24 FMAs per step of the 8 x 3-vector tile, all on zmm.
        fmas = re.findall(rf"vfmadd\w*{suffix}\s+.*%zmm", body.group(1))
        assert len(fmas) >= 24, body.group(1)[:2000]
    assert cb.simd_evidence("vec")["vec gemm_kernel float64"]["packed_zmm"] >= 24


def _fit_seeds(seeds, dtype, workers=None):
    """Parameters after a short fit per seed: in this thread (workers=None) or
    in a pool of that many Python threads (GIL released while they train)."""
    import concurrent.futures

    dims, m, acts = [60, 40, 16, 1], 900, ["relu", "tanh", "sigmoid"]

    def fit(seed):
        X, Y, Ws, bs = _problem(dims, m, dtype, seed=seed)
        cb.train(Ws, bs, acts, "cross_entropy", X, Y, 0.1, 30, 30, threads=1)
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
                                                                blas_products):
    # workers=1, one fit at a time off the main thread: threadpoolctl ignores a
    # limit set from any thread but the first that set one, so through it such
    # a fit ran two-thread GEMMs. workers=4, fits at once: each OS thread has
    # its own GEMM packing buffer (freed when it exits), and BLAS stays on one
    # thread until the last of them ends.
    if gemm == "own" and not cb.gemm_available():
        pytest.skip("this build has no own GEMM (not AVX-512)")
    cb.use_gemm(gemm)
    seeds = [1, 2, 3, 4]
    _assert_bitwise(_fit_seeds(seeds, dtype, workers=workers), _fit_seeds(seeds, dtype))
