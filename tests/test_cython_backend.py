"""What only the Cython backend has: its kernel sets per ISA (each run here,
forced with ``settings(isa=...)``) and their novec twins, SIMD in the binary,
the recorded compile flags, threads, and the one-pass and Gram paths for a huge
first layer. The own GEMM is in test_cython_gemm.py.

Generic equivalence with the other backends is in test_equivalence.py. Where
fastnn_ext is not built (an install without a C compiler) this module skips
with the build's reason; where the backend is required (under CI) it fails to
collect instead, so CI cannot pass without the extension.
"""

import pathlib
import shutil

import numpy as np
import pytest

from fastnn._testing import network_problem
from fastnn._testing import rel_diff as _rel
from fastnn.backends import loops as lb
from fastnn.backends import numpy as nb
from fastnn.report import simd

from _helpers import require_backend

cb = require_backend("cython")

ROOT = pathlib.Path(__file__).resolve().parents[1]
RTOL = 1e-9


def _problem(dims, m, dtype=np.float64, seed=0):
    Ws, bs, X, Y = network_problem(dims, m, dtype, seed, bias_scale=0.1)
    return X, Y, Ws, bs


def _train(module, dims, m, acts, loss="cross_entropy", iters=1000, dtype=np.float64,
           lr=0.5, **kw):
    X, Y, Ws, bs = _problem(dims, m, dtype)
    costs = module.train(Ws, bs, acts, loss, X, Y, lr, iters, 100, **kw)
    return np.array([c for _, c in costs]), Ws + bs


PLANAR = ([2, 4, 1], 400, ["tanh", "sigmoid"])
DEEP = ([20, 7, 5, 1], 200, ["relu", "relu", "sigmoid"])


@pytest.fixture(params=cb.ISAS)
def isa(request):
    """Every kernel set, run here by forcing it (a lower one than the CPU's best
    is always runnable); a set this CPU lacks is skipped with the reason."""
    if request.param not in cb.isas():
        pytest.skip(f"this CPU (or build) cannot run the {request.param} kernels; "
                    f"it runs {cb.isas()}")
    with cb.settings(isa=request.param):
        yield request.param


# -- the builds and the path picked ---------------------------------------------

def test_best_kernel_set_this_cpu_runs_is_picked():
    from fastnn_ext import _cpu

    info = cb.info()
    runnable = [i for i in cb.ISAS if _cpu.supports(i)]
    assert info["isas"] == [i for i in runnable if i in cb.isas()]
    # FASTNN_ISA (the environment) may lower the default; nothing else does.
    forced = __import__("os").environ.get("FASTNN_ISA", "auto").strip().lower() or "auto"
    assert info["isa"] == (info["isas"][0] if forced == "auto" else forced)
    assert info["march"] == "x86-64-v2" or "FASTNN_MARCH" in __import__("os").environ
    # Every level the CPU has, it has below too (v4 implies v3 implies v2).
    levels = list(info["cpu_levels"].values())
    assert levels == sorted(levels, reverse=True)


def test_the_build_record_says_what_was_built():
    # setup.py writes it (fastnn_ext/_build_status.json); the backend reads its reasons.
    import fastnn_ext

    status = fastnn_ext.build_status()
    assert status is not None, "no build record: rebuild fastnn_ext (pip install -e .)"
    assert status["extension"] is True
    assert cb.built() == {isa: True if status["kernel_sets"][isa] is True
                          else status["kernel_sets"][isa] for isa in cb.ISAS}
    assert set(cb.isas()) <= {isa for isa, ok in cb.built().items() if ok is True}
    assert cb.info()["kernel_sets"] == cb.built()
    assert bool(status["openmp"] is True) == cb.info()["openmp"]


def test_a_kernel_set_the_build_dropped_is_never_picked(monkeypatch):
    # A set that failed to build (say AVX-512 on an old assembler) is absent:
    # the next best is picked, and forcing it names the build's reason.
    from fastnn.backends import _cython_paths as paths

    why = ("failed to build (_kernels_avx512: as failed with exit code 1: Error: no such "
           "instruction: `vpternlogd')")
    real_built, real_status = paths._built, paths._build_status()
    monkeypatch.setattr(paths, "_built", lambda isa: isa != "avx512" and real_built(isa))
    monkeypatch.setattr(paths, "_build_status", lambda: {
        **real_status, "kernel_sets": {**real_status["kernel_sets"], "avx512": why}})
    monkeypatch.delenv("FASTNN_ISA", raising=False)
    assert "avx512" not in cb.isas() and cb.built()["avx512"] == why
    assert paths._isa_from_env() == cb.isas()[0]
    with pytest.raises(ValueError, match=r"isa='avx512': fastnn_ext has no avx512 kernels here "
                                         r"\(failed to build \(_kernels_avx512: as failed"):
        with cb.settings(isa="avx512"):
            pass
    with cb.settings(isa=cb.isas()[0]):
        assert cb.info()["kernel_sets"]["avx512"] == why


def test_every_kernel_set_is_built_for_its_target(isa):
    ext = cb.module(isa)
    assert ext.ISA == isa and cb.info()["isa"] == isa
    march = {"avx512": "x86-64-v4", "avx2": "x86-64-v3"}.get(isa)
    if march:
        assert f"-march={march}" in ext.COMPILE_FLAGS
    assert cb.module(isa, "novec").ISA == isa
    assert ext.HAVE_OWN_GEMM == (isa != "baseline")


def test_settings_validate_and_restore():
    before = cb.current()
    with pytest.raises(ValueError, match="isa must be one of"):
        with cb.settings(isa="avx9000"):
            pass
    with pytest.raises(ValueError, match="variant"):
        with cb.settings(variant="fast"):
            pass
    with pytest.raises(ValueError, match="gemm must be one of"):
        with cb.settings(gemm="mkl"):
            pass
    with pytest.raises(ValueError, match="no own GEMM"):
        with cb.settings(variant="novec", gemm="own"):
            pass
    with cb.settings(variant="novec", onepass=False):
        assert cb.current()["variant"] == "novec" and cb.current()["gemm"] == "blas"
    assert cb.current() == before


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: no SIMD by design")
def test_each_path_calls_libmvec_and_uses_packed_simd_of_its_width(isa):
    ev = simd.evidence(cb)
    vec = simd.summarize(ev.values())
    calls = vec["libmvec_calls"]
    # libmvec's name says the width: b = SSE (2 doubles), d = AVX2 (4), e = AVX-512 (8).
    letters = {"baseline": "b", "avx2": "d", "avx512": "e"}[isa]
    for fn in ("exp", "tanh", "expf", "tanhf"):
        assert any(s.startswith(f"_ZGV{letters}") and s.endswith("v_" + fn) for s in calls), \
            f"no {isa} libmvec {fn} in {sorted(calls)}"
    act64 = ev["linear_activation_forward float64"]["libmvec_calls"]
    assert any("v_exp" in s for s in act64) and any("v_tanh" in s for s in act64)
    if isa == "baseline":
        assert vec["packed_ymm"] == vec["packed_zmm"] == 0 and vec["packed_xmm"] > 0
    elif isa == "avx2":
        assert vec["packed_zmm"] == 0 and vec["packed_ymm"] > 0
    else:
        assert vec["packed_zmm"] > 0
    # The ablation build of the same path really is scalar: no libmvec, few packed ops.
    with cb.settings(variant="novec"):
        novec = simd.summarize(simd.evidence(cb).values())
    assert novec["libmvec_calls"] == {}
    assert novec["packed"] * 5 < vec["packed"]


def test_compile_flags_recorded(isa):
    info = cb.info()
    flags, novec_flags = info["compile_flags"], info["compile_flags_novec"]
    assert flags and flags != "unknown"
    if "-O0" not in flags:  # not a FASTNN_DEBUG_BUILD (-O0 -g for both builds)
        assert "-fno-tree-vectorize" in novec_flags and "-fno-tree-vectorize" not in flags
        assert "-O3" in flags and "-fno-math-errno" in flags
        assert "-ffast-math" not in flags  # sigmoid(+-1000) needs inf arithmetic
        assert "-march=native" not in flags
    assert info["openmp"] is ("-fopenmp" in flags)
    assert "cython_blas" in info["blas"]


def test_debug_build_switch_documented():
    setup = (ROOT / "setup.py").read_text()
    doc = setup.split('"""')[1]
    assert "FASTNN_DEBUG_BUILD=1" in doc and "boundscheck" in doc
    assert 'os.environ.get("FASTNN_DEBUG_BUILD"' in setup


# -- every path against the oracles ----------------------------------------------

@pytest.mark.parametrize("variant", ["vec", "novec"])
@pytest.mark.parametrize("case", [PLANAR, DEEP], ids=["planar", "deep"])
def test_each_path_matches_the_loops_oracle(case, variant, isa):
    dims, m, acts = case
    m = min(m, 60)  # the oracle is slow on purpose
    c_ref, p_ref = _train(lb, dims, m, acts, iters=30)
    with cb.settings(variant=variant):
        c, p = _train(cb, dims, m, acts, iters=30, threads=2)
    assert _rel(c, c_ref) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


@pytest.mark.parametrize("gram", [False, True])
def test_each_path_matches_numpy_on_gemm_shaped_layers(isa, gram):
    # Big enough that every hidden product goes to the GEMM (own or BLAS), on
    # 2 threads, and (gram=True) layer 1 through X^T X.
    dims, m, acts = [300, 48, 32, 1], 200, ["relu", "tanh", "sigmoid"]
    c_ref, p_ref = _train(nb, dims, m, acts, iters=100, lr=0.1)
    c, p = _train(cb, dims, m, acts, iters=100, lr=0.1, threads=2, gram=gram)
    assert _rel(c, c_ref) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


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
def test_gram_first_layer_matches_numpy(mode, threads, dtype):
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
def test_one_pass_first_layer_matches_numpy(threads, dtype, block_rows, isa):
    # 64 rows: many blocks per thread and a partial last one (900 = 14 * 64 + 4);
    # 21 units: the fused kernels' full register tiles plus leftover rows on
    # every path; m = 70: whole vectors of examples plus a tail.
    block = block_rows * 70 * np.dtype(dtype).itemsize
    for dims, acts in (([900, 6, 3, 1], ["relu", "tanh", "sigmoid"]), ([900, 1], ["sigmoid"]),
                       ([900, 21, 1], ["tanh", "sigmoid"])):
        c_ref, p_ref = _train(nb, dims, 70, acts, iters=300, lr=0.05, dtype=dtype)
        with cb.settings(onepass=True, onepass_block_bytes=block):
            c, p = _train(cb, dims, 70, acts, iters=300, lr=0.05, threads=threads, dtype=dtype,
                          gram=False)
        tol = RTOL if dtype == np.float64 else 1e-4
        assert _rel(c, c_ref) < tol
        for a, b in zip(p, p_ref):
            assert _rel(a, b) < tol


@pytest.mark.parametrize("mode", ["gram", "onepass"])
def test_layer1_modes_are_bitwise_reproducible(mode):
    with cb.settings(onepass=mode == "onepass"):
        runs = [_train(cb, [700, 5, 1], 90, ["relu", "sigmoid"], iters=30, threads=2,
                       gram=mode == "gram")
                for _ in range(2)]
    for a, b in zip([runs[0][0]] + runs[0][1], [runs[1][0]] + runs[1][1]):
        assert np.array_equal(a, b)


def test_gram_early_stop_materializes_weights():
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
    ext = cb.module(cb.current()["isa"])
    assert cb._threads(ext, None, small, 400) == 1
    expected = cb._n_cores() if cb.info()["openmp"] else 1
    assert cb._threads(ext, None, large, 10_000) == expected
    # Explicit counts are honoured up to the cores (each thread owns a private
    # copy of every dW and db) and never exceed the examples.
    cores = cb._n_cores() if cb.info()["openmp"] else 1
    assert cb._threads(ext, 8, small, 3) == min(3, cores)
    assert cb._threads(ext, 64, large, 10_000) == cores
    assert cb._threads(ext, 2, small, 1) == 1
    # Gram mode counts the work it really does (n_1 m^2), not n_1 n_0 m.
    deep = [np.zeros((20, 12288)), np.zeros((7, 20)), np.zeros((5, 7)), np.zeros((1, 5))]
    assert cb._work(deep, 209, gram=True) < cb._work(deep, 209) / 20




@pytest.mark.parametrize("mode", ["direct", "onepass", "gram"])
def test_interruptible_calls_change_no_bit(monkeypatch, mode):
    # A fit returns to Python every SECONDS_PER_CALL (for Ctrl-C): at inf the
    # whole fit is one call, at 0 every iteration is its own call, which must
    # resume exactly where the last stopped.
    dims, acts = [300, 6, 1], ["tanh", "sigmoid"]
    runs = []
    for seconds in (float("inf"), 0.0):
        monkeypatch.setattr(cb, "SECONDS_PER_CALL", seconds)
        with cb.settings(onepass=mode == "onepass"):
            runs.append(_train(cb, dims, 40, acts, iters=57, threads=2, gram=mode == "gram"))
    (c1, p1), (c2, p2) = runs
    for a, b in zip([c1] + p1, [c2] + p2):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_epilogue_is_bitwise_the_two_steps(act, dtype, isa):
    # A GEMM-shaped layer with a piecewise-linear g gets b and g applied as the
    # own GEMM stores each tile: bitwise the product, then + b, then g.
    from fastnn import activations
    from fastnn.backends import _cython_paths as paths

    rng = np.random.default_rng(3)
    n, k, m = 33, 101, 150  # leftover rows and columns of every tile size
    W = rng.standard_normal((n, k)).astype(dtype)
    X = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal((n, 1)).astype(dtype)
    for threads in (1, 2):
        AL, caches = cb.forward([W], [b], [act], X, threads=threads)
        WX = np.zeros((n, m), dtype)
        for c0, c1 in ((0, m),) if threads == 1 else ((0, m // 2), (m // 2, m)):
            part = np.zeros((n, c1 - c0), dtype)
            paths.active()._gemm_check(W, X[:, c0:c1], part, 1.0, 0.0)
            WX[:, c0:c1] = part
        Z = WX + b
        assert np.array_equal(caches[0][1], Z)
        assert np.array_equal(AL, activations.forward(act, Z))


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: no SIMD by design")
def test_one_pass_kernels_are_packed_on_the_paths_registers(isa):
    # The gram=False path of the deep and logistic-regression nets: its two
    # register-tiled kernels appear in the evidence, packed at the path's width.
    ev = simd.evidence(cb)
    reg = {"avx512": "packed_zmm", "avx2": "packed_ymm", "baseline": "packed_xmm"}[isa]
    for kernel in ("first_layer_dw", "first_layer_fwd"):
        for dtype in ("float64", "float32"):
            counts = ev[f"{kernel} {dtype}"]
            assert counts[reg] >= 4, (kernel, dtype, counts)
            if isa != "avx512":
                assert counts["packed_zmm"] == 0


# -- the contract's newer parts: ReLU'(0), softmax, mini-batches, recorded costs --------

def _softmax_problem(dims, m, dtype=np.float64, seed=0):
    """network_problem with a one-hot Y over the dims[-1] classes."""
    X, _, Ws, bs = _problem(dims, m, dtype, seed)
    labels = np.random.default_rng(seed + 1).integers(0, dims[-1], m)
    Y = np.ascontiguousarray(np.eye(dims[-1], dtype=dtype)[:, labels])
    return X, Y, Ws, bs


def _copies(arrays):
    return [a.copy() for a in arrays]


def _integer_problem(dims, m, seed=0):
    """Entries in {-1, 0, 1}, zero biases: every Z is an exact small integer
    and many are exactly 0, where ReLU's derivative is a convention."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 2, (dims[0], m)).astype(np.float64)
    Ws = [rng.integers(-1, 2, (dims[l], dims[l - 1])).astype(np.float64)
          for l in range(1, len(dims))]
    bs = [np.zeros((n, 1)) for n in dims[1:]]
    Y = (rng.random((dims[-1], m)) < 0.5).astype(np.float64)
    return X, Y, Ws, bs


@pytest.mark.parametrize("m,threads", [(1, 1), (32, 1), (300, 2)])
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_relu_grad_at_zero_matches_numpy_where_z_is_exactly_zero(act, m, threads):
    # m = 1: the matrix-vector loops; 32: the small products; 300 on two
    # threads: the loops and GEMMs of wide chunks. mse on an act output:
    # output_dZ applies the convention too.
    dims = [6, 9, 7, 2]
    X, Y, Ws, bs = _integer_problem(dims, m)
    for acts, loss in (([act, act, "sigmoid"], "cross_entropy"), ([act] * 3, "mse")):
        AL, caches = cb.forward(Ws, bs, acts, X, threads=threads)
        AL_ref, caches_ref = nb.forward(Ws, bs, acts, X)
        assert any((c[1] == 0).any() for c in caches_ref), "no Z == 0: the test lost its point"
        grads = {}
        for g0 in (1, 0):
            dWs, dbs = cb.backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=g0)
            ref = nb.backward(AL_ref, Y, caches_ref, acts, loss, relu_grad_at_zero=g0)
            for a, b in zip(dWs + dbs, ref[0] + ref[1]):
                assert _rel(a, b) < 1e-13, (acts, loss, g0)
            grads[g0] = dWs + dbs
        if m > 1:  # the convention matters here: the two gradients differ
            assert any(not np.array_equal(a, b) for a, b in zip(grads[0], grads[1]))


@pytest.mark.parametrize("batch_size", [None, 8])
def test_relu_grad_at_zero_trains_as_numpy(batch_size):
    dims, acts = [6, 9, 7, 1], ["relu", "leaky_relu", "sigmoid"]
    X, Y, Ws, bs = _integer_problem(dims, 40)
    for g0 in (1, 0):
        W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
        kw = dict(relu_grad_at_zero=g0, batch_size=batch_size)
        c = cb.train(W1, b1, acts, "cross_entropy", X, Y, 0.25, 5, 1,
                     rng=np.random.default_rng(2), **kw)
        ref = nb.train(W2, b2, acts, "cross_entropy", X, Y, 0.25, 5, 1,
                       rng=np.random.default_rng(2), **kw)
        assert _rel([j for _, j in c], [j for _, j in ref]) < RTOL
        for a, b in zip(W1 + b1, W2 + b2):
            assert _rel(a, b) < RTOL


@pytest.mark.parametrize("variant", ["vec", "novec"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_forward_backward_cost_match_numpy(isa, variant, dtype):
    # 300 examples: two softmax blocks of 128 columns and a tail; on two
    # threads the chunk boundary falls inside a block.
    from fastnn import losses

    tol = 1e-12 if dtype == np.float64 else 1e-5
    dims, acts = [7, 12, 5], ["tanh", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 300, dtype)
    with cb.settings(variant=variant):
        for threads in (1, 2):
            AL, caches = cb.forward(Ws, bs, acts, X, threads=threads)
            AL_ref, caches_ref = nb.forward(Ws, bs, acts, X)
            assert AL.dtype == dtype and _rel(AL, AL_ref) < tol
            assert np.allclose(AL.sum(axis=0), 1, atol=tol)
            grads = cb.backward(AL, Y, caches, acts, "cross_entropy", threads)
            ref = nb.backward(AL_ref, Y, caches_ref, acts, "cross_entropy")
            for a, b in zip(grads[0] + grads[1], ref[0] + ref[1]):
                assert _rel(a, b) < tol
            # The cost the C loop records (iteration 0: before any update).
            (i, J), = cb.train(_copies(Ws), _copies(bs), acts, "cross_entropy", X, Y, 0.1, 1, 1,
                               threads=threads)
            J_ref = losses.cost("cross_entropy", AL_ref, caches_ref[-1][1], Y, "softmax")
            assert i == 0 and abs(J - J_ref) < tol * J_ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cost_and_output_stable_for_huge_logits(dtype):
    # Logits of +-1e4 (e^z overflows any float): the column max is subtracted
    # and the cost is max + log(sum e^(z - max)) - y.z, finite and exact.
    # (pytest runs with -W error::RuntimeWarning: numpy's oracle warns on nothing either.)
    from fastnn import losses

    X = np.array([[1.0, -1.0, 0.5, 0.0]], dtype) * dtype(1e4)
    W = np.array([[1.0], [-1.0], [0.0]], dtype)
    b = np.zeros((3, 1), dtype)
    Y = np.ascontiguousarray(np.eye(3, dtype=dtype)[:, [1, 0, 2, 2]])
    AL, caches = cb.forward([W], [b], ["softmax"], X)
    assert np.isfinite(AL).all()
    assert AL[:, 0].tolist() == [1, 0, 0] and AL[:, 1].tolist() == [0, 1, 0]
    assert np.allclose(AL[:, 3], 1 / 3)
    (_, J), = cb.train([W.copy()], [b.copy()], ["softmax"], "cross_entropy", X, Y, 0.1, 1, 1)
    J_ref = losses.cost("cross_entropy", AL, caches[0][1], Y, "softmax")
    assert np.isfinite(J) and abs(J - J_ref) <= 1e-6 * J_ref
    assert abs(J - (2e4 + 2e4 + 5e3 + np.log(3)) / 4) <= 1e-6 * J


MINIBATCH_NETS = {
    "softmax": ([7, 12, 9, 4], ["relu", "tanh", "softmax"]),
    "sigmoid": ([7, 5, 1], ["leaky_relu", "sigmoid"]),
}


def _train_batches(module, net, m, batch_size, threads=None, dtype=np.float64, iters=5,
                   cost_every=2, seed=3, **kw):
    dims, acts = MINIBATCH_NETS[net]
    X, Y, Ws, bs = (_softmax_problem if net == "softmax" else _problem)(dims, m, dtype)
    costs = module.train(Ws, bs, acts, "cross_entropy", X, Y, 0.2, iters, cost_every,
                         threads=threads, batch_size=batch_size,
                         rng=np.random.default_rng(seed), **kw)
    return costs, Ws + bs


# 1 (matrix-vector loops), 13 (on two threads: chunks below the small
# products), 32 (small products), 37 (does not divide 100: a last batch of
# 26), 100 = m (one batch: the wide products).
@pytest.mark.parametrize("batch_size", [1, 13, 32, 37, 100])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("net", list(MINIBATCH_NETS))
def test_minibatch_train_matches_numpy(net, threads, batch_size):
    costs, p = _train_batches(cb, net, 100, batch_size, threads)
    ref, p_ref = _train_batches(nb, net, 100, batch_size)
    assert [i for i, _ in costs] == [i for i, _ in ref] == [0, 2, 4]
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


def test_minibatch_every_path_matches_numpy(isa):
    ref, p_ref = _train_batches(nb, "softmax", 90, 20)
    for variant in ("vec", "novec"):
        with cb.settings(variant=variant):
            costs, p = _train_batches(cb, "softmax", 90, 20, threads=2)
        assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
        for a, b in zip(p, p_ref):
            assert _rel(a, b) < RTOL


@pytest.mark.parametrize("batch_size", [1, 16, 45])
def test_minibatch_float32_close_to_numpy(batch_size):
    costs, p = _train_batches(cb, "softmax", 90, batch_size, dtype=np.float32)
    ref, p_ref = _train_batches(nb, "softmax", 90, batch_size, dtype=np.float32)
    assert all(a.dtype == np.float32 for a in p)
    assert _rel([j for _, j in costs], [j for _, j in ref]) < 1e-4
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < 1e-4


@pytest.mark.parametrize("threads", [1, 2])
def test_minibatch_bitwise_reproducible_for_a_seed(threads):
    runs = [_train_batches(cb, "softmax", 150, 24, threads, iters=4) for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)
    other, _ = _train_batches(cb, "softmax", 150, 24, threads, iters=4, seed=4)
    assert other[1:] != runs[0][0][1:]  # the seed does decide the shuffles


def test_minibatch_calls_change_no_bit(monkeypatch):
    # Epochs run in calls of about SECONDS_PER_CALL (Ctrl-C is noticed between
    # them), each drawing its own epochs' shuffles: one call or one per epoch,
    # the same draws and the same bits.
    runs = []
    for seconds in (float("inf"), 0.0):
        monkeypatch.setattr(cb, "SECONDS_PER_CALL", seconds)
        runs.append(_train_batches(cb, "softmax", 60, 16, threads=2, iters=9, cost_every=4))
    (c1, p1), (c2, p2) = runs
    assert c1 == c2 and [i for i, _ in c1] == [0, 4, 8]
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)


def test_auto_threads_one_for_a_small_batch():
    # issue #12's workload: 64-64-10 on batches of 32 is far below the
    # two-thread crossover, and both of the fit's plans follow the batch.
    ext = cb.module(cb.current()["isa"])
    Ws = [np.zeros((64, 64)), np.zeros((10, 64))]
    assert cb._threads(ext, None, Ws, 32) == 1
    # Batches start the team twice each: they need more work for a second thread.
    many = cb._n_cores() if cb.info()["openmp"] else 1
    batch = cb.MINIBATCH_AUTO_THREADS_MIN_WORK
    assert cb._threads(ext, None, Ws, 256, min_work=batch) == 1
    assert cb._threads(ext, None, Ws, 1024, min_work=batch) == many


@pytest.mark.parametrize("mode", ["direct", "onepass", "gram", "batches"])
@pytest.mark.parametrize("iters,cost_every", [(57, 10), (1, 5), (20, 1), (30, 10)])
def test_last_iteration_cost_recorded(mode, iters, cost_every):
    from fastnn.backends import _base

    dims, acts = [300, 6, 3], ["tanh", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 40)
    kw = dict(gram=mode == "gram") if mode != "batches" else dict(batch_size=16)
    W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
    with cb.settings(onepass=mode == "onepass"):
        costs = cb.train(W1, b1, acts, "cross_entropy", X, Y, 0.05, iters, cost_every,
                         threads=2, rng=np.random.default_rng(0), **kw)
    ref = nb.train(W2, b2, acts, "cross_entropy", X, Y, 0.05, iters, cost_every,
                   rng=np.random.default_rng(0), batch_size=kw.get("batch_size"))
    expected = [i for i in range(iters) if _base.recorded(i, cost_every, iters)]
    assert [i for i, _ in costs] == [i for i, _ in ref] == expected
    assert expected[-1] == iters - 1
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(W1 + b1, W2 + b2):  # the last update ran after the last record
        assert _rel(a, b) < RTOL


@pytest.mark.parametrize("mode", ["direct", "onepass", "gram", "batches"])
@pytest.mark.parametrize("stop_at", [0, 7, 29])
def test_on_cost_stops_exactly_before_that_update(mode, stop_at):
    # Early stopping (user callbacks, divergence): on_cost returning False at
    # iteration i leaves the parameters as they were before i's update.
    dims, acts = [300, 6, 3], ["relu", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 40)
    kw = dict(gram=mode == "gram") if mode != "batches" else dict(batch_size=16)
    stop = lambda i, J: i < stop_at  # noqa: E731
    W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
    with cb.settings(onepass=mode == "onepass"):
        costs = cb.train(W1, b1, acts, "cross_entropy", X, Y, 0.05, 40, 1, threads=2,
                         on_cost=stop, rng=np.random.default_rng(0), **kw)
    ref = nb.train(W2, b2, acts, "cross_entropy", X, Y, 0.05, 40, 1, on_cost=stop,
                   rng=np.random.default_rng(0), batch_size=kw.get("batch_size"))
    assert [i for i, _ in costs] == [i for i, _ in ref] == list(range(stop_at + 1))
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(W1 + b1, W2 + b2):
        assert _rel(a, b) < RTOL
    if stop_at == 0:
        for a, b in zip(W1 + b1, Ws + bs):
            assert np.array_equal(a, b)


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: no SIMD by design")
def test_softmax_and_small_products_are_packed_simd(isa):
    # The column softmax calls libmvec's exp at the path's width and its row
    # passes are packed; so are the small products' register tiles (a
    # mini-batch's every product).
    ev = simd.evidence(cb)
    letter = {"baseline": "b", "avx2": "d", "avx512": "e"}[isa]
    reg = {"avx512": "packed_zmm", "avx2": "packed_ymm", "baseline": "packed_xmm"}[isa]
    for dtype, fn in (("float64", "exp"), ("float32", "expf")):
        counts = ev[f"softmax_forward {dtype}"]
        assert any(s.startswith(f"_ZGV{letter}") and s.endswith("v_" + fn)
                   for s in counts["libmvec_calls"]), counts["libmvec_calls"]
        assert counts[reg] >= 4, counts
        small = ev[f"small_nn {dtype}"]
        assert small[reg] >= 8, small
        if isa != "avx512":
            assert counts["packed_zmm"] == small["packed_zmm"] == 0
    with cb.settings(variant="novec"):
        novec = simd.evidence(cb)
    assert novec["softmax_forward float64"]["libmvec_calls"] == {}
    assert "small_nn float64" not in novec


def test_minibatch_last_batch_smaller_than_threads():
    # 101 = 2 x 50 + 1: the last batch has one example for two threads (an
    # empty chunk), a single column (the matrix-vector loops).
    costs, p = _train_batches(cb, "softmax", 101, 50, threads=2)
    ref, p_ref = _train_batches(nb, "softmax", 101, 50)
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


def test_info_names_the_small_products():
    info = cb.info()
    assert ("_small.h" in info["small_products"]) == (info["variant"] == "vec")
    with cb.settings(variant="novec"):
        assert cb.info()["small_products"].startswith("none")


def test_epochs_refuses_input_that_would_read_out_of_bounds():
    # _Net.epochs is callable from Python: it checks what the kernels index by.
    ext = cb._active()
    Ws = [np.ones((3, 4)), np.ones((2, 3))]
    bs = [np.zeros((3, 1)), np.zeros((2, 1))]
    net = ext._Net(Ws, bs, [2, 5], np.zeros((4, 2)), 1, None, None, 1)
    net.set_Y(np.zeros((2, 2)))
    XT, YT = np.zeros((5, 4)), np.zeros((5, 2))
    good = np.arange(5, dtype=np.int64)[None]
    net.epochs(0, 0.1, good, XT, YT)  # in bounds: runs
    bad = [
        (TypeError, "must be float64", (good, XT.astype(np.float32), YT)),
        (ValueError, r"C-contiguous \(m, 4\)", (good, np.zeros((5, 3)), YT)),
        (ValueError, r"\(m, 2\)", (good, XT, np.zeros((4, 2)))),
        (ValueError, r"C-contiguous", (good, np.asfortranarray(np.zeros((5, 4))), YT)),
        (ValueError, "rows of 5 indices", (np.arange(4, dtype=np.int64)[None], XT, YT)),
        (ValueError, "rows of 5 indices", (good + 1, XT, YT)),
        (ValueError, "rows of 5 indices", (good - 1, XT, YT)),
    ]
    for exc, match, (orders, X_T, Y_T) in bad:
        with pytest.raises(exc, match=match):
            net.epochs(0, 0.1, orders, X_T, Y_T)
