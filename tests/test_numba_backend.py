"""Numba-specific checks: the polynomial exp/tanh/sigmoid, the engine room
against the lecture page, the on-disk cache on read-only installs, threads
(numba's and Python's), reproducibility, chunking and Ctrl-C.

SIMD and the ISA paths are in ``test_numba_isa.py``; generic equivalence with
the other backends in ``test_equivalence.py``.
"""

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastnn.backends.numba")
from fastnn.backends import _numba_layers as page  # noqa: E402
from fastnn.backends import _numba_math as M  # noqa: E402
from fastnn.backends import _numba_train as E  # noqa: E402
from fastnn._testing import network_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _problem(dims, m, dtype=np.float64, seed=0):
    return network_problem(dims, m, dtype, seed, bias_scale=0.1)


def _train(backend, dims, acts, loss, m, num_iterations=300, threads=None, dtype=np.float64,
           on_cost=None):
    Ws, bs, X, Y = _problem(dims, m, dtype)
    costs = backend.train(Ws, bs, acts, loss, X, Y, 0.05, num_iterations, 50, threads, on_cost)
    return costs, Ws, bs


# ------------------------------------------------------------------ the math

def _apply(kernel, x):
    out = np.empty_like(x)
    kernel(x, out)
    return out


def test_exp_matches_numpy_to_1e_14_over_the_whole_normal_range():
    x = np.concatenate([np.linspace(-708.0, 709.7, 400_001), np.linspace(-2.0, 2.0, 10_001),
                        [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-10, -1e-10]])
    got = _apply(M.exp_array, x)
    ref = np.exp(x)
    assert np.max(np.abs(got - ref) / ref) <= 1e-14


def test_exp_limits_are_those_of_np_exp():
    x = np.array([710.0, 1000.0, np.inf, -746.0, -1000.0, -np.inf, np.nan, 709.78])
    got = _apply(M.exp_array, x)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(got[:7], ref[:7])
    assert np.isfinite(got[7]) and abs(got[7] / ref[7] - 1) <= 1e-14
    # subnormal results: a few ulp of the smallest normal, not garbage
    sub = np.linspace(-745.0, -709.0, 1001)
    assert np.max(np.abs(_apply(M.exp_array, sub) - np.exp(sub))) <= 1e-320


def test_tanh_keeps_relative_precision_from_tiny_to_huge_z():
    z = np.concatenate([np.linspace(-25.0, 25.0, 200_001), np.geomspace(1e-300, 1.0, 2001),
                        -np.geomspace(1e-300, 1.0, 2001)])
    z = z[z != 0.0]
    got = _apply(M.tanh_array, z)
    ref = np.tanh(z)
    assert np.max(np.abs(got - ref) / np.abs(ref)) <= 1e-14
    ends = _apply(M.tanh_array, np.array([-1000.0, 1000.0, -np.inf, np.inf, 0.0, np.nan]))
    np.testing.assert_array_equal(ends[:5], [-1.0, 1.0, -1.0, 1.0, 0.0])
    assert np.isnan(ends[5])


def test_sigmoid_is_exactly_0_and_1_at_plus_minus_1000_without_nan():
    z = np.concatenate([np.linspace(-700.0, 36.0, 200_001), [-1000.0, 1000.0, -np.inf, np.inf]])
    got = _apply(M.sigmoid_array, z)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[-4:], [0.0, 1.0, 0.0, 1.0])
    with np.errstate(over="ignore"):
        ref = 1.0 / (1.0 + np.exp(-z[:-4]))
    assert np.max(np.abs(got[:-4] - ref) / ref) <= 1e-14


def test_float32_activations_are_single_precision_accurate():
    z = np.linspace(-80.0, 80.0, 400_001).astype(np.float32)
    z = z[z != 0]
    z64 = z.astype(np.float64)
    tanh32, sig32 = _apply(M.tanh_array, z), _apply(M.sigmoid_array, z)
    assert tanh32.dtype == sig32.dtype == np.float32
    assert np.max(np.abs(tanh32 - np.tanh(z64)) / np.abs(np.tanh(z64))) <= 1e-6
    sig64 = 1.0 / (1.0 + np.exp(-z64))
    assert np.max(np.abs(sig32 - sig64) / sig64) <= 1e-6
    ends = np.float32([-1000.0, 1000.0, np.inf, -np.inf])
    np.testing.assert_array_equal(_apply(M.sigmoid_array, ends), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(_apply(M.tanh_array, ends), [-1.0, 1.0, 1.0, -1.0])


# ------------------------------------------------------------------ training

def test_threads_1_and_2_both_match_numpy():
    from fastnn.backends import numpy as npb

    dims, acts = [20, 7, 5, 1], ["relu", "tanh", "sigmoid"]
    c0, W0, b0 = _train(npb, dims, acts, "cross_entropy", 60)
    for threads in (1, 2):
        c, W, b = _train(nb, dims, acts, "cross_entropy", 60, threads=threads)
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
    c0, W0, b0 = _train(npb, dims, acts, "cross_entropy", m, num_iterations=100)
    c, W, b = _train(nb, dims, acts, "cross_entropy", m, num_iterations=100)
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9)
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_is_bitwise_reproducible(threads, dtype):
    dims, acts = [40, 6, 1], ["leaky_relu", "sigmoid"]
    first = _train(nb, dims, acts, "cross_entropy", 33, threads=threads, dtype=dtype)
    second = _train(nb, dims, acts, "cross_entropy", 33, threads=threads, dtype=dtype)
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

    c, W, b = _train(nb, dims, acts, "cross_entropy", 20, on_cost=stop_after_100)
    c0, W0, b0 = _train(npb, dims, acts, "cross_entropy", 20, on_cost=stop_after_100)
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

    c, W, b = _train(nb, dims, acts, loss, 1, num_iterations=20)
    c0, W0, b0 = _train(npb, dims, acts, loss, 1, num_iterations=20)
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=1e-9, atol=1e-15)
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-15)


def test_diverging_training_gives_non_finite_costs_without_crashing():
    Ws, bs, X, Y = _problem([4, 3, 1], 10)
    X *= 1e200
    costs = nb.train(Ws, bs, ["relu", "identity"], "mse", X, Y, 1e10, 20, 5, None, None)
    assert [i for i, _ in costs] == [0, 5, 10, 15, 19] and not np.isfinite(costs[-1][1])


def test_info_and_compile_times_are_reported():
    _train(nb, [3, 2, 1], ["tanh", "sigmoid"], "cross_entropy", 5, num_iterations=3)
    info = nb.info()
    assert {"numba", "llvmlite", "fastmath", "cache", "threading_layer", "threads", "isa",
            "llvm_cpu", "llvm_vector_features"} <= set(info)
    assert "nnan" not in info["fastmath"] and "ninf" not in info["fastmath"]
    assert any(k.startswith("train_chunk/") for k in nb.compile_times())
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
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((3, 4)), rng.standard_normal((1, 3))]
    bs = [np.zeros((3, 1)), np.zeros((1, 1))]
    X, Y = rng.standard_normal((4, 7)), np.ones((1, 7))
    costs = nb.train(Ws, bs, ["tanh", "sigmoid"], "cross_entropy", X, Y, 0.1, 3, 1)
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
    assert not E.fused_first_layer(dims[1], dims[0], m)  # W1 X straight into Z1
    assert dims[2] * dims[1] * m >= nb.config.BLAS_MIN_MACS


@pytest.mark.parametrize("threads", [1, 2])
def test_wide_path_matches_numpy_with_and_without_on_cost(threads):
    from fastnn.backends import numpy as npb

    dims, acts, m = _WIDE
    c0, W0, b0 = _train(npb, dims, acts, "cross_entropy", m, num_iterations=120)
    plain = _train(nb, dims, acts, "cross_entropy", m, num_iterations=120, threads=threads)
    seen = []
    chunked = _train(nb, dims, acts, "cross_entropy", m, num_iterations=120, threads=threads,
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
    c, W, b = _train(nb, dims, acts, "cross_entropy", m, num_iterations=120, on_cost=stop)
    c0, W0, b0 = _train(npb, dims, acts, "cross_entropy", m, num_iterations=120, on_cost=stop)
    assert [i for i, _ in c] == [0, 50] == [i for i, _ in c0]
    for p, p0 in zip(W + b, W0 + b0):
        np.testing.assert_allclose(p, p0, rtol=1e-9, atol=1e-12)


# ------------------------------------------------ the engine room vs the page

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
    identity = np.int64(nb._act.CODES["identity"])
    page.linear_forward(W_page, np.zeros((n1, 1), dtype), X, Z_page, A, identity,
                        np.empty((2, m), dtype))

    W_engine, Z_engine = W.copy(), np.empty((n1, m), dtype)
    E.first_layer_pass(W_engine, dZ, X, Z_engine, np.empty((threads, n1, m), dtype),
                       dtype(lr / m), True)
    np.testing.assert_allclose(W_engine, W_page, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(Z_engine, Z_page, rtol=rtol, atol=rtol * np.abs(Z_page).max())
    # learn=False: the forward alone, W untouched
    W_still = W.copy()
    E.first_layer_pass(W_still, dZ, X, Z_engine, np.empty((threads, n1, m), dtype), dtype(lr),
                       False)
    np.testing.assert_array_equal(W_still, W)
    np.testing.assert_allclose(Z_engine, W.astype(np.float64) @ X, rtol=rtol,
                               atol=rtol * np.abs(Z_engine).max())


def test_forward_and_backward_use_the_page_and_match_numpy():
    from fastnn.backends import numpy as npb

    Ws, bs, X, Y = _problem([6, 5, 4, 3, 1], 41)
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
        Ws, bs, X, Y = _problem(dims, m, dtype, seed=seed)
        nb.train(Ws, bs, ["relu", "tanh", "sigmoid"], "cross_entropy", X, Y, 0.1, 30, 10, 1,
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


# ------------------------------------------------ chunks, huge runs, Ctrl-C

@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_in_many_chunks_is_bitwise_the_run_in_one(threads):
    # on_cost ends a chunk at every recorded cost (cost_every=1: every iteration)
    dims, acts = [300, 6, 4, 1], ["relu", "tanh", "sigmoid"]
    plain = _train(nb, dims, acts, "cross_entropy", 50, num_iterations=40, threads=threads)
    Ws, bs, X, Y = _problem(dims, 50)
    seen = []
    costs = nb.train(Ws, bs, acts, "cross_entropy", X, Y, 0.05, 40, 1, threads,
                     lambda i, J: seen.append(i))
    assert seen == list(range(40)) and [i for i, _ in costs] == seen
    assert [i for i, _ in plain[0]] == [0, 39]  # every 50th, and the last
    assert [c for i, c in costs if i in (0, 39)] == [c for _, c in plain[0]]
    for p, q in zip(plain[1] + plain[2], Ws + bs):
        np.testing.assert_array_equal(p, q)


def test_huge_num_iterations_allocates_nothing_up_front():
    # 10**12 iterations recording every 100th cost: 10**10 costs, 80 GB, if
    # allocated at the start. on_cost stops after three records.
    dims, acts = [5, 4, 1], ["tanh", "sigmoid"]
    Ws, bs, X, Y = _problem(dims, 30)
    costs = nb.train(Ws, bs, acts, "cross_entropy", X, Y, 0.05, 10**12, 100, None,
                     lambda i, J: i < 200)
    assert [i for i, _ in costs] == [0, 100, 200]
    ref = _train(nb, dims, acts, "cross_entropy", 30, num_iterations=200)
    for p, q in zip(ref[1] + ref[2], Ws + bs):
        np.testing.assert_array_equal(p, q)


_SIGINT_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import fastnn
    rng = np.random.default_rng(0)
    dims = [int(d) for d in sys.argv[2].split("-")]
    X = rng.standard_normal((dims[0], 300)); Y = (rng.random((1, 300)) < 0.5) * 1.0
    net = fastnn.Network(dims, hidden_activation="tanh", backend="numba", seed=1)
    net.fit(X, Y, learning_rate=0.01, num_iterations=3, cost_every=1)  # compile
    before = {k: v.copy() for k, v in net.params.items()}
    print("ready", flush=True)
    try:
        net.fit(X, Y, learning_rate=1e-3, num_iterations=10**12, cost_every=int(sys.argv[1]))
    except KeyboardInterrupt:
        same = all(np.array_equal(before[k], v) for k, v in net.params.items())
        print("KeyboardInterrupt", "unchanged" if same else "CHANGED", flush=True)
""")


@pytest.mark.parametrize("dims", ["2-4-1", "500-8-1"])
@pytest.mark.parametrize("cost_every", [10**12, 100])
def test_ctrl_c_stops_a_compiled_fit_and_keeps_the_parameters(cost_every, dims):
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_RUN, str(cost_every), dims],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.0)  # well inside the fit (10**12 iterations)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)  # a hang guard, not a timing check
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "KeyboardInterrupt unchanged", (out, err)


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
                c = backend.train(W, b, acts, "cross_entropy", X, Y, 0.1, 20, 5, None, None,
                                  relu_grad_at_zero=g0, batch_size=batch_size,
                                  rng=np.random.default_rng(2))
                runs.append((c, W + b))
            _assert_same_run(runs[0], runs[1], 1e-10)


def _assert_same_run(run, ref, rtol):
    (c, params), (c0, params0) = run, ref
    assert [i for i, _ in c] == [i for i, _ in c0]
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=rtol)
    for p, p0 in zip(params, params0):
        np.testing.assert_allclose(p, p0, rtol=rtol, atol=rtol * np.abs(p0).max())


# ------------------------------------------------ softmax

def _softmax_problem(dims, m, dtype=np.float64, seed=0):
    """A network problem with one-hot Y over dims[-1] classes."""
    Ws, bs, X, _ = network_problem(dims, m, dtype, seed, bias_scale=0.1)
    labels = np.random.default_rng(seed + 100).integers(0, dims[-1], m)
    return Ws, bs, X, np.eye(dims[-1], dtype=dtype)[:, labels]


def test_softmax_forward_backward_and_cost_match_numpy():
    from fastnn import losses
    from fastnn.backends import numpy as npb

    Ws, bs, X, Y = _softmax_problem([6, 9, 5], 37)
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
        Ws, bs, X, Y = _softmax_problem([8, 12, 4], 60, dtype)
        c = backend.train(Ws, bs, ["tanh", "softmax"], "cross_entropy", X, Y, 0.1, 30, 7, None,
                          None, batch_size=batch_size, rng=np.random.default_rng(5))
        assert all(p.dtype == dtype for p in Ws + bs)
        runs.append((c, Ws + bs))
    _assert_same_run(runs[0], runs[1], rtol)


# ------------------------------------------------ mini-batches

_MB_NETS = {
    "softmax": ([6, 8, 5, 3], ["relu", "leaky_relu", "softmax"], "cross_entropy"),
    "sigmoid": ([6, 7, 1], ["tanh", "sigmoid"], "cross_entropy"),
    "mse": ([6, 5, 2], ["sigmoid", "identity"], "mse"),
}


def _train_mb(backend, net, batch_size, seed=4, num_iterations=12, cost_every=3, on_cost=None,
              dtype=np.float64, threads=None, m=50, g0=1):
    dims, acts, loss = _MB_NETS[net]
    if acts[-1] == "softmax":
        Ws, bs, X, Y = _softmax_problem(dims, m, dtype)
    else:
        Ws, bs, X, Y = network_problem(dims, m, dtype, 0, bias_scale=0.1)
    costs = backend.train(Ws, bs, acts, loss, X, Y, 0.1, num_iterations, cost_every, threads,
                          on_cost, relu_grad_at_zero=g0, batch_size=batch_size,
                          rng=None if seed is None else np.random.default_rng(seed))
    return costs, Ws + bs


@pytest.mark.parametrize("net", sorted(_MB_NETS))
@pytest.mark.parametrize("batch_size", [1, 7, 10, 50])  # 50 = m; 7 does not divide it
def test_mini_batch_training_matches_numpy(net, batch_size):
    from fastnn.backends import numpy as npb

    run = _train_mb(nb, net, batch_size)
    ref = _train_mb(npb, net, batch_size)
    assert [i for i, _ in run[0]] == [0, 3, 6, 9, 11]
    _assert_same_run(run, ref, 1e-9)


def test_mini_batch_of_m_is_the_full_batch_step_with_a_shuffled_order():
    # One batch of all m examples in a shuffled order: the same gradient as
    # full batch (the sum is over the same examples), up to summation order.
    full = _train_mb(nb, "softmax", None)
    whole = _train_mb(nb, "softmax", 50)
    _assert_same_run(whole, full, 1e-11)


def test_mini_batch_float32_tracks_numpy():
    from fastnn.backends import numpy as npb

    run = _train_mb(nb, "softmax", 8, dtype=np.float32)
    ref = _train_mb(npb, "softmax", 8, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in run[1])
    _assert_same_run(run, ref, 2e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_mini_batch_training_is_bitwise_reproducible_for_a_seed(threads):
    first = _train_mb(nb, "softmax", 7, threads=threads)
    second = _train_mb(nb, "softmax", 7, threads=threads)
    assert first[0] == second[0]
    for p, q in zip(first[1], second[1]):
        np.testing.assert_array_equal(p, q)
    other_seed = _train_mb(nb, "softmax", 7, seed=5, threads=threads)
    assert not np.array_equal(first[1][0], other_seed[1][0])


def test_mini_batch_run_in_many_chunks_is_bitwise_the_run_in_one():
    # on_cost with cost_every=1 ends a chunk (and draws the orders) every epoch
    plain = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    seen = []
    chunked = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=1,
                        on_cost=lambda i, J: seen.append(i))
    assert seen == list(range(20)) == [i for i, _ in chunked[0]]
    assert [i for i, _ in plain[0]] == [0, 19]
    assert [c for i, c in chunked[0] if i in (0, 19)] == [c for _, c in plain[0]]
    for p, q in zip(plain[1], chunked[1]):
        np.testing.assert_array_equal(p, q)


def test_mini_batch_chunks_cap_the_drawn_shuffles(monkeypatch):
    # Room for 3 epochs' orders of m = 50 per chunk: 20 epochs run as 7
    # chunks, bitwise the run in one.
    plain = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    drawn = []
    real = nb._base.epoch_orders

    def spy(rng, m, count):
        drawn.append(count)
        return real(rng, m, count)

    monkeypatch.setattr(nb, "MAX_ORDER_ENTRIES", 3 * 50)
    monkeypatch.setattr(nb._base, "epoch_orders", spy)
    capped = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    assert max(drawn) <= 3 and sum(drawn) == 20
    assert capped[0] == plain[0]
    for p, q in zip(plain[1], capped[1]):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("batch_size", [None, 7])
@pytest.mark.parametrize("num_iterations,cost_every,expected", [
    (23, 5, [0, 5, 10, 15, 20, 22]), (20, 5, [0, 5, 10, 15, 19]), (1, 5, [0]), (4, 100, [0, 3]),
    (3, 1, [0, 1, 2])])
def test_recorded_costs_include_the_last_iteration(batch_size, num_iterations, cost_every,
                                                   expected):
    from fastnn.backends import numpy as npb

    for on_cost in (None, lambda i, J: True):  # one chunk, or a chunk per recorded cost
        run = _train_mb(nb, "softmax", batch_size, num_iterations=num_iterations,
                        cost_every=cost_every, on_cost=on_cost)
        assert [i for i, _ in run[0]] == expected
    ref = _train_mb(npb, "softmax", batch_size, num_iterations=num_iterations,
                    cost_every=cost_every)
    _assert_same_run(run, ref, 1e-9)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_on_cost_stop_is_exact(batch_size):
    # Stopping at iteration 6 leaves the parameters of 6 iterations: bitwise
    # what a 6-iteration run (whose last recorded cost is 5's) leaves.
    seen = []

    def stop_at_6(i, J):
        seen.append(i)
        return i < 6

    stopped = _train_mb(nb, "softmax", batch_size, num_iterations=12, cost_every=3,
                        on_cost=stop_at_6)
    six = _train_mb(nb, "softmax", batch_size, num_iterations=6, cost_every=3)
    assert seen == [0, 3, 6] and [i for i, _ in stopped[0]] == [0, 3, 6]
    for p, q in zip(six[1], stopped[1]):
        np.testing.assert_array_equal(p, q)


def test_auto_threads_pick_one_for_small_mini_batches():
    # the multi-class mini-batch workload: 64-64-10, batches of 32
    assert nb._n_threads(None, np.empty((64, 64)), 32) == 1
    assert nb._n_threads(None, np.empty((64, 64)), 1347) == 1
