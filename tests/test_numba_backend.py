"""Numba-specific checks: training against NumPy, the engine room against the
lecture page, the on-disk cache on read-only installs, threads (numba's and
Python's), relu_grad_at_zero and softmax.

The polynomial math is in ``test_numba_math.py``; the engine (slices, Ctrl-C,
mini-batches, what a fit compiles) in ``test_numba_engine.py``; SIMD and the
ISA paths in ``test_numba_isa.py``; generic equivalence with the other
backends in ``test_equivalence.py``.
"""

import concurrent.futures
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastnn.backends.numba")
from _numba_cases import assert_same_run, problem, softmax_problem, train_run  # noqa: E402

from fastnn._testing import train  # noqa: E402
from fastnn.backends.numba import first_layer  # noqa: E402
from fastnn.backends.numba import layers as page  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ training

def test_threads_1_and_2_both_match_numpy():
    from fastnn.backends import numpy as npb

    dims, acts = [20, 7, 5, 1], ["relu", "tanh", "sigmoid"]
    c0, W0, b0 = train_run(npb, dims, acts, "cross_entropy", 60)
    for threads in (1, 2):
        c, W, b = train_run(nb, dims, acts, "cross_entropy", 60, threads=threads)
        assert [i for i, _ in c] == [i for i, _ in c0]
        np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9)
        for p, p0 in zip(W + b, W0 + b0):
            np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dims,acts,m", [
    ([300, 64, 40, 1], ["relu", "tanh", "sigmoid"], 300),  # first layer through BLAS
    ([100, 200, 150, 1], ["tanh", "relu", "sigmoid"], 200),  # a hidden layer through BLAS
])
def test_blas_paths_match_numpy(dims, acts, m):
    from fastnn.backends import numpy as npb

    assert max(dims[l] * dims[l + 1] * m for l in range(len(dims) - 1)) >= \
        nb.config.BLAS_MIN_MACS
    c0, W0, b0 = train_run(npb, dims, acts, "cross_entropy", m, num_iterations=100)
    c, W, b = train_run(nb, dims, acts, "cross_entropy", m, num_iterations=100)
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9)
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_is_bitwise_reproducible(threads, dtype):
    dims, acts = [40, 6, 1], ["leaky_relu", "sigmoid"]
    first = train_run(nb, dims, acts, "cross_entropy", 33, threads=threads, dtype=dtype)
    second = train_run(nb, dims, acts, "cross_entropy", 33, threads=threads, dtype=dtype)
    assert first[0] == second[0]
    for p, q in zip(first[1] + first[2], second[1] + second[2]):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, q)


def test_on_cost_stops_before_the_update_like_the_python_loop():
    from fastnn.backends import numpy as npb

    dims, acts = [5, 4, 3, 1], ["relu", "relu", "sigmoid"]
    seen = []

    def stop_after_100(i, cost):
        seen.append(i)
        return i < 100

    c, W, b = train_run(nb, dims, acts, "cross_entropy", 20, on_cost=stop_after_100)
    c0, W0, b0 = train_run(npb, dims, acts, "cross_entropy", 20, on_cost=stop_after_100)
    assert [i for i, _ in c] == [0, 50, 100] == [i for i, _ in c0]
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dims,acts,loss", [
    ([1, 1], ["identity"], "mse"),
    ([3, 1], ["sigmoid"], "cross_entropy"),
    ([1, 2, 1], ["tanh", "sigmoid"], "mse"),
])
def test_tiny_shapes_and_m_1(dims, acts, loss):
    from fastnn.backends import numpy as npb

    c, W, b = train_run(nb, dims, acts, loss, 1, num_iterations=20)
    c0, W0, b0 = train_run(npb, dims, acts, loss, 1, num_iterations=20)
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9, atol=1e-15)
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-15)


def test_diverging_training_gives_non_finite_costs_without_crashing():
    Ws, bs, X, Y = problem([4, 3, 1], 10)
    X *= 1e200
    costs = train(nb, Ws, bs, ["relu", "identity"], "mse", X, Y, 1e10, 20, 5, None, None)
    assert [i for i, _ in costs] == [0, 5, 10, 15, 19] and not np.isfinite(costs[-1][1])


def test_info_and_compile_times_are_reported():
    train_run(nb, [3, 2, 1], ["tanh", "sigmoid"], "cross_entropy", 5, num_iterations=3)
    info = nb.info()
    assert {"numba", "llvmlite", "fastmath", "cache", "threading_layer", "threads", "isa",
            "llvm_cpu", "llvm_vector_features"} <= set(info)
    assert "nnan" not in info["fastmath"] and "ninf" not in info["fastmath"]
    assert any(k.startswith("full_batch/") for k in nb.compile_times())
    assert any(k.startswith("full_batch") for k in info["compiled"])
    assert isinstance(nb.DESCRIPTION, str) and "\n" not in nb.DESCRIPTION



# ------------------------------------------------------------------ the cache

_RUN = textwrap.dedent("""
    import tempfile, sys
    if sys.argv[1] == "deny-all":
        # every directory Numba could cache into refuses writes (read-only install)
        def deny(*args, dir=None, **kwargs):
            raise PermissionError(13, "read-only file system", dir)
        tempfile.TemporaryFile = deny
    import numpy as np
    from fastnn.backends import numba as nb
    from fastnn._testing import train
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((3, 4)), rng.standard_normal((1, 3))]
    bs = [np.zeros((3, 1)), np.zeros((1, 1))]
    X, Y = rng.standard_normal((4, 7)), np.ones((1, 7))
    costs = train(nb, Ws, bs, ["tanh", "sigmoid"], "cross_entropy", X, Y, 0.1, 3, 1)
    print(nb.info()["cache"], len(costs))
""")


def _run_subprocess(mode, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-c", _RUN, mode], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_numba_cache_dir_is_honoured(tmp_path):
    assert _run_subprocess("normal", str(tmp_path)) == ["True", "3"]
    written = [f for _, _, files in os.walk(tmp_path) for f in files]
    assert any(f.endswith(".nbi") for f in written), written


def test_read_only_install_without_any_cache_dir_still_imports_and_trains(tmp_path):
    unwritable = tmp_path / "a-file"
    unwritable.write_text("not a directory")
    assert _run_subprocess("deny-all", str(unwritable / "cache")) == ["False", "3"]



# ---------------------------------------------- the GEMM-bound (wide) path

_WIDE = ([100, 64, 40, 1], ["relu", "tanh", "sigmoid"], 2000)


def test_wide_path_puts_every_layer_product_through_blas():
    dims, _, m = _WIDE
    assert not first_layer.fused_first_layer(dims[1], dims[0], m)  # W1 X straight into Z1
    assert dims[2] * dims[1] * m >= nb.config.BLAS_MIN_MACS


@pytest.mark.parametrize("threads", [1, 2])
def test_wide_path_matches_numpy_with_and_without_on_cost(threads):
    from fastnn.backends import numpy as npb

    dims, acts, m = _WIDE
    c0, W0, b0 = train_run(npb, dims, acts, "cross_entropy", m, num_iterations=120)
    plain = train_run(nb, dims, acts, "cross_entropy", m, num_iterations=120, threads=threads)
    seen = []
    chunked = train_run(nb, dims, acts, "cross_entropy", m, num_iterations=120, threads=threads,
                     on_cost=lambda i, J: seen.append(i))
    assert seen == [0, 50, 100, 119]
    for c, W, b in (plain, chunked):
        assert [i for i, _ in c] == [0, 50, 100, 119]
        np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9)
        for p, p0 in zip(W + b, W0 + b0):
            np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)
    # resuming a chunk from the forward pass its predecessor did changes nothing
    assert plain[0] == chunked[0]
    for p, q in zip(plain[1] + plain[2], chunked[1] + chunked[2]):
        np.testing.assert_array_equal(p, q)


def test_wide_path_on_cost_stop_leaves_the_parameters_of_that_iteration():
    from fastnn.backends import numpy as npb

    dims, acts, m = _WIDE
    stop = lambda i, J: i < 50  # noqa: E731
    c, W, b = train_run(nb, dims, acts, "cross_entropy", m, num_iterations=120, on_cost=stop)
    c0, W0, b0 = train_run(npb, dims, acts, "cross_entropy", m, num_iterations=120, on_cost=stop)
    assert [i for i, _ in c] == [0, 50] == [i for i, _ in c0]
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)



# ------------------------------------------------ the engine room vs the page

def _first_layer_pass(threads, W, dZ, X, Z, scale, learn):
    """The fused pass as the full-batch engine runs it on ``threads`` threads."""
    if threads == 1:
        first_layer.first_layer_block(W, dZ, X, Z, 0, X.shape[0], scale, learn)
    else:
        Z_parts = np.empty((threads,) + Z.shape, Z.dtype)
        first_layer.first_layer_threads(W, dZ, X, Z, Z_parts, scale, learn)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_first_layer_pass_is_the_page_s_backward_update_and_forward(threads, dtype, rtol):
    # 9 units: two 4x4 tiles and a 1x4 remainder; 23 rows of X: 4-row blocks
    # and 1x1 remainders in each thread's range.
    rng = np.random.default_rng(3)
    n1, n0, m, lr = 9, 23, 37, 0.3
    W = rng.standard_normal((n1, n0)).astype(dtype)
    dZ = rng.standard_normal((n1, m)).astype(dtype)
    X = rng.standard_normal((n0, m)).astype(dtype)
    W_page, dW, db = W.copy(), np.empty_like(W), np.empty((n1, 1), dtype)
    page.linear_backward(dZ, X, dW, db)
    page.update(W_page, dW, lr)
    Z_page, A = np.empty((n1, m), dtype), np.empty((n1, m), dtype)
    identity = np.int64(page.IDENTITY)
    page.linear_forward(W_page, np.zeros((n1, 1), dtype), X, Z_page, A, identity,
                        np.empty((2, m), dtype))

    W_engine, Z_engine = W.copy(), np.empty((n1, m), dtype)
    _first_layer_pass(threads, W_engine, dZ, X, Z_engine, dtype(lr / m), True)
    np.testing.assert_allclose(W_engine, W_page, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(Z_engine, Z_page, rtol=rtol, atol=rtol * np.abs(Z_page).max())
    # learn=False: the forward alone, W untouched
    W_still = W.copy()
    _first_layer_pass(threads, W_still, dZ, X, Z_engine, dtype(lr), False)
    np.testing.assert_array_equal(W_still, W)
    np.testing.assert_allclose(Z_engine, W.astype(np.float64) @ X, rtol=rtol,
                               atol=rtol * np.abs(Z_engine).max())


def test_forward_and_backward_use_the_page_and_match_numpy():
    from fastnn.backends import numpy as npb

    Ws, bs, X, Y = problem([6, 5, 4, 3, 1], 41)
    acts = ["tanh", "leaky_relu", "relu", "sigmoid"]
    AL, caches = nb.forward(Ws, bs, acts, X)
    AL0, caches0 = npb.forward(Ws, bs, acts, X)
    np.testing.assert_allclose(AL, AL0, rtol=1e-12)
    for (_, Z), (_, Z0) in zip(caches, caches0):
        np.testing.assert_allclose(Z, Z0, rtol=1e-12, atol=1e-15)
    for loss in ("cross_entropy", "mse"):
        dWs, dbs = nb.backward(AL, Y, caches, acts, loss)
        dWs0, dbs0 = npb.backward(AL0, Y, caches0, acts, loss)
        for g, g0 in zip(dWs + dbs, dWs0 + dbs0):
            np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-15)



# ------------------------------------------------ fits in Python threads

_THREAD_CASES = {
    "fused": ([600, 8, 4, 1], 120),     # layer 1 through the one-pass kernel
    "blas": ([300, 64, 40, 1], 300),    # every product through BLAS
}


def _fit_seeds(case, seeds, dtype, workers=None):
    """Parameters after a short fit per seed: on this thread (workers=None) or
    in a pool of that many Python threads (the kernels release the GIL)."""
    dims, m = _THREAD_CASES[case]

    def fit(seed):
        Ws, bs, X, Y = problem(dims, m, dtype, seed=seed)
        train(nb, Ws, bs, ["relu", "tanh", "sigmoid"], "cross_entropy", X, Y, 0.1, 30, 10, 1,
                 None)
        return Ws + bs

    if workers is None:
        return [fit(s) for s in seeds]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fit, seeds))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(_THREAD_CASES))
@pytest.mark.parametrize("workers", [1, 4], ids=["other-thread", "concurrent"])
def test_fits_in_python_threads_are_bitwise_the_sequential_ones(workers, case, dtype):
    # workers=1: one fit at a time off the main thread, where a BLAS limit set
    # through threadpoolctl was ignored; workers=4: fits at once, sharing the
    # process-wide BLAS limit (fastnn.backends._blas).
    seeds = [1, 2, 3, 4]
    expected = _fit_seeds(case, seeds, dtype)
    got = _fit_seeds(case, seeds, dtype, workers=workers)
    for e, g in zip(expected, got):
        for a, b in zip(e, g):
            np.testing.assert_array_equal(a, b)



# ------------------------------------------------ relu_grad_at_zero

def _kinked_problem(hidden):
    """Integer data and weights, so Z1 == 0 exactly in many places, and a
    hidden unit whose weights and bias are all zero (Z1 == 0 everywhere)."""
    rng = np.random.default_rng(11)
    X = rng.integers(-2, 3, size=(4, 30)).astype(np.float64)
    W1 = rng.integers(-1, 2, size=(5, 4)).astype(np.float64)
    W1[2] = 0.0
    Ws = [W1, rng.standard_normal((3, 5)) / 3, rng.standard_normal((1, 3)) / 2]
    bs = [np.zeros((5, 1)), np.zeros((3, 1)), np.zeros((1, 1))]
    Y = (rng.random((1, 30)) < 0.5).astype(np.float64)
    return Ws, bs, [hidden, "tanh", "sigmoid"], X, Y


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu"])
def test_relu_grad_at_zero_matches_numpy_where_z_is_exactly_0(hidden):
    from fastnn.backends import numpy as npb

    Ws, bs, acts, X, Y = _kinked_problem(hidden)
    AL, caches = nb.forward(Ws, bs, acts, X)
    assert np.count_nonzero(caches[0][1] == 0.0) > 30  # the kink is hit
    grads = {}
    for g0 in (1, 0):
        dWs, dbs = nb.backward(AL, Y, caches, acts, "cross_entropy", None, g0)
        AL0, caches0 = npb.forward(Ws, bs, acts, X)
        dWs0, dbs0 = npb.backward(AL0, Y, caches0, acts, "cross_entropy", 1, g0)
        for g, g_ref in zip(dWs + dbs, dWs0 + dbs0):
            np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-15)
        grads[g0] = dWs[0]
    assert not np.array_equal(grads[0], grads[1])  # the two conventions differ here
    for g0 in (1, 0):  # and through training, full batch and mini-batch
        for batch_size in (None, 7):
            runs = []
            for backend in (nb, npb):
                W, b = [w.copy() for w in Ws], [v.copy() for v in bs]
                c = train(backend, W, b, acts, "cross_entropy", X, Y, 0.1, 20, 5, None, None,
                                  relu_grad_at_zero=g0, batch_size=batch_size,
                                  rng=np.random.default_rng(2))
                runs.append((c, W + b))
            assert_same_run(runs[0], runs[1], 1e-10)



# ------------------------------------------------ softmax

def test_softmax_forward_backward_and_cost_match_numpy():
    from fastnn import losses
    from fastnn.backends import numpy as npb

    Ws, bs, X, Y = softmax_problem([6, 9, 5], 37)
    acts = ["relu", "softmax"]
    AL, caches = nb.forward(Ws, bs, acts, X)
    AL0, caches0 = npb.forward(Ws, bs, acts, X)
    np.testing.assert_allclose(AL, AL0, rtol=1e-13)
    np.testing.assert_allclose(AL.sum(axis=0), 1.0, rtol=1e-14)
    ZL = caches[-1][1]
    J = page.cost(AL, ZL, Y, page.CROSS_ENTROPY, page.SOFTMAX)
    assert J == pytest.approx(losses.cost("cross_entropy", AL0, caches0[-1][1], Y, "softmax"),
                              rel=1e-13)
    dWs, dbs = nb.backward(AL, Y, caches, acts, "cross_entropy")
    dWs0, dbs0 = npb.backward(AL0, Y, caches0, acts, "cross_entropy")
    for g, g0 in zip(dWs + dbs, dWs0 + dbs0):
        np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_its_cost_are_stable_for_huge_logits(dtype):
    # logits in the thousands: e^z overflows unless the column max comes off
    ZL = np.array([[1000.0, -3000.0, 0.0, 80.0],
                   [999.0, -3000.0, -5000.0, 90.0],
                   [-1000.0, -2990.0, 5000.0, 100.0]], dtype=dtype)
    Y = np.eye(3, dtype=dtype)[:, [0, 1, 2, 0]]
    A, work = np.empty_like(ZL), np.empty((2, 4), dtype)
    page.softmax(ZL, A, work)
    assert np.isfinite(A).all()
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-6)
    e = np.exp(-1.0)  # column 0: logits 1000, 999, -1000
    np.testing.assert_allclose(A[:2, 0], [1 / (1 + e), e / (1 + e)], rtol=1e-6)
    assert A[2, 2] == 1.0 and A[1, 2] == 0.0
    J = page.cost(A, ZL, Y, page.CROSS_ENTROPY, page.SOFTMAX)
    # per column: logsumexp(z) - z_y, from the logits
    lse = [1000 + np.log1p(e), -2990 + np.log1p(2 * np.exp(-10.0)), 5000.0,
           100 + np.log(1 + np.exp(-10.0) + np.exp(-20.0))]
    expected = np.mean([lse[0] - 1000, lse[1] + 3000, lse[2] - 5000, lse[3] - 80])
    assert J == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_softmax_training_matches_numpy(dtype, rtol, batch_size):
    from fastnn.backends import numpy as npb

    runs = []
    for backend in (nb, npb):
        Ws, bs, X, Y = softmax_problem([8, 12, 4], 60, dtype)
        c = train(backend, Ws, bs, ["tanh", "softmax"], "cross_entropy", X, Y, 0.1, 30, 7, None,
                          None, batch_size=batch_size, rng=np.random.default_rng(5))
        assert all(p.dtype == dtype for p in Ws + bs)
        runs.append((c, Ws + bs))
    assert_same_run(runs[0], runs[1], rtol)


