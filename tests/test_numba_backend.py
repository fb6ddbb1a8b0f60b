"""Numba-specific checks: the polynomial exp/tanh/sigmoid, SIMD in the machine
code, the on-disk cache on read-only installs, threads and reproducibility.

Generic equivalence with the other backends lives in ``test_equivalence.py``.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastnn.backends.numba")
K = nb.K

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _problem(dims, m, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (rng.random((dims[-1], m)) < 0.5).astype(dtype)
    Ws = [(rng.standard_normal((dims[l + 1], dims[l])) / np.sqrt(dims[l])).astype(dtype)
          for l in range(len(dims) - 1)]
    bs = [(0.1 * rng.standard_normal((dims[l + 1], 1))).astype(dtype)
          for l in range(len(dims) - 1)]
    return Ws, bs, X, Y


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
    got = _apply(K.exp_array, x)
    ref = np.exp(x)
    assert np.max(np.abs(got - ref) / ref) <= 1e-14


def test_exp_limits_are_those_of_np_exp():
    x = np.array([710.0, 1000.0, np.inf, -746.0, -1000.0, -np.inf, np.nan, 709.78])
    got = _apply(K.exp_array, x)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(got[:7], ref[:7])
    assert np.isfinite(got[7]) and abs(got[7] / ref[7] - 1) <= 1e-14
    # subnormal results: a few ulp of the smallest normal, not garbage
    sub = np.linspace(-745.0, -709.0, 1001)
    assert np.max(np.abs(_apply(K.exp_array, sub) - np.exp(sub))) <= 1e-320


def test_tanh_keeps_relative_precision_from_tiny_to_huge_z():
    z = np.concatenate([np.linspace(-25.0, 25.0, 200_001), np.geomspace(1e-300, 1.0, 2001),
                        -np.geomspace(1e-300, 1.0, 2001)])
    z = z[z != 0.0]
    got = _apply(K.tanh_array, z)
    ref = np.tanh(z)
    assert np.max(np.abs(got - ref) / np.abs(ref)) <= 1e-14
    ends = _apply(K.tanh_array, np.array([-1000.0, 1000.0, -np.inf, np.inf, 0.0, np.nan]))
    np.testing.assert_array_equal(ends[:5], [-1.0, 1.0, -1.0, 1.0, 0.0])
    assert np.isnan(ends[5])


def test_sigmoid_is_exactly_0_and_1_at_plus_minus_1000_without_nan():
    z = np.concatenate([np.linspace(-700.0, 36.0, 200_001), [-1000.0, 1000.0, -np.inf, np.inf]])
    got = _apply(K.sigmoid_array, z)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[-4:], [0.0, 1.0, 0.0, 1.0])
    with np.errstate(over="ignore"):
        ref = 1.0 / (1.0 + np.exp(-z[:-4]))
    assert np.max(np.abs(got[:-4] - ref) / ref) <= 1e-14


def test_float32_activations_are_single_precision_accurate():
    z = np.linspace(-80.0, 80.0, 400_001).astype(np.float32)
    z = z[z != 0]
    z64 = z.astype(np.float64)
    tanh32, sig32 = _apply(K.tanh_array, z), _apply(K.sigmoid_array, z)
    assert tanh32.dtype == sig32.dtype == np.float32
    assert np.max(np.abs(tanh32 - np.tanh(z64)) / np.abs(np.tanh(z64))) <= 1e-6
    sig64 = 1.0 / (1.0 + np.exp(-z64))
    assert np.max(np.abs(sig32 - sig64) / sig64) <= 1e-6
    ends = np.float32([-1000.0, 1000.0, np.inf, -np.inf])
    np.testing.assert_array_equal(_apply(K.sigmoid_array, ends), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(_apply(K.tanh_array, ends), [-1.0, 1.0, 1.0, -1.0])


# ------------------------------------------------------------------ SIMD proof

@pytest.fixture(scope="module")
def evidence():
    return nb.simd_evidence()


@pytest.mark.parametrize("kernel", ["exp_array", "tanh_array", "sigmoid_array",
                                    "tanh_array_float32", "sigmoid_array_float32"])
def test_activation_kernels_are_vectorized_on_wide_registers(evidence, kernel):
    counts = evidence[kernel]
    # the polynomial alone is a dozen FMAs: a vectorized body has many packed ops
    assert counts["packed"] >= 12, counts
    assert counts["zmm"] + counts["ymm"] >= 12, counts


@pytest.mark.parametrize("kernel", ["bias_activate", "dense_forward", "dense_grads",
                                    "first_layer_block"])
def test_layer_kernels_contain_packed_arithmetic(evidence, kernel):
    counts = evidence[kernel]
    assert counts["zmm"] + counts["ymm"] >= 8, counts


def test_fp_instruction_counter_tells_packed_from_scalar():
    asm = "\tvfmadd231pd\t%zmm1, %zmm2, %zmm3\n\tvmulsd\t%xmm0, %xmm1, %xmm1\n" \
          "\tvaddpd\t%ymm0, %ymm1, %ymm1\n\tvmovupd\t(%rax), %zmm0\n"
    assert nb.count_fp_instructions(asm) == {"packed": 2, "scalar": 1, "zmm": 1, "ymm": 1}


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
    assert len(costs) == 4 and not np.isfinite(costs[-1][1])


def test_info_and_compile_times_are_reported():
    _train(nb, [3, 2, 1], ["tanh", "sigmoid"], "cross_entropy", 5, num_iterations=3)
    info = nb.info()
    assert {"numba", "llvmlite", "fastmath", "cache", "threading_layer", "threads"} <= set(info)
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
    assert not K.fused_first_layer(dims[1], dims[0], m)  # W1 X straight into Z1
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
    assert seen == [0, 50, 100]
    for c, W, b in (plain, chunked):
        assert [i for i, _ in c] == [0, 50, 100]
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
