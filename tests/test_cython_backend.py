"""What only the Cython backend has: its kernel sets per ISA (each run here,
forced with ``settings(isa=...)``) and their novec twins, SIMD in the binary,
the recorded compile flags, threads, and the one-pass and Gram paths for a huge
first layer. The own GEMM is in test_cython_gemm.py.

Generic equivalence with the other backends is in test_equivalence.py. Where
fastnn_ext is not built (an install without a C compiler) this module skips
with the build's reason; where the backend is required (under CI) it fails to
collect instead, so CI cannot pass without the extension.
"""

import dataclasses
import pathlib
import shutil

import numpy as np
import pytest

from fastnn._testing import network_problem
from fastnn._testing import rel_diff as _rel
from fastnn._testing import train
from fastnn.backends import _base
from fastnn.backends import _threads as _thread_policy
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
    costs = train(module, Ws, bs, acts, loss, X, Y, lr, iters, 100, **kw)
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
    from fastnn.backends.cython import paths

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
    assert "cython_blas" in info["blas"] or "scipy-openblas32" in info["blas"]  # test_cython_blas


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
    costs = train(cb, Ws, bs, acts, "cross_entropy", X, Y, 0.1, 1000, 100, on_cost=stop,
                     gram=True)
    ref = train(nb, Wr, br, acts, "cross_entropy", X, Y, 0.1, 1000, 100, on_cost=stop)
    assert [i for i, _ in costs] == [i for i, _ in ref] == [0, 100, 200]
    for a, b in zip(Ws + bs, Wr + br):
        assert _rel(a, b) < RTOL


# -- edge cases -------------------------------------------------------------------

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


def _fit(dims, m, dtype=np.float64, threads=1, **schedule):
    """A :class:`_base.Fit` of a net of ``dims`` on m examples (tanh, then sigmoid)."""
    X, Y, Ws, bs = _problem(dims, m, dtype)
    acts = ("tanh",) * (len(dims) - 2) + ("sigmoid",)
    return _base.Fit(_base.Problem(X, Y, acts, "cross_entropy"),
                     _base.Schedule(schedule.pop("lr", 0.5), schedule.pop("iters", 100),
                                    **schedule),
                     Ws, bs, threads=threads, rng=np.random.default_rng(0))


def _engine_threads(fit):
    engine = cb.engine(fit)
    try:
        return engine.threads
    finally:
        engine.close()


def test_auto_threads_one_for_small_work_all_cores_for_large():
    # The driver decides (the policy of _threads, at this backend's threshold).
    budget = _thread_policy.cpu_budget()[0]
    small, large = _fit([2, 4, 1], 400), _fit([784, 256, 128, 1], 10, iters=1)
    assert _base.decide_threads(cb, small, None).threads == 1
    large_m = dataclasses.replace(large.problem, X=np.zeros((784, 10_000)),
                                  Y=np.zeros((1, 10_000)))
    assert _base.decide_threads(cb, dataclasses.replace(large, problem=large_m),
                                None).threads == budget
    # Explicit counts are honoured up to what the build has (OpenMP) and never
    # exceed the examples (each thread owns a chunk and a private copy of
    # every dW and db).
    openmp = cb.info()["openmp"]
    assert _engine_threads(_fit([2, 4, 1], 3, threads=8)) == (3 if openmp else 1)
    assert _engine_threads(_fit([2, 4, 1], 400, threads=3)) == (3 if openmp else 1)
    assert _engine_threads(_fit([2, 4, 1], 1, threads=2)) == 1


@pytest.mark.parametrize("mode", ["direct", "onepass", "gram"])
def test_interruptible_calls_change_no_bit(mode):
    # The driver returns to Python between calls (for Ctrl-C): the whole fit
    # in one engine call, or every iteration its own call, which must resume
    # exactly where the last stopped.
    runs = []
    for sizes in ([56], [1] * 56):
        fit = _fit([300, 6, 1], 40, threads=2, iters=57, gram=mode == "gram")
        with cb.settings(onepass=mode == "onepass"):
            engine = cb.engine(fit)
            try:
                costs = [engine.cost()]
                for n in sizes:
                    engine.run(n, None, False)
                costs.append(engine.cost())
                engine.run(1, None, True)
            finally:
                engine.close()
        runs.append((np.array(costs), fit.Ws + fit.bs))
    (c1, p1), (c2, p2) = runs
    for a, b in zip([c1] + p1, [c2] + p2):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_epilogue_is_bitwise_the_two_steps(act, dtype, isa):
    # A GEMM-shaped layer with a piecewise-linear g gets b and g applied as the
    # own GEMM stores each tile: bitwise the product, then + b, then g.
    from fastnn import activations
    from fastnn.backends.cython import paths
    from fastnn_ext._testing import gemm as gemm_check

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
            gemm_check(paths.active(), W, X[:, c0:c1], part, 1.0, 0.0)
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


_FORK = """
import json, os, signal, sys, warnings
import numpy as np
from fastnn import Network
X = np.random.default_rng(0).standard_normal((64, 2000)); Y = (X[:1] > 0).astype(float)
def fit(backend="cython"):
    net = Network([64, 32, 1], ["relu", "sigmoid"], backend=backend, seed=0, threads=2)
    net.fit(X, Y, learning_rate=0.1, num_iterations=3)
    return net.threads_used_
before = fit(sys.argv[1])  # the parent's OpenMP team (cython's, or numba's) has run
import numba
try:
    layer = numba.threading_layer()
except ValueError:
    layer = None
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # what it did before: wait forever
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        used = fit()
    os.write(write, json.dumps({"used": used, "warned": [str(w.message) for w in seen]}).encode())
    os._exit(0)
os.close(write)  # the child's end alone: a child killed before writing reads as empty
_, status = os.waitpid(pid, 0)
child = json.loads(os.read(read, 1 << 16) or b"null")
print(json.dumps({"status": status, "before": before, "child": child, "after": fit(),
                  "numba_layer": layer}))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork here")
@pytest.mark.parametrize("parent", ["cython", "numba"])
def test_a_child_forked_after_a_team_ran_trains_on_one_thread_and_says_why(parent):
    # numba's omp threading layer runs on the same libgomp: its team counts too
    import json

    from _helpers import require_backend, run_python

    require_backend(parent)
    if not cb.paths.active().HAVE_OPENMP:
        pytest.skip("this build has no OpenMP: one thread everywhere")
    seen = json.loads(run_python(_FORK, parent, timeout=180))
    assert seen["status"] == 0, seen  # finished (SIGALRM's 14 had it hang)
    assert seen["before"][0] == 2  # the parent's team ran
    capped = parent == "cython" or seen["numba_layer"] == "omp"
    used, why = seen["child"]["used"]
    if capped:
        assert used == 1 and "forked" in why and "threads=2 asked for" in why, why
        assert any("spawn" in w for w in seen["child"]["warned"]), seen["child"]["warned"]
    else:  # numba on tbb or workqueue: no libgomp team behind, nothing to avoid
        assert used == 2 and not seen["child"]["warned"], seen["child"]
    assert seen["after"][0] == 2  # the parent keeps its threads
